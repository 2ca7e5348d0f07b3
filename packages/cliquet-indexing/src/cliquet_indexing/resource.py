"""The explicit variant: resources that declare they are indexed.

Including ``cliquet_indexing`` indexes every resource through events, with no
subclassing. An application that prefers to say which resources are
searchable (the seed's ``IndexedResource``) sets
``cliquet.indexing_resources =`` (empty: none by default) and derives those
resources from :class:`IndexedResource` or :class:`IndexedShareableResource`.
They go through the same listener, the same indexer and the same retry
queue, so their changes are indexed once committed, never before::

    from cliquet_indexing.resource import IndexedResource

    @resource.register()
    class Article(IndexedResource):
        schema = ArticleSchema
"""

from __future__ import annotations

from cliquet.resource import ShareableResource, UserResource

__all__ = ["Indexed", "IndexedResource", "IndexedShareableResource"]


class Indexed:
    """Mixin: the records of this resource are always indexed and searchable."""

    #: read by :func:`cliquet_indexing.listeners.is_indexed`.
    indexed = True

    def search(self, query: dict):
        """Search this resource as the current caller (a validated portable
        query, see :mod:`cliquet_indexing.query`).

        :returns: a :class:`~cliquet_indexing.indexer.SearchResult`.
        """
        indexer = self.request.registry.indexer
        return indexer.search(self.name, indexer.validate_query(query), self.request.principals)


class IndexedResource(Indexed, UserResource):
    """A per-user resource whose records are indexed."""


class IndexedShareableResource(Indexed, ShareableResource):
    """A shareable resource whose records are indexed (with their readers)."""
