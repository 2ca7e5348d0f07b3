"""What ``pyramid.includes = cliquet_admin`` serves: the console's page and
assets at /v1/admin/, with its security headers, and 404s for anything else."""

import re
from pathlib import Path

import pytest
import webtest
from pyramid.config import Configurator

import cliquet
import cliquet_admin
from cliquet.testing.app import TEST_SECRET, Article, basic_auth

STATIC = Path(cliquet_admin.__file__).parent / "static"


def make_app(includes="cliquet_admin", include_after=False, **settings):
    """A Cliquet app including the console (from pyramid.includes, or
    config.include after cliquet.initialize)."""
    raw = {"cliquet.userid_hmac_secret": TEST_SECRET, "cliquet.schema_check": "migrate"}
    if includes and not include_after:
        raw["pyramid.includes"] = includes
    raw.update({f"cliquet.{k}": v for k, v in settings.items()})
    config = Configurator(settings=raw)
    cliquet.initialize(config, "0.0.1", project_name="testapp")
    config.add_resource(Article)
    if include_after:
        config.include("cliquet_admin")
        config.include("cliquet_admin")  # twice is harmless
    return webtest.TestApp(config.make_wsgi_app())


def csp(response) -> dict:
    """The Content-Security-Policy header as {directive: [sources]}."""
    value = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in value.split(";") if part.strip()}


@pytest.fixture
def app():
    return make_app()


def test_console_page_is_served_with_a_base_under_admin(app):
    # The core sends /v1/admin/ to /v1/admin; the page is there.
    redirect = app.get("/v1/admin/", status=307)
    assert redirect.headers["Location"].endswith("/v1/admin")
    page = app.get("/v1/admin", status=200)
    assert page.content_type == "text/html"
    assert '<base href="/v1/admin/">' in page.text
    assert page.headers["Cache-Control"] == "no-cache"
    # The page needs no credentials.
    assert "Authorization" not in page.request.headers


def test_strict_content_security_policy(app):
    policy = csp(app.get("/v1/admin"))
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    for sources in policy.values():
        assert not any(s in ("'unsafe-inline'", "'unsafe-eval'", "*") for s in sources)
    response = app.get("/v1/admin")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_built_page_has_no_inline_script_or_style():
    # The CSP forbids them: the built page must not rely on any.
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html
    assert not re.search(r"\son\w+=", html)


def test_every_built_asset_is_served_with_its_type(app):
    assets = [p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert "index.html" in assets
    for name in assets:
        response = app.get(f"/v1/admin/{name}", status=200)
        assert response.body == (STATIC / name).read_bytes() or name == "index.html"
        assert "Content-Security-Policy" in response.headers
        if name.endswith(".js"):
            assert response.headers["Content-Type"].startswith("text/javascript")
            assert "immutable" in response.headers["Cache-Control"]
        if name.endswith(".css"):
            assert response.headers["Content-Type"].startswith("text/css")
    # The page references only files that exist.
    page = app.get("/v1/admin").text
    for ref in re.findall(r'(?:src|href)="\./([^"]+)"', page):
        app.get(f"/v1/admin/{ref}", status=200)


@pytest.mark.parametrize("path", [
    "/v1/admin/nope.js",
    "/v1/admin/assets/nope.js",
    "/v1/admin/../__init__.py",
    "/v1/admin/%2e%2e/__init__.py",
    "/v1/admin/..%2f__init__.py",
    "/v1/admin/__init__.py",
    "/v1/admin/assets",
])
def test_unknown_files_are_404_json(app, path):
    response = app.get(path, status=404, expect_errors=True)
    assert response.json["errno"] == 111


def test_writes_are_refused(app):
    app.post("/v1/admin", status=405, expect_errors=True)
    app.put("/v1/admin/index.html", status=405, expect_errors=True)


def test_the_api_is_untouched(app):
    app.get("/v1/articles", headers=basic_auth(), status=200)
    app.get("/v1/", status=200)


def test_included_after_initialize_and_twice():
    app = make_app(include_after=True)
    assert '<base href="/v1/admin/">' in app.get("/v1/admin").text


def test_disabled_by_setting():
    app = make_app(admin_enabled="false")
    app.get("/v1/admin", status=404)


def test_other_api_version_prefix(monkeypatch):
    monkeypatch.delenv("CLIQUET_HTTP_API_VERSION", raising=False)
    app = make_app(http_api_version="2.0")
    assert '<base href="/v2/admin/">' in app.get("/v2/admin").text


def test_extra_connect_sources_and_openid_providers():
    app = make_app(admin_connect_src="https://idp.example.com https://bad.example.com;script-src")
    registry = app.app.registry
    capabilities = registry.__dict__.setdefault("api_capabilities", {})
    capabilities["openid"] = {"providers": [
        {"name": "kc", "issuer": "http://127.0.0.1:8180/realms/cliquet",
         "token_endpoint": "http://127.0.0.1:8180/realms/cliquet/protocol/openid-connect/token"},
        "not a provider", {"issuer": "javascript:alert(1)"}, {"issuer": "https://a b; script-src *"},
    ]}
    sources = csp(app.get("/v1/admin"))["connect-src"]
    assert sources == ["'self'", "https://idp.example.com", "http://127.0.0.1:8180"]
    # A capability of another shape is ignored.
    capabilities["openid"] = {"providers": "nope"}
    assert csp(app.get("/v1/admin"))["connect-src"] == ["'self'", "https://idp.example.com"]


def test_openid_origins_ignores_odd_shapes():
    assert cliquet_admin.openid_origins({}) == []
    assert cliquet_admin.openid_origins({"openid": None}) == []
    assert cliquet_admin.openid_origins({"openid": {"providers": [None, 3, {"issuer": 4}]}}) == []
