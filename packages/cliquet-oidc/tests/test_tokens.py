"""Real tokens from Keycloak, accepted; and every kind of bad token, refused
with a 401 that says why (never a 5xx)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from cliquet.testing.app import SharedArticle, basic_auth
from cliquet_oidc.testing import bearer, claims_for, make_app, sign

pytestmark = pytest.mark.services


def reason(response) -> str:
    """The error_description of the Bearer challenge."""
    challenges = response.headers.getall("WWW-Authenticate")
    bearer_challenge = next(c for c in challenges if c.startswith("Bearer "))
    assert 'error="invalid_token"' in bearer_challenge
    return bearer_challenge.split('error_description="', 1)[1].rstrip('"')


def assert_refused(app, token, why):
    """A 401 errno 105 whose message and challenge contain ``why``."""
    response = app.get("/v1/articles", headers=bearer(token), status=401)
    assert response.json["errno"] == 105
    assert why in response.json["message"]
    assert why in reason(response)
    assert any(c.startswith("Basic ") for c in response.headers.getall("WWW-Authenticate"))
    return response


def test_password_grant_token_is_accepted(app, token_for):
    token = token_for("alice")
    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    hello = app.get("/v1/", headers=bearer(token)).json
    assert hello["user"]["id"] == f"oidc-keycloak:{sub}"
    created = app.post_json("/v1/articles", {"data": {"title": "x"}}, headers=bearer(token)).json["data"]
    listed = app.get("/v1/articles", headers=bearer(token)).json["data"]
    assert [r["id"] for r in listed] == [created["id"]]


def test_client_credentials_token_is_accepted(app, token_for):
    token = token_for(client="cliquet")
    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    assert app.get("/v1/", headers=bearer(token)).json["user"]["id"] == f"oidc-keycloak:{sub}"


def test_users_do_not_see_each_others_records(app, token_for):
    app.post_json("/v1/articles", {"data": {"title": "alice's"}}, headers=bearer(token_for("alice")))
    assert app.get("/v1/articles", headers=bearer(token_for("bob"))).json["data"] == []
    assert app.get("/v1/articles", headers=basic_auth("alice")).json["data"] == []


def test_basic_beside_bearer(app):
    assert app.get("/v1/", headers=basic_auth()).json["user"]["id"].startswith("basicauth:")
    response = app.get("/v1/articles", headers={"Authorization": "Basic !!!"}, status=401)
    assert response.json["errno"] == 105


def test_missing_credentials_list_both_challenges(app):
    response = app.get("/v1/articles", status=401)
    assert response.json["errno"] == 104
    assert response.headers.getall("WWW-Authenticate") == ['Basic realm="testapp"', 'Bearer realm="testapp"']


def test_hello_advertises_the_provider(app, issuer):
    capability = app.get("/v1/").json["capabilities"]["openid"]
    [provider] = capability["providers"]
    assert provider["name"] == "keycloak"
    assert provider["issuer"] == issuer
    assert provider["client_id"] == "cliquet"
    # The endpoints come from discovery (done in the background at start-up, or by the first token).
    deadline = time.monotonic() + 10
    while "token_endpoint" not in provider and time.monotonic() < deadline:
        time.sleep(0.05)
        provider = app.get("/v1/").json["capabilities"]["openid"]["providers"][0]
    assert provider["token_endpoint"] == f"{issuer}/protocol/openid-connect/token"
    assert provider["authorization_endpoint"] == f"{issuer}/protocol/openid-connect/auth"


def test_groups_become_principals(settings, token_for):
    app = make_app(settings, resources=(SharedArticle,),
                   article_create_principals="oidc-keycloak-groups:editors")
    alice, bob = token_for("alice"), token_for("bob")
    app.post_json("/v1/articles", {"data": {"title": "x"}}, headers=bearer(bob), status=403)
    record = app.post_json("/v1/articles", {"data": {"title": "x"}, "permissions": {
        "read": ["oidc-keycloak-groups:readers"]}}, headers=bearer(alice)).json["data"]
    # bob is a reader: the permission on the record lets him read it.
    assert app.get(f"/v1/articles/{record['id']}", headers=bearer(bob)).json["data"]["title"] == "x"
    app.patch_json(f"/v1/articles/{record['id']}", {"data": {"title": "y"}}, headers=bearer(bob), status=403)


def test_expired_token(issuer, token_for):
    app = make_app({"issuer": issuer, "audience": "cliquet", "clock_skew": "0"})
    token = token_for(client="cliquet-short")  # lives 2 seconds
    app.get("/v1/articles", headers=bearer(token))
    time.sleep(3)
    assert_refused(app, token, "expired")


def test_clock_skew_is_the_leeway(issuer, token_for):
    app = make_app({"issuer": issuer, "audience": "cliquet", "clock_skew": "60s"})
    token = token_for(client="cliquet-short")
    time.sleep(3)
    app.get("/v1/articles", headers=bearer(token))


def test_wrong_audience(app, token_for):
    assert_refused(app, token_for(client="other-service"), "audience")


def test_forged_signature_with_keycloak_kid(app, token_for):
    real = token_for("alice")
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    forged, _ = sign(claims, kid=header["kid"])
    assert_refused(app, forged, "signature is invalid")
    # The real one still passes (and a forged one is not taken for it afterwards).
    app.get("/v1/articles", headers=bearer(real))
    assert_refused(app, forged, "signature is invalid")


def test_tampered_claims(app, token_for):
    real = token_for("bob")
    head, payload, signature = real.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_refused(app, f"{head}.{tampered}.{signature}", "signature is invalid")


def test_unknown_kid(app, issuer):
    token, _ = sign(claims_for(issuer))
    assert_refused(app, token, "signing key is unknown")


def test_alg_none(app, issuer, token_for):
    claims = jwt.decode(token_for("alice"), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert_refused(app, unsigned, "algorithm is not accepted")


def test_hmac_with_the_public_key(app, token_for):
    # The classic confusion: HS256 "signed" with the provider's public key.
    real = token_for("alice")
    claims = jwt.decode(real, options={"verify_signature": False})
    kid = jwt.get_unverified_header(real)["kid"]
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": kid}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    assert_refused(app, f"{header.decode()}.{body.decode()}.c2lnbmF0dXJl", "algorithm is not accepted")


def test_wrong_issuer(app):
    token, _ = sign(claims_for("https://evil.example.com/realms/cliquet"))
    assert_refused(app, token, "issuer is not accepted")


def test_not_yet_valid_and_issued_in_the_future(local_provider):
    app = make_app({"issuer": local_provider.issuer, "audience": "cliquet", "clock_skew": "5s"}, name="local")
    now = int(time.time())
    good = local_provider.sign(claims_for(local_provider.issuer))
    assert app.get("/v1/", headers=bearer(good)).json["user"]["id"] == "oidc-local:mallory"
    assert_refused(app, local_provider.sign(claims_for(local_provider.issuer, nbf=now + 60)), "not valid yet")
    assert_refused(app, local_provider.sign(claims_for(local_provider.issuer, iat=now + 60)), "not valid yet")
    # Within the skew: accepted.
    app.get("/v1/", headers=bearer(local_provider.sign(claims_for(local_provider.issuer, nbf=now + 3))))
    expired = local_provider.sign(claims_for(local_provider.issuer, lifetime=-10))
    assert_refused(app, expired, "expired")
    no_exp = claims_for(local_provider.issuer)
    del no_exp["exp"]
    assert_refused(app, local_provider.sign(no_exp), "lacks a required claim")
    assert_refused(app, local_provider.sign(claims_for(local_provider.issuer, audience=["a", "b"])), "audience")


def test_two_providers(issuer, token_for, local_provider):
    from cliquet_oidc.testing import make_app as make

    app = make({"issuer": issuer, "audience": "cliquet"}, oidc_providers="keycloak local",
               **{"oidc.local.issuer": local_provider.issuer, "oidc.local.audience": "cliquet"})
    assert app.get("/v1/", headers=bearer(token_for("alice"))).json["user"]["id"].startswith("oidc-keycloak:")
    local = local_provider.sign(claims_for(local_provider.issuer))
    assert app.get("/v1/", headers=bearer(local)).json["user"]["id"] == "oidc-local:mallory"
    names = [p["name"] for p in app.get("/v1/").json["capabilities"]["openid"]["providers"]]
    assert names == ["keycloak", "local"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


GARBAGE = [
    "Bearer",
    "Bearer ",
    "Bearer    ",
    "Bearer a.b.c",
    "Bearer ...",
    "Bearer a.b",
    "Bearer " + "A" * 20000,
    "Bearer " + "a." * 5000 + "a",
    "Bearer é.é.é",
    "Bearer \t.\t.",
    f"Bearer {_b64(b'not json')}.{_b64(b'{}')}.sig",
    f"Bearer {_b64(b'[]')}.{_b64(b'[]')}.sig",
    f"Bearer {_b64(json.dumps({'alg': 'RS256', 'kid': 12}).encode())}.{_b64(b'{}')}.sig",
    f"Bearer {_b64(json.dumps({'alg': ['RS256']}).encode())}.{_b64(b'{}')}.sig",
    f"Bearer {_b64(json.dumps({'alg': 'RS256'}).encode())}.{_b64(b'not json')}.sig",
    f"Bearer {_b64(json.dumps({'alg': 'RS256'}).encode())}.{_b64(json.dumps({'iss': 12}).encode())}.sig",
    f"Bearer {_b64(json.dumps({'alg': 'RS256'}).encode())}.{_b64(b'[1, 2]')}.sig",
    f"Bearer {_b64(json.dumps({'alg': 'RS256'}).encode() * 1000)}.{_b64(b'{}')}.sig",
    f"Bearer {_b64(b'{' * 5000)}.{_b64(b'{}')}.sig",
]


@pytest.mark.parametrize("header", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_headers(app, header):
    start = time.monotonic()
    response = app.get("/v1/articles", headers={"Authorization": header}, status=401)
    assert response.json["errno"] == 105
    assert reason(response)
    assert time.monotonic() - start < 2


def test_garbage_in_claims_of_a_trusted_provider(local_provider):
    app = make_app({"issuer": local_provider.issuer, "audience": "cliquet", "principals_claims": "groups"},
                   name="local")
    for sub in (None, "", 12.5, True, {"a": 1}, []):
        claims = claims_for(local_provider.issuer)
        claims["sub"] = sub
        assert_refused(app, local_provider.sign(claims), "sub claim")
    odd_groups = claims_for(local_provider.issuer, groups=["ok", 1, None, {"x": 1}, ""])
    response = app.get("/v1/", headers=bearer(local_provider.sign(odd_groups)))
    assert response.json["user"]["id"] == "oidc-local:mallory"
    assert app.get("/v1/", headers=bearer(local_provider.sign(odd_groups))).json["user"]["id"] == "oidc-local:mallory"


def test_other_userid_claim(local_provider):
    app = make_app({"issuer": local_provider.issuer, "audience": "cliquet", "userid_claim": "email"},
                   name="local")
    token = local_provider.sign(claims_for(local_provider.issuer, email="m@example.com"))
    assert app.get("/v1/", headers=bearer(token)).json["user"]["id"] == "oidc-local:m@example.com"
    assert_refused(app, local_provider.sign(claims_for(local_provider.issuer)), "no usable email claim")
