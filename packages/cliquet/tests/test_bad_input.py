"""Bad input: each case gets its status and errno, details naming the field,
never a 500 — and nothing is written."""

import uuid

import pytest

from cliquet.testing.app import make_app

URL = "/v1/articles"


def assert_error(resp, code, errno, location=None, name=None):
    body = resp.json
    assert resp.status_code == code
    assert body["code"] == code and body["errno"] == errno
    assert isinstance(body["error"], str) and body["error"]
    if location is not None:
        assert any(d["location"] == location and (name is None or d["name"] == name) for d in body["details"]), body


@pytest.fixture
def post(app, headers):
    def post(body, content_type="application/json", extra=None):
        payload = body if isinstance(body, (bytes, str)) else __import__("json").dumps(body)
        return app.post(URL, payload, headers={**headers, "Content-Type": content_type, **(extra or {})},
                        status="*")
    return post


def nothing_written(app, headers):
    assert app.get(URL, headers=headers).json["data"] == []


def test_malformed_json(app, headers, post):
    assert_error(post('{"data": {"title": '), 400, 106, "body")
    nothing_written(app, headers)


@pytest.mark.parametrize("body", ["[]", '"a string"', "42", "null"])
def test_body_not_an_object(app, headers, post, body):
    assert_error(post(body), 400, 107, "body")
    nothing_written(app, headers)


@pytest.mark.parametrize("data", [[], "x", 3, None])
def test_data_not_an_object(app, headers, post, data):
    assert_error(post({"data": data}), 400, 107, "body", "data")


def test_missing_data(post):
    assert_error(post({"title": "x"}), 400, 107, "body")


@pytest.mark.parametrize("field,value", [
    ("title", 42), ("title", None), ("score", "high"), ("score", True), ("published", "yes"),
    ("tags", "a,b"), ("tags", [1, 2]), ("url", "not a url"),
])
def test_wrong_field_types(app, headers, post, field, value):
    data = {"title": "ok", field: value}
    resp = post({"data": data})
    assert_error(resp, 400, 107, "body")
    assert any(d["name"].startswith(f"data.{field}") for d in resp.json["details"])
    nothing_written(app, headers)


def test_missing_required_field(post):
    assert_error(post({"data": {"score": 1}}), 400, 107, "body", "data.title")


def test_string_past_max_length(post):
    assert_error(post({"data": {"title": "x" * 513}}), 400, 107, "body", "data.title")


def test_unknown_field(app, headers, post):
    assert_error(post({"data": {"title": "x", "colour": "red"}}), 400, 107, "body", "data.colour")
    assert_error(post({"data": {"title": "x"}, "extra": 1}), 400, 107, "body", "extra")
    nothing_written(app, headers)


def test_oversized_body(headers):
    app = make_app(max_request_body_size=1000)
    resp = app.post_json(URL, {"data": {"title": "x" * 2000}}, headers=headers, status=413)
    assert_error(resp, 413, 113)


def test_non_json_content_type_is_415(post):
    assert_error(post("title=x", content_type="application/x-www-form-urlencoded"), 415, 107, "header",
                 "Content-Type")


def test_unacceptable_accept_is_406(app, headers):
    resp = app.get(URL, headers={**headers, "Accept": "text/html"}, status=406)
    assert_error(resp, 406, 107, "header", "Accept")


@pytest.mark.parametrize("query,name", [
    ("_limit=abc", "_limit"), ("_limit=-1", "_limit"), ("_limit=0", "_limit"),
    ("_token=abc", "_token"), ("_sort=colour", "_sort"), ("_sort=-", "_sort"),
    ("_since=yesterday", "_since"), ("_before=1.5", "_before"),
    ("colour=red", "colour"), ("min_colour=1", "min_colour"), ("_unknown=1", "_unknown"),
    ("score=abc", "score"), ("published=maybe", "published"), ("in_score=1,x", "in_score"),
    ("last_modified=abc", "last_modified"), ("_fields=colour", "_fields"),
])
def test_invalid_querystring(app, headers, query, name):
    resp = app.get(f"{URL}?{query}", headers=headers, status=400)
    assert_error(resp, 400, 107, "querystring", name)


@pytest.mark.parametrize("bad_id", ["abc", "1234", "not-a-uuid-at-all-but-long-enough-xxxxx",
                                    "9B2C1E6A-0E0B-4F7C-9C51-7D1E8E3C2A10"])
@pytest.mark.parametrize("method", ["get", "delete"])
def test_invalid_ids(app, headers, bad_id, method):
    resp = getattr(app, method)(f"{URL}/{bad_id}", headers=headers, status=400)
    assert_error(resp, 400, 110, "path", "id")


def test_invalid_id_in_put_and_body(app, headers):
    assert_error(app.put_json(f"{URL}/abc", {"data": {"title": "x"}}, headers=headers, status=400), 400, 110)
    resp = app.post_json(URL, {"data": {"id": "abc", "title": "x"}}, headers=headers, status=400)
    assert_error(resp, 400, 110, "body", "data.id")


def test_unknown_url_is_json_404(app):
    assert_error(app.get("/v1/nothing-here", status=404), 404, 111)


def test_method_not_allowed_is_json_405(app, headers):
    resp = app.put_json(URL, {"data": {}}, headers=headers, status=405)
    assert_error(resp, 405, 115)


def test_anonymous_is_401_with_errno_104(app):
    resp = app.get(URL, status=401)
    assert_error(resp, 401, 104)
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("header", ["Basic !!!notbase64", "Basic " + "bm9jb2xvbg=="])
def test_malformed_credentials_are_401_with_errno_105(app, header):
    assert_error(app.get(URL, headers={"Authorization": header}, status=401), 401, 105)


def test_chunked_body_without_length_is_411(app, headers):
    resp = app.request(URL, method="POST", headers={**headers, "Transfer-Encoding": "chunked",
                                                    "Content-Type": "application/json"}, status=411)
    assert_error(resp, 411, 112)


def test_invalid_precondition_header(app, headers):
    resp = app.get(URL, headers={**headers, "If-None-Match": "yesterday"}, status=400)
    assert_error(resp, 400, 107, "header", "If-None-Match")


def test_unexpected_error_is_500_json_without_traceback(headers):
    from cliquet.resource import UserResource

    class Broken(UserResource):
        def collection_get(self):
            raise RuntimeError("boom: secret internals")

    app = make_app(resources=[Broken])
    resp = app.get("/v1/brokens", headers=headers, status=500)
    assert_error(resp, 500, 999)
    assert "secret" not in resp.text and "Traceback" not in resp.text
