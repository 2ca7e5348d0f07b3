"""A pooled Redis client shared by the Redis storage, cache and permission
backends (redis-py, with hiredis parsing when installed).

One :class:`redis.Redis` (and its blocking connection pool) exists per
(URL, pool size, timeout). Every :mod:`redis` error becomes a
:class:`~cliquet.storage.exceptions.BackendError` through :func:`wrap_errors`.
A connection that died with a server restart is retried once on a fresh
connection; while the server is down, calls fail at once (connection
refused) instead of waiting.
"""

from __future__ import annotations

import contextlib
import threading

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cliquet.storage.exceptions import BackendError

_CLIENTS: dict[tuple, redis.Redis] = {}
_LOCK = threading.Lock()


def get_client(url: str, pool_size: int = 10, pool_timeout: float = 30.0) -> redis.Redis:
    """Return the shared client for ``url`` (``redis://host:port/db``)."""
    key = (url, pool_size, pool_timeout)
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            pool = redis.BlockingConnectionPool.from_url(
                url,
                max_connections=max(1, pool_size),
                timeout=pool_timeout,
                socket_connect_timeout=min(pool_timeout, 5.0),
                socket_timeout=max(pool_timeout, 5.0),
                health_check_interval=0,
            )
            client = redis.Redis(
                connection_pool=pool,
                retry=Retry(NoBackoff(), 1),
                retry_on_error=[redis.exceptions.ConnectionError],
            )
            _CLIENTS[key] = client
        return client


def close_client(client: redis.Redis) -> None:
    """Disconnect ``client`` and forget it (for tests)."""
    with _LOCK:
        for key, value in list(_CLIENTS.items()):
            if value is client:
                del _CLIENTS[key]
    client.connection_pool.disconnect()


@contextlib.contextmanager
def wrap_errors():
    """Turn :mod:`redis` errors into :class:`BackendError`."""
    try:
        yield
    except redis.exceptions.RedisError as exc:
        raise BackendError(exc) from exc


def heartbeat(client: redis.Redis) -> bool:
    """Return whether the server answers ``PING``."""
    try:
        return bool(client.ping())
    except Exception:
        return False


def glob_escape(text: str) -> str:
    """Escape ``text`` for a ``SCAN MATCH`` pattern."""
    out = []
    for char in text:
        if char in "*?[]\\":
            out.append("\\")
        out.append(char)
    return "".join(out)


def same_database(a: redis.Redis, b: redis.Redis) -> bool:
    """Return whether two clients talk to the same server and database."""
    if a is b:
        return True
    wanted = ("host", "port", "path", "db", "username")
    kwargs_a, kwargs_b = a.connection_pool.connection_kwargs, b.connection_pool.connection_kwargs
    return all(kwargs_a.get(k) == kwargs_b.get(k) for k in wanted) \
        and a.connection_pool.connection_class is b.connection_pool.connection_class


def delete_prefix(client: redis.Redis, prefix: str, keep: tuple[str, ...] = ()) -> int:
    """Delete every key starting with ``prefix`` (``keep`` excepted); return how many.

    :raises ValueError: ``prefix`` is empty (that would be every key of the
        database, other backends' included).
    """
    if not prefix:
        raise ValueError("refusing to delete every key of the database: the prefix is empty")
    pattern = glob_escape(prefix) + "*"
    keep_bytes = {k.encode() for k in keep}
    removed = 0
    batch = []
    for key in client.scan_iter(match=pattern, count=1000):
        if key in keep_bytes:
            continue
        batch.append(key)
        if len(batch) >= 500:
            removed += client.unlink(*batch)
            batch = []
    if batch:
        removed += client.unlink(*batch)
    return removed
