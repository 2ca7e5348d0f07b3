"""The PostgreSQL indexer: the index in the storage's database, written in
the request's transaction.

The default indexer when storage is PostgreSQL (``cliquet.indexing_backend``
left empty); or explicitly::

    cliquet.indexing_backend = cliquet_indexing.postgresql
    cliquet.indexing_url =          # empty: the storage's database (cliquet.storage_url)

On the storage's database the indexer shares the storage's client, hence
its transaction: a record and its index entry commit together or not at
all (the listener runs on :class:`~cliquet.events.ResourceChanged`, before
the commit), so the index cannot drift from storage and a write is
searchable as soon as it is acknowledged. ``cliquet migrate`` creates the
table (``<indexing_prefix>cliquet_index``) and its GIN indexes (the first
write does too, on a service upgraded without it).

One row per record (``(resource, record id, parent id)``) holds its
version, read principals, the record, its words as a ``tsvector`` and its
leaves as JSONB (:mod:`~cliquet_indexing.postgresql.analysis`); a deletion
keeps the row as a tombstone. A write is one upsert per record whose
``WHERE`` applies the version rule of :class:`~cliquet_indexing.indexer.IndexerBase`.
A search is one statement (:mod:`~cliquet_indexing.postgresql.compiler`).
"""

from __future__ import annotations

from cliquet_indexing.postgresql.indexer import PostgreSQLIndexer

__all__ = ["PostgreSQLIndexer", "load_from_config", "database_url", "on_resource_changed"]

SCHEMES = ("postgresql://", "postgres://")


def database_url(settings) -> str | None:
    """The indexer's database: ``cliquet.indexing_url`` when it is a
    PostgreSQL URL, else the storage's (when storage is PostgreSQL)."""
    url = settings.get("cliquet.indexing_url") or ""
    if url.startswith(SCHEMES):
        return url
    if str(settings.get("cliquet.storage_backend") or "").endswith(".postgresql"):
        return settings.get("cliquet.storage_url") or None
    return None


def load_from_config(config) -> PostgreSQLIndexer:
    """Return the indexer on :func:`database_url`, sharing the storage's
    client (pool and transaction) when it is the same database."""
    from cliquet.settings import declare_settings
    from cliquet.storage.postgresql_client import get_client

    from cliquet_indexing.settings import INDEXING_SETTINGS

    declare_settings(config, INDEXING_SETTINGS)
    settings = config.get_settings()
    url = database_url(settings)
    if not url:
        raise ValueError("the PostgreSQL indexer needs cliquet.indexing_url = postgresql://… "
                         "or a PostgreSQL storage")
    client = get_client(url, pool_size=settings.get("cliquet.storage_pool_size") or 10,
                        pool_timeout=settings.get("cliquet.storage_pool_timeout") or 30.0)
    return PostgreSQLIndexer(client, prefix=settings.get("cliquet.indexing_prefix") or "",
                             max_size=settings.get("cliquet.search_max_size"))


def on_resource_changed(event) -> None:
    """Index the changes of ``event`` inside the request's transaction (a
    listener of :class:`~cliquet.events.ResourceChanged`): an error fails the
    request and undoes its writes."""
    from cliquet_indexing.listeners import is_indexed
    from cliquet_indexing.retry import INDEX, operations_of

    registry = event.request.registry
    indexer = getattr(registry, "indexer", None)
    resource_name = event.payload["resource_name"]
    if not getattr(indexer, "transactional", False) or not is_indexed(registry, resource_name):
        return
    operations = operations_of(event)
    entries = [payload for op, _, _, payload in operations if op == INDEX]
    deletions = [(parent_id, record_id, payload) for op, parent_id, record_id, payload in operations if op != INDEX]
    if entries:
        indexer.index_records(resource_name, entries)
    if deletions:
        indexer.unindex_records(resource_name, deletions)
