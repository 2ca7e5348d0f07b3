"""Settings: what a configuration gets wrong fails the start-up, naming the setting."""

from __future__ import annotations

import pytest
from pyramid.exceptions import ConfigurationError

from cliquet.authentication import BasicAuthSecurityPolicy
from cliquet_oidc.policy import MultiSecurityPolicy, OIDCSecurityPolicy, bearer_token
from cliquet_oidc.testing import make_app

ISSUER = "http://127.0.0.1:9/realms/nowhere"  # never reached by these tests


def policy(app):
    from pyramid.interfaces import ISecurityPolicy

    return app.app.registry.getUtility(ISecurityPolicy)


def test_missing_issuer():
    with pytest.raises(ConfigurationError, match="oidc.keycloak.issuer"):
        make_app({"audience": "x"})


def test_missing_audience():
    with pytest.raises(ConfigurationError, match="oidc.keycloak.audience"):
        make_app({"issuer": ISSUER})


def test_client_id_is_the_default_audience():
    app = make_app({"issuer": ISSUER, "client_id": "web"})
    assert policy(app).policies[1].providers[0].config.audience == ["web"]


def test_typo_in_a_provider_setting():
    with pytest.raises(ConfigurationError, match="oidc.keycloak.isuer"):
        make_app({"issuer": ISSUER, "audience": "x", "isuer": ISSUER})


@pytest.mark.parametrize("algorithms", ["HS256", "none", "RS256 HS512", ""])
def test_symmetric_algorithms_refused(algorithms):
    with pytest.raises(ConfigurationError, match="algorithms"):
        make_app({"issuer": ISSUER, "audience": "x", "algorithms": algorithms})


def test_bad_provider_name():
    with pytest.raises(ConfigurationError, match="provider name"):
        make_app({"issuer": ISSUER, "audience": "x"}, name="Not:Good")


def test_introspection_needs_credentials():
    with pytest.raises(ConfigurationError, match="introspection_client_id"):
        make_app({"issuer": ISSUER, "audience": "x", "validation": "introspection"})


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("CLIQUET_OIDC_KEYCLOAK_AUDIENCE", "from-env other")
    app = make_app({"issuer": ISSUER, "audience": "x"})
    assert policy(app).policies[1].providers[0].config.audience == ["from-env", "other"]


def test_beside_basic_by_default_and_alone_on_request():
    combined = policy(make_app({"issuer": ISSUER, "audience": "x"}))
    assert isinstance(combined, MultiSecurityPolicy)
    assert [type(p) for p in combined.policies] == [BasicAuthSecurityPolicy, OIDCSecurityPolicy]
    alone = policy(make_app({"issuer": ISSUER, "audience": "x"}, oidc_combine="false"))
    assert isinstance(alone, OIDCSecurityPolicy)
    response = make_app({"issuer": ISSUER, "audience": "x"}, oidc_combine="false").get("/v1/articles", status=401)
    assert response.headers.getall("WWW-Authenticate") == ['Bearer realm="testapp"']


def test_included_after_cliquet():
    import webtest
    from pyramid.config import Configurator

    import cliquet
    from cliquet.testing.app import TEST_SECRET, Article

    config = Configurator(settings={"cliquet.userid_hmac_secret": TEST_SECRET, "cliquet.schema_check": "migrate",
                                    "cliquet.oidc_providers": "p", "cliquet.oidc.p.issuer": ISSUER,
                                    "cliquet.oidc.p.audience": "x"})
    cliquet.initialize(config, "0.0.1", project_name="late")
    config.include("cliquet_oidc")
    config.include("cliquet_oidc")  # twice: harmless
    config.add_resource(Article)
    app = webtest.TestApp(config.make_wsgi_app())
    assert isinstance(policy(app), MultiSecurityPolicy)
    assert app.get("/v1/").json["capabilities"]["openid"]["providers"][0]["issuer"] == ISSUER


@pytest.mark.parametrize(("header", "token"), [
    (None, None), ("", None), ("Basic abc", None), ("Bearer", ""), ("Bearer  x ", "x"), ("bearer y", "y"),
    ("Bearerx", None),
])
def test_bearer_token(header, token):
    assert bearer_token(header) == token


def test_no_provider_is_valid():
    app = make_app(oidc_providers="")
    app.get("/v1/articles", headers={"Authorization": "Bearer abc"}, status=401)
