"""Storage in the memory of the process: for development, tests and
single-process deployments. Everything is lost when the process stops.

``cliquet.storage_backend = cliquet.storage.memory``

How it stays fast at any size:

* Each ``(collection_id, parent_id)`` keeps its records in an
  insertion-ordered dict where every write removes and re-inserts the
  record: iteration order *is* ``last_modified`` order. A ``_since`` query
  (a ``GT``/``MIN`` filter on ``last_modified``) walks from the newest end
  and stops at the bound, whatever the size of the collection. Tombstones are
  kept the same way.
* A small LRU of *views* (:mod:`cliquet.storage.views`) keeps, per
  filters, sorting and ``include_deleted``, the sorted list of matching
  records and their count, and every write updates them in place (a binary
  search out, one in): repeated pages, counts and polls cost O(page size)
  whether or not others are writing, and ``after`` positions are found by
  binary search. An undo drops the views of the collections it touched. A
  read check (an :class:`~cliquet.storage.AccessibleIds` filter) is kept
  by a :class:`~cliquet.storage.views.ReadScope` that follows the
  permission backend's change feed; a backend without one is not kept
  (the query runs whole each time). With the memory permission backend
  joined, the commit of a transaction that wrote records also brings up
  to date the read scopes of their collections' views whose principals it
  granted or revoked, so a list made while a writer is busy finds its view
  current (the writer pays for the records it shared, as it pays for the
  records it wrote).
* Stored records are never mutated in place; callers get deep copies (and
  their input is copied), so they may modify what they pass or receive.

**Transactions are isolated**: the outermost :meth:`Storage.transaction`
of a thread holds one re-entrant lock, the :class:`Isolation` of the
backend, until it ends; every call made outside a transaction takes the
same lock for its own duration. So a transaction never sees another one's
writes before they commit, nor is seen before it commits: transactions are
serializable (they run one after the other), ``If-Match`` checked inside a
request's transaction holds until its write, and no update can be lost —
which is why this backend never needs to raise
:class:`~cliquet.storage.exceptions.ConflictError`. The memory permission
backend joins the same :class:`Isolation`
(:meth:`~cliquet.permission.memory.Permission.join_transactions`): its
writes are journaled with the records and undone with them.

Inside, an undo journal per thread records every write. An exception
leaving a (nested) transaction block undoes the writes made inside it; a
successful inner block hands its journal to the enclosing one.

The cost: requests that use the memory backends run one at a time in the
process (the interpreter's lock already runs their Python code one thread at
a time), and a thread must not wait, while it is inside a transaction, for
another thread that uses these backends (that would deadlock).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import uuid
from collections import OrderedDict

import orjson

from cliquet.permission import PermissionBase
from cliquet.storage import COMPARISON, AccessibleIds, Sort, StorageBase
from cliquet.storage import query as q
from cliquet.storage.views import View
from cliquet.storage.exceptions import RecordNotFoundError, UnicityError

logger = logging.getLogger(__name__)

_SINCE_OPERATORS = (COMPARISON.GT, COMPARISON.MIN)


def _clone(value):
    """Deep copy of a JSON value (also checks that it is JSON-serialisable)."""
    return orjson.loads(orjson.dumps(value))


def _now_ms() -> int:
    return int(time.time() * 1000)


class Isolation:
    """What memory backends share to form one atomic, isolated unit.

    :attr lock: a re-entrant lock. The outermost transaction of a thread
        holds it from start to end; a backend call takes it for its own
        duration (re-entering it inside a transaction).

    Each thread has a stack of undo journals, one per open transaction
    block. A journal entry is ``(owner, change)``: undoing a journal calls
    ``owner.undo(changes)`` once per owner (with the changes oldest first),
    so that a storage and the permission backend joined to it undo together.
    """

    def __init__(self):
        self.lock = threading.RLock()
        self._local = threading.local()

    def _stack(self) -> list:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def journal(self) -> list | None:
        """The journal of this thread's innermost transaction block (``None`` outside one)."""
        stack = getattr(self._local, "stack", None)
        return stack[-1] if stack else None

    def active(self) -> bool:
        """Whether this thread is inside a transaction."""
        return bool(getattr(self._local, "stack", None))

    @contextlib.contextmanager
    def block(self):
        """One transaction block (the caller holds :attr:`lock`), yielding
        its journal: undone if it raises, else handed to the enclosing block."""
        stack = self._stack()
        journal: list = []
        stack.append(journal)
        try:
            yield journal
        except BaseException:
            stack.pop()
            self.undo(journal)
            raise
        stack.pop()
        if stack:
            stack[-1].extend(journal)

    @staticmethod
    def undo(journal: list) -> None:
        """Undo the changes of ``journal``, owner by owner."""
        by_owner: dict = {}
        for owner, change in journal:
            by_owner.setdefault(id(owner), (owner, []))[1].append(change)
        for owner, changes in by_owner.values():
            owner.undo(changes)


class _Bucket:
    """The state of one ``(collection_id, parent_id)``."""

    __slots__ = ("records", "tombstones", "timestamp", "version", "purged_before", "views")

    def __init__(self):
        self.records: dict = {}
        self.tombstones: dict = {}
        self.timestamp: int | None = None
        self.version = 0
        self.purged_before: int | None = None
        #: query key → :class:`~cliquet.storage.views.View`, kept by every write.
        self.views: dict = {}


class Storage(StorageBase):
    """A :class:`~cliquet.storage.StorageBase` in a Python dict.

    :param query_cache_size: how many query results the LRU keeps.
    :param query_cache_records: how many records (in total) it may reference.
    """

    def __init__(self, query_cache_size: int = 64, query_cache_records: int = 2_000_000):
        self._buckets: dict[tuple, _Bucket] = {}
        self._versions = itertools.count(1)
        self._cache: OrderedDict = OrderedDict()
        self._cache_records = 0
        self._cache_size = query_cache_size
        self._cache_max_records = query_cache_records
        #: shared with the memory permission backend that joins this storage.
        self.isolation = Isolation()
        self._lock = self.isolation.lock

    # -- administration ----------------------------------------------------

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Nothing to create in memory."""
        with self._lock:  # fails like a server would when the backend is down
            pass
        logger.info("memory storage: no schema to initialize%s", " (dry run)" if dry_run else "")

    def flush(self) -> None:
        """Forget every record, tombstone, timestamp and cached query."""
        with self._lock:
            self._buckets = {}
            self._cache.clear()
            self._cache_records = 0

    def heartbeat(self) -> bool:
        """Return ``True`` when the storage lock can be taken."""
        try:
            with self._lock:
                return True
        except Exception:
            return False

    # -- transactions ------------------------------------------------------

    def _journal(self):
        return self.isolation.journal()

    @contextlib.contextmanager
    def transaction(self):
        """Run the block as one isolated unit, undone if it raises (see module doc).

        The outermost block of a thread holds the lock of :attr:`isolation`
        until it ends; nested blocks are savepoints.
        """
        if self.isolation.active():
            with self.isolation.block():
                yield
            return
        with self._lock:
            with self.isolation.block() as journal:
                yield
            self._follow_read_scopes(journal)

    def _follow_read_scopes(self, journal) -> None:
        """At the commit of a transaction that wrote records, bring up to
        date the read scopes of their collections' views that its ACE
        changes concern (lock held).

        Only a joined backend's changes are followed here (they are in the
        journal; no round trip), and only the scopes of the principals they
        granted or revoked, so that a writer applies the ACEs it changed
        with its own commit, as it does its records, and a list that
        follows finds its scope current. It is never needed for
        correctness: every list asks the feed anyway (one cheap call when
        nothing changed for its principals); it moves the work from the
        lists to the write."""
        buckets, others = {}, {}
        for owner, change in journal:
            if owner is self:
                buckets[id(change[0])] = change[0]
            else:
                others.setdefault(id(owner), (owner, []))[1].append(change)
        touched = {}
        for key, (owner, changes) in others.items():
            principals_of = getattr(owner, "touched_principals", None)
            if principals_of is not None:
                touched[key] = principals_of(changes)
        if not buckets or not touched:
            return
        for bucket in buckets.values():
            try:
                for view in list(bucket.views.values()):
                    scope = view.scope
                    changed = touched.get(id(scope.source)) if scope is not None else None
                    if changed and not changed.isdisjoint(scope.principals):
                        self._refresh(bucket, view)
            except Exception:  # the transaction is committed: a list will build the views again
                logger.warning("memory storage: read scopes not followed at commit", exc_info=True)
                self._drop_views(bucket)

    def _refresh(self, bucket, view) -> None:
        """Apply to ``view`` the ACE changes its read scope has not seen (lock held)."""
        view.follow_scope(bucket.records, bucket.tombstones)

    def undo(self, changes: list) -> None:
        """Undo journaled record, tombstone and timestamp changes (newest last)."""
        with self._lock:
            touched = {}
            for bucket, kind, object_id, old in reversed(changes):
                touched[id(bucket)] = bucket
                if kind == "ts":
                    bucket.timestamp = old
                    continue
                store = bucket.records if kind == "r" else bucket.tombstones
                if old is None:
                    store.pop(object_id, None)
                else:
                    store[object_id] = old
            modified = self.modified_field
            for bucket in touched.values():
                highest = bucket.timestamp
                for name in ("records", "tombstones"):
                    store = getattr(bucket, name)
                    ordered = dict(sorted(store.items(), key=lambda item: item[1][modified]))
                    setattr(bucket, name, ordered)
                    if ordered:
                        last = next(reversed(ordered.values()))[modified]
                        highest = last if highest is None else max(highest, last)
                bucket.timestamp = highest
                bucket.version = next(self._versions)
                self._drop_views(bucket)

    # -- helpers (called with the lock held) ---------------------------------

    def _bucket(self, collection_id, parent_id) -> _Bucket:
        key = (collection_id, parent_id)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket()
        return bucket

    def _bump(self, bucket: _Bucket, journal, specified=None) -> int:
        """Give the bucket a new timestamp and version; return the timestamp."""
        previous = bucket.timestamp
        if journal is not None:
            journal.append((self, (bucket, "ts", None, previous)))
        if type(specified) is int and (previous is None or specified > previous):
            current = specified
        else:
            current = _now_ms()
            if previous is not None and current <= previous:
                current = previous + 1
        bucket.timestamp = current
        bucket.version = next(self._versions)
        return current

    def _tombstone(self, object_id, timestamp) -> dict:
        return {self.id_field: object_id, self.modified_field: timestamp, self.deleted_field: True}

    def _remove(self, bucket, object_id, journal, with_deleted, last_modified=None) -> dict:
        old = bucket.records.pop(object_id)
        timestamp = self._bump(bucket, journal, last_modified)
        tombstone = self._tombstone(object_id, timestamp)
        previous_tombstone = bucket.tombstones.pop(object_id, None)
        if with_deleted:
            bucket.tombstones[object_id] = tombstone
        self._changed(bucket, object_id)
        if journal is not None:
            journal.append((self, (bucket, "r", object_id, old)))
            journal.append((self, (bucket, "t", object_id, previous_tombstone)))
        return tombstone

    # -- records -------------------------------------------------------------

    def collection_timestamp(self, collection_id: str, parent_id: str) -> int:
        """Return the collection's timestamp (the current time, remembered, if it never changed)."""
        with self._lock:
            bucket = self._bucket(collection_id, parent_id)
            if bucket.timestamp is None:
                bucket.timestamp = _now_ms()
            return bucket.timestamp

    def create(self, collection_id, parent_id, record, id_generator=None) -> dict:
        """Store a copy of ``record``; see :meth:`StorageBase.create`."""
        stored = _clone(record)
        object_id = stored.get(self.id_field)
        if object_id is None:
            object_id = id_generator() if id_generator is not None else str(uuid.uuid4())
        journal = self._journal()
        with self._lock:
            bucket = self._bucket(collection_id, parent_id)
            existing = bucket.records.get(object_id)
            if existing is not None:
                raise UnicityError(self.id_field, _clone(existing))
            stored[self.id_field] = object_id
            stored[self.modified_field] = self._bump(bucket, journal, stored.get(self.modified_field))
            tombstone = bucket.tombstones.pop(object_id, None)
            bucket.records[object_id] = stored
            self._changed(bucket, object_id)
            if journal is not None:
                journal.append((self, (bucket, "r", object_id, None)))
                journal.append((self, (bucket, "t", object_id, tombstone)))
        return _clone(stored)

    def get(self, collection_id, parent_id, object_id) -> dict:
        """Return a copy of the record; see :meth:`StorageBase.get`."""
        with self._lock:
            bucket = self._buckets.get((collection_id, parent_id))
            stored = bucket.records.get(object_id) if bucket is not None else None
        if stored is None:
            raise RecordNotFoundError(f"{collection_id}/{parent_id}/{object_id}")
        return _clone(stored)

    def update(self, collection_id, parent_id, object_id, record) -> dict:
        """Replace (or create) the record; see :meth:`StorageBase.update`."""
        stored = _clone(record)
        stored[self.id_field] = object_id
        journal = self._journal()
        with self._lock:
            bucket = self._bucket(collection_id, parent_id)
            old = bucket.records.pop(object_id, None)
            stored[self.modified_field] = self._bump(bucket, journal, stored.get(self.modified_field))
            tombstone = bucket.tombstones.pop(object_id, None)
            bucket.records[object_id] = stored
            self._changed(bucket, object_id)
            if journal is not None:
                journal.append((self, (bucket, "r", object_id, old)))
                journal.append((self, (bucket, "t", object_id, tombstone)))
        return _clone(stored)

    def delete(self, collection_id, parent_id, object_id, with_deleted=True, last_modified=None) -> dict:
        """Delete the record; see :meth:`StorageBase.delete`.

        ``last_modified`` is used when it is newer than the collection's
        timestamp; otherwise the tombstone gets the next timestamp.
        """
        journal = self._journal()
        with self._lock:
            bucket = self._buckets.get((collection_id, parent_id))
            if bucket is None or object_id not in bucket.records:
                raise RecordNotFoundError(f"{collection_id}/{parent_id}/{object_id}")
            tombstone = self._remove(bucket, object_id, journal, with_deleted, last_modified)
        return dict(tombstone)

    def delete_all(self, collection_id, parent_id, filters=None, with_deleted=True) -> list[dict]:
        """Delete the matching records; return their tombstones, oldest first."""
        matches = q.compile_filters(filters)
        journal = self._journal()
        with self._lock:
            bucket = self._buckets.get((collection_id, parent_id))
            if bucket is None:
                return []
            doomed = [object_id for object_id, record in bucket.records.items() if matches(record)]
            tombstones = [self._remove(bucket, object_id, journal, with_deleted) for object_id in doomed]
        return [dict(t) for t in tombstones]

    def purge_deleted(self, collection_id, parent_id, before=None) -> int:
        """Remove tombstones (``None`` ids match every collection/parent)."""
        journal = self._journal()
        modified = self.modified_field
        removed = 0
        with self._lock:
            for (cid, pid), bucket in self._buckets.items():
                if (collection_id is not None and cid != collection_id) or \
                        (parent_id is not None and pid != parent_id):
                    continue
                horizon = before if before is not None else (bucket.timestamp or 0) + 1
                bucket.purged_before = max(bucket.purged_before or 0, horizon)
                doomed = []
                for object_id, tombstone in bucket.tombstones.items():
                    if before is not None and tombstone[modified] >= before:
                        break  # ordered by timestamp: the rest is newer
                    doomed.append(object_id)
                for object_id in doomed:
                    old = bucket.tombstones.pop(object_id)
                    self._changed(bucket, object_id)
                    if journal is not None:
                        journal.append((self, (bucket, "t", object_id, old)))
                if doomed:
                    bucket.version = next(self._versions)
                    removed += len(doomed)
        return removed

    def purged_before(self, collection_id, parent_id):
        """See :meth:`StorageBase.purged_before`."""
        with self._lock:
            bucket = self._buckets.get((collection_id, parent_id))
            return bucket.purged_before if bucket is not None else None

    def parent_ids(self, collection_id):
        """Return the parents having a bucket in ``collection_id``."""
        with self._lock:
            return sorted(p for c, p in self._buckets if c == collection_id)

    # -- queries ---------------------------------------------------------------

    def get_all(self, collection_id, parent_id, filters=None, sorting=None, after=None, limit=None,
                include_deleted=False):
        """Return a page of records and the total; see :meth:`StorageBase.get_all`.

        Served from a :class:`~cliquet.storage.views.View` of the query,
        built at its first use and kept up to date by every write since
        (and, for a read check, by the permission backend's change feed).
        """
        sorting = tuple(sorting) if sorting else (Sort(self.modified_field, -1),)
        filters = tuple(filters or ())
        position = q.after_key(after, sorting) if after is not None else None
        with self._lock:
            bucket = self._buckets.get((collection_id, parent_id))
            if bucket is None:
                return [], 0
            view = self._view(bucket, filters, sorting, include_deleted)
            if view is None:
                records, total = self._query(bucket, filters, sorting, include_deleted)
                start = 0
                if position is not None:
                    start = q.position_after(records, position, sorting)
                page = records[start:] if limit is None else records[start:start + max(limit, 0)]
            else:
                page, total = view.page(position, sorting, limit), view.total
            page = _clone(page)
        return page, total

    def _view(self, bucket, filters, sorting, include_deleted):
        """The up-to-date view of this query (``None``: not one a view keeps).
        Called with the lock held."""
        try:
            key = (include_deleted, tuple((f.field, f.operator, self._frozen_value(f.value)) for f in filters),
                   tuple((s.field, s.direction) for s in sorting))
            hash(key)
            view = bucket.views.get(key)
            if view is None:
                view = View(filters, sorting, include_deleted, (self.id_field, self.modified_field))
        except (TypeError, ValueError):
            return None
        if key in bucket.views:
            self._cache.move_to_end((id(bucket), key))
            if view.scope is not None:
                self._refresh(bucket, view)
            return view
        if view.scope is not None:
            view.scope.refresh()
        view.build(bucket.records.values(), bucket.tombstones.values())
        bucket.views[key] = view
        self._cache[(id(bucket), key)] = (bucket, key, len(view))
        self._cache_records += len(view)
        while self._cache and (len(self._cache) > self._cache_size
                               or self._cache_records > self._cache_max_records):
            _, (old_bucket, old_key, size) = self._cache.popitem(last=False)
            old_bucket.views.pop(old_key, None)
            self._cache_records -= size
        return view

    def _changed(self, bucket, object_id) -> None:
        """Re-evaluate one record in the views of its bucket (lock held)."""
        if bucket.views:
            record, tombstone = bucket.records.get(object_id), bucket.tombstones.get(object_id)
            for view in bucket.views.values():
                view.update(object_id, record, tombstone)

    def _drop_views(self, bucket) -> None:
        for key in bucket.views:
            entry = self._cache.pop((id(bucket), key), None)
            if entry is not None:
                self._cache_records -= entry[2]
        bucket.views = {}

    def _frozen_value(self, value):
        """The view key of a filter value (``TypeError``: no view for it).

        A read check is kept by a view when its permission backend has a
        change feed (:meth:`~cliquet.permission.PermissionBase.acl_changes`
        overridden): the view then follows every ACE change."""
        if isinstance(value, AccessibleIds):
            source = value.source
            if source is None or type(source).acl_changes is PermissionBase.acl_changes:
                raise TypeError("a read check without a change feed")
            return ("acl", value.principals, value.permissions, value.prefix, id(source))
        return q.freeze(value)

    def _since_bound(self, filters):
        """Return ``(bound, strict)`` of the tightest lower bound on ``last_modified``."""
        bound = None
        strict = False
        for f in filters:
            if f.field == self.modified_field and f.operator in _SINCE_OPERATORS \
                    and type(f.value) in (int, float):
                is_strict = f.operator is COMPARISON.GT
                if bound is None or f.value > bound or (f.value == bound and is_strict):
                    bound, strict = f.value, is_strict
        return bound, strict

    def _candidates(self, store: dict, bound, strict) -> list:
        if bound is None:
            return list(store.values())
        modified = self.modified_field
        newest_first = []
        for record in reversed(store.values()):
            value = record[modified]
            if value < bound or (strict and value == bound):
                break
            newest_first.append(record)
        newest_first.reverse()
        return newest_first

    def _query(self, bucket, filters, sorting, include_deleted):
        bound, strict = self._since_bound(filters)
        matches = q.compile_filters(filters)
        found = [r for r in self._candidates(bucket.records, bound, strict) if matches(r)]
        total = len(found)
        if include_deleted:
            on_tombstones = q.compile_filters(filters, fields=(self.id_field, self.modified_field))
            found.extend(t for t in self._candidates(bucket.tombstones, bound, strict) if on_tombstones(t))
        return q.sort_records(found, sorting), total


def load_from_config(config) -> Storage:
    """Return a new, empty :class:`Storage` (it reads no setting)."""
    return Storage()
