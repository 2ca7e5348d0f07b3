"""Helpers for tests of services that use cliquet-oidc (and for its own):
real tokens from a provider's token endpoint, an application with a
provider configured, tokens signed with a key of one's own.
"""

from __future__ import annotations

import json
import time
import uuid

import urllib3

from cliquet_oidc.provider import ProviderUnavailable

#: realm, clients and users of ``packages/cliquet-oidc/tests/realm.json``.
KEYCLOAK_REALM = "cliquet"

_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=30))


def token_endpoint(issuer: str) -> str:
    """Keycloak's token endpoint under ``issuer``."""
    return f"{issuer.rstrip('/')}/protocol/openid-connect/token"


def get_tokens(issuer: str, client_id: str, client_secret: str | None = None, username: str | None = None,
               password: str | None = None, scope: str = "openid") -> dict:
    """Tokens from the provider: the password grant when ``username`` is
    given, else the client-credentials grant.

    :raises ProviderUnavailable: the provider refused (its answer in the message).
    """
    fields = {"client_id": client_id, "scope": scope}
    if client_secret:
        fields["client_secret"] = client_secret
    if username:
        fields.update(grant_type="password", username=username, password=password or "")
    else:
        fields["grant_type"] = "client_credentials"
    response = _http.request("POST", token_endpoint(issuer), fields=fields, encode_multipart=False)
    if response.status != 200:
        raise ProviderUnavailable(f"token endpoint answered {response.status}: {response.data[:300]!r}")
    return json.loads(response.data)


def make_app(provider_settings: dict | None = None, name: str = "keycloak", resources=None, **settings):
    """A :class:`webtest.TestApp` of Cliquet's test application with
    cliquet-oidc included and one provider ``name`` configured with
    ``provider_settings`` (``issuer``, ``audience``…); ``settings`` are other
    settings (names without prefix)."""
    import webtest
    from pyramid.config import Configurator

    import cliquet
    from cliquet.testing.app import TEST_SECRET, Article

    raw = {"userid_hmac_secret": TEST_SECRET, "schema_check": "migrate", "oidc_providers": name}
    raw.update({f"oidc.{name}.{key}": value for key, value in (provider_settings or {}).items()})
    raw.update(settings)
    config = Configurator(settings={f"cliquet.{k}": v for k, v in raw.items()})
    config.include("cliquet_oidc")
    cliquet.initialize(config, "0.0.1", project_name="testapp")
    for resource in resources or (Article,):
        config.add_resource(resource)
    return webtest.TestApp(config.make_wsgi_app())


def sign(claims: dict, key=None, kid: str | None = None, algorithm: str = "RS256", headers=None) -> tuple[str, object]:
    """A JWT of ``claims`` signed with ``key`` (a new RSA key when ``None``);
    returns ``(token, key)``. For tests of forged tokens."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    if key is None and algorithm.startswith(("RS", "PS")):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    all_headers = {"kid": kid or uuid.uuid4().hex, **(headers or {})}
    return jwt.encode(claims, key, algorithm=algorithm, headers=all_headers), key


def claims_for(issuer: str, audience="cliquet", subject: str = "mallory", lifetime: float = 300, **extra) -> dict:
    """Plausible access-token claims (for tokens signed by a test's own key)."""
    now = int(time.time())
    return {"iss": issuer, "aud": audience, "sub": subject, "iat": now, "exp": now + int(lifetime), **extra}


def bearer(token: str) -> dict:
    """The ``Authorization`` header of a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def policy_of(app):
    """The OIDC policy of a test application."""
    return app.app.registry.cliquet_oidc_policy


def provider_of(app, name="keycloak"):
    """The provider ``name`` of a test application."""
    return next(p for p in policy_of(app).providers if p.name == name)


class LocalProvider:
    """A small OpenID provider of the test's own, in a thread on loopback:
    its discovery document and a JWKS with the keys it signs with. For the
    cases a real provider does not make (a token not valid yet, a second
    provider); tokens from Keycloak itself come from :func:`get_tokens`.

    ``provider.sign(claims)`` signs with its current key;
    ``provider.rotate()`` adds a new key and signs with it.
    """

    def __init__(self):
        import http.server
        import threading

        from cryptography.hazmat.primitives.asymmetric import rsa

        self.keys = []  # (kid, private key)
        self.requests = []
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                provider.requests.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": provider.issuer, "jwks_uri": provider.issuer + "/jwks",
                            "authorization_endpoint": provider.issuer + "/auth",
                            "token_endpoint": provider.issuer + "/token"}
                elif self.path == "/jwks":
                    body = provider.jwks()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._rsa = rsa
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.rotate()

    def rotate(self) -> str:
        """Add a new key, signed with from now on; return its kid."""
        kid = uuid.uuid4().hex
        self.keys.append((kid, self._rsa.generate_private_key(public_exponent=65537, key_size=2048)))
        return kid

    def jwks(self) -> dict:
        """The public keys, as a JWKS."""
        from jwt.algorithms import RSAAlgorithm

        keys = []
        for kid, key in self.keys:
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def sign(self, claims: dict, algorithm: str = "RS256") -> str:
        """``claims`` signed with the current key."""
        kid, key = self.keys[-1]
        return sign(claims, key, kid=kid, algorithm=algorithm)[0]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
