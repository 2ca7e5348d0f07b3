"""The :class:`EmbeddedIndexer` (see :mod:`cliquet_indexing.embedded`)."""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import re
import sqlite3
import threading
import urllib.parse
from typing import Iterable, Iterator

from cliquet.storage.exceptions import BackendError

from cliquet_indexing.embedded.compiler import BOOL, NUMBER, STRING, Compiler, bounded, token
from cliquet_indexing.embedded.writer import IndexWriter
from cliquet_indexing.indexer import IndexEntry, IndexerBase, SearchResult
from cliquet_indexing.query import DEFAULT_MAX_SIZE, tokens
from cliquet_indexing.retry import UNINDEX

logger = logging.getLogger("cliquet_indexing.embedded")

PREFIX = re.compile(r"^[A-Za-z0-9_]*$")
#: the token put between two values of one field, so phrases never span them.
GAP = "g"
DEFAULT_TIMEOUT = 5.0


def parse_url(url: str | None) -> tuple[str, float]:
    """Return ``(database, timeout)`` for ``cliquet.indexing_url``.

    Empty, ``memory`` or ``sqlite://`` (no path) mean in memory (``":memory:"``);
    ``sqlite:///relative.db`` and ``sqlite:////abs/path.db`` name a file.

    :raises ValueError: another scheme.
    """
    if not url or url.strip() in ("memory", ":memory:"):
        return ":memory:", DEFAULT_TIMEOUT
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme != "sqlite":
        raise ValueError(f"the embedded indexer needs a sqlite:///path URL (or nothing), not {url!r}")
    query = urllib.parse.parse_qs(parts.query)
    timeout = float(query.get("timeout", [DEFAULT_TIMEOUT])[0])
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return (urllib.parse.unquote(path) or ":memory:"), timeout


def _modified(entry: IndexEntry) -> int:
    return entry.version


def flatten(value, path: str = ""):
    """Return ``[(path, scalar)]`` for every non-null leaf; lists are transparent."""
    out = []
    stack = [(path, value)]
    while stack:
        path, value = stack.pop()
        kind = type(value)
        if kind is dict:
            for key, inner in reversed(value.items()):
                stack.append((f"{path}.{key}" if path else str(key), inner))
        elif kind is list:
            for inner in reversed(value):
                stack.append((path, inner))
        elif value is not None and path:
            out.append((path, value))
    return out


class EmbeddedIndexer(IndexerBase):
    """An indexer in SQLite (FTS5 and JSON1, both in Python's ``sqlite3``).

    One connection per indexer, shared by threads behind a lock held for
    one statement or transaction (never across requests): SQLite serializes
    writes anyway, and a search is a single statement of a few milliseconds.
    :meth:`index_records` and :meth:`unindex_records` write at once; the
    changes of requests go through :attr:`write_behind` (an
    :class:`~cliquet_indexing.embedded.writer.IndexWriter`), which groups
    them in transactions off the request path, and a search applies what is
    pending first.

    :param url: ``cliquet.indexing_url`` (see :func:`parse_url`).
    :param prefix: prefix of the table names (letters, digits, ``_``).
    """

    def __init__(self, url: str | None = None, prefix: str = "", max_size: int = DEFAULT_MAX_SIZE, **kwargs):
        super().__init__(prefix=prefix, max_size=max_size)
        if not PREFIX.match(prefix or ""):
            raise ValueError(f"cliquet.indexing_prefix {prefix!r}: only letters, digits and _ are allowed")
        self.url = url
        self.database, self.timeout = parse_url(url)
        self.tables = {name: f"{prefix}cix_{name}" for name in ("docs", "scope", "vals", "fields", "fts",
                                                                "scope_doc", "vals_doc", "vals_value", "tomb")}
        self._lock = threading.RLock()
        self._codes: dict = {}
        self._schema_ready = False
        self._conn = None
        #: groups the changes of requests in transactions (see :mod:`.writer`).
        self.write_behind = IndexWriter(self)

    # -- plumbing -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.database, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA cache_size = -65536")
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def _session(self, write=False):
        """Hold the lock, give the connection, wrap errors in BackendError."""
        with self._lock:
            try:
                conn = self._connection()
                if not self._schema_ready:
                    self._create_schema(conn)
                if not write:
                    yield conn
                    return
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._codes.clear()
                raise BackendError(exc) from exc

    def _create_schema(self, conn, dry_run=False):
        t = self.tables
        statements = [
            f"CREATE TABLE IF NOT EXISTS {t['docs']} (id INTEGER PRIMARY KEY, resource TEXT NOT NULL, "
            "parent_id TEXT NOT NULL, record_id TEXT NOT NULL, last_modified INTEGER NOT NULL, "
            "data TEXT NOT NULL, UNIQUE (resource, record_id, parent_id))",
            f"CREATE TABLE IF NOT EXISTS {t['scope']} (resource TEXT NOT NULL, principal TEXT NOT NULL, "
            "doc INTEGER NOT NULL, PRIMARY KEY (resource, principal, doc)) WITHOUT ROWID",
            f"CREATE INDEX IF NOT EXISTS {t['scope_doc']} ON {t['scope']} (doc, principal)",
            f"CREATE TABLE IF NOT EXISTS {t['fields']} (code INTEGER PRIMARY KEY, resource TEXT NOT NULL, "
            "path TEXT NOT NULL, text INTEGER NOT NULL DEFAULT 0, UNIQUE (resource, path))",
            f"CREATE TABLE IF NOT EXISTS {t['vals']} (doc INTEGER NOT NULL, field INTEGER NOT NULL, "
            "kind INTEGER NOT NULL, v)",
            f"CREATE INDEX IF NOT EXISTS {t['vals_doc']} ON {t['vals']} (doc, field, kind, v)",
            f"CREATE INDEX IF NOT EXISTS {t['vals_value']} ON {t['vals']} (field, kind, v)",
            f"CREATE TABLE IF NOT EXISTS {t['tomb']} (resource TEXT NOT NULL, parent_id TEXT NOT NULL, "
            "record_id TEXT NOT NULL, last_modified INTEGER NOT NULL, PRIMARY KEY (resource, record_id, parent_id)) "
            "WITHOUT ROWID",
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {t['fts']} USING fts5(words, tokenize = \"ascii tokenchars '_'\")",
        ]
        if dry_run:
            for statement in statements:
                logger.info("%s", statement)
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._schema_ready = True

    def _code(self, conn, resource: str, path: str, create: bool, text: bool = False) -> int | None:
        key = (resource, path)
        known = self._codes.get(key)
        if known is not None and (known[1] or not text):
            return known[0]
        row = conn.execute(f"SELECT code, text FROM {self.tables['fields']} WHERE resource = ? AND path = ?",
                           key).fetchone()
        if row is None:
            if not create:
                return None
            code = conn.execute(f"INSERT INTO {self.tables['fields']} (resource, path, text) VALUES (?, ?, ?)",
                                (*key, int(text))).lastrowid
            row = (code, int(text))
        elif text and not row[1]:
            conn.execute(f"UPDATE {self.tables['fields']} SET text = 1 WHERE code = ?", (row[0],))
            row = (row[0], 1)
        self._codes[key] = (row[0], bool(row[1]))
        return row[0]

    def _text_codes(self, conn, resource: str) -> list[int]:
        rows = conn.execute(f"SELECT code FROM {self.tables['fields']} WHERE resource = ? AND text = 1",
                            (resource,)).fetchall()
        return [code for code, in rows]

    # -- the API --------------------------------------------------------------------------

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Create the tables and indexes of this prefix (idempotent)."""
        with self._lock:
            try:
                self._create_schema(self._connection(), dry_run=dry_run)
            except sqlite3.Error as exc:
                raise BackendError(exc) from exc

    def flush(self) -> None:
        """Remove every entry of this prefix (changes pending in :attr:`write_behind` too)."""
        self.write_behind.discard()
        with self._session(write=True) as conn:
            for name in ("docs", "scope", "vals", "fts", "tomb"):
                conn.execute(f"DELETE FROM {self.tables[name]}")

    def heartbeat(self) -> bool:
        """Return whether the database can be read (``False`` while locked by
        another process, or unreadable)."""
        try:
            with self._session() as conn:
                conn.execute(f"SELECT count(*) FROM {self.tables['fields']} WHERE code = 0").fetchone()
            return True
        except BackendError:
            return False

    def index_records(self, resource_name: str, entries: Iterable[IndexEntry]) -> None:
        """Upsert the entries in one transaction (versions older than the
        indexed one, or not newer than a remembered deletion, skipped)."""
        latest: dict = {}
        for entry in entries:
            key = entry.key
            known = latest.get(key)
            if known is None or _modified(entry) >= _modified(known):
                latest[key] = entry
        if not latest:
            with self._session():
                return
        with self._session(write=True) as conn:
            self._index(conn, resource_name, latest)

    def write(self, changes: dict) -> None:
        """Apply ``{resource: [(op, parent_id, record id, payload)]}`` (the
        operations of :mod:`cliquet_indexing.retry`, one per record) in one
        transaction, with the version rules of :meth:`index_records` and
        :meth:`unindex_records`. What :class:`~cliquet_indexing.embedded.writer.IndexWriter`
        calls."""
        with self._session(write=True) as conn:
            for resource_name, operations in changes.items():
                entries, deletions = {}, {}
                for op, parent_id, record_id, payload in operations:
                    if op == UNINDEX:
                        deletions[(parent_id, record_id)] = int(payload)
                    else:
                        entries[(parent_id, record_id)] = payload
                if entries:
                    self._index(conn, resource_name, entries)
                if deletions:
                    self._unindex(conn, resource_name, deletions)

    def _index(self, conn, resource_name: str, latest: dict) -> None:
        """Upsert ``{key: IndexEntry}`` inside the current transaction."""
        t = self.tables
        existing = self._existing(conn, resource_name, latest)
        deleted = self._existing(conn, resource_name, latest, table="tomb")
        next_id = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {t['docs']}").fetchone()[0]
        inserts, updates, stale, vals, scope, fts, revived = [], [], [], [], [], [], []
        for key, entry in latest.items():
            modified = _modified(entry)
            if key in deleted:
                if deleted[key][1] >= modified:
                    continue  # deleted at this version or later
                revived.append((resource_name, *key))
            data = json.dumps(entry.record, ensure_ascii=False, separators=(",", ":"))
            known = existing.get(key)
            if known is None:
                doc, next_id = next_id, next_id + 1
                inserts.append((doc, resource_name, key[0], key[1], modified, data))
            elif known[1] > modified:
                continue
            else:
                doc = known[0]
                stale.append((doc,))
                updates.append((modified, data, doc))
            scope += [(resource_name, principal, doc) for principal in set(entry.read_principals)]
            words = self._leaves(conn, resource_name, doc, entry.record, vals)
            if words:
                fts.append((doc, words))
        if stale:
            vals, scope, fts = self._changed_rows(conn, {doc for doc, in stale}, vals, scope, fts)
        conn.executemany(f"INSERT INTO {t['docs']} (id, resource, parent_id, record_id, last_modified, data) "
                         "VALUES (?, ?, ?, ?, ?, ?)", inserts)
        conn.executemany(f"UPDATE {t['docs']} SET last_modified = ?, data = ? WHERE id = ?", updates)
        conn.executemany(f"INSERT INTO {t['vals']} (doc, field, kind, v) VALUES (?, ?, ?, ?)", vals)
        conn.executemany(f"INSERT OR IGNORE INTO {t['scope']} (resource, principal, doc) VALUES (?, ?, ?)", scope)
        conn.executemany(f"INSERT INTO {t['fts']} (rowid, words) VALUES (?, ?)", fts)
        conn.executemany(f"DELETE FROM {t['tomb']} WHERE resource = ? AND parent_id = ? AND record_id = ?",
                         revived)

    def _changed_rows(self, conn, docs: set, vals: list, scope: list, fts: list) -> tuple:
        """For the updated ``docs``, delete only the ``vals``, ``scope`` and
        ``fts`` rows that differ from the new ones; return the new rows left
        to insert (a PATCH of one field rewrites one value, not the record)."""
        t = self.tables
        old_vals, old_scope, old_fts = collections.Counter(), set(), {}
        ordered = sorted(docs)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            old_vals.update(conn.execute(f"SELECT doc, field, kind, v FROM {t['vals']} WHERE doc IN ({marks})",
                                         chunk).fetchall())
            old_scope.update(conn.execute(f"SELECT resource, principal, doc FROM {t['scope']} "
                                          f"WHERE doc IN ({marks})", chunk).fetchall())
            old_fts.update(conn.execute(f"SELECT rowid, words FROM {t['fts']} WHERE rowid IN ({marks})",
                                        chunk).fetchall())
        new_vals = collections.Counter(row for row in vals if row[0] in docs)
        changed = {row for row in set(old_vals) | set(new_vals) if old_vals[row] != new_vals[row]}
        conn.executemany(f"DELETE FROM {t['vals']} WHERE doc = ? AND field = ? AND kind = ? AND v IS ?",
                         [row for row in changed if old_vals[row]])
        new_scope = {row for row in scope if row[2] in docs}
        conn.executemany(f"DELETE FROM {t['scope']} WHERE resource = ? AND principal = ? AND doc = ?",
                         list(old_scope - new_scope))
        new_fts = {doc: words for doc, words in fts if doc in docs}
        stale_fts = [doc for doc, words in old_fts.items() if new_fts.get(doc) != words]
        conn.executemany(f"DELETE FROM {t['fts']} WHERE rowid = ?", [(doc,) for doc in stale_fts])
        stale_fts = set(stale_fts)
        vals = [row for row in vals if row[0] not in docs or row in changed]
        scope = [row for row in scope if row[2] not in docs or row not in old_scope]
        fts = [(doc, words) for doc, words in fts if doc not in docs or doc in stale_fts or doc not in old_fts]
        return vals, scope, fts

    def _existing(self, conn, resource_name, keys, table="docs") -> dict:
        """Return ``{(parent_id, record id): (doc, last_modified)}`` of the keys
        already indexed (of ``table="tomb"``: deleted, ``doc`` then is ``None``)."""
        found = {}
        ids = sorted({record_id for _, record_id in keys})
        doc_column = "id" if table == "docs" else "NULL"
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = conn.execute(f"SELECT parent_id, record_id, {doc_column}, last_modified FROM {self.tables[table]} "
                                f"WHERE resource = ? AND record_id IN ({', '.join('?' * len(chunk))})",
                                [resource_name, *chunk]).fetchall()
            for parent_id, record_id, doc, modified in rows:
                if (parent_id, record_id) in keys:
                    found[(parent_id, record_id)] = (doc, modified)
        return found

    def _leaves(self, conn, resource_name, doc, record, vals) -> str:
        """Append the ``vals`` rows of ``record``; return its FTS text."""
        words, previous = [], None
        for path, value in flatten(record):
            if isinstance(value, bool):
                vals.append((doc, self._code(conn, resource_name, path, True), BOOL, int(value)))
            elif isinstance(value, (int, float)):
                vals.append((doc, self._code(conn, resource_name, path, True), NUMBER, value))
            else:
                value = str(value)
                found = tokens(value)
                code = self._code(conn, resource_name, path, True, text=bool(found))
                vals.append((doc, code, STRING, value))
                if found:
                    if previous == code:
                        words.append(GAP)
                    prefix = token(code, "")
                    words.append(prefix + (" " + prefix).join(found))
                    previous = code
        return " ".join(words)

    def unindex_records(self, resource_name: str, keys: Iterable[tuple[str, str, int]]) -> None:
        """Remove the entries of these ``(parent_id, record id, version)``
        unless indexed at a greater version, and remember the deletions."""
        latest: dict = {}
        for parent_id, record_id, version in keys:
            key = (parent_id, record_id)
            latest[key] = max(int(version), latest.get(key, 0))
        with self._session(write=bool(latest)) as conn:
            if latest:
                self._unindex(conn, resource_name, latest)

    def _unindex(self, conn, resource_name: str, latest: dict) -> None:
        """Delete ``{key: version}`` inside the current transaction."""
        t = self.tables
        existing = self._existing(conn, resource_name, latest)
        docs, tombs = [], []
        for key, version in latest.items():
            known = existing.get(key)
            if known is not None and known[1] > version:
                continue  # a newer record than this deletion
            if known is not None:
                docs.append((known[0],))
            tombs.append((resource_name, *key, version))
        for name, column in (("docs", "id"), ("vals", "doc"), ("scope", "doc"), ("fts", "rowid")):
            conn.executemany(f"DELETE FROM {t[name]} WHERE {column} = ?", docs)
        conn.executemany(f"INSERT INTO {t['tomb']} (resource, parent_id, record_id, last_modified) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT (resource, record_id, parent_id) DO UPDATE "
                         "SET last_modified = max(last_modified, excluded.last_modified)", tombs)

    def indexed_keys(self, resource_name: str) -> Iterator[tuple[str, str, int]]:
        """Return an iterator over the ``(parent_id, record id, version)`` of a
        resource (read at call time, after the pending changes are applied)."""
        self.write_behind.flush()
        with self._session() as conn:
            rows = conn.execute(f"SELECT parent_id, record_id, last_modified FROM {self.tables['docs']} "
                                "WHERE resource = ?", (resource_name,)).fetchall()
        return iter([(p, r, v) for p, r, v in rows])

    def search(self, resource_name: str, query: dict, principals: Iterable[str]) -> SearchResult:
        """Apply the changes pending in :attr:`write_behind` (read-your-writes in this
        process), then run one SQL statement: driver, read scope and probes,
        sort, page, total."""
        self.write_behind.flush()
        principals = sorted(set(principals))
        with self._session() as conn, bounded(conn, self.limits):  # timeout and refusals: a 400
            if not principals:
                return SearchResult([], 0)
            compiler = Compiler(self.tables, lambda path: self._code(conn, resource_name, path, create=False),
                                lambda: self._text_codes(conn, resource_name))
            sort_codes = [(compiler.code(field), direction)
                          for item in query["sort"] for field, direction in item.items()]
            sql, params, _ = compiler.statement(query, resource_name, principals, sort_codes)
            if not sql:
                return SearchResult([], 0)
            size, start = query["size"], query["from"]
            rows = conn.execute(f"{sql} LIMIT ? OFFSET ?", [*params, max(size, 1), start]).fetchall()
            if rows:
                total = rows[0][1]
            else:
                total = conn.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
            page = [row[0] for row in rows[:size]]
            data = dict(conn.execute(f"SELECT id, data FROM {self.tables['docs']} WHERE id IN "
                                     f"({', '.join('?' * len(page))})", page).fetchall()) if page else {}
            records = [json.loads(data[doc]) for doc in page]
        return SearchResult(records, total)

    def close(self) -> None:
        """Apply what is pending, stop the writer and close the connection (an
        in-memory index is lost)."""
        self.write_behind.close()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._schema_ready = False
                self._codes.clear()
