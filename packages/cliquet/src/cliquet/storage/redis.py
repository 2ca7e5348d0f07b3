"""Redis storage, on redis-py (hiredis when installed).

Enable with::

    cliquet.storage_backend = cliquet.storage.redis
    cliquet.storage_url = redis://127.0.0.1:6379/0
    cliquet.storage_prefix = cliquet:storage:   # every key starts with it (the default)

Layout, per collection scope ``S`` (the JSON text ``["collection", "parent"]``):

* ``{prefix}r:S`` — hash ``id → "<last_modified>|<JSON fields>"`` of live records;
* ``{prefix}t:S`` — hash ``id → last_modified`` of tombstones;
* ``{prefix}z:S`` — sorted set of both, scored by ``last_modified``;
* ``{prefix}ts:S`` — the collection timestamp; ``{prefix}v:S`` — a version
  changed by every write (purges included);
* ``{prefix}pb:S`` — the purge horizon (see :meth:`RedisStorage.purged_before`);
* ``{prefix}scopes`` — every scope, for purges across collections.

Every write is one Lua script, so it is atomic: the timestamp comes from the
server's clock (``TIME``) as ``max(now, last + 1)`` (or a newer given one),
hence unique and strictly increasing across any number of app servers.

Queries read a collection in one round trip and evaluate filters, sorting and
``after`` in Python with :mod:`cliquet.storage.query` — the same code as the
memory backend, so the semantics are identical. Each process keeps the
parsed collection while its version is unchanged: a repeated list or
``_since`` poll costs one round trip that returns only the version.
Collections are read whole, so the cost of a *changed* collection grows with
its size; PostgreSQL is the backend for large collections.

Transactions (:meth:`~RedisStorage.transaction`) undo their writes when they
fail — compensation, not isolation: see the method — and refuse a write over
a concurrent change of what they read
(:class:`~cliquet.storage.exceptions.ConflictError`) rather than lose it.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
import threading

import orjson

from cliquet.storage import COMPARISON, RecordNotFoundError, Sort, StorageBase, UnicityError
from cliquet.storage import query as q
from cliquet.storage.exceptions import ConflictError
from cliquet.storage import redis_scripts as lua
from cliquet.storage.redis_client import delete_prefix, get_client, heartbeat, wrap_errors

logger = logging.getLogger(__name__)


class _Snapshot:
    """A parsed collection: live records sorted by timestamp, and tombstones."""

    __slots__ = ("version", "records", "tombstones", "size", "queries")

    def __init__(self, version, records, tombstones):
        self.version = version
        self.records = records
        self.tombstones = tombstones
        self.size = len(records) + len(tombstones)
        #: sorted results and totals per query, while this version lasts
        self.queries: dict = {}


class RedisStorage(StorageBase):
    """Storage on Redis. Build it with :func:`load_from_config`.

    :param client: a :class:`redis.Redis` (see :mod:`cliquet.storage.redis_client`).
    :param prefix: prepended to every key.
    :param max_fetch_size: most records one :meth:`get_all` returns.
    :param cache_records: most parsed records kept in this process.
    """

    def __init__(self, client, prefix: str = "cliquet:", max_fetch_size: int = 10000, cache_records: int = 200_000):
        self.client = client
        self.prefix = prefix
        self.max_fetch_size = max_fetch_size
        self.cache_records = cache_records
        self._snapshots: collections.OrderedDict = collections.OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()
        self._reads: contextvars.ContextVar = contextvars.ContextVar(f"cliquet_redis_reads_{id(self):x}",
                                                                    default=None)
        self._journal: contextvars.ContextVar = contextvars.ContextVar(f"cliquet_redis_journal_{id(self):x}",
                                                                      default=None)
        self._scripts = {name: client.register_script(lua) for name, lua in (
            ("create", lua.CREATE), ("update", lua.UPDATE), ("delete", lua.DELETE), ("purge", lua.PURGE),
            ("snapshot", lua.SNAPSHOT), ("timestamp", lua.TIMESTAMP), ("since", lua.SINCE),
            ("restore", lua.RESTORE))}

    # -- keys ---------------------------------------------------------------------

    def _keys(self, collection_id, parent_id):
        scope = orjson.dumps([collection_id, parent_id]).decode()
        p = self.prefix
        keys = [f"{p}r:{scope}", f"{p}t:{scope}", f"{p}z:{scope}", f"{p}ts:{scope}", f"{p}v:{scope}",
                f"{p}seq", f"{p}scopes"]
        return scope, keys

    def _run(self, name, keys, args):
        with wrap_errors():
            return self._scripts[name](keys=keys, args=args, client=self.client)

    # -- administration -------------------------------------------------------------

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Nothing to create on Redis; checks that the server answers."""
        with wrap_errors():
            self.client.ping()

    def flush(self) -> None:
        """Remove every key of the prefix (the version sequence excepted, so
        that processes never mistake new data for what they cached)."""
        with wrap_errors():
            delete_prefix(self.client, self.prefix, keep=(f"{self.prefix}seq",))
        with self._lock:
            self._snapshots.clear()
            self._cached = 0

    def heartbeat(self) -> bool:
        """Return whether the server answers."""
        return heartbeat(self.client)

    def collection_timestamp(self, collection_id, parent_id) -> int:
        """Return the collection timestamp (the server's time, remembered,
        for a collection never written)."""
        _, keys = self._keys(collection_id, parent_id)
        return int(self._run("timestamp", [keys[3]], []))

    # -- writes ---------------------------------------------------------------------

    def _payload(self, record):
        data = dict(record)
        data.pop(self.id_field, None)
        given = data.pop(self.modified_field, None)
        given = given if type(given) is int and 0 <= given < 2**53 else ""
        payload = orjson.dumps(data)
        return orjson.loads(payload), payload, given

    def _full(self, data, object_id, timestamp):
        data[self.id_field] = object_id
        data[self.modified_field] = timestamp
        return data

    def create(self, collection_id, parent_id, record, id_generator=None):
        """Store a new record; :class:`UnicityError` if its id is taken."""
        object_id = record.get(self.id_field)
        if object_id is None:
            object_id = id_generator() if id_generator is not None else _uuid4()
        data, payload, given = self._payload(record)
        scope, keys = self._keys(collection_id, parent_id)
        created, value, *tomb = self._run("create", keys, [scope, object_id, payload, given])
        if not created:
            stamp, _, body = value.partition(b"|")
            raise UnicityError(self.id_field, self._full(orjson.loads(body), object_id, int(stamp)))
        self._journal_write(scope, keys, object_id, value + b"|" + payload, b"", None, tomb[0] if tomb else None)
        return self._full(data, object_id, int(value))

    @contextlib.contextmanager
    def transaction(self):
        """Undo the block's writes if it raises (nested blocks: only theirs).

        Redis has no rollback across commands: each write is applied at once
        (atomically, by its script) and noted; an exception undoes the noted
        writes in reverse order, each only if the record is still as written
        (a later write by someone else is never clobbered). Until then,
        other clients may see the writes: unlike PostgreSQL's, this is not
        isolation, only "a failed request leaves nothing behind".

        What the block reads is remembered too: an :meth:`update` or
        :meth:`delete` of a record read in the block raises
        :class:`~cliquet.storage.exceptions.ConflictError` if another writer
        changed it in between (checked atomically in the write's script).
        """
        stack = self._journal.get()
        outer = stack is None
        if outer:
            stack = []
            tokens = (self._reads.set({}), self._journal.set(stack))
        stack.append([])
        try:
            yield
        except BaseException:
            self._undo(stack.pop())
            raise
        else:
            entries = stack.pop()
            if stack:
                stack[-1].extend(entries)
        finally:
            if outer:
                self._reads.reset(tokens[0])
                self._journal.reset(tokens[1])

    def _journal_write(self, scope, keys, object_id, wrote, wrote_tomb, before, before_tomb) -> None:
        """Note a write of the current transaction (if any), for :meth:`_undo`."""
        stack = self._journal.get()
        if stack:
            stack[-1].append((scope, keys, object_id, wrote, wrote_tomb, before or b"", before_tomb or b""))

    def _undo(self, entries) -> None:
        reads = self._reads.get()
        for scope, keys, object_id, wrote, wrote_tomb, before, before_tomb in reversed(entries):
            if reads is not None:
                reads.pop((scope, object_id), None)
            try:
                restored = self._run("restore", keys, [scope, object_id, wrote, wrote_tomb, before, before_tomb])
            except Exception:
                logger.warning("could not undo the write of %s in %s", object_id, scope, exc_info=True)
                continue
            if not restored:
                logger.warning("not undoing the write of %s in %s: changed since", object_id, scope)

    def _expected(self, scope, object_id) -> str:
        reads = self._reads.get()
        if reads is None or (scope, object_id) not in reads:
            return ""
        stamp = reads[(scope, object_id)]
        return "none" if stamp is None else str(stamp)

    def _remember(self, scope, object_id, stamp) -> None:
        reads = self._reads.get()
        if reads is not None:
            reads[(scope, object_id)] = stamp

    def get(self, collection_id, parent_id, object_id):
        """Return the live record; :class:`RecordNotFoundError` otherwise."""
        scope, keys = self._keys(collection_id, parent_id)
        with wrap_errors():
            value = self.client.hget(keys[0], object_id)
        if value is None:
            self._remember(scope, object_id, None)
            raise RecordNotFoundError(object_id)
        stamp, _, body = value.partition(b"|")
        self._remember(scope, object_id, int(stamp))
        return self._full(orjson.loads(body), object_id, int(stamp))

    def update(self, collection_id, parent_id, object_id, record):
        """Replace (or create) the record with a new timestamp."""
        data, payload, given = self._payload(record)
        scope, keys = self._keys(collection_id, parent_id)
        out = self._run("update", keys, [scope, object_id, payload, given, self._expected(scope, object_id)])
        if out == b"conflict":
            raise ConflictError(None, f"record {object_id!r} was modified by a concurrent request")
        stamp, before, before_tomb = out
        self._journal_write(scope, keys, object_id, stamp + b"|" + payload, b"", before, before_tomb)
        self._remember(scope, object_id, int(stamp))
        return self._full(data, object_id, int(stamp))

    def _tombstone(self, object_id, timestamp):
        return {self.id_field: object_id, self.modified_field: timestamp, self.deleted_field: True}

    def delete(self, collection_id, parent_id, object_id, with_deleted=True, last_modified=None):
        """Delete the record, leaving a tombstone unless ``with_deleted`` is false."""
        scope, keys = self._keys(collection_id, parent_id)
        given = last_modified if type(last_modified) is int and 0 <= last_modified < 2**53 else ""
        out = self._run("delete", keys, [scope, "1" if with_deleted else "0", given,
                                         self._expected(scope, object_id), object_id])
        if out == b"conflict":
            raise ConflictError(None, f"record {object_id!r} was modified by a concurrent request")
        if not out:
            raise RecordNotFoundError(object_id)
        self._remember(scope, object_id, None)
        return self._deleted(scope, keys, out, with_deleted)[0]

    def _deleted(self, scope, keys, out, with_deleted) -> list[dict]:
        """Journal the deletions a delete script reports; return their tombstones."""
        tombstones = []
        for i in range(0, len(out), 4):
            object_id, stamp, before, before_tomb = out[i].decode(), out[i + 1], out[i + 2], out[i + 3]
            self._journal_write(scope, keys, object_id, b"", stamp if with_deleted else b"", before, before_tomb)
            tombstones.append(self._tombstone(object_id, int(stamp)))
        return tombstones

    def delete_all(self, collection_id, parent_id, filters=None, with_deleted=True):
        """Delete the matching records (each tombstone its own timestamp)."""
        scope, keys = self._keys(collection_id, parent_id)
        snapshot = self._snapshot(collection_id, parent_id)
        matches = q.compile_filters(filters)
        ids = [r[self.id_field] for r in snapshot.records if matches(r)]
        if not ids:
            return []
        out = self._run("delete", keys, [scope, "1" if with_deleted else "0", "", ""] + ids)
        return self._deleted(scope, keys, out, with_deleted)

    def purge_deleted(self, collection_id, parent_id, before=None):
        """Remove tombstones (older than ``before``); return how many."""
        if collection_id is not None and parent_id is not None:
            scopes = [(collection_id, parent_id)]
        else:
            with wrap_errors():
                members = self.client.smembers(f"{self.prefix}scopes")
            scopes = [tuple(orjson.loads(m)) for m in members]
            scopes = [(c, p) for c, p in scopes
                      if (collection_id is None or c == collection_id) and (parent_id is None or p == parent_id)]
        removed = 0
        for cid, pid in scopes:
            scope, keys = self._keys(cid, pid)
            removed += int(self._run("purge", keys + [self._horizon_key(scope)],
                                     [scope, "" if before is None else str(int(before))]))
        return removed

    def _horizon_key(self, scope):
        return f"{self.prefix}pb:{scope}"

    def purged_before(self, collection_id: str, parent_id: str) -> int | None:
        """Return the timestamp before which tombstones were purged (``None``
        if never): a client that synced before it must start over."""
        scope, _ = self._keys(collection_id, parent_id)
        with wrap_errors():
            value = self.client.get(self._horizon_key(scope))
        return int(value) if value is not None else None

    def parent_ids(self, collection_id):
        """Return the parents of ``collection_id`` in the set of scopes."""
        with wrap_errors():
            members = self.client.smembers(f"{self.prefix}scopes")
        return sorted({p for c, p in (orjson.loads(m) for m in members) if c == collection_id})

    # -- reads ----------------------------------------------------------------------

    def _snapshot(self, collection_id, parent_id) -> _Snapshot:
        """Return the parsed collection, from this process's cache when its
        version did not change (one round trip either way)."""
        scope, keys = self._keys(collection_id, parent_id)
        with self._lock:
            known = self._snapshots.get(scope)
        reply = self._run("snapshot", [keys[0], keys[1], keys[4], keys[3]],
                          [known.version if known is not None else "\x00none"])
        version = reply[0]
        if known is not None and len(reply) == 1:
            with self._lock:
                if scope in self._snapshots:
                    self._snapshots.move_to_end(scope)
            return known
        records = []
        flat = reply[1]
        for i in range(0, len(flat), 2):
            stamp, _, body = flat[i + 1].partition(b"|")
            records.append(self._full(orjson.loads(body), flat[i].decode(), int(stamp)))
        records.sort(key=lambda r: r["last_modified"])
        flat = reply[2]
        tombstones = sorted((self._tombstone(flat[i].decode(), int(flat[i + 1])) for i in range(0, len(flat), 2)),
                            key=lambda t: t["last_modified"])
        snapshot = _Snapshot(version.decode() if isinstance(version, bytes) else version, records, tombstones)
        with self._lock:
            old = self._snapshots.pop(scope, None)
            if old is not None:
                self._cached -= old.size
            if snapshot.size <= self.cache_records:
                self._snapshots[scope] = snapshot
                self._cached += snapshot.size
            while self._cached > self.cache_records and self._snapshots:
                _, evicted = self._snapshots.popitem(last=False)
                self._cached -= evicted.size
        return snapshot

    def _since_bound(self, filters):
        bound, strict = None, False
        for f in filters:
            if f.field == self.modified_field and f.operator in (COMPARISON.GT, COMPARISON.MIN) \
                    and type(f.value) in (int, float):
                is_strict = f.operator is COMPARISON.GT
                if bound is None or f.value > bound or (f.value == bound and is_strict):
                    bound, strict = f.value, is_strict
        return bound, strict

    def _changed_since(self, collection_id, parent_id, bound, strict):
        """Return the records and tombstones newer than ``bound`` (one round
        trip, reading only those)."""
        _, keys = self._keys(collection_id, parent_id)
        low = f"({bound}" if strict else f"{bound}"
        ids, live, dead = self._run("since", [keys[0], keys[1], keys[2]], [low])
        records, tombstones = [], []
        for object_id, value, stamp in zip(ids, live, dead):
            if value is not None:
                stamp_text, _, body = value.partition(b"|")
                records.append(self._full(orjson.loads(body), object_id.decode(), int(stamp_text)))
            elif stamp is not None:
                tombstones.append(self._tombstone(object_id.decode(), int(stamp)))
        return records, tombstones

    def get_all(self, collection_id, parent_id, filters=None, sorting=None, after=None, limit=None,
                include_deleted=False):
        """Return a page of matching records (and tombstones if asked) and
        the count of matching live records.

        A query with a lower bound on ``last_modified`` (``_since``) reads
        only the newer changes; any other reads the collection (cached in
        this process while unchanged, with its sorted results per query).
        """
        sorting = tuple(sorting) if sorting else (Sort(self.modified_field, -1),)
        filters = tuple(filters or ())
        position = q.after_key(after, sorting) if after is not None else None
        limit = self.max_fetch_size if limit is None else min(max(limit, 0), self.max_fetch_size)
        bound, strict = self._since_bound(filters)
        cache = key = None
        if bound is not None:
            records, tombstones = self._changed_since(collection_id, parent_id, bound, strict)
        else:
            snapshot = self._snapshot(collection_id, parent_id)
            records, tombstones = snapshot.records, snapshot.tombstones
            cache = snapshot.queries
            try:
                key = (tuple((f.field, f.operator, q.freeze(f.value)) for f in filters),
                       tuple((s.field, s.direction) for s in sorting), include_deleted)
                hash(key)
            except TypeError:
                key = None
        entry = cache.get(key) if key is not None else None
        if entry is None:
            matches = q.compile_filters(filters)
            found = [r for r in records if matches(r)]
            total = len(found)
            if include_deleted:
                on_tombstones = q.compile_filters(filters, fields=(self.id_field, self.modified_field))
                found.extend(t for t in tombstones if on_tombstones(t))
            entry = (q.sort_records(found, sorting), total)
            if key is not None:
                with self._lock:
                    if len(cache) >= 64:
                        cache.pop(next(iter(cache)))
                    cache[key] = entry
        ordered, total = entry
        start = q.position_after(ordered, position, sorting) if position is not None else 0
        return orjson.loads(orjson.dumps(ordered[start:start + limit])), total


def _uuid4() -> str:
    import uuid

    return str(uuid.uuid4())


def load_from_config(config) -> RedisStorage:
    """Return a :class:`RedisStorage` for ``cliquet.storage_url`` (pool from
    ``cliquet.storage_pool_size``/``storage_pool_timeout``, keys prefixed with
    ``cliquet.storage_prefix``)."""
    from cliquet.settings import Setting, as_str, declare_settings

    declare_settings(config, {"storage_prefix": Setting(
        "cliquet:storage:", as_str, doc="Prefix of every key of the Redis storage.")})
    settings = config.get_settings()
    url = settings.get("cliquet.storage_url") or "redis://127.0.0.1:6379/0"
    client = get_client(url, settings.get("cliquet.storage_pool_size") or 10,
                        settings.get("cliquet.storage_pool_timeout") or 30.0)
    return RedisStorage(client, prefix=settings.get("cliquet.storage_prefix") or "",
                        max_fetch_size=settings.get("cliquet.storage_max_fetch_size") or 10000)
