"""Cache in the memory of the process.

``cliquet.cache_backend = cliquet.cache.memory``

Values are stored as JSON text (so what comes back is an equal copy, and a
value that is not JSON-serialisable fails at :meth:`Cache.set` with a
``TypeError``). Expiry uses a monotonic clock; expired keys are never
returned and are swept from time to time. Several :class:`Cache` instances
may share one :class:`MemoryServer` (like several services on one Redis):
each sees only the keys of its prefix. Thread-safe: one lock per server.

Unlike the memory storage and permission backends, the cache is not part
of a request's transaction: its writes apply at once. No request of the
core writes it (see ``docs/consistency.rst``); a request that did would
have to bring those writes into the transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson

from cliquet.cache import CacheBase

logger = logging.getLogger(__name__)


class MemoryServer:
    """The shared state of memory caches: ``{full key: (expires_at, JSON bytes)}``."""

    def __init__(self):
        self.lock = threading.Lock()
        self.data: dict[str, tuple[float | None, bytes]] = {}
        self.sweep_at = 1024


class Cache(CacheBase):
    """A :class:`~cliquet.cache.CacheBase` in a dict.

    :param prefix: prepended to every key.
    :param server: the :class:`MemoryServer` to use (a new one by default).
    """

    def __init__(self, prefix: str = "", server: MemoryServer | None = None, **kwargs):
        super().__init__(prefix=prefix, **kwargs)
        self.server = server if server is not None else MemoryServer()
        self._lock = self.server.lock

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Nothing to create in memory."""
        with self._lock:  # fails like a server would when the backend is down
            pass
        logger.info("memory cache: no schema to initialize%s", " (dry run)" if dry_run else "")

    def flush(self) -> None:
        """Remove the keys of this prefix."""
        with self._lock:
            data = self.server.data
            for key in [k for k in data if k.startswith(self.prefix)]:
                del data[key]

    def heartbeat(self) -> bool:
        """Return ``True`` when the cache lock can be taken."""
        try:
            with self._lock:
                return True
        except Exception:
            return False

    def _live(self, key: str, now: float):
        """Return the live ``(expires_at, blob)`` of a full key, dropping it if expired."""
        item = self.server.data.get(key)
        if item is not None and item[0] is not None and item[0] <= now:
            del self.server.data[key]
            return None
        return item

    def _sweep(self, now: float) -> None:
        data = self.server.data
        for key in [k for k, (expires, _) in data.items() if expires is not None and expires <= now]:
            del data[key]
        self.server.sweep_at = max(1024, 2 * len(data))

    def ttl(self, key: str) -> float:
        """Seconds left; ``-1`` without expiry; ``-2`` missing or expired."""
        now = time.monotonic()
        with self._lock:
            item = self._live(self.prefix + key, now)
        if item is None:
            return -2
        if item[0] is None:
            return -1
        return max(0.0, item[0] - now)

    def expire(self, key: str, ttl: float) -> bool:
        """Set the expiry of an existing key (``ttl <= 0`` removes it)."""
        now = time.monotonic()
        full = self.prefix + key
        with self._lock:
            item = self._live(full, now)
            if item is None:
                return False
            if ttl <= 0:
                del self.server.data[full]
            else:
                self.server.data[full] = (now + ttl, item[1])
            return True

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store a JSON copy of ``value`` (``ttl <= 0`` stores nothing and removes the key)."""
        blob = orjson.dumps(value)
        now = time.monotonic()
        full = self.prefix + key
        with self._lock:
            data = self.server.data
            if ttl is not None and ttl <= 0:
                data.pop(full, None)
                return
            data[full] = (None if ttl is None else now + ttl, blob)
            if len(data) >= self.server.sweep_at:
                self._sweep(now)

    def get(self, key: str) -> Any:
        """Return a copy of the value, ``None`` if missing or expired."""
        with self._lock:
            item = self._live(self.prefix + key, time.monotonic())
        return None if item is None else orjson.loads(item[1])

    def delete(self, key: str) -> Any:
        """Remove the key; return its value (``None`` if missing or expired)."""
        now = time.monotonic()
        with self._lock:
            item = self._live(self.prefix + key, now)
            if item is not None:
                del self.server.data[self.prefix + key]
        return None if item is None else orjson.loads(item[1])


def load_from_config(config) -> Cache:
    """Return a :class:`Cache` with ``cliquet.cache_prefix``, on a new :class:`MemoryServer`."""
    settings = config.get_settings()
    return Cache(prefix=settings.get("cliquet.cache_prefix") or "")
