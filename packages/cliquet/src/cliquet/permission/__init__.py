"""Permissions: who may do what on which object.

A permission backend is a module with ``load_from_config(config)`` returning
an instance of :class:`PermissionBase`, picked with
``cliquet.permission_backend``.

Vocabulary:

* a *principal* is a string naming someone or a group of people: a user id
  (``basicauth:2b7e…``), ``system.Authenticated``, ``system.Everyone``, a group;
* an *object id* is the URI of what is protected (``/articles/42``);
* an *ACE* (access control entry) is the set of principals holding one
  permission (``read``, ``write``, …) on one object;
* *user principals* are the extra principals a user carries (group
  memberships), added to the ones derived from the request.

Checked by :mod:`cliquet.testing.permission`.
"""

from __future__ import annotations

from typing import Iterable


class PermissionBase:
    """The permission API. Every method must be implemented by a backend."""

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Create whatever the backend needs. Idempotent."""
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

    def join_transactions(self, storage) -> bool:
        """Make this backend's writes part of ``storage``'s transactions.

        Called once at start-up with the storage backend. A backend that can
        write in the same atomic unit as ``storage`` (same engine, same
        database) arranges it and returns ``True``: from then on, the writes
        made inside ``storage.transaction()`` are committed or undone with
        the records, and are seen by other requests only once committed.
        Otherwise it returns ``False`` and its writes apply immediately (see
        ``docs/consistency.rst``). The default cannot join anything.
        """
        return False

    def flush(self) -> None:
        """Remove every ACE and user principal. For tests."""
        raise NotImplementedError

    def heartbeat(self) -> bool:
        """Return ``True`` when the backend answers; never raises."""
        raise NotImplementedError

    def add_user_principal(self, user_id: str, principal: str) -> None:
        """Give ``user_id`` the extra ``principal`` (e.g. a group)."""
        raise NotImplementedError

    def remove_user_principal(self, user_id: str, principal: str) -> None:
        """Take ``principal`` away from ``user_id`` (no error if absent)."""
        raise NotImplementedError

    def get_user_principals(self, user_id: str) -> set[str]:
        """Return the extra principals of ``user_id`` (an empty set if none)."""
        raise NotImplementedError

    def add_principal_to_ace(self, object_id: str, permission: str, principal: str) -> None:
        """Grant ``permission`` on ``object_id`` to ``principal``."""
        raise NotImplementedError

    def remove_principal_from_ace(self, object_id: str, permission: str, principal: str) -> None:
        """Revoke ``permission`` on ``object_id`` from ``principal`` (no error if absent)."""
        raise NotImplementedError

    def get_object_permission_principals(self, object_id: str, permission: str) -> set[str]:
        """Return the principals holding ``permission`` on ``object_id``."""
        raise NotImplementedError

    def get_object_permissions(self, object_id: str, permissions: Iterable[str] | None = None) -> dict[str, set[str]]:
        """Return ``{permission: principals}`` for ``object_id``.

        :param permissions: only these permissions (all if ``None``); empty
            ACEs are left out.
        """
        raise NotImplementedError

    def replace_object_permissions(self, object_id: str, permissions: dict[str, Iterable[str]]) -> dict[str, set[str]]:
        """Set the ACEs named in ``permissions`` to exactly these principals.

        Permissions not named are left as they are; an empty list clears one.
        :returns: the object's permissions afterwards.
        """
        raise NotImplementedError

    def delete_object_permissions(self, *object_ids: str) -> None:
        """Remove every ACE of the given objects."""
        raise NotImplementedError

    def check_permission(self, object_id: str, permission: str, principals: Iterable[str]) -> bool:
        """Return whether any of ``principals`` holds ``permission`` on ``object_id``."""
        raise NotImplementedError

    def get_accessible_objects(self, principals: Iterable[str], permission: str, prefix: str = "") -> set[str]:
        """Return the ids of the objects (starting with ``prefix``) on which any of
        ``principals`` holds ``permission``."""
        raise NotImplementedError

    def filter_accessible(self, object_ids: Iterable[str], principals: Iterable[str], permission: str) -> set[str]:
        """Return those of ``object_ids`` on which any of ``principals`` holds
        ``permission``: the read check of a few objects at once.

        The default asks :meth:`check_permission` for each; a backend on a
        server answers in one round trip.

        .. versionadded:: 3.2
        """
        principals = list(principals)
        return {o for o in object_ids if self.check_permission(o, permission, principals)}

    def acl_changes(self, since, principals: Iterable[str] | None = None) -> tuple[object, set[str] | None]:
        """The change feed of the ACEs: ``(token, objects)``.

        ``objects`` are the ids of the objects whose ACEs changed (grants,
        revocations, their undoing) for any of ``principals`` (for anyone
        when ``None``: a backend may also tell objects changed for others)
        since ``since``, a token this method
        returned before: every change committed before the call is
        in it (a change made after ``since`` was returned may be given
        again later; a change never goes missing). ``objects`` is ``None``
        when the backend cannot tell — ``since`` is ``None``, too old, or
        from before a :meth:`flush` — and the caller must then load what
        it needs from scratch. ``token`` is the position to ask from next.

        What keeps read scopes up to date without rebuilding them
        (:class:`cliquet.storage.views.ReadScope`). The default has no
        feed: always ``(None, None)``.

        .. versionadded:: 3.2
        """
        return None, None
