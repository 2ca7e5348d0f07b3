"""Per-process journals of a collection's read-scope changes (PostgreSQL storage).

A list whose only filter is the read check (``ShareableResource``'s
``_sort=-score&_limit=20``, the common case) needs the number of records
the caller may read. :mod:`~cliquet.storage.postgresql_count` keeps that
number per caller; correcting it in SQL costs every change since *that
caller's* previous list — with many callers taking turns, most of the
writes since any of them listed. A journal shares that work: per
collection, read-check prefix and permissions, the process keeps the
records that changed — alive or not, and which principals may read each —
read from the database once, by whichever list comes first; each caller's
count then applies the entries it has not seen yet, a set operation per
entry in the process, without another statement.

Each journal fetch is one statement, sent with the list's page: the records
written since the journal's timestamp and those whose ACEs changed since
its token (the ACE change feed,
:meth:`~cliquet.permission.postgresql.PostgreSQLPermission.acl_changes_sql`),
each with its state in that statement's snapshot. A fetch is appended only
if the journal did not move since the fetch was prepared (another thread's
fetch from the same point won: this one is dropped, its caller applies
what the journal holds), so entries follow each other in snapshot order
and replaying them from any position gives each record's latest state. A
caller's first count is made in the statement of a fetch that is appended,
hence in the snapshot of the journal's end. What the changes cannot tell —
a record gone without a row (the collection's generation), purged
tombstones (its horizon), an ACE log that no longer covers the token, a
``TRUNCATE`` — starts the journal again and every count on it from scratch.
"""

from __future__ import annotations

import sys
import threading

#: entries a journal keeps; a caller further behind counts again
MAX_ENTRIES = 50_000

#: the collection's counter row as ``t`` (parameters: parent_id,
#: collection_id), present or not: what kept counts and journals check
STATE_SQL = (
    "FROM (SELECT 1) AS one LEFT JOIN cliquet_timestamps AS t "
    "ON t.parent_id = %s AND t.collection_id = %s"
)


class Journal:
    """The changes of one collection's read scope, in snapshot order."""

    __slots__ = ("epoch", "timestamp", "generation", "purged", "token", "entries", "base", "moves")

    def __init__(self):
        #: moves when the journal starts again: counts of an older epoch are void
        self.epoch = 0
        #: the state of the database the journal has caught up with (``None``: nothing yet)
        self.timestamp = None
        self.generation = None
        self.purged = None
        self.token = None
        #: ``(record id, principals that may read it, or None if it is gone)``
        self.entries: list = []
        #: absolute position of ``entries[0]``
        self.base = 0
        #: moves with every append: a fetch prepared before it is dropped
        self.moves = 0

    @property
    def end(self) -> int:
        """The absolute position after the last entry."""
        return self.base + len(self.entries)

    def since(self, position: int):
        """The entries from absolute ``position`` on."""
        return self.entries[position - self.base:]

    def restart(self) -> None:
        """Forget everything: what follows cannot be told from changes."""
        self.epoch += 1
        self.timestamp = self.generation = self.purged = self.token = None
        self.base = self.end
        self.entries = []
        self.moves += 1


class Fetch:
    """One journal fetch, sent with a list's page: ``sql`` and ``params``,
    and what it was prepared against."""

    __slots__ = ("journal", "moves", "sql", "params", "full")

    def __init__(self, journal, moves, sql, params, full):
        self.journal = journal
        self.moves = moves
        self.sql = sql
        self.params = params
        #: whether the statement also counts the caller's records from scratch
        self.full = full


class Journals:
    """The journals of one storage, keyed by ``(parent_id, collection_id,
    prefix, permissions)``; thread-safe (each journal under the storage's
    count lock, given at creation)."""

    def __init__(self, lock: threading.Lock, max_entries: int = MAX_ENTRIES):
        self.lock = lock
        self.max_entries = max_entries
        self._journals: dict = {}

    def clear(self) -> None:
        """Forget every journal (after a flush)."""
        with self.lock:
            for journal in self._journals.values():
                journal.restart()

    def journal(self, parent_id, collection_id, prefix, permissions) -> Journal:
        """The journal of this read scope (created empty)."""
        key = (parent_id, collection_id, prefix, permissions)
        with self.lock:
            journal = self._journals.get(key)
            if journal is None:
                journal = self._journals[key] = Journal()
            return journal

    def prepare(self, parent_id, collection_id, check, permissions, full_where_of=None) -> Fetch:
        """The statement bringing the journal of this read scope up to date
        (and, with ``full_where_of``, counting the caller's records in the
        same snapshot)."""
        journal = self.journal(parent_id, collection_id, check.prefix, permissions)
        with self.lock:
            moves, timestamp, token = journal.moves, journal.timestamp, journal.token
        params: list = []
        columns = ["t.last_modified", "t.generation", "t.purged_before", token_sql()]
        if timestamp is None or token is None:
            columns += ["TRUE", "NULL"]
            ctes = ""
        else:
            (covered, covered_params), (granted, granted_params) = check.source.acl_changes_sql(
                token, None, check.prefix, strip_prefix=True)
            ctes = (
                "WITH granted(id) AS (" + granted + "), changed AS ("
                "SELECT id, NOT deleted AS alive FROM cliquet_records "
                "WHERE parent_id = %s AND collection_id = %s AND last_modified > %s "
                # LATERAL: one primary-key probe per id (an EXISTS was once
                # planned as a hash of the whole collection).
                "UNION ALL SELECT g.id, COALESCE(r.alive, FALSE) FROM granted AS g LEFT JOIN LATERAL ("
                "SELECT NOT deleted AS alive FROM cliquet_records WHERE parent_id = %s "
                "AND collection_id = %s AND id = g.id) AS r ON TRUE) "
            )
            params += granted_params + [parent_id, collection_id, timestamp, parent_id, collection_id]
            columns.append(covered)
            params += covered_params
            columns.append(
                "(SELECT json_agg(json_build_array(c.id, c.alive, ARRAY(SELECT a.principal "
                "FROM cliquet_access_control_entries AS a WHERE a.object_id = %s || c.id "
                "AND a.permission = ANY(%s)))) FROM changed AS c)")
            params += [check.prefix, list(permissions)]
        full = full_where_of is not None
        if full:
            matching: list = [parent_id, collection_id]
            columns.append("ARRAY(SELECT id FROM cliquet_records WHERE parent_id = %s AND collection_id = %s "
                           "AND NOT deleted" + full_where_of(matching) + ")")
            params += matching
        sql = f"{ctes}SELECT {', '.join(columns)} {STATE_SQL}"
        return Fetch(journal, moves, sql, params + [parent_id, collection_id], full)

    def record(self, fetch: Fetch, row) -> tuple[bool, list | None]:
        """Append the answer of ``fetch`` to its journal (lock held by the
        caller); return ``(appended, the caller's ids counted from scratch
        or None)``."""
        journal = fetch.journal
        timestamp, generation, purged, token, covered, changes = row[:6]
        full_ids = row[6] if fetch.full else None
        if journal.moves != fetch.moves:
            return False, full_ids
        restart = (timestamp is None or not covered
                   or (journal.timestamp is not None
                       and (generation != journal.generation or purged != journal.purged)))
        if restart:
            journal.restart()
            if timestamp is None:
                return True, full_ids
        else:
            for record_id, alive, principals in changes or ():
                journal.entries.append((sys.intern(record_id), frozenset(principals) if alive else None))
            if len(journal.entries) > self.max_entries:
                cut = len(journal.entries) // 2
                journal.entries = journal.entries[cut:]
                journal.base += cut
        journal.timestamp, journal.generation, journal.purged, journal.token = timestamp, generation, purged, token
        journal.moves += 1
        return True, full_ids


def token_sql() -> str:
    """SQL of an ACE change feed token (imported late: the permission
    backend's module needs the storage's)."""
    from cliquet.permission.postgresql import ACL_TOKEN_SQL

    return ACL_TOKEN_SQL
