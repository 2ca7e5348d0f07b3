"""What ``config.include("cliquet")`` registers."""

from __future__ import annotations

import logging

from pyramid.events import ApplicationCreated
from pyramid.exceptions import ConfigurationError
from pyramid.tweens import EXCVIEW

from cliquet.cache import CacheBase
from cliquet.core_settings import CORE_SETTINGS
from cliquet.permission import PermissionBase
from cliquet.resource.pagination import TokenSigner
from cliquet.schema import check_at_start, schema_ready
from cliquet.settings import declare_settings
from cliquet.storage import StorageBase

logger = logging.getLogger("cliquet")

BACKENDS = (
    ("storage", StorageBase),
    ("cache", CacheBase),
    ("permission", PermissionBase),
)


def load_backend(config, kind, base_class):
    """Load the backend named by ``cliquet.<kind>_backend`` (``storage``,
    ``cache``, ``permission``, or a plugin's kind such as ``indexing``).

    :raises ConfigurationError: naming the setting, when the module can't be
        imported, has no ``load_from_config``, refuses its settings
        (``ValueError``) or returns something that is not a ``base_class``.
    """
    setting = f"cliquet.{kind}_backend"
    dotted = config.get_settings()[setting]
    try:
        module = config.maybe_dotted(dotted)
    except ImportError as exc:
        raise ConfigurationError(f"Invalid setting {setting} = {dotted!r}: {exc}") from exc
    loader = getattr(module, "load_from_config", None)
    if loader is None:
        raise ConfigurationError(f"Invalid setting {setting} = {dotted!r}: no load_from_config() in it")
    try:
        backend = loader(config)
    except ValueError as exc:
        raise ConfigurationError(f"Invalid {kind} settings ({setting} = {dotted!r}): {exc}") from exc
    if not isinstance(backend, base_class):
        raise ConfigurationError(
            f"Invalid setting {setting} = {dotted!r}: load_from_config() returned "
            f"{type(backend).__name__}, not {'an' if base_class.__name__[0] in 'AEIOU' else 'a'} "
            f"{base_class.__name__}")
    return backend


def add_heartbeat_check(config, name, check):
    """Add ``check(request) -> bool`` to ``/__heartbeat__`` under ``name``.

    A directive (``config.add_heartbeat_check``) once Cliquet is included; a
    plugin included earlier (from ``pyramid.includes``) calls this function.
    """
    heartbeats = config.registry.__dict__.setdefault("heartbeats", {})
    config.action(("cliquet-heartbeat", name), lambda: heartbeats.__setitem__(name, check))


def add_api_capability(config, identifier, description="", url="", **kwargs):
    """Declare a capability shown in the hello view's ``capabilities``.

    A directive (``config.add_api_capability``) once Cliquet is included; a
    plugin included earlier calls this function.
    """
    capabilities = config.registry.__dict__.setdefault("api_capabilities", {})
    entry = {"description": description, "url": url, **kwargs}
    config.action(("cliquet-capability", identifier), lambda: capabilities.__setitem__(identifier, entry))


def _backend_heartbeat(kind):
    def check(request):
        # Up, and its schema migrated: a false check names the backend.
        return getattr(request.registry, kind).heartbeat() and schema_ready(request.registry, kind)

    check.__name__ = f"{kind}_heartbeat"
    return check


def setup_cliquet(config):
    """Settings, backends, security, routes, views and tweens."""
    registry = config.registry
    if getattr(registry, "cliquet_included", False):
        return
    registry.cliquet_included = True
    declare_settings(config, CORE_SETTINGS)
    settings = config.get_settings()

    config.add_directive("add_heartbeat_check", add_heartbeat_check)
    config.add_directive("add_api_capability", add_api_capability)
    from cliquet.resource.registration import add_resource

    config.add_directive("add_resource", add_resource)

    config.include("cliquet.services")
    config.include("cliquet.authentication")
    config.include("cliquet.listeners")
    config.include("cliquet.retention")

    for kind, base in BACKENDS:
        backend = load_backend(config, kind, base)
        setattr(registry, kind, backend)
        config.add_heartbeat_check(kind, _backend_heartbeat(kind))
    # A schema missing or older than the code: migrated or refused once the
    # app is made, every include and resource registered (cliquet.schema_check).
    config.add_subscriber(lambda event: check_at_start(event.app.registry), ApplicationCreated)
    # Whether a request's permission writes commit or roll back with its records.
    registry.cliquet_atomic_permissions = registry.permission.join_transactions(registry.storage)
    if not registry.cliquet_atomic_permissions:
        logger.warning("Permission writes are not atomic with record writes: %s cannot join the transactions "
                       "of %s (a failed request may leave permissions behind; see docs/consistency.rst)",
                       type(registry.permission).__module__, type(registry.storage).__module__)

    id_generator = config.maybe_dotted(settings["cliquet.id_generator"])
    registry.cliquet_id_generator = id_generator() if isinstance(id_generator, type) else id_generator
    registry.cliquet_token_signer = TokenSigner(settings["cliquet.userid_hmac_secret"] or "")

    from pyramid.response import Response

    registry.cliquet_response_factory = Response
    config.add_tween("cliquet.tweens.protocol_tween_factory", over=EXCVIEW)
    config.scan("cliquet.views.errors")
    _add_generic_endpoints(config, "v" + str(settings["cliquet.http_api_version"]).split(".")[0])
    logger.debug("Cliquet set up with %s", ", ".join(
        f"{kind}={type(getattr(registry, kind)).__module__}" for kind, _ in BACKENDS))
    config.include("cliquet.logs")
    config.include("cliquet.metrics")
    config.include("cliquet.views.openapi")


def _add_generic_endpoints(config, prefix):
    """Hello and batch under the prefix; heartbeats and version also at the root."""
    from cliquet.services import add_service, make_service
    from cliquet.views import batch, heartbeat, hello

    rooted = (heartbeat.heartbeat, heartbeat.lbheartbeat, heartbeat.version)
    with config.route_prefix_context(prefix):
        for service in (hello.hello, batch.batch) + rooted:
            add_service(config, service)
    for service in rooted:
        root = make_service(name="root-" + service.name, path=service.path, description=service.description)
        for method, view, args in service.definitions:
            if method != "HEAD":  # Cornice adds HEAD to every GET view itself
                root.add_view(method, view, **args)
        add_service(config, root)
