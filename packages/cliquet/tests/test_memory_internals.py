"""What the contract suites cannot see of the memory backends: the query
cache, the journal of transactions, the expiry sweep, the query helpers."""

import threading
import time

import pytest

from cliquet.cache import memory as memory_cache
from cliquet.storage import COMPARISON, Filter, Sort
from cliquet.storage import memory as memory_storage
from cliquet.storage import query as q


@pytest.fixture
def storage():
    return memory_storage.Storage(query_cache_size=2, query_cache_records=5)


def test_query_cache_is_bounded(storage):
    for n in range(4):
        storage.create("c", "p", {"n": n})
    for n in range(4):
        assert storage.get_all("c", "p", filters=[Filter("n", n, COMPARISON.MIN)])[1] == 4 - n
    assert len(storage._cache) <= 2 and storage._cache_records <= 5


def test_query_cache_hits_and_invalidation(storage):
    storage.create("c", "p", {"n": 1})
    first = storage.get_all("c", "p", sorting=[Sort("n", 1)])
    assert storage.get_all("c", "p", sorting=[Sort("n", 1)]) == first
    assert len(storage._cache) == 1
    storage.create("c", "p", {"n": 0})
    records, total = storage.get_all("c", "p", sorting=[Sort("n", 1)])
    assert [r["n"] for r in records] == [0, 1] and total == 2


def test_unhashable_filter_values_skip_the_cache(storage):
    storage.create("c", "p", {"n": 1})
    assert storage.get_all("c", "p", filters=[Filter("n", {1}, COMPARISON.IN)]) == (
        storage.get_all("c", "p")[0], 1)
    assert len(storage._cache) == 1  # only the second query was cached


def test_typed_filter_values_do_not_share_cache_entries(storage):
    storage.create("c", "p", {"n": 1})
    assert storage.get_all("c", "p", filters=[Filter("n", 1, COMPARISON.EQ)])[1] == 1
    assert storage.get_all("c", "p", filters=[Filter("n", True, COMPARISON.EQ)])[1] == 0


def test_since_walk_stops_at_the_bound():
    storage = memory_storage.Storage()
    records = [storage.create("c", "p", {"n": n}) for n in range(100)]
    bucket = storage._buckets[("c", "p")]
    candidates = storage._candidates(bucket.records, records[97]["last_modified"], True)
    assert [r["n"] for r in candidates] == [98, 99]
    candidates = storage._candidates(bucket.records, records[97]["last_modified"], False)
    assert [r["n"] for r in candidates] == [97, 98, 99]
    bound = storage._since_bound([Filter("last_modified", 5, COMPARISON.MIN),
                                  Filter("last_modified", 5, COMPARISON.GT),
                                  Filter("last_modified", True, COMPARISON.GT)])
    assert bound == (5, True)


def test_rollback_keeps_timestamp_order_and_newer_foreign_writes():
    storage = memory_storage.Storage()
    a = storage.create("c", "p", {"n": "a"})
    storage.create("c", "p", {"n": "b"})
    with pytest.raises(RuntimeError):
        with storage.transaction():
            storage.update("c", "p", a["id"], {"n": "a2"})
            storage.purge_deleted("c", "p")
            storage.delete("c", "p", a["id"])
            storage.purge_deleted("c", "p")
            raise RuntimeError()
    records, _ = storage.get_all("c", "p", sorting=[Sort("last_modified", 1)])
    assert [r["n"] for r in records] == ["a", "b"]
    bucket = storage._buckets[("c", "p")]
    stamps = [r["last_modified"] for r in bucket.records.values()]
    assert stamps == sorted(stamps) and bucket.timestamp >= stamps[-1]
    assert storage.create("c", "p", {"n": "c"})["last_modified"] > stamps[-1]


def test_rollback_of_a_new_collection():
    storage = memory_storage.Storage()
    with pytest.raises(KeyError):
        with storage.transaction():
            storage.create("new", "p", {"n": 1})
            raise KeyError()
    assert storage.get_all("new", "p") == ([], 0)
    stamp = storage.collection_timestamp("new", "p")
    assert storage.collection_timestamp("new", "p") == stamp


def test_id_generator_default_and_non_json_input():
    storage = memory_storage.Storage()
    assert len(storage.create("c", "p", {})["id"]) == 36
    with pytest.raises(TypeError):
        storage.create("c", "p", {"bad": object()})


def test_cache_sweeps_expired_keys():
    server = memory_cache.MemoryServer()
    server.sweep_at = 4
    cache = memory_cache.Cache(prefix="x:", server=server)
    for n in range(3):
        cache.set(f"old{n}", n, ttl=0.01)
    time.sleep(0.03)
    cache.set("fresh", 1)
    assert set(server.data) == {"x:fresh"}
    assert server.sweep_at >= 1024


def test_cache_refuses_non_json_values():
    with pytest.raises(TypeError):
        memory_cache.Cache().set("k", object())


def test_load_from_config_reads_the_prefix():
    from cliquet.testing import make_config
    cache = memory_cache.load_from_config(make_config(cache_prefix="svc:"))
    cache.set("k", 1)
    assert list(cache.server.data) == ["svc:k"]


# -- query helpers --------------------------------------------------------------


class _Int(int):
    pass


class _Str(str):
    pass


@pytest.mark.parametrize("value,rank", [
    (_Int(3), q.RANK_NUMBER), (_Str("a"), q.RANK_STRING), (q.MISSING, q.RANK_MISSING),
    ((1, 2), q.RANK_ARRAY), (object(), q.RANK_OTHER), (None, q.RANK_MISSING),
])
def test_json_rank(value, rank):
    assert q.json_rank(value) == rank


def test_sort_components_of_unusual_values():
    assert q.sort_component(_Int(3)) == (q.RANK_NUMBER, 3)
    assert q.sort_component(_Str("a")) == (q.RANK_STRING, "a")
    assert q.sort_component(True) == (q.RANK_BOOL, True)
    assert q.sort_component({"b": 1, "a": 2}) == (q.RANK_OBJECT, b'{"a":2,"b":1}')
    assert q.sort_component(object())[0] == q.RANK_OTHER


def test_container_filters():
    records = [{"v": [1, 2]}, {"v": [True, 2]}, {"v": {"a": [1]}}, {"v": 1}]
    match = q.compile_filters([Filter("v", [1, 2], COMPARISON.EQ)])
    assert [match(r) for r in records] == [True, False, False, False]
    match = q.compile_filters([Filter("v", [[1, 2], {"a": [1]}], COMPARISON.IN)])
    assert [match(r) for r in records] == [True, False, True, False]
    match = q.compile_filters([Filter("v", [1], COMPARISON.LT)])
    assert not any(match(r) for r in records)
    match = q.compile_filters([Filter("v", 1, COMPARISON.IN)])
    assert [match(r) for r in records] == [False, False, False, True]


def test_unknown_operator_and_bad_after():
    with pytest.raises(ValueError):
        q.value_test("weird", 1)
    with pytest.raises(ValueError):
        q.after_key([1, 2], [Sort("a", 1)])


def test_freeze_keeps_types():
    assert q.freeze([1, {"a": True}]) != q.freeze([True, {"a": 1}])
    assert hash(q.freeze({"b": [1], "a": None}))


def test_record_key_matches_after_key():
    sorting = [Sort("a.b", 1), Sort("id", -1)]
    record = {"id": "x", "a": {"b": 2}}
    assert q.record_key(record, sorting) == q.after_key([2, "x"], sorting)
    assert q.record_key({"id": "y"}, sorting) == q.after_key([None, "y"], sorting)


# -- transactions: isolation, and permissions joined to the storage ------------


from cliquet.permission import memory as memory_permission  # noqa: E402
from cliquet.storage import AccessibleIds  # noqa: E402


@pytest.fixture
def joined():
    storage = memory_storage.Storage()
    permission = memory_permission.Permission()
    assert permission.join_transactions(storage) is True
    return storage, permission


def test_only_a_memory_storage_can_be_joined():
    assert memory_permission.Permission().join_transactions(object()) is False


def test_joined_permission_writes_are_undone_with_the_records(joined):
    storage, permission = joined
    permission.add_principal_to_ace("/a/1", "read", "kept")
    permission.add_user_principal("bob", "group:kept")
    with pytest.raises(RuntimeError):
        with storage.transaction():
            storage.create("c", "p", {"id": "1"})
            permission.add_principal_to_ace("/a/1", "read", "kept")  # already there: not undone
            permission.replace_object_permissions("/a/1", {"read": ["new"], "write": ["w"]})
            permission.add_user_principal("bob", "group:new")
            permission.remove_user_principal("bob", "group:kept")
            permission.delete_object_permissions("/a/2")
            raise RuntimeError()
    assert storage.get_all("c", "p") == ([], 0)
    assert permission.get_object_permissions("/a/1") == {"read": {"kept"}}
    assert permission.get_accessible_objects(["new", "w"], "read") == set()
    assert permission.get_user_principals("bob") == {"group:kept"}


def test_a_nested_block_undoes_only_its_own_permission_writes(joined):
    storage, permission = joined
    with storage.transaction():
        permission.add_principal_to_ace("/a/1", "read", "outer")
        with pytest.raises(KeyError):
            with storage.transaction():
                permission.add_principal_to_ace("/a/1", "read", "inner")
                permission.remove_principal_from_ace("/a/1", "read", "outer")
                raise KeyError()
        assert permission.get_object_permissions("/a/1") == {"read": {"outer"}}
        with storage.transaction():
            permission.add_principal_to_ace("/a/1", "write", "kept")
    assert permission.get_object_permissions("/a/1") == {"read": {"outer"}, "write": {"kept"}}


def test_an_unjoined_permission_backend_writes_at_once():
    storage = memory_storage.Storage()
    permission = memory_permission.Permission()
    with pytest.raises(RuntimeError):
        with storage.transaction():
            permission.add_principal_to_ace("/a/1", "read", "x")
            raise RuntimeError()
    assert permission.get_object_permissions("/a/1") == {"read": {"x"}}


def _in_thread(target):
    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_a_transaction_is_isolated_from_other_threads(joined):
    """Another thread neither sees an open transaction's writes nor writes
    in the middle of it (a rollback then restored its own state over them,
    and rewound the collection timestamp)."""
    storage, permission = joined
    record = storage.create("c", "p", {"v": "committed"})
    written, seen = threading.Event(), {}

    def other_thread():
        written.wait(5)
        seen["read"] = storage.get("c", "p", record["id"])["v"]
        seen["acl"] = permission.get_object_permissions("/a/1")
        seen["write"] = storage.update("c", "p", record["id"], {"v": "other"})

    thread = _in_thread(other_thread)
    with pytest.raises(RuntimeError):
        with storage.transaction():
            storage.update("c", "p", record["id"], {"v": "uncommitted"})
            permission.add_principal_to_ace("/a/1", "read", "x")
            written.set()
            time.sleep(0.1)  # the other thread waits meanwhile
            assert "read" not in seen
            raise RuntimeError()
    thread.join(5)
    assert seen["read"] == "committed" and seen["acl"] == {}
    assert storage.get("c", "p", record["id"])["v"] == "other"
    assert storage.collection_timestamp("c", "p") == seen["write"]["last_modified"] > record["last_modified"]


def test_a_read_check_is_cached_on_the_permission_generation(joined):
    storage, permission = joined
    for n in range(3):
        storage.create("c", "p", {"id": str(n)})
        permission.add_principal_to_ace(f"/c/{n}", "read", "bob")
    loads = []

    def accessible():
        def load():
            loads.append(1)
            return {uri[3:] for uri in permission.get_accessible_objects(["bob"], "read", prefix="/c/")}
        return AccessibleIds(["bob"], ["read"], "/c/", loader=load, source=permission)

    def listed():
        return sorted(r["id"] for r in storage.get_all("c", "p", [Filter("id", accessible(), COMPARISON.IN)])[0])

    assert listed() == ["0", "1", "2"] and listed() == ["0", "1", "2"]
    assert len(loads) == 0  # a view keeps the read scope itself, from the permission backend's feed
    generation = permission.generation
    permission.remove_principal_from_ace("/c/1", "read", "bob")  # no record write
    assert permission.generation != generation
    assert listed() == ["0", "2"]
    with pytest.raises(RuntimeError):
        with storage.transaction():
            permission.add_principal_to_ace("/c/1", "read", "bob")
            assert listed() == ["0", "1", "2"]
            raise RuntimeError()
    assert listed() == ["0", "2"]  # the undo moved the generation too


def test_a_read_check_from_an_unjoined_backend_is_never_cached():
    storage = memory_storage.Storage()
    permission = memory_permission.Permission()
    storage.create("c", "p", {"id": "1"})
    permission.add_principal_to_ace("/c/1", "read", "bob")

    def listed():
        ids = AccessibleIds(["bob"], ["read"], "/c/", version=1, source=permission, loader=lambda: {
            uri[3:] for uri in permission.get_accessible_objects(["bob"], "read", prefix="/c/")})
        return storage.get_all("c", "p", [Filter("id", ids, COMPARISON.IN)])[1]

    assert listed() == 1
    permission.remove_principal_from_ace("/c/1", "read", "bob")
    assert listed() == 0


def test_accessible_ids_without_a_version_are_never_equal():
    one = AccessibleIds(["a"], ["read"], "/x/", loader=set)
    assert one == one and one != AccessibleIds(["a"], ["read"], "/x/", loader=set)
    assert AccessibleIds(["a"], ["read"], "/x/", 7, set) == AccessibleIds(["a"], ["read"], "/x/", 7, set)


def _bob_can_read(permission):
    def load():
        return {uri[3:] for uri in permission.get_accessible_objects(["bob"], "read", prefix="/c/")}
    return AccessibleIds(["bob"], ["read"], "/c/", loader=load, source=permission)


def _bob_lists(storage, permission):
    records, total = storage.get_all("c", "p", [Filter("id", _bob_can_read(permission), COMPARISON.IN)])
    return sorted(r["id"] for r in records), total


def _scoped_views(storage):
    return [view for view in storage._buckets[("c", "p")].views.values() if view.scope is not None]


def test_a_commit_brings_the_joined_read_scopes_up_to_date(joined):
    """The writer's commit applies the ACEs it changed to the views of the
    collections it wrote in: the next list asks the feed and finds nothing."""
    storage, permission = joined
    storage.create("c", "p", {"id": "0"})
    permission.add_principal_to_ace("/c/0", "read", "bob")
    assert _bob_lists(storage, permission) == (["0"], 1)
    (view,) = _scoped_views(storage)
    with storage.transaction():
        permission.add_principal_to_ace("/c/1", "read", "bob")
        storage.create("c", "p", {"id": "1"})
        permission.remove_principal_from_ace("/c/0", "read", "bob")  # after the record write
        assert view.scope.token != permission.generation  # not before the commit
    assert view.scope.token == permission.generation
    assert [r["id"] for r in view.records] == ["1"] and view.total == 1
    asked = []
    feed = permission.acl_changes
    permission.acl_changes = lambda since, principals=None: asked.append(feed(since, principals)) or asked[-1]
    assert _bob_lists(storage, permission) == (["1"], 1)
    assert asked == [(permission.generation, set())]


def test_a_commit_follows_only_the_scopes_of_the_principals_it_touched(joined):
    storage, permission = joined
    storage.create("c", "p", {"id": "0"})
    permission.add_principal_to_ace("/c/0", "read", "bob")
    assert _bob_lists(storage, permission) == (["0"], 1)
    (view,) = _scoped_views(storage)
    token = view.scope.token
    with storage.transaction():
        permission.add_principal_to_ace("/c/1", "read", "alice")
        storage.create("c", "p", {"id": "1"})
    assert view.scope.token == token  # alice's grant is not bob's business
    permission.add_principal_to_ace("/c/1", "read", "bob")  # outside a transaction: left to the list
    with storage.transaction():
        storage.update("c", "p", "0", {"n": 1})
    assert view.scope.token == token
    assert _bob_lists(storage, permission) == (["0", "1"], 2)
    assert view.scope.token == permission.generation


def test_an_undone_transaction_follows_nothing_and_a_list_stays_right(joined):
    storage, permission = joined
    storage.create("c", "p", {"id": "0"})
    permission.add_principal_to_ace("/c/0", "read", "bob")
    assert _bob_lists(storage, permission) == (["0"], 1)
    with pytest.raises(RuntimeError):
        with storage.transaction():
            storage.create("c", "p", {"id": "1"})
            permission.add_principal_to_ace("/c/1", "read", "bob")
            permission.remove_principal_from_ace("/c/0", "read", "bob")
            raise RuntimeError()
    assert _bob_lists(storage, permission) == (["0"], 1)


def test_a_scope_of_an_unjoined_backend_is_followed_by_lists_only():
    storage = memory_storage.Storage()
    permission = memory_permission.Permission()
    storage.create("c", "p", {"id": "0"})
    assert _bob_lists(storage, permission) == ([], 0)
    (view,) = _scoped_views(storage)
    token = view.scope.token
    with storage.transaction():
        permission.add_principal_to_ace("/c/1", "read", "bob")
        storage.create("c", "p", {"id": "1"})
    assert view.scope.token == token and view.total == 0  # no call to another backend at commit
    assert _bob_lists(storage, permission) == (["1"], 1)


def test_a_failing_follow_drops_the_views_and_keeps_the_commit(joined, monkeypatch):
    storage, permission = joined
    storage.create("c", "p", {"id": "0"})
    assert _bob_lists(storage, permission) == ([], 0)

    def broken(since, principals=None):
        raise RuntimeError("feed down")

    with storage.transaction():
        permission.add_principal_to_ace("/c/1", "read", "bob")
        storage.create("c", "p", {"id": "1"})
        monkeypatch.setattr(permission, "acl_changes", broken)
    assert _scoped_views(storage) == []
    monkeypatch.undo()
    assert _bob_lists(storage, permission) == (["1"], 1)


def test_the_feed_answers_principals_left_untouched_even_when_it_is_full():
    """``acl_changes`` tells "nothing changed for these principals" from the
    generation of each principal's latest change, without the feed: even a
    token older than the changes it keeps; a touched principal still gets
    ``None`` then (the feed cannot tell which objects)."""
    permission = memory_permission.Permission()
    permission._changes = memory_permission.collections.deque(maxlen=3)
    permission.add_principal_to_ace("/c/0", "read", "bob")
    token, _ = permission.acl_changes(None)
    for n in range(5):
        permission.add_principal_to_ace(f"/c/{n}", "read", "alice")
    assert permission.acl_changes(token, ["bob", "carol"]) == (permission.generation, set())
    assert permission.acl_changes(token, ["bob", "alice"])[1] is None
    assert permission.acl_changes(token)[1] is None
    recent, _ = permission.acl_changes(None)
    permission.remove_principal_from_ace("/c/0", "read", "bob")
    assert permission.acl_changes(recent, ["bob"]) == (permission.generation, {"/c/0"})
    permission.flush()
    assert permission.acl_changes(recent, ["carol"])[1] is None  # a flush: the feed cannot tell


def test_racing_transactions_that_share_and_a_list(joined):
    """Writer threads grant or revoke bob's read and write the record in one
    transaction (their commits follow the read scopes), another shares with
    someone else, while bob lists: a record stably revoked is never listed,
    one stably granted always is."""
    storage, permission = joined
    writers, rounds = 3, 60
    states = [[0, False] for _ in range(writers)]  # [version (odd: changing), granted?]
    for n in range(writers):
        storage.create("c", "p", {"id": str(n)})
    stop, errors = threading.Event(), []

    def share(n):
        try:
            for round_ in range(rounds):
                for grant in (True, False):
                    states[n][0] += 1
                    with storage.transaction():
                        if grant:
                            permission.add_principal_to_ace(f"/c/{n}", "read", "bob")
                        else:
                            permission.remove_principal_from_ace(f"/c/{n}", "read", "bob")
                        storage.update("c", "p", str(n), {"round": round_})
                    states[n][1] = grant
                    states[n][0] += 1
                    time.sleep(0.001)  # a stable state for the reader to see
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def others():
        n = 0
        while not stop.is_set():
            with storage.transaction():
                permission.add_principal_to_ace(f"/c/o{n}", "read", "alice")
                storage.create("c", "p", {"id": f"o{n}"})
            n += 1
            time.sleep(0.0005)

    threads = [_in_thread(lambda n=n: share(n)) for n in range(writers)] + [_in_thread(others)]
    checked = 0
    while any(t.is_alive() for t in threads[:writers]):
        before = [tuple(state) for state in states]
        listed = set(_bob_lists(storage, permission)[0])
        after = [tuple(state) for state in states]
        for n, (old, new) in enumerate(zip(before, after)):
            if old == new and old[0] % 2 == 0 and old[0] > 0:
                assert (str(n) in listed) == old[1], f"record {n}, {'granted' if old[1] else 'revoked'}: {listed}"
                checked += 1
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert checked > 0
    assert _bob_lists(storage, permission) == ([], 0)
