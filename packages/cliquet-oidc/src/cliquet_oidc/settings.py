"""The settings of cliquet-oidc: a list of providers, then a few settings
per provider, each under ``cliquet.oidc.<provider>.``::

    cliquet.oidc_providers = keycloak
    cliquet.oidc.keycloak.issuer = https://sso.example.com/realms/cliquet
    cliquet.oidc.keycloak.audience = cliquet
    cliquet.oidc.keycloak.principals_claims = groups

Like every Cliquet setting, each may be given without the ``cliquet.``
prefix, with the project's prefix, or by an environment variable
(``CLIQUET_OIDC_KEYCLOAK_ISSUER``). A per-provider setting with a typo
fails the start-up, as unknown settings do.
"""

from __future__ import annotations

import dataclasses
import re

from pyramid.exceptions import ConfigurationError

from cliquet.settings import PREFIX, Setting, as_bool, as_duration, as_int, as_list, as_str, declare_settings

#: algorithms accepted by default: asymmetric signatures only (never ``none``
#: nor an HMAC, whose key would be the provider's *public* key).
DEFAULT_ALGORITHMS = "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"
_ASYMMETRIC = set(DEFAULT_ALGORITHMS.split())
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")

GLOBAL_SETTINGS = {
    "oidc_providers": Setting("", as_list, doc="Names of the OpenID Connect providers (each configured "
                                                "under oidc.<name>.)."),
    "oidc_combine": Setting("true", as_bool, doc="Keep the service's own security policy (Basic by "
                                                 "default) beside OpenID Connect."),
    "oidc_token_cache_size": Setting("10000", as_int, doc="Validated tokens remembered per process "
                                                          "(until they expire)."),
}


def _validation(value):
    text = as_str(value).strip().lower()
    if text not in ("jwt", "introspection"):
        raise ValueError("expected jwt or introspection")
    return text


def _algorithms(value):
    algorithms = as_list(value)
    refused = [a for a in algorithms if a not in _ASYMMETRIC]
    if refused or not algorithms:
        raise ValueError(f"only asymmetric signature algorithms are accepted ({DEFAULT_ALGORITHMS}), "
                         f"not {' '.join(refused) or 'an empty list'}")
    return algorithms


#: per provider, under ``oidc.<name>.``.
PROVIDER_SETTINGS = {
    "issuer": Setting(None, as_str, doc="The issuer URL (the iss claim; discovery is under it)."),
    "audience": Setting("", as_list, doc="Accepted audiences (aud claim); default: client_id."),
    "client_id": Setting(None, as_str, doc="The client id that browsers sign in with (advertised in the "
                                           "hello view); default: the first audience."),
    "title": Setting(None, as_str, doc="A name to show on a sign-in button; default: the provider's name."),
    "userid_claim": Setting("sub", as_str, doc="The claim naming the user (user id oidc-<name>:<value>)."),
    "principals_claims": Setting("", as_list, doc="Claims whose values become principals "
                                                  "(groups, realm_access.roles)."),
    "principals_prefix": Setting(None, as_str, doc="Prefix of those principals; default "
                                                   "oidc-<name>-<claim>:."),
    "clock_skew": Setting("30s", as_duration, doc="Leeway on exp, nbf and iat."),
    "algorithms": Setting(DEFAULT_ALGORITHMS, _algorithms, doc="Accepted signature algorithms."),
    "validation": Setting("jwt", _validation, doc="jwt: check JWTs locally (opaque tokens are introspected "
                                                  "when credentials are set); introspection: every token."),
    "discovery_url": Setting(None, as_str, doc="Where the discovery document is, when not under the issuer."),
    "introspection_client_id": Setting(None, as_str, doc="Client id for the introspection endpoint."),
    "introspection_client_secret": Setting(None, as_str, doc="Its secret."),
    "introspection_cache_ttl": Setting("1h", as_duration, doc="At most this long an active introspected "
                                                              "token is remembered (never past its exp)."),
    "jwks_cache_ttl": Setting("1h", as_duration, doc="How long discovery and keys are kept in the cache "
                                                     "backend."),
    "jwks_refetch_interval": Setting("10s", as_duration, doc="At most one fetch of the keys per this "
                                                             "interval (an unknown kid asks for one)."),
    "http_timeout": Setting("5s", as_duration, doc="Timeout of each request to the provider."),
}


@dataclasses.dataclass
class ProviderConfig:
    """One provider's typed settings (see :data:`PROVIDER_SETTINGS`)."""

    name: str
    issuer: str
    audience: list[str]
    client_id: str | None
    title: str
    userid_claim: str
    principals_claims: list[str]
    principals_prefix: str | None
    clock_skew: float
    algorithms: list[str]
    validation: str
    discovery_url: str | None
    introspection_client_id: str | None
    introspection_client_secret: str | None
    introspection_cache_ttl: float
    jwks_cache_ttl: float
    jwks_refetch_interval: float
    http_timeout: float

    @property
    def userid_prefix(self) -> str:
        """``oidc-<name>:``, the prefix of this provider's user ids."""
        return f"oidc-{self.name}:"

    def principal_prefix(self, claim: str) -> str:
        """The prefix of principals taken from ``claim``."""
        if self.principals_prefix is not None:
            return self.principals_prefix
        return f"oidc-{self.name}-{claim}:"


def provider_setting(name: str, key: str) -> str:
    """The setting name (without prefix) of ``key`` for provider ``name``."""
    return f"oidc.{name}.{key}"


def declare_oidc_settings(config) -> list[str]:
    """Declare the global settings and those of each listed provider; return
    the provider names."""
    declare_settings(config, GLOBAL_SETTINGS)
    names = config.registry.settings[PREFIX + "oidc_providers"]
    for name in names:
        if not _NAME.match(name):
            raise ConfigurationError(f"Invalid OpenID Connect provider name {name!r} in "
                                     f"{PREFIX}oidc_providers: lowercase letters, digits, - and _")
    declare_settings(config, {provider_setting(name, key): spec
                              for name in names for key, spec in PROVIDER_SETTINGS.items()})
    return list(names)


def provider_configs(settings) -> list[ProviderConfig]:
    """Build each provider's :class:`ProviderConfig` from the typed settings.

    :raises ConfigurationError: an issuer or an audience is missing.
    """
    configs = []
    for name in settings.get(PREFIX + "oidc_providers") or []:
        values = {key: settings.get(PREFIX + provider_setting(name, key)) for key in PROVIDER_SETTINGS}
        for key, spec in PROVIDER_SETTINGS.items():
            if values[key] is None and spec.default is not None:
                values[key] = spec.convert(spec.default)
        if not values["issuer"]:
            raise ConfigurationError(f"Missing setting {PREFIX}{provider_setting(name, 'issuer')}")
        values["issuer"] = values["issuer"].rstrip("/")
        audience = list(values["audience"] or []) or ([values["client_id"]] if values["client_id"] else [])
        if not audience:
            raise ConfigurationError(
                f"Missing setting {PREFIX}{provider_setting(name, 'audience')} (or client_id): tokens "
                f"meant for another service must be refused")
        values["audience"] = audience
        values["client_id"] = values["client_id"] or audience[0]
        values["title"] = values["title"] or name
        if values["validation"] == "introspection" and not values["introspection_client_id"]:
            raise ConfigurationError(f"{PREFIX}{provider_setting(name, 'validation')} = introspection needs "
                                     f"{PREFIX}{provider_setting(name, 'introspection_client_id')}")
        configs.append(ProviderConfig(name=name, **values))
    return configs
