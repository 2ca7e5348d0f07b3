"""Authentication: who is calling.

The default :class:`BasicAuthSecurityPolicy` accepts any HTTP Basic
credentials and derives a stable, opaque user id from them,
``basicauth:<hex>``, an HMAC-SHA256 of ``user:password`` keyed with
``cliquet.userid_hmac_secret``: nothing about the credentials is stored, and
the same credentials always map to the same records. Any Pyramid security
policy can replace it (``cliquet.security_policy`` or
``config.set_security_policy``); Cliquet only needs ``authenticated_userid``.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from pyramid.authorization import Authenticated, Everyone
from pyramid.security import Allowed, Denied

#: principal of every caller, and of every authenticated caller.
EVERYONE = "system.Everyone"
AUTHENTICATED = "system.Authenticated"

_IDENTITY_KEY = "cliquet.identity"


def hmac_userid(secret: str, credentials: str) -> str:
    """Return the hex HMAC-SHA256 of ``credentials`` keyed with ``secret``.

    Nothing is cached: a cache keyed by the credentials would keep every
    ``user:password`` seen in memory, and one HMAC (the C one-shot
    :func:`hmac.digest`, about a microsecond) costs no more than hashing a
    cache key would.
    """
    return hmac.digest(secret.encode(), credentials.encode(), "sha256").hex()


def parse_basic_auth(header: str | None):
    """Return ``(user, password)`` from an ``Authorization: Basic`` header.

    :returns: ``None`` when the header is absent or not Basic;
        ``False`` when it is Basic but malformed.
    """
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        return False
    return user, password


class BasicAuthSecurityPolicy:
    """A Pyramid security policy for HTTP Basic credentials.

    :param secret: the HMAC key (``cliquet.userid_hmac_secret``).
    :param realm: sent in ``WWW-Authenticate`` on 401 responses.
    """

    def __init__(self, secret: str, realm: str = "Realm"):
        if not secret:
            raise ValueError("cliquet.userid_hmac_secret must be set to use Basic authentication")
        self.secret = secret
        self.realm = realm

    def identity(self, request):
        """Return ``{"userid": ...}`` or ``None``; computed once per request."""
        environ = request.environ
        if _IDENTITY_KEY in environ:
            return environ[_IDENTITY_KEY]
        credentials = parse_basic_auth(environ.get("HTTP_AUTHORIZATION"))
        identity = None
        if credentials:
            user, password = credentials
            identity = {"userid": "basicauth:" + hmac_userid(self.secret, f"{user}:{password}")}
        elif credentials is False:
            environ["cliquet.invalid_credentials"] = True
        environ[_IDENTITY_KEY] = identity
        return identity

    def authenticated_userid(self, request):
        """Return the user id (``basicauth:<hex>``) or ``None``."""
        identity = self.identity(request)
        return identity["userid"] if identity else None

    def effective_principals(self, request):
        """Return the caller's principals (user id, system ones)."""
        userid = self.authenticated_userid(request)
        if userid is None:
            return [EVERYONE, Everyone]
        return [EVERYONE, Everyone, AUTHENTICATED, Authenticated, userid]

    def permits(self, request, context, permission):
        """Allow ``authenticated`` to any authenticated caller, anything else to all."""
        if permission == "authenticated" and self.authenticated_userid(request) is None:
            return Denied("authentication required")
        return Allowed("allowed")

    def remember(self, request, userid, **kw):
        """Basic auth has nothing to remember."""
        return []

    def forget(self, request, **kw):
        """Ask the client for credentials again."""
        return [("WWW-Authenticate", f'Basic realm="{self.realm}"')]


def request_principals(request) -> list[str]:
    """Every principal of the caller: ``system.Everyone``, and when
    authenticated ``system.Authenticated``, the user id, the principals the
    security policy's identity lists (``identity["principals"]``, if any) and
    the user's extra principals from the permission backend (groups).

    Available as ``request.principals`` (computed once per request).
    """
    principals = [EVERYONE]
    userid = request.authenticated_userid
    if userid is None:
        return principals
    principals.extend((AUTHENTICATED, userid))
    identity = request.identity
    if isinstance(identity, dict) and identity.get("principals"):
        # A policy may give principals of its own (cliquet-oidc: groups from a token's claims).
        principals.extend(p for p in identity["principals"] if p not in principals)
    permission = getattr(request.registry, "permission", None)
    if permission is not None:
        principals.extend(sorted(permission.get_user_principals(userid) - set(principals)))
    return principals


def includeme(config):
    """Install the policy named by ``cliquet.security_policy`` (default: Basic)."""
    settings = config.get_settings()
    factory = config.maybe_dotted(settings["cliquet.security_policy"])
    if factory is BasicAuthSecurityPolicy:
        secret = settings.get("cliquet.userid_hmac_secret")
        if not secret:
            from pyramid.exceptions import ConfigurationError

            raise ConfigurationError(
                "Missing setting cliquet.userid_hmac_secret (needed by Basic authentication)"
            )
        policy = BasicAuthSecurityPolicy(secret, realm=settings.get("cliquet.project_name") or "Realm")
    else:
        policy = factory(settings) if callable(factory) and isinstance(factory, type) else factory
    config.set_security_policy(policy)
