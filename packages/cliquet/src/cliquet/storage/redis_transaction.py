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
"""

from __future__ import annotations

import uuid

_MISSING = object()

#: most arguments of one operation of the commit script (Lua's ``unpack`` has a limit).
CHUNK = 500


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
