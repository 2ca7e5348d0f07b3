"""What docs/protocol.rst promises and the service once did not keep:
``If-None-Match: *`` on ``POST`` (create-only, per record), the documented
batch example, and a ``message`` in every error body (405 included)."""

import pytest

from cliquet.testing.app import make_app

URL = "/v1/articles"
RECORD_ID = "9b2c1e6a-0e0b-4f7c-9c51-7d1e8e3c2a10"
CREATE_ONLY = {"If-None-Match": "*"}


def test_post_if_none_match_star_creates_a_new_record(app, headers):
    app.post_json(URL, {"data": {"title": "an existing one"}}, headers=headers)  # the collection exists
    resp = app.post_json(URL, {"data": {"title": "new"}}, headers={**headers, **CREATE_ONLY}, status=201)
    assert resp.json["data"]["title"] == "new"


def test_post_if_none_match_star_with_a_new_id_creates_it(app, headers):
    app.post_json(URL, {"data": {"title": "an existing one"}}, headers=headers)
    body = {"data": {"id": RECORD_ID, "title": "new"}}
    assert app.post_json(URL, body, headers={**headers, **CREATE_ONLY}, status=201).json["data"]["id"] == RECORD_ID


def test_post_if_none_match_star_with_an_existing_id_is_412(app, headers):
    created = app.post_json(URL, {"data": {"id": RECORD_ID, "title": "first"}}, headers=headers).json["data"]
    resp = app.post_json(URL, {"data": {"id": RECORD_ID, "title": "second"}}, headers={**headers, **CREATE_ONLY},
                         status=412)
    assert resp.json["errno"] == 114 and resp.json["details"]["existing"] == created
    assert app.get(f"{URL}/{RECORD_ID}", headers=headers).json["data"] == created


def test_post_if_match_still_guards_the_collection(app, headers):
    first = app.post_json(URL, {"data": {"title": "a"}}, headers=headers)
    etag = app.get(URL, headers=headers).headers["ETag"]
    app.post_json(URL, {"data": {"title": "b"}}, headers={**headers, "If-Match": etag}, status=201)
    resp = app.post_json(URL, {"data": {"title": "c"}}, headers={**headers, "If-Match": etag}, status=412)
    assert resp.json["errno"] == 114
    assert first.status_code == 201
    assert len(app.get(URL, headers=headers).json["data"]) == 2


def test_the_documented_batch_example(app, headers):
    """docs/protocol.rst, section Batch: the same body, the documented answers."""
    body = {
        "defaults": {"method": "POST", "path": "/articles", "headers": {"If-None-Match": "*"}},
        "requests": [
            {"body": {"data": {"title": "one"}}},
            {"body": {"data": {"id": RECORD_ID, "title": "two"}}},
            {"method": "PUT", "path": "/articles/5b8e2b6a-64f4-4a5d-9e2a-0c6c1b2f3d4e",
             "body": {"data": {"title": "three"}}},
        ],
    }
    first = app.post_json("/v1/batch", body, headers=headers).json["responses"]
    assert [r["status"] for r in first] == [201, 201, 201]
    again = app.post_json("/v1/batch", body, headers=headers).json["responses"]
    assert [r["status"] for r in again] == [201, 412, 412]
    assert again[1]["body"]["errno"] == 114
    titles = sorted(r["title"] for r in app.get(URL, headers=headers).json["data"])
    assert titles == ["one", "one", "three", "two"]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_405_has_a_message_naming_the_allowed_methods(app, headers, method):
    resp = app.request(URL, method=method, body=b'{"data": {}}',
                       headers={**headers, "Content-Type": "application/json"}, status=405)
    body = resp.json
    assert body["code"] == 405 and body["errno"] == 115 and body["error"] == "Method Not Allowed"
    assert body["message"].startswith("Method not allowed")
    assert "GET" in body["message"] and "POST" in body["message"]


def test_every_error_has_a_message(headers):
    app = make_app(readonly="true")
    for resp in (app.get("/v1/nothing", status=404), app.put_json(URL, {}, headers=headers, status=405),
                 app.post_json(URL, {"data": {"title": "x"}}, headers=headers, status=405),
                 app.get(URL, status=401)):
        assert resp.json["message"], resp.json
