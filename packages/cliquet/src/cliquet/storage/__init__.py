"""Storage: where the records of every resource live.

A storage backend is a module with a ``load_from_config(config)`` function
returning an instance of :class:`StorageBase`. It is picked with the
``cliquet.storage_backend`` setting (a dotted name).

Records are JSON objects (dicts) addressed by three strings: the
*collection id* (usually the resource name), the *parent id* (the scope: on a
per-user resource, the user id) and the *object id*. Every record carries its
``id`` and its ``last_modified`` timestamp.

Rules every backend follows (and the shared contract suite in
:mod:`cliquet.testing.storage` checks):

* Timestamps are integers of milliseconds since the epoch. Within one
  ``(collection_id, parent_id)`` they are strictly increasing and unique, even
  for writes within one millisecond or from concurrent writers: a new
  timestamp is ``max(now, previous + 1)``.
* Deleting a record leaves a *tombstone* ``{"id", "last_modified", "deleted":
  true}`` that :meth:`StorageBase.get_all` returns when asked to include
  deleted records, so that clients polling with ``_since`` learn about it.
* Comparison filters only match values of the same JSON type as the filter
  value (numbers are one type, booleans another). ``NOT`` and ``EXCLUDE`` also
  match records where the field is missing.
* When sorting, records that lack the sort field come last in ascending order
  and first in descending order.
* Driver exceptions never leak: they are wrapped in
  :class:`~cliquet.storage.exceptions.BackendError`.
"""

from __future__ import annotations

import collections.abc
import contextlib
import enum
from collections import namedtuple
from typing import Any, Iterable, Sequence

from cliquet.storage.exceptions import (  # noqa: F401 (re-exported)
    BackendError,
    HistoryPurgedError,
    ReadonlyError,
    RecordNotFoundError,
    UnicityError,
)


class COMPARISON(enum.Enum):
    """Operators of a :class:`Filter`; the value is the querystring prefix."""

    EQ = ""
    NOT = "not_"
    LT = "lt_"
    GT = "gt_"
    MIN = "min_"  #: greater than or equal
    MAX = "max_"  #: less than or equal
    IN = "in_"
    EXCLUDE = "exclude_"


Filter = namedtuple("Filter", ["field", "value", "operator"])
"""One condition on the records: ``field`` (a dotted path for nested values),
``value`` (a JSON value, a list for ``IN``/``EXCLUDE``) and ``operator`` (a
:class:`COMPARISON`)."""

Sort = namedtuple("Sort", ["field", "direction"])
"""One sort key: ``field`` (a dotted path) and ``direction`` (``1`` ascending,
``-1`` descending)."""


class AccessibleIds(collections.abc.Set):
    """The value of an ``IN`` filter on ``id`` meaning "the records these
    principals may access": a lazily computed set of ids.

    Backends may use it as any set (iterating it loads the ids once, through
    ``loader``), or translate it into their own query when they keep the
    permissions themselves (PostgreSQL joins its ACE table: the read check
    then happens inside the record query). It is hashable by ``key`` —
    principals, permissions, object id prefix and ``version`` — so query
    caches can key on it cheaply.

    Only a caller that knows a version which changes with *every* change of
    the permissions it reads (committed or undone, never reused) should
    give one: a collection timestamp is not one (it moves before the
    permissions written with a record, and a permission may change without
    a record write). Without a version (``None``, the default) two instances
    are never equal, so no cache can serve a stale read check; a backend
    that can version the permissions itself (the memory storage with the
    memory permission backend joined to it) keys its caches on that
    instead.

    :param principals: the caller's principals.
    :param permissions: any of these grants access (``("read", "write")``).
    :param prefix: object ids are ``prefix + record id``.
    :param version: see above; ``None`` for "unique to this instance".
    :param loader: returns the accessible record ids.
    :param source: the permission backend the ids come from (a backend that
        shares its database may query it directly instead of loading them).
    """

    def __init__(self, principals, permissions, prefix, version=None, loader=None, source=None):
        self.source = source
        self.principals = tuple(principals)
        self.permissions = tuple(permissions)
        self.prefix = prefix
        self.key = (self.principals, self.permissions, prefix, object() if version is None else version)
        self._loader = loader
        self._ids = None

    @property
    def ids(self) -> frozenset:
        """The accessible ids (computed on first use)."""
        if self._ids is None:
            self._ids = frozenset(self._loader())
        return self._ids

    def __contains__(self, value):
        return value in self.ids

    def __iter__(self):
        return iter(self.ids)

    def __len__(self):
        return len(self.ids)

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        if isinstance(other, AccessibleIds):
            return self.key == other.key
        return NotImplemented

    def __repr__(self):
        return f"<AccessibleIds {self.permissions} by {self.principals} under {self.prefix!r}>"


DEFAULT_ID_FIELD = "id"
DEFAULT_MODIFIED_FIELD = "last_modified"
DEFAULT_DELETED_FIELD = "deleted"


class StorageBase:
    """The storage API. Every method must be implemented by a backend.

    All methods are scoped by ``collection_id`` and ``parent_id``: two records
    with the same id in different scopes are unrelated.
    """

    id_field = DEFAULT_ID_FIELD
    modified_field = DEFAULT_MODIFIED_FIELD
    deleted_field = DEFAULT_DELETED_FIELD

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Create whatever the backend needs (tables, indexes). Idempotent.

        :param dry_run: only log what would be done.
        """
        raise NotImplementedError

    def schema_pending(self) -> str | None:
        """Return why this backend's schema is not ready, or ``None``.

        A short phrase (``"missing"``, ``"at version 2 of 3"``) when the
        schema :meth:`initialize_schema` creates is absent or older than this
        code; ``None`` when it is up to date or when the backend has no
        schema (the default: memory and Redis have none). Never writes.
        Checked at start-up and by ``/__heartbeat__`` (:mod:`cliquet.schema`).

        :raises BackendError: the server cannot be asked, or holds a newer
            schema than this code knows.
        """
        return None

    def flush(self) -> None:
        """Remove every record, tombstone and timestamp. For tests."""
        raise NotImplementedError

    def heartbeat(self) -> bool:
        """Return ``True`` when the backend answers, ``False`` otherwise.

        Never raises: the ``/__heartbeat__`` view reports the result.
        """
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self):
        """Run the enclosed calls as one unit: all of them or none.

        Nested uses are savepoints: an exception inside the inner block undoes
        only the inner block's writes. The HTTP layer opens one transaction per
        request and one nested transaction per batch sub-request.
        Backends without transactions may keep this default (no-op).
        """
        yield

    def collection_timestamp(self, collection_id: str, parent_id: str) -> int:
        """Return the timestamp of the latest change in the collection.

        For a collection that never changed, return (and remember) the current
        time, so that successive calls agree.
        """
        raise NotImplementedError

    def create(
        self,
        collection_id: str,
        parent_id: str,
        record: dict,
        id_generator=None,
    ) -> dict:
        """Store a new record and return it with its ``id`` and ``last_modified``.

        :param record: the fields; if it has an ``id`` it is used as is,
            otherwise ``id_generator()`` provides one.
        :raises UnicityError: a record (not a tombstone) already has this id.
        """
        raise NotImplementedError

    def get(self, collection_id: str, parent_id: str, object_id: str) -> dict:
        """Return the record.

        :raises RecordNotFoundError: no such record (or only a tombstone).
        """
        raise NotImplementedError

    def update(self, collection_id: str, parent_id: str, object_id: str, record: dict) -> dict:
        """Replace the record (or create it) and return it with a new timestamp.

        The stored record is ``record`` with ``id`` set to ``object_id``; a
        tombstone with that id is replaced.
        """
        raise NotImplementedError

    def delete(
        self,
        collection_id: str,
        parent_id: str,
        object_id: str,
        with_deleted: bool = True,
        last_modified: int | None = None,
    ) -> dict:
        """Delete the record and return its tombstone.

        :param with_deleted: leave a tombstone (``True``) or nothing.
        :param last_modified: the tombstone's timestamp, if the caller needs
            one (it still must be newer than the collection's).
        :raises RecordNotFoundError: no such record.
        """
        raise NotImplementedError

    def delete_all(
        self,
        collection_id: str,
        parent_id: str,
        filters: Sequence[Filter] | None = None,
        with_deleted: bool = True,
    ) -> list[dict]:
        """Delete every record matching ``filters`` and return their tombstones."""
        raise NotImplementedError

    def purge_deleted(self, collection_id: str, parent_id: str, before: int | None = None) -> int:
        """Remove tombstones (older than ``before`` if given); return how many.

        ``collection_id`` and ``parent_id`` may be ``None`` to purge every
        collection.
        """
        raise NotImplementedError

    def parent_ids(self, collection_id: str) -> list[str]:
        """Return the parent ids holding records of ``collection_id``, sorted.

        For tools that walk a collection for every user (re-indexing,
        exports). Parents whose records are all deleted may be listed too.

        .. versionadded:: 3.2
        """
        raise NotImplementedError

    def purged_before(self, collection_id: str, parent_id: str) -> int | None:
        """Return the purge horizon of the collection: tombstones older than
        this timestamp may have been removed by :meth:`purge_deleted`
        (``None`` if nothing was ever purged).

        A client whose last sync is older than the horizon may have missed
        deletions: the HTTP layer tells it to start over.
        """
        raise NotImplementedError

    def get_all(
        self,
        collection_id: str,
        parent_id: str,
        filters: Sequence[Filter] | None = None,
        sorting: Sequence[Sort] | None = None,
        after: Sequence[Any] | None = None,
        limit: int | None = None,
        include_deleted: bool = False,
    ) -> tuple[list[dict], int]:
        """Return a page of records and the number of records matching.

        :param filters: conditions, all of which must hold.
        :param sorting: sort keys, most significant first. Callers that
            paginate end it with a unique field (``id``) so the order is total.
        :param after: keyset pagination: values of the sort fields (one per
            :class:`Sort`, ``None`` for a missing field) of the last record of
            the previous page; only records strictly after it in the
            ``sorting`` order are returned.
        :param limit: at most that many records.
        :param include_deleted: also return tombstones (that match the
            filters on ``id`` and ``last_modified``).
        :returns: ``(records, total)`` where ``total`` counts the records (not
            tombstones) matching ``filters``, whatever ``after`` and ``limit``.
        """
        raise NotImplementedError

    def get_all_with_timestamp(
        self,
        collection_id: str,
        parent_id: str,
        filters: Sequence[Filter] | None = None,
        sorting: Sequence[Sort] | None = None,
        after: Sequence[Any] | None = None,
        limit: int | None = None,
        include_deleted: bool = False,
    ) -> tuple[list[dict], int, int]:
        """Return :meth:`get_all`'s ``(records, total)`` and the collection's
        timestamp, read no later than the page: every change stamped at or
        before that timestamp is in the page (when it matches and fits). A
        client that polls with ``_since`` set to it misses nothing; it may
        see a change twice.

        The default reads the timestamp, then the page (two calls); a
        backend may read both at once (one round trip) if it keeps that
        promise.
        """
        timestamp = self.collection_timestamp(collection_id, parent_id)
        records, total = self.get_all(collection_id, parent_id, filters=filters, sorting=sorting, after=after,
                                      limit=limit, include_deleted=include_deleted)
        return records, total, timestamp


def apply_defaults_to_record(record: dict, object_id: str, timestamp: int, id_field="id", modified_field="last_modified"):
    """Return a copy of ``record`` with its id and timestamp set."""
    new = dict(record)
    new[id_field] = object_id
    new[modified_field] = timestamp
    return new


def resolve_field(record: dict, path: str, missing=None):
    """Return the value at a dotted ``path`` in ``record`` (``missing`` if absent)."""
    if "." not in path:
        return record.get(path, missing)
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return missing
        value = value[part]
    return value


__all__: Iterable[str] = [
    "COMPARISON",
    "AccessibleIds",
    "Filter",
    "Sort",
    "StorageBase",
    "BackendError",
    "RecordNotFoundError",
    "UnicityError",
    "HistoryPurgedError",
    "ReadonlyError",
]
