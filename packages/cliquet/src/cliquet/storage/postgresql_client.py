"""A PostgreSQL connection pool shared by the storage, cache and permission
backends, with transactions bound to the current context.

One :class:`PostgreSQLClient` exists per *database* (see
:func:`database_key`: the URL's host, port, database, user and options, not
its spelling nor the pool settings): backends configured on the same database
share its pool *and* its current transaction, so a request that writes
records, permissions and cache entries commits (or rolls back) all of them at
once. The shared pool is as large and as patient as the largest
``*_pool_size`` and ``*_pool_timeout`` of the backends on it.

Connections are in autocommit mode: a lone read is one round trip, with no
``BEGIN``/``COMMIT``. :meth:`PostgreSQLClient.transaction` binds one
connection to the current context (a :class:`contextvars.ContextVar`, so
threads and asyncio tasks each have their own); nested calls become
savepoints. ``BEGIN`` is deferred to the first write, and a nested block's
``SAVEPOINT`` to the block's first statement (its first write before
``BEGIN``), both in one message: a request that only reads costs no
transaction round trip, a nested block that sends nothing none. Every
:mod:`psycopg` error surfaces as :class:`~cliquet.storage.exceptions.BackendError`.

Recovery after a server restart needs no intervention: a connection found
broken is discarded by the pool, the idle ones are checked at once, and the
operation is retried on a fresh connection when nothing can have been written
(a failed ``BEGIN`` or a read outside any transaction).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading

import orjson
import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import set_json_loads

from cliquet.storage.exceptions import BackendError

logger = logging.getLogger(__name__)

_CLIENTS: dict[tuple, "PostgreSQLClient"] = {}
_CLIENTS_LOCK = threading.Lock()


def _configure(conn: psycopg.Connection) -> None:
    """Prepare a new connection: orjson for JSON values."""
    set_json_loads(orjson.loads, conn)


def _is_broken(conn) -> bool:
    return conn is None or conn.closed or conn.broken


def _rows(cursor, fetch: str | None):
    """All rows (``fetch="all"``), the first one (``"one"``) or the row
    count (``None``) of a cursor."""
    if fetch == "all":
        return cursor.fetchall()
    if fetch == "one":
        return cursor.fetchone()
    return cursor.rowcount


@contextlib.contextmanager
def pipeline(conn: psycopg.Connection):
    """``conn.pipeline()``, where statements may be prepared safely.

    psycopg prepares a statement the sixth time it runs on a connection
    and, inside a pipeline, records it as prepared when it sends the
    preparation, not when the server answers. When a statement before it
    in the pipeline fails, the server skips the rest, that preparation
    included, and every later use of the statement on that connection
    failed (``prepared statement "_pg3_1" does not exist``). So when a
    pipeline fails (or is interrupted), psycopg forgets every statement it
    prepared on the connection, and a ``DEALLOCATE ALL`` goes with the next
    statement (what psycopg itself does after a ``ROLLBACK`` it sees
    first): they are prepared again as they are used.
    """
    try:
        with conn.pipeline():
            yield conn
    except BaseException:
        _forget_prepared(conn)
        raise


def _forget_prepared(conn) -> None:
    """Make psycopg forget, and deallocate, the statements prepared on
    ``conn`` (its private ``_prepared`` manager: should a later psycopg
    lack it, prepared statements are turned off on ``conn`` instead)."""
    manager = getattr(conn, "_prepared", None)
    if callable(getattr(manager, "clear", None)):
        manager.clear()
    else:  # pragma: no cover - another psycopg
        conn.prepare_threshold = None


def _preparable(statement) -> bool | None:
    """``prepare`` for ``statement``: never for transaction control (nothing
    to plan), psycopg's choice for the rest."""
    return False if isinstance(statement, str) and statement.startswith(_CONTROL) else None


_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
_COMMAND_OK = psycopg.pq.ExecStatus.COMMAND_OK
_IDLE = psycopg.pq.TransactionStatus.IDLE
#: what :meth:`PostgreSQLClient._send` notes when ``BEGIN``/``RELEASE`` succeeds
_began, _released = object(), object()
#: the key, among a transaction's marks, of those a rollback forgets
_UNDONE_BY_ROLLBACK = object()


class _Transaction:
    """The state of the transaction bound to a context."""

    __slots__ = ("conn", "cm", "began", "savepoints", "unreleased", "deferred")

    def __init__(self, conn, cm):
        self.conn = conn
        self.cm = cm
        self.began = False
        #: ``[name, sent]`` per nested level
        self.savepoints: list = []
        #: the savepoint of a nested level that ended, not released yet
        #: (see :meth:`PostgreSQLClient._nested`)
        self.unreleased: str | None = None
        #: writes sent with the ``COMMIT`` (see :meth:`PostgreSQLClient.defer`)
        self.deferred: list = []


class PostgreSQLClient:
    """A pool of connections to one server and the transaction bound to the
    current context.

    :param url: a libpq URL or DSN (``postgresql://user:pass@host:port/db``;
        ``?options=-csearch_path%3Dmyschema`` picks a schema).
    :param pool_size: most connections open at once.
    :param pool_timeout: seconds to wait for a free connection (or for the
        server to accept one) before raising ``BackendError``.
    """

    def __init__(self, url: str, pool_size: int = 10, pool_timeout: float = 30.0):
        self.url = url
        self.pool_size = max(1, pool_size)
        self.pool_timeout = pool_timeout
        self.connect_timeout = max(1, int(min(pool_timeout, 10)))
        self.pool = self._new_pool()
        self._opened = False
        #: set while the server is known to be unreachable: calls then fail
        #: at once (after one quick connection attempt) instead of waiting
        #: ``pool_timeout`` for the pool.
        self._down = False
        self._open_lock = threading.Lock()
        self._bound: contextvars.ContextVar = contextvars.ContextVar(f"cliquet_pg_{id(self):x}", default=None)
        self._marks: contextvars.ContextVar = contextvars.ContextVar(f"cliquet_pg_marks_{id(self):x}", default=None)

    # -- pool ----------------------------------------------------------------

    def _new_pool(self) -> psycopg_pool.ConnectionPool:
        return psycopg_pool.ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.pool_size,
            open=False,
            timeout=self.pool_timeout,
            kwargs={"autocommit": True, "connect_timeout": self.connect_timeout},
            configure=_configure,
            reconnect_timeout=max(self.pool_timeout, 5.0),
            name=f"cliquet-{id(self):x}",
        )

    def widen(self, pool_size: int, pool_timeout: float) -> None:
        """Grow the pool to ``pool_size`` connections and its timeout to
        ``pool_timeout`` seconds, if they are larger (one more backend now
        shares this client)."""
        if pool_size > self.pool_size:
            logger.info("PostgreSQL pool of %s grows from %s to %s connections (shared by several backends)",
                        self.pool.name, self.pool_size, pool_size)
            self.pool_size = pool_size
            self.pool.resize(min_size=1, max_size=pool_size)
        if pool_timeout > self.pool_timeout:
            self.pool_timeout = self.pool.timeout = pool_timeout

    def _open(self) -> None:
        if self._opened:
            return
        with self._open_lock:
            if not self._opened:
                # Don't wait for the first connection: an unreachable server
                # must not break the application's start-up, only requests.
                self.pool.open(wait=False)
                self._opened = True

    def close(self) -> None:
        """Close every connection of the pool; :func:`get_client` will build a
        new client for this URL."""
        with _CLIENTS_LOCK:
            for key, client in list(_CLIENTS.items()):
                if client is self:
                    del _CLIENTS[key]
        if self._opened:
            self.pool.close()
            self._opened = False

    def _probe(self) -> BaseException | None:
        """Try one direct connection; return the error, or ``None`` if the
        server accepts connections."""
        try:
            psycopg.connect(self.url, connect_timeout=self.connect_timeout).close()
        except psycopg.Error as exc:
            return exc
        return None

    def _on_broken(self) -> None:
        """A connection died: drop the idle ones that died with it, and note
        whether the server itself is down."""
        if self._probe() is not None:
            self._down = True
            return
        try:
            self.pool.check()
        except Exception:  # pragma: no cover - best effort
            logger.debug("pool check failed", exc_info=True)

    def _check_down(self) -> None:
        """While the server is down, fail at once; when it answers again,
        start over with a fresh pool (the old one may be waiting in its
        reconnection back-off)."""
        error = self._probe()
        if error is not None:
            raise BackendError(error, f"PostgreSQL is unreachable: {error}")
        with self._open_lock:
            if not self._down:
                return
            old, self.pool = self.pool, self._new_pool()
            self.pool.open(wait=False)
            self._down = False
        logger.warning("PostgreSQL answers again: new connection pool")
        threading.Thread(target=old.close, kwargs={"timeout": 1.0}, daemon=True).start()

    @contextlib.contextmanager
    def _connection(self):
        self._open()
        if self._down:
            self._check_down()
        try:
            with self.pool.connection() as conn:
                yield conn
        except psycopg_pool.PoolTimeout as exc:
            error = self._probe()
            if error is not None:
                self._down = True
                raise BackendError(error, f"PostgreSQL is unreachable: {error}") from exc
            raise BackendError(exc, "no free PostgreSQL connection: the pool is exhausted") from exc

    # -- statements ------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is bound to the current context."""
        return self._bound.get() is not None

    @property
    def wrote(self) -> bool:
        """Whether the transaction bound to the current context has begun
        writing (its reads see its own uncommitted rows)."""
        tx = self._bound.get()
        return tx is not None and (tx.began or bool(tx.deferred))

    def mark(self, key, value=True, *, undone_by_rollback: bool = False) -> None:
        """Remember ``key`` (with ``value``) for the rest of the current
        transaction, if any: backends note there what it read and changed.

        :param undone_by_rollback: forget it as soon as any nested block
            rolls back (it notes what a write holds, such as a row lock,
            which rolling back a savepoint may release).
        """
        marks = self._marks.get()
        if marks is not None:
            marks[key] = value
            if undone_by_rollback:
                marks.setdefault(_UNDONE_BY_ROLLBACK, set()).add(key)

    def is_marked(self, key) -> bool:
        """Whether :meth:`mark` noted ``key`` in the current transaction."""
        marks = self._marks.get()
        return marks is not None and key in marks

    def forget(self, kind) -> None:
        """Drop what :meth:`mark` noted under keys starting with ``kind``."""
        marks = self._marks.get()
        if marks:
            for key in [k for k in marks if isinstance(k, tuple) and k[0] == kind]:
                del marks[key]

    def recall(self, key, default=None):
        """Return what :meth:`mark` noted for ``key`` in the current transaction."""
        marks = self._marks.get()
        return default if marks is None else marks.get(key, default)

    def run(self, fn, *, readonly: bool = False, atomic: bool = True):
        """Call ``fn(conn)`` and return its result.

        Inside a transaction, on its connection (first, what the
        transaction owes the server: see :meth:`_owes`). Outside, on a
        pooled connection: in a transaction of its own when ``fn`` writes
        with several statements (``atomic``), in autocommit otherwise.

        :param readonly: ``fn`` only reads.
        """
        tx = self._bound.get()
        if tx is not None:
            if self._owes(tx, readonly):
                self._catch_up(tx)
            elif not tx.began:
                # Nothing happened on this connection yet: a dead one (server
                # restart) can be swapped for a fresh one.
                return self._retrying(fn, tx)
            try:
                return fn(tx.conn)
            except psycopg.Error as exc:
                if _is_broken(tx.conn):
                    self._on_broken()
                raise BackendError(exc) from exc
        if not readonly and atomic:
            with self.transaction():
                return self.run(fn)
        return self._retrying(fn)

    def _retrying(self, fn, tx=None):
        """Run ``fn`` on a connection, once more on a fresh one if the first
        was found dead (only where nothing can have been written)."""
        for attempt in range(2):
            conn = tx.conn if tx is not None else None
            try:
                if tx is not None:
                    return fn(conn)
                with self._connection() as conn:
                    return fn(conn)
            except psycopg.Error as exc:
                if not _is_broken(conn):
                    raise BackendError(exc) from exc
                self._on_broken()
                if attempt == 1:
                    raise BackendError(exc) from exc
                if tx is not None:
                    self._swap(tx)
        raise AssertionError("unreachable")  # pragma: no cover

    def execute(self, query, params=None, *, fetch: str | None = "all", readonly: bool = False):
        """Run one statement; return all rows (``fetch="all"``), the first row
        (``"one"``) or the row count (``None``).

        Inside a transaction that owes the server a ``BEGIN``, deferred
        writes or a ``SAVEPOINT`` (:meth:`_owes`), they are sent first
        (see :meth:`_send`).

        :param readonly: the statement only reads (inside a transaction, it
            does not need the deferred ``BEGIN``).
        """
        tx = self._bound.get()
        if tx is not None and self._owes(tx, readonly):
            return _rows(self._catch_up(tx, query, params), fetch)

        def fn(conn):
            return _rows(conn.execute(query, params), fetch)

        return self.run(fn, readonly=readonly, atomic=False)

    # -- transactions ------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self):
        """Bind a connection to the current context for the enclosed block and
        run the block in one transaction (a savepoint when nested).

        ``BEGIN`` (and each pending ``SAVEPOINT``) is only sent before the
        first write: under PostgreSQL's default isolation (read committed)
        every statement reads its own snapshot anyway, so a block that only
        reads costs no extra round trip. An exception undoes the block's
        writes and propagates (driver errors as ``BackendError``). A
        transaction that PostgreSQL aborted (a statement of it failed and no
        savepoint undid it) is not reported as committed: its ``COMMIT``
        raises ``BackendError``.
        """
        tx = self._bound.get()
        if tx is not None:
            yield from self._nested(tx)
            return
        cm = self._connection()
        tx = _Transaction(cm.__enter__(), cm)
        token = self._bound.set(tx)
        marks_token = self._marks.set({})
        try:
            try:
                yield tx.conn
            except BaseException:
                if tx.began:
                    self._sql(tx, "ROLLBACK", quiet=True)
                raise
            if tx.deferred or tx.began:
                self._commit(tx)
        finally:
            self._marks.reset(marks_token)
            self._bound.reset(token)
            tx.cm.__exit__(None, None, None)

    def defer(self, statement: str, params) -> bool:
        """Queue a write to go with the current transaction's ``COMMIT``:
        both leave in one message (a pipeline), saving the write its own
        round trip. Any other statement of the transaction sends the queue
        first, so the order of writes is kept; a failing deferred write fails
        the commit (``BackendError``) and undoes the transaction.

        Returns ``False`` (nothing queued: run it now) outside a transaction
        or inside a nested block, whose savepoint could roll it back.
        """
        tx = self._bound.get()
        if tx is None or tx.savepoints:
            return False
        tx.deferred.append((statement, params))
        return True

    def _commit(self, tx) -> None:
        """``COMMIT`` (with the deferred ``BEGIN`` and writes, in one
        message); ``BackendError`` if nothing was committed."""
        try:
            if not tx.began:
                # BEGIN first, where a dead connection can still be swapped:
                # once COMMIT is sent, nothing can be sent again.
                self._catch_up(tx)
        except BackendError:
            if tx.began:
                self._sql(tx, "ROLLBACK", quiet=True)
            raise
        try:
            if tx.deferred:
                done = self._send(tx, "COMMIT")
            else:
                done = tx.conn.execute("COMMIT", prepare=False)
        except psycopg.Error as exc:
            if _is_broken(tx.conn):
                self._on_broken()
            elif tx.began:
                self._sql(tx, "ROLLBACK", quiet=True)
            raise BackendError(exc) from exc
        if done.statusmessage != "COMMIT":
            # PostgreSQL answers ROLLBACK, without an error, to the COMMIT of
            # a transaction that a failed statement aborted.
            raise BackendError(None, "PostgreSQL aborted the transaction (a statement of it failed): "
                                     "nothing was committed")

    @staticmethod
    def _owes(tx, readonly: bool) -> bool:
        """Whether ``tx`` must send something before a statement: its
        deferred writes (before any statement, in order), its ``BEGIN``
        (before a write) or the ``SAVEPOINT`` of a nested level (before a
        write, or before any statement once the transaction began: a failed
        read must not abort more than its level)."""
        if tx.deferred:
            return True
        pending = any(not savepoint[1] for savepoint in tx.savepoints)
        if readonly:
            return tx.began and pending
        return not tx.began or pending

    def _catch_up(self, tx, query=None, params=None):
        """Send what ``tx`` owes (see :meth:`_owes`), then ``query`` if any;
        return the cursor of ``query`` (results fetched).
        If the connection is found dead before the transaction wrote
        anything, all of it goes again on a fresh one."""
        for attempt in range(3):
            fresh = not tx.began
            deferred = tx.deferred
            try:
                return self._send(tx, query, params)
            except psycopg.Error as exc:
                broken = _is_broken(tx.conn)
                if broken:
                    self._on_broken()
                if not (broken and fresh) or attempt == 2:
                    raise BackendError(exc) from exc
                # Nothing was committed on the dead connection: start over.
                tx.deferred = deferred
                tx.began = False
                tx.unreleased = None
                for savepoint in tx.savepoints:
                    savepoint[1] = False
                self._swap(tx)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, tx, query=None, params=None):
        """Send the ``BEGIN`` and ``SAVEPOINT``s ``tx`` owes in one message
        (one simple query: on a local server, two round trips cost less than
        psycopg's pipeline mode), then ``query``; with deferred writes, all
        of it in one pipeline (see :meth:`_pipelined`). ``tx``'s state
        follows what the server did, even when a statement failed. Returns
        ``query``'s cursor."""
        if tx.deferred:
            return self._pipelined(tx, query, params)
        control = [] if tx.began else ["BEGIN"]
        pending = [savepoint for savepoint in tx.savepoints if not savepoint[1]]
        for savepoint in pending:
            name = savepoint[0]
            if tx.unreleased == name:
                control.append(f"RELEASE SAVEPOINT {name}")
            control.append(f"SAVEPOINT {name}")
        conn = tx.conn
        if control:
            try:
                conn.execute("; ".join(control), prepare=False)
            except psycopg.Error:
                # BEGIN went through if a transaction is open (or aborted);
                # a savepoint only counts once known to exist.
                if not _is_broken(conn) and conn.info.transaction_status != _IDLE:
                    tx.began = True
                raise
            tx.began = True
            if pending:
                tx.unreleased = None
                for savepoint in pending:
                    savepoint[1] = True
        return conn.execute(query, params) if query is not None else None

    def _pipelined(self, tx, query=None, params=None):
        """One pipeline: the ``BEGIN``, deferred writes and ``SAVEPOINT``s
        ``tx`` owes, then ``query``; ``tx``'s state follows what the server
        did, even when a statement failed. Returns ``query``'s cursor.

        Deferred writes may be prepared (see :func:`pipeline`); transaction
        control never is: it gains nothing."""
        steps = []
        if not tx.began:
            steps.append(("BEGIN", None, _began))
        steps.extend((statement, args, None) for statement, args in tx.deferred)
        tx.deferred = []
        for savepoint in tx.savepoints:
            if not savepoint[1]:
                name = savepoint[0]
                if tx.unreleased == name:
                    steps.append((f"RELEASE SAVEPOINT {name}", None, _released))
                steps.append((f"SAVEPOINT {name}", None, savepoint))
        conn = tx.conn
        sent = []
        try:
            with pipeline(conn):
                for statement, args, _ in steps:
                    sent.append(conn.execute(statement, args, prepare=_preparable(statement)))
                return conn.execute(query, params, prepare=_preparable(query)) if query is not None else None
        finally:
            for (_, _, effect), cursor in zip(steps, sent):
                if effect is None or cursor.pgresult is None or cursor.pgresult.status != _COMMAND_OK:
                    continue
                if effect is _began:
                    tx.began = True
                else:
                    tx.unreleased = None
                    if effect is not _released:
                        effect[1] = True

    def _nested(self, tx):
        """A nested block: a savepoint, sent before the block's first
        statement once the transaction began (before its first write
        otherwise, with the ``BEGIN``, in one message).

        When the block ends, its savepoint is not released at once (a round
        trip of its own): the ``RELEASE`` goes with the next ``SAVEPOINT`` of
        the same level, in the same message, or ``COMMIT``/``ROLLBACK`` and
        the enclosing level's own ``RELEASE``/``ROLLBACK TO`` make it
        needless. Meanwhile the enclosing level's statements run inside that
        ended savepoint, which nothing rolls back to any more: the same
        effects. A batch sub-request that sends nothing pays nothing.
        """
        savepoint = [f"cliquet_sp{len(tx.savepoints) + 1}", False]
        tx.savepoints.append(savepoint)
        try:
            yield tx.conn
        except BaseException:
            tx.savepoints.pop()
            marks = self._marks.get()
            for key in marks.pop(_UNDONE_BY_ROLLBACK, ()) if marks else ():
                marks.pop(key, None)
            if savepoint[1]:
                self._sql(tx, f"ROLLBACK TO SAVEPOINT {savepoint[0]}")
                tx.unreleased = savepoint[0]
            raise
        tx.savepoints.pop()
        if savepoint[1]:
            tx.unreleased = savepoint[0]

    def _swap(self, tx) -> None:
        """Give ``tx`` a fresh connection (before it wrote anything)."""
        tx.cm.__exit__(None, None, None)
        tx.cm = self._connection()
        tx.conn = tx.cm.__enter__()

    def _sql(self, tx, statement: str, quiet: bool = False) -> None:
        """Send a transaction-control statement; errors as ``BackendError``
        (or only logged with ``quiet``, when another error is on its way)."""
        try:
            tx.conn.execute(statement, prepare=False)
        except psycopg.Error as exc:
            if _is_broken(tx.conn):
                self._on_broken()
            if quiet:
                logger.debug("%s failed", statement, exc_info=True)
                return
            raise BackendError(exc) from exc

    def heartbeat(self) -> bool:
        """Return whether the server answers a trivial query."""
        try:
            self.execute("SELECT 1", fetch="one", readonly=True)
            return True
        except Exception:
            return False


#: connection parameters that do not change which database a URL reaches.
_NOT_IDENTITY = frozenset({"connect_timeout", "application_name", "fallback_application_name",
                           "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
                           "tcp_user_timeout", "target_session_attrs"})


def database_key(url: str) -> tuple:
    """Return what identifies the database ``url`` reaches: its parsed
    connection parameters (host, port, database name, user, password,
    options such as ``search_path``…), whatever the URL's spelling
    (``postgres://`` or ``postgresql://``, parameter order, a key/value DSN)
    and without the parameters that change nothing about the data
    (``connect_timeout``, ``application_name``…). Two URLs with the same key
    are one database: their backends share one client."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return ("unparsed", url)
    params.setdefault("port", "5432")
    return tuple(sorted((k, str(v)) for k, v in params.items() if k not in _NOT_IDENTITY))


def get_client(url: str, pool_size: int = 10, pool_timeout: float = 30.0) -> PostgreSQLClient:
    """Return the shared :class:`PostgreSQLClient` of the database ``url``
    reaches (see :func:`database_key`), creating it on first use.

    Every backend on one database gets the same client, hence one pool and
    one transaction per request, whatever pool settings each asked for: the
    pool grows to the largest ``pool_size`` asked and waits the longest
    ``pool_timeout`` asked.
    """
    key = database_key(url)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = PostgreSQLClient(url, pool_size, pool_timeout)
        else:
            client.widen(pool_size, pool_timeout)
        return client


def close_all() -> None:
    """Close every shared pool (for tests and process shutdown)."""
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
    for client in clients:
        client.close()
