"""cliquet-riak: a Cliquet cache backend on Riak KV.

Two ways to use it, in the application's INI file::

    cliquet.cache_backend = cliquet_riak.cache
    cliquet.cache_url = riak://127.0.0.1:8098/default/cliquet_cache

or include the package, which makes it the cache backend unless one is set
explicitly, and adds a ``riak`` check to ``/__heartbeat__``::

    pyramid.includes = cliquet_riak
"""

from __future__ import annotations


from cliquet_riak.__about__ import __version__

__all__ = ["__version__", "includeme", "load_from_config", "RiakCache", "heartbeat_check"]

BACKEND = "cliquet_riak.cache"
#: The core's own default, which including this package replaces.


def __getattr__(name):
    # The backend is imported on first use: ``python -m cliquet_riak.testing.standin``
    # then starts without importing Pyramid and Cliquet.
    if name in ("load_from_config", "RiakCache"):
        from cliquet_riak import cache

        return getattr(cache, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def heartbeat_check(request) -> bool:
    """The ``riak`` heartbeat: ``True`` when a node of the cache's cluster answers."""
    from cliquet_riak.cache import RiakCache

    cache = getattr(request.registry, "cache", None)
    return isinstance(cache, RiakCache) and cache.heartbeat()


def _is_riak(backend) -> bool:
    name = backend if isinstance(backend, str) else getattr(backend, "__name__", "")
    return name in (BACKEND, "cliquet_riak")


#: The discriminator of "this plugin makes itself the default backend of a
#: kind": two plugins claiming the same default fail at commit with a
#: :class:`pyramid.exceptions.ConfigurationConflictError`.
DEFAULT_CACHE_DISCRIMINATOR = ("cliquet.default_backend", "cache")


def includeme(config):
    """Declare the ``riak_*`` settings; at commit, make Riak the cache backend
    (unless the application chose one) and register the ``riak`` heartbeat
    check.

    Only registers: the work is a configuration action, so including it
    twice is harmless (Pyramid runs an ``includeme`` once per configuration),
    and another plugin that claims the default cache backend too is a
    :class:`~pyramid.exceptions.ConfigurationConflictError` at start-up. Works
    from ``pyramid.includes`` (run before ``cliquet.initialize``) and from
    ``config.include("cliquet_riak")`` after it: the memory cache the core
    built is then replaced.
    """
    from cliquet.settings import declare_settings

    from cliquet_riak.cache import RIAK_SETTINGS

    declare_settings(config, RIAK_SETTINGS)
    # Before cliquet-indexing's indexer (order -10) and the core's heartbeat
    # and capability actions (order 0).
    config.action(DEFAULT_CACHE_DISCRIMINATOR, lambda: _take_cache_default(config), order=-20)


def _take_cache_default(config):
    """The action of :func:`includeme`."""
    from cliquet.settings import explicit_setting
    from cliquet.setup import add_heartbeat_check

    from cliquet_riak.cache import load_from_config

    registry = config.registry
    chosen = explicit_setting(registry, "cache_backend")
    if chosen is None:
        config.get_settings()["cliquet.cache_backend"] = BACKEND
        if getattr(registry, "cache", None) is not None:
            # The core built its default cache already: replace it.
            registry.cache = load_from_config(config)
        chosen = BACKEND
    if _is_riak(chosen):
        add_heartbeat_check(config, "riak", heartbeat_check)
