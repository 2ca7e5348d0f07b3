"""Shareable resources: records that carry permissions.

A request body may have ``permissions`` beside ``data``::

    {"data": {"title": "Draft"},
     "permissions": {"read": ["system.Authenticated"], "write": ["basicauth:4b1d…"]}}

and every record response returns them. Rules:

* the creator is always in ``write``, whoever replaces the permissions
  (their id is kept under the internal ``creator`` permission, which no
  body can set); ``write`` implies ``read``;
* ``PATCH`` with ``permissions`` replaces the permissions it names and leaves
  the others; ``PUT`` replaces them all; the caller always keeps ``write``;
* only those who may write a record see its ``permissions``; a reader gets
  ``"permissions": {}`` (an ACL names other users and groups);
* principals are user ids (as ``user.id`` in the hello view),
  ``system.Authenticated``, ``system.Everyone`` and groups (user principals
  from the permission backend).

Who may do what on the whole collection comes from settings:
``cliquet.<name>_create_principals`` (default ``system.Authenticated``),
``cliquet.<name>_read_principals`` and ``cliquet.<name>_write_principals``
(default nobody). Denied: 401 errno 104 when anonymous; 403 errno 121 when
authenticated (also for a record the caller may not read at all: ids are
random, so a 403 reveals nothing worth hiding).

Permissions are kept by the permission backend, under the record's URI
(``/articles/<id>``). Lists only return records the caller may read: the
read check is a filter of the list query, so filters, sorting, pagination
and ``Total-Records`` stay exact.
"""

from __future__ import annotations

from pyramid import httpexceptions

from cliquet.authentication import AUTHENTICATED, EVERYONE
from cliquet.errors import ERRORS, http_error, raise_invalid
from cliquet.resource.base import UserResource
from cliquet.settings import Setting, as_list, declare_settings
from cliquet.storage import COMPARISON, AccessibleIds, Filter

PERMISSIONS = ("read", "write")
#: the internal permission that remembers who created a record (never shown).
CREATOR = "creator"
#: the storage scope of every shareable record (they are not per-user).
SHARED_PARENT_ID = ""


def declare_resource_settings(config, name):
    """Declare ``<name>_create_principals`` and friends for a shareable resource."""
    declare_settings(config, {
        f"{name}_create_principals": Setting(AUTHENTICATED, as_list,
                                             doc=f"Who may create {name} records."),
        f"{name}_read_principals": Setting("", as_list, doc=f"Who may read every {name} record."),
        f"{name}_write_principals": Setting("", as_list, doc=f"Who may write every {name} record."),
    })


def validate_permissions(value):
    """Return ``{"read": [...], "write": [...]}`` or raise a 400 with details."""
    if not isinstance(value, dict):
        raise_invalid("body", "permissions", "Must be an object of permission: [principals]")
    for permission, principals in value.items():
        if permission not in PERMISSIONS:
            raise_invalid("body", f"permissions.{permission}",
                          f"Unknown permission (one of {', '.join(PERMISSIONS)})")
        if not isinstance(principals, list) or not all(isinstance(p, str) and p for p in principals):
            raise_invalid("body", f"permissions.{permission}", "Must be a list of principals (strings)")
    return value


class ShareableResource(UserResource):
    """A resource whose records are shared through per-record permissions."""

    body_members = frozenset({"data", "permissions"})

    def get_parent_id(self):
        """Shareable records all live in one scope."""
        return SHARED_PARENT_ID

    # -- helpers -------------------------------------------------------------

    def object_uri(self, record_id):
        """The permission object id of a record (``/articles/<id>``)."""
        return f"{self.collection_path}/{record_id}"

    def _principals(self):
        return self.request.principals

    def _collection_principals(self, permission):
        return self.registry.settings.get(f"cliquet.{self.name}_{permission}_principals") or []

    def _has_collection(self, permission):
        allowed = self._collection_principals(permission)
        return bool(allowed) and not set(allowed).isdisjoint(self._principals())

    def _deny(self):
        if self.request.authenticated_userid is None:
            from cliquet.views.errors import unauthorized

            raise unauthorized(self.request)
        raise http_error(httpexceptions.HTTPForbidden(), errno=ERRORS.FORBIDDEN,
                         message="This user cannot access this resource.")

    def _record_permissions(self, record_id):
        if getattr(self, "_permissions_cache", None) is None:
            self._permissions_cache = {}
        if record_id not in self._permissions_cache:
            backend, uri = self.registry.permission, self.object_uri(record_id)
            # A backend that can read the user's principals with the ACL does
            # (one round trip instead of two: request.principals finds them).
            both = getattr(backend, "get_object_permissions_and_user_principals", None)
            # (no request: a resource made by a command, e.g. reindex)
            userid = self.request.authenticated_userid if self.request is not None else None
            if both is not None and userid is not None:
                self._permissions_cache[record_id] = both(uri, (*PERMISSIONS, CREATOR), userid)[0]
            else:
                self._permissions_cache[record_id] = backend.get_object_permissions(uri, (*PERMISSIONS, CREATOR))
        return self._permissions_cache[record_id]

    def _may(self, permission, record_id):
        if self._has_collection(permission) or (permission == "read" and self._has_collection("write")):
            return True
        acl = self._record_permissions(record_id)
        allowed = set(acl.get("write", ()))
        if permission == "read":
            allowed |= acl.get("read", set())
        return not allowed.isdisjoint(self._principals())

    # -- hooks ---------------------------------------------------------------

    def authorize_collection(self, permission):
        """Lists and deletes are filtered per record; creating needs a principal
        of ``<name>_create_principals``; anonymous lists need ``system.Everyone``
        to be a collection reader."""
        if permission == "create":
            if not self._has_collection("create") and not self._has_collection("write"):
                self._deny()
        elif self.request.authenticated_userid is None and not self._has_collection(permission):
            self._deny()

    def authorize_record(self, permission, record):
        """Check the record's permissions (a missing record needs ``create``)."""
        if record is None:
            if permission == "write" and self.request.method == "PUT":
                self.authorize_collection("create")
            elif self.request.authenticated_userid is None:
                self._deny()
            return
        if not self._may(permission, record[self.model.id_field]):
            self._deny()

    def list_filters(self, permission="read"):
        """Restrict to the records the caller may read (or write): an ``IN``
        filter whose value is an :class:`~cliquet.storage.AccessibleIds`, so
        that backends may turn it into a join.

        Nothing is cached across requests here: a per-process cache keyed
        by the collection timestamp served revoked readers (the record
        write moves the timestamp before the permissions change, and a
        rolled-back write may leave a timestamp that is used again). The
        ids are loaded at most once per list, when the storage needs them;
        the memory storage caches its read checks on a version the memory
        permission backend keeps itself."""
        if self._has_collection(permission) or (permission == "read" and self._has_collection("write")):
            return []
        wanted = ("read", "write") if permission == "read" else ("write",)
        prefix = f"{self.collection_path}/"
        principals = self._principals()
        permission_backend = self.registry.permission

        def load():
            ids = set()
            for perm in wanted:
                uris = permission_backend.get_accessible_objects(principals, perm, prefix=prefix)
                ids.update(uri[len(prefix):] for uri in uris)
            return ids

        accessible = AccessibleIds(principals, wanted, prefix, loader=load, source=permission_backend)
        return [Filter(self.model.id_field, accessible, COMPARISON.IN)]

    def permissions_changed(self, existing):
        """Whether the body carries permissions different from the stored ones."""
        wanted = getattr(self, "body", {}).get("permissions")
        if wanted is None:
            return False
        current = self._record_permissions(existing[self.model.id_field])
        return any(set(wanted.get(p, current.get(p, set()))) != set(current.get(p, set())) for p in PERMISSIONS)

    def process_record(self, new, old=None):
        """A record created without an id gets its id here, and its
        permissions are stored *before* the record: on a backend whose
        writes are not one transaction (Redis), a crash between the two
        writes leaves at most permissions on a record that does not exist,
        never a record that its creator cannot reach."""
        new = super().process_record(new, old)
        id_field = self.model.id_field
        if old is None and id_field not in new:
            new[id_field] = self.model.id_generator()
            self.after_write(new, replace=True)
            self._permissions_first = new[id_field]
        return new

    def after_write(self, record, existing=None, replace=False):
        """Store the permissions of the body; the caller and the creator keep
        ``write`` (a record created here remembers its creator). When an
        existing record's permissions would stay as they are (a ``PATCH`` of
        ``data`` alone, say) nothing is written: no statement while the
        write holds its collection's timestamp."""
        record_id = record[self.model.id_field]
        if existing is None and getattr(self, "_permissions_first", None) == record_id:
            return  # stored by process_record
        given = getattr(self, "body", {}).get("permissions")
        if given is not None:
            validate_permissions(given)
        userid = self.request.authenticated_userid
        if existing is None:
            wanted = {p: set(given.get(p, ())) if given else set() for p in PERMISSIONS}
            wanted[CREATOR] = {userid} if userid is not None else set()
        else:
            current = self._record_permissions(record_id)
            if replace:
                wanted = {p: set(given.get(p, ())) if given else set() for p in PERMISSIONS}
            else:
                wanted = {p: set(given[p]) if given and p in given else set(current.get(p, ()))
                          for p in PERMISSIONS}
            wanted["write"] |= set(current.get(CREATOR, ()))
        if userid is not None:
            wanted["write"].add(userid)
        if existing is not None and all(wanted[p] == set(current.get(p, ())) for p in wanted):
            return  # the ACL already says so: nothing to write (nor to re-read)
        self._permissions_cache = {record_id: self.registry.permission.replace_object_permissions(
            self.object_uri(record_id), {p: sorted(v) for p, v in wanted.items()})}

    def record_body(self, record):
        """``data`` and ``permissions`` (``write`` principals also read);
        ``permissions`` is ``{}`` for a caller who may not write the record."""
        if record.get(self.model.deleted_field):
            return {"data": record}
        if not self._may("write", record[self.model.id_field]):
            return {"data": record, "permissions": {}}
        acl = self._record_permissions(record[self.model.id_field])
        write = sorted(acl.get("write", ()))
        read = sorted(set(acl.get("read", ())) | set(write))
        return {"data": record, "permissions": {"read": read, "write": write}}

    def read_principals(self, record):
        """Readers and writers of the record, and the collection's readers."""
        acl = self._record_permissions(record[self.model.id_field])
        principals = set(acl.get("read", ())) | set(acl.get("write", ()))
        principals |= set(self._collection_principals("read")) | set(self._collection_principals("write"))
        return sorted(principals)

    def _body_data(self, required=True):
        data = super()._body_data(required)
        if "permissions" in self.body:
            validate_permissions(self.body["permissions"])
        return data

    @classmethod
    def on_register(cls, config):
        """Declare the collection-wide principal settings of this resource."""
        declare_resource_settings(config, cls.name)


__all__ = ["ShareableResource", "EVERYONE", "AUTHENTICATED"]
