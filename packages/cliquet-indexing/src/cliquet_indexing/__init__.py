"""cliquet-indexing: every record change indexed, searchable at
``/v1/search/{resource_name}``.

Include it in the application's INI file::

    pyramid.includes = cliquet_indexing

The indexer is named by ``cliquet.indexing_backend`` (default: the embedded
SQLite FTS5 indexer, :mod:`cliquet_indexing.embedded`).
"""

from __future__ import annotations

from cliquet_indexing.__about__ import __version__

__all__ = ["__version__", "includeme"]


def includeme(config):
    """Load the indexer, subscribe the listeners, add the search service."""
    from cliquet_indexing.setup import includeme as _includeme

    _includeme(config)
