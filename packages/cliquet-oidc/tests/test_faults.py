"""Faults: the provider down after its keys were cached, made-up key ids,
a key rotation in Keycloak, introspection of opaque tokens."""

from __future__ import annotations

import socket
import time

import jwt
import pytest
import urllib3

from cliquet_oidc.testing import bearer, claims_for, make_app, provider_of, sign

pytestmark = pytest.mark.services


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_provider_down_cached_keys_keep_working(issuer, token_for):
    token, other = token_for("alice"), token_for("bob")
    up = make_app({"issuer": issuer, "audience": "cliquet", "jwks_cache_ttl": "1s"})
    up.get("/v1/articles", headers=bearer(token))  # the keys are now in the cache backend
    # Another process of the service, sharing the cache backend, whose way to the provider is cut.
    dead = f"http://127.0.0.1:{closed_port()}/.well-known/openid-configuration"
    down = make_app({"issuer": issuer, "audience": "cliquet", "discovery_url": dead, "jwks_cache_ttl": "1s",
                     "jwks_refetch_interval": "30s"})
    cache = up.app.registry.cache
    down.app.registry.cache = cache
    cache.delete(provider_of(up)._cache_key("discovery"))
    down.get("/v1/articles", headers=bearer(token))
    provider = provider_of(down)
    assert provider.jwks_fetch_attempts == 0
    # Past the TTL, the cache backend has forgotten them: the process keeps its own
    # (another token: a checked one is remembered until it expires).
    time.sleep(1.2)
    down.get("/v1/articles", headers=bearer(other))
    assert provider.jwks_fetch_attempts == 1 and provider.jwks_fetches == 0
    # A new kid while the provider is down: 401 (not 503), at once, and no storm of fetches.
    _, key = sign(claims_for(issuer))
    start = time.monotonic()
    for _ in range(30):
        forged, _ = sign(claims_for(issuer), key)  # a new kid each time
        response = down.get("/v1/articles", headers=bearer(forged), status=401)
        assert response.json["errno"] == 105
        assert "signing key is unknown" in response.json["message"]
    assert time.monotonic() - start < 5
    assert provider.jwks_fetch_attempts == 1
    down.get("/v1/articles", headers=bearer(token))


def test_provider_down_from_the_start(issuer):
    dead = f"http://127.0.0.1:{closed_port()}/.well-known/openid-configuration"
    app = make_app({"issuer": issuer, "audience": "cliquet", "discovery_url": dead})
    _, key = sign(claims_for(issuer))
    for _ in range(20):
        forged, _ = sign(claims_for(issuer), key)
        response = app.get("/v1/articles", headers=bearer(forged), status=401)
        assert "keys are unavailable" in response.json["message"]
    assert provider_of(app).jwks_fetch_attempts <= 2  # the start-up discovery does not fetch keys


def test_made_up_kids_are_rate_limited(app, issuer, token_for):
    app.get("/v1/articles", headers=bearer(token_for("alice")))
    provider = provider_of(app)
    fetched = provider.jwks_fetches
    _, key = sign(claims_for(issuer))
    for _ in range(50):
        forged, _ = sign(claims_for(issuer), key)
        app.get("/v1/articles", headers=bearer(forged), status=401)
    assert provider.jwks_fetches - fetched <= 1


def admin_token(keycloak_url) -> str:
    http = urllib3.PoolManager(retries=False)
    response = http.request("POST", f"{keycloak_url}/realms/master/protocol/openid-connect/token",
                            fields={"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                                    "password": "admin"}, encode_multipart=False)
    assert response.status == 200, response.data
    return response.json()["access_token"]


def add_signing_key(keycloak_url) -> None:
    """A new RSA key provider in the realm, with a higher priority than any before."""
    http = urllib3.PoolManager(retries=False)
    headers = {"Authorization": f"Bearer {admin_token(keycloak_url)}", "Content-Type": "application/json"}
    realm = http.request("GET", f"{keycloak_url}/admin/realms/cliquet", headers=headers).json()
    component = {
        "name": f"rotated-{time.time_ns()}", "providerId": "rsa-generated",
        "providerType": "org.keycloak.keys.KeyProvider", "parentId": realm["id"],
        "config": {"priority": [str(time.time_ns() // 1_000_000)], "enabled": ["true"], "active": ["true"],
                   "keySize": ["2048"], "algorithm": ["RS256"]},
    }
    response = http.request("POST", f"{keycloak_url}/admin/realms/cliquet/components", headers=headers,
                            json=component)
    assert response.status == 201, response.data


@pytest.mark.xdist_group("keycloak-keys")
def test_key_rotation_accepted_after_one_refetch(keycloak_url, issuer, token_for):
    app = make_app({"issuer": issuer, "audience": "cliquet", "jwks_refetch_interval": "0.2s"})
    before = token_for("alice")
    app.get("/v1/articles", headers=bearer(before))
    provider = provider_of(app)
    fetched = provider.jwks_fetches
    add_signing_key(keycloak_url)
    time.sleep(0.3)
    after = token_for("alice")
    assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
    app.get("/v1/articles", headers=bearer(after))
    assert provider.jwks_fetches == fetched + 1
    app.get("/v1/articles", headers=bearer(before))  # the old key is still published
    assert provider.jwks_fetches == fetched + 1


INTROSPECTION = {"introspection_client_id": "cliquet", "introspection_client_secret": "cliquet-test-secret"}


def test_introspection_of_every_token(issuer, token_for):
    app = make_app({"issuer": issuer, "audience": "cliquet", "validation": "introspection",
                    "principals_claims": "groups", **INTROSPECTION})
    token = token_for("alice")
    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    assert app.get("/v1/", headers=bearer(token)).json["user"]["id"] == f"oidc-keycloak:{sub}"
    provider = provider_of(app)
    assert provider.jwks_fetches == 0
    # Another service's token: active, but not for us.
    response = app.get("/v1/articles", headers=bearer(token_for(client="other-service")), status=401)
    assert response.json["errno"] == 105


def test_introspection_of_opaque_tokens(issuer, token_for):
    app = make_app({"issuer": issuer, "audience": "cliquet", **INTROSPECTION})
    response = app.get("/v1/articles", headers=bearer("an-opaque-token-nobody-issued"), status=401)
    assert "not active" in response.json["message"]
    # A refusal is remembered: no second request to the provider.
    provider = provider_of(app)
    cache = app.app.registry.cache
    import hashlib

    key = provider._cache_key("introspection:" + hashlib.sha256(b"an-opaque-token-nobody-issued").hexdigest())
    assert cache.get(key) == {"active": False}
    app.get("/v1/articles", headers=bearer(token_for("bob")))  # JWTs are still checked locally


def test_introspection_provider_down(issuer):
    dead = f"http://127.0.0.1:{closed_port()}/.well-known/openid-configuration"
    app = make_app({"issuer": issuer, "audience": "cliquet", "discovery_url": dead, **INTROSPECTION})
    response = app.get("/v1/articles", headers=bearer("opaque"), status=401)
    assert "provider is unreachable" in response.json["message"]
