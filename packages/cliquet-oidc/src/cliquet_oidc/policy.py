"""Pyramid security policies: :class:`OIDCSecurityPolicy` (bearer tokens of
one or several providers) and :class:`MultiSecurityPolicy` (several
policies side by side: the first that recognises the credentials decides).
"""

from __future__ import annotations

import collections
import hashlib
import json
import threading
import time

import jwt
from pyramid.authorization import Authenticated, Everyone
from pyramid.security import Allowed, Denied

from cliquet.authentication import AUTHENTICATED, EVERYONE, BasicAuthSecurityPolicy
from cliquet_oidc.provider import InvalidToken, Provider, looks_like_jwt
from cliquet_oidc.settings import provider_configs

_IDENTITY_KEY = "cliquet_oidc.identity"
#: where the reason of a refused token is kept for the 401 response.
ERROR_KEY = "cliquet_oidc.error"
#: the core reads it: errno 105 (and this message) instead of 104.
INVALID_KEY = "cliquet.invalid_credentials"
#: longest ``Authorization`` value looked at (larger ones are refused unread).
MAX_TOKEN_LENGTH = 16384
_UNVERIFIED_JWS = jwt.PyJWS()


def bearer_token(header: str | None):
    """The token of an ``Authorization: Bearer`` header: ``None`` when the
    header is absent or of another scheme, ``""`` when it is Bearer but empty."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class _TokenCache:
    """Identities of tokens already checked in this process, until their
    ``exp`` (bounded, least recently used first out). Only valid tokens
    enter it: made-up tokens cannot fill it."""

    def __init__(self, size: int):
        self.size = max(0, size or 0)
        self._items: collections.OrderedDict[bytes, dict] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: bytes, now: float):
        if not self.size:
            return None
        with self._lock:
            identity = self._items.get(digest)
            if identity is None:
                return None
            if identity["exp"] is not None and identity["exp"] <= now:
                del self._items[digest]
                return None
            self._items.move_to_end(digest)
            return identity

    def put(self, digest: bytes, identity: dict) -> None:
        if not self.size or identity.get("exp") is None:
            return
        with self._lock:
            self._items[digest] = identity
            self._items.move_to_end(digest)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class OIDCSecurityPolicy:
    """Bearer tokens from OpenID Connect providers.

    A token is matched to its provider by its ``iss`` claim (read before any
    check; then checked with the provider's keys, audience and clock skew),
    an opaque token is offered to each provider that has introspection.
    The identity is ``{"userid": "oidc-<provider>:<sub>", "principals":
    [...], ...}``; the core adds ``principals`` to ``request.principals``.

    :param settings: the typed settings (``cliquet.oidc_providers`` and
        ``cliquet.oidc.<name>.*``), when ``providers`` is not given.
    :param providers: :class:`~cliquet_oidc.provider.Provider` instances.
    :param realm: sent in ``WWW-Authenticate``.
    """

    def __init__(self, settings=None, providers=None, realm: str | None = None, registry=None,
                 token_cache_size: int | None = None):
        settings = settings or {}
        if providers is None:
            providers = [Provider(config, registry) for config in provider_configs(settings)]
        self.providers = list(providers)
        self.by_issuer = {p.config.issuer: p for p in self.providers}
        self.realm = realm or settings.get("cliquet.project_name") or "Realm"
        size = token_cache_size if token_cache_size is not None else settings.get("cliquet.oidc_token_cache_size")
        self._tokens = _TokenCache(10000 if size is None else size)

    def recognizes(self, request) -> bool:
        """Whether the request carries a bearer token (this policy decides then)."""
        return bearer_token(request.environ.get("HTTP_AUTHORIZATION")) is not None

    def _refuse(self, request, reason: str):
        request.environ[ERROR_KEY] = reason
        request.environ[INVALID_KEY] = reason
        return None

    def _check(self, token: str) -> dict:
        if looks_like_jwt(token):
            try:  # only to pick the provider: its claims are checked by the provider
                payload = json.loads(_UNVERIFIED_JWS.decode_complete(token, options={"verify_signature": False})[
                    "payload"])
            except (jwt.PyJWTError, ValueError):
                raise InvalidToken("The token is malformed") from None
            issuer = payload.get("iss") if isinstance(payload, dict) else None
            if not isinstance(issuer, str):
                raise InvalidToken("The token has no issuer (iss)")
            provider = self.by_issuer.get(issuer.rstrip("/"))
            if provider is None:
                raise InvalidToken("The token's issuer is not accepted")
            return provider.identity(provider.claims(token))
        candidates = [p for p in self.providers if p.config.introspection_client_id]
        if not candidates:
            raise InvalidToken("The token is malformed (not a JWT)")
        reason = None
        for provider in candidates:
            try:
                return provider.identity(provider.introspect(token))
            except InvalidToken as exc:
                reason = reason or str(exc)
        raise InvalidToken(reason)

    def identity(self, request):
        """The identity of the request's bearer token, or ``None`` (absent or
        refused: the reason is then kept for the 401)."""
        environ = request.environ
        if _IDENTITY_KEY in environ:
            return environ[_IDENTITY_KEY]
        environ[_IDENTITY_KEY] = None
        token = bearer_token(environ.get("HTTP_AUTHORIZATION"))
        if token is None:
            return None
        if not token:
            return self._refuse(request, "The bearer token is empty")
        if len(token) > MAX_TOKEN_LENGTH:
            return self._refuse(request, "The token is too long")
        if not token.isascii() or not token.isprintable():
            return self._refuse(request, "The token is malformed")
        digest = hashlib.sha256(token.encode()).digest()
        now = time.time()
        identity = self._tokens.get(digest, now)
        if identity is None:
            try:
                identity = self._check(token)
            except InvalidToken as exc:
                return self._refuse(request, str(exc))
            self._tokens.put(digest, identity)
        environ[_IDENTITY_KEY] = identity
        return identity

    def authenticated_userid(self, request):
        """``oidc-<provider>:<sub>`` or ``None``."""
        identity = self.identity(request)
        return identity["userid"] if identity else None

    def effective_principals(self, request):
        """System principals, the user id and the principals from claims."""
        identity = self.identity(request)
        if identity is None:
            return [EVERYONE, Everyone]
        return [EVERYONE, Everyone, AUTHENTICATED, Authenticated, identity["userid"], *identity["principals"]]

    def permits(self, request, context, permission):
        """Allow ``authenticated`` to any authenticated caller, anything else
        to all (Cliquet's resources check their own permissions)."""
        if permission == "authenticated" and self.authenticated_userid(request) is None:
            return Denied("authentication required")
        return Allowed("allowed")

    def remember(self, request, userid, **kw):
        """Tokens are not remembered by the service."""
        return []

    def challenge(self, request) -> str:
        """The ``WWW-Authenticate`` value (RFC 6750), with ``invalid_token``
        and the reason when a token was refused."""
        value = f'Bearer realm="{_quote(self.realm)}"'
        reason = request.environ.get(ERROR_KEY)
        if reason:
            value += f', error="invalid_token", error_description="{_quote(reason)}"'
        return value

    def forget(self, request, **kw):
        """The challenge that asks for a bearer token."""
        return [("WWW-Authenticate", self.challenge(request))]


def _recognizes(policy, request) -> bool:
    recognizes = getattr(policy, "recognizes", None)
    if recognizes is not None:
        return bool(recognizes(request))
    if isinstance(policy, BasicAuthSecurityPolicy):
        header = request.environ.get("HTTP_AUTHORIZATION") or ""
        return header.lstrip()[:6].lower() == "basic "
    return False


class MultiSecurityPolicy:
    """Several security policies side by side.

    The first policy that recognises the request's credentials (its
    ``recognizes(request)``; for Basic, an ``Authorization: Basic`` header)
    decides alone: a refused bearer token is never retried as something
    else. Policies without ``recognizes`` are asked in order when none
    recognised the request; the first identity wins. ``forget`` returns the
    challenges of every policy (``WWW-Authenticate`` lists them all).
    """

    def __init__(self, policies):
        self.policies = list(policies)

    def _deciding(self, request):
        environ = request.environ
        if "cliquet_oidc.deciding" in environ:
            return environ["cliquet_oidc.deciding"]
        chosen = None
        for policy in self.policies:
            if _recognizes(policy, request):
                chosen = policy
                break
        if chosen is None:
            for policy in self.policies:
                if policy.identity(request) is not None:
                    chosen = policy
                    break
        environ["cliquet_oidc.deciding"] = chosen
        return chosen

    def identity(self, request):
        """The identity given by the deciding policy, or ``None``."""
        policy = self._deciding(request)
        return policy.identity(request) if policy is not None else None

    def authenticated_userid(self, request):
        """The deciding policy's user id, or ``None``."""
        policy = self._deciding(request)
        return policy.authenticated_userid(request) if policy is not None else None

    def effective_principals(self, request):
        """The deciding policy's principals."""
        policy = self._deciding(request)
        if policy is None or not hasattr(policy, "effective_principals"):
            userid = self.authenticated_userid(request)
            return [EVERYONE, Everyone] + ([AUTHENTICATED, Authenticated, userid] if userid else [])
        return policy.effective_principals(request)

    def permits(self, request, context, permission):
        """Asked to the deciding policy (the first one when none decided)."""
        policy = self._deciding(request) or self.policies[0]
        return policy.permits(request, context, permission)

    def remember(self, request, userid, **kw):
        """What every policy remembers."""
        return [header for policy in self.policies for header in policy.remember(request, userid, **kw)]

    def forget(self, request, **kw):
        """Every policy's headers: one ``WWW-Authenticate`` challenge each."""
        return [header for policy in self.policies for header in policy.forget(request, **kw)]
