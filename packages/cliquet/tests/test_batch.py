"""POST /v1/batch."""

import pytest

from cliquet.testing.app import make_app

URL = "/v1/batch"


def test_batch_runs_each_request_in_order(app, headers):
    body = {"defaults": {"method": "POST", "path": "/articles"},
            "requests": [{"body": {"data": {"title": f"t{i}"}}} for i in range(3)]
            + [{"method": "GET", "path": "/v1/articles?_sort=title"}]}
    resp = app.post_json(URL, body, headers=headers)
    responses = resp.json["responses"]
    assert [r["status"] for r in responses] == [201, 201, 201, 200]
    assert responses[0]["path"] == "/v1/articles"
    assert [r["title"] for r in responses[3]["body"]["data"]] == ["t0", "t1", "t2"]
    assert responses[3]["headers"]["Total-Records"] == "3"


def test_batch_defaults_headers_are_merged(app, headers):
    body = {"defaults": {"headers": headers},
            "requests": [{"path": "/articles"}, {"path": "/articles", "headers": {"Authorization": "Basic eDp5"}}]}
    responses = app.post_json(URL, body).json["responses"]
    assert [r["status"] for r in responses] == [200, 200]


def test_batch_inherits_authorization(app, headers):
    responses = app.post_json(URL, {"requests": [{"path": "/"}]}, headers=headers).json["responses"]
    assert responses[0]["body"]["user"]["id"].startswith("basicauth:")


def test_errors_are_reported_in_place_and_do_not_undo_successes(app, headers):
    body = {"requests": [
        {"method": "POST", "path": "/articles", "body": {"data": {"title": "kept"}}},
        {"method": "POST", "path": "/articles", "body": {"data": {"score": "invalid"}}},
        {"method": "GET", "path": "/articles/not-an-id"},
        {"method": "PUT", "path": "/articles/00000000-0000-4000-8000-000000000000",
         "headers": {"If-Match": '"1"'}, "body": {"data": {"title": "x"}}},
        {"method": "POST", "path": "/articles", "body": {"data": {"title": "also kept"}}},
    ]}
    responses = app.post_json(URL, body, headers=headers).json["responses"]
    assert [r["status"] for r in responses] == [201, 400, 400, 412, 201]
    assert responses[1]["body"]["errno"] == 107
    titles = {r["title"] for r in app.get("/v1/articles", headers=headers).json["data"]}
    assert titles == {"kept", "also kept"}


def test_batch_limit(headers):
    app = make_app(batch_max_requests="2")
    resp = app.post_json(URL, {"requests": [{"path": "/"}] * 3}, headers=headers, status=400)
    assert resp.json["errno"] == 107 and resp.json["details"][0]["name"] == "requests"
    assert app.get("/v1/").json["settings"]["batch_max_requests"] == 2


@pytest.mark.parametrize("body,name", [
    ({}, "requests"),
    ({"requests": []}, "requests"),
    ({"requests": "x"}, "requests"),
    ({"requests": [1]}, "requests.0"),
    ({"requests": [{"method": "POST"}]}, "requests.0.path"),
    ({"requests": [{"path": "articles"}]}, "requests.0.path"),
    ({"requests": [{"path": "/", "method": "BREW"}]}, "requests.0.method"),
    ({"requests": [{"path": "/", "colour": 1}]}, "requests.0.colour"),
    ({"requests": [{"path": "/", "headers": {"a": 1}}]}, "requests.0.headers"),
    ({"requests": [{"path": "/batch"}]}, "requests.0.path"),
    ({"requests": [{"path": "/v1/batch"}]}, "requests.0.path"),
    ({"defaults": 3, "requests": [{"path": "/"}]}, "defaults"),
    ({"requests": [{"path": "/"}], "more": 1}, "more"),
])
def test_invalid_batches(app, headers, body, name):
    resp = app.post_json(URL, body, headers=headers, status=400)
    assert resp.json["errno"] == 107
    assert resp.json["details"][0]["name"] == name


def test_batch_malformed_json(app, headers):
    resp = app.post(URL, "{nope", headers={**headers, "Content-Type": "application/json"}, status=400)
    assert resp.json["errno"] == 106


def test_batch_sub_request_errors_are_json(app, headers):
    responses = app.post_json(URL, {"requests": [{"path": "/nothing"}]}, headers=headers).json["responses"]
    assert responses[0]["status"] == 404 and responses[0]["body"]["errno"] == 111
