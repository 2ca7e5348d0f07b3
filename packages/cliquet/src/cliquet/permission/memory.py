"""Permissions in the memory of the process.

``cliquet.permission_backend = cliquet.permission.memory``

ACEs are kept twice: per object (``object → permission → principals``) for
checks and listings, and per principal (``principal → permission →
objects``) so that :meth:`Permission.get_accessible_objects` costs the size
of its answer, not the size of the store. Thread-safe (one lock); every
returned set is a copy.

With the memory storage, :meth:`Permission.join_transactions` makes this
backend part of the storage's transactions: it shares the storage's
:class:`~cliquet.storage.memory.Isolation` (its lock and its undo journal),
so the ACEs and user principals written inside ``storage.transaction()``
are seen by no other thread before the transaction ends, and are undone
with the records when it fails. With any other storage its writes apply at
once.
"""

from __future__ import annotations

import collections
import logging
from typing import Iterable

from cliquet.permission import PermissionBase
from cliquet.storage.memory import Isolation, Storage

logger = logging.getLogger(__name__)

#: how many ACE changes :meth:`Permission.acl_changes` can tell about.
CHANGES_KEPT = 10_000


class Permission(PermissionBase):
    """A :class:`~cliquet.permission.PermissionBase` in dicts of sets."""

    def __init__(self):
        #: replaced by the storage's when joined (:meth:`join_transactions`).
        self.isolation = Isolation()
        self._lock = self.isolation.lock
        self._generation = 0
        #: ``(generation, object id, principal)`` of the latest ACE changes (the feed of :meth:`acl_changes`).
        self._changes: collections.deque = collections.deque(maxlen=CHANGES_KEPT)
        #: principal → generation of its latest ACE change: a scope none of
        #: whose principals changed is answered without reading the feed.
        self._latest: dict[str, int] = {}
        self._flushed_at = 0
        self._objects: dict[str, dict[str, set[str]]] = {}
        self._by_principal: dict[str, dict[str, set[str]]] = {}
        self._user_principals: dict[str, set[str]] = {}

    @property
    def generation(self) -> int:
        """A number that changes with every change of an ACE (a grant, a
        revocation, their undoing, a flush) and is never reused: what the
        memory storage keys its cached read checks on."""
        return self._generation

    def join_transactions(self, storage) -> bool:
        """Join the transactions of a memory :class:`~cliquet.storage.memory.Storage`
        (share its lock and journal) and return ``True``; ``False`` for any
        other storage. See :meth:`PermissionBase.join_transactions`."""
        if not isinstance(storage, Storage):
            return False
        with self._lock:
            self.isolation = storage.isolation
            self._lock = storage.isolation.lock
        return True

    def undo(self, changes: list) -> None:
        """Undo journaled changes (given oldest first), newest first."""
        with self._lock:
            for kind, key, permission, value in reversed(changes):
                if kind == "grant":
                    self._revoke(key, permission, value, None)
                elif kind == "revoke":
                    self._grant(key, permission, value, None)
                elif kind == "add_user":
                    principals = self._user_principals.get(key, set())
                    principals.discard(value)
                    if not principals:
                        self._user_principals.pop(key, None)
                else:  # remove_user
                    self._user_principals.setdefault(key, set()).add(value)

    @staticmethod
    def touched_principals(changes: list) -> set[str]:
        """The principals whose ACEs the journaled ``changes`` granted or
        revoked: the read scopes the joined storage follows at a commit."""
        return {value for kind, _, _, value in changes if kind in ("grant", "revoke")}

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Nothing to create in memory."""
        with self._lock:  # fails like a server would when the backend is down
            pass
        logger.info("memory permission: no schema to initialize%s", " (dry run)" if dry_run else "")

    def flush(self) -> None:
        """Forget every ACE and user principal."""
        with self._lock:
            self._objects = {}
            self._by_principal = {}
            self._user_principals = {}
            self._generation += 1
            self._flushed_at = self._generation
            self._changes.clear()
            self._latest = {}

    def heartbeat(self) -> bool:
        """Return ``True`` when the lock can be taken."""
        try:
            with self._lock:
                return True
        except Exception:
            return False

    # -- user principals -------------------------------------------------------

    def add_user_principal(self, user_id: str, principal: str) -> None:
        """See :meth:`PermissionBase.add_user_principal`."""
        journal = self.isolation.journal()
        with self._lock:
            principals = self._user_principals.setdefault(user_id, set())
            if principal not in principals:
                principals.add(principal)
                if journal is not None:
                    journal.append((self, ("add_user", user_id, None, principal)))

    def remove_user_principal(self, user_id: str, principal: str) -> None:
        """See :meth:`PermissionBase.remove_user_principal`."""
        journal = self.isolation.journal()
        with self._lock:
            principals = self._user_principals.get(user_id)
            if principals is not None and principal in principals:
                principals.discard(principal)
                if not principals:
                    del self._user_principals[user_id]
                if journal is not None:
                    journal.append((self, ("remove_user", user_id, None, principal)))

    def get_user_principals(self, user_id: str) -> set[str]:
        """See :meth:`PermissionBase.get_user_principals`."""
        with self._lock:
            return set(self._user_principals.get(user_id, ()))

    # -- ACEs (helpers called with the lock held) -------------------------------

    def _grant(self, object_id, permission, principal, journal):
        principals = self._objects.setdefault(object_id, {}).setdefault(permission, set())
        if principal in principals:
            return
        principals.add(principal)
        self._by_principal.setdefault(principal, {}).setdefault(permission, set()).add(object_id)
        self._generation += 1
        self._changes.append((self._generation, object_id, principal))
        self._latest[principal] = self._generation
        if journal is not None:
            journal.append((self, ("grant", object_id, permission, principal)))

    def _revoke(self, object_id, permission, principal, journal):
        aces = self._objects.get(object_id)
        principals = aces.get(permission) if aces else None
        if principals is None or principal not in principals:
            return
        self._generation += 1
        self._changes.append((self._generation, object_id, principal))
        self._latest[principal] = self._generation
        if journal is not None:
            journal.append((self, ("revoke", object_id, permission, principal)))
        principals.discard(principal)
        if not principals:
            del aces[permission]
            if not aces:
                del self._objects[object_id]
        by_permission = self._by_principal[principal]
        objects = by_permission[permission]
        objects.discard(object_id)
        if not objects:
            del by_permission[permission]
            if not by_permission:
                del self._by_principal[principal]

    def _permissions_of(self, object_id, permissions=None) -> dict[str, set[str]]:
        aces = self._objects.get(object_id, {})
        wanted = aces.keys() if permissions is None else [p for p in permissions if p in aces]
        return {p: set(aces[p]) for p in wanted if aces[p]}

    # -- ACEs -------------------------------------------------------------------

    def add_principal_to_ace(self, object_id: str, permission: str, principal: str) -> None:
        """See :meth:`PermissionBase.add_principal_to_ace`."""
        journal = self.isolation.journal()
        with self._lock:
            self._grant(object_id, permission, principal, journal)

    def remove_principal_from_ace(self, object_id: str, permission: str, principal: str) -> None:
        """See :meth:`PermissionBase.remove_principal_from_ace`."""
        journal = self.isolation.journal()
        with self._lock:
            self._revoke(object_id, permission, principal, journal)

    def get_object_permission_principals(self, object_id: str, permission: str) -> set[str]:
        """See :meth:`PermissionBase.get_object_permission_principals`."""
        with self._lock:
            return set(self._objects.get(object_id, {}).get(permission, ()))

    def get_object_permissions(self, object_id: str, permissions: Iterable[str] | None = None):
        """See :meth:`PermissionBase.get_object_permissions`."""
        if permissions is not None:
            permissions = list(permissions)
        with self._lock:
            return self._permissions_of(object_id, permissions)

    def replace_object_permissions(self, object_id: str, permissions):
        """See :meth:`PermissionBase.replace_object_permissions`."""
        wanted = {permission: set(principals) for permission, principals in permissions.items()}
        journal = self.isolation.journal()
        with self._lock:
            for permission, principals in wanted.items():
                current = set(self._objects.get(object_id, {}).get(permission, ()))
                for principal in current - principals:
                    self._revoke(object_id, permission, principal, journal)
                for principal in principals - current:
                    self._grant(object_id, permission, principal, journal)
            return self._permissions_of(object_id)

    def delete_object_permissions(self, *object_ids: str) -> None:
        """See :meth:`PermissionBase.delete_object_permissions`."""
        journal = self.isolation.journal()
        with self._lock:
            for object_id in object_ids:
                for permission, principals in list(self._objects.get(object_id, {}).items()):
                    for principal in list(principals):
                        self._revoke(object_id, permission, principal, journal)

    def check_permission(self, object_id: str, permission: str, principals: Iterable[str]) -> bool:
        """See :meth:`PermissionBase.check_permission`."""
        with self._lock:
            holders = self._objects.get(object_id, {}).get(permission)
            if not holders:
                return False
            return any(principal in holders for principal in principals)

    def get_accessible_objects(self, principals: Iterable[str], permission: str, prefix: str = "") -> set[str]:
        """See :meth:`PermissionBase.get_accessible_objects`."""
        found: set[str] = set()
        with self._lock:
            for principal in set(principals):
                objects = self._by_principal.get(principal, {}).get(permission)
                if objects:
                    found.update(objects)
        if prefix:
            found = {object_id for object_id in found if object_id.startswith(prefix)}
        return found

    def filter_accessible(self, object_ids: Iterable[str], principals: Iterable[str], permission: str) -> set[str]:
        """See :meth:`PermissionBase.filter_accessible`."""
        principals = set(principals)
        with self._lock:
            found = set()
            for object_id in object_ids:
                holders = self._objects.get(object_id, {}).get(permission)
                if holders and not holders.isdisjoint(principals):
                    found.add(object_id)
            return found

    def acl_changes(self, since, principals=None):
        """See :meth:`PermissionBase.acl_changes`: the generation is the
        token; the last :data:`CHANGES_KEPT` changes are remembered."""
        with self._lock:
            current = self._generation
            if type(since) is not int or since < self._flushed_at or since > current:
                return current, None
            if since == current:
                return current, set()
            if principals is not None:
                latest = self._latest
                if all(latest.get(p, 0) <= since for p in principals):
                    return current, set()
            if not self._changes or self._changes[0][0] > since + 1:
                return current, None
            wanted = None if principals is None else set(principals)
            changed = set()
            for generation, object_id, principal in reversed(self._changes):
                if generation <= since:
                    break
                if wanted is None or principal in wanted:
                    changed.add(object_id)
            return current, changed


def load_from_config(config) -> Permission:
    """Return a new, empty :class:`Permission` (it reads no setting)."""
    return Permission()
