"""The embedded indexer: SQLite FTS5 through the standard library, no server.

``cliquet.indexing_backend = cliquet_indexing.embedded`` (the default).
``cliquet.indexing_url`` empty keeps the index in memory (one per process,
gone at exit: run ``cliquet-indexing reindex`` or let the app re-index as it
writes); ``sqlite:////abs/path/index.db`` (or ``sqlite:///relative.db``)
keeps it in a file that several processes can share. ``?timeout=SECONDS``
sets how long a call waits for a file locked by another process before it
fails (default 5).

How a record is stored (one set of tables per ``cliquet.indexing_prefix``):

``docs``
    one row per record: resource, parent id, record id, ``last_modified``
    and the record as JSON.
``scope``
    one row per (record, read principal); the read scope of a search is a
    semi-join on it, inside the SQL query.
``vals``
    one row per scalar leaf (list elements and nested objects flattened, as
    Elasticsearch does): the field's code, the kind (boolean, number,
    string) and the value, indexed by ``(field, kind, value)`` for
    ``term``/``terms``/``range``/``prefix``/``exists`` and by ``(doc, field,
    value)`` for probes and sort keys.
``fts``
    an FTS5 table whose tokens are the words of string leaves, each made
    unique to its (resource, field) — ``c12xcats`` — plus one token per word
    for the resource as a whole (``multi_match`` on ``*``), so full-text
    clauses on any field are single FTS5 lookups and phrases keep their
    positions.

See :mod:`cliquet_indexing.embedded.compiler` for how a query becomes SQL.
"""

from __future__ import annotations

from cliquet_indexing.embedded.indexer import EmbeddedIndexer, parse_url

__all__ = ["EmbeddedIndexer", "load_from_config", "parse_url"]


def load_from_config(config) -> EmbeddedIndexer:
    """Return the embedded indexer configured by ``cliquet.indexing_url``,
    ``cliquet.indexing_prefix`` and ``cliquet.search_max_size``."""
    from cliquet.settings import declare_settings

    from cliquet_indexing.settings import INDEXING_SETTINGS

    declare_settings(config, INDEXING_SETTINGS)
    settings = config.get_settings()
    return EmbeddedIndexer(url=settings.get("cliquet.indexing_url"),
                           prefix=settings.get("cliquet.indexing_prefix") or "",
                           max_size=settings.get("cliquet.search_max_size"))
