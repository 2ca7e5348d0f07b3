"""The :class:`PostgreSQLIndexer` (see :mod:`cliquet_indexing.postgresql`)."""

from __future__ import annotations

import logging
import re
from typing import Iterable, Iterator

from cliquet.storage.postgresql_schema import migrate

from cliquet_indexing.indexer import IndexEntry, IndexerBase, SearchResult
from cliquet_indexing.postgresql.analysis import analyse, text_array, to_json
from cliquet_indexing.postgresql.compiler import Compiler
from cliquet_indexing.query import DEFAULT_MAX_SIZE, InvalidQuery

logger = logging.getLogger("cliquet_indexing.postgresql")

PREFIX = re.compile(r"^[A-Za-z0-9_]*$")

#: memory a search may sort and count in before spilling to disk: the
#: narrow rows of 100 000 matches fit (the server's default, 4 MB, does not).
WORK_MEM = "32MB"
#: a search's settings (``statement_timeout``, ``work_mem``), for its
#: transaction or, outside one, until :data:`RESET`.
SETTINGS = (f"SELECT set_config('statement_timeout', %s, %s), set_config('work_mem', '{WORK_MEM}', %s)")
RESET = ("RESET statement_timeout", "RESET work_mem")


def migrations(table: str) -> list[list[str]]:
    """The versioned schema of one index table (see :func:`cliquet.storage.postgresql_schema.migrate`)."""
    return [[
        f"""
        CREATE TABLE IF NOT EXISTS {table} (
            resource TEXT COLLATE "C" NOT NULL,
            parent_id TEXT COLLATE "C" NOT NULL,
            record_id TEXT COLLATE "C" NOT NULL,
            last_modified BIGINT NOT NULL,
            deleted BOOLEAN NOT NULL DEFAULT FALSE,
            principals TEXT[] NOT NULL DEFAULT '{{}}',
            fields TEXT[] NOT NULL DEFAULT '{{}}',
            leaves JSONB NOT NULL DEFAULT '{{}}',
            words TSVECTOR NOT NULL DEFAULT '',
            data JSONB,
            PRIMARY KEY (resource, record_id, parent_id)
        )
        """,
        f"CREATE INDEX IF NOT EXISTS {table}_words ON {table} USING gin (words)",
        f"CREATE INDEX IF NOT EXISTS {table}_leaves ON {table} USING gin (leaves jsonb_path_ops)",
        f"CREATE INDEX IF NOT EXISTS {table}_fields ON {table} USING gin (fields)",
        f"CREATE INDEX IF NOT EXISTS {table}_principals ON {table} USING gin (principals)",
    ]]


class PostgreSQLIndexer(IndexerBase):
    """An indexer in the storage's PostgreSQL database, written in the
    request's transaction (:attr:`transactional`).

    :param client: a :class:`~cliquet.storage.postgresql_client.PostgreSQLClient`
        (the storage's, so that index writes join its transaction).
    :param prefix: prefix of the table name (letters, digits, ``_``).
    """

    #: index writes happen inside the storage transaction (listener on
    #: :class:`~cliquet.events.ResourceChanged`), never after it.
    transactional = True

    def __init__(self, client, prefix: str = "", max_size: int = DEFAULT_MAX_SIZE, **kwargs):
        super().__init__(prefix=prefix, max_size=max_size)
        if not PREFIX.match(prefix or ""):
            raise ValueError(f"cliquet.indexing_prefix {prefix!r}: only letters, digits and _ are allowed")
        self.client = client
        self.table = f"{prefix}cliquet_index".lower()
        self._ready = False
        upsert = (f"INSERT INTO {self.table} AS i (resource, parent_id, record_id, last_modified, deleted, "
                  "principals, fields, leaves, words, data) VALUES (%s, %s, %s, %s, FALSE, %s::text[], %s::text[], "
                  "%s::jsonb, %s::tsvector, %s::jsonb) ON CONFLICT (resource, record_id, parent_id) DO UPDATE SET "
                  "last_modified = EXCLUDED.last_modified, deleted = FALSE, principals = EXCLUDED.principals, "
                  "fields = EXCLUDED.fields, leaves = EXCLUDED.leaves, words = EXCLUDED.words, data = EXCLUDED.data "
                  "WHERE i.last_modified < EXCLUDED.last_modified "
                  "OR (i.last_modified = EXCLUDED.last_modified AND NOT i.deleted)")
        self._upsert = upsert
        self._delete = (f"INSERT INTO {self.table} AS i (resource, parent_id, record_id, last_modified, deleted) "
                        "VALUES (%s, %s, %s, %s, TRUE) ON CONFLICT (resource, record_id, parent_id) DO UPDATE SET "
                        "last_modified = greatest(i.last_modified, EXCLUDED.last_modified), deleted = TRUE, "
                        "principals = '{}', fields = '{}', leaves = '{}', words = '', data = NULL "
                        "WHERE i.deleted OR i.last_modified <= EXCLUDED.last_modified")

    # -- schema ----------------------------------------------------------------------

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Create the table and its GIN indexes (versioned, idempotent)."""
        migrate(self.client, f"indexer:{self.table}", migrations(self.table), dry_run=dry_run)
        if not dry_run:
            self._ready = True

    def _ensure(self) -> None:
        """Create the schema on first use (a service upgraded without ``cliquet migrate``)."""
        if not self._ready:
            self.initialize_schema()

    def flush(self) -> None:
        """Remove every entry and deletion of this prefix."""
        self._ensure()
        self.client.execute(f"DELETE FROM {self.table}", fetch=None)

    def heartbeat(self) -> bool:
        """Return whether the server answers."""
        return self.client.heartbeat()

    # -- writes ----------------------------------------------------------------------

    def index_records(self, resource_name: str, entries: Iterable[IndexEntry]) -> None:
        """Upsert the entries: one statement per record, the version rule in
        SQL (an older entry, or one not newer than a deletion, changes nothing).

        In the storage's transaction this runs while the write holds its
        collection's timestamp, so every parameter goes as text that
        PostgreSQL casts (arrays as literals, JSON from orjson): cheaper
        than the driver adapting lists element by element."""
        latest: dict = {}
        for entry in entries:
            known = latest.get(entry.key)
            if known is None or entry.version >= known.version:
                latest[entry.key] = entry
        if not latest:
            return
        rows = []
        for (parent_id, record_id), entry in latest.items():
            words, leaves, fields = analyse(entry.record)
            rows.append((resource_name, parent_id, record_id, entry.version,
                         text_array(sorted(set(entry.read_principals))), text_array(fields), leaves, words,
                         to_json(entry.record)))
        self._ensure()
        self._send(self._upsert, rows)

    def unindex_records(self, resource_name: str, keys: Iterable[tuple[str, str, int]]) -> None:
        """Remove the entries unless indexed at a greater version; remember the deletions."""
        latest: dict = {}
        for parent_id, record_id, version in keys:
            latest[(parent_id, record_id)] = max(int(version), latest.get((parent_id, record_id), 0))
        if not latest:
            return
        rows = [(resource_name, parent_id, record_id, version) for (parent_id, record_id), version in latest.items()]
        self._ensure()
        self._send(self._delete, rows)

    def _send(self, statement, rows) -> None:
        """Write ``rows`` with ``statement``: inside the storage's transaction,
        queued to leave with its ``COMMIT`` in one message (no round trip of
        their own, see :meth:`~cliquet.storage.postgresql_client.PostgreSQLClient.defer`);
        otherwise at once."""
        defer = getattr(self.client, "defer", None)
        if defer is not None and len(rows) <= self.DEFER_MAX and defer(statement, rows[0]):
            for row in rows[1:]:
                defer(statement, row)
            return
        self.client.run(lambda conn: self._write(conn, statement, rows))

    #: most rows queued for the commit (a larger write, a batch, runs at once in a pipeline)
    DEFER_MAX = 100

    @staticmethod
    def _write(conn, statement, rows) -> None:
        """One statement per row: a single row as a plain (prepared) statement,
        several in one pipeline."""
        if len(rows) == 1:
            conn.execute(statement, rows[0])
        else:
            conn.cursor().executemany(statement, rows)

    def indexed_keys(self, resource_name: str) -> Iterator[tuple[str, str, int]]:
        """Return the ``(parent_id, record id, version)`` of a resource's entries."""
        self._ensure()
        rows = self.client.execute(f"SELECT parent_id, record_id, last_modified FROM {self.table} "
                                   "WHERE resource = %s AND NOT deleted", (resource_name,), readonly=True)
        return iter([tuple(row) for row in rows])

    # -- search ----------------------------------------------------------------------

    def search(self, resource_name: str, query: dict, principals: Iterable[str]) -> SearchResult:
        """Run one statement (scope, clauses, order, page and total), bounded
        by ``cliquet.search_timeout``."""
        principals = sorted(set(principals))
        self._ensure()
        if not principals:
            return SearchResult([], 0)
        compiler = Compiler()
        where = compiler.condition(query["query"])
        where_params = list(compiler.params)
        values, keys = compiler.order(query["sort"])
        base = [resource_name, principals]
        scope = (f"FROM {self.table} AS i WHERE i.resource = %s AND NOT i.deleted "
                 f"AND i.principals && %s::text[] AND ({where})")
        size, start = query["size"], query["from"]
        # The matches are counted and sorted as narrow rows (ids and the
        # values sorted on, each read once from the row): the count is a
        # window over them, the order a top-N sort of what the window
        # streams, and only the page's records are read after.
        columns = "".join(f", {value} AS v{n}" for n, value in enumerate(values))
        order = "".join(f"{key}{' DESC' if way == 'DESC' else ''}, " for key, way in keys)
        page_sql = (f"SELECT (SELECT d.data FROM {self.table} AS d WHERE d.resource = %s "
                    "AND d.record_id = p.record_id AND d.parent_id = p.parent_id), p.total "
                    "FROM (SELECT m.record_id, m.parent_id, m.total "
                    "FROM (SELECT n.*, count(*) OVER () AS total "
                    f"FROM (SELECT i.record_id, i.parent_id{columns} {scope} OFFSET 0) AS n) AS m "
                    f"ORDER BY {order}m.record_id, m.parent_id LIMIT %s OFFSET %s) AS p")
        page_params = [resource_name, *compiler.params[len(where_params):], *base, *where_params,
                       max(size, 1), start]
        count_params = [*base, *where_params]
        rows, total = self.client.run(lambda conn: self._bounded(conn, page_sql, page_params,
                                                                 f"SELECT count(*) {scope}", count_params),
                                      readonly=True)
        return SearchResult([row[0] for row in rows[:size]], total)

    def _bounded(self, conn, sql, params, count_sql, count_params):
        """Run the page (and the count when the page is empty) within the
        search timeout and :data:`WORK_MEM`: setting them, the page and
        resetting them go in one round trip (a pipeline)."""
        import psycopg

        from cliquet.storage.postgresql_client import pipeline

        milliseconds = str(max(1, int(self.limits.timeout * 1000)))
        in_transaction = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        try:
            with pipeline(conn):
                conn.execute(SETTINGS, (milliseconds, in_transaction, in_transaction))
                # Never prepared: a generic plan cannot know how selective the words and values are.
                cursor = conn.execute(sql, params, prepare=False)
                if not in_transaction:
                    for statement in RESET:
                        conn.execute(statement)
            rows = cursor.fetchall()
            total = rows[0][1] if rows else self._count(conn, count_sql, count_params, milliseconds, in_transaction)
        except (psycopg.errors.QueryCanceled, psycopg.errors.ProgramLimitExceeded,
                psycopg.errors.StatementTooComplex) as exc:
            self._reset(conn, in_transaction)
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise self.limits.timed_out() from exc
            raise InvalidQuery([{"location": "body", "name": "query",
                                 "description": f"the PostgreSQL indexer cannot run this query ({exc}): "
                                                "make it smaller"}]) from exc
        except BaseException:
            self._reset(conn, in_transaction)
            raise
        return rows, total

    @staticmethod
    def _count(conn, count_sql, count_params, milliseconds, in_transaction) -> int:
        """The total, for a page past the end (or of size 0)."""
        from cliquet.storage.postgresql_client import pipeline

        with pipeline(conn):
            conn.execute(SETTINGS, (milliseconds, in_transaction, in_transaction))
            cursor = conn.execute(count_sql, count_params, prepare=False)
            if not in_transaction:
                for statement in RESET:
                    conn.execute(statement)
        return cursor.fetchone()[0]

    @staticmethod
    def _reset(conn, in_transaction) -> None:
        """Put the connection's ``statement_timeout`` and ``work_mem`` back after a failure."""
        import psycopg

        if in_transaction:
            return  # the failure aborted the transaction; SET LOCAL ends with it
        try:
            for statement in RESET:
                conn.execute(statement)
        except psycopg.Error:  # pragma: no cover - the connection is gone: the pool drops it
            logger.debug("could not reset statement_timeout", exc_info=True)

    def close(self) -> None:
        """Nothing to release: the pool is the storage's (shared)."""
