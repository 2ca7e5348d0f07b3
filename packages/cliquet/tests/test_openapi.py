"""The OpenAPI 3.1 description at /v1/__api__: valid, complete, faithful to
the resources' schemas."""

from pathlib import Path

import colander
import pytest
import webtest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from pyramid.paster import get_app

from cliquet.openapi import build_openapi, case_insensitive, colander_to_json_schema
from cliquet.resource import ResourceSchema, UserResource
from cliquet.services import add_service, make_service
from cliquet.resource.ids import UUID4
from cliquet.testing.app import basic_auth, make_app

EXAMPLE_INI = Path(__file__).resolve().parents[3] / "docs" / "example" / "myproject.ini"


@pytest.fixture
def app():
    return make_app()


@pytest.fixture
def document(app):
    return app.get("/v1/__api__").json


def test_served_without_authentication_and_valid(app, document):
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert document["servers"] == [{"url": "http://localhost"}]
    assert document["components"]["securitySchemes"] == {"basicAuth": {"type": "http", "scheme": "basic"}}
    assert document["security"] == [{"basicAuth": []}]


def test_the_validator_rejects_a_broken_document(document):
    broken = dict(document)
    broken["paths"] = {"/v1/articles": {"get": {"responses": {"200": {}}}}}  # a response needs a description
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_every_registered_endpoint_and_method_is_described(app, document):
    services = app.app.registry.cornice_services
    expected = {}
    for key, service in services.items():
        path = key if key.startswith("/") else "/" + key
        expected[path] = {m.lower() for m, _view, _args in service.definitions}
    described = {path: set(item) for path, item in document["paths"].items()}
    assert described == expected
    assert "/v1/__api__" in described and "/__heartbeat__" in described


def test_public_endpoints_need_no_authentication(document):
    for path in ("/v1/", "/v1/__api__", "/__heartbeat__", "/v1/__version__"):
        assert {} in document["paths"][path]["get"]["security"]
    assert "security" not in document["paths"]["/v1/articles"]["get"]  # the global basicAuth


def test_resource_schemas_come_from_colander(document):
    schemas = document["components"]["schemas"]
    data = schemas["ArticleData"]
    assert data["required"] == ["title"]
    assert data["additionalProperties"] is False
    props = data["properties"]
    assert props["title"] == {"type": "string", "minLength": 1, "maxLength": 512}
    assert props["tags"] == {"type": "array", "items": {"type": "string", "minLength": 1}}
    assert props["score"] == {"type": "number"}
    assert props["published"] == {"type": "boolean"}
    assert props["author"]["type"] == "object" and "additionalProperties" not in props["author"]
    assert props["url"]["format"] == "uri"
    assert props["id"] == {"type": "string", "pattern": UUID4.regexp}
    assert "required" not in schemas["ArticlePatch"] and "id" not in schemas["ArticlePatch"]["properties"]
    assert "id" not in schemas["ArticlePut"]["properties"] and schemas["ArticlePut"]["required"] == ["title"]
    record = schemas["Article"]
    assert {"id", "last_modified", "deleted", "title"} <= set(record["properties"])
    assert "required" not in record


def test_operations_status_codes_and_error_body(document):
    record = document["paths"]["/v1/articles/{id}"]
    assert set(record) == {"get", "head", "put", "patch", "delete"}
    get = record["get"]
    assert {"200", "304", "400", "401", "403", "404", "406", "412", "503"} == set(get["responses"])
    assert get["responses"]["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert get["responses"]["200"]["headers"]["ETag"]["required"] is True
    assert "content" not in record["head"]["responses"]["200"]
    post = document["paths"]["/v1/articles"]["post"]
    assert {"200", "201", "405", "411", "413", "415"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["schema"]["properties"]["data"] == {
        "$ref": "#/components/schemas/ArticleData"}
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "errno", "error"]
    assert "410" not in get["responses"]


def test_created_records_link_to_their_record_operations(document):
    links = document["paths"]["/v1/articles"]["post"]["responses"]["201"]["links"]
    operation_ids = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert {link["operationId"] for link in links.values()} == {
        "get_article_record", "put_article_record", "patch_article_record", "delete_article_record"}
    assert {link["operationId"] for link in links.values()} <= operation_ids
    assert all(link["parameters"] == {"id": "$response.body#/data/id"} for link in links.values())


def test_list_parameters(document):
    params = {p["name"]: p for p in document["paths"]["/v1/articles"]["get"]["parameters"]}
    for name in ("_limit", "_sort", "_token", "_since", "_before", "_fields", "If-None-Match",
                 "title", "min_score", "in_score", "not_published", "exclude_last_modified", "gt_id"):
        assert name in params, name
    # filter values must be compared exactly: within 64 bits (docs/security.rst)
    assert params["score"]["schema"] == {"type": "number", "minimum": -(2 ** 63), "maximum": 2 ** 63 - 1}
    assert params["published"]["schema"] == {"type": "boolean"}
    assert params["_limit"]["schema"]["minimum"] == 1
    assert "tags" not in params and "author" not in params  # lists and objects: no plain filter
    assert params["If-None-Match"]["in"] == "header"


def test_per_user_resources_take_no_permissions_but_shareable_ones_do():
    per_user = make_app().get("/v1/__api__").json
    body = per_user["paths"]["/v1/articles"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"data"}
    example = webtest.TestApp(get_app(str(EXAMPLE_INI))).get("/v1/__api__").json
    validate(example)
    body = example["paths"]["/v1/articles"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"data", "permissions"}
    assert set(body["properties"]["permissions"]["properties"]) == {"read", "write"}


def test_end_of_service_documents_410():
    document = make_app(eos="2999-01-01").get("/v1/__api__").json
    assert "410" in document["paths"]["/v1/articles"]["get"]["responses"]


def test_prometheus_endpoint_is_described_when_enabled():
    document = make_app(prometheus_enabled=True).get("/v1/__api__").json
    validate(document)
    assert "text/plain" in document["paths"]["/__metrics__"]["get"]["responses"]["200"]["content"]


def test_plugin_endpoints_get_a_generic_or_their_own_description():
    from pyramid.config import Configurator

    import cliquet
    from cliquet.testing.app import TEST_SECRET
    from cliquet.utils import json_response

    config = Configurator(settings={"cliquet.userid_hmac_secret": TEST_SECRET})
    cliquet.initialize(config, "1.0", project_name="plugged")
    with config.route_prefix_context("v1"):
        search = make_service(name="search", path="/search/{name:[a-z]+}/{kind}")
        search.add_view("GET", lambda request: json_response(request, {}), permission="__no_permission_required__")
        add_service(config, search)
        stats = make_service(name="stats", path="/stats")
        stats.add_view("GET", lambda request: json_response(request, {"n": 1}),
                       permission="__no_permission_required__")
        stats.cliquet_openapi = {"GET": {"summary": "Counts", "responses": {"200": {"description": "n"}}}}
        add_service(config, stats)
    document = build_openapi(config.make_wsgi_app().registry)
    validate(document)
    get = document["paths"]["/v1/search/{name}/{kind}"]["get"]
    assert [(p["name"], p["in"]) for p in get["parameters"]] == [("name", "path"), ("kind", "path")]
    assert document["paths"]["/v1/stats"]["get"]["summary"] == "Counts"
    assert document["paths"]["/v1/stats"]["get"]["operationId"] == "get_stats"


class Thing(ResourceSchema):
    """Every colander type the converter knows."""

    class Options:
        preserve_unknown = True

    count = colander.SchemaNode(colander.Int(), validator=colander.Range(0, 10))
    kind = colander.SchemaNode(colander.String(), validator=colander.OneOf(["a", "b"]),
                               missing=colander.drop, description="The kind")
    when = colander.SchemaNode(colander.DateTime(), missing=colander.drop)
    day = colander.SchemaNode(colander.Date(), missing=colander.drop)
    code = colander.SchemaNode(colander.String(), validator=colander.Regex(r"^[A-Z]{3}$"), missing=colander.drop)
    mail = colander.SchemaNode(colander.String(), validator=colander.Email(), missing=colander.drop)
    short = colander.SchemaNode(colander.Sequence(), colander.SchemaNode(colander.Int()),
                                validator=colander.Length(max=3), missing=colander.drop)


def test_colander_conversion():
    schema = colander_to_json_schema(Thing())
    props = schema["properties"]
    assert schema["required"] == ["count"] and "additionalProperties" not in schema
    assert props["count"] == {"type": "integer", "minimum": 0, "maximum": 10}
    assert props["kind"] == {"type": "string", "enum": ["a", "b"], "description": "The kind"}
    assert props["when"] == {"type": "string", "format": "date-time"}
    assert props["day"] == {"type": "string", "format": "date"}
    assert props["code"] == {"type": "string", "pattern": "^[A-Z]{3}$"}
    assert props["mail"] == {"type": "string", "format": "email"}
    assert props["short"] == {"type": "array", "items": {"type": "integer"}, "maxItems": 3}
    custom = colander.SchemaNode(colander.String())
    custom.json_schema = {"type": "string", "format": "uuid"}
    assert colander_to_json_schema(custom) == {"type": "string", "format": "uuid"}


def test_preserve_unknown_resources_sort_on_any_field():
    class Gadget(UserResource):
        schema = Thing

    document = make_app(resources=(Gadget,)).get("/v1/__api__").json
    validate(document)
    params = {p["name"]: p for p in document["paths"]["/v1/gadgets"]["get"]["parameters"]}
    assert params["_sort"]["schema"]["pattern"].startswith("^[-+]?[A-Za-z0-9_]")
    assert params["count"]["schema"] == {"type": "integer", "minimum": -(2 ** 63), "maximum": 2 ** 63 - 1}
    assert "when" in params  # strings with a format are still strings


def test_case_insensitive_pattern():
    assert case_insensitive("ab-1") == "[Aa][Bb]-1"


def test_the_document_is_built_once(app):
    first = app.get("/v1/__api__", headers=basic_auth()).json
    registry = app.app.registry
    assert registry.cliquet_openapi_document["paths"] is not None
    assert app.get("/v1/__api__").json == first
