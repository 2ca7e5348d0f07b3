"""The OpenAPI 3.1 description of a Cliquet service, built from what is
registered: every Cornice service (generic endpoints, resources, plugins'
endpoints) and, for resources, their colander schemas, list parameters,
headers, status codes and error bodies.

:func:`build_openapi` returns the document as a dict; the ``/v1/__api__``
view (:mod:`cliquet.views.openapi`) serves it. Colander nodes become JSON
Schema with :func:`colander_to_json_schema`; an application can describe a
node type of its own by giving the node a ``json_schema`` attribute (a dict).
"""

from __future__ import annotations

import re

import colander

from cliquet.openapi_generic import ERROR_SCHEMA, generic_operation
from cliquet.resource.querystring import _PREFIXES
from cliquet.storage import COMPARISON

OPENAPI_VERSION = "3.1.0"
_NUMBER_TYPES = (colander.Float, colander.Decimal, colander.Number)
_VERBS = {"GET": "get", "HEAD": "head", "POST": "post", "PUT": "put", "PATCH": "patch", "DELETE": "delete"}


# -- colander → JSON Schema ---------------------------------------------------

def _validator_keywords(validator, schema: dict) -> None:
    if validator is None:
        return
    if isinstance(validator, colander.All):
        for sub in validator.validators:
            _validator_keywords(sub, schema)
        return
    if isinstance(validator, colander.Length):
        unit = "Items" if schema.get("type") == "array" else "Length"
        if validator.min is not None:
            schema["min" + unit] = validator.min
        if validator.max is not None:
            schema["max" + unit] = validator.max
    elif isinstance(validator, colander.Range):
        if validator.min is not None:
            schema["minimum"] = validator.min
        if validator.max is not None:
            schema["maximum"] = validator.max
    elif isinstance(validator, colander.OneOf):
        schema["enum"] = list(validator.choices)
    elif validator is colander.url:
        schema["format"] = "uri"
        schema["pattern"] = r"^(https?|ftps?)://[^\s/?#:@]+\.[a-z]{2,}(/[^\s]*)?$"
    elif isinstance(validator, colander.Email):
        schema["format"] = "email"
    elif isinstance(validator, colander.Regex):
        schema["pattern"] = validator.match_object.pattern


def colander_to_json_schema(node, for_response: bool = False) -> dict:
    """The JSON Schema of a colander ``node``.

    :param for_response: describe stored values (no ``required`` lists,
        unknown fields of objects allowed) rather than what a request must send.
    """
    custom = getattr(node, "json_schema", None)
    if isinstance(custom, dict):
        return dict(custom)
    typ = node.typ
    if isinstance(typ, colander.String):
        schema = {"type": "string"}
    elif isinstance(typ, colander.Boolean):
        schema = {"type": "boolean"}
    elif isinstance(typ, colander.Int):
        schema = {"type": "integer"}
    elif isinstance(typ, _NUMBER_TYPES):
        schema = {"type": "number"}
    elif isinstance(typ, colander.DateTime):
        schema = {"type": "string", "format": "date-time"}
    elif isinstance(typ, colander.Date):
        schema = {"type": "string", "format": "date"}
    elif isinstance(typ, (colander.Sequence, colander.List, colander.Set, colander.Tuple)):
        schema = {"type": "array"}
        if node.children and not isinstance(typ, colander.Tuple):
            schema["items"] = colander_to_json_schema(node.children[0], for_response)
    elif isinstance(typ, colander.Mapping):
        schema = mapping_schema(node, for_response)
    else:
        schema = {}
    if not for_response:
        _validator_keywords(node.validator, schema)
        if isinstance(typ, colander.String) and node.required and not getattr(typ, "allow_empty", False):
            # colander reads "" as a missing value: a required string can't be empty
            schema["minLength"] = max(schema.get("minLength", 0), 1)
    if node.description:
        schema["description"] = str(node.description)
    if node.title and node.title != node.name.replace("_", " ").title():
        schema["title"] = str(node.title)
    return schema


def mapping_schema(node, for_response: bool = False) -> dict:
    """An ``object`` schema for a colander mapping node."""
    unknown = getattr(node.typ, "unknown", "ignore")
    schema = {"type": "object",
              "properties": {child.name: colander_to_json_schema(child, for_response) for child in node.children}}
    required = [child.name for child in node.children if child.required]
    if required and not for_response:
        schema["required"] = required
    if unknown == "raise" and not for_response:
        schema["additionalProperties"] = False
    return schema


# -- resources ------------------------------------------------------------------

def _id_schema(resource_cls, registry) -> dict:
    generator = resource_cls.id_generator or getattr(registry, "cliquet_id_generator", None)
    regexp = getattr(generator, "regexp", None)
    schema = {"type": "string"}
    if regexp:
        schema["pattern"] = regexp
    return schema


def record_schemas(resource_cls, registry) -> dict[str, dict]:
    """Component schemas of one resource: ``<Name>Data`` (what POST sends),
    ``<Name>Put`` (PUT: the same without ``id``), ``<Name>Patch`` (PATCH: every
    field optional) and ``<Name>`` (a stored
    record or tombstone, as responses carry it)."""
    node = resource_cls.schema_instance()
    title = resource_cls.name.title().replace("-", "").replace("_", "")
    data = colander_to_json_schema(node)
    data.setdefault("properties", {})
    id_schema = _id_schema(resource_cls, registry)
    data["properties"] = {"id": id_schema, **data["properties"],
                          "last_modified": {"description": "Ignored, whatever its value: set by the server."}}
    # PUT and PATCH take the id from the URL (a body id must be the same one)
    put = {**data, "properties": {k: v for k, v in data["properties"].items() if k != "id"}}
    patch = {k: v for k, v in put.items() if k != "required"}
    record = colander_to_json_schema(node, for_response=True)
    record["properties"] = {"id": {"type": "string"}, **record.get("properties", {}),
                            "last_modified": {"type": "integer", "description": "Milliseconds since the epoch"},
                            "deleted": {"type": "boolean", "description": "Present (true) on tombstones"}}
    return {f"{title}Data": data, f"{title}Put": put, f"{title}Patch": patch, title: record}


def case_insensitive(word: str) -> str:
    """A regular expression matching ``word`` in any case (``[Tt][Rr]…``),
    without inline flags (OpenAPI patterns are ECMA-262)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


# Numbers in querystrings must be within the 64-bit signed range. A pattern
# cannot bound a number, so the comma-separated lists describe a safe subset:
# at most 18 integer digits, and only negative exponents (the server also
# takes 1e5 or 2.5E+3 within the range).
_INT = r"-?[0-9]{1,18}"
_NUM = r"-?[0-9]{1,18}(\.[0-9]+)?([eE]-[0-9]{1,2})?"
_INT64 = {"minimum": -(2 ** 63), "maximum": 2 ** 63 - 1}
_BOOL = f"({case_insensitive('true')}|{case_insensitive('false')})"
_TIMESTAMP = f'^("{_INT}"|{_INT})$'


def _comma_list(item: str) -> str:
    return f"^{item}(,{item})*$"


def _field_names_pattern(resource_cls) -> str:
    """A regular expression for one field name usable in ``_sort``/``_fields``."""
    node = resource_cls.schema_instance()
    if getattr(node.Options, "preserve_unknown", False):
        return r"[A-Za-z0-9_][A-Za-z0-9_.]*"
    names = ["id", "last_modified"]
    for child in node.children:
        nested = r"(\.[A-Za-z0-9_]+)*" if isinstance(child.typ, colander.Mapping) else ""
        names.append(child.name + nested)
    return "(" + "|".join(names) + ")"


def list_parameters(resource_cls) -> list[dict]:
    """The querystring parameters of a list (or collection delete) request."""
    node = resource_cls.schema_instance()
    field = _field_names_pattern(resource_cls)
    timestamp = {"type": "string", "pattern": _TIMESTAMP}
    params = [
        _query("_limit", {"type": "integer", "minimum": 1}, "Most records per page."),
        _query("_sort", {"type": "string", "pattern": _comma_list(f"[-+]?{field}")},
               "Comma-separated fields, '-' for descending."),
        _query("_since", timestamp, "Only changes after this timestamp (tombstones included)."),
        _query("_before", timestamp, "Only changes before this timestamp."),
        _query("_fields", {"type": "string", "pattern": f"^({field}(,{field})*)?$"},
               "Comma-separated fields to return."),
    ]
    fields = {"id": "string", "last_modified": "integer"}
    for child in node.children:
        kind = colander_to_json_schema(child, for_response=True).get("type")
        if kind in ("string", "integer", "number", "boolean"):
            fields[child.name] = kind
    lists = {"string": {"type": "string"},
             "integer": {"type": "string", "pattern": _comma_list(_INT)},
             "number": {"type": "string", "pattern": _comma_list(_NUM)},
             "boolean": {"type": "string", "pattern": _comma_list(_BOOL)}}
    for name, kind in fields.items():
        schema = {"type": kind, **(_INT64 if kind in ("integer", "number") else {})}
        params.append(_query(name, schema, f"Records whose {name} equals the value."))
        for op in _PREFIXES:
            if op in (COMPARISON.IN, COMPARISON.EXCLUDE):
                what = "one of" if op is COMPARISON.IN else "none of"
                params.append(_query(op.value + name, lists[kind],
                                     f"Records whose {name} is {what} the values (comma-separated)."))
            else:
                params.append(_query(op.value + name, schema,
                                     f"Records whose {name} is {op.name.lower()} the value."))
    return params


def token_parameter() -> dict:
    """``_token``: opaque, so no schema can tell a valid one."""
    return _query("_token", {"type": "string"}, "The continuation token of a Next-Page URL (opaque).")


def _query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _header(name, description, schema=None):
    return {"name": name, "in": "header", "required": False, "schema": schema or {"type": "string"},
            "description": description}


_PRECONDITION = {"type": "string", "pattern": f'^("{_INT}"|{_INT}|\\*)$'}
_PRECONDITIONS = [
    _header("If-Match", 'Only if the current timestamp is this one ("1234") or, with *, if it exists.',
            _PRECONDITION),
    _header("If-None-Match", 'Only if the current timestamp is not this one or, with *, if it does not exist.',
            _PRECONDITION),
]


def _error(description):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


ERROR_DESCRIPTIONS = {
    "400": "Invalid parameters, body or header (errno 106, 107, 109, 110)",
    "401": "Authentication missing or invalid (errno 104, 105)",
    "403": "Not allowed (errno 121)",
    "404": "Record not found (errno 111)",
    "405": "Read-only mode (errno 115)",
    "406": "The client does not accept JSON",
    "409": "Conflict with a unique field (errno 122)",
    "410": "The service has reached its end of life (errno 202)",
    "411": "Content-Length required (errno 112)",
    "412": "A precondition failed (errno 114)",
    "413": "Request body too large (errno 113)",
    "415": "The body is not JSON",
    "503": "A backend is unavailable (errno 201), see Retry-After",
}


def error_responses(codes) -> dict:
    """Responses for the given error status codes (the protocol's error body)."""
    return {code: _error(ERROR_DESCRIPTIONS[code]) for code in codes}


def _headers(*names, required=()):
    schemas = {"Total-Records": {"type": "string", "pattern": "^[0-9]+$"}}
    return {name: {"schema": schemas.get(name, {"type": "string"}), "required": name in required}
            for name in names}


def _json(schema, description, headers=None):
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def resource_operations(resource_cls, registry, kind: str, common_errors) -> dict:
    """The operations of a resource's ``collection`` or ``record`` path."""
    title = resource_cls.name.title().replace("-", "").replace("_", "")
    ref = {"$ref": f"#/components/schemas/{title}"}
    one = {"type": "object", "required": ["data"], "properties": {"data": ref}}
    many = {"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": ref}}}
    permissions = {"type": "object", "additionalProperties": False,
                   "properties": {"read": {"type": "array", "items": {"type": "string", "minLength": 1}},
                                  "write": {"type": "array", "items": {"type": "string", "minLength": 1}}}}

    shareable = "permissions" in getattr(resource_cls, "body_members", ())

    def body(schema_name, required=True):
        schema = {"type": "object", "additionalProperties": False,
                  "properties": {"data": {"$ref": f"#/components/schemas/{schema_name}"}}}
        if shareable:
            schema["properties"]["permissions"] = permissions
        if required:
            schema["required"] = ["data"]
        content = {"application/json": {"schema": schema}}
        return {"required": required, "content": content}

    def errors(*codes, writes=False):
        codes = ("400", "401", "403", "406", "412", *codes, *common_errors)
        if writes:
            codes += ("405", "411", "413", "415")
        return error_responses(sorted(set(codes)))

    listed = _headers("ETag", "Last-Modified", "Total-Records", "Next-Page", required=("ETag", "Total-Records"))
    tagged = _headers("ETag", required=("ETag",))
    not_modified = {"304": {"description": "Not modified since If-None-Match", "headers": _headers("ETag")}}
    name = resource_cls.name
    record_ops = {"Get": "get", "Replace": "put", "Modify": "patch", "Delete": "delete"}
    links = {f"{label}{title}": {"operationId": f"{verb}_{name.replace('-', '_')}_record",
                                 "parameters": {"id": "$response.body#/data/id"}}
             for label, verb in record_ops.items()}
    created = _json(one, "Created", tagged)
    created["links"] = links
    if kind == "collection":
        params = list_parameters(resource_cls) + [token_parameter()]
        return {
            "GET": {"summary": f"List {name} records", "parameters": params + _PRECONDITIONS,
                    "responses": {"200": _json(many, "The records", listed), **not_modified, **errors()}},
            "POST": {"summary": f"Create a {name} record", "parameters": _PRECONDITIONS,
                     "requestBody": body(f"{title}Data"),
                     "responses": {"200": _json(one, "Already existed (same id)", tagged),
                                   "201": created, **errors(writes=True)}},
            "DELETE": {"summary": f"Delete the caller's {name} records", "parameters": params + _PRECONDITIONS,
                       "responses": {"200": _json(many, "The tombstones"), **errors(writes=True)}},
        }
    record_id = {"name": "id", "in": "path", "required": True, "schema": _id_schema(resource_cls, registry)}
    fields = _query("_fields", {"type": "string"}, "Comma-separated fields to return.")
    behavior = _header("Response-Behavior", "full (default), light or diff (any case)",
                       {"type": "string", "pattern": "^({})$".format(
                           "|".join(case_insensitive(b) for b in ("full", "light", "diff")))})
    return {
        "GET": {"summary": f"Get a {name} record", "parameters": [record_id, fields] + _PRECONDITIONS,
                "responses": {"200": _json(one, "The record", _headers("ETag", "Last-Modified", required=("ETag",))),
                              **not_modified, **errors("404")}},
        "PUT": {"summary": f"Replace or create a {name} record", "parameters": [record_id] + _PRECONDITIONS,
                "requestBody": body(f"{title}Put"),
                "responses": {"200": _json(one, "Replaced", tagged), "201": created,
                              **errors(writes=True)}},
        "PATCH": {"summary": f"Modify a {name} record", "parameters": [record_id, behavior] + _PRECONDITIONS,
                  "requestBody": body(f"{title}Patch", required=False),
                  "responses": {"200": _json(one, "The record (or the part asked by Response-Behavior)", tagged),
                                **errors("404", writes=True)}},
        "DELETE": {"summary": f"Delete a {name} record", "parameters": [record_id] + _PRECONDITIONS,
                   "responses": {"200": _json(one, "The tombstone", tagged), **errors("404", writes=True)}},
    }


# -- the document ---------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _openapi_path(key: str) -> str:
    """A Pyramid route pattern as an OpenAPI path (``{id:\\d+}`` → ``{id}``)."""
    path = key if key.startswith("/") else "/" + key
    return _PLACEHOLDER.sub(lambda m: "{" + m.group(1).strip() + "}", path)


def _with_path_parameters(operation: dict, path: str) -> dict:
    """Declare every ``{name}`` of ``path`` that ``operation`` leaves undeclared."""
    declared = {p.get("name") for p in operation.get("parameters", ()) if p.get("in") == "path"}
    missing = [name for name in _PLACEHOLDER.findall(path) if name not in declared]
    if missing:
        operation["parameters"] = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                                   for name in missing] + list(operation.get("parameters", ()))
    return operation


def _operation_id(service_name: str, verb: str) -> str:
    return f"{verb.lower()}_{service_name.replace('-', '_')}"


def _head_from_get(get: dict) -> dict:
    head = {k: v for k, v in get.items() if k not in ("responses", "operationId")}
    head["summary"] = get.get("summary", "") + " (headers only)"
    responses = {}
    for code, response in get["responses"].items():
        responses[code] = {k: v for k, v in response.items() if k != "content"}
    head["responses"] = responses
    return head


def build_openapi(registry, server_url: str | None = None) -> dict:
    """Return the OpenAPI 3.1 document of the application of ``registry``."""
    settings = registry.settings
    resources = dict(getattr(registry, "cliquet_resources", {}))
    by_service = {}
    for name, cls in resources.items():
        by_service[f"{name}-collection"] = (cls, "collection")
        by_service[f"{name}-record"] = (cls, "record")
    common_errors = ["503"]
    if settings.get("cliquet.eos"):
        common_errors.append("410")

    schemas = {"Error": ERROR_SCHEMA}
    for cls in resources.values():
        schemas.update(record_schemas(cls, registry))

    paths: dict = {}
    for key, service in sorted(getattr(registry, "cornice_services", {}).items()):
        if key.startswith("__cornice"):
            continue
        path = _openapi_path(key)
        methods = []
        for method, _view, _args in service.definitions:
            method = method.upper()
            if method in _VERBS and method not in methods:
                methods.append(method)
        if service.name in by_service:
            cls, kind = by_service[service.name]
            operations = resource_operations(cls, registry, kind, common_errors)
        else:
            operations = {m: generic_operation(service, m, registry, common_errors) for m in methods}
        item = paths.setdefault(path, {})
        for method in methods:
            operation = operations.get(method) or (
                _head_from_get(operations["GET"]) if method == "HEAD" and "GET" in operations else None)
            if operation is None:
                operation = generic_operation(service, method, registry, common_errors)
            operation = _with_path_parameters(dict(operation), path)
            operation["operationId"] = _operation_id(service.name, method)
            if service.description and "description" not in operation:
                operation["description"] = str(service.description)
            item[_VERBS[method]] = operation

    project = settings.get("cliquet.project_name") or "Cliquet service"
    document = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": project,
            "version": str(settings.get("cliquet.project_version") or settings.get("cliquet.http_api_version")),
            "description": f"HTTP API of {project}, a Cliquet service "
                           f"(API version {settings.get('cliquet.http_api_version')}).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basicAuth": []}],
    }
    if settings.get("cliquet.project_docs"):
        document["externalDocs"] = {"url": settings["cliquet.project_docs"]}
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document
