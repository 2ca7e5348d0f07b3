"""The request transaction of the Redis backends: writes buffered in the app
server, read back by the request itself, applied at commit by one script.

A :class:`Transaction` holds everything a request wrote and nobody else can
see yet: the records and tombstones per collection (:mod:`cliquet.storage.redis`)
and, when the permission backend joined, the ACEs (:mod:`cliquet.permission.redis`).
Every change goes through :meth:`Transaction.set`, which logs the previous
value, so that a nested transaction (a batch sub-request) rolls back to a
savepoint by replaying the log backwards.

:class:`Commit` gathers the checks and writes of the commit script
(:data:`cliquet.storage.redis_scripts.COMMIT`), keys passed in ``KEYS``.
:class:`RedisTransactions` is the storage's side: the write lock, the
timestamps, the commit and the release.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid

from cliquet.storage.exceptions import BackendError, ConflictError
from cliquet.storage.redis_client import is_cluster, wrap_errors

logger = logging.getLogger(__name__)

_MISSING = object()

#: most arguments of one operation of the commit script (Lua's ``unpack`` has a limit).
CHUNK = 500
#: how many process-local locks the collections of a storage share.
LOCAL_STRIPES = 256


def committed(client, marker: str) -> bool:
    """Whether the commit whose marker key is ``marker`` was applied (asked
    after a commit call failed: its reply may have been lost, not the
    commit). ``False`` when the server cannot tell either."""
    try:
        return bool(client.exists(marker))
    except Exception:
        return False


class Transaction:
    """The pending writes of one outermost :meth:`transaction` block.

    :ivar token: random, unique: the value of the write locks it holds.
    :ivar locks: ``scope → keys`` of the collections locked (kept until the end).
    :ivar bases: ``scope → collection timestamp`` when the lock was taken.
    :ivar records: ``scope → {id: (stamp, payload or None, tombstone?)}``.
    :ivar stamps: ``scope → latest timestamp given`` (logged).
    :ivar reads: ``(scope, id) → timestamp`` read before writing (``None``: absent).
    :ivar parts: per-participant state (the permission backend's overlay).
    """

    def __init__(self):
        self.token = uuid.uuid4().hex
        self.locks: dict = {}
        self.bases: dict = {}
        self.records: dict = {}
        self.stamps: dict = {}
        self.reads: dict = {}
        self.parts: dict = {}
        self.participants: list = []
        #: the process-local locks it holds (see RedisTransactions._local_lock)
        self.local: list = []
        self._log: list = []

    def set(self, mapping: dict, key, value) -> None:
        """``mapping[key] = value``, undone by :meth:`rollback_to`."""
        self._log.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def savepoint(self) -> int:
        """Return a mark for :meth:`rollback_to`."""
        return len(self._log)

    def rollback_to(self, savepoint: int) -> None:
        """Undo every :meth:`set` made since ``savepoint``."""
        while len(self._log) > savepoint:
            mapping, key, previous = self._log.pop()
            if previous is _MISSING:
                mapping.pop(key, None)
            else:
                mapping[key] = previous

    def part(self, owner, factory):
        """Return the state of a participant ``owner`` (made by ``factory`` once)."""
        state = self.parts.get(id(owner))
        if state is None:
            state = self.parts[id(owner)] = factory()
            self.participants.append(owner)
        return state


class Commit:
    """The arguments of one run of the commit script."""

    def __init__(self, marker_key: str, token: str):
        self.keys: list[str] = [marker_key]
        self._index: dict[str, int] = {marker_key: 1}
        self.checks: list = []
        self.ops: list = []
        self.count = 0
        self.token = token
        self.describe: list[str] = []

    def key(self, name: str) -> int:
        """Return the ``KEYS`` index of ``name`` (added once)."""
        index = self._index.get(name)
        if index is None:
            self.keys.append(name)
            index = self._index[name] = len(self.keys)
        return index

    def check_equal(self, key: str, value: str, what: str) -> None:
        """Refuse the commit unless ``GET key`` is ``value`` (``""``: absent)."""
        self.checks += ["eq", self.key(key), value]
        self.count += 1
        self.describe.append(what)

    def check_set(self, key: str, members, what: str) -> None:
        """Refuse the commit unless the set ``key`` holds exactly ``members``."""
        members = sorted(members)
        self.checks += ["set", self.key(key), len(members), *members]
        self.count += 1
        self.describe.append(what)

    def op(self, command: str, key: str, *args) -> None:
        """Run ``command key *args`` (chunked when there are many)."""
        index = self.key(key)
        if command in ("SADD", "SREM") and len(args) > CHUNK:
            for i in range(0, len(args), CHUNK):
                self.ops += [command, index, len(args[i:i + CHUNK]), *args[i:i + CHUNK]]
            return
        self.ops += [command, index, len(args), *args]

    @property
    def empty(self) -> bool:
        """Whether there is nothing to check nor write."""
        return not self.ops and not self.checks

    def args(self) -> list:
        """The ``ARGV`` of the commit script."""
        return [self.token, self.count, *self.checks, *self.ops]


class RedisTransactions:
    """The transactions of :class:`~cliquet.storage.redis.RedisStorage`
    (needs its ``client``, ``prefix``, ``lock_ttl``, ``wait_replicas``,
    ``wait_timeout``, ``_txn`` context variable, ``_scripts`` and
    ``_run(script, keys, args)``)."""

    def _run_commit(self, keys, args):
        """Run the commit script; with ``wait_replicas``, follow it with
        ``WAIT`` on the same connection (a pipeline on the master of the
        keys' slot) and return ``(reply, replicas that acknowledged)``."""
        if not self.wait_replicas:
            return self._run("commit", keys, args), None
        client = self.client
        with wrap_errors():
            if is_cluster(client):
                client = client.get_redis_connection(client.get_node_from_key(keys[0]))
            pipe = client.pipeline(transaction=False)
            self._scripts["commit"](keys=keys, args=args, client=pipe)
            pipe.execute_command("WAIT", self.wait_replicas, max(1, int(self.wait_timeout * 1000)))
            out, acked = pipe.execute()
        return out, int(acked)

    def _local_lock(self, scope) -> threading.Lock:
        """The lock on which the writers of ``scope`` in this process take
        turns before asking Redis for the collection's lock: one of
        :data:`LOCAL_STRIPES`, by hash (bounded memory whatever the number
        of collections; two collections may share one)."""
        stripes = self.__dict__.get("_cliquet_local_locks")
        if stripes is None:
            stripes = self.__dict__.setdefault("_cliquet_local_locks",
                                               tuple(threading.Lock() for _ in range(LOCAL_STRIPES)))
        return stripes[hash(scope) % LOCAL_STRIPES]

    @contextlib.contextmanager
    def transaction(self):
        """Run the block as one atomic, isolated unit (nested blocks:
        savepoints, an exception undoes only theirs).

        Nothing the block writes is seen by other clients before the
        outermost block ends; then one script applies every write (and
        those of a permission backend that joined, see
        :meth:`cliquet.permission.redis.RedisPermission.join_transactions`),
        or none. The block reads its own writes. An exception discards the
        writes: nothing was sent, nothing is left.

        A write of a collection waits for the collection's write lock, held
        by another transaction until it ends. An :meth:`update` or
        :meth:`delete` of a record read in the block before another writer
        changed it raises :class:`~cliquet.storage.exceptions.ConflictError`
        (running the block again resolves it), as does the commit if a lock
        expired meanwhile, or a wait for a lock while holding another (so
        that two transactions never wait for each other).
        """
        txn = self._txn.get()
        if txn is not None:
            savepoint = txn.savepoint()
            try:
                yield
            except BaseException:
                txn.rollback_to(savepoint)
                raise
            return
        txn = Transaction()
        reset = self._txn.set(txn)
        try:
            try:
                yield
            except BaseException:
                self._txn.reset(reset)
                self._release(txn)
                raise
            self._txn.reset(reset)
            self._commit(txn)
        finally:
            for lock in txn.local:
                lock.release()

    def _release(self, txn) -> None:
        """Give back the locks of a transaction that does not commit (if the
        server does not answer, they expire)."""
        if not txn.locks:
            return
        try:
            self._run("unlock", [key for keys in txn.locks.values() for key in (keys.lock, keys.wake)], [txn.token])
        except BackendError:
            logger.warning("could not release the write locks of a transaction; they expire in %ss",
                           self.lock_ttl, exc_info=True)

    def _commit(self, txn) -> None:
        """Apply the writes of ``txn`` with one script (see :data:`~cliquet.storage.redis_scripts.COMMIT`)."""
        commit = Commit(f"{self.prefix}done:{txn.token}", txn.token)
        for scope, keys in txn.locks.items():
            entries = txn.records.get(scope)
            if entries:
                commit.check_equal(keys.lock, txn.token, f"the write lock of {scope} expired")
                commit.check_equal(keys.ts, txn.bases[scope], f"the timestamp of {scope} moved")
                for object_id, (stamp, payload, tomb) in entries.items():
                    self._commit_entry(commit, keys, object_id, str(stamp), payload, tomb)
                commit.op("SET", keys.ts, str(txn.stamps[scope]))
                commit.op("SET", keys.v, uuid.uuid4().hex)
                commit.op("SADD", f"{self.prefix}scopes", scope)
            commit.op("UNLOCK", keys.lock)
            commit.op("WAKE", keys.wake)
        for participant in txn.participants:
            participant.prepare_commit(txn, commit)
        if commit.empty:
            return
        try:
            out, acked = self._run_commit(commit.keys, commit.args())
        except BaseException:
            if committed(self.client, commit.keys[0]):
                return  # the reply was lost, not the commit
            self._release(txn)
            raise
        if out != b"ok":
            self._release(txn)
            raise ConflictError(None, f"commit refused: {commit.describe[int(out[1]) - 1]}")
        if acked is not None and acked < self.wait_replicas:
            # Applied on the master, not known to be on enough replicas: the
            # request fails (503) rather than promise what a failover may undo.
            raise BackendError(None, f"the commit reached {acked} replica(s) of the {self.wait_replicas} "
                                     f"required within {self.wait_timeout}s")

    @staticmethod
    def _commit_entry(commit, keys, object_id, stamp, payload, tomb) -> None:
        if payload is not None:
            commit.op("HSET", keys.r, object_id, stamp.encode() + b"|" + payload)
            commit.op("HDEL", keys.t, object_id)
            commit.op("ZADD", keys.z, stamp, object_id)
        elif tomb:
            commit.op("HDEL", keys.r, object_id)
            commit.op("HSET", keys.t, object_id, stamp)
            commit.op("ZADD", keys.z, stamp, object_id)
        else:
            commit.op("HDEL", keys.r, object_id)
            commit.op("HDEL", keys.t, object_id)
            commit.op("ZREM", keys.z, object_id)

    def _write_lock(self, txn, scope, keys, object_id="", given=None):
        """Take (or renew) the collection's write lock for ``txn``; return
        the server's time and the committed record (value, tombstone)."""
        deadline = None
        holding = any(other != scope for other in txn.bases)
        # Holding a lock, wait briefly: two transactions waiting for each
        # other's lock both give up and run again.
        patience = random.uniform(0.05, 0.2) if holding else self.lock_ttl + 1
        local = self._local_lock(scope)
        if not any(held is local for held in txn.local):
            # The threads of this process queue here rather than poll Redis.
            if not local.acquire(timeout=patience):
                self._lock_timeout(scope, holding)
            txn.local.append(local)
            deadline = time.monotonic() + patience
        # Noted before asking: if the reply is lost, the lock is still released.
        txn.locks.setdefault(scope, keys)
        while True:
            out = self._run("lock", [keys.lock, keys.ts, keys.r, keys.t],
                            [txn.token, max(1, int(self.lock_ttl * 1000)), object_id, "" if given else "1"])
            if out[0] == b"ok":
                txn.bases.setdefault(scope, out[2].decode())
                return int(out[1]), out[3], out[4]
            now = time.monotonic()
            if deadline is None:
                deadline = now + patience
            if now >= deadline:
                self._lock_timeout(scope, holding)
            # Woken when the holder releases it (a lost wake-up costs 50 ms at most).
            with wrap_errors():
                self.client.blpop([keys.wake], timeout=max(0.001, min(0.05, deadline - now)))

    @staticmethod
    def _lock_timeout(scope, holding):
        if holding:
            raise ConflictError(None, f"the collection {scope} is being written by another request")
        raise BackendError(None, f"timed out waiting for the write lock of {scope}")

    def _next_stamp(self, txn, scope, now, given=None, count=1) -> int:
        """Give ``count`` new timestamps; return the last one."""
        last = max(int(txn.bases[scope] or 0), txn.stamps.get(scope, 0))
        if given is not None and count == 1 and given > last:
            stamp = given
        else:
            stamp = max(now + count - 1, last + count)
        txn.set(txn.stamps, scope, stamp)
        return stamp

    def _pending(self, txn, scope, object_id):
        """The transaction's own write of the record: ``(stamp, payload or
        None, tombstone?)``, or ``None``."""
        if txn is None:
            return None
        return txn.records.get(scope, {}).get(object_id)

    def _put(self, txn, scope, object_id, entry) -> None:
        txn.set(txn.records.setdefault(scope, {}), object_id, entry)

    def _check_read(self, txn, scope, object_id, value) -> None:
        """Raise :class:`ConflictError` if the transaction read the record at
        another version than the committed one (``value``)."""
        key = (scope, object_id)
        if key in txn.reads and self._pending(txn, scope, object_id) is None:
            current = int(value.partition(b"|")[0]) if value is not None else None
            if current != txn.reads[key]:
                raise ConflictError(None, f"record {object_id!r} was modified by a concurrent request")

    def _atomically(self, write):
        """Return ``write(txn)`` run in the current transaction, or in one of
        its own (run again if its commit is refused: it read nothing that a
        new run would see differently)."""
        txn = self._txn.get()
        if txn is not None:
            return write(txn)
        for attempt in range(3):
            try:
                with self.transaction():
                    result = write(self._txn.get())
                return result
            except ConflictError:
                if attempt == 2:
                    raise
