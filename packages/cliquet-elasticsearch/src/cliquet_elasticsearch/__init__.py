"""cliquet-elasticsearch: an Elasticsearch indexer for Cliquet services.

Two ways to enable it. Include the package — it makes Elasticsearch the
indexing backend (unless the application named another one) and includes
``cliquet_indexing``, so records are indexed and ``/search/{resource}``
answers::

    config.include("cliquet_elasticsearch")       # in code
    pyramid.includes = cliquet_elasticsearch      # in the INI file

or, in an application that already includes ``cliquet_indexing``, name the
package as the backend (no file to edit: environment variables work too)::

    cliquet.indexing_backend = cliquet_elasticsearch
    cliquet.indexing_url = http://127.0.0.1:9200

See :mod:`cliquet_elasticsearch.indexer` and ``docs/elasticsearch.rst``.
"""

from __future__ import annotations


from cliquet.settings import Setting, as_duration, as_int, as_str, explicit_setting

from cliquet_elasticsearch.__about__ import __version__

__all__ = ["__version__", "includeme", "load_from_config", "migrate", "ELASTICSEARCH_SETTINGS", "DEFAULT_PREFIX"]

BACKEND = "cliquet_elasticsearch"
#: cliquet-indexing's own default backend, which including this package replaces.
#: the prefix of indexes when ``cliquet.indexing_prefix`` is empty.
DEFAULT_PREFIX = "cliquet_"


def _refresh(value):
    from cliquet_elasticsearch.indexer import REFRESH_POLICIES

    value = str(value).strip().lower()
    if value not in REFRESH_POLICIES:
        raise ValueError(f"expected one of {', '.join(REFRESH_POLICIES)}")
    return value


def _positive(value):
    number = as_int(value)
    if number is None or number < 1:
        raise ValueError("expected an integer >= 1")
    return number


def _non_negative(value):
    number = as_int(value)
    if number is None or number < 0:
        raise ValueError("expected an integer >= 0")
    return number


#: Settings of this backend (``cliquet.<name>``, or the ``CLIQUET_<NAME>`` variable).
ELASTICSEARCH_SETTINGS = {
    "elasticsearch_refresh": Setting("true", _refresh,
                                     doc="After a write: refresh (true: searchable at once), wait_for the "
                                         "next periodic refresh, or false."),
    "elasticsearch_timeout": Setting(10.0, as_duration, doc="Seconds an Elasticsearch request may take."),
    "elasticsearch_bulk_size": Setting(1000, _positive, doc="Records per bulk request."),
    "elasticsearch_shards": Setting(1, _positive, doc="Primary shards of each new index."),
    "elasticsearch_replicas": Setting("0-1", as_str,
                                      doc="Replicas of each new index: a number, or a range such as 0-1 "
                                          "(auto-expanded to the nodes available)."),
    "elasticsearch_max_retries": Setting(2, _non_negative,
                                         doc="Retries of a request on another node after a connection error."),
}


def load_from_config(config):
    """Return an :class:`~cliquet_elasticsearch.indexer.ElasticsearchIndexer`
    built from the settings: ``cliquet.indexing_url`` (one or several node
    URLs), ``cliquet.indexing_prefix`` (default ``cliquet_``),
    ``cliquet.search_max_size`` and the ``cliquet.elasticsearch_*`` ones."""
    from cliquet.settings import declare_settings
    from cliquet_indexing.settings import INDEXING_SETTINGS

    from cliquet_elasticsearch.indexer import ElasticsearchIndexer

    declare_settings(config, INDEXING_SETTINGS)
    declare_settings(config, ELASTICSEARCH_SETTINGS)
    hooks = getattr(config.registry, "cliquet_migrate_hooks", None)
    if hooks is None:
        hooks = config.registry.cliquet_migrate_hooks = []
    if migrate not in hooks:
        hooks.append(migrate)
    settings = config.get_settings()
    return ElasticsearchIndexer(
        url=settings.get("cliquet.indexing_url"),
        prefix=settings.get("cliquet.indexing_prefix") or DEFAULT_PREFIX,
        max_size=settings.get("cliquet.search_max_size"),
        refresh=settings["cliquet.elasticsearch_refresh"],
        timeout=settings["cliquet.elasticsearch_timeout"],
        bulk_size=settings["cliquet.elasticsearch_bulk_size"],
        shards=settings["cliquet.elasticsearch_shards"],
        replicas=settings["cliquet.elasticsearch_replicas"],
        max_retries=settings["cliquet.elasticsearch_max_retries"],
    )


def migrate(registry, dry_run: bool = False) -> None:
    """The ``cliquet migrate`` hook: check the cluster, update the mappings
    of existing indexes and create the index of every indexed resource."""
    from cliquet_indexing.listeners import is_indexed

    from cliquet_elasticsearch.indexer import ElasticsearchIndexer

    indexer = getattr(registry, "indexer", None)
    if not isinstance(indexer, ElasticsearchIndexer):
        return
    print(f"indexer: initializing {BACKEND} at {indexer.url}{' (dry run)' if dry_run else ''}")
    indexer.initialize_schema(dry_run=dry_run)
    names = sorted(n for n in getattr(registry, "cliquet_resources", {}) if is_indexed(registry, n))
    for name in indexer.create_indexes(names, dry_run=dry_run):
        print(f"indexer: {'would create' if dry_run else 'created'} index {name}")


#: The discriminator of "this plugin makes itself the default indexer": two
#: plugins claiming it fail at commit with a ConfigurationConflictError.
DEFAULT_INDEXER_DISCRIMINATOR = ("cliquet.default_backend", "indexing")


def includeme(config):
    """Include ``cliquet_indexing`` and, at commit, make Elasticsearch the
    indexing backend (unless the application set one).

    Only registers: the work is a configuration action, so including it
    twice is harmless (Pyramid runs an ``includeme`` once per configuration),
    and another plugin claiming the default indexer is a
    :class:`~pyramid.exceptions.ConfigurationConflictError` at start-up. The
    action runs before ``cliquet_indexing`` builds its indexer; an indexer
    built by an earlier commit is replaced.
    """
    from cliquet.settings import declare_settings

    declare_settings(config, ELASTICSEARCH_SETTINGS)
    # Before cliquet-indexing builds the indexer (order -10).
    config.action(DEFAULT_INDEXER_DISCRIMINATOR, lambda: _take_indexing_default(config), order=-20)
    config.include("cliquet_indexing")


def _take_indexing_default(config):
    """The action of :func:`includeme`."""
    registry = config.registry
    if explicit_setting(registry, "indexing_backend") is not None:
        return
    config.get_settings()["cliquet.indexing_backend"] = BACKEND
    if getattr(registry, "indexer", None) is not None:
        # An indexer built by an earlier commit: replace it, in the retry
        # queue too.
        from cliquet_indexing.setup import load_indexer  # (with the search limits)

        registry.indexer = load_indexer(config)
        retry = getattr(registry, "indexing_retry", None)
        if retry is not None:
            retry.indexer = registry.indexer
