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


def includeme(config):
    """Declare the ``riak_*`` settings, default the cache backend to Riak and
    register the ``riak`` heartbeat check. Including it twice is harmless.

    Works from ``pyramid.includes`` (run before ``cliquet.initialize``) and
    from ``config.include("cliquet_riak")`` after it: in the latter case the
    memory cache the core already built is replaced, unless the application
    chose a cache backend itself.
    """
    from cliquet.settings import declare_settings, explicit_setting

    from cliquet_riak.cache import RIAK_SETTINGS, load_from_config

    registry = config.registry
    if getattr(registry, "cliquet_riak_included", False):
        return
    registry.cliquet_riak_included = True
    declare_settings(config, RIAK_SETTINGS)
    settings = config.get_settings()
    chosen = explicit_setting(registry, "cache_backend")
    if chosen is None:
        settings["cliquet.cache_backend"] = BACKEND
        if getattr(registry, "cache", None) is not None:
            # cliquet was set up already, with its default cache: replace it.
            registry.cache = load_from_config(config)
        chosen = BACKEND
    if not _is_riak(chosen):
        return
    from cliquet.setup import add_heartbeat_check

    add_heartbeat_check(config, "riak", heartbeat_check)  # works before and after cliquet is included
