"""cliquet-oidc: sign in to a Cliquet service with OpenID Connect providers.

One line enables it, and one block per provider configures it::

    pyramid.includes = cliquet_oidc

    cliquet.oidc_providers = keycloak
    cliquet.oidc.keycloak.issuer = https://sso.example.com/realms/cliquet
    cliquet.oidc.keycloak.audience = cliquet
    cliquet.oidc.keycloak.principals_claims = groups

Requests then authenticate with ``Authorization: Bearer <access token>``
beside the service's own policy (HTTP Basic by default): the first policy
that recognises the credentials decides. The user id is
``oidc-<provider>:<sub>``; each value of a principals claim becomes a
principal (``oidc-keycloak-groups:editors``) usable in permissions and in
the ``*_principals`` settings. The hello view advertises the ``openid``
capability with each provider's issuer, client id and endpoints.
"""

from __future__ import annotations

from cliquet_oidc.__about__ import __version__

__all__ = ["__version__", "includeme", "OIDCSecurityPolicy", "MultiSecurityPolicy"]


def __getattr__(name):
    if name in ("OIDCSecurityPolicy", "MultiSecurityPolicy"):
        from cliquet_oidc import policy

        return getattr(policy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CAPABILITY_DESCRIPTION = "Sign in with OpenID Connect (bearer access tokens)"
CAPABILITY_URL = "https://openid.net/specs/openid-connect-core-1_0.html"


def install_policy(registry) -> None:
    """Build the OIDC policy from the settings and register it, beside the
    policy already registered (Basic by default) unless
    ``cliquet.oidc_combine`` is false. Run as a configuration action, after
    Cliquet's own ``set_security_policy``."""
    from pyramid.interfaces import ISecurityPolicy

    from cliquet_oidc.policy import MultiSecurityPolicy, OIDCSecurityPolicy

    settings = registry.settings
    policy = OIDCSecurityPolicy(settings, registry=registry)
    registry.cliquet_oidc_policy = policy
    existing = registry.queryUtility(ISecurityPolicy)
    if isinstance(existing, MultiSecurityPolicy):
        existing = MultiSecurityPolicy([p for p in existing.policies if not isinstance(p, OIDCSecurityPolicy)])
    chosen = policy
    if settings.get("cliquet.oidc_combine", True) and existing is not None and \
            not isinstance(existing, OIDCSecurityPolicy):
        chosen = MultiSecurityPolicy([existing, policy])
    registry.registerUtility(chosen, ISecurityPolicy)
    advertised = registry.__dict__.setdefault("cliquet_oidc_advertised", [])
    advertised[:] = [provider.advertised for provider in policy.providers]


def _discover_in_background(registry) -> None:
    """Fetch each provider's discovery document without holding the start-up
    (the hello view shows the endpoints once known; tokens fetch it anyway)."""
    import threading

    from cliquet_oidc.provider import ProviderUnavailable

    policy = getattr(registry, "cliquet_oidc_policy", None)
    for provider in getattr(policy, "providers", ()):
        def discover(provider=provider):
            try:
                provider.discovery()
            except ProviderUnavailable as exc:
                import logging

                logging.getLogger("cliquet_oidc").warning("OpenID Connect %s: discovery failed: %s",
                                                          provider.name, exc)

        threading.Thread(target=discover, name=f"cliquet-oidc-discovery-{provider.name}", daemon=True).start()


def includeme(config):
    """Declare the settings, put the OIDC policy beside the service's own one
    and advertise the ``openid`` capability.

    Only registers: the settings are declared and the policy installed by
    configuration actions at commit (discriminators ``("cliquet-oidc",
    "settings")`` and ``("cliquet-oidc", "security-policy")``). Including it
    twice is harmless (Pyramid runs an ``includeme`` once per configuration);
    it works from ``pyramid.includes`` (before ``cliquet.initialize``) and
    from ``config.include("cliquet_oidc")`` after it.
    """
    from pyramid.events import ApplicationCreated

    from cliquet.setup import add_api_capability
    from cliquet_oidc.settings import declare_oidc_settings, provider_configs

    registry = config.registry
    providers = registry.__dict__.setdefault("cliquet_oidc_advertised", [])
    add_api_capability(config, "openid", description=CAPABILITY_DESCRIPTION, url=CAPABILITY_URL,
                       providers=providers)
    # After Cliquet's set_security_policy (order PHASE2_CONFIG, -10): no conflict, and the
    # service's policy is wrapped whichever of the two includes came first.
    def declare():
        # At commit time: from pyramid.includes this runs before cliquet.initialize,
        # which sets the project name (and so the project's settings prefix).
        declare_oidc_settings(config)
        provider_configs(registry.settings)  # a missing issuer or audience fails, naming the setting

    config.action(("cliquet-oidc", "settings"), declare, order=-5)
    config.action(("cliquet-oidc", "security-policy"), lambda: install_policy(registry), order=0)
    config.add_subscriber(lambda event: _discover_in_background(event.app.registry), ApplicationCreated)
