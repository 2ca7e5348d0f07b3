"""A PostgreSQL connection pool shared by the storage, cache and permission
backends, with transactions bound to the current context.

One :class:`PostgreSQLClient` exists per (URL, pool size): backends configured
with the same URL share its pool *and* its current transaction, so a request
that writes records and permissions commits (or rolls back) both at once.

Connections are in autocommit mode: a lone read is one round trip, with no
``BEGIN``/``COMMIT``. :meth:`PostgreSQLClient.transaction` binds one
connection to the current context (a :class:`contextvars.ContextVar`, so
threads and asyncio tasks each have their own); nested calls become
savepoints. Every :mod:`psycopg` error surfaces as
:class:`~cliquet.storage.exceptions.BackendError`.

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

    def mark(self, key, value=True) -> None:
        """Remember ``key`` (with ``value``) for the rest of the current
        transaction, if any: backends note there what it read and changed."""
        marks = self._marks.get()
        if marks is not None:
            marks[key] = value

    def is_marked(self, key) -> bool:
        """Whether :meth:`mark` noted ``key`` in the current transaction."""
        marks = self._marks.get()
        return marks is not None and key in marks

    def recall(self, key, default=None):
        """Return what :meth:`mark` noted for ``key`` in the current transaction."""
        marks = self._marks.get()
        return default if marks is None else marks.get(key, default)

    def run(self, fn, *, write: bool = False):
        """Call ``fn(conn)`` on the current transaction's connection, or on a
        pooled one, and return its result.

        :param write: ``fn`` issues several statements that must commit
            together: outside a transaction, run them in one.
        """
        conn = self._bound.get()
        if conn is not None:
            try:
                return fn(conn)
            except psycopg.Error as exc:
                if _is_broken(conn):
                    self._on_broken()
                raise BackendError(exc) from exc
        if write:
            with self.transaction() as conn:
                return fn(conn)
        for attempt in range(2):
            conn = None
            try:
                with self._connection() as conn:
                    return fn(conn)
            except psycopg.Error as exc:
                if _is_broken(conn):
                    self._on_broken()
                    if attempt == 0:
                        continue
                raise BackendError(exc) from exc

    def execute(self, query, params=None, *, fetch: str | None = "all", prepare: bool | None = None):
        """Run one statement; return all rows (``fetch="all"``), the first row
        (``"one"``) or nothing (``None``)."""

        def fn(conn):
            cur = conn.execute(query, params, prepare=prepare)
            if fetch == "all":
                return cur.fetchall()
            if fetch == "one":
                return cur.fetchone()
            return cur.rowcount

        return self.run(fn)

    # -- transactions ------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self):
        """Bind a connection to the current context for the enclosed block and
        run the block in one transaction (a savepoint when nested).

        Yields the connection. An exception undoes the block's writes and
        propagates (driver errors as ``BackendError``).
        """
        conn = self._bound.get()
        if conn is not None:
            try:
                tx = conn.transaction()
                tx.__enter__()
            except psycopg.Error as exc:
                raise BackendError(exc) from exc
            try:
                yield conn
            except BaseException as exc:
                self._exit(tx, exc)
                raise
            else:
                self._exit(tx, None)
            return

        cm, conn, tx = self._begin()
        token = self._bound.set(conn)
        marks_token = self._marks.set({})
        try:
            try:
                yield conn
            except BaseException as exc:
                self._exit(tx, exc)
                raise
            else:
                self._exit(tx, None)
        finally:
            self._marks.reset(marks_token)
            self._bound.reset(token)
            cm.__exit__(None, None, None)

    def _begin(self):
        """Take a connection and start a transaction on it, retrying on a fresh
        connection when a pooled one died with a server restart."""
        for attempt in range(3):
            cm = self._connection()
            conn = cm.__enter__()
            try:
                tx = conn.transaction()
                tx.__enter__()
                return cm, conn, tx
            except psycopg.Error as exc:
                broken = _is_broken(conn)
                cm.__exit__(None, None, None)
                if broken:
                    self._on_broken()
                if not broken or attempt == 2:
                    raise BackendError(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _exit(self, tx, exc) -> None:
        """Leave a psycopg transaction block, wrapping driver errors."""
        try:
            if exc is None:
                tx.__exit__(None, None, None)
            else:
                tx.__exit__(type(exc), exc, exc.__traceback__)
        except psycopg.Error as err:
            if _is_broken(tx.connection):
                self._on_broken()
            if exc is None:
                raise BackendError(err) from err
            # The block failed and so did the rollback: report the first error.
            logger.debug("rollback failed", exc_info=True)
            if isinstance(exc, psycopg.Error):
                raise BackendError(exc) from exc

    def heartbeat(self) -> bool:
        """Return whether the server answers a trivial query."""
        try:
            self.execute("SELECT 1", fetch="one")
            return True
        except Exception:
            return False


def get_client(url: str, pool_size: int = 10, pool_timeout: float = 30.0) -> PostgreSQLClient:
    """Return the shared :class:`PostgreSQLClient` for this URL and pool
    settings, creating it on first use."""
    key = (url, pool_size, pool_timeout)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = PostgreSQLClient(url, pool_size, pool_timeout)
        return client


def close_all() -> None:
    """Close every shared pool (for tests and process shutdown)."""
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
    for client in clients:
        client.close()
