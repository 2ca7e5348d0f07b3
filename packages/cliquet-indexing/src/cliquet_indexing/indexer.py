"""The indexer API: :class:`IndexerBase`, and what flows through it.

An indexer backend is a module with ``load_from_config(config)`` returning an
instance of :class:`IndexerBase`, picked with ``cliquet.indexing_backend``.
The default is :mod:`cliquet_indexing.embedded` (SQLite FTS5, no server).

What is indexed
    An :class:`IndexEntry` per record: the record as the resource returns it
    (``id`` and ``last_modified`` included), the storage ``parent_id`` it
    belongs to (the owner for per-user resources) and ``read_principals``,
    the principals allowed to read it. A record is identified in the index by
    ``(resource_name, parent_id, record id)``: two users may own records with
    the same id.

What is searched
    :meth:`IndexerBase.search` receives a query *already validated* by
    :meth:`IndexerBase.validate_query` — by default the portable subset of the
    Elasticsearch query DSL (:mod:`cliquet_indexing.query`), normalized so
    that ``query``, ``sort``, ``size`` and ``from`` are always present — and
    the caller's principals. Only records whose ``read_principals`` intersect
    those principals exist for the query: the read scope is part of the query
    inside the engine, so totals and pages are exact.

Rules every backend follows (checked by :mod:`cliquet_indexing.testing`):

* Every write carries the record's version, its ``last_modified``: an
  :class:`IndexEntry` its record's, a deletion (:meth:`~IndexerBase.unindex_records`)
  the tombstone's. For each key the index keeps what the *newest* write
  said, whatever order the writes arrive in: an entry older than the one
  indexed, or not newer than a deletion, is ignored; a deletion older than
  the entry indexed is ignored. A backend remembers deletions (a tombstone)
  so that a late write — another worker's event, a retry after an outage —
  never brings a deleted record back. At equal versions a deletion wins and
  an entry replaces an entry (so re-indexing is idempotent).
* Writes are visible to the next :meth:`~IndexerBase.search` (a backend with
  a refresh interval refreshes before returning from a write).
* ``prefix`` namespaces everything: two indexers with different prefixes on
  one server never see each other's entries, and :meth:`~IndexerBase.flush`
  only removes its own (tombstones included).
* Driver errors surface as :class:`~cliquet.storage.exceptions.BackendError`;
  a malformed query as :class:`~cliquet_indexing.query.InvalidQuery`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Iterator

from cliquet_indexing import query as portable

__all__ = ["IndexerBase", "IndexEntry", "SearchResult", "version_of"]


@dataclasses.dataclass(frozen=True)
class IndexEntry:
    """One record to index.

    :param parent_id: the storage scope of the record (``payload["user_id"]``
        of the resource events: the owner's user id for per-user resources).
    :param record: the record as the resource returns it (with ``id`` and
        ``last_modified``).
    :param read_principals: who may read it (``"system.Everyone"``,
        ``"system.Authenticated"``, user ids, group ids — plain strings).
    """

    parent_id: str
    record: dict
    read_principals: tuple = ()

    @property
    def key(self) -> tuple[str, str]:
        """``(parent_id, record id)``: the identity of the entry in a resource."""
        return (self.parent_id, self.record["id"])

    @property
    def version(self) -> int:
        """The record's ``last_modified`` (``0`` when it has none)."""
        return version_of(self.record)


def version_of(record: dict) -> int:
    """Return ``record["last_modified"]`` as an ``int`` (``0`` when missing
    or not a number): the version an index write carries."""
    value = record.get("last_modified")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(int(value), 0)


@dataclasses.dataclass
class SearchResult:
    """The answer of :meth:`IndexerBase.search`.

    :param records: the page of records (at most ``size``, after ``from``),
        as they were indexed.
    :param total: how many records match in all (within the read scope).
    :param extra: backend-specific additions (e.g. Elasticsearch
        ``aggregations``), returned beside ``data`` by the endpoint.
    """

    records: list
    total: int
    extra: dict = dataclasses.field(default_factory=dict)


class IndexerBase:
    """The indexer API. Every method but :meth:`validate_query` and
    :meth:`close` must be implemented by a backend.

    :param prefix: namespaces the indexes (``cliquet.indexing_prefix``).
    :param max_size: the largest ``size`` a search may ask
        (``cliquet.search_max_size``).

    :attr:`limits` (a :class:`~cliquet_indexing.query.Limits`) bounds every
    search; the application sets it from the ``cliquet.search_*`` settings.
    """

    #: the bounds of a search (the defaults until the application sets its own).
    limits: portable.Limits = portable.Limits()

    def __init__(self, prefix: str = "", max_size: int = portable.DEFAULT_MAX_SIZE, **kwargs):
        self.prefix = prefix
        self.max_size = max_size

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Create what the backend needs (tables, index templates). Idempotent.

        Indexes of new resources are created on first write, without a call
        to this method.
        """
        raise NotImplementedError

    def flush(self) -> None:
        """Remove every entry of every resource of this indexer's prefix."""
        raise NotImplementedError

    def heartbeat(self) -> bool:
        """Return ``True`` when the backend answers; never raises."""
        raise NotImplementedError

    def index_records(self, resource_name: str, entries: Iterable[IndexEntry]) -> None:
        """Add or replace the entries (in bulk) and make them searchable.

        An entry is skipped when the index holds the same key at a greater
        version (:attr:`IndexEntry.version`), or a deletion at the same or a
        greater one.
        """
        raise NotImplementedError

    def unindex_records(self, resource_name: str, keys: Iterable[tuple[str, str, int]]) -> None:
        """Delete the records ``(parent_id, record id, version)``.

        ``version`` is the deletion's ``last_modified`` (the storage
        tombstone's). An entry indexed at a greater version stays; otherwise
        the entry goes and the deletion is remembered, so that a later
        :meth:`index_records` of a version up to this one is ignored.
        Missing keys are fine (the deletion is remembered all the same).
        """
        raise NotImplementedError

    def indexed_keys(self, resource_name: str) -> Iterator[tuple[str, str, int]]:
        """Yield ``(parent_id, record id, version)`` of every entry of a resource
        (deletions excluded).

        Used by ``cliquet-indexing reindex`` to remove entries that storage no
        longer has. An unknown resource yields nothing.
        """
        raise NotImplementedError

    def search(self, resource_name: str, query: dict, principals: Iterable[str]) -> SearchResult:
        """Run a validated ``query`` within the read scope ``principals``.

        :param query: the output of :meth:`validate_query`: ``{"query": {...},
            "sort": [{field: "asc"|"desc"}, ...], "size": int, "from": int}``
            (plus whatever extra keys the backend's validation let through).
        :param principals: the caller's principals; only entries whose
            ``read_principals`` contain one of them are considered.
        :returns: a :class:`SearchResult`. With ``sort``, records come in
            that order, missing values last, ties broken by record ``id``
            ascending; without it, by relevance (order otherwise unspecified).
            An unknown resource gives no records and a total of 0.
        """
        raise NotImplementedError

    def validate_query(self, body: Any) -> dict:
        """Check and normalize a search request body (not abstract).

        The default accepts exactly the portable subset
        (:func:`cliquet_indexing.query.validate`); a backend that accepts
        more overrides it.

        :raises cliquet_indexing.query.InvalidQuery: with ``details``, a list
            of ``{"location": "body", "name": <path>, "description": ...}``.
        """
        return portable.validate(body, max_size=self.max_size, limits=self.limits)

    def close(self) -> None:
        """Release connections (not abstract: the default does nothing)."""
