"""What ``config.include("cliquet_indexing")`` registers.

It works both from ``pyramid.includes`` — which Pyramid runs *before* the
application calls :func:`cliquet.initialize` — and from
``config.include("cliquet_indexing")`` after it: nothing here needs the core
to be set up yet. The indexer itself is built when the configuration is
committed, once every setting is known.
"""

from __future__ import annotations

import logging
import os

from pyramid.interfaces import PHASE0_CONFIG

from cliquet.settings import declare_settings

from cliquet_indexing.indexer import IndexerBase
from cliquet_indexing.settings import INDEXING_SETTINGS

logger = logging.getLogger("cliquet_indexing")

CAPABILITY = "search"
CAPABILITY_DESCRIPTION = ("Search the records of a resource with a portable subset of the Elasticsearch "
                          "query DSL, within what the caller may read.")
CAPABILITY_URL = "https://cliquet.readthedocs.io/en/latest/indexing.html"


def api_prefix(settings, environ=None) -> str:
    """Return the URL prefix (``v1``) the core uses, from the settings as
    they are at include time (before or after the core loaded them)."""
    environ = os.environ if environ is None else environ
    version = (environ.get("CLIQUET_HTTP_API_VERSION") or settings.get("cliquet.http_api_version")
               or settings.get("http_api_version") or "1.0")
    return "v" + str(version).split(".")[0]


def load_indexer(config) -> IndexerBase:
    """Build the indexer named by ``cliquet.indexing_backend`` (errors name
    the setting, see :func:`cliquet.setup.load_backend`), bounded by the
    ``cliquet.search_*`` settings."""
    from cliquet.setup import load_backend

    from cliquet_indexing.query import Limits

    choose_default_backend(config)
    indexer = load_backend(config, "indexing", IndexerBase)
    indexer.limits = Limits.from_settings(config.get_settings())
    return indexer


def choose_default_backend(config) -> None:
    """Beside a PostgreSQL storage, make the PostgreSQL indexer
    (:mod:`cliquet_indexing.postgresql`) the default: unless the application
    named an indexer, or gave an ``indexing_url`` that is not PostgreSQL's,
    the index lives in the storage's database and transaction."""
    from cliquet.settings import explicit_setting

    from cliquet_indexing.postgresql import SCHEMES
    from cliquet_indexing.settings import DEFAULT_BACKEND

    settings = config.get_settings()
    if (explicit_setting(config.registry, "indexing_backend") is None
            and settings.get("cliquet.indexing_backend") == DEFAULT_BACKEND
            and str(settings.get("cliquet.storage_backend") or "").endswith(".postgresql")
            and (not settings.get("cliquet.indexing_url") or settings["cliquet.indexing_url"].startswith(SCHEMES))):
        settings["cliquet.indexing_backend"] = "cliquet_indexing.postgresql"


def _warn_if_private(registry):
    """Warn when the index lives in this process's memory but storage does not."""
    from cliquet_indexing.embedded import EmbeddedIndexer

    indexer = registry.indexer
    storage = registry.settings.get("cliquet.storage_backend") or ""
    if isinstance(indexer, EmbeddedIndexer) and indexer.database == ":memory:" and not storage.endswith(".memory"):
        logger.warning("The embedded index is in this process's memory while storage (%s) is shared: records "
                       "written before this process started, or by other processes, are not searchable here. "
                       "Set cliquet.indexing_url = sqlite:////path/to/index.db and run "
                       "`cliquet-indexing reindex`.", storage)


def heartbeat_check(request) -> bool:
    """The ``indexer`` heartbeat."""
    indexer = getattr(request.registry, "indexer", None)
    return indexer is not None and indexer.heartbeat()


def _register(config, kind, name, value):
    """Add a heartbeat check or a capability (before or after the core is included)."""
    from cliquet.setup import add_api_capability, add_heartbeat_check

    if kind == "heartbeats":
        add_heartbeat_check(config, name, value)
    else:
        add_api_capability(config, name, **value)


def migrate_indexer(registry, dry_run: bool = False) -> None:
    """The ``cliquet migrate`` hook: initialise the indexer's schema."""
    indexer = getattr(registry, "indexer", None)
    if indexer is not None:
        print(f"indexer: initializing {type(indexer).__module__}{' (dry run)' if dry_run else ''}")
        indexer.initialize_schema(dry_run=dry_run)


def includeme(config):
    """Declare the settings, subscribe the listener, add the search service,
    the ``search`` capability and the ``indexer`` heartbeat check; build the
    indexer at commit time, in an action whose discriminator is
    ``("cliquet-indexing", "indexer")``.

    Including it twice is harmless: Pyramid runs an ``includeme`` once per
    configuration (``pyramid.includes`` and ``config.include`` alike)."""
    from cliquet.events import AfterResourceChanged

    from cliquet_indexing import listeners, views
    from cliquet_indexing.retry import RetryQueue

    registry = config.registry
    declare_settings(config, INDEXING_SETTINGS)
    settings = config.get_settings()

    def build():
        registry.indexer = load_indexer(config)
        registry.indexing_retry = RetryQueue(registry.indexer,
                                             interval=settings["cliquet.indexing_retry_interval"],
                                             max_queued=settings["cliquet.indexing_retry_max_queued"],
                                             write_timeout=settings["cliquet.indexing_write_timeout"])
        logger.debug("Indexer: %s", type(registry.indexer).__module__)
        storage_client = getattr(getattr(registry, "storage", None), "client", None)
        if getattr(registry.indexer, "transactional", False) and registry.indexer.client is not storage_client:
            # Another database: its writes cannot join the storage's
            # transaction; index after the commit, through the retry queue.
            registry.indexer.transactional = False
        if getattr(registry.indexer, "transactional", False) and settings["cliquet.indexing_listener_enabled"]:
            # Indexed inside the storage transaction, before it commits (the
            # after-commit listener leaves such an indexer alone).
            from cliquet.events import ResourceChanged

            from cliquet_indexing.postgresql import on_resource_changed

            registry.registerHandler(on_resource_changed, (ResourceChanged,))
        _warn_if_private(registry)

    hooks = registry.__dict__.setdefault("cliquet_migrate_hooks", [])
    if migrate_indexer not in hooks:
        hooks.append(migrate_indexer)

    # Before the core's own actions that read the registry (order 0 is the default).
    config.action(("cliquet-indexing", "indexer"), build, order=-10)
    if settings["cliquet.indexing_listener_enabled"]:
        config.add_subscriber(listeners.on_resource_changed, AfterResourceChanged)

    def add_service():
        with config.route_prefix_context(api_prefix(config.get_settings())):
            views.add_search_service(config)

    if getattr(registry, "cliquet_included", False):
        add_service()
    else:
        # From pyramid.includes, before the core (and Cornice) are set up: add
        # the service when the configuration is committed.
        # (Early: what it registers runs at Pyramid's later phases.)
        config.action(("cliquet-indexing", "search-service"), add_service, order=PHASE0_CONFIG)
    _register(config, "heartbeats", "indexer", heartbeat_check)
    _register(config, "api_capabilities", CAPABILITY,
              {"description": CAPABILITY_DESCRIPTION, "url": CAPABILITY_URL})
