"""Cache on PostgreSQL (an unlogged table), on psycopg 3 and psycopg_pool.

Enable with::

    cliquet.cache_backend = cliquet.cache.postgresql
    cliquet.cache_url = postgresql://user:password@host:5432/dbname

On the same database as the storage (whatever the pool settings), both share
one client: the cache writes a request makes are part of its transaction,
committed or undone with its records.
``cliquet migrate`` creates the table. Expiry times come from the server's
clock, so every app server agrees on them; expired rows are never returned
and are swept from time to time by writers.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from cliquet.cache import CacheBase
from cliquet.storage.postgresql_client import get_client
from cliquet.storage.postgresql_schema import CACHE_MIGRATIONS, migrate, pending_phrase

_NOW = "extract(epoch from clock_timestamp())::double precision"
_ALIVE = f"(expires_at IS NULL OR expires_at > {_NOW})"

_SET = f"""
INSERT INTO cliquet_cache (key, value, expires_at)
VALUES (%s, %s, {_NOW} + %s::double precision)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
"""
_GET = f"SELECT value FROM cliquet_cache WHERE key = %s AND {_ALIVE}"
_TTL = (
    f"SELECT CASE WHEN expires_at IS NULL THEN -1 ELSE greatest(expires_at - {_NOW}, 0) END "
    f"FROM cliquet_cache WHERE key = %s AND {_ALIVE}"
)
_EXPIRE = f"UPDATE cliquet_cache SET expires_at = {_NOW} + %s WHERE key = %s AND {_ALIVE} RETURNING 1"
_DELETE_ALIVE = f"DELETE FROM cliquet_cache WHERE key = %s AND {_ALIVE} RETURNING 1"
_DELETE = f"DELETE FROM cliquet_cache WHERE key = %s RETURNING value, {_ALIVE}"
_SWEEP = f"DELETE FROM cliquet_cache WHERE expires_at <= {_NOW}"

#: one write in this many also removes the expired rows
SWEEP_EVERY = 1000


def _like_prefix(prefix: str) -> str:
    """Return a ``LIKE`` pattern matching the keys that start with ``prefix``."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class PostgreSQLCache(CacheBase):
    """A :class:`~cliquet.cache.CacheBase` in the ``cliquet_cache`` table.

    :param client: a :class:`~cliquet.storage.postgresql_client.PostgreSQLClient`.
    :param prefix: prepended to every key.
    """

    def __init__(self, client, prefix: str = "", **kwargs):
        super().__init__(prefix=prefix, **kwargs)
        self.client = client
        self._writes = itertools.count(1)

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Create or upgrade the cache table (idempotent)."""
        migrate(self.client, "cache", CACHE_MIGRATIONS, dry_run=dry_run)

    def schema_pending(self) -> str | None:
        """Return ``"missing"`` / ``"at version N of M"`` while ``cliquet
        migrate`` has work to do on the cache tables, else ``None``."""
        return pending_phrase(self.client, "cache", CACHE_MIGRATIONS)

    def flush(self) -> None:
        """Remove every key of this cache's prefix."""
        if self.prefix:
            self.client.execute("DELETE FROM cliquet_cache WHERE key LIKE %s", (_like_prefix(self.prefix),),
                                fetch=None)
        else:
            self.client.execute("DELETE FROM cliquet_cache", fetch=None)

    def heartbeat(self) -> bool:
        """Return whether the server answers."""
        return self.client.heartbeat()

    def _maybe_sweep(self) -> None:
        if next(self._writes) % SWEEP_EVERY == 0:
            self.client.execute(_SWEEP, fetch=None)

    def ttl(self, key: str) -> float:
        """Seconds left; ``-1`` without expiry; ``-2`` when missing or expired."""
        row = self.client.execute(_TTL, (self.prefix + key,), fetch="one", readonly=True)
        if row is None:
            return -2
        return float(row[0]) if row[0] != -1 else -1

    def expire(self, key: str, ttl: float) -> bool:
        """Make ``key`` expire in ``ttl`` seconds (``<= 0``: now)."""
        if ttl <= 0:
            return self.client.execute(_DELETE_ALIVE, (self.prefix + key,), fetch="one") is not None
        return self.client.execute(_EXPIRE, (float(ttl), self.prefix + key), fetch="one") is not None

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` (any JSON value) for ``ttl`` seconds (forever if ``None``)."""
        text = orjson.dumps(value).decode()
        if ttl is not None and ttl <= 0:
            self.client.execute("DELETE FROM cliquet_cache WHERE key = %s", (self.prefix + key,), fetch=None)
            return
        self.client.execute(_SET, (self.prefix + key, text, None if ttl is None else float(ttl)), fetch=None)
        self._maybe_sweep()

    def get(self, key: str) -> Any:
        """Return the value, or ``None`` if missing or expired."""
        row = self.client.execute(_GET, (self.prefix + key,), fetch="one", readonly=True)
        return orjson.loads(row[0]) if row is not None else None

    def delete(self, key: str) -> Any:
        """Remove ``key``; return its value (``None`` if missing or expired)."""
        row = self.client.execute(_DELETE, (self.prefix + key,), fetch="one")
        if row is None or not row[1]:
            return None
        return orjson.loads(row[0])


def load_from_config(config) -> PostgreSQLCache:
    """Return a :class:`PostgreSQLCache` for ``cliquet.cache_url``, with
    ``cliquet.cache_prefix``, ``cliquet.cache_pool_size`` and
    ``cliquet.cache_pool_timeout``.

    Backends on one database share one client and pool, as large and patient
    as the largest of their ``*_pool_size`` and ``*_pool_timeout``: see
    :func:`~cliquet.storage.postgresql_client.get_client`.
    """
    settings = config.get_settings()
    url = settings.get("cliquet.cache_url")
    if not url:
        from pyramid.exceptions import ConfigurationError

        raise ConfigurationError("cliquet.cache_url is required by cliquet.cache.postgresql")
    client = get_client(
        url,
        pool_size=settings.get("cliquet.cache_pool_size") or 10,
        pool_timeout=settings.get("cliquet.cache_pool_timeout") or 30.0,
    )
    return PostgreSQLCache(client, prefix=settings.get("cliquet.cache_prefix") or "")
