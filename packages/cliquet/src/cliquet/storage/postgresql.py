"""PostgreSQL storage: records as JSONB rows, on psycopg 3 and psycopg_pool.

Enable with::

    cliquet.storage_backend = cliquet.storage.postgresql
    cliquet.storage_url = postgresql://user:password@host:5432/dbname

(``?options=-csearch_path%3Dmyschema`` in the URL selects a schema).
``cliquet migrate`` creates the tables (:meth:`~PostgreSQLStorage.initialize_schema`).

How it meets the rules of :mod:`cliquet.storage`:

* **Timestamps** come from one counter row per ``(parent_id, collection_id)``
  in ``cliquet_timestamps``, bumped to ``greatest(now, last + 1)`` by the
  same statement that writes the record. The row stays locked until the
  transaction commits, so writers of one collection — on any number of app
  servers — take turns: timestamps are unique and strictly increasing, and
  they become visible in that order, which is what ``_since`` polling needs.
  No write ever fails with a conflict because two got the same millisecond.
* **Filters, sorting and counting** run in SQL; pages use keyset
  pagination (``WHERE (sort keys) > (last row's)``), never ``OFFSET``, so
  page *n* costs what page 1 costs.
* **Counts** are cached per process, keyed by the filters and the
  collection's timestamp, which changes on every write: a cached count is
  exact, and a list page costs one indexed query while nothing changed.
* One request is one transaction (:meth:`~PostgreSQLStorage.transaction`);
  nested ones are savepoints. Backends on the same database (storage,
  permission, cache) share one client, so that transaction holds their
  writes too, whatever their pool settings.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import orjson
from psycopg.types.json import Jsonb

from cliquet.storage import (
    COMPARISON,
    AccessibleIds,
    Filter,
    RecordNotFoundError,
    Sort,
    StorageBase,
    UnicityError,
)
from cliquet.storage.exceptions import ConflictError
from cliquet.storage.postgresql_client import get_client, pipeline
from cliquet.storage.postgresql_count import MaintainedCounts, ReadCheck
from cliquet.storage.postgresql_query import (
    BUMP,
    COLLECTION_TIMESTAMP,
    LOCK_SCOPE,
    CREATE,
    CREATE_AT,
    GET,
    INIT_TIMESTAMP,
    LOCK_LIVE,
    UPDATE,
    UPDATE_READ,
    column,
    filter_sql,
    keyset_sql,
    order_sql,
    sort_keys,
    sort_values,
)
from cliquet.storage.postgresql_schema import (
    FIELD_INDEX_PREFIX,
    STORAGE_MIGRATIONS,
    field_index_name,
    field_index_statements,
    migrate,
    pending_phrase,
)

logger = logging.getLogger(__name__)

_NOT_READ = object()
#: transaction mark: how many creates in a row the next one starts (see
#: :meth:`PostgreSQLStorage.expect_creates`)
_EXPECTED = ("expected-creates",)

# The collection's timestamp and live record count, as two columns of a query
# (parameters: parent_id, collection_id).
_SCOPE_STATE = (
    "(SELECT last_modified FROM cliquet_timestamps WHERE parent_id = %s AND collection_id = %s) AS _ts, "
    "(SELECT record_count FROM cliquet_timestamps AS t WHERE t.parent_id = %s AND t.collection_id = %s) AS _n"
)
# The same and the purge horizon, for a page (three more parameters).
_PAGE_STATE = _SCOPE_STATE + (
    ", (SELECT purged_before FROM cliquet_timestamps AS h WHERE h.parent_id = %s AND h.collection_id = %s) AS _h"
)


class PostgreSQLStorage(StorageBase):
    """Storage on PostgreSQL. Build it with :func:`load_from_config`.

    :param client: a :class:`~cliquet.storage.postgresql_client.PostgreSQLClient`.
    :param max_fetch_size: most records one :meth:`get_all` returns.
    """

    def __init__(self, client, max_fetch_size: int = 10000):
        self.client = client
        self.max_fetch_size = max_fetch_size
        # Exact counts of filtered lists, kept up to date (Total-Records).
        self._counts = MaintainedCounts(client)
        #: whether JSONB strings sort by code point here (``None``: not asked yet)
        self.codepoint_strings: bool | None = None
        #: names of the indexes :meth:`create_field_indexes` made, from the
        #: catalog, read once (``None``: not read yet)
        self._index_names: frozenset[str] | None = None

    # -- administration ---------------------------------------------------------

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Create or upgrade the tables (versioned migrations, idempotent)."""
        migrate(self.client, "storage", STORAGE_MIGRATIONS, dry_run=dry_run)

    def schema_pending(self) -> str | None:
        """Return ``"missing"`` / ``"at version N of M"`` while ``cliquet
        migrate`` has work to do on the storage tables, else ``None``."""
        return pending_phrase(self.client, "storage", STORAGE_MIGRATIONS)

    def create_field_indexes(self, fields, dry_run: bool = False) -> list[str]:
        """Create indexes for record fields that resources filter and sort on
        (``cliquet migrate`` calls it for the fields each resource declares);
        return the statements. Idempotent.

        With them, a list page sorted by one of these fields, or filtered by
        a range on it, costs the same at 100 000 records as at 1 000. Filters
        on other fields scan the collection (O(N)).
        """
        statements = field_index_statements(fields, self._column, self._index_sort_keys)
        for statement in statements:
            if dry_run:
                logger.info("[dry run] %s", statement)
            else:
                self.client.execute(statement, fetch=None)
        self._index_names = None  # read the catalog again
        return statements

    def _index_sort_keys(self, col):
        return sort_keys(col, 1, self._strings_by_codepoint())

    def _has_field_index(self, field) -> bool:
        """Whether ``field`` has the index :meth:`create_field_indexes` makes.

        The catalog is read at the first filtered list of this storage (and
        again after :meth:`create_field_indexes`): indexes that ``cliquet
        migrate`` adds while the service runs are used once it restarts.
        Either way the answers are the same; only equality filters are
        written differently (see :func:`~cliquet.storage.postgresql_query.filter_sql`).
        Nothing is kept per field: filters name any field a client sends.
        """
        names = self._index_names
        if names is None:
            rows = self.client.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = 'cliquet_records' AND starts_with(indexname, %s)",
                (FIELD_INDEX_PREFIX,), readonly=True)
            names = self._index_names = frozenset(row[0] for row in rows)
        return field_index_name(field, self._column, self._index_sort_keys) in names

    def analyze(self, dry_run: bool = False) -> None:
        """Refresh the planner's statistics of the storage tables (``cliquet
        migrate`` runs it last). Without them, a freshly migrated or bulk
        loaded database plans lists by guesses: a shared list at 100 000
        records took 0.8 s instead of milliseconds."""
        statement = "ANALYZE cliquet_records, cliquet_timestamps"
        if dry_run:
            logger.info("[dry run] %s", statement)
        else:
            self.client.execute(statement, fetch=None)

    def flush(self) -> None:
        """Remove every record, tombstone and timestamp of the schema."""
        self.client.execute("TRUNCATE cliquet_records, cliquet_timestamps", fetch=None)
        self._counts.clear()

    def heartbeat(self) -> bool:
        """Return whether the server answers."""
        return self.client.heartbeat()

    def transaction(self):
        """One transaction bound to the current context (savepoints when nested)."""
        return self.client.transaction()

    # -- timestamps ---------------------------------------------------------------

    def collection_timestamp(self, collection_id: str, parent_id: str) -> int:
        """Return the collection's timestamp (the server's clock, remembered,
        for a collection never written)."""
        row = self.client.execute(COLLECTION_TIMESTAMP, (parent_id, collection_id), fetch="one", readonly=True)
        if row is not None:
            return row[0]
        return self.client.execute(INIT_TIMESTAMP, (parent_id, collection_id), fetch="one")[0]

    # -- records ------------------------------------------------------------------

    def _split(self, record: dict) -> tuple[dict, Jsonb]:
        """Return a deep copy of the record's fields (without id and
        timestamp) and the same as a JSONB parameter (serialised once)."""
        data = dict(record)
        data.pop(self.id_field, None)
        data.pop(self.modified_field, None)
        payload = orjson.dumps(data)
        return orjson.loads(payload), Jsonb(payload, dumps=_serialised)

    def _full(self, data: dict, object_id: str, last_modified: int) -> dict:
        data[self.id_field] = object_id
        data[self.modified_field] = last_modified
        return data

    def _write_params(self, collection_id, parent_id, object_id, record):
        """The record's data (without id/timestamp) and the parameters of a write."""
        data, payload = self._split(record)
        return data, {
            "parent_id": parent_id,
            "collection_id": collection_id,
            "id": object_id,
            "data": payload,
            "given": _given(record.get(self.modified_field)),
            "count": 1,
        }

    def expect_creates(self, count: int) -> None:
        """Start a run of ``count`` creates in one collection (a batch's
        consecutive ``POST`` sub-requests to one path): its first create
        reserves their timestamps with one bump, and the others are stored
        at theirs without touching the counter row (see :meth:`create`).
        What an earlier run reserved and did not use is dropped: no later
        write goes under a timestamp something else in between may have
        shown (a list's ``ETag``). Outside a transaction, nothing."""
        self.client.forget("stamps")
        self.client.mark(_EXPECTED, count)

    def create(self, collection_id, parent_id, record, id_generator=None):
        """Store a new record; :class:`UnicityError` if its id is taken.

        In a transaction told to expect several creates (:meth:`expect_creates`),
        the first bumps the collection's counter by their number at once and
        the next ones take the timestamps so reserved: the counter row stays
        locked by this transaction until it commits, so no other writer can
        take them, and the records become visible together with the counter
        that covers them. A rolled back nested block forgets the reservation
        (rolling back a savepoint may release the lock)."""
        object_id = record.get(self.id_field)
        if object_id is None:
            object_id = id_generator() if id_generator is not None else _uuid4()
        data, params = self._write_params(collection_id, parent_id, object_id, record)
        key = ("stamps", parent_id, collection_id)
        reserved = self.client.recall(key) if params["given"] is None else None
        if reserved is not None and reserved[0] <= reserved[1]:
            row = self.client.execute(CREATE_AT, {**params, "at": reserved[0]}, fetch="one")
            if row is not None:
                self.client.mark(key, (reserved[0] + 1, reserved[1]), undone_by_rollback=True)
        else:
            count = max(1, self.client.recall(_EXPECTED, 1)) if params["given"] is None else 1
            if count > 1:
                self.client.mark(_EXPECTED, 1)  # a hint for one create
            params["count"] = count
            row = self.client.execute(CREATE, params, fetch="one")
            if row is not None and count > 1:
                self.client.mark(key, (row[0] + 1, row[0] + count - 1), undone_by_rollback=True)
        if row is None:
            existing = self.get(collection_id, parent_id, object_id)
            raise UnicityError(self.id_field, existing)
        return self._full(data, object_id, row[0])

    def get(self, collection_id, parent_id, object_id):
        """Return the live record; :class:`RecordNotFoundError` otherwise.

        Inside a transaction, what was read is remembered: a later
        :meth:`update` or :meth:`delete` of this record in the same
        transaction raises :class:`~cliquet.storage.exceptions.ConflictError`
        if a concurrent transaction changed it in between (no lost update).
        """
        row = self.client.execute(GET, (parent_id, collection_id, object_id), fetch="one", readonly=True)
        self.client.mark(("read", parent_id, collection_id, object_id), row[0] if row else None)
        if row is None:
            raise RecordNotFoundError(object_id)
        return self._full(row[1], object_id, row[0])

    def _check_unchanged(self, conn, parent_id, collection_id, object_id, current) -> None:
        """Raise :class:`ConflictError` if this transaction read the record
        at another version than ``current`` (call with the scope locked)."""
        expected = self.client.recall(("read", parent_id, collection_id, object_id), _NOT_READ)
        if expected is not _NOT_READ and expected != current:
            raise ConflictError(None, f"record {object_id!r} was modified by a concurrent request")

    def update(self, collection_id, parent_id, object_id, record):
        """Replace (or create) the record with a new timestamp."""
        data, params = self._write_params(collection_id, parent_id, object_id, record)
        key = ("read", parent_id, collection_id, object_id)
        expected = self.client.recall(key, _NOT_READ)
        if expected is _NOT_READ:
            row = self.client.execute(UPDATE, params, fetch="one")
        elif expected is not None:
            # Read live in this transaction: the version check in the write.
            row = self.client.execute(UPDATE_READ, {**params, "expected": expected}, fetch="one")
            if row is None:
                raise ConflictError(None, f"record {object_id!r} was modified by a concurrent request")
            self.client.mark(key, row[0])
        else:
            def fn(conn):
                conn.execute(LOCK_SCOPE, (parent_id, collection_id))
                current = conn.execute(LOCK_LIVE, (parent_id, collection_id, object_id)).fetchone()
                self._check_unchanged(conn, parent_id, collection_id, object_id, current[0] if current else None)
                return conn.execute(UPDATE, params).fetchone()

            row = self.client.run(fn)
            self.client.mark(key, row[0])
        return self._full(data, object_id, row[0])

    def delete(self, collection_id, parent_id, object_id, with_deleted=True, last_modified=None):
        """Delete the record, leaving a tombstone unless ``with_deleted`` is false."""

        def fn(conn):
            # The collection's counter row first, as every writer takes it:
            # one lock order, no deadlock; then the record can't change.
            conn.execute(LOCK_SCOPE, (parent_id, collection_id))
            current = conn.execute(LOCK_LIVE, (parent_id, collection_id, object_id)).fetchone()
            if current is None:
                raise RecordNotFoundError(object_id)
            self._check_unchanged(conn, parent_id, collection_id, object_id, current[0])
            timestamp = self._bump(conn, parent_id, collection_id, 1, last_modified)
            if with_deleted:
                conn.execute(
                    "UPDATE cliquet_records SET deleted = TRUE, data = '{}'::jsonb, last_modified = %s "
                    "WHERE parent_id = %s AND collection_id = %s AND id = %s",
                    (timestamp, parent_id, collection_id, object_id),
                )
            else:
                conn.execute(
                    "DELETE FROM cliquet_records WHERE parent_id = %s AND collection_id = %s AND id = %s",
                    (parent_id, collection_id, object_id),
                )
            return timestamp

        timestamp = self.client.run(fn)
        self.client.mark(("read", parent_id, collection_id, object_id), None)
        return self._tombstone(object_id, timestamp)

    def _tombstone(self, object_id, timestamp):
        return {self.id_field: object_id, self.modified_field: timestamp, self.deleted_field: True}

    def _bump(self, conn, parent_id, collection_id, count, candidate=None) -> int:
        """Reserve ``count`` consecutive timestamps; return the last one."""
        params = {"parent_id": parent_id, "collection_id": collection_id, "given": _given(candidate), "count": count}
        return conn.execute(BUMP.format(condition=""), params).fetchone()[0]

    def delete_all(self, collection_id, parent_id, filters=None, with_deleted=True):
        """Delete the matching records (each tombstone gets its own timestamp)."""
        params: list = [parent_id, collection_id]
        where = self._where(filters or (), params)
        select = (
            f"SELECT id FROM cliquet_records WHERE parent_id = %s AND collection_id = %s "
            f"AND NOT deleted{where} ORDER BY last_modified, id FOR UPDATE"
        )

        def fn(conn):
            conn.execute(LOCK_SCOPE, (parent_id, collection_id))
            ids = [row[0] for row in conn.execute(select, params).fetchall()]
            if not ids:
                return ids, []
            last = self._bump(conn, parent_id, collection_id, len(ids))
            stamps = list(range(last - len(ids) + 1, last + 1))
            if with_deleted:
                conn.execute(
                    "UPDATE cliquet_records AS r SET deleted = TRUE, data = '{}'::jsonb, last_modified = v.ts "
                    "FROM unnest(%s::text[], %s::bigint[]) AS v(id, ts) "
                    "WHERE r.parent_id = %s AND r.collection_id = %s AND r.id = v.id",
                    (ids, stamps, parent_id, collection_id),
                )
            else:
                conn.execute(
                    "DELETE FROM cliquet_records WHERE parent_id = %s AND collection_id = %s AND id = ANY(%s)",
                    (parent_id, collection_id, ids),
                )
            return ids, stamps

        ids, stamps = self.client.run(fn)
        return [self._tombstone(i, t) for i, t in zip(ids, stamps)]

    def purge_deleted(self, collection_id, parent_id, before=None):
        """Remove tombstones (older than ``before``); return how many.

        First, each collection concerned remembers its purge horizon (see
        :meth:`purged_before`), so that no client polling meanwhile can miss
        a deletion without being told to resync.
        """
        scope, params = [], []
        if collection_id is not None:
            scope.append("collection_id = %s")
            params.append(collection_id)
        if parent_id is not None:
            scope.append("parent_id = %s")
            params.append(parent_id)
        older = "" if before is None else " AND r.last_modified < %s"
        older_params = [] if before is None else [before]
        scope_sql = "".join(" AND t." + c for c in scope)
        if collection_id is not None and parent_id is not None:
            self.client.mark(("horizon", parent_id, collection_id), _NOT_READ)
        else:
            self.client.forget("horizon")
        self.client.execute(
            "UPDATE cliquet_timestamps AS t SET purged_before = "
            "greatest(t.purged_before, COALESCE(%s::bigint, t.last_modified + 1)) "
            "WHERE EXISTS (SELECT 1 FROM cliquet_records AS r WHERE r.parent_id = t.parent_id "
            f"AND r.collection_id = t.collection_id AND r.deleted{older}){scope_sql}",
            [before] + older_params + params,
            fetch=None,
        )
        where = "".join(" AND r." + c for c in scope)
        return self.client.execute(
            f"DELETE FROM cliquet_records AS r WHERE r.deleted{older}{where}", older_params + params, fetch=None)

    def purged_before(self, collection_id: str, parent_id: str) -> int | None:
        """Return the timestamp before which tombstones were purged (``None``
        if never): a client that synced before it must start over.

        Right after a non-empty :meth:`get_all` page of this collection in
        the same transaction, the horizon read with the page, in its
        snapshot (no round trip): what a ``_since`` poller checks after the
        page."""
        hit = self.client.recall(("horizon", parent_id, collection_id), _NOT_READ)
        if hit is not _NOT_READ:
            return hit
        row = self.client.execute(
            "SELECT purged_before FROM cliquet_timestamps WHERE parent_id = %s AND collection_id = %s",
            (parent_id, collection_id),
            fetch="one",
            readonly=True,
        )
        return row[0] if row else None

    # -- listing ------------------------------------------------------------------

    def _strings_by_codepoint(self) -> bool:
        """Whether the database compares JSONB strings by code point (asked
        once: it depends on the database's collation)."""
        if self.codepoint_strings is None:
            row = self.client.execute(
                """SELECT '"a b"'::jsonb < '"a-c"'::jsonb AND '"B"'::jsonb < '"a"'::jsonb """
                """AND '"é"'::jsonb > '"z"'::jsonb AND '"Z"'::jsonb < '"a"'::jsonb""",
                fetch="one",
                readonly=True,
            )
            self.codepoint_strings = bool(row[0])
        return self.codepoint_strings

    def _column(self, field):
        return column(field, self.id_field, self.modified_field)

    def _where(self, filters: Sequence[Filter], params: list, tombstones: bool = False) -> str:
        """Return `` AND ...`` for the filters (empty if none).

        With ``tombstones``, filters on other fields than id and
        last_modified only apply to live records.
        """
        codepoint = self._strings_by_codepoint() if filters else True
        live, meta = [], []
        for f in filters:
            operator = f.operator if isinstance(f.operator, COMPARISON) else COMPARISON(f.operator)
            col = self._column(f.field)
            if col.kind != "jsonb":
                meta.append((col, operator, f.value))
            else:
                live.append((f.field, col, operator, f.value))
        parts = []
        for col, operator, value in meta:
            joined = self._accessible_sql(col, operator, value, params)
            parts.append(joined or filter_sql(col, operator, value, params, codepoint))
        if live:
            live_sql = " AND ".join(
                filter_sql(c, o, v, params, codepoint, indexed=o is not COMPARISON.EQ or self._has_field_index(name))
                for name, c, o, v in live)
            parts.append(f"(deleted OR ({live_sql}))" if tombstones else live_sql)
        return "".join(" AND " + p for p in parts)

    def _accessible_sql(self, col, operator, value, params) -> str | None:
        """The read scope as a sub-query on the ACE table, when the ids come
        from a PostgreSQL permission backend on this very database — hence
        on this very client and transaction (see
        :func:`~cliquet.storage.postgresql_client.get_client`), so the read
        scope is the one of the request's own snapshot and writes."""
        source = getattr(value, "source", None)
        if (operator is not COMPARISON.IN or not isinstance(value, AccessibleIds)
                or col.sql.rsplit(".", 1)[-1] != "id" or not hasattr(source, "accessible_ids_sql")
                or getattr(source, "client", None) is not self.client):
            return None
        return source.accessible_ids_sql(col.sql, value.principals, value.permissions, value.prefix, params)

    def parent_ids(self, collection_id):
        """Return the distinct parents of ``collection_id``'s rows."""
        rows = self.client.execute("SELECT DISTINCT parent_id FROM cliquet_records WHERE collection_id = %s",
                                   (collection_id,), readonly=True)
        return sorted(row[0] for row in rows)

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
        """Return a page of matching records (and tombstones if asked) and
        the count of matching live records."""
        records, total, _ = self._page(collection_id, parent_id, filters, sorting, after, limit, include_deleted,
                                       stamped=False)
        return records, total

    def get_all_with_timestamp(self, collection_id, parent_id, filters=None, sorting=None, after=None, limit=None,
                               include_deleted=False) -> tuple[list[dict], int, int]:
        """:meth:`get_all` and the collection's timestamp in one round trip:
        the timestamp's statement goes first in the page's pipeline, so its
        snapshot is no later than the page's. A collection never written
        (no timestamp yet) takes the two steps of the default."""
        records, total, timestamp = self._page(collection_id, parent_id, filters, sorting, after, limit,
                                               include_deleted, stamped=True)
        if timestamp is None:
            return super().get_all_with_timestamp(collection_id, parent_id, filters=filters, sorting=sorting,
                                                  after=after, limit=limit, include_deleted=include_deleted)
        return records, total, timestamp

    def _page(self, collection_id, parent_id, filters, sorting, after, limit, include_deleted, stamped):
        """``(records, total, timestamp)``: the timestamp (``None`` when not
        ``stamped``, or never written) read first, with the page."""
        filters = list(filters or ())
        sorting = list(sorting or ()) or [Sort(self.modified_field, -1)]
        codepoint = self._strings_by_codepoint()
        fields = [(self._column(s.field), s.direction) for s in sorting]
        columns = [key for col, direction in fields for key in sort_keys(col, direction, codepoint)]
        limit = self.max_fetch_size if limit is None else min(limit, self.max_fetch_size)

        params: list = [parent_id, collection_id] * 4
        where = self._where(filters, params, tombstones=include_deleted)
        if not include_deleted:
            where = " AND NOT deleted" + where
        if after is not None:
            values = [v for (col, _), value in zip(fields, after) for v in sort_values(col, value, codepoint)]
            where += " AND " + keyset_sql(columns, values, params)
        params.append(limit)
        page_sql = (
            f"SELECT {_PAGE_STATE}, id, last_modified, deleted, data FROM cliquet_records "
            f"WHERE parent_id = %s AND collection_id = %s{where} "
            f"ORDER BY {order_sql(columns)} LIMIT %s"
        )
        # A read-checked list whose count is kept sends with its page what
        # the count needs (the journal's news, or a probe of the changes):
        # one round trip for both.
        plan = self._count_plan(collection_id, parent_id, filters) if filters else None
        delta = delta_row = None
        if plan is not None and plan.check is not None and limit > 0:
            if len(filters) == 1:  # the read check alone: the collection's journal
                delta = self._counts.scope_statement(plan.key, parent_id, collection_id, plan.where_of, plan.check)
            else:  # whether the kept count may have changed: corrected only then
                delta = self._counts.probe_statement(plan.key, parent_id, collection_id, plan.check)
        stamp = (COLLECTION_TIMESTAMP, (parent_id, collection_id)) if stamped else None
        timestamp = None
        if limit <= 0:
            rows = []
            if stamped:
                row = self.client.execute(*stamp, fetch="one", readonly=True)
                timestamp = row[0] if row else None
        elif delta is None and stamp is None:
            rows = self.client.execute(page_sql, params, readonly=True)
        else:
            timestamp, rows, delta_row = self.client.run(
                lambda conn: _pipelined(conn, stamp, page_sql, params, delta), readonly=True)

        # The page's purge horizon, for purged_before() right after.
        self.client.mark(("horizon", parent_id, collection_id), rows[0][2] if rows else _NOT_READ)
        records = []
        for _, _, _, object_id, last_modified, deleted, data in rows:
            if deleted:
                records.append(self._tombstone(object_id, last_modified))
            else:
                records.append(self._full(data, object_id, last_modified))

        if not rows and after is None and limit > 0:
            return records, 0, timestamp
        if rows and not filters:
            # Kept by a trigger, read in the page's snapshot: exact.
            return records, rows[0][1] or 0, timestamp
        if not filters:  # an empty page (limit 0, past the end): the trigger's count
            params = [parent_id, collection_id, parent_id, collection_id]
            total = self.client.execute(f"SELECT {_SCOPE_STATE}", params, fetch="one", readonly=True)[1] or 0
            return records, total, timestamp
        return records, self._counts.count(
            plan.key, parent_id, collection_id, plan.where_of, plan.check, timestamp=rows[0][0] if rows else None,
            cacheable=plan.cacheable, prefetched=(delta, delta_row) if delta is not None else None), timestamp

    def _count_plan(self, collection_id, parent_id, filters) -> _CountPlan:
        """How the matching live records are counted: exact, kept up to
        date from the changes since the previous count (see
        :mod:`~cliquet.storage.postgresql_count`)."""
        check, cacheable = None, not self.client.wrote
        for f in filters:
            if isinstance(f.value, AccessibleIds):
                joined = self._joined_check(f)
                if joined is None or check is not None:
                    cacheable = False  # ids from elsewhere: no change feed to follow them
                check = joined
        return _CountPlan((parent_id, collection_id, repr(filters)), lambda params: self._where(filters, params),
                          check if cacheable else None, cacheable)

    def _joined_check(self, f) -> ReadCheck | None:
        """The read check of filter ``f`` when it is joined in SQL and its
        permission backend has a change feed there."""
        value = f.value
        source = value.source
        col = self._column(f.field)
        operator = f.operator if isinstance(f.operator, COMPARISON) else COMPARISON(f.operator)
        if (operator is not COMPARISON.IN or col.sql.rsplit(".", 1)[-1] != "id"
                or not hasattr(source, "acl_changes_sql") or getattr(source, "client", None) is not self.client):
            return None
        return ReadCheck(source, value.principals, value.prefix, value.permissions)


class _CountPlan:
    """The key, the filters' SQL, the joined read check and whether the count may be kept."""

    __slots__ = ("key", "where_of", "check", "cacheable")

    def __init__(self, key, where_of, check, cacheable):
        self.key = key
        self.where_of = where_of
        self.check = check
        self.cacheable = cacheable


def _pipelined(conn, stamp, page_sql, params, delta):
    """``(timestamp, page rows, delta row)``: the collection's timestamp
    (``stamp``, its statement first, so read no later than the page), the
    page and what its count needs (the journal's news, or a probe of the
    changes since the kept count), sent together; each of ``stamp`` and
    ``delta`` may be ``None`` (then so is its answer).

    The page is prepared once it has run a few times on the connection
    (see :func:`~cliquet.storage.postgresql_client.pipeline`): planning it
    was 0.45 of the 0.8 ms it took on a ``_since`` list. The delta never
    is, on purpose: it is planned for its actual parameters (a generic plan
    cannot know how few records were written, or ACEs changed, since a kept
    count)."""
    with pipeline(conn):
        head = conn.execute(*stamp) if stamp is not None else None
        page = conn.execute(page_sql, params)
        correction = conn.execute(delta.sql, delta.params, prepare=False) if delta is not None else None
    row = head.fetchone() if head is not None else None
    return (row[0] if row else None), page.fetchall(), (correction.fetchone() if correction is not None else None)


def _serialised(payload: bytes) -> bytes:
    """JSON ``dumps`` for a value serialised already."""
    return payload


def _given(value):
    """A timestamp given by the caller counts only if it is an int."""
    return value if type(value) is int else None


def _uuid4() -> str:
    import uuid

    return str(uuid.uuid4())


def load_from_config(config) -> PostgreSQLStorage:
    """Return a :class:`PostgreSQLStorage` for ``cliquet.storage_url`` (pool
    size and timeout from ``cliquet.storage_pool_size`` and
    ``cliquet.storage_pool_timeout``).

    Backends on one database share one client and pool, as large and patient
    as the largest of their ``*_pool_size`` and ``*_pool_timeout``: see
    :func:`~cliquet.storage.postgresql_client.get_client`.
    """
    settings = config.get_settings()
    url = settings.get("cliquet.storage_url")
    if not url:
        from pyramid.exceptions import ConfigurationError

        raise ConfigurationError("cliquet.storage_url is required by cliquet.storage.postgresql")
    client = get_client(
        url,
        pool_size=settings.get("cliquet.storage_pool_size") or 10,
        pool_timeout=settings.get("cliquet.storage_pool_timeout") or 30.0,
    )
    return PostgreSQLStorage(client, max_fetch_size=settings.get("cliquet.storage_max_fetch_size") or 10000)
