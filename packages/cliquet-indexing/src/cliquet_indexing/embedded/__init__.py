"""The embedded indexer: SQLite FTS5 through the standard library, no server.

``cliquet.indexing_url = sqlite:////abs/path/index.db`` (or
``sqlite:///relative.db``) keeps the index in a file that every process of
the service shares; ``memory`` keeps it in the process's memory. Empty (the
default) means memory beside the memory storage, and beside a shared storage
a file chosen by :func:`default_url`. ``?timeout=SECONDS``
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

import os

from cliquet_indexing.embedded.indexer import EmbeddedIndexer, parse_url

__all__ = ["EmbeddedIndexer", "load_from_config", "parse_url", "default_url"]


def load_from_config(config) -> EmbeddedIndexer:
    """Return the embedded indexer configured by ``cliquet.indexing_url``,
    ``cliquet.indexing_prefix`` and ``cliquet.search_max_size``."""
    from cliquet.settings import declare_settings

    from cliquet_indexing.settings import INDEXING_SETTINGS

    declare_settings(config, INDEXING_SETTINGS)
    settings = config.get_settings()
    url = settings.get("cliquet.indexing_url") or default_url(settings)
    return EmbeddedIndexer(url=url, prefix=settings.get("cliquet.indexing_prefix") or "",
                           max_size=settings.get("cliquet.search_max_size"))


def default_url(settings) -> str | None:
    """The index when ``cliquet.indexing_url`` is empty: in memory beside a
    memory storage (both live and die with the process); beside a shared
    storage, a file in a private directory of the system's temporary
    directory named after the storage URL and the prefix, so that every
    process of the service — workers, ``cliquet-indexing reindex`` — uses
    the same index."""
    import hashlib
    import logging
    import tempfile

    backend = str(settings.get("cliquet.storage_backend") or "cliquet.storage.memory")
    if backend.endswith(".memory"):
        return None
    key = "\n".join([backend, str(settings.get("cliquet.storage_url") or ""),
                     str(settings.get("cliquet.indexing_prefix") or "")])
    directory = os.path.join(tempfile.gettempdir(), f"cliquet-indexing-{os.getuid()}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, hashlib.sha256(key.encode()).hexdigest()[:20] + ".db")
    logging.getLogger("cliquet_indexing").info(
        "Embedded index in %s (shared by this service's processes; cliquet.indexing_url chooses another)", path)
    return "sqlite:///" + path
