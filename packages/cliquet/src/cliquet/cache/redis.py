"""Cache on Redis, on redis-py (hiredis when installed).

Enable with::

    cliquet.cache_backend = cliquet.cache.redis
    cliquet.cache_url = redis://127.0.0.1:6379/0
    cliquet.cache_prefix = myservice:cache:   # default: cliquet:cache:

Values are stored as JSON text under ``{prefix}{key}`` with Redis's own
expiry (millisecond precision), so every app server sees the same keys and
an expired key is never returned. :meth:`RedisCache.flush` removes only the
keys of the prefix (with ``SCAN``, never ``FLUSHDB``). The prefix is never
empty — an empty ``cliquet.cache_prefix`` means :data:`DEFAULT_PREFIX` —
so that a flush never reaches the storage or permission keys of the same
database.

On a Redis Cluster (``cliquet.cache_url = redis+cluster://host:port``) the
keys spread over the masters by their own hash slot: no operation of the
cache touches two keys at once, and a flush scans every master.
"""

from __future__ import annotations

from typing import Any

import orjson

from cliquet.cache import CacheBase
from cliquet.storage.redis_client import delete_prefix, get_client, heartbeat, wrap_errors

#: the prefix of the Redis cache when ``cliquet.cache_prefix`` is empty.
DEFAULT_PREFIX = "cliquet:cache:"


class RedisCache(CacheBase):
    """A :class:`~cliquet.cache.CacheBase` on Redis.

    :param client: a :class:`redis.Redis`.
    :param prefix: prepended to every key (empty: :data:`DEFAULT_PREFIX`).
    """

    def __init__(self, client, prefix: str = DEFAULT_PREFIX, **kwargs):
        super().__init__(prefix=prefix or DEFAULT_PREFIX, **kwargs)
        self.client = client

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Nothing to create on Redis; checks that the server answers."""
        with wrap_errors():
            self.client.ping()

    def flush(self) -> None:
        """Remove every key of this cache's prefix."""
        with wrap_errors():
            delete_prefix(self.client, self.prefix)

    def heartbeat(self) -> bool:
        """Return whether the server answers."""
        return heartbeat(self.client)

    def ttl(self, key: str) -> float:
        """Seconds left; ``-1`` without expiry; ``-2`` when missing or expired."""
        with wrap_errors():
            left = self.client.pttl(self.prefix + key)
        if left < 0:
            return -1 if left == -1 else -2
        return left / 1000.0

    def expire(self, key: str, ttl: float) -> bool:
        """Make ``key`` expire in ``ttl`` seconds (``<= 0``: now)."""
        with wrap_errors():
            if ttl <= 0:
                return bool(self.client.delete(self.prefix + key))
            return bool(self.client.pexpire(self.prefix + key, max(1, int(ttl * 1000))))

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` (any JSON value) for ``ttl`` seconds (forever if ``None``)."""
        payload = orjson.dumps(value)
        with wrap_errors():
            if ttl is None:
                self.client.set(self.prefix + key, payload)
            elif ttl <= 0:
                self.client.delete(self.prefix + key)
            else:
                self.client.set(self.prefix + key, payload, px=max(1, int(ttl * 1000)))

    def get(self, key: str) -> Any:
        """Return the value, or ``None`` if missing or expired."""
        with wrap_errors():
            payload = self.client.get(self.prefix + key)
        return orjson.loads(payload) if payload is not None else None

    def delete(self, key: str) -> Any:
        """Remove ``key``; return its value (``None`` if it was missing)."""
        with wrap_errors():
            payload = self.client.getdel(self.prefix + key)
        return orjson.loads(payload) if payload is not None else None


def load_from_config(config) -> RedisCache:
    """Return a :class:`RedisCache` for ``cliquet.cache_url`` with
    ``cliquet.cache_prefix`` (:data:`DEFAULT_PREFIX` when empty; pool from
    ``cliquet.cache_pool_size`` and ``cliquet.cache_pool_timeout``)."""
    settings = config.get_settings()
    url = settings.get("cliquet.cache_url") or "redis://127.0.0.1:6379/0"
    client = get_client(url, settings.get("cliquet.cache_pool_size") or 10,
                        settings.get("cliquet.cache_pool_timeout") or 30.0)
    return RedisCache(client, prefix=settings.get("cliquet.cache_prefix") or DEFAULT_PREFIX)
