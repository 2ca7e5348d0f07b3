"""One OpenID Connect provider: its discovery document, its keys, and the
checks of a bearer token (a JWT checked locally, or an opaque token asked to
the introspection endpoint).

What is fetched from the provider is kept in the service's cache backend
(``registry.cache``), so that the processes of a service share it, and in
the process itself, so that a request with a known key reads nothing:

* the discovery document and the JWKS, for ``jwks_cache_ttl``; the keys a
  process has loaded stay usable while the provider cannot be reached;
* an unknown ``kid`` makes the process look in the cache backend, then fetch
  the JWKS again — at most once per ``jwks_refetch_interval``, failed
  attempts included, so that tokens with made-up key ids or a provider that
  is down never cause a storm of requests;
* introspection answers, until the token's expiry (at most
  ``introspection_cache_ttl``); refusals for a minute.

The signatures themselves are checked by PyJWT (with ``cryptography``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import Any

import jwt
import urllib3

from cliquet_oidc.settings import ProviderConfig

logger = logging.getLogger("cliquet_oidc")

#: how long an inactive (refused) introspected token is remembered.
NEGATIVE_INTROSPECTION_TTL = 60.0
#: the largest provider answer read (a discovery document, a JWKS).
MAX_DOCUMENT_SIZE = 1 << 20


class InvalidToken(Exception):
    """A bearer token that is refused; ``str(exc)`` says why (sent to the
    client as ``error_description``)."""


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered nonsense."""


def claim(claims: dict, path: str) -> Any:
    """The value of a claim, ``realm_access.roles`` reading nested objects."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def looks_like_jwt(token: str) -> bool:
    """Whether ``token`` has the three dot-separated parts of a JWS."""
    return token.count(".") == 2


_JWT_ERRORS = (
    (jwt.ExpiredSignatureError, "The token has expired"),
    (jwt.ImmatureSignatureError, "The token is not valid yet (nbf or iat in the future)"),
    (jwt.InvalidAudienceError, "The token's audience is not this service"),
    (jwt.InvalidIssuerError, "The token's issuer is not accepted"),
    (jwt.InvalidSignatureError, "The token's signature is invalid"),
    (jwt.InvalidAlgorithmError, "The token's signature algorithm is not accepted"),
    (jwt.MissingRequiredClaimError, "The token lacks a required claim"),
    (getattr(jwt.exceptions, "InvalidSubjectError", ()), "The token's sub claim is invalid"),
    (getattr(jwt.exceptions, "InvalidJTIError", ()), "The token's jti claim is invalid"),
)


class Provider:
    """Checks the bearer tokens of one provider.

    :param config: the provider's settings.
    :param registry: the application's registry (its ``cache`` is used).
    """

    def __init__(self, config: ProviderConfig, registry=None):
        self.config = config
        self.name = config.name
        self.registry = registry
        self.http = urllib3.PoolManager(
            num_pools=2, maxsize=4, retries=False,
            timeout=urllib3.Timeout(connect=config.http_timeout, read=config.http_timeout),
        )
        self._lock = threading.Lock()
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._keys_loaded_at = float("-inf")
        self._last_fetch = float("-inf")
        self._discovery: dict | None = None
        self._introspection_slots = threading.BoundedSemaphore(4)
        #: how many times the JWKS was fetched from the provider, and tried (tests read them).
        self.jwks_fetches = 0
        self.jwks_fetch_attempts = 0
        #: the discovery document's endpoints once known (the hello view shows them).
        self.advertised: dict[str, Any] = {
            "name": config.name, "title": config.title, "issuer": config.issuer,
            "client_id": config.client_id, "userid_prefix": config.userid_prefix,
        }

    # -- the cache backend ---------------------------------------------------

    def _cache_key(self, what: str) -> str:
        return f"oidc:{self.name}:{hashlib.sha256(self.config.issuer.encode()).hexdigest()[:16]}:{what}"

    def _cache_get(self, what: str):
        cache = getattr(self.registry, "cache", None)
        if cache is None:
            return None
        try:
            return cache.get(self._cache_key(what))
        except Exception as exc:  # a cache outage must not refuse valid tokens
            logger.warning("OpenID Connect %s: cache read failed: %s", self.name, exc)
            return None

    def _cache_set(self, what: str, value, ttl: float) -> None:
        cache = getattr(self.registry, "cache", None)
        if cache is None or ttl <= 0:
            return
        try:
            cache.set(self._cache_key(what), value, ttl)
        except Exception as exc:
            logger.warning("OpenID Connect %s: cache write failed: %s", self.name, exc)

    # -- HTTP ------------------------------------------------------------------

    def _request_json(self, method: str, url: str, **kwargs) -> dict:
        try:
            response = self.http.request(method, url, preload_content=False, **kwargs)
            try:
                body = response.read(MAX_DOCUMENT_SIZE + 1)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise ProviderUnavailable(f"{url}: {exc}") from exc
        if response.status != 200:
            raise ProviderUnavailable(f"{url} answered {response.status}")
        if len(body) > MAX_DOCUMENT_SIZE:
            raise ProviderUnavailable(f"{url} answered more than {MAX_DOCUMENT_SIZE} bytes")
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise ProviderUnavailable(f"{url} answered something else than JSON") from exc
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"{url} answered something else than a JSON object")
        return document

    # -- discovery -------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        """Where the discovery document is fetched from."""
        return self.config.discovery_url or f"{self.config.issuer}/.well-known/openid-configuration"

    def discovery(self) -> dict:
        """The provider's discovery document (process, then cache backend,
        then the provider).

        :raises ProviderUnavailable: none is known and the provider cannot tell.
        """
        if self._discovery is not None:
            return self._discovery
        document = self._cache_get("discovery")
        if not isinstance(document, dict):
            document = self._request_json("GET", self.discovery_url, headers={"Accept": "application/json"})
            if str(document.get("issuer", "")).rstrip("/") != self.config.issuer:
                raise ProviderUnavailable(f"{self.discovery_url} names issuer {document.get('issuer')!r}, "
                                          f"not {self.config.issuer!r}")
            if not isinstance(document.get("jwks_uri"), str):
                raise ProviderUnavailable(f"{self.discovery_url} has no jwks_uri")
            self._cache_set("discovery", document, self.config.jwks_cache_ttl)
        self._discovery = document
        for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "end_session_endpoint",
                    "jwks_uri"):
            if isinstance(document.get(key), str):
                self.advertised[key] = document[key]
        return document

    # -- keys ------------------------------------------------------------------

    @staticmethod
    def _parse_jwks(jwks) -> dict[str | None, jwt.PyJWK]:
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in (jwks or {}).get("keys") or []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError) as exc:
                logger.debug("Skipped an unusable key %r: %s", entry.get("kid"), exc)
                continue
            key.declared_alg = entry.get("alg")
            keys[entry.get("kid")] = key
        return keys

    def _load(self, jwks) -> None:
        keys = self._parse_jwks(jwks)
        if keys:
            self._keys = keys
            self._keys_loaded_at = time.monotonic()

    def _fetch_keys(self) -> bool:
        """Fetch the JWKS from the provider, unless the last attempt is more
        recent than ``jwks_refetch_interval``. Returns whether keys were
        (re)loaded. Called with the lock held."""
        now = time.monotonic()
        if now - self._last_fetch < self.config.jwks_refetch_interval:
            return False
        self._last_fetch = now
        self.jwks_fetch_attempts += 1
        try:
            jwks_uri = self.discovery()["jwks_uri"]
            jwks = self._request_json("GET", jwks_uri, headers={"Accept": "application/json"})
        except ProviderUnavailable as exc:
            logger.warning("OpenID Connect %s: cannot fetch the keys: %s", self.name, exc)
            return False
        self.jwks_fetches += 1
        if not self._parse_jwks(jwks):
            logger.warning("OpenID Connect %s: the JWKS has no usable signing key", self.name)
            return False
        self._cache_set("jwks", jwks, self.config.jwks_cache_ttl)
        self._load(jwks)
        return True

    def _key_for(self, kid, alg) -> jwt.PyJWK | None:
        keys = self._keys
        if kid is not None:
            return keys.get(kid)
        candidates = [k for k in keys.values() if k.declared_alg in (alg, None)]
        return candidates[0] if len(candidates) == 1 else None

    def signing_key(self, kid, alg) -> jwt.PyJWK:
        """The key that signed a token with header ``kid``/``alg``.

        Known keys are used as they are; they are reloaded from the cache
        backend (or the provider) after ``jwks_cache_ttl``. An unknown
        ``kid`` makes one look in the cache backend, then at most one fetch
        per ``jwks_refetch_interval``.

        :raises InvalidToken: no such key.
        """
        now = time.monotonic()
        key = self._key_for(kid, alg)
        if key is not None and now - self._keys_loaded_at < self.config.jwks_cache_ttl:
            return key
        with self._lock:
            key = self._key_for(kid, alg)
            if key is not None and time.monotonic() - self._keys_loaded_at < self.config.jwks_cache_ttl:
                return key
            shared = self._cache_get("jwks")
            if isinstance(shared, dict):
                self._load(shared)
                key = self._key_for(kid, alg)
            if key is None or time.monotonic() - self._keys_loaded_at >= self.config.jwks_cache_ttl:
                self._fetch_keys()
                key = self._key_for(kid, alg)
        if key is None:
            if not self._keys:
                raise InvalidToken("The token cannot be checked now: the provider's keys are unavailable")
            raise InvalidToken("The token's signing key is unknown (kid not in the provider's keys)")
        return key  # a stale key of the process stays usable while the provider is down

    # -- tokens ----------------------------------------------------------------

    def check_jwt(self, token: str) -> dict:
        """Check a JWT's signature, issuer, audience, expiry and not-before;
        return its claims.

        :raises InvalidToken: with the reason.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("The token is malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            raise InvalidToken("The token's signature algorithm is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("The token is malformed (kid)")
        key = self.signing_key(kid, alg)
        if key.declared_alg not in (None, alg):
            raise InvalidToken("The token's signature algorithm does not match its key")
        try:
            return jwt.decode(
                token, key.key, algorithms=[alg], audience=self.config.audience, issuer=self.config.issuer,
                leeway=self.config.clock_skew, options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            for error_class, reason in _JWT_ERRORS:
                if isinstance(exc, error_class):
                    raise InvalidToken(reason) from None
            raise InvalidToken("The token is malformed") from None
        except (ValueError, TypeError):
            raise InvalidToken("The token is malformed") from None

    def introspect(self, token: str) -> dict:
        """Ask the introspection endpoint about ``token`` (RFC 7662); the
        answer is kept in the cache backend until the token expires.

        :raises InvalidToken: inactive, or the provider cannot tell.
        """
        config = self.config
        if not config.introspection_client_id:
            raise InvalidToken("The token is not a JWT and this provider has no introspection configured")
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        cached = self._cache_get("introspection:" + digest)
        if isinstance(cached, dict):
            if not cached.get("active"):
                raise InvalidToken("The token is not active")
            if cached.get("exp") is None or cached["exp"] > time.time():
                return cached
        if not self._introspection_slots.acquire(timeout=config.http_timeout):
            raise InvalidToken("The token cannot be checked now: too many introspections at once")
        try:
            endpoint = self.discovery().get("introspection_endpoint")
            if not isinstance(endpoint, str):
                raise InvalidToken("The token cannot be checked: the provider has no introspection endpoint")
            headers = urllib3.make_headers(
                basic_auth=f"{config.introspection_client_id}:{config.introspection_client_secret or ''}")
            headers["Accept"] = "application/json"
            answer = self._request_json("POST", endpoint, fields={"token": token, "token_type_hint": "access_token"},
                                        encode_multipart=False, headers=headers)
        except ProviderUnavailable as exc:
            logger.warning("OpenID Connect %s: introspection failed: %s", self.name, exc)
            raise InvalidToken("The token cannot be checked now: the provider is unreachable") from None
        finally:
            self._introspection_slots.release()
        if answer.get("active") is not True:
            self._cache_set("introspection:" + digest, {"active": False}, NEGATIVE_INTROSPECTION_TTL)
            raise InvalidToken("The token is not active")
        now = time.time()
        exp = answer.get("exp")
        if isinstance(exp, (int, float)) and exp + config.clock_skew <= now:
            raise InvalidToken("The token has expired")
        if answer.get("iss") is not None and str(answer["iss"]).rstrip("/") != config.issuer:
            raise InvalidToken("The token's issuer is not accepted")
        audience = answer.get("aud")
        audiences = audience if isinstance(audience, list) else [audience] if audience else []
        if audiences and not set(audiences) & set(config.audience):
            raise InvalidToken("The token's audience is not this service")
        ttl = config.introspection_cache_ttl
        if isinstance(exp, (int, float)):
            ttl = min(ttl, exp - now)
        self._cache_set("introspection:" + digest, answer, ttl)
        return answer

    def claims(self, token: str) -> dict:
        """The checked claims of ``token`` (locally or by introspection).

        :raises InvalidToken: with the reason.
        """
        if self.config.validation == "introspection" or not looks_like_jwt(token):
            return self.introspect(token)
        return self.check_jwt(token)

    def identity(self, claims: dict) -> dict:
        """``{"userid", "principals", "provider", "claims", "exp"}`` from checked claims.

        :raises InvalidToken: the user id claim is missing.
        """
        config = self.config
        subject = claim(claims, config.userid_claim)
        if isinstance(subject, bool) or not isinstance(subject, (str, int)) or subject == "":
            raise InvalidToken(f"The token has no usable {config.userid_claim} claim")
        principals = []
        for name in config.principals_claims:
            values = claim(claims, name)
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, list):
                continue
            prefix = config.principal_prefix(name)
            principals.extend(prefix + v for v in values if isinstance(v, str) and v)
        exp = claims.get("exp")
        return {
            "userid": config.userid_prefix + str(subject),
            "principals": principals,
            "provider": self.name,
            "claims": claims,
            "exp": exp if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None,
        }
