"""Fixtures of cliquet-oidc's tests: the real Keycloak of ``ci/services``
(``CLIQUET_TEST_KEYCLOAK_URL``; skipped locally without it, a failure in CI),
its realm ``cliquet`` (``realm.json`` beside this file), and tokens from it.
Every test builds its own application (its own memory cache), so nothing is
shared between tests but Keycloak itself.
"""

from __future__ import annotations

import pytest

from cliquet.testing.plugin import service_url
from cliquet_oidc.testing import KEYCLOAK_REALM, LocalProvider, get_tokens, make_app

PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}
SECRETS = {"cliquet": "cliquet-test-secret", "cliquet-short": "cliquet-short-secret",
           "other-service": "other-service-secret"}


@pytest.fixture(scope="session")
def keycloak_url() -> str:
    """``http://127.0.0.1:8180`` (from ``CLIQUET_TEST_KEYCLOAK_URL``)."""
    return service_url("CLIQUET_TEST_KEYCLOAK_URL").rstrip("/")


@pytest.fixture(scope="session")
def issuer(keycloak_url) -> str:
    """The issuer of the test realm."""
    return f"{keycloak_url}/realms/{KEYCLOAK_REALM}"


@pytest.fixture
def token_for(issuer):
    """``token_for("alice")``: an access token of the password grant;
    ``token_for(client="cliquet-short")``: of the client-credentials grant."""

    def get(user=None, client="cliquet"):
        if user:
            return get_tokens(issuer, client, SECRETS.get(client), user, PASSWORDS[user])["access_token"]
        return get_tokens(issuer, client, SECRETS[client])["access_token"]

    return get


@pytest.fixture
def settings(issuer) -> dict:
    """The provider settings of the ``keycloak`` provider."""
    return {"issuer": issuer, "audience": "cliquet", "principals_claims": "groups", "clock_skew": "0"}


@pytest.fixture
def app(settings):
    """The test application with Keycloak as provider ``keycloak`` (beside Basic)."""
    return make_app(settings)


@pytest.fixture
def local_provider():
    """A provider of the test's own (for tokens Keycloak does not make)."""
    provider = LocalProvider()
    yield provider
    provider.close()



@pytest.fixture(autouse=True)
def discovery_finished():
    """Wait, after each test, for the discovery threads its applications
    started (:func:`cliquet_oidc._discover_in_background`): one that fails
    logs a warning, which must reach the test's own log capture rather than
    a later test's, or a stream pytest already closed."""
    import threading

    yield
    for thread in threading.enumerate():
        if thread.name.startswith("cliquet-oidc-discovery-"):
            thread.join(timeout=10)
