"""A Cliquet cache backend on Riak KV, over Riak's HTTP API.

Select it with::

    cliquet.cache_backend = cliquet_riak.cache
    cliquet.cache_url = riak://riak1:8098,riak2:8098/default/cliquet_cache

How the cache maps onto Riak:

* One Riak object per key, under ``cliquet.cache_prefix`` + key, in the
  bucket named by the URL. The value is stored as JSON.
* Riak has no per-key expiry: the expiry (milliseconds since the epoch) is
  kept in the object's metadata (``X-Riak-Meta-Cliquet-Expires``) and in the
  secondary index ``cliquet_expires_int``. Reads never return an expired
  value; expired objects are deleted by a range query on that index, every
  ``cliquet.riak_purge_interval`` (started by a write or read once the
  interval has passed) and by :meth:`RiakCache.purge_expired`.
* Siblings (buckets with ``allow_mult``, the default of typed buckets) are
  resolved by keeping the newest write (``X-Riak-Meta-Cliquet-Written``,
  nanoseconds of the writer's clock) and writing it back with the merged
  vector clock.
* :meth:`RiakCache.flush` lists this prefix's keys with a range query on the
  ``$key`` index, so it never touches another prefix.

Secondary indexes need Riak's LevelDB or memory storage backend.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
import urllib.parse
from typing import Any

from cliquet.cache import CacheBase
from cliquet.settings import Setting, as_duration, declare_settings
from cliquet.storage.exceptions import BackendError
from pyramid.exceptions import ConfigurationError

from cliquet_riak.client import RiakHTTPClient, RiakLocation, parse_siblings

logger = logging.getLogger(__name__)

EXPIRES_INDEX = "cliquet_expires_int"
META_EXPIRES = "X-Riak-Meta-Cliquet-Expires"
META_WRITTEN = "X-Riak-Meta-Cliquet-Written"
#: Greater than any UTF-8 encoded character: ends a ``$key`` range on a prefix.
KEY_RANGE_END = "\U0010ffff"
PAGE_SIZE = 1000

#: Settings of this backend (``cliquet.<name>``, or the ``CLIQUET_<NAME>`` variable).
RIAK_SETTINGS = {
    "riak_connect_timeout": Setting(2.0, as_duration, doc="Seconds to open a connection to a Riak node."),
    "riak_read_timeout": Setting(5.0, as_duration, doc="Seconds to wait for a Riak node's answer."),
    "riak_node_down_seconds": Setting(5.0, as_duration,
                                      doc="How long a Riak node that failed is only tried last."),
    "riak_purge_interval": Setting(60.0, as_duration,
                                   doc="Seconds between two purges of expired cache keys (0: never)."),
}

DEFAULT_URL = "riak://127.0.0.1:8098/default/cliquet_cache"


class _Object:
    """One resolved Riak object: its decoded value, expiry and vector clock."""

    __slots__ = ("body", "expires_ms", "vclock", "headers")

    def __init__(self, body: bytes, headers, vclock: str | None):
        self.body = body
        self.headers = headers
        self.vclock = vclock
        raw = headers.get(META_EXPIRES)
        try:
            self.expires_ms = int(raw) if raw not in (None, "") else None
        except ValueError as exc:
            raise BackendError(exc, f"invalid {META_EXPIRES} in Riak: {raw!r}") from exc

    def expired(self, now_ms: int) -> bool:
        return self.expires_ms is not None and self.expires_ms <= now_ms

    @property
    def value(self) -> Any:
        return json.loads(self.body)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sibling_rank(sibling) -> tuple:
    headers, body = sibling
    written = headers.get(META_WRITTEN)
    try:
        written_ns = int(written)
    except (TypeError, ValueError):
        written_ns = 0
    modified = headers.get("Last-Modified")
    modified_s = email.utils.parsedate_to_datetime(modified).timestamp() if modified else 0.0
    deleted = headers.get("X-Riak-Deleted", "").lower() == "true"
    # Newest write first; ties broken by the body, so every reader picks the same.
    return (not deleted, written_ns, modified_s, body)


class RiakCache(CacheBase):
    """The cache API on a Riak bucket (see the module documentation).

    :param client: the :class:`~cliquet_riak.client.RiakHTTPClient` to use.
    :param location: nodes, bucket type and bucket.
    :param prefix: prepended to every key.
    :param purge_interval: seconds between automatic purges (``0``: never).
    """

    def __init__(self, client: RiakHTTPClient, location: RiakLocation, prefix: str = "",
                 purge_interval: float = 60.0, **kwargs):
        super().__init__(prefix=prefix, **kwargs)
        self.client = client
        self.location = location
        self.purge_interval = purge_interval or 0
        self._next_purge = time.monotonic() + self.purge_interval
        self._purging = threading.Lock()

    # -- plumbing ------------------------------------------------------------

    def _path(self, key: str) -> str:
        return f"{self.location.bucket_path}/keys/{urllib.parse.quote(self.prefix + key, safe='')}"

    def _headers_for(self, expires_ms: int | None, vclock: str | None = None) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "multipart/mixed, */*;q=0.5",
            META_WRITTEN: str(time.time_ns()),
        }
        if expires_ms is not None:
            headers[META_EXPIRES] = str(expires_ms)
            headers[f"X-Riak-Index-{EXPIRES_INDEX}"] = str(expires_ms)
        if vclock:
            headers["X-Riak-Vclock"] = vclock
        return headers

    def _resolve(self, path: str, response) -> _Object:
        """Pick the newest sibling of a ``300`` answer and write it back."""
        vclock = response.headers.get("X-Riak-Vclock")
        siblings = parse_siblings(response)
        if not siblings:
            raise BackendError(message=f"Riak answered 300 without siblings for {path}")
        headers, body = max(siblings, key=_sibling_rank)
        if headers.get("X-Riak-Deleted", "").lower() == "true":
            self.client.request("DELETE", path, headers={"X-Riak-Vclock": vclock} if vclock else {})
            return None
        raw = headers.get(META_EXPIRES)
        written = {
            "Content-Type": headers.get("Content-Type", "application/json"),
            "Accept": "multipart/mixed, */*;q=0.5",
            META_WRITTEN: headers.get(META_WRITTEN) or str(time.time_ns()),
        }
        if raw:
            written[META_EXPIRES] = raw
            written[f"X-Riak-Index-{EXPIRES_INDEX}"] = raw
        if vclock:
            written["X-Riak-Vclock"] = vclock
        stored = self.client.request("PUT", path, body=body, headers=written,
                                     fields={"returnbody": "true"})
        new_vclock = stored.headers.get("X-Riak-Vclock", vclock)
        return _Object(body, headers, new_vclock)

    def _fetch(self, key: str) -> _Object | None:
        path = self._path(key)
        response = self.client.request("GET", path, headers={"Accept": "multipart/mixed, */*;q=0.5"})
        if response.status == 404:
            return None
        if response.status == 300:
            return self._resolve(path, response)
        return _Object(response.body, response.headers, response.headers.get("X-Riak-Vclock"))

    def _store(self, key: str, body: bytes, expires_ms: int | None, vclock: str | None = None):
        path = self._path(key)
        response = self.client.request("PUT", path, body=body, headers=self._headers_for(expires_ms, vclock),
                                       fields={"returnbody": "true"}, ok=(200, 204, 300))
        if response.status == 300:
            # Concurrent writes (or a blind write on a bucket with allow_mult):
            # settle on the newest now, so that siblings never pile up.
            self._resolve(path, response)

    def _remove(self, key: str, obj: _Object | None) -> None:
        if obj is not None:
            headers = {"X-Riak-Vclock": obj.vclock} if obj.vclock else {}
            self.client.request("DELETE", self._path(key), headers=headers)

    def _decode(self, obj: _Object) -> Any:
        try:
            return obj.value
        except ValueError as exc:
            raise BackendError(exc, f"a cache value in Riak is not JSON: {obj.body[:100]!r}") from exc

    def _maybe_purge(self) -> None:
        if not self.purge_interval or time.monotonic() < self._next_purge:
            return
        if not self._purging.acquire(blocking=False):
            return
        self._next_purge = time.monotonic() + self.purge_interval

        def run():
            try:
                self.purge_expired()
            except BackendError as exc:
                logger.warning("Purge of expired Riak cache keys failed: %s", exc)
            finally:
                self._purging.release()

        threading.Thread(target=run, name="cliquet-riak-purge", daemon=True).start()

    def _index_keys(self, index: str, low: str, high: str | None = None):
        """Yield the keys of a 2i query, page after page."""
        quote = lambda s: urllib.parse.quote(str(s), safe="")  # noqa: E731
        path = f"{self.location.bucket_path}/index/{quote(index)}/{quote(low)}"
        if high is not None:
            path += f"/{quote(high)}"
        continuation = None
        while True:
            fields = {"max_results": PAGE_SIZE}
            if continuation:
                fields["continuation"] = continuation
            response = self.client.request("GET", path, fields=fields, ok=(200,))
            try:
                data = response.json()
            except ValueError as exc:
                raise BackendError(exc, "Riak answered a 2i query with invalid JSON") from exc
            yield from data.get("keys", [])
            continuation = data.get("continuation")
            if not continuation:
                return

    def _own_keys(self):
        if self.prefix:
            keys = self._index_keys("$key", self.prefix, self.prefix + KEY_RANGE_END)
        else:
            keys = self._index_keys("$bucket", self.location.bucket)
        return [k for k in keys if k.startswith(self.prefix)]

    # -- the cache API -------------------------------------------------------

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Check that the bucket answers. Riak creates buckets on first write.

        Bucket properties (``allow_mult``, ``n_val``…) are the operator's
        choice and left alone; the backend works with either setting.
        """
        response = self.client.request("GET", f"{self.location.bucket_path}/props", ok=(200,))
        try:
            props = response.json()["props"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(exc, f"unexpected answer to GET props: {response.body[:200]!r}") from exc
        logger.info("Riak cache bucket %s/%s: allow_mult=%s%s", self.location.bucket_type,
                    self.location.bucket, props.get("allow_mult"), " (dry run)" if dry_run else "")

    def flush(self) -> None:
        """Delete every key of this cache's prefix (and only those)."""
        for full_key in self._own_keys():
            path = f"{self.location.bucket_path}/keys/{urllib.parse.quote(full_key, safe='')}"
            self.client.request("DELETE", path)

    def purge_expired(self) -> int:
        """Delete this prefix's expired keys; return how many were deleted.

        Finds them with a range query on ``cliquet_expires_int`` up to now,
        and checks each one again before deleting it (it may have been set
        anew since the query).
        """
        now = _now_ms()
        deleted = 0
        for full_key in list(self._index_keys(EXPIRES_INDEX, "0", str(now))):
            if not full_key.startswith(self.prefix):
                continue
            key = full_key[len(self.prefix):]
            obj = self._fetch(key)
            if obj is not None and obj.expired(_now_ms()):
                self._remove(key, obj)
                deleted += 1
        return deleted

    def heartbeat(self) -> bool:
        """``True`` when at least one Riak node answers ``/ping``; never raises."""
        try:
            return any(self.client.ping().values())
        except Exception:  # noqa: BLE001 - a heartbeat reports, it does not raise
            logger.exception("Riak heartbeat failed")
            return False

    def ttl(self, key: str) -> float:
        """Seconds left before ``key`` expires; ``-1`` without expiry, ``-2`` if missing."""
        obj = self._fetch(key)
        now = _now_ms()
        if obj is None or obj.expired(now):
            return -2
        if obj.expires_ms is None:
            return -1
        return (obj.expires_ms - now) / 1000.0

    def expire(self, key: str, ttl: float) -> bool:
        """Make ``key`` expire in ``ttl`` seconds; ``False`` if it does not exist."""
        obj = self._fetch(key)
        if obj is None or obj.expired(_now_ms()):
            return False
        if ttl <= 0:
            self._remove(key, obj)
        else:
            self._store(key, obj.body, _now_ms() + int(float(ttl) * 1000), obj.vclock)
        return True

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` (as JSON) under ``key`` for ``ttl`` seconds (forever if ``None``)."""
        try:
            body = json.dumps(value, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise TypeError(f"cache values must be JSON-serialisable: {exc}") from exc
        if ttl is not None and ttl <= 0:
            # Already expired: nothing readable must remain.
            self._remove(key, self._fetch(key))
            return
        expires = None if ttl is None else _now_ms() + int(float(ttl) * 1000)
        self._store(key, body, expires)
        self._maybe_purge()

    def get(self, key: str) -> Any:
        """Return the value of ``key``, or ``None`` when missing or expired."""
        obj = self._fetch(key)
        self._maybe_purge()
        if obj is None or obj.expired(_now_ms()):
            return None
        return self._decode(obj)

    def delete(self, key: str) -> Any:
        """Remove ``key``; return its value, or ``None`` if it was missing or expired."""
        obj = self._fetch(key)
        if obj is None:
            return None
        self._remove(key, obj)
        return None if obj.expired(_now_ms()) else self._decode(obj)

    def close(self) -> None:
        """Close the pooled connections."""
        self.client.close()


def load_from_config(config) -> RiakCache:
    """Return a :class:`RiakCache` built from the application's settings.

    Reads ``cliquet.cache_url`` (default ``riak://127.0.0.1:8098/default/cliquet_cache``),
    ``cache_prefix``, ``cache_pool_size``, ``cache_pool_timeout`` and the
    ``riak_*`` settings of :data:`RIAK_SETTINGS`.

    :raises ConfigurationError: the URL cannot be understood.
    """
    declare_settings(config, RIAK_SETTINGS)
    settings = config.get_settings()
    url = settings.get("cliquet.cache_url") or DEFAULT_URL
    try:
        location = RiakLocation.parse(url)
    except ValueError as exc:
        raise ConfigurationError(f"Invalid setting cliquet.cache_url = {url!r}: {exc}") from exc
    client = RiakHTTPClient(
        location.nodes,
        pool_size=settings.get("cliquet.cache_pool_size") or 10,
        pool_timeout=settings.get("cliquet.cache_pool_timeout") or 30.0,
        connect_timeout=settings["cliquet.riak_connect_timeout"],
        read_timeout=settings["cliquet.riak_read_timeout"],
        down_seconds=settings["cliquet.riak_node_down_seconds"],
    )
    return RiakCache(client, location, prefix=settings.get("cliquet.cache_prefix") or "",
                     purge_interval=settings["cliquet.riak_purge_interval"])
