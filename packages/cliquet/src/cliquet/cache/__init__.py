"""Cache: a key-value store with expiry, for whatever a service wants to keep
for a while (tokens, computed results, rate-limit counters).

A cache backend is a module with ``load_from_config(config)`` returning an
instance of :class:`CacheBase`, picked with ``cliquet.cache_backend``.

Rules every backend follows (checked by :mod:`cliquet.testing.cache`):

* Values are any JSON-serialisable value (``dict``, ``list``, ``str``,
  numbers, booleans, ``None``) and come back equal to what was set.
* Keys are strings; the backend prepends ``cliquet.cache_prefix`` itself, so
  two services sharing one server don't see each other's keys, and
  :meth:`CacheBase.flush` only removes keys of its own prefix.
* An expired key is never returned, whether or not the server has removed it.
"""

from __future__ import annotations

from typing import Any


class CacheBase:
    """The cache API. Every method must be implemented by a backend.

    :param prefix: prepended to every key (``cliquet.cache_prefix``).
    """

    def __init__(self, prefix: str = "", **kwargs):
        self.prefix = prefix

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Create whatever the backend needs (tables, buckets). Idempotent."""
        raise NotImplementedError

    def schema_pending(self) -> str | None:
        """Return why this backend's schema is not ready, or ``None``.

        A short phrase (``"missing"``, ``"at version 2 of 3"``) when the
        schema :meth:`initialize_schema` creates is absent or older than this
        code; ``None`` when it is up to date or when the backend has no
        schema (the default: memory and Redis have none). Never writes.
        Checked at start-up and by ``/__heartbeat__`` (:mod:`cliquet.schema`).

        :raises BackendError: the server cannot be asked, or holds a newer
            schema than this code knows.
        """
        return None

    def flush(self) -> None:
        """Remove every key of this cache's prefix."""
        raise NotImplementedError

    def heartbeat(self) -> bool:
        """Return ``True`` when the backend answers; never raises."""
        raise NotImplementedError

    def ttl(self, key: str) -> float:
        """Return the seconds left before ``key`` expires.

        :returns: a number ``>= 0``; ``-1`` when the key exists without
            expiry; ``-2`` when the key does not exist (or has expired).
        """
        raise NotImplementedError

    def expire(self, key: str, ttl: float) -> bool:
        """Make ``key`` expire in ``ttl`` seconds.

        :returns: ``True`` if the key existed, ``False`` otherwise.
        """
        raise NotImplementedError

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, for ``ttl`` seconds (forever if ``None``).

        Setting a key again replaces its value and its expiry.
        """
        raise NotImplementedError

    def get(self, key: str) -> Any:
        """Return the value of ``key``, or ``None`` if missing or expired."""
        raise NotImplementedError

    def delete(self, key: str) -> Any:
        """Remove ``key`` and return its value (``None`` if it was missing)."""
        raise NotImplementedError
