"""Redis storage, on redis-py (hiredis when installed).

Enable with::

    cliquet.storage_backend = cliquet.storage.redis
    cliquet.storage_url = redis://127.0.0.1:6379/0
    cliquet.storage_prefix = cliquet:storage:   # every key starts with it (the default)

Layout, per collection scope ``S`` (the JSON text ``["collection", "parent"]``):

* ``{prefix}r:S`` — hash ``id → "<last_modified>|<JSON fields>"`` of live records;
* ``{prefix}t:S`` — hash ``id → last_modified`` of tombstones;
* ``{prefix}z:S`` — sorted set of both, scored by ``last_modified``;
* ``{prefix}ts:S`` — the collection timestamp; ``{prefix}v:S`` — a random
  version, new at every commit that changed the collection (purges included);
* ``{prefix}lock:S`` — the write lock (see below); ``{prefix}wake:S`` — a
  list on which a writer waiting for it is woken when it is released;
  ``{prefix}pb:S`` — the purge horizon (see :meth:`RedisStorage.purged_before`);
* ``{prefix}scopes`` — every scope, for purges across collections;
  ``{prefix}done:T`` — the commit marker of transaction ``T`` (ten seconds).

Every write belongs to a transaction (:meth:`RedisStorage.transaction`; a
call outside one is a transaction of its own). Writes are buffered in this
process, read back by the transaction itself, and applied by one Lua script
at commit: other clients see all of them or none, never a part. The first
write in a collection takes its write lock (a key holding the
transaction's random token, with an expiry, ``cliquet.storage_lock_ttl``);
timestamps are then given from the collection's committed timestamp (the
server's clock, ``max(now, last + 1)``), and the commit script applies the
writes only if the transaction still holds every lock it took. Writers of a
collection are therefore serialized from their first write to their commit,
and a collection's timestamps increase strictly in commit order: a
``_since`` poller never misses a record.

Queries evaluate filters, sorting and ``after`` in Python with
:mod:`cliquet.storage.query` — the same code as the memory backend, so the
semantics are identical. Each process keeps the parsed collection and, per
query, a :class:`~cliquet.storage.views.View` (its sorted result); a list
costs one round trip that returns only the version when nothing changed,
or only the records changed since (timestamps grow strictly in commit
order, so they are the ``z`` entries above the kept timestamp), which the
views then take in one at a time. A read check is kept as one view per
principal (its :class:`~cliquet.storage.views.ReadScope` following the
permission backend's change feed), shared by every reader of the process
with that principal, and a list merges its principals' views
(:class:`~cliquet.storage.views.Union`). When that backend joined this
storage's transactions (same server, same hash slot), the same round trip
reads the feed too, once for every view of the collection
(:data:`~cliquet.storage.redis_scripts.LIST`), so that a list after others
wrote still costs one round trip (two when a revocation must be checked).
The collection is read whole the first time, and again when more than
:data:`DELTA_MOST` records changed since, or records disappeared without a
tombstone, or tombstones were purged.
"""

from __future__ import annotations

import collections
import contextvars
import os
import threading
import uuid

import orjson

from cliquet.storage import COMPARISON, AccessibleIds, Filter, RecordNotFoundError, Sort, StorageBase, UnicityError
from cliquet.storage import query as q
from cliquet.storage import redis_scripts as lua
from cliquet.storage.redis_client import delete_prefix, get_client, heartbeat, tagged_prefix, wrap_errors
from cliquet.storage.redis_transaction import RedisTransactions
from cliquet.storage.views import Union, View, read_check

_Keys = collections.namedtuple("_Keys", "r t z ts v lock wake pb")

#: most changed records a list reads to bring a cached collection up to date
#: (beyond, it reads the collection whole).
DELTA_MOST = 2000
#: most principals of a read check kept as one view per principal (beyond,
#: one view of them all: a caller in many groups must not make every list
#: build and keep a view per group, evicting the views of others).
SHARED_PRINCIPALS_MOST = 8
#: most records of a ``_since`` list whose read check asks the permission
#: backend about them one by one (beyond, every readable id is loaded).
CHECKED_MOST = 1000


class _Snapshot:
    """A parsed collection: live records and tombstones, each in timestamp
    order, and the :class:`~cliquet.storage.views.View` of its queries, all
    brought up to date with the changes since (under :attr:`lock`)."""

    __slots__ = ("version", "stamp", "live", "dead", "views", "unions", "lock")

    def __init__(self, version, stamp, live, dead):
        self.version = version
        self.stamp = stamp
        self.live = live
        self.dead = dead
        #: query key → View, while this collection is kept
        self.views: dict = {}
        #: query key → the Union of its per-principal views (see _scoped)
        self.unions: dict = {}
        self.lock = threading.RLock()

    def union(self, key, views) -> Union:
        """The :class:`~cliquet.storage.views.Union` of ``views`` kept under
        ``key`` (a new one when the views are not the same objects)."""
        union = self.unions.get(key)
        if union is None or len(union.views) != len(views) or any(
                a is not b for a, b in zip(union.views, views)):
            union = Union(views)
            if len(self.unions) >= 256:
                self.unions.pop(next(iter(self.unions)))
            self.unions[key] = union
        return union

    def forget_views(self) -> None:
        """Drop every view (their records may be wrong)."""
        self.views.clear()
        self.unions.clear()

    @property
    def size(self) -> int:
        """Records and tombstones held."""
        return len(self.live) + len(self.dead)

    @property
    def records(self) -> list:
        """The live records, oldest first."""
        return list(self.live.values())

    @property
    def tombstones(self) -> list:
        """The tombstones, oldest first."""
        return list(self.dead.values())


class RedisStorage(RedisTransactions, StorageBase):
    """Storage on Redis. Build it with :func:`load_from_config`.

    :param client: a :class:`redis.Redis` (see :mod:`cliquet.storage.redis_client`).
    :param prefix: prepended to every key (on a Redis Cluster, with a hash
        tag: see :func:`~cliquet.storage.redis_client.tagged_prefix`).
    :param max_fetch_size: most records one :meth:`get_all` returns.
    :param cache_records: most parsed records kept in this process.
    :param lock_ttl: seconds a collection's write lock outlives a crashed
        holder (renewed at each write); also how long a writer waits for it.
    :param wait_replicas: after each commit, wait (``WAIT``) until that many
        replicas acknowledged it; fewer within ``wait_timeout`` seconds
        make the request fail with a :class:`BackendError` (the write stays
        on the master). ``0``: do not wait (Redis's asynchronous replication).
    """

    def __init__(self, client, prefix: str = "cliquet:storage:", max_fetch_size: int = 10000, cache_records: int = 200_000,
                 lock_ttl: float = 10.0, wait_replicas: int = 0, wait_timeout: float = 1.0):
        self.client = client
        self.prefix = tagged_prefix(client, prefix)
        self.max_fetch_size = max_fetch_size
        self.cache_records = cache_records
        self.lock_ttl = lock_ttl
        self.wait_replicas = max(0, int(wait_replicas))
        self.wait_timeout = wait_timeout
        self._snapshots: collections.OrderedDict = collections.OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()
        #: query key → its views' (key, filters) (see _scoped): built once per query
        self._parts: dict = {}
        self._txn: contextvars.ContextVar = contextvars.ContextVar(f"cliquet_redis_txn_{id(self):x}", default=None)
        self._scripts = {name: client.register_script(lua) for name, lua in (
            ("lock", lua.LOCK), ("unlock", lua.UNLOCK), ("commit", lua.COMMIT), ("purge", lua.PURGE),
            ("snapshot", lua.SNAPSHOT), ("timestamp", lua.TIMESTAMP), ("since", lua.SINCE), ("list", lua.LIST))}

    # -- keys ---------------------------------------------------------------------

    def _keys(self, collection_id, parent_id):
        # Every key of a collection ends with its scope: a Redis Cluster hash
        # tag around it (``{S}``) would put them all in one slot.
        scope = orjson.dumps([collection_id, parent_id]).decode()
        p = self.prefix
        return scope, _Keys(*(f"{p}{kind}:{scope}" for kind in _Keys._fields))

    def _run(self, name, keys, args):
        with wrap_errors():
            return self._scripts[name](keys=keys, args=args, client=self.client)

    # -- administration -------------------------------------------------------------

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Nothing to create on Redis; checks that the server answers."""
        with wrap_errors():
            self.client.ping()

    def flush(self) -> None:
        """Remove every key of the prefix (and nothing else)."""
        with wrap_errors():
            delete_prefix(self.client, self.prefix)
        with self._lock:
            self._snapshots.clear()
            self._cached = 0

    def heartbeat(self) -> bool:
        """Return whether the server answers."""
        return heartbeat(self.client)

    def collection_timestamp(self, collection_id, parent_id) -> int:
        """Return the collection timestamp (the server's time, remembered,
        for a collection never written); inside a transaction that wrote
        in the collection, the timestamp of its latest write."""
        scope, keys = self._keys(collection_id, parent_id)
        txn = self._txn.get()
        if txn is not None and scope in txn.stamps:
            return txn.stamps[scope]
        return int(self._run("timestamp", [keys.ts], []))

    # -- writes ---------------------------------------------------------------------

    def _payload(self, record):
        data = dict(record)
        data.pop(self.id_field, None)
        given = data.pop(self.modified_field, None)
        given = given if type(given) is int and 0 <= given < 2**53 else None
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
            object_id = id_generator() if id_generator is not None else str(uuid.uuid4())
        data, payload, given = self._payload(record)
        scope, keys = self._keys(collection_id, parent_id)

        def write(txn):
            now, value, _ = self._write_lock(txn, scope, keys, object_id, given)
            entry = self._pending(txn, scope, object_id)
            if entry is not None:
                value = str(entry[0]).encode() + b"|" + entry[1] if entry[1] is not None else None
            if value is not None:
                stamp, _, body = value.partition(b"|")
                raise UnicityError(self.id_field, self._full(orjson.loads(body), object_id, int(stamp)))
            stamp = self._next_stamp(txn, scope, now, given)
            self._put(txn, scope, object_id, (stamp, payload, False))
            return stamp

        return self._full(data, object_id, self._atomically(write))

    def get(self, collection_id, parent_id, object_id):
        """Return the live record; :class:`RecordNotFoundError` otherwise.

        Inside a transaction, the first read of a record is remembered: an
        :meth:`update` or :meth:`delete` of it raises
        :class:`~cliquet.storage.exceptions.ConflictError` if another
        writer changed it in between."""
        scope, keys = self._keys(collection_id, parent_id)
        txn = self._txn.get()
        entry = self._pending(txn, scope, object_id)
        if entry is not None:
            if entry[1] is None:
                raise RecordNotFoundError(object_id)
            return self._full(orjson.loads(entry[1]), object_id, entry[0])
        with wrap_errors():
            value = self.client.hget(keys.r, object_id)
        stamp, _, body = value.partition(b"|") if value is not None else (None, None, None)
        if txn is not None:
            txn.reads.setdefault((scope, object_id), int(stamp) if stamp is not None else None)
        if value is None:
            raise RecordNotFoundError(object_id)
        return self._full(orjson.loads(body), object_id, int(stamp))

    def update(self, collection_id, parent_id, object_id, record):
        """Replace (or create) the record with a new timestamp."""
        data, payload, given = self._payload(record)
        scope, keys = self._keys(collection_id, parent_id)

        def write(txn):
            now, value, _ = self._write_lock(txn, scope, keys, object_id, given)
            self._check_read(txn, scope, object_id, value)
            stamp = self._next_stamp(txn, scope, now, given)
            self._put(txn, scope, object_id, (stamp, payload, False))
            return stamp

        return self._full(data, object_id, self._atomically(write))

    def _tombstone(self, object_id, timestamp):
        return {self.id_field: object_id, self.modified_field: timestamp, self.deleted_field: True}

    def delete(self, collection_id, parent_id, object_id, with_deleted=True, last_modified=None):
        """Delete the record, leaving a tombstone unless ``with_deleted`` is false."""
        scope, keys = self._keys(collection_id, parent_id)
        given = last_modified if type(last_modified) is int and 0 <= last_modified < 2**53 else None

        def write(txn):
            now, value, _ = self._write_lock(txn, scope, keys, object_id, given)
            self._check_read(txn, scope, object_id, value)
            entry = self._pending(txn, scope, object_id)
            if (entry[1] is None) if entry is not None else (value is None):
                raise RecordNotFoundError(object_id)
            stamp = self._next_stamp(txn, scope, now, given)
            self._put(txn, scope, object_id, (stamp, None, bool(with_deleted)))
            return stamp

        return self._tombstone(object_id, self._atomically(write))

    def delete_all(self, collection_id, parent_id, filters=None, with_deleted=True):
        """Delete the matching records (each tombstone its own timestamp)."""
        scope, keys = self._keys(collection_id, parent_id)

        def write(txn):
            now, _, _ = self._write_lock(txn, scope, keys)
            records, _, _ = self._records(collection_id, parent_id, None, False)
            matches = q.compile_filters(filters)
            ids = [r[self.id_field] for r in records if matches(r)]
            if not ids:
                return []
            first = self._next_stamp(txn, scope, now, None, len(ids)) - len(ids) + 1
            for i, object_id in enumerate(ids):
                self._put(txn, scope, object_id, (first + i, None, bool(with_deleted)))
            return [self._tombstone(object_id, first + i) for i, object_id in enumerate(ids)]

        return self._atomically(write)

    def purge_deleted(self, collection_id, parent_id, before=None):
        """Remove tombstones (older than ``before``); return how many.

        Applied at once, outside any transaction: tombstones are no one's
        pending write."""
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
            _, keys = self._keys(cid, pid)
            removed += int(self._run("purge", [keys.t, keys.z, keys.ts, keys.v, keys.pb],
                                     [uuid.uuid4().hex, "" if before is None else str(int(before))]))
        return removed

    def purged_before(self, collection_id: str, parent_id: str) -> int | None:
        """Return the timestamp before which tombstones were purged (``None``
        if never): a client that synced before it must start over."""
        _, keys = self._keys(collection_id, parent_id)
        with wrap_errors():
            value = self.client.get(keys.pb)
        return int(value) if value is not None else None

    def parent_ids(self, collection_id):
        """Return the parents of ``collection_id`` in the set of scopes."""
        with wrap_errors():
            members = self.client.smembers(f"{self.prefix}scopes")
        return sorted({p for c, p in (orjson.loads(m) for m in members) if c == collection_id})

    # -- reads ----------------------------------------------------------------------

    def _snapshot(self, collection_id, parent_id) -> _Snapshot:
        """Return the parsed committed collection, from this process's cache
        when its version did not change, brought up to date with only the
        changes since when it did (one round trip either way; the whole
        collection when too much changed, or a record left without a
        tombstone, or tombstones were purged)."""
        scope, keys = self._keys(collection_id, parent_id)
        with self._lock:
            known = self._snapshots.get(scope)
        for _ in range(3 if known is not None else 0):
            with known.lock:
                version, stamp = known.version, known.stamp
            reply = self._run("snapshot", [keys.r, keys.t, keys.v, keys.z, keys.ts], [version, stamp, DELTA_MOST])
            if len(reply) == 1:
                with self._lock:
                    if scope in self._snapshots:
                        self._snapshots.move_to_end(scope)
                return known
            with known.lock:
                if known.version != version:
                    continue  # another thread brought it further meanwhile: ask again from there
                if reply[1] == b"delta" and self._apply_delta(known, reply):
                    return known
                break
        reply = self._run("snapshot", [keys.r, keys.t, keys.v, keys.z, keys.ts], ["\x00none", "", 0])
        version, flat_live, flat_dead, stamp = reply
        records = []
        for i in range(0, len(flat_live), 2):
            stamp_text, _, body = flat_live[i + 1].partition(b"|")
            records.append(self._full(orjson.loads(body), flat_live[i].decode(), int(stamp_text)))
        records.sort(key=lambda r: r[self.modified_field])
        tombstones = sorted((self._tombstone(flat_dead[i].decode(), int(flat_dead[i + 1]))
                             for i in range(0, len(flat_dead), 2)), key=lambda t: t[self.modified_field])
        snapshot = _Snapshot(version.decode() if isinstance(version, bytes) else version,
                             _text(stamp),
                             {r[self.id_field]: r for r in records}, {t[self.id_field]: t for t in tombstones})
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

    def _apply_delta(self, snapshot, reply) -> bool:
        """Apply the changes of a ``delta`` reply to ``snapshot`` (its lock
        held) and to its views; ``False`` when they do not account for the
        whole collection (the caller then reads it whole)."""
        _, _, stamp, size, ids, live, dead = reply
        changed, known = [], set()
        for object_id, value, tomb in zip(ids, live, dead):
            object_id = object_id.decode()
            changed.append(object_id)
            if (snapshot.live.pop(object_id, None) is not None) | (snapshot.dead.pop(object_id, None) is not None):
                known.add(object_id)
            if value is not None:
                stamp_text, _, body = value.partition(b"|")
                snapshot.live[object_id] = self._full(orjson.loads(body), object_id, int(stamp_text))
            elif tomb is not None:
                snapshot.dead[object_id] = self._tombstone(object_id, int(tomb))
        every = set(changed)
        for view in snapshot.views.values():
            if view.scope is None:
                targets = changed
            else:
                # A view whose read scope excludes an id, and which does not
                # hold it, is left as is (what its update would conclude); a
                # view holds ids of its snapshot only, so an id new to the
                # snapshot is looked for in read scopes, never among members.
                # Set intersections: a few changed ids against large sets.
                targets = every & view.scope.ids
                if known:
                    targets |= known & view.members.keys()
            for object_id in targets:
                view.update(object_id, snapshot.live.get(object_id), snapshot.dead.get(object_id))
        if snapshot.size != int(size):
            snapshot.forget_views()
            return False
        snapshot.version = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        snapshot.stamp = _text(stamp)
        return True

    def _since_bound(self, filters):
        bound, strict = None, False
        for f in filters:
            if f.field == self.modified_field and f.operator in (COMPARISON.GT, COMPARISON.MIN) \
                    and type(f.value) in (int, float):
                is_strict = f.operator is COMPARISON.GT
                if bound is None or f.value > bound or (f.value == bound and is_strict):
                    bound, strict = f.value, is_strict
        return bound, strict

    def _changed_since(self, keys, bound, strict):
        """Return the committed records and tombstones newer than ``bound``
        and the collection timestamp of that instant ("" for none; one
        round trip, reading only those)."""
        low = f"({bound}" if strict else f"{bound}"
        ids, live, dead, stamp = self._run("since", [keys.r, keys.t, keys.z, keys.ts], [low])
        records, tombstones = [], []
        for object_id, value, tomb in zip(ids, live, dead):
            if value is not None:
                stamp_text, _, body = value.partition(b"|")
                records.append(self._full(orjson.loads(body), object_id.decode(), int(stamp_text)))
            elif tomb is not None:
                tombstones.append(self._tombstone(object_id.decode(), int(tomb)))
        return records, tombstones, _text(stamp)

    def _records(self, collection_id, parent_id, bound, strict):
        """Return ``(records, tombstones, stamp)`` newer than ``bound`` (all
        if ``None``), sorted by timestamp, as this transaction sees them:
        committed, then its own writes; ``stamp`` is the collection
        timestamp read with them ("" for none, ``None`` with own writes)."""
        scope, keys = self._keys(collection_id, parent_id)
        if bound is not None:
            records, tombstones, stamp = self._changed_since(keys, bound, strict)
        else:
            snapshot = self._snapshot(collection_id, parent_id)
            with snapshot.lock:
                records, tombstones, stamp = snapshot.records, snapshot.tombstones, snapshot.stamp
        txn = self._txn.get()
        own = txn.records.get(scope) if txn is not None else None
        if not own:
            return records, tombstones, stamp
        records = [r for r in records if r[self.id_field] not in own]
        tombstones = [t for t in tombstones if t[self.id_field] not in own]
        for object_id, (stamp, payload, tomb) in own.items():
            if bound is not None and (stamp < bound or (strict and stamp == bound)):
                continue
            if payload is not None:
                records.append(self._full(orjson.loads(payload), object_id, stamp))
            elif tomb:
                tombstones.append(self._tombstone(object_id, stamp))
        records.sort(key=lambda r: r[self.modified_field])
        tombstones.sort(key=lambda t: t[self.modified_field])
        return records, tombstones, None

    def _from_view(self, collection_id, parent_id, filters, sorting, include_deleted, position, limit):
        """``(page, total, stamp)`` from the view of this query (from the views of
        its read check's principals, one each), or ``None`` when no view
        serves it: inside a transaction that wrote in the collection or
        changed permissions, or a query no view keeps."""
        scope, keys = self._keys(collection_id, parent_id)
        txn = self._txn.get()
        if txn is not None and (txn.records.get(scope) or any(
                getattr(part, "aces", None) for part in txn.parts.values())):
            return None
        try:
            key = _view_key(filters, sorting, include_deleted)
        except TypeError:
            return None
        parts = self._parts.get(key)
        if parts is None:
            try:
                parts = _scoped(filters, sorting, include_deleted, self.id_field)
            except TypeError:
                return None
            if len(self._parts) >= 1024:
                self._parts.clear()
            self._parts[key] = parts
        served = self._from_kept_views(scope, keys, key, parts, sorting, position, limit)
        if served is not None:
            return served
        fields = (self.id_field, self.modified_field)
        try:  # a query no view keeps never has one under its key: checked here, not above
            fresh = [View(part_filters, sorting, include_deleted, fields) for _, part_filters in parts]
        except (TypeError, ValueError):
            return None
        snapshot = self._snapshot(collection_id, parent_id)
        with snapshot.lock:
            views = []
            for (part_key, _), view in zip(parts, fresh):
                kept = snapshot.views.get(part_key)
                if kept is None:
                    if view.scope is not None:
                        view.scope.refresh()
                    view.build(snapshot.live.values(), snapshot.dead.values())
                    if len(snapshot.views) >= 64:
                        snapshot.views.pop(next(iter(snapshot.views)))
                    snapshot.views[part_key] = view
                else:
                    view = kept
                    if view.scope is not None:
                        view.follow_scope(snapshot.live, snapshot.dead)
                views.append(view)
            return _served(snapshot, key, views, sorting, position, limit)

    def _from_kept_views(self, scope, keys, key, parts, sorting, position, limit):
        """``(page, total, stamp)`` from views this process keeps whose read scopes
        follow a permission backend joined to this storage: one round trip
        (:data:`~cliquet.storage.redis_scripts.LIST`) brings the collection
        and the read scopes of *every* view of the collection up to date at
        the same instant, from the changes since any of them last looked:
        a list costs what changed since the previous list of this process,
        not since this reader's. ``None`` when a view is missing, or when
        the answer cannot be applied as is (another thread moved them
        meanwhile, too much changed): the caller then takes the general
        path."""
        with self._lock:
            known = self._snapshots.get(scope)
        if known is None:
            return None
        with known.lock:
            views = [known.views.get(part_key) for part_key, _ in parts]
            if any(view is None or view.scope is None for view in views):
                return None
            source = views[0].scope.source
            joined = getattr(source, "joined_to", None)
            if joined is None or not joined(self):
                return None
            followed = [view for view in known.views.values()
                        if view.scope is not None and view.scope.source is source]
            tokens = [view.scope.token for view in followed]
            prefix = os.path.commonprefix([view.scope.prefix for view in followed])
            version = known.version
            args = [version, known.stamp, DELTA_MOST, *source.list_args(source.oldest(tokens), prefix)]
        collection, feed = self._run("list", [keys.r, keys.t, keys.v, keys.z, keys.ts, *source.list_keys()], args)
        with known.lock:
            if known.version != version or [view.scope.token for view in followed] != tokens or any(
                    known.views.get(part_key) is not view for (part_key, _), view in zip(parts, views)):
                return None
            if len(collection) != 1 and not (collection[1] == b"delta" and self._apply_delta(known, collection)):
                return None
            for view, changed in zip(followed, source.follow_scopes([view.scope for view in followed], feed)):
                if changed is None:
                    view.build(known.live.values(), known.dead.values())
                else:
                    for object_id in changed:
                        view.update(object_id, known.live.get(object_id), known.dead.get(object_id))
            page = _served(known, key, views, sorting, position, limit)
        with self._lock:
            if self._snapshots.get(scope) is known:
                self._snapshots.move_to_end(scope)
        return page

    def get_all(self, collection_id, parent_id, filters=None, sorting=None, after=None, limit=None,
                include_deleted=False):
        """Return a page of matching records (and tombstones if asked) and
        the count of matching live records.

        A query with a lower bound on ``last_modified`` (``_since``) reads
        only the newer changes; any other reads the collection (cached in
        this process while unchanged, with its sorted results per query).
        Inside a transaction, its own writes are seen.
        """
        records, total, _ = self._list(collection_id, parent_id, filters, sorting, after, limit, include_deleted)
        return records, total

    def get_all_with_timestamp(self, collection_id, parent_id, filters=None, sorting=None, after=None, limit=None,
                               include_deleted=False):
        """:meth:`get_all` and the collection timestamp read by the same
        script as the page's data (one round trip, the same instant). A
        collection never written, or one this transaction wrote, takes the
        two steps of the default."""
        scope, _ = self._keys(collection_id, parent_id)
        txn = self._txn.get()
        if txn is not None and txn.records.get(scope):  # its own writes: no stamp read with them
            return super().get_all_with_timestamp(collection_id, parent_id, filters=filters, sorting=sorting,
                                                  after=after, limit=limit, include_deleted=include_deleted)
        records, total, stamp = self._list(collection_id, parent_id, filters, sorting, after, limit,
                                           include_deleted)
        if not stamp:
            return super().get_all_with_timestamp(collection_id, parent_id, filters=filters, sorting=sorting,
                                                  after=after, limit=limit, include_deleted=include_deleted)
        return records, total, int(stamp)

    def _list(self, collection_id, parent_id, filters, sorting, after, limit, include_deleted):
        """``(records, total, stamp)``; ``stamp`` as :meth:`_records` says."""
        sorting = tuple(sorting) if sorting else (Sort(self.modified_field, -1),)
        filters = tuple(filters or ())
        position = q.after_key(after, sorting) if after is not None else None
        limit = self.max_fetch_size if limit is None else min(max(limit, 0), self.max_fetch_size)
        bound, strict = self._since_bound(filters)
        if bound is None:
            served = self._from_view(collection_id, parent_id, filters, sorting, include_deleted, position, limit)
            if served is not None:
                return served
        records, tombstones, stamp = self._records(collection_id, parent_id, bound, strict)
        if bound is not None:
            filters = self._checked(filters, records, tombstones)
        matches = q.compile_filters(filters)
        found = [r for r in records if matches(r)]
        total = len(found)
        if include_deleted:
            on_tombstones = q.compile_filters(filters, fields=(self.id_field, self.modified_field))
            found.extend(t for t in tombstones if on_tombstones(t))
        ordered = q.sort_records(found, sorting)
        start = q.position_after(ordered, position, sorting) if position is not None else 0
        return orjson.loads(orjson.dumps(ordered[start:start + limit])), total, stamp

    def _checked(self, filters, records, tombstones) -> tuple:
        """``filters`` with a read check on the id replaced by the ids of
        ``records`` and ``tombstones`` it allows, asked of its permission
        backend (a round trip per permission, this transaction's writes
        seen): a ``_since`` list reads a few changed records, and costs
        those, not every id the caller may read (the read check's loader).
        Unchanged when they are more than :data:`CHECKED_MOST`."""
        if (not any(isinstance(f.value, AccessibleIds) for f in filters)
                or len(records) + len(tombstones) > CHECKED_MOST):
            return filters
        candidates = [item[self.id_field] for item in records] + [item[self.id_field] for item in tombstones]
        checked = []
        for f in filters:
            value, source = f.value, getattr(f.value, "source", None)
            operator = f.operator if isinstance(f.operator, COMPARISON) else COMPARISON(f.operator)
            if (isinstance(value, AccessibleIds) and operator is COMPARISON.IN and f.field == self.id_field
                    and source is not None):
                objects = [value.prefix + object_id for object_id in candidates]
                allowed: set = set()
                for permission in value.permissions:  # an object allowed once is not asked again
                    allowed |= source.filter_accessible([o for o in objects if o not in allowed],
                                                        value.principals, permission)
                cut = len(value.prefix)
                f = Filter(f.field, frozenset(object_id[cut:] for object_id in allowed), COMPARISON.IN)
            checked.append(f)
        return tuple(checked)


def _text(value) -> str:
    """A reply's bytes as text (``""`` for none)."""
    return value.decode() if isinstance(value, bytes) else ("" if value is None else str(value))


def _served(snapshot, key, views, sorting, position, limit):
    """``(page, total, stamp)`` of the query ``key`` from its ``views``
    (their :class:`~cliquet.storage.views.Union` when there are several),
    the page's records copied; ``stamp`` is the timestamp of the snapshot
    they follow ("" for a collection never written)."""
    if len(views) == 1:
        page, total = views[0].page(position, sorting, limit), views[0].total
    else:
        union = snapshot.union(key, views)
        page, total = union.page(position, sorting, limit), union.total()
    return orjson.loads(orjson.dumps(page)), total, snapshot.stamp


def _scoped(filters, sorting, include_deleted, id_field):
    """The ``(key, filters)`` of the views that serve a query: one per
    principal of its read check (the check then names that principal
    alone), so that readers sharing a principal share its view; the query
    itself when it has no read check, or one with more than
    :data:`SHARED_PRINCIPALS_MOST` principals. ``TypeError`` when no view
    keeps it."""
    whole = [(_view_key(filters, sorting, include_deleted), filters)]
    check, rest = read_check(filters, id_field)
    if check is None or check is False:
        return whole
    principals = tuple(dict.fromkeys(check.principals))
    if len(principals) > SHARED_PRINCIPALS_MOST:
        return whole
    if not principals:
        raise TypeError("a read check that allows nothing")
    parts = []
    for principal in principals:
        alone = AccessibleIds((principal,), check.permissions, check.prefix, source=check.source)
        part_filters = (*rest, Filter(id_field, alone, COMPARISON.IN))
        parts.append((_view_key(part_filters, sorting, include_deleted), part_filters))
    return parts


def _view_key(filters, sorting, include_deleted):
    """The key of a query's view; ``TypeError`` when no view keeps it (a read
    check from a permission backend without a change feed)."""
    from cliquet.permission import PermissionBase

    frozen = []
    for f in filters:
        value = f.value
        if isinstance(value, AccessibleIds):
            source = value.source
            if source is None or type(source).acl_changes is PermissionBase.acl_changes:
                raise TypeError("a read check without a change feed")
            value = ("acl", value.principals, value.permissions, value.prefix, id(source))
        else:
            value = q.freeze(value)
        frozen.append((f.field, f.operator, value))
    key = (include_deleted, tuple(frozen), tuple((s.field, s.direction) for s in sorting))
    hash(key)
    return key


def load_from_config(config) -> RedisStorage:
    """Return a :class:`RedisStorage` for ``cliquet.storage_url`` (pool from
    ``cliquet.storage_pool_size``/``storage_pool_timeout``, keys prefixed with
    ``cliquet.storage_prefix``, locks from ``cliquet.storage_lock_ttl``,
    replicas waited for from ``cliquet.storage_wait_replicas`` and
    ``cliquet.storage_wait_timeout``)."""
    from cliquet.settings import Setting, as_float, as_int, as_str, declare_settings

    declare_settings(config, {
        "storage_prefix": Setting("cliquet:storage:", as_str,
                                  doc="Prefix of every key of the Redis storage (never empty)."),
        "storage_lock_ttl": Setting(10.0, as_float, doc=(
            "Redis storage: seconds a collection's write lock outlives a writer that crashed before its "
            "commit (renewed at each write), and longest wait for it.")),
        "storage_wait_replicas": Setting(0, as_int, doc=(
            "Redis storage: after each commit, wait until this many replicas acknowledged it (Redis WAIT); "
            "fewer within storage_wait_timeout make the request fail with a 503 (the write stays on the "
            "master). 0: asynchronous replication, a failover may lose the last acknowledged writes.")),
        "storage_wait_timeout": Setting(1.0, as_float, doc=(
            "Redis storage: seconds a commit waits for storage_wait_replicas replicas.")),
    })
    settings = config.get_settings()
    url = settings.get("cliquet.storage_url") or "redis://127.0.0.1:6379/0"
    client = get_client(url, settings.get("cliquet.storage_pool_size") or 10,
                        settings.get("cliquet.storage_pool_timeout") or 30.0)
    return RedisStorage(client, prefix=settings.get("cliquet.storage_prefix") or "cliquet:storage:",
                        max_fetch_size=settings.get("cliquet.storage_max_fetch_size") or 10000,
                        lock_ttl=settings.get("cliquet.storage_lock_ttl") or 10.0,
                        wait_replicas=settings.get("cliquet.storage_wait_replicas") or 0,
                        wait_timeout=settings.get("cliquet.storage_wait_timeout") or 1.0)
