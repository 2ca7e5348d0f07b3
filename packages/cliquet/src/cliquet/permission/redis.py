"""Permissions on Redis, on redis-py (hiredis when installed).

Enable with::

    cliquet.permission_backend = cliquet.permission.redis
    cliquet.permission_url = redis://127.0.0.1:6379/0
    cliquet.permission_prefix = cliquet:permission:   # the default

Sets, with ``P`` a permission and ``N`` its length in bytes:

* ``{prefix}user:{user_id}`` — the user's extra principals;
* ``{prefix}ace:N:P:{object_id}`` — the principals holding ``P`` on the object;
* ``{prefix}obj:{object_id}`` — the permissions with a non-empty ACE on it;
* ``{prefix}acc:N:P:{principal}`` — the objects on which the principal holds
  ``P``: :meth:`~RedisPermission.get_accessible_objects` is a ``SUNION`` of
  the caller's principals, never a scan of the whole store;
* ``{prefix}feed:seq``, ``{prefix}feed:log``, ``{prefix}feed:epoch`` — the
  change feed (:meth:`~RedisPermission.acl_changes`): the commit that
  changes ACEs appends one entry per object changed to the list (trimmed
  to its last :data:`FEED_KEPT`) and adds their number to the counter, in
  the same script as the ACEs; an entry tells which principals were
  granted or revoked which permission (format:
  :data:`cliquet.storage.redis_scripts.LIST`), so that a read scope
  learns from the feed alone that an object became readable. The epoch, a
  random value set by the first such commit, tells a flushed feed from the
  one a token came from. A reader meeting an entry of another form (the
  3.2 development versions named only the principal) loads again.

A write reads the sets it changes, computes the new ones, and applies the
difference with the commit script of the storage
(:data:`cliquet.storage.redis_scripts.COMMIT`), which first checks that
those sets did not change meanwhile (else it reads and tries again), so the
sets never disagree. Every key is computed here and passed to the script.

When the storage is Redis on the same server and database,
:meth:`RedisPermission.join_transactions` makes the writes part of the
storage's transactions: buffered, seen by the request itself only, and
applied by the same script as the records, at commit.
"""

from __future__ import annotations

import uuid
from typing import Iterable

from cliquet.permission import PermissionBase
from cliquet.storage.exceptions import BackendError, ConflictError
from cliquet.storage.redis_client import (delete_prefix, get_client, heartbeat, key_slot, same_database,
                                          tagged_prefix, wrap_errors)
from cliquet.storage.redis_scripts import ACL_CHANGES, COMMIT
from cliquet.storage.redis_transaction import Commit, Transaction, committed

#: how many times a write outside a transaction is tried when its sets change under it.
ATTEMPTS = 5

#: how many ACE changes the feed keeps (a reader further behind loads again).
FEED_KEPT = 10_000


def _sized(permission: str) -> str:
    return f"{len(permission.encode())}:{permission}"


def _plain_set(mapping, key, value):
    mapping[key] = value


def _sized_bytes(text: str) -> bytes:
    data = text.encode()
    return b"%d:%s" % (len(data), data)


def _feed_entries(pending) -> list[bytes]:
    """The feed entries of a transaction's ACE changes: one per object,
    ``!<object>`` then ``<+ or -><permission><principal>`` per principal
    granted or revoked (each text preceded by its length in bytes and a
    colon; see :data:`cliquet.storage.redis_scripts.LIST`)."""
    per_object: dict = {}
    for (object_id, permission), wanted in pending.aces.items():
        base = pending.ace_base.get((object_id, permission), frozenset())
        changes = per_object.setdefault(object_id, [])
        for principal in sorted(wanted ^ base):
            changes.append((b"+" if principal in wanted else b"-") + _sized_bytes(permission)
                           + _sized_bytes(principal))
    return [b"!" + _sized_bytes(object_id) + b"".join(changes)
            for object_id, changes in sorted(per_object.items()) if changes]


def _parse_entry(entry: bytes):
    """``(object id, [(granted?, permission, principal), ...])`` of a feed
    entry; ``None`` for an entry of another form (an older writer's).
    Every list reads the entries since the previous one: kept flat."""
    if not entry.startswith(b"!"):
        return None
    index, size = entry.index, len(entry)
    colon = index(b":", 1)
    position = colon + 1 + int(entry[1:colon])
    object_id = entry[colon + 1:position].decode()
    changes = []
    while position < size:
        granted = entry[position] == 43  # "+"
        colon = index(b":", position + 1)
        stop = colon + 1 + int(entry[position + 1:colon])
        permission = entry[colon + 1:stop].decode()
        colon = index(b":", stop)
        position = colon + 1 + int(entry[stop:colon])
        changes.append((granted, permission, entry[colon + 1:position].decode()))
    return object_id, changes


class _Pending:
    """The permission writes of one transaction: final sets, and the
    committed sets they replace (checked unchanged at commit)."""

    def __init__(self):
        self.aces: dict = {}       # (object, permission) → frozenset (logged)
        self.ace_base: dict = {}   # (object, permission) → frozenset committed
        self.obj_base: dict = {}   # object → frozenset of its committed permissions
        self.users: dict = {}      # user → frozenset (logged)
        self.user_base: dict = {}  # user → frozenset committed


class RedisPermission(PermissionBase):
    """A :class:`~cliquet.permission.PermissionBase` on Redis sets.

    :param client: a :class:`redis.Redis`.
    :param prefix: prepended to every key (on a Redis Cluster, with a hash
        tag: see :func:`~cliquet.storage.redis_client.tagged_prefix`).
    """

    def __init__(self, client, prefix: str = "cliquet:permission:"):
        self.client = client
        self.prefix = tagged_prefix(client, prefix)
        self._storage = None
        self._commit = client.register_script(COMMIT)
        self._changes = client.register_script(ACL_CHANGES)

    # -- keys ---------------------------------------------------------------------

    def _ace(self, object_id, permission):
        return f"{self.prefix}ace:{_sized(permission)}:{object_id}"

    def _acc(self, permission, principal):
        return f"{self.prefix}acc:{_sized(permission)}:{principal}"

    def _obj(self, object_id):
        return f"{self.prefix}obj:{object_id}"

    def _user(self, user_id):
        return f"{self.prefix}user:{user_id}"

    def _feed(self):
        return [f"{self.prefix}feed:seq", f"{self.prefix}feed:log", f"{self.prefix}feed:epoch"]

    # -- transactions ---------------------------------------------------------------

    def join_transactions(self, storage) -> bool:
        """Join the transactions of a :class:`~cliquet.storage.redis.RedisStorage`
        on the same server and database — on a Redis Cluster, with keys in
        the same hash slot (the same hash tag) — (``True``); otherwise write
        at once (``False``)."""
        from cliquet.storage.redis import RedisStorage

        if not isinstance(storage, RedisStorage) or not same_database(self.client, storage.client):
            return False
        if key_slot(self.client, self.prefix) != key_slot(storage.client, storage.prefix):
            return False
        self._storage = storage
        return True

    def _pending(self) -> _Pending | None:
        """The current transaction's permission writes (``None`` outside one
        or when not joined)."""
        txn = self._storage._txn.get() if self._storage is not None else None
        return txn.part(self, _Pending) if txn is not None else None

    def _write(self, change) -> None:
        """Run ``change(pending, set)``: in the current transaction, or in a
        transaction of its own committed at once (tried again if a set it
        read changed before its commit)."""
        txn = self._storage._txn.get() if self._storage is not None else None
        if txn is not None:
            change(txn.part(self, _Pending), txn.set)
            return
        for _ in range(ATTEMPTS):
            pending, token = _Pending(), Transaction().token
            change(pending, _plain_set)
            commit = Commit(f"{self.prefix}done:{token}", token)
            self.prepare_commit(None, commit, pending)
            if commit.empty:
                return
            try:
                with wrap_errors():
                    out = self._commit(keys=commit.keys, args=commit.args(), client=self.client)
            except BackendError:
                if committed(self.client, commit.keys[0]):
                    return  # the reply was lost, not the commit
                raise
            if out == b"ok":
                return
        raise ConflictError(None, "the permissions kept changing during the write")

    def _load(self, pending, pairs) -> None:
        """Read the committed ACEs of ``(object, permission)`` pairs not yet known."""
        missing = [pair for pair in dict.fromkeys(pairs) if pair not in pending.aces and pair not in pending.ace_base]
        if not missing:
            return
        with wrap_errors():
            pipe = self.client.pipeline(transaction=True)
            for object_id, permission in missing:
                pipe.smembers(self._ace(object_id, permission))
            for pair, members in zip(missing, pipe.execute()):
                pending.ace_base[pair] = frozenset(m.decode() for m in members)

    @staticmethod
    def _current(pending, pair) -> frozenset:
        return pending.aces.get(pair, pending.ace_base.get(pair, frozenset()))

    def prepare_commit(self, txn, commit, pending=None) -> None:
        """Add this transaction's permission writes (and the checks that the
        sets they replace are unchanged) to ``commit``."""
        if pending is None:
            pending = txn.parts.get(id(self))
            if pending is None:
                return
        for (object_id, permission), wanted in pending.aces.items():
            base = pending.ace_base.get((object_id, permission), frozenset())
            if wanted == base:
                continue
            ace = self._ace(object_id, permission)
            commit.check_set(ace, base, f"the {permission} ACE of {object_id} changed")
            gone, new = sorted(base - wanted), sorted(wanted - base)
            if gone:
                commit.op("SREM", ace, *gone)
            if new:
                commit.op("SADD", ace, *new)
            for principal in gone:
                commit.op("SREM", self._acc(permission, principal), object_id)
            for principal in new:
                commit.op("SADD", self._acc(permission, principal), object_id)
            commit.op("SADD" if wanted else "SREM", self._obj(object_id), permission)
        changed = _feed_entries(pending)
        if changed:
            seq, log, epoch = self._feed()
            commit.op("SET", epoch, uuid.uuid4().hex, "NX")
            for i in range(0, len(changed), 1000):
                commit.op("RPUSH", log, *changed[i:i + 1000])
            commit.op("LTRIM", log, -FEED_KEPT, -1)
            commit.op("INCRBY", seq, len(changed))
        for object_id, base in pending.obj_base.items():
            commit.check_set(self._obj(object_id), base, f"the permissions of {object_id} changed")
        for user_id, wanted in pending.users.items():
            base = pending.user_base[user_id]
            if wanted == base:
                continue
            key = self._user(user_id)
            commit.check_set(key, base, f"the principals of {user_id} changed")
            if base - wanted:
                commit.op("SREM", key, *sorted(base - wanted))
            if wanted - base:
                commit.op("SADD", key, *sorted(wanted - base))

    # -- administration -------------------------------------------------------------

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Nothing to create on Redis; checks that the server answers."""
        with wrap_errors():
            self.client.ping()

    def flush(self) -> None:
        """Remove every key of the prefix (and nothing else)."""
        with wrap_errors():
            delete_prefix(self.client, self.prefix)

    def heartbeat(self) -> bool:
        """Return whether the server answers."""
        return heartbeat(self.client)

    # -- user principals ------------------------------------------------------------

    def _change_user(self, user_id, update) -> None:
        def change(pending, set_):
            if user_id not in pending.users:
                if user_id not in pending.user_base:
                    with wrap_errors():
                        pending.user_base[user_id] = frozenset(m.decode() for m in self.client.smembers(
                            self._user(user_id)))
                current = pending.user_base[user_id]
            else:
                current = pending.users[user_id]
            set_(pending.users, user_id, update(current))

        self._write(change)

    def add_user_principal(self, user_id: str, principal: str) -> None:
        """Give ``user_id`` the extra ``principal``."""
        self._change_user(user_id, lambda current: current | {principal})

    def remove_user_principal(self, user_id: str, principal: str) -> None:
        """Take ``principal`` away from ``user_id``."""
        self._change_user(user_id, lambda current: current - {principal})

    def get_user_principals(self, user_id: str) -> set[str]:
        """Return the extra principals of ``user_id``."""
        pending = self._pending()
        if pending is not None and user_id in pending.users:
            return set(pending.users[user_id])
        with wrap_errors():
            return {m.decode() for m in self.client.smembers(self._user(user_id))}

    # -- ACEs -------------------------------------------------------------------------

    def _change_ace(self, object_id, permission, update) -> None:
        pair = (object_id, permission)

        def change(pending, set_):
            self._load(pending, [pair])
            set_(pending.aces, pair, update(self._current(pending, pair)))

        self._write(change)

    def add_principal_to_ace(self, object_id: str, permission: str, principal: str) -> None:
        """Grant ``permission`` on ``object_id`` to ``principal``."""
        self._change_ace(object_id, permission, lambda current: current | {principal})

    def remove_principal_from_ace(self, object_id: str, permission: str, principal: str) -> None:
        """Revoke ``permission`` on ``object_id`` from ``principal``."""
        self._change_ace(object_id, permission, lambda current: current - {principal})

    def get_object_permission_principals(self, object_id: str, permission: str) -> set[str]:
        """Return the principals holding ``permission`` on ``object_id``."""
        pending = self._pending()
        if pending is not None and (object_id, permission) in pending.aces:
            return set(pending.aces[(object_id, permission)])
        with wrap_errors():
            return {m.decode() for m in self.client.smembers(self._ace(object_id, permission))}

    def _read_aces(self, object_id, permissions):
        """``{permission: principals}`` committed, for the given permissions
        (all the object's when ``None``)."""
        with wrap_errors():
            if permissions is None:
                permissions = sorted(m.decode() for m in self.client.smembers(self._obj(object_id)))
            pipe = self.client.pipeline(transaction=True)
            for permission in permissions:
                pipe.smembers(self._ace(object_id, permission))
            members = pipe.execute() if permissions else []
        return {p: {m.decode() for m in who} for p, who in zip(permissions, members) if who}

    def get_object_permissions(self, object_id: str, permissions: Iterable[str] | None = None) -> dict[str, set[str]]:
        """Return ``{permission: principals}`` (only ``permissions`` if given)."""
        wanted = list(permissions) if permissions is not None else None
        if wanted is not None and not wanted:
            return {}
        result = self._read_aces(object_id, wanted)
        pending = self._pending()
        if pending is not None:
            for permission in wanted if wanted is not None else result:  # known for a later write
                pending.ace_base.setdefault((object_id, permission), frozenset(result.get(permission, ())))
            self._overlay(pending, object_id, wanted, result)
        return result

    @staticmethod
    def _overlay(pending, object_id, wanted, result) -> None:
        """Apply the transaction's ACEs of ``object_id`` to ``result``."""
        for (obj, permission), who in pending.aces.items():
            if obj == object_id and (wanted is None or permission in wanted):
                if who:
                    result[permission] = set(who)
                else:
                    result.pop(permission, None)

    def replace_object_permissions(self, object_id: str, permissions: dict[str, Iterable[str]]) -> dict[str, set[str]]:
        """Set the named ACEs to exactly the given principals (atomically);
        return the object's permissions afterwards."""
        wanted = {permission: frozenset(principals) for permission, principals in permissions.items()}
        others: list = []

        def change(pending, set_):
            pairs = [(object_id, p) for p in wanted
                     if (object_id, p) not in pending.aces and (object_id, p) not in pending.ace_base]
            with wrap_errors():  # one round trip: the object's permissions and the ACEs replaced
                pipe = self.client.pipeline(transaction=True)
                pipe.smembers(self._obj(object_id))
                for pair in pairs:
                    pipe.smembers(self._ace(*pair))
                existing, *members = pipe.execute()
            for pair, who in zip(pairs, members):
                pending.ace_base[pair] = frozenset(m.decode() for m in who)
            others[:] = [p for p in (m.decode() for m in existing) if p not in wanted]
            for permission, principals in wanted.items():
                set_(pending.aces, (object_id, permission), principals)

        self._write(change)
        result = {permission: set(who) for permission, who in wanted.items() if who}
        pending = self._pending()
        known = {p: pending.ace_base[(object_id, p)] for p in others
                 if (object_id, p) in pending.ace_base} if pending is not None else {}
        result.update({p: set(who) for p, who in known.items() if who})
        unknown = [p for p in others if p not in known]
        if unknown:  # permissions it did not name, not read before in this transaction
            result.update(self._read_aces(object_id, unknown))
        if pending is not None:
            self._overlay(pending, object_id, None, result)
        return result

    def delete_object_permissions(self, *object_ids: str) -> None:
        """Remove every ACE of the given objects."""
        if not object_ids:
            return

        def change(pending, set_):
            with wrap_errors():
                pipe = self.client.pipeline(transaction=True)
                for object_id in object_ids:
                    pipe.smembers(self._obj(object_id))
                existing = pipe.execute()
            pairs = []
            for object_id, perms in zip(object_ids, existing):
                perms = frozenset(m.decode() for m in perms)
                pending.obj_base.setdefault(object_id, perms)
                pairs += [(object_id, p) for p in perms]
                pairs += [pair for pair in pending.aces if pair[0] == object_id]
            self._load(pending, pairs)
            for pair in dict.fromkeys(pairs):
                set_(pending.aces, pair, frozenset())

        self._write(change)

    def check_permission(self, object_id: str, permission: str, principals: Iterable[str]) -> bool:
        """Return whether any of ``principals`` holds ``permission`` on ``object_id``."""
        principals = list(principals)
        if not principals:
            return False
        pending = self._pending()
        if pending is not None and (object_id, permission) in pending.aces:
            return not pending.aces[(object_id, permission)].isdisjoint(principals)
        with wrap_errors():
            return any(self.client.smismember(self._ace(object_id, permission), principals))

    def get_accessible_objects(self, principals: Iterable[str], permission: str, prefix: str = "") -> set[str]:
        """Return the ids of the objects (starting with ``prefix``) on which
        any of ``principals`` holds ``permission``."""
        principals = list(principals)
        if not principals:
            return set()
        with wrap_errors():
            members = self.client.sunion([self._acc(permission, p) for p in principals])
        objects = {m.decode() for m in members}
        objects = {o for o in objects if o.startswith(prefix)} if prefix else objects
        pending = self._pending()
        if pending is not None:
            for (object_id, perm), who in pending.aces.items():
                if perm == permission and object_id.startswith(prefix):
                    if who.isdisjoint(principals):
                        objects.discard(object_id)
                    else:
                        objects.add(object_id)
        return objects

    def filter_accessible(self, object_ids: Iterable[str], principals: Iterable[str], permission: str) -> set[str]:
        """Return those of ``object_ids`` on which any of ``principals`` holds
        ``permission`` (one round trip; this transaction's writes seen)."""
        object_ids, principals = list(dict.fromkeys(object_ids)), list(principals)
        if not object_ids or not principals:
            return set()
        with wrap_errors():
            pipe = self.client.pipeline(transaction=False)
            for object_id in object_ids:
                pipe.smismember(self._ace(object_id, permission), principals)
            answers = pipe.execute()
        found = {o for o, flags in zip(object_ids, answers) if any(flags)}
        pending = self._pending()
        if pending is not None:
            for object_id in object_ids:
                who = pending.aces.get((object_id, permission))
                if who is not None:
                    (found.discard if who.isdisjoint(principals) else found.add)(object_id)
        return found

    def acl_changes(self, since, principals=None):
        """See :meth:`PermissionBase.acl_changes`: the token is ``(epoch,
        counter)``; the last :data:`FEED_KEPT` changes can be told (one
        round trip). Committed changes only: a transaction's own pending
        ACEs are not in the feed."""
        known_epoch, known_seq = since if isinstance(since, tuple) and len(since) == 2 else ("", -1)
        with wrap_errors():
            epoch, seq, objects = self._changes(keys=self._feed(), args=[known_epoch, known_seq, uuid.uuid4().hex],
                                                client=self.client)
        token = (epoch.decode() if epoch else "", int(seq))
        if since is None or not isinstance(objects, list):
            return token, None
        wanted = None if principals is None else set(principals)
        changed = set()
        for entry in objects:
            parsed = _parse_entry(entry)
            if parsed is None:
                return token, None
            object_id, changes = parsed
            if wanted is None or any(principal in wanted for _, _, principal in changes):
                changed.add(object_id)
        return token, changed

    # -- read scopes kept with the storage's round trip --------------------------------

    def joined_to(self, storage) -> bool:
        """Whether this backend joined the transactions of ``storage`` (see
        :meth:`join_transactions`): then its feed shares the storage's
        server and hash slot, and a list reads both in one script."""
        return self._storage is storage

    def list_keys(self) -> list[str]:
        """The feed's keys, for the storage's list script
        (:data:`cliquet.storage.redis_scripts.LIST`)."""
        return self._feed()

    @staticmethod
    def list_args(token, prefix) -> list:
        """The list script's arguments for read scopes at feed position
        ``token`` (``None``: unknown) on objects under ``prefix``."""
        epoch, seq = token if isinstance(token, tuple) and len(token) == 2 else ("", -1)
        return [epoch, seq, uuid.uuid4().hex, prefix]

    @staticmethod
    def oldest(tokens):
        """The oldest of feed positions ``tokens`` (``None`` when one is
        unknown or of another epoch)."""
        distinct = set(tokens)  # usually one: every scope followed by the same lists
        if not distinct or any(not isinstance(t, tuple) or len(t) != 2 for t in distinct) \
                or len({epoch for epoch, _ in distinct}) != 1:
            return None
        return min(distinct, key=lambda t: t[1])

    def follow_scopes(self, scopes, reply) -> list:
        """Bring ``scopes`` up to date with the feed's part of a list
        script's ``reply`` (the entries since the oldest of their
        positions); return, for each, the record ids whose access may have
        changed (a collection), or ``None`` when it loaded again (every one
        may have).

        The entries are read once for all of them: each change goes to the
        scopes of its principal. An entry a scope already saw is seen again
        harmlessly (the last change of each object decides). Objects whose
        last change for a scope's principals and permissions is a grant are
        readable; those only revoked are checked, for every scope at once
        (one round trip): another permission or principal may still grant
        them."""
        epoch, seq, entries = reply
        if not isinstance(entries, list):
            return [scope.refresh() for scope in scopes]  # the feed cannot tell: load again
        token = (epoch.decode() if epoch else "", int(seq))
        if not entries:  # nothing changed under the prefix (the usual case)
            for scope in scopes:
                scope.token = token
            return [()] * len(scopes)
        mentioned: dict = {}  # principal → [(object, permission, granted?)] in feed order
        for entry in entries:
            parsed = _parse_entry(entry)
            if parsed is None:
                return [scope.refresh() for scope in scopes]
            object_id, changes = parsed
            for granted, permission, principal in changes:
                mentioned.setdefault(principal, []).append((object_id, permission, granted))
        held: dict = {}  # scope index → {object: {(permission, principal): granted?}}
        for i, scope in enumerate(scopes):
            for principal in scope.principals:
                for object_id, permission, granted in mentioned.get(principal, ()):
                    if permission in scope.permissions and object_id.startswith(scope.prefix):
                        held.setdefault(i, {}).setdefault(object_id, {})[(permission, principal)] = granted
        parts, groups = {}, []
        for i, objects in held.items():
            scope = scopes[i]
            readable = {o for o, states in objects.items() if any(states.values())}
            unsure = [o for o in objects if o not in readable]
            parts[i] = (list(objects), readable, unsure)
            if unsure:
                groups.append((unsure, scope.principals, scope.permissions))
        allowed = iter(self._filter_groups(groups) if groups else [])
        results = []
        for i, scope in enumerate(scopes):
            part = parts.get(i)
            if part is not None:
                objects, readable, unsure = part
                if unsure:
                    readable |= next(allowed)
            scope.token = token  # only now: if the check failed, the next list asks again
            results.append(scope.apply(objects, readable) if part is not None else ())
        return results

    def _filter_groups(self, groups) -> list[set[str]]:
        """For each ``(object_ids, principals, permissions)`` of ``groups``,
        those of its objects on which any of its principals holds any of its
        permissions (committed; one round trip for them all)."""
        with wrap_errors():
            pipe = self.client.pipeline(transaction=False)
            for object_ids, principals, permissions in groups:
                if principals:
                    for object_id in object_ids:
                        for permission in permissions:
                            pipe.smismember(self._ace(object_id, permission), list(principals))
            answers = iter(pipe.execute())
        found = []
        for object_ids, principals, permissions in groups:
            allowed = set()
            if principals:
                for object_id in object_ids:
                    if any([any(next(answers)) for _ in permissions]):
                        allowed.add(object_id)
            found.append(allowed)
        return found


def load_from_config(config) -> RedisPermission:
    """Return a :class:`RedisPermission` for ``cliquet.permission_url`` (pool
    from ``cliquet.permission_pool_size``/``permission_pool_timeout``, keys
    prefixed with ``cliquet.permission_prefix``)."""
    from cliquet.settings import Setting, as_str, declare_settings

    declare_settings(config, {"permission_prefix": Setting(
        "cliquet:permission:", as_str, doc="Prefix of every key of the Redis permission backend (never empty).")})
    settings = config.get_settings()
    url = settings.get("cliquet.permission_url") or "redis://127.0.0.1:6379/0"
    client = get_client(url, settings.get("cliquet.permission_pool_size") or 10,
                        settings.get("cliquet.permission_pool_timeout") or 30.0)
    return RedisPermission(client, prefix=settings.get("cliquet.permission_prefix") or "cliquet:permission:")
