"""The contract suite of permission backends: :class:`PermissionContract`.

Usage, in a backend's test module::

    from cliquet.testing import make_config
    from cliquet.testing.permission import PermissionContract

    class TestMyPermission(PermissionContract):
        @pytest.fixture
        def backend(self, redis_url):
            return mypermission.load_from_config(make_config(permission_url=redis_url))

Every test uses its own object ids (under a ``/t<uuid>/`` prefix) and
principals, so the suite runs on a shared server; ``flush()`` is exercised,
so give each pytest-xdist worker its own database, schema or key prefix.

Semantics encoded here, beyond :class:`~cliquet.permission.PermissionBase`:

* getters return new ``set`` objects (``dict`` of sets for
  ``get_object_permissions``); mutating them changes nothing stored;
* adding what is there, and removing or deleting what is not, are no-ops;
* an ACE emptied by removals or by ``replace_object_permissions(..., [])``
  no longer appears in ``get_object_permissions``;
* ``check_permission`` and ``get_accessible_objects`` take any iterable of
  principals (a set, a list, a generator), and an empty one grants nothing;
* ``get_accessible_objects`` matches ``prefix`` as a plain string prefix.

Capability ``"joins_transactions"`` (declared by default): with the
``storage`` fixture — a storage backend on the same engine and database —
:meth:`~cliquet.permission.PermissionBase.join_transactions` answers
``True``, and from then on the permission writes made inside
``storage.transaction()`` are seen by the transaction itself at once, by
others only once it commits, and undone with it. A backend that cannot join
anything does not declare it.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from cliquet.permission import PermissionBase
from cliquet.testing.contract import BackendContract


class PermissionContract(BackendContract):
    """Tests every :class:`~cliquet.permission.PermissionBase` must pass."""

    base_class = PermissionBase
    inherited_allowed = frozenset({"join_transactions"})
    all_capabilities = frozenset({"joins_transactions"})

    @pytest.fixture
    def storage(self):
        """A storage backend this one can join (``"joins_transactions"``)."""
        return None

    @pytest.fixture
    def root(self):
        """An object-id prefix no other test uses."""
        return f"/t{uuid.uuid4().hex}"

    @pytest.fixture
    def alice(self):
        return f"basicauth:alice-{uuid.uuid4().hex}"

    @pytest.fixture
    def bob(self):
        return f"basicauth:bob-{uuid.uuid4().hex}"

    @pytest.fixture
    def group(self):
        return f"/groups/g-{uuid.uuid4().hex}"

    def failing_calls(self):
        o, u, p = f"/t{uuid.uuid4().hex}", f"u{uuid.uuid4().hex}", f"p{uuid.uuid4().hex}"
        return [("initialize_schema", ()), ("flush", ()), ("add_user_principal", (u, p)),
                ("remove_user_principal", (u, p)), ("get_user_principals", (u,)),
                ("add_principal_to_ace", (o, "read", p)), ("remove_principal_from_ace", (o, "read", p)),
                ("get_object_permission_principals", (o, "read")), ("get_object_permissions", (o,)),
                ("replace_object_permissions", (o, {"read": [p]})), ("delete_object_permissions", (o,)),
                ("check_permission", (o, "read", {p})), ("get_accessible_objects", ({p}, "read"))]

    # -- user principals ------------------------------------------------------------

    def test_user_principals(self, backend, alice, bob, group):
        assert backend.get_user_principals(alice) == set()
        backend.add_user_principal(alice, group)
        backend.add_user_principal(alice, group)
        backend.add_user_principal(alice, "system.Everyone")
        assert backend.get_user_principals(alice) == {group, "system.Everyone"}
        assert backend.get_user_principals(bob) == set()
        backend.remove_user_principal(alice, group)
        backend.remove_user_principal(alice, group)
        backend.remove_user_principal(bob, group)
        assert backend.get_user_principals(alice) == {"system.Everyone"}
        backend.remove_user_principal(alice, "system.Everyone")
        assert backend.get_user_principals(alice) == set()

    def test_user_principals_are_copies(self, backend, alice, group):
        backend.add_user_principal(alice, group)
        principals = backend.get_user_principals(alice)
        assert isinstance(principals, set)
        principals.add("intruder")
        assert backend.get_user_principals(alice) == {group}

    # -- ACEs ------------------------------------------------------------------------

    def test_add_and_remove_principals(self, backend, root, alice, bob):
        obj = f"{root}/articles/1"
        assert backend.get_object_permission_principals(obj, "read") == set()
        backend.add_principal_to_ace(obj, "read", alice)
        backend.add_principal_to_ace(obj, "read", alice)
        backend.add_principal_to_ace(obj, "read", bob)
        backend.add_principal_to_ace(obj, "write", alice)
        assert backend.get_object_permission_principals(obj, "read") == {alice, bob}
        assert backend.get_object_permission_principals(obj, "write") == {alice}
        backend.remove_principal_from_ace(obj, "read", alice)
        backend.remove_principal_from_ace(obj, "read", alice)
        backend.remove_principal_from_ace(obj, "delete", alice)
        backend.remove_principal_from_ace(f"{root}/unknown", "read", alice)
        assert backend.get_object_permission_principals(obj, "read") == {bob}
        assert backend.get_object_permission_principals(obj, "write") == {alice}

    def test_objects_are_independent(self, backend, root, alice):
        backend.add_principal_to_ace(f"{root}/a", "read", alice)
        assert backend.get_object_permission_principals(f"{root}/b", "read") == set()
        assert backend.get_object_permission_principals(f"{root}/a/sub", "read") == set()

    def test_get_object_permissions(self, backend, root, alice, bob):
        obj = f"{root}/articles/é"
        assert backend.get_object_permissions(obj) == {}
        backend.add_principal_to_ace(obj, "read", alice)
        backend.add_principal_to_ace(obj, "read", bob)
        backend.add_principal_to_ace(obj, "write", bob)
        backend.add_principal_to_ace(obj, "delete", alice)
        backend.remove_principal_from_ace(obj, "delete", alice)
        assert backend.get_object_permissions(obj) == {"read": {alice, bob}, "write": {bob}}
        assert backend.get_object_permissions(obj, ["write", "delete", "unknown"]) == {"write": {bob}}
        assert backend.get_object_permissions(obj, iter(["read"])) == {"read": {alice, bob}}
        assert backend.get_object_permissions(obj, []) == {}

    def test_returned_permissions_are_copies(self, backend, root, alice):
        obj = f"{root}/x"
        backend.add_principal_to_ace(obj, "read", alice)
        backend.get_object_permissions(obj)["read"].add("intruder")
        backend.get_object_permission_principals(obj, "read").add("intruder")
        assert backend.get_object_permissions(obj) == {"read": {alice}}

    def test_replace_object_permissions(self, backend, root, alice, bob, group):
        obj = f"{root}/articles/2"
        backend.add_principal_to_ace(obj, "read", alice)
        backend.add_principal_to_ace(obj, "write", alice)
        backend.add_principal_to_ace(obj, "delete", bob)
        result = backend.replace_object_permissions(obj, {"read": [bob, group], "write": []})
        assert result == {"read": {bob, group}, "delete": {bob}}
        assert backend.get_object_permissions(obj) == result
        assert backend.check_permission(obj, "read", {alice}) is False
        assert backend.get_accessible_objects([alice], "write", prefix=root) == set()
        assert backend.get_accessible_objects([group], "read", prefix=root) == {obj}

    def test_replace_on_a_new_object(self, backend, root, alice):
        obj = f"{root}/new"
        assert backend.replace_object_permissions(obj, {"read": (alice,)}) == {"read": {alice}}
        assert backend.replace_object_permissions(obj, {}) == {"read": {alice}}
        assert backend.replace_object_permissions(obj, {"read": set()}) == {}

    def test_delete_object_permissions(self, backend, root, alice):
        objs = [f"{root}/{n}" for n in range(3)]
        for obj in objs:
            backend.add_principal_to_ace(obj, "read", alice)
            backend.add_principal_to_ace(obj, "write", alice)
        backend.delete_object_permissions(objs[0], objs[1], f"{root}/unknown")
        backend.delete_object_permissions()
        assert backend.get_object_permissions(objs[0]) == {}
        assert backend.get_object_permissions(objs[1]) == {}
        assert backend.get_object_permissions(objs[2]) == {"read": {alice}, "write": {alice}}
        assert backend.get_accessible_objects([alice], "read", prefix=root) == {objs[2]}

    # -- checks ----------------------------------------------------------------------

    def test_check_permission(self, backend, root, alice, bob, group):
        obj = f"{root}/articles/3"
        backend.add_principal_to_ace(obj, "write", group)
        backend.add_principal_to_ace(obj, "read", alice)
        assert backend.check_permission(obj, "write", {bob, group}) is True
        assert backend.check_permission(obj, "write", [alice]) is False
        assert backend.check_permission(obj, "read", (p for p in [bob, alice])) is True
        assert backend.check_permission(obj, "read", set()) is False
        assert backend.check_permission(obj, "delete", {alice, group}) is False
        assert backend.check_permission(f"{root}/other", "read", {alice}) is False

    def test_get_accessible_objects(self, backend, root, alice, bob, group):
        articles = [f"{root}/articles/{n}" for n in range(3)]
        backend.add_principal_to_ace(articles[0], "read", alice)
        backend.add_principal_to_ace(articles[1], "read", group)
        backend.add_principal_to_ace(articles[2], "write", alice)
        backend.add_principal_to_ace(f"{root}/notes/1", "read", alice)
        assert backend.get_accessible_objects([alice], "read") >= {articles[0], f"{root}/notes/1"}
        assert backend.get_accessible_objects([alice], "read", prefix=root) == {articles[0], f"{root}/notes/1"}
        assert backend.get_accessible_objects({alice, group}, "read", prefix=f"{root}/articles/") == set(
            articles[:2])
        assert backend.get_accessible_objects(iter([alice]), "write", prefix=root) == {articles[2]}
        assert backend.get_accessible_objects([bob], "read", prefix=root) == set()
        assert backend.get_accessible_objects([], "read", prefix=root) == set()
        backend.remove_principal_from_ace(articles[0], "read", alice)
        assert backend.get_accessible_objects([alice], "read", prefix=root) == {f"{root}/notes/1"}

    def test_flush(self, backend, root, alice, group):
        backend.add_principal_to_ace(f"{root}/a", "read", alice)
        backend.add_user_principal(alice, group)
        backend.flush()
        assert backend.get_object_permissions(f"{root}/a") == {}
        assert backend.get_user_principals(alice) == set()
        assert backend.get_accessible_objects([alice], "read", prefix=root) == set()


    # -- joined transactions -----------------------------------------------------------

    def _joined(self, backend, storage, capabilities):
        self.require(capabilities, "joins_transactions")
        assert storage is not None, (
            "'joins_transactions' is declared: provide a `storage` fixture (a storage backend on the same "
            "engine and database), or do not declare the capability")
        assert backend.join_transactions(storage) is True
        return storage

    def test_joined_writes_are_undone_with_the_storage_transaction(self, backend, storage, capabilities, root,
                                                                   alice, bob, group):
        storage = self._joined(backend, storage, capabilities)
        backend.add_principal_to_ace(f"{root}/kept", "read", alice)
        backend.add_user_principal(bob, group)
        before = {"kept": backend.get_object_permissions(f"{root}/kept"), "a": {}, "b": {},
                  "bob": backend.get_user_principals(bob)}
        seen_outside: dict = {}

        def look():
            seen_outside.update(kept=backend.get_object_permissions(f"{root}/kept"),
                                a=backend.get_object_permissions(f"{root}/a"),
                                b=backend.get_object_permissions(f"{root}/b"),
                                bob=backend.get_user_principals(bob))

        with pytest.raises(ZeroDivisionError):
            with storage.transaction():
                backend.add_principal_to_ace(f"{root}/a", "read", alice)
                backend.replace_object_permissions(f"{root}/b", {"write": [alice, bob]})
                backend.delete_object_permissions(f"{root}/kept")
                backend.remove_user_principal(bob, group)
                # The transaction sees its own writes...
                assert backend.check_permission(f"{root}/a", "read", [alice])
                assert backend.get_object_permissions(f"{root}/b") == {"write": {alice, bob}}
                assert backend.get_object_permissions(f"{root}/kept") == {}
                assert backend.get_user_principals(bob) == set()
                # ...others don't, until it commits (or they wait for it).
                outside = threading.Thread(target=look, daemon=True)
                outside.start()
                outside.join(1.0)
                if not outside.is_alive():
                    assert seen_outside == before, "another thread saw uncommitted permission writes"
                1 / 0
        outside.join(30)
        assert seen_outside == before
        after = {"kept": backend.get_object_permissions(f"{root}/kept"), "a": backend.get_object_permissions(f"{root}/a"),
                 "b": backend.get_object_permissions(f"{root}/b"), "bob": backend.get_user_principals(bob)}
        assert after == before, "permission writes survived the rollback of the storage transaction"

    def test_joined_writes_commit_with_the_storage_transaction(self, backend, storage, capabilities, root, alice):
        storage = self._joined(backend, storage, capabilities)
        with storage.transaction():
            backend.add_principal_to_ace(f"{root}/a", "read", alice)
            with pytest.raises(ZeroDivisionError):
                with storage.transaction():  # a nested block undoes only its own writes
                    backend.add_principal_to_ace(f"{root}/b", "read", alice)
                    1 / 0
        assert backend.get_accessible_objects([alice], "read", prefix=f"{root}/") == {f"{root}/a"}
