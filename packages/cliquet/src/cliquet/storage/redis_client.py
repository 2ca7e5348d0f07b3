"""A pooled Redis client shared by the Redis storage, cache and permission
backends (redis-py, with hiredis parsing when installed).

One :class:`redis.Redis` (and its blocking connection pool) exists per
(URL, pool size, timeout). A ``redis+cluster://host:port`` URL (any one node
of a Redis Cluster; the others are discovered) gives a
:class:`redis.cluster.RedisCluster` instead, which follows the cluster's
slot map, ``MOVED``/``ASK`` redirections and failovers by itself. Every :mod:`redis` error becomes a
:class:`~cliquet.storage.exceptions.BackendError` through :func:`wrap_errors`.
A connection that died with a server restart is retried once on a fresh
connection; while the server is down, calls fail at once (connection
refused) instead of waiting.
"""

from __future__ import annotations

import contextlib
import threading

import re
import urllib.parse

import redis
import redis.cluster
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from cliquet.storage.exceptions import BackendError

_CLIENTS: dict[tuple, redis.Redis] = {}
_LOCK = threading.Lock()


#: the URL scheme of a Redis Cluster (``redis+cluster://host:port``, any one node).
CLUSTER_SCHEME = "redis+cluster"
#: the hash tag given to a key prefix without one, on a cluster (see :func:`tagged_prefix`).
DEFAULT_HASH_TAG = "{cliquet}"
#: how long a command retries while a cluster switches a master (seconds, about).
CLUSTER_SWITCH_PATIENCE = 2.0


def is_cluster(client) -> bool:
    """Whether ``client`` talks to a Redis Cluster."""
    return isinstance(client, redis.cluster.RedisCluster)


def _cluster_client(url: str, pool_size: int, pool_timeout: float):
    parts = urllib.parse.urlsplit(url)
    if parts.path not in ("", "/", "/0"):
        raise ValueError(f"a Redis Cluster has only database 0: {url!r}")
    return redis.cluster.RedisCluster(
        host=parts.hostname or "127.0.0.1", port=parts.port or 6379,
        username=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password) if parts.password else None,
        max_connections=max(1, pool_size),
        socket_connect_timeout=min(pool_timeout, 1.0),
        socket_timeout=max(min(pool_timeout, 5.0), 1.0),
        # A master that died: redis-py refreshes the slot map and tries
        # again, with a backoff, for about CLUSTER_SWITCH_PATIENCE seconds,
        # then the error surfaces (503 + Retry-After at the HTTP layer).
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 6),
    )


def get_client(url: str, pool_size: int = 10, pool_timeout: float = 30.0):
    """Return the shared client for ``url``: ``redis://host:port/db``, or
    ``redis+cluster://host:port`` for a Redis Cluster (a
    :class:`redis.cluster.RedisCluster`)."""
    key = (url, pool_size, pool_timeout)
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None and url.startswith(CLUSTER_SCHEME + "://"):
            client = _CLIENTS[key] = _cluster_client(url, pool_size, pool_timeout)
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


def close_client(client) -> None:
    """Disconnect ``client`` and forget it (for tests)."""
    with _LOCK:
        for key, value in list(_CLIENTS.items()):
            if value is client:
                del _CLIENTS[key]
    if is_cluster(client):
        client.close()
    else:
        client.connection_pool.disconnect()


_TAG = re.compile(r"\{[^}]+\}")


def tagged_prefix(client, prefix: str) -> str:
    """The key prefix a backend uses on ``client``.

    On a Redis Cluster, a script may only touch keys of one hash slot, and a
    request's writes (records, timestamps, ACEs) are applied by one script:
    so every key of a storage or permission backend carries the same hash
    tag. A prefix that has one (``{myservice}:storage:``) is kept; any other
    is preceded by :data:`DEFAULT_HASH_TAG`, which the storage and the
    permission backend of one service then share. Elsewhere the prefix is
    unchanged."""
    if not is_cluster(client) or _TAG.search(prefix):
        return prefix
    return DEFAULT_HASH_TAG + prefix


def key_slot(client, key: str) -> int | None:
    """The cluster hash slot of ``key`` (``None`` off a cluster)."""
    return client.keyslot(key) if is_cluster(client) else None


@contextlib.contextmanager
def wrap_errors():
    """Turn :mod:`redis` errors into :class:`BackendError`."""
    try:
        yield
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as exc:
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


def same_database(a, b) -> bool:
    """Return whether two clients talk to the same server and database (the
    same cluster: a node in common)."""
    if a is b:
        return True
    if is_cluster(a) or is_cluster(b):
        if not (is_cluster(a) and is_cluster(b)):
            return False
        return bool({n.name for n in a.get_nodes()} & {n.name for n in b.get_nodes()})
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
