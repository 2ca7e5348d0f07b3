"""Hello, heartbeats, version, redirects, CORS, Backoff, end of service."""

import datetime
import json

import pytest

from cliquet.storage.exceptions import BackendError
from cliquet.testing.app import basic_auth, make_app


def test_hello_anonymous(app):
    data = app.get("/v1/").json
    assert data["project_name"] == "testapp"
    assert data["project_version"] == "0.0.1"
    assert data["http_api_version"] == "1.0"
    assert data["url"] == "http://localhost/v1/"
    assert data["settings"] == {"batch_max_requests": 25, "readonly": False}
    assert data["capabilities"] == {}
    assert "user" not in data


def test_hello_authenticated_shows_user_id(app, headers):
    data = app.get("/v1/", headers=headers).json
    assert data["user"]["id"].startswith("basicauth:")


def test_capabilities_declared_by_plugins():
    from pyramid.config import Configurator

    import cliquet
    from cliquet.testing.app import TEST_SECRET
    import webtest

    config = Configurator(settings={"cliquet.userid_hmac_secret": TEST_SECRET})
    cliquet.initialize(config, "1.0")
    config.add_api_capability("search", description="Search records", url="https://example.com")
    app = webtest.TestApp(config.make_wsgi_app())
    assert app.get("/v1/").json["capabilities"] == {
        "search": {"description": "Search records", "url": "https://example.com"}}


@pytest.mark.parametrize("path", ["/v1/__heartbeat__", "/__heartbeat__"])
def test_heartbeat_ok(app, path):
    assert app.get(path).json == {"storage": True, "cache": True, "permission": True}


def test_heartbeat_reports_failing_backend_with_503(app):
    app.app.registry.cache.heartbeat = lambda: False
    resp = app.get("/__heartbeat__", status=503)
    assert resp.json == {"storage": True, "cache": False, "permission": True}


def test_heartbeat_check_that_raises_counts_as_failed(app):
    def broken():
        raise RuntimeError("down")

    app.app.registry.permission.heartbeat = broken
    assert app.get("/__heartbeat__", status=503).json["permission"] is False


@pytest.mark.parametrize("path", ["/v1/__lbheartbeat__", "/__lbheartbeat__"])
def test_lbheartbeat(app, path):
    assert app.get(path).json == {}


def test_version_from_settings(app):
    data = app.get("/__version__").json
    assert data["name"] == "testapp" and data["version"] == "0.0.1"


def test_version_from_file(tmp_path):
    path = tmp_path / "version.json"
    path.write_text(json.dumps({"source": "https://x", "version": "9", "commit": "abc", "build": "1"}))
    app = make_app(version_json_path=str(path))
    assert app.get("/v1/__version__").json["commit"] == "abc"


def test_redirect_without_version_prefix(app):
    resp = app.get("/articles?_limit=2", status=307)
    assert resp.headers["Location"] == "http://localhost/v1/articles?_limit=2"


def test_redirect_can_be_disabled():
    app = make_app(version_prefix_redirect_enabled="false")
    app.get("/articles", status=404)


def test_unknown_version_is_404_errno_116(app):
    resp = app.get("/v2/articles", status=404)
    assert resp.json["errno"] == 116


def test_cors_headers_on_success_and_errors(app, headers):
    origin = {"Origin": "https://app.example.com"}
    for resp in (app.get("/v1/", headers=origin), app.get("/v1/articles", headers=origin, status=401),
                 app.get("/v1/nothing", headers=origin, status=404)):
        assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert "Next-Page" in resp.headers["Access-Control-Expose-Headers"]


def test_cors_restricted_origins():
    app = make_app(cors_origins="https://good.example")
    assert "Access-Control-Allow-Origin" not in app.get("/v1/", headers={"Origin": "https://evil.example"}).headers
    assert app.get("/v1/", headers={"Origin": "https://good.example"}).headers[
        "Access-Control-Allow-Origin"] == "https://good.example"


def test_cors_preflight(app):
    resp = app.options("/v1/articles", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert resp.status_code == 200
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_backoff_header():
    app = make_app(backoff="60")
    assert app.get("/v1/").headers["Backoff"] == "60"


def test_backend_error_is_503_with_retry_after(headers):
    app = make_app(retry_after_seconds="17")

    def fail(*args, **kwargs):
        raise BackendError(message="connection refused")

    app.app.registry.storage.get_all = fail
    resp = app.get("/v1/articles", headers=headers, status=503)
    assert resp.json["errno"] == 201
    assert resp.headers["Retry-After"] == "17"


def test_end_of_service_alert_before_date():
    tomorrow = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
    app = make_app(eos=tomorrow, eos_message="Bye", eos_url="https://example.com/eos")
    alert = json.loads(app.get("/v1/").headers["Alert"])
    assert alert == {"code": "soft-eol", "message": "Bye", "url": "https://example.com/eos"}


def test_end_of_service_410_after_date():
    app = make_app(eos=datetime.date.today().isoformat(), eos_message="Gone")
    resp = app.get("/v1/articles", headers=basic_auth(), status=410)
    assert resp.json["errno"] == 202
    assert json.loads(resp.headers["Alert"])["code"] == "hard-eol"


@pytest.mark.parametrize("path,location", [
    ("/v1", "http://localhost/v1/"),
    ("/v1/articles/", "http://localhost/v1/articles"),
    ("/v1/articles/?_limit=1", "http://localhost/v1/articles?_limit=1"),
])
def test_trailing_slash_redirects(app, path, location):
    assert app.get(path, status=307).headers["Location"] == location


def test_request_principals_include_groups(app, headers):
    from pyramid.request import Request

    userid = app.get("/v1/", headers=headers).json["user"]["id"]
    app.app.registry.permission.add_user_principal(userid, "group:editors")
    request = Request.blank("/v1/", headers=headers)
    request.registry = app.app.registry
    from cliquet.authentication import request_principals

    assert request_principals(request) == ["system.Everyone", "system.Authenticated", userid, "group:editors"]
