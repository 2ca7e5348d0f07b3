"""Exact counts of filtered lists, kept up to date (PostgreSQL storage).

A filtered list answers ``Total-Records``: the number of live records that
match, read scope included. Counting them again after every write costs the
whole matching set (a hash semi-join over 15 000 readable records of 100 000
took 90 ms), so a busy collection made every list slow. Instead, the first
count keeps the *ids* it counted, with the state it saw: the collection's
timestamp, its generation (which moves when a record leaves no row behind,
see migration 4 of :mod:`~cliquet.storage.postgresql_schema`), its purge
horizon and, with a read check, a token of the ACE change feed
(:meth:`~cliquet.permission.postgresql.PostgreSQLPermission.acl_changes_sql`).
The next count asks, in one statement, for the ids that may have changed
since — records written after that timestamp (tombstones included) and
records whose ACEs changed for the caller's principals — and which of them
match now; the kept ids are corrected with that answer alone. Its cost
follows the writes since the last list, not the size of the collection.
A list sends, with its page, only a probe (:meth:`MaintainedCounts.probe_statement`):
whether anything the correction would read changed at all. Most lists of a
quiet collection — a client polling with ``_since`` — stop there; the
correction, a statement planned afresh each time (about 0.5 ms of planning
alone), runs only after a write or a change of access.

Why it is exact: every writer of a collection holds its counter row until
it commits, so a record committed after a count's snapshot has a timestamp
above the one the count saw; the ACE log holds the transaction id of each
change, so "not seen by that snapshot" is exact whatever the commit order;
a removal that leaves no row (a record deleted without tombstone, a purge of
recent tombstones, a ``TRUNCATE``) moves the generation or the horizon and
the count starts again from scratch. A count inside a transaction that
wrote is never kept (it sees uncommitted rows).
"""

from __future__ import annotations

import collections
import sys
import threading

from cliquet.storage.postgresql_journal import STATE_SQL, Fetch, Journals, token_sql

#: ids kept in all, across the cached counts of a storage: about 35 bytes each
#: (a set slot; the id strings are interned, so the ids that many callers may
#: read — shared records — are held once), 35 MB at most
MAX_IDS = 1_000_000
#: ids one count may keep; a larger one keeps its number only, valid while
#: nothing changes (then it is counted again, with ``count(*)``)
MAX_IDS_PER_COUNT = 100_000


class ReadCheck:
    """The read check of a count, joined in SQL: the permission backend
    (:class:`~cliquet.permission.postgresql.PostgreSQLPermission` on the
    storage's database), the caller's principals and the record ids'
    prefix."""

    __slots__ = ("source", "principals", "prefix", "permissions")

    def __init__(self, source, principals, prefix, permissions=("read", "write")):
        self.source = source
        self.principals = principals
        self.prefix = prefix
        self.permissions = tuple(permissions)


class _Statement:
    """A statement about one kept count: its entry, SQL and parameters."""

    __slots__ = ("entry", "sql", "params")

    def __init__(self, entry, sql, params):
        self.entry = entry
        self.sql = sql
        self.params = params


class Delta(_Statement):
    """A statement correcting a kept count (:meth:`MaintainedCounts.delta_statement`)."""

    __slots__ = ()


class Probe(_Statement):
    """A statement telling whether a kept count may have changed
    (:meth:`MaintainedCounts.probe_statement`)."""

    __slots__ = ()


class _Entry:
    """What a count saw: the state of the collection and the ids counted
    (``None`` when too many to keep: then ``count`` only)."""

    __slots__ = ("timestamp", "generation", "purged", "token", "ids", "count")

    def __init__(self, timestamp, generation, purged, token, ids, count):
        self.timestamp = timestamp
        self.generation = generation
        self.purged = purged
        self.token = token
        self.ids = ids
        self.count = count

    def size(self) -> int:
        return len(self.ids) if self.ids is not None else 0


class _ScopeEntry:
    """A count whose only filter is the read check, kept with a
    :class:`~cliquet.storage.postgresql_journal.Journal`: the ids counted,
    as of the journal's absolute ``position``."""

    __slots__ = ("journal", "epoch", "position", "ids", "principals")

    def __init__(self, journal, epoch, position, ids, principals):
        self.journal = journal
        self.epoch = epoch
        self.position = position
        self.ids = ids
        self.principals = frozenset(principals)

    def current(self, journal) -> bool:
        """Whether the journal can still bring this count up to date."""
        return journal is self.journal and self.epoch == journal.epoch and self.position >= journal.base

    def size(self) -> int:
        return len(self.ids)


class MaintainedCounts:
    """The counts of one storage, keyed by ``(parent_id, collection_id,
    filters)``; bounded by the ids they keep (:data:`MAX_IDS`); thread-safe.

    :param client: the storage's :class:`~cliquet.storage.postgresql_client.PostgreSQLClient`.
    """

    def __init__(self, client, max_ids: int = MAX_IDS, max_ids_per_count: int = MAX_IDS_PER_COUNT):
        self.client = client
        self.max_ids = max_ids
        self.max_ids_per_count = max_ids_per_count
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self._kept = 0
        self._lock = threading.Lock()
        self._journals = Journals(self._lock)

    def clear(self) -> None:
        """Forget every count (after a flush)."""
        with self._lock:
            self._entries.clear()
            self._kept = 0
        self._journals.clear()

    def count(self, key, parent_id, collection_id, where_of, check: ReadCheck | None,
              timestamp=None, cacheable: bool = True, prefetched=None) -> int:
        """Return the number of live records of the collection matching
        ``where_of(params)`` (SQL ``" AND ..."`` of the filters, appending
        its parameters), the read check ``check`` included in it.

        :param timestamp: the collection's timestamp as the caller's page
            saw it: without a read check, an unchanged timestamp means an
            unchanged count (no statement at all).
        :param cacheable: false inside a transaction that wrote.
        :param prefetched: ``(statement, row)``: the :meth:`probe_statement`
            or :meth:`scope_statement` the caller sent with its page (one
            round trip for both) and its answer.
        """
        if prefetched is not None and isinstance(prefetched[0], Fetch):
            result = self._scope_count(key, check, *prefetched)
            if result is not None:
                return result
            return self._full(None, parent_id, collection_id, where_of, check, keep=False)
        if prefetched is not None and isinstance(prefetched[0], Probe):
            result = self._unchanged(key, *prefetched)
            if result is not None:
                return result
            with self._lock:
                entry = self._entries.get(key)
            result = self._delta(key, entry, parent_id, collection_id, where_of, check) if entry else None
            return result if result is not None else self._full(key, parent_id, collection_id, where_of, check)
        if not cacheable:
            return self._full(None, parent_id, collection_id, where_of, check, keep=False)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            return self._full(key, parent_id, collection_id, where_of, check)
        if check is None and timestamp is not None and timestamp == entry.timestamp:
            return entry.count
        result = self._delta(key, entry, parent_id, collection_id, where_of, check)
        if result is None:  # cannot be corrected (or another thread moved it first)
            result = self._full(key, parent_id, collection_id, where_of, check)
        return result

    # -- statements -------------------------------------------------------------

    def _full(self, key, parent_id, collection_id, where_of, check, keep=True) -> int:
        """Count from scratch; keep the ids (or the number) with the state seen."""
        params: list = []
        token = "NULL"
        if check is not None and keep:
            token = token_sql()
        known = self._entries.get(key) if keep else None
        too_many = known is not None and known.ids is None
        matching = "FROM cliquet_records WHERE parent_id = %s AND collection_id = %s AND NOT deleted"
        params.extend([parent_id, collection_id])
        matching += where_of(params)
        counted = f"(SELECT count(*) {matching})" if too_many or not keep else f"ARRAY(SELECT id {matching})"
        params.extend([parent_id, collection_id])
        timestamp, generation, purged, token, found = self.client.execute(
            f"SELECT t.last_modified, t.generation, t.purged_before, {token}, {counted} {STATE_SQL}",
            params, fetch="one", readonly=True)
        if isinstance(found, int):
            count, ids = found, None
        else:
            count, ids = len(found), set(map(sys.intern, found))
            if count > self.max_ids_per_count:
                ids = None
        if keep and timestamp is not None:
            self._put(key, _Entry(timestamp, generation, purged, token, ids, count))
        return count

    def scope_statement(self, key, parent_id, collection_id, where_of, check) -> Fetch:
        """For a list whose only filter is the read check ``check``: the
        statement that brings its collection's journal up to date (and
        counts the caller's records from scratch when its count is not
        kept yet), to send with the page; its answer goes to :meth:`count`
        (``prefetched``). See :mod:`~cliquet.storage.postgresql_journal`."""
        journal = self._journals.journal(parent_id, collection_id, check.prefix, check.permissions)
        with self._lock:
            entry = self._entries.get(key)
            full = not (isinstance(entry, _ScopeEntry) and entry.current(journal))
        return self._journals.prepare(parent_id, collection_id, check, check.permissions,
                                      full_where_of=where_of if full else None)

    def _scope_count(self, key, check, fetch, row) -> int | None:
        """Append a journal fetch's answer, then bring the caller's count up
        to date from the journal; ``None`` when it cannot be (count again)."""
        with self._lock:
            appended, full_ids = self._journals.record(fetch, row)
            journal = fetch.journal
            if full_ids is not None:
                ids = set(map(sys.intern, full_ids))
                if appended and journal.timestamp is not None and len(ids) <= self.max_ids_per_count:
                    old = self._entries.pop(key, None)
                    if old is not None:
                        self._kept -= old.size()
                    self._entries[key] = _ScopeEntry(journal, journal.epoch, journal.end, ids, check.principals)
                    self._kept += len(ids)
                    self._evict()
                return len(ids)
            entry = self._entries.get(key)
            if not isinstance(entry, _ScopeEntry) or not entry.current(journal):
                return None
            self._entries.move_to_end(key)
            ids, principals, before = entry.ids, entry.principals, len(entry.ids)
            for record_id, readers in journal.since(entry.position):
                if readers is not None and not readers.isdisjoint(principals):
                    ids.add(record_id)
                else:
                    ids.discard(record_id)
            entry.position = journal.end
            self._kept += len(ids) - before
            return len(ids)

    def probe_statement(self, key, parent_id, collection_id, check: ReadCheck) -> Probe | None:
        """The statement that tells whether the kept count of ``key`` (with
        the read check ``check``) may have changed, for a caller that sends
        it along with its page; ``None``: nothing kept, count with
        :meth:`count`. Cheap to plan: the collection's state row and one
        probe of the ACE log's index."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry.token is None:
            return None
        (covered, covered_params), (changed, changed_params) = check.source.acl_changes_sql(
            entry.token, check.principals, check.prefix)
        sql = (f"SELECT t.last_modified, t.generation, t.purged_before, {token_sql()}, {covered}, "
               f"EXISTS ({changed}) {STATE_SQL}")
        return Probe(entry, sql, covered_params + changed_params + [parent_id, collection_id])

    def _unchanged(self, key, probe, row) -> int | None:
        """The kept count when the probe's answer ``row`` says nothing it
        covers changed (its token then moves on); ``None`` otherwise."""
        timestamp, generation, purged, token, covered, acl_changed = row
        entry = probe.entry
        if (not covered or acl_changed or timestamp is None or timestamp != entry.timestamp
                or generation != entry.generation or purged != entry.purged):
            return None
        with self._lock:
            if self._entries.get(key) is not entry or entry.timestamp != timestamp:
                return None
            self._entries.move_to_end(key)
            entry.token = token
            return entry.count

    def delta_statement(self, key, parent_id, collection_id, where_of, check) -> Delta | None:
        """The statement that corrects the kept count of ``key``, run after
        a probe saw a change (``None``: nothing kept to correct, count with
        :meth:`count`)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or (check is not None and entry.token is None):
            return None
        # The records written since: read once, their match evaluated on
        # the spot; the records whose ACEs changed: looked up by id.
        written_params: list = []
        written = ("SELECT id, (NOT deleted" + where_of(written_params) + ") AS counted FROM cliquet_records "
                   "WHERE parent_id = %s AND collection_id = %s AND last_modified > %s")
        written_params += [parent_id, collection_id, entry.timestamp]
        ctes, ctes_params = [f"written AS ({written})"], written_params
        token, covered, covered_params = "NULL", "TRUE", []
        changed_ids, counted_ids, counted_params = "ARRAY(SELECT id FROM written)", \
            "ARRAY(SELECT id FROM written WHERE counted)", []
        if check is not None:
            (covered, covered_params), (acl_changed, acl_params) = check.source.acl_changes_sql(
                entry.token, check.principals, check.prefix, strip_prefix=True)
            ctes.append(f"granted(id) AS ({acl_changed})")
            ctes_params += acl_params
            token = token_sql()
            changed_ids += " || ARRAY(SELECT * FROM granted)"
            counted_params = [parent_id, collection_id]
            # LATERAL: one primary-key probe per id, never a pass over the collection.
            counted_ids += (" || ARRAY(SELECT g.id FROM granted AS g, LATERAL (SELECT 1 FROM cliquet_records "
                            "WHERE parent_id = %s AND collection_id = %s AND id = g.id AND NOT deleted"
                            + where_of(counted_params) + ") AS m)")
        sql = (f"WITH {', '.join(ctes)} "
               f"SELECT t.last_modified, t.generation, t.purged_before, {token}, {covered}, "
               f"{changed_ids}, {counted_ids} {STATE_SQL}")
        return Delta(entry, sql, ctes_params + covered_params + counted_params + [parent_id, collection_id])

    def _delta(self, key, entry, parent_id, collection_id, where_of, check) -> int | None:
        """Correct the kept count of ``key``; ``None`` if it cannot be (start again)."""
        delta = self.delta_statement(key, parent_id, collection_id, where_of, check)
        if delta is None or delta.entry is not entry:
            return None
        row = self.client.run(lambda conn: conn.execute(delta.sql, delta.params, prepare=False).fetchone(),
                              readonly=True)  # custom plans only: see postgresql._pipelined
        return self._apply(key, entry, row)

    def _apply(self, key, entry, row) -> int | None:
        """Correct ``entry`` with the answer of its delta statement; ``None``
        if it cannot be (the state moved in a way the changes do not tell,
        or another thread corrected it first)."""
        timestamp, generation, purged, token, ok, changed_ids, matching_ids = row
        if not ok or timestamp is None or generation != entry.generation or purged != entry.purged:
            return None
        with self._lock:
            if self._entries.get(key) is not entry:
                return None
            if changed_ids:
                if entry.ids is None:
                    return None
                before = len(entry.ids)
                entry.ids.difference_update(changed_ids)
                entry.ids.update(map(sys.intern, matching_ids))
                entry.count = len(entry.ids)
                self._kept += entry.count - before
            entry.timestamp, entry.token = timestamp, token
            self._evict()
            return entry.count

    # -- bookkeeping ------------------------------------------------------------

    def _put(self, key, entry) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._kept -= old.size()
            self._entries[key] = entry
            self._kept += entry.size()
            self._evict()

    def _evict(self) -> None:
        """Drop the least recently used counts past the budget (lock held)."""
        while self._kept > self.max_ids and len(self._entries) > 1:
            _, old = self._entries.popitem(last=False)
            self._kept -= old.size()
