"""A list on Redis with the permission backend joined to the storage: the
collection and the read scope are brought up to date by one script
(:data:`cliquet.storage.redis_scripts.LIST`), grants learnt from the feed
alone, revocations checked — on the real server of ``ci/services``.
"""

from __future__ import annotations

import pytest

from cliquet.testing.plugin import require_module, service_url

require_module("redis", reason="the `redis` extra is not installed")

from cliquet.permission import redis as redis_permission  # noqa: E402
from cliquet.storage import COMPARISON, AccessibleIds, Filter, Sort  # noqa: E402
from cliquet.storage import redis as redis_storage  # noqa: E402
from cliquet.testing import make_config  # noqa: E402

PREFIX = "/buckets/b:1/articles/"
#: principals with colons and non-ASCII characters: the feed's lengths are in bytes
ALICE = "fxa:ålice:1"
BOB = "fxa:bob"
EVERYONE = "system.Authenticated"


class Joined:
    """A reader (storage and permission joined, as an app server has them)
    and a writer (another app server's backends on the same keys), with
    counters of the reader's round trips."""

    def __init__(self, redis_url, prefix):
        config = make_config(storage_url=redis_url, permission_url=redis_url,
                             storage_prefix=f"{prefix}s:", permission_prefix=f"{prefix}p:")
        self.storage = redis_storage.load_from_config(config)
        self.permission = redis_permission.load_from_config(config)
        assert self.permission.join_transactions(self.storage)
        self.writer = redis_storage.RedisStorage(self.storage.client, prefix=self.storage.prefix)
        self.grants = redis_permission.RedisPermission(self.storage.client, prefix=self.permission.prefix)
        assert self.grants.join_transactions(self.writer)
        self.storage.flush()
        self.permission.flush()
        self.scripts: list = []
        self.checks: list = []
        self.loads: list = []
        run, check = self.storage._run, self.permission._filter_groups
        load = self.permission.get_accessible_objects
        self.permission.get_accessible_objects = lambda *a, **k: (self.loads.append(a[1]), load(*a, **k))[1]
        self.storage._run = lambda name, keys, args: (self.scripts.append(name), run(name, keys, args))[1]
        self.permission._filter_groups = lambda groups: (  # one round trip: the objects it checks
            self.checks.append(sorted(o for objects, _, _ in groups for o in objects)), check(groups))[1]

    def read_check(self, principals) -> AccessibleIds:
        """The read check of ``principals``, as the shareable resource builds it."""
        principals = tuple(principals)

        def loader():
            return {o[len(PREFIX):] for p in ("read", "write")
                    for o in self.permission.get_accessible_objects(principals, p, prefix=PREFIX)}

        return AccessibleIds(principals, ("read", "write"), PREFIX, loader=loader, source=self.permission)

    def listed(self, principals) -> list[str]:
        """The ids ``principals`` may read, as the shareable resource lists them."""
        value = self.read_check(principals)
        self.scripts.clear()
        self.checks.clear()
        self.loads.clear()
        records, total = self.storage.get_all("articles", "b:1", filters=[Filter("id", value, COMPARISON.IN)],
                                              sorting=[Sort("id", 1)])
        assert total == len(records)
        return [r["id"] for r in records]

    def changed_since(self, principals, since) -> list[str]:
        """The ids ``principals`` may read among the records (and tombstones)
        changed since ``since``, as a ``_since`` list asks for them."""
        value = self.read_check(principals)
        self.loads.clear()
        records, _ = self.storage.get_all("articles", "b:1", filters=[
            Filter("id", value, COMPARISON.IN), Filter("last_modified", since, COMPARISON.GT)],
            sorting=[Sort("id", 1)], include_deleted=True)
        return [r["id"] for r in records]

    def close(self):
        self.storage.flush()
        self.permission.flush()


@pytest.fixture(params=["server", "cluster"])
def joined(request, cliquet_worker_prefix):
    """The backends on the Redis server, then on the Redis Cluster (keys in one slot)."""
    url = request.getfixturevalue("redis_url") if request.param == "server" else service_url(
        "CLIQUET_TEST_REDIS_CLUSTER_URL")
    setup = Joined(url, f"{cliquet_worker_prefix}scope:")
    yield setup
    setup.close()


@pytest.mark.services
def test_a_kept_list_takes_one_round_trip_and_learns_grants_from_the_feed(joined):
    for record_id in "abcd":
        joined.writer.create("articles", "b:1", {"id": record_id})
    joined.grants.add_principal_to_ace(PREFIX + "a", "read", ALICE)
    joined.grants.add_principal_to_ace(PREFIX + "b", "read", BOB)
    joined.grants.add_principal_to_ace(PREFIX + "c", "read", EVERYONE)
    reader = (ALICE, EVERYONE)
    assert joined.listed(reader) == ["a", "c"]  # builds the view: the general path
    assert joined.listed(reader) == ["a", "c"]
    assert joined.scripts == ["list"] and joined.checks == [] and joined.loads == [], "nothing changed: one round trip"

    joined.grants.add_principal_to_ace(PREFIX + "b", "write", ALICE)
    joined.grants.add_principal_to_ace(PREFIX + "d", "creator", ALICE)  # not a read permission
    joined.grants.add_principal_to_ace(PREFIX + "d", "read", BOB)  # not the reader's principal
    assert joined.listed(reader) == ["a", "b", "c"]
    assert joined.scripts == ["list"] and joined.checks == [], "grants are known from the feed alone"

    with joined.writer.transaction():  # a record and its permissions, committed together
        joined.writer.create("articles", "b:1", {"id": "e"})
        joined.grants.replace_object_permissions(PREFIX + "e", {"read": [EVERYONE], "write": [BOB]})
    joined.writer.delete("articles", "b:1", "c")
    assert joined.listed(reader) == ["a", "b", "e"]
    assert joined.scripts == ["list"] and joined.checks == []


@pytest.mark.services
def test_a_revocation_is_seen_by_the_next_list_even_with_another_grant_left(joined):
    for record_id in "abc":
        joined.writer.create("articles", "b:1", {"id": record_id})
    joined.grants.replace_object_permissions(PREFIX + "a", {"read": [ALICE], "write": [ALICE]})
    joined.grants.add_principal_to_ace(PREFIX + "b", "read", EVERYONE)
    joined.grants.add_principal_to_ace(PREFIX + "b", "read", ALICE)
    joined.grants.add_principal_to_ace(PREFIX + "c", "read", ALICE)
    reader = (ALICE, EVERYONE)
    assert joined.listed(reader) == ["a", "b", "c"]

    joined.grants.remove_principal_from_ace(PREFIX + "a", "read", ALICE)  # write is left
    joined.grants.remove_principal_from_ace(PREFIX + "b", "read", EVERYONE)  # alice's read is left
    joined.grants.remove_principal_from_ace(PREFIX + "c", "read", ALICE)  # nothing is left
    assert joined.listed(reader) == ["a", "b"]
    assert joined.scripts == ["list"]
    assert joined.checks == [[PREFIX + "a", PREFIX + "b", PREFIX + "c"]], "revoked objects are checked, once"

    joined.grants.remove_principal_from_ace(PREFIX + "a", "write", ALICE)
    assert joined.listed(reader) == ["b"]
    joined.grants.add_principal_to_ace(PREFIX + "c", "read", ALICE)
    joined.grants.remove_principal_from_ace(PREFIX + "c", "read", ALICE)
    joined.grants.add_principal_to_ace(PREFIX + "c", "write", ALICE)
    assert joined.listed(reader) == ["b", "c"]
    assert joined.checks == [], "a grant last: readable without a check"
    joined.grants.add_principal_to_ace(PREFIX + "a", "read", EVERYONE)
    joined.grants.add_principal_to_ace(PREFIX + "a", "read", ALICE)
    joined.grants.remove_principal_from_ace(PREFIX + "a", "read", EVERYONE)
    assert joined.listed(reader) == ["a", "b", "c"]
    assert joined.checks == [[PREFIX + "a"]], "each principal's view checks its own revocations"
    joined.grants.remove_principal_from_ace(PREFIX + "a", "read", ALICE)
    joined.grants.delete_object_permissions(PREFIX + "b", PREFIX + "c")
    assert joined.listed(reader) == []


@pytest.mark.services
def test_readers_who_share_a_principal_share_its_view(joined):
    """A list is served by one view per principal of its read check, kept
    by the process for every reader with that principal: a record shared
    with everyone is taken in once, each reader's page merges its views,
    and a record readable through two of them is listed and counted once."""
    for record_id in "abcdef":
        joined.writer.create("articles", "b:1", {"id": record_id})
    joined.grants.add_principal_to_ace(PREFIX + "a", "read", ALICE)
    joined.grants.add_principal_to_ace(PREFIX + "b", "read", BOB)
    joined.grants.add_principal_to_ace(PREFIX + "c", "read", EVERYONE)
    joined.grants.add_principal_to_ace(PREFIX + "d", "read", ALICE)
    joined.grants.add_principal_to_ace(PREFIX + "d", "write", EVERYONE)
    joined.grants.add_principal_to_ace(PREFIX + "e", "write", BOB)
    alice, bob = (ALICE, EVERYONE), (BOB, EVERYONE)
    assert joined.listed(alice) == ["a", "c", "d"]  # `listed` checks the count: d once
    assert joined.listed(bob) == ["b", "c", "d", "e"]
    (snapshot,) = joined.storage._snapshots.values()
    assert len(snapshot.views) == 3, "one view per principal: alice's, bob's, everyone's"

    with joined.writer.transaction():
        joined.writer.create("articles", "b:1", {"id": "g"})
        joined.grants.replace_object_permissions(PREFIX + "g", {"read": [EVERYONE]})
    joined.grants.remove_principal_from_ace(PREFIX + "d", "read", ALICE)  # everyone's write is left
    assert joined.listed(bob) == ["b", "c", "d", "e", "g"]
    assert joined.scripts == ["list"], "one round trip brings every view of the process up to date"
    assert joined.listed(alice) == ["a", "c", "d", "g"]
    assert joined.scripts == ["list"] and joined.checks == [], "bob's list already checked d"
    assert len(snapshot.views) == 3

    pages, after = [], None
    while True:  # page by page, the way a client follows continuation tokens
        records, total = joined.storage.get_all(
            "articles", "b:1", filters=[Filter("id", joined.read_check(alice), COMPARISON.IN)],
            sorting=[Sort("id", 1)], limit=1, after=after)
        if not records:
            break
        assert total == 4
        pages.append(records[0]["id"])
        after = [records[0]["id"]]
    assert pages == ["a", "c", "d", "g"]


@pytest.mark.services
def test_readers_racing_writers_keep_their_shared_views_right(joined):
    """Reader threads sharing a principal list at the same time as a writer
    creates, shares, unshares and deletes records: no list fails or lists a
    record twice, and once the writer stops every reader lists exactly what
    it may read, counted right (the views, their union counts and their
    feed position were kept consistent under the race)."""
    import random
    import threading

    readers = [(ALICE, EVERYONE), (BOB, EVERYONE), ("fxa:carol", EVERYONE)]
    for n in range(12):
        joined.writer.create("articles", "b:1", {"id": f"r{n}"})
        joined.grants.add_principal_to_ace(PREFIX + f"r{n}", "read", readers[n % 3][0])
    for reader in readers:
        joined.listed(reader)
    stop, errors = threading.Event(), []

    def read(reader):
        try:
            while not stop.is_set():
                records, total = joined.storage.get_all(
                    "articles", "b:1", filters=[Filter("id", joined.read_check(reader), COMPARISON.IN)],
                    sorting=[Sort("id", 1)], limit=5)
                ids = [r["id"] for r in records]
                assert len(ids) == len(set(ids)) and total >= len(ids), (ids, total)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=read, args=(reader,), daemon=True) for reader in readers for _ in range(2)]
    for thread in threads:
        thread.start()
    rng = random.Random(7)
    try:
        for step in range(150):
            record_id = f"r{rng.randrange(20)}"
            action = rng.random()
            with joined.writer.transaction():
                if action < 0.4:
                    joined.writer.update("articles", "b:1", record_id, {"n": step})
                    joined.grants.add_principal_to_ace(PREFIX + record_id, "read", rng.choice(readers)[0])
                elif action < 0.6:
                    joined.writer.update("articles", "b:1", record_id, {"n": step})
                    joined.grants.add_principal_to_ace(PREFIX + record_id, "read", EVERYONE)
                elif action < 0.8:
                    joined.grants.remove_principal_from_ace(PREFIX + record_id, "read", EVERYONE)
                elif action < 0.9:
                    joined.grants.delete_object_permissions(PREFIX + record_id)
                else:
                    try:
                        joined.writer.delete("articles", "b:1", record_id)
                    except Exception:  # noqa: BLE001 - not there: nothing to delete
                        pass
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not errors, errors
    existing = {r["id"] for r in joined.writer.get_all("articles", "b:1")[0]}
    for reader in readers:
        readable = {o[len(PREFIX):] for p in ("read", "write")
                    for o in joined.grants.get_accessible_objects(reader, p, prefix=PREFIX)}
        assert joined.listed(reader) == sorted(readable & existing), reader  # `listed` checks the count


@pytest.mark.services
def test_a_caller_in_many_groups_is_served_by_one_view(joined):
    """Beyond SHARED_PRINCIPALS_MOST principals, a read check is kept as one
    view of them all: a caller in many groups does not make each list build
    a view per group (and evict the views of others)."""
    groups = tuple(f"group:{n}" for n in range(redis_storage.SHARED_PRINCIPALS_MOST + 1))
    for record_id in "ab":
        joined.writer.create("articles", "b:1", {"id": record_id})
    joined.grants.add_principal_to_ace(PREFIX + "a", "read", groups[-1])
    assert joined.listed((ALICE, *groups)) == ["a"]
    (snapshot,) = joined.storage._snapshots.values()
    assert len(snapshot.views) == 1
    joined.grants.add_principal_to_ace(PREFIX + "b", "write", groups[0])
    assert joined.listed((ALICE, *groups)) == ["a", "b"]
    assert joined.scripts == ["list"] and len(snapshot.views) == 1


@pytest.mark.services
def test_a_principal_that_begins_another_is_told_apart(joined):
    """The script finds a principal by its size and name, as entries spell
    it: a change for ``fxa:bob10`` is not one for ``fxa:bob``."""
    for record_id in "ab":
        joined.writer.create("articles", "b:1", {"id": record_id})
    joined.grants.add_principal_to_ace(PREFIX + "a", "read", BOB)
    reader = (BOB,)
    assert joined.listed(reader) == ["a"]
    joined.grants.add_principal_to_ace(PREFIX + "b", "read", BOB + "10")
    joined.grants.remove_principal_from_ace(PREFIX + "a", "write", BOB + "10")
    assert joined.listed(reader) == ["a"]
    assert joined.scripts == ["list"] and joined.checks == [], "another principal's changes are not the reader's"
    joined.grants.add_principal_to_ace(PREFIX + "b", "write", BOB)
    assert joined.listed(reader) == ["a", "b"]


@pytest.mark.services
def test_a_since_list_checks_the_changed_records_only(joined):
    """A ``_since`` list reads the records changed since, and asks the
    permission backend about those: it never loads every id the caller may
    read (which grows with the store), and sees its transaction's grants."""
    for record_id in "abc":
        joined.writer.create("articles", "b:1", {"id": record_id})
        joined.grants.add_principal_to_ace(PREFIX + record_id, "read", ALICE)
    since = joined.writer.collection_timestamp("articles", "b:1")
    joined.writer.create("articles", "b:1", {"id": "d"})
    joined.grants.add_principal_to_ace(PREFIX + "d", "write", ALICE)  # write reads too
    joined.writer.create("articles", "b:1", {"id": "e"})  # not shared with alice
    joined.writer.delete("articles", "b:1", "a")
    joined.grants.remove_principal_from_ace(PREFIX + "b", "read", ALICE)
    joined.writer.update("articles", "b:1", "b", {"n": 1})  # changed, no longer readable
    # "a": its tombstone, still readable by its ACE (as with every id loaded)
    assert joined.changed_since((ALICE, EVERYONE), since) == ["a", "d"]
    assert joined.loads == [], "no id loaded beyond the changed records"
    joined.grants.delete_object_permissions(PREFIX + "a")
    with joined.storage.transaction():
        joined.permission.add_principal_to_ace(PREFIX + "e", "read", EVERYONE)
        assert joined.changed_since((ALICE, EVERYONE), since) == ["d", "e"]
    assert joined.changed_since((BOB,), since) == []


@pytest.mark.services
def test_a_revocation_whose_check_failed_is_checked_again(joined):
    from cliquet.storage.exceptions import BackendError

    joined.writer.create("articles", "b:1", {"id": "a"})
    joined.grants.add_principal_to_ace(PREFIX + "a", "read", ALICE)
    assert joined.listed([ALICE]) == ["a"]
    joined.grants.remove_principal_from_ace(PREFIX + "a", "read", ALICE)
    check = joined.permission._filter_groups

    def fail(*args):
        raise BackendError(None, "the server went away")

    joined.permission._filter_groups = fail
    with pytest.raises(BackendError):
        joined.listed([ALICE])
    joined.permission._filter_groups = check
    assert joined.listed([ALICE]) == [], "the revocation is not lost with the failed check"


@pytest.mark.services
def test_an_entry_of_another_form_makes_the_scope_load_again(joined):
    joined.writer.create("articles", "b:1", {"id": "a"})
    joined.writer.create("articles", "b:1", {"id": "b"})
    joined.grants.add_principal_to_ace(PREFIX + "a", "read", ALICE)
    assert joined.listed([ALICE]) == ["a"]
    token, _ = joined.permission.acl_changes(None)
    # what a 3.2 development version wrote: the principal, then the object
    client, (seq, log, _) = joined.storage.client, joined.permission.list_keys()
    with client.pipeline() as pipe:
        pipe.sadd(joined.permission._ace(PREFIX + "b", "read"), ALICE)
        pipe.sadd(joined.permission._acc("read", ALICE), PREFIX + "b")
        pipe.rpush(log, f"{len(ALICE)}:{ALICE}{PREFIX}b")
        pipe.incrby(seq, 1)
        pipe.execute()
    assert joined.permission.acl_changes(token)[1] is None, "an entry it cannot read: load again"
    assert joined.listed([ALICE]) == ["a", "b"]
    assert joined.scripts == ["list"] and joined.loads == ["read", "write"], "the scope loaded again"
    assert joined.listed([ALICE]) == ["a", "b"]
    assert joined.scripts == ["list"] and joined.loads == [], "then followed the feed again"


@pytest.mark.services
def test_a_list_inside_a_transaction_that_changed_permissions_sees_them(joined):
    joined.writer.create("articles", "b:1", {"id": "a"})
    joined.grants.add_principal_to_ace(PREFIX + "a", "read", ALICE)
    assert joined.listed([ALICE]) == ["a"]
    with joined.storage.transaction():
        joined.permission.remove_principal_from_ace(PREFIX + "a", "read", ALICE)
        assert joined.listed([ALICE]) == []
        assert "list" not in joined.scripts, "not from the kept view: the transaction's writes overlay"
    assert joined.listed([ALICE]) == []


def test_feed_entries_round_trip_with_byte_lengths():
    pending = redis_permission._Pending()
    pending.ace_base[("/a:1", "read")] = frozenset({"x", ALICE})
    pending.aces[("/a:1", "read")] = frozenset({"x", BOB})
    pending.aces[("/é", "write")] = frozenset({ALICE})
    pending.aces[("/same", "read")] = frozenset()
    entries = redis_permission._feed_entries(pending)
    assert [redis_permission._parse_entry(e) for e in entries] == [
        ("/a:1", [(True, "read", BOB), (False, "read", ALICE)]),
        ("/é", [(True, "write", ALICE)]),
    ]
    assert redis_permission._parse_entry(b"3:bob/a") is None


@pytest.mark.services
def test_a_read_scope_whose_check_failed_checks_again(redis_url, cliquet_worker_prefix):
    """The general path (a permission backend not joined to the storage):
    a failed check of the changed objects leaves the scope's token where
    it was, so the next refresh sees the revocation."""
    from cliquet.storage.exceptions import BackendError
    from cliquet.storage.views import ReadScope

    permission = redis_permission.load_from_config(
        make_config(permission_url=redis_url, permission_prefix=f"{cliquet_worker_prefix}rsp:"))
    permission.flush()
    try:
        permission.add_principal_to_ace(PREFIX + "a", "read", ALICE)
        scope = ReadScope(AccessibleIds([ALICE], ["read"], PREFIX, source=permission))
        scope.refresh()
        assert scope.ids == {"a"}
        permission.remove_principal_from_ace(PREFIX + "a", "read", ALICE)
        check = permission.filter_accessible

        def fail(*args):
            raise BackendError(None, "the server went away")

        permission.filter_accessible = fail
        with pytest.raises(BackendError):
            scope.refresh()
        permission.filter_accessible = check
        assert scope.refresh() == {"a"} and scope.ids == set(), "the revocation is not lost with the failed check"
    finally:
        permission.flush()


@pytest.mark.services
def test_a_list_and_its_timestamp_are_one_round_trip(joined):
    for record_id in "ab":
        joined.writer.create("articles", "b:1", {"id": record_id})
    joined.grants.add_principal_to_ace(PREFIX + "a", "read", ALICE)
    newest = joined.writer.create("articles", "b:1", {"id": "c"})
    check = [Filter("id", joined.read_check((ALICE,)), COMPARISON.IN)]
    joined.storage.get_all("articles", "b:1", filters=check)  # builds the view
    for filters, script in ((check, "list"), (check + [Filter("last_modified", 0, COMPARISON.GT)], "since")):
        joined.scripts.clear()
        records, total, stamp = joined.storage.get_all_with_timestamp("articles", "b:1", filters=filters)
        assert joined.scripts == [script]
        assert ([r["id"] for r in records], total) == (["a"], 1)
        assert stamp == newest["last_modified"] == joined.storage.collection_timestamp("articles", "b:1")
