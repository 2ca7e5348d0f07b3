"""The INI example of docs/authentication.rst, run as written against Keycloak."""

from __future__ import annotations

import configparser
import pathlib
import re

import pytest
import webtest
from pyramid.config import Configurator

import cliquet
from cliquet.testing.app import SharedArticle
from cliquet_oidc.testing import bearer

pytestmark = pytest.mark.services

DOC = pathlib.Path(__file__).resolve().parents[3] / "docs" / "authentication.rst"


def ini_example() -> dict:
    """The settings of the first ``ini`` block of the page."""
    text = DOC.read_text()
    block = re.search(r"\.\. code-block:: ini\n\n((?:    .*\n|\n)+)", text).group(1)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string("\n".join(line[4:] for line in block.splitlines()))
    return dict(parser["app:main"])


def test_the_documented_settings(issuer, token_for):
    settings = ini_example()
    settings.pop("use")
    assert settings["myproject.oidc.keycloak.issuer"] == "http://127.0.0.1:8180/realms/cliquet"
    settings["myproject.oidc.keycloak.issuer"] = issuer  # where the tests' Keycloak is
    settings["myproject.oidc.keycloak.audience"] = "cliquet"
    settings["myproject.schema_check"] = "migrate"
    config = Configurator(settings=settings)
    cliquet.initialize(config, "1.0", project_name="myproject")
    config.add_resource(SharedArticle)
    app = webtest.TestApp(config.make_wsgi_app())
    provider = app.get("/v1/").json["capabilities"]["openid"]["providers"][0]
    assert provider["client_id"] == "cliquet-web"
    app.post_json("/v1/articles", {"data": {"title": "Plan"}}, headers=bearer(token_for("bob")), status=403)
    record = app.post_json("/v1/articles", {"data": {"title": "Plan"},
                                            "permissions": {"read": ["oidc-keycloak-groups:readers"]}},
                           headers=bearer(token_for("alice"))).json["data"]
    assert app.get(f"/v1/articles/{record['id']}", headers=bearer(token_for("bob"))).json["data"]["title"] == "Plan"
    # A token of the public client (what the JS client's PKCE sign-in gets) is accepted too.
    from cliquet_oidc.testing import get_tokens

    web = get_tokens(issuer, "cliquet-web", None, "alice", "alice-password")["access_token"]
    assert app.get("/v1/", headers=bearer(web)).json["user"]["id"].startswith("oidc-keycloak:")
    response = app.get("/v1/articles", status=401)
    assert response.headers.getall("WWW-Authenticate") == ['Basic realm="myproject"', 'Bearer realm="myproject"']
