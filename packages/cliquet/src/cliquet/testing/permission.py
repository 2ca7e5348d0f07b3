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
    inherited_allowed = frozenset({"join_transactions", "filter_accessible", "acl_changes"})
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
                ("check_permission", (o, "read", {p})), ("get_accessible_objects", ({p}, "read")),
                ("filter_accessible", ([o], {p}, "read"))]

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


    # -- read scopes: batched checks and the change feed ------------------------------

    def test_filter_accessible(self, backend, root, alice, bob, group):
        objects = [f"{root}/a/{n}" for n in range(4)]
        backend.add_principal_to_ace(objects[0], "read", alice)
        backend.add_principal_to_ace(objects[1], "read", group)
        backend.add_principal_to_ace(objects[2], "write", alice)
        assert backend.filter_accessible(objects, [alice], "read") == {objects[0]}
        assert backend.filter_accessible(iter(objects), {alice, group}, "read") == set(objects[:2])
        assert backend.filter_accessible(objects, [alice], "write") == {objects[2]}
        assert backend.filter_accessible(objects, [bob], "read") == set()
        assert backend.filter_accessible([], [alice], "read") == set()
        assert backend.filter_accessible(objects, [], "read") == set()
        backend.remove_principal_from_ace(objects[0], "read", alice)
        assert backend.filter_accessible(objects, [alice], "read") == set()

    @staticmethod
    def _feed(backend):
        if type(backend).acl_changes is PermissionBase.acl_changes:
            pytest.skip(f"{type(backend).__name__} has no change feed (acl_changes): read scopes load whole")

    def test_acl_changes_feed(self, backend, root, alice, bob):
        self._feed(backend)
        a, b = f"{root}/a", f"{root}/b"
        token, changed = backend.acl_changes(None)
        assert changed is None, "without a token the feed cannot tell: load from scratch"
        token, changed = backend.acl_changes(token)
        assert changed is not None and a not in changed
        backend.add_principal_to_ace(a, "read", alice)
        token, changed = backend.acl_changes(token)
        assert changed is not None and a in changed and b not in changed
        token, changed = backend.acl_changes(token)
        assert changed is not None and a not in changed, "a change is told once its token moved past it"
        backend.add_principal_to_ace(a, "read", alice)  # a no-op changes nothing
        token, changed = backend.acl_changes(token)
        assert a not in changed
        backend.remove_principal_from_ace(a, "read", alice)
        token, changed = backend.acl_changes(token)
        assert a in changed
        backend.replace_object_permissions(b, {"write": [alice, bob]})
        token, changed = backend.acl_changes(token)
        assert b in changed and a not in changed
        backend.delete_object_permissions(b)
        token, changed = backend.acl_changes(token)
        assert b in changed
        backend.add_principal_to_ace(a, "read", bob)
        token_alice, changed = backend.acl_changes(token, [alice])
        assert a not in changed, "a change for bob only is not told to alice"
        token, changed = backend.acl_changes(token, {bob, "x"})
        assert a in changed
        backend.remove_principal_from_ace(a, "read", bob)
        token, changed = backend.acl_changes(token)
        assert a in changed
        backend.add_user_principal(alice, "/groups/g")  # user principals are not ACEs
        token, changed = backend.acl_changes(token)
        assert changed is not None and not {a, b} & changed
        backend.add_principal_to_ace(a, "read", bob)
        backend.flush()
        assert backend.acl_changes(token)[1] is None, "after a flush, the feed cannot tell"

    def test_acl_changes_tell_undone_joined_writes(self, backend, storage, capabilities, root, alice):
        self._feed(backend)
        storage = self._joined(backend, storage, capabilities)
        token, _ = backend.acl_changes(None)
        with pytest.raises(ZeroDivisionError):
            with storage.transaction():
                backend.add_principal_to_ace(f"{root}/a", "read", alice)
                1 / 0
        token, changed = backend.acl_changes(token)
        # an undone write may be told (its undoing is a change) or not (it never committed)
        assert changed is not None
        with storage.transaction():
            backend.add_principal_to_ace(f"{root}/b", "read", alice)
        token, changed = backend.acl_changes(token)
        assert f"{root}/b" in changed

    def test_racing_grants_and_a_read_scope(self, backend, storage, capabilities, root, alice):
        """Writers grant and revoke while a reader keeps a read scope (and,
        with a storage, lists through it): an object stably revoked before
        a refresh is never in it, one stably granted always is. The list
        reads with a second principal too, which can read one record of
        its own throughout: always listed, each record once; once the
        writers stopped, the count is the number of records listed. (While
        they write, the count may come from another snapshot than the page:
        PostgreSQL reads them in two statements under read committed.)"""
        from cliquet.storage import COMPARISON, AccessibleIds, Filter
        from cliquet.storage.views import ReadScope

        if "joins_transactions" in capabilities and storage is not None:
            backend.join_transactions(storage)
        collection = f"c{uuid.uuid4().hex[:8]}"
        prefix = f"{root}/{collection}/"
        writers, rounds = 4, 60
        states = [[0, False] for _ in range(writers)]  # [version (odd: changing), granted?]
        friend = f"{alice}:friend"

        def read_check(*principals):
            return AccessibleIds(principals, ["read"], prefix, source=backend, loader=lambda: {
                o[len(prefix):] for o in backend.get_accessible_objects(principals, "read", prefix=prefix)})

        if storage is not None:
            for n in range(writers):
                storage.create(collection, "", {"id": str(n)})
            storage.create(collection, "", {"id": "kept"})
            backend.add_principal_to_ace(f"{prefix}kept", "read", friend)
            # a grant of the friend's, undone: the friend's view follows the feed too
            backend.add_principal_to_ace(f"{prefix}0", "read", friend)
            backend.remove_principal_from_ace(f"{prefix}0", "read", friend)
        barrier = threading.Barrier(writers + 1)
        stop = threading.Event()
        errors: list = []

        def write(n):
            try:
                barrier.wait()
                for _ in range(rounds):
                    for grant in (True, False):
                        states[n][0] += 1
                        if grant:
                            backend.add_principal_to_ace(f"{prefix}{n}", "read", alice)
                        else:
                            backend.remove_principal_from_ace(f"{prefix}{n}", "read", alice)
                        states[n][1] = grant
                        states[n][0] += 1
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=write, args=(n,), daemon=True) for n in range(writers)]
        for thread in threads:
            thread.start()
        scope = ReadScope(read_check(alice))
        barrier.wait()
        checked = 0
        while any(t.is_alive() for t in threads) and checked < 2000:
            before = [tuple(state) for state in states]
            scope.refresh()
            seen = set(scope.ids)
            listed = None
            if storage is not None:
                records, _ = storage.get_all(collection, "",
                                             [Filter("id", read_check(alice, friend), COMPARISON.IN)])
                listed = {r["id"] for r in records}
                assert "kept" in listed and len(records) == len(listed), records
                listed.discard("kept")
            after = [tuple(state) for state in states]
            for n, (old, new) in enumerate(zip(before, after)):
                if old == new and old[0] % 2 == 0 and old[0] > 0:
                    where = "read scope" if (str(n) in seen) != old[1] else None
                    if where is None and listed is not None and (str(n) in listed) != old[1]:
                        where = "list"
                    assert where is None, (
                        f"object {n} {'granted' if old[1] else 'revoked'} before the {where} was read, "
                        f"which shows it {'absent' if old[1] else 'present'}")
                    checked += 1
        stop.set()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        scope.refresh()
        assert scope.ids == set(), "every object ends revoked"
        if storage is not None:
            assert storage.get_all(collection, "", [Filter("id", read_check(alice), COMPARISON.IN)]) == ([], 0)
            records, total = storage.get_all(collection, "",
                                             [Filter("id", read_check(alice, friend), COMPARISON.IN)])
            assert [r["id"] for r in records] == ["kept"] and total == 1

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
