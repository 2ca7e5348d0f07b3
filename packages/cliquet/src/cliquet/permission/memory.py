"""Permissions in the memory of the process.

``cliquet.permission_backend = cliquet.permission.memory``

ACEs are kept twice: per object (``object → permission → principals``) for
checks and listings, and per principal (``principal → permission →
objects``) so that :meth:`Permission.get_accessible_objects` costs the size
of its answer, not the size of the store. Thread-safe (one lock); every
returned set is a copy.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterable

from cliquet.permission import PermissionBase

logger = logging.getLogger(__name__)


class Permission(PermissionBase):
    """A :class:`~cliquet.permission.PermissionBase` in dicts of sets."""

    def __init__(self):
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, set[str]]] = {}
        self._by_principal: dict[str, dict[str, set[str]]] = {}
        self._user_principals: dict[str, set[str]] = {}

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
        with self._lock:
            self._user_principals.setdefault(user_id, set()).add(principal)

    def remove_user_principal(self, user_id: str, principal: str) -> None:
        """See :meth:`PermissionBase.remove_user_principal`."""
        with self._lock:
            principals = self._user_principals.get(user_id)
            if principals is not None:
                principals.discard(principal)
                if not principals:
                    del self._user_principals[user_id]

    def get_user_principals(self, user_id: str) -> set[str]:
        """See :meth:`PermissionBase.get_user_principals`."""
        with self._lock:
            return set(self._user_principals.get(user_id, ()))

    # -- ACEs (helpers called with the lock held) -------------------------------

    def _grant(self, object_id, permission, principal):
        self._objects.setdefault(object_id, {}).setdefault(permission, set()).add(principal)
        self._by_principal.setdefault(principal, {}).setdefault(permission, set()).add(object_id)

    def _revoke(self, object_id, permission, principal):
        aces = self._objects.get(object_id)
        principals = aces.get(permission) if aces else None
        if principals is None or principal not in principals:
            return
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
        with self._lock:
            self._grant(object_id, permission, principal)

    def remove_principal_from_ace(self, object_id: str, permission: str, principal: str) -> None:
        """See :meth:`PermissionBase.remove_principal_from_ace`."""
        with self._lock:
            self._revoke(object_id, permission, principal)

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
        with self._lock:
            for permission, principals in wanted.items():
                current = set(self._objects.get(object_id, {}).get(permission, ()))
                for principal in current - principals:
                    self._revoke(object_id, permission, principal)
                for principal in principals - current:
                    self._grant(object_id, permission, principal)
            return self._permissions_of(object_id)

    def delete_object_permissions(self, *object_ids: str) -> None:
        """See :meth:`PermissionBase.delete_object_permissions`."""
        with self._lock:
            for object_id in object_ids:
                for permission, principals in list(self._objects.get(object_id, {}).items()):
                    for principal in list(principals):
                        self._revoke(object_id, permission, principal)

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


def load_from_config(config) -> Permission:
    """Return a new, empty :class:`Permission` (it reads no setting)."""
    return Permission()
