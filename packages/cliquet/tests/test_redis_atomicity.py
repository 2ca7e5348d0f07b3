"""The request transaction of the Redis backends, against the real server
(``CLIQUET_TEST_REDIS_URL``), through the WSGI app where it is about requests.

The shared contracts (:class:`~cliquet.testing.atomicity.RequestAtomicityContract`,
the storage races) run in ``test_redis_backends.py``; this module checks
what is particular to Redis: failures of the Redis client itself at every
command of a request (before it is sent, or after it was applied and its
reply lost), isolation from readers, app servers in other processes, the
write lock (expiry, no deadlock), ``_since`` pollers under concurrent
writers, and flushes that stay within their prefix.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from cliquet.testing.plugin import require_module

redis = require_module("redis")

from cliquet.cache import redis as redis_cache  # noqa: E402
from cliquet.events import ResourceChanged  # noqa: E402
from cliquet.permission import redis as redis_permission  # noqa: E402
from cliquet.storage import COMPARISON, Filter  # noqa: E402
from cliquet.storage import redis as redis_storage  # noqa: E402
from cliquet.storage.exceptions import BackendError, ConflictError  # noqa: E402
from cliquet.testing import make_config  # noqa: E402
from cliquet.testing.app import SharedArticle, basic_auth, make_app  # noqa: E402

pytestmark = pytest.mark.services

ALICE, BOB = basic_auth("alice"), basic_auth("bob")
URL = "/v1/articles"


@pytest.fixture
def prefix(cliquet_worker_prefix):
    """Fresh key prefixes for one test (storage ``…s:``, permissions ``…p:``)."""
    return f"{cliquet_worker_prefix}{uuid.uuid4().hex[:8]}:"


def _settings(redis_url, prefix, **extra):
    settings = {"storage_backend": "cliquet.storage.redis", "storage_url": redis_url,
                "storage_prefix": f"{prefix}s:", "permission_backend": "cliquet.permission.redis",
                "permission_url": redis_url, "permission_prefix": f"{prefix}p:",
                "cache_backend": "cliquet.cache.redis", "cache_url": redis_url, "cache_prefix": f"{prefix}c:"}
    settings.update(extra)
    return settings


@pytest.fixture
def app(redis_url, prefix):
    """The shareable test app on Redis (locks expire after 1 s, to keep
    the failure drills short)."""
    test_app = make_app(resources=(SharedArticle,), **_settings(redis_url, prefix, storage_lock_ttl="1"))
    assert test_app.app.registry.cliquet_atomic_permissions is True
    yield test_app
    test_app.app.registry.storage.flush()
    test_app.app.registry.permission.flush()


def _bob_is_shut_out(app, record_id):
    assert app.get(f"{URL}/{record_id}", headers=BOB, status="*").status_code == 403
    assert record_id not in {r["id"] for r in app.get(URL, headers=BOB).json["data"]}
    acl = app.get(f"{URL}/{record_id}", headers=ALICE).json["permissions"]
    assert not any("basicauth" in p and p not in acl["write"] for p in acl["read"]), acl


def _listen(app, handler):
    """Call ``handler(event)`` on every ``ResourceChanged`` (sent inside the
    transaction, after the request's writes)."""
    registry = app.app.registry
    registry.registerHandler(handler, (ResourceChanged,))
    registry.__dict__.pop("cliquet_event_listeners", None)  # cliquet.events.has_listeners caches


# -- a failed request leaves no share -------------------------------------------------


def test_a_failed_patch_that_shares_leaves_no_share(app):
    record = app.post_json(URL, {"data": {"title": "private"}}, headers=ALICE).json["data"]
    share = {"data": {"title": "shared"}, "permissions": {"read": ["system.Authenticated"]}}

    response = app.patch_json(f"{URL}/{record['id']}", share, headers=dict(ALICE, **{"Response-Behavior": "nope"}),
                              status="*")
    assert response.status_code == 400
    _bob_is_shut_out(app, record["id"])

    def fail(event):  # the request fails after its writes, before its commit
        raise BackendError(None, "injected")

    _listen(app, fail)
    response = app.patch_json(f"{URL}/{record['id']}", share, headers=ALICE, status="*")
    assert response.status_code == 503
    _bob_is_shut_out(app, record["id"])
    assert app.get(f"{URL}/{record['id']}", headers=ALICE).json["data"] == record


# -- failures of the Redis client at every command --------------------------------------


class FaultPlan:
    """Make the ``fail_at``-th command of the client fail: ``before`` it is
    sent, or ``after`` it was applied (its reply lost)."""

    def __init__(self):
        self.fail_at, self.mode, self.count = 0, "before", 0

    def arm(self, fail_at, mode):
        self.fail_at, self.mode, self.count = fail_at, mode, 0

    def run(self, call):
        self.count += 1
        if self.count != self.fail_at:
            return call()
        if self.mode == "after":
            call()
        raise redis.exceptions.ConnectionError(f"injected failure {self.mode} command {self.count}")


def faulty_client(client, plan):
    """A client on ``client``'s pool whose commands and pipelines go through ``plan``."""

    class Faulty(redis.Redis):
        def execute_command(self, *args, **options):
            return plan.run(lambda: super(Faulty, self).execute_command(*args, **options))

        def pipeline(self, transaction=True, shard_hint=None):
            pipe = super().pipeline(transaction, shard_hint)
            execute = pipe.execute
            pipe.execute = lambda raise_on_error=True: plan.run(lambda: execute(raise_on_error))
            return pipe

    return Faulty(connection_pool=client.connection_pool)


def dump(client, prefix):
    """Every key under ``prefix`` and its value (write locks, their wake-up
    lists and commit markers left out: they are no data)."""
    out = {}
    for key in sorted(client.scan_iter(match=prefix + "*", count=1000)):
        if b":lock:" in key or b":wake:" in key or b":done:" in key:
            continue
        kind = client.type(key)
        if kind == b"string":
            out[key] = client.get(key)
        elif kind == b"hash":
            out[key] = client.hgetall(key)
        elif kind == b"set":
            out[key] = client.smembers(key)
        elif kind == b"zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
    return out


SCENARIOS = {
    "patch that shares": lambda app, rid: app.patch_json(
        f"{URL}/{rid}", {"data": {"title": "changed"}, "permissions": {"read": ["system.Authenticated"]}},
        headers=ALICE, status="*"),
    "create with permissions": lambda app, rid: app.post_json(
        URL, {"data": {"title": "new"}, "permissions": {"write": ["system.Authenticated"]}},
        headers=ALICE, status="*"),
    "delete": lambda app, rid: app.delete(f"{URL}/{rid}", headers=ALICE, status="*"),
    "batch": lambda app, rid: app.post_json("/v1/batch", {"requests": [
        {"method": "PATCH", "path": f"/articles/{rid}", "body": {"data": {"title": "b"}}},
        {"method": "POST", "path": "/articles", "body": {"data": {"title": "c"},
                                                         "permissions": {"read": ["system.Authenticated"]}}},
    ]}, headers=ALICE, status="*"),
}


@pytest.mark.parametrize("mode", ["before", "after"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_client_failure_at_any_command_leaves_all_or_nothing(app, redis_url, prefix, scenario, mode):
    """For every k, the k-th Redis command of the request fails. The answer
    and the data agree: a failed request left nothing (records, tombstones,
    timestamps, ACEs); a successful one (the reply of its commit was lost,
    and recognised) left everything."""
    registry = app.app.registry
    plan = FaultPlan()
    clean = redis.Redis.from_url(redis_url)
    faulty = faulty_client(registry.storage.client, plan)
    outcomes = set()
    for k in range(1, 40):
        record = app.post_json(URL, {"data": {"title": "before"}}, headers=ALICE).json["data"]
        before = dump(clean, prefix)
        visible = {r["id"] for r in app.get(URL, headers=BOB).json["data"]}
        saved = registry.storage.client, registry.permission.client
        registry.storage.client = registry.permission.client = faulty
        plan.arm(k, mode)
        try:
            response = SCENARIOS[scenario](app, record["id"])
        finally:
            registry.storage.client, registry.permission.client = saved
        if plan.count < k:  # the request made fewer than k commands: every point was tried
            assert response.status_code < 400
            break
        after = dump(clean, prefix)
        if scenario == "batch" and response.status_code == 200:  # each sub-request: all or nothing
            statuses = [r["status"] for r in response.json["responses"]]
            title = app.get(f"{URL}/{record['id']}", headers=ALICE).json["data"]["title"]
            assert (title == "b") == (statuses[0] == 200), (k, statuses)
            created = [r for r in app.get(URL, headers=BOB).json["data"] if r["id"] not in visible]
            assert len(created) == (statuses[1] == 201), (k, statuses)
            assert all(s in (200, 201, 503) for s in statuses), (k, statuses)
            if all(s == 503 for s in statuses):
                assert after == before, f"command {k} failed {mode}: the failed sub-requests left a trace"
            outcomes.add("failed" if 503 in statuses else "succeeded")
            continue
        if response.status_code >= 400:
            outcomes.add("failed")
            assert response.status_code == 503, (k, response.status_code)
            assert after == before, f"command {k} failed {mode}: the failed request left a trace"
        else:
            outcomes.add("succeeded")
            assert after != before
            if scenario == "patch that shares":
                assert app.get(f"{URL}/{record['id']}", headers=BOB).json["data"]["title"] == "changed"
    else:
        pytest.fail("the request never ran out of commands")
    assert "failed" in outcomes
    if mode == "after":  # the commit itself applied, its reply lost: recognised as done
        assert "succeeded" in outcomes


# -- isolation ---------------------------------------------------------------------------


def test_uncommitted_writes_are_invisible_to_a_concurrent_reader(app):
    record = app.post_json(URL, {"data": {"title": "v1"}}, headers=ALICE).json["data"]
    etag = app.get(URL, headers=BOB).headers["ETag"]
    seen = {}

    def read_while_uncommitted(event):
        if seen:
            return

        def reader():  # another client, during the request, before its commit
            seen["record"] = app.get(f"{URL}/{record['id']}", headers=BOB, status="*").status_code
            seen["list"] = [r["id"] for r in app.get(URL, headers=BOB).json["data"]]
            seen["since"] = app.get(f"{URL}?_since={record['last_modified']}", headers=ALICE).json["data"]
            seen["etag"] = app.get(URL, headers=BOB).headers["ETag"]
            seen["alice"] = app.get(f"{URL}/{record['id']}", headers=ALICE).json["data"]["title"]

        thread = threading.Thread(target=reader)
        thread.start()
        thread.join(10)

    _listen(app, read_while_uncommitted)
    app.patch_json(f"{URL}/{record['id']}", {"data": {"title": "v2"}, "permissions": {"read": ["system.Authenticated"]}},
                   headers=ALICE)
    assert seen == {"record": 403, "list": [], "since": [], "etag": etag, "alice": "v1"}
    assert app.get(f"{URL}/{record['id']}", headers=BOB).json["data"]["title"] == "v2"
    assert app.get(URL, headers=BOB).headers["ETag"] != etag


def test_a_transaction_reads_its_own_writes_and_others_do_not(redis_url, prefix):
    config = make_config(storage_url=redis_url, storage_prefix=f"{prefix}s:", permission_url=redis_url,
                         permission_prefix=f"{prefix}p:")
    storage = redis_storage.load_from_config(config)
    permission = redis_permission.load_from_config(config)
    assert permission.join_transactions(storage) is True
    other_storage = redis_storage.load_from_config(config)  # another app server
    other_permission = redis_permission.load_from_config(config)
    try:
        kept = storage.create("c", "p", {"id": "kept"})
        gone = storage.create("c", "p", {"id": "gone"})
        stamp = storage.collection_timestamp("c", "p")
        since = [Filter("last_modified", stamp, COMPARISON.GT)]
        with storage.transaction():
            new = storage.create("c", "p", {"id": "new"})
            storage.update("c", "p", "kept", {"v": 2})
            tombstone = storage.delete("c", "p", "gone")
            permission.add_principal_to_ace("/c/new", "read", "bob")
            permission.add_user_principal("bob", "group:x")
            # own writes, everywhere
            assert storage.get("c", "p", "kept")["v"] == 2
            assert {r["id"] for r in storage.get_all("c", "p")[0]} == {"kept", "new"}
            assert {r["id"] for r in storage.get_all("c", "p", filters=since, include_deleted=True)[0]} == {
                "kept", "new", "gone"}
            assert storage.collection_timestamp("c", "p") > stamp
            assert permission.check_permission("/c/new", "read", ["bob"])
            assert permission.get_accessible_objects(["bob"], "read", "/c/") == {"/c/new"}
            assert permission.get_user_principals("bob") == {"group:x"}
            # nothing for another client (a thread of its own, or another server)
            for s, p in ((other_storage, other_permission), (storage, permission)):
                result = {}
                thread = threading.Thread(target=lambda: result.update(
                    get=s.get("c", "p", "kept"), all=s.get_all("c", "p", include_deleted=True)[0],
                    since=s.get_all("c", "p", filters=since, include_deleted=True)[0],
                    stamp=s.collection_timestamp("c", "p"), acl=p.check_permission("/c/new", "read", ["bob"]),
                    objects=p.get_accessible_objects(["bob"], "read"), groups=p.get_user_principals("bob")))
                thread.start()
                thread.join(10)
                assert {r["id"] for r in result.pop("all")} == {"kept", "gone"}
                assert result == {"get": kept, "since": [], "stamp": stamp, "acl": False, "objects": set(),
                                  "groups": set()}
        assert other_storage.get("c", "p", "new") == new
        assert other_permission.check_permission("/c/new", "read", ["bob"])
        assert other_storage.collection_timestamp("c", "p") == tombstone["last_modified"] > new["last_modified"]
        assert other_permission.get_user_principals("bob") == {"group:x"}
    finally:
        storage.flush()
        permission.flush()


# -- app servers in other processes ----------------------------------------------------

CHILD = textwrap.dedent("""
    import json, sys
    from cliquet.testing.app import SharedArticle, basic_auth, make_app
    settings = json.loads(sys.argv[1])
    app = make_app(resources=(SharedArticle,), **settings)
    print("ready", flush=True)
    for line in sys.stdin:
        record_id, etag, me = json.loads(line)
        response = app.patch_json("/v1/articles/" + record_id, {"data": {"title": me}},
                                  headers=dict(basic_auth("alice"), **{"If-Match": etag}), status="*")
        print(response.status_code, flush=True)
""")


def test_app_servers_in_other_processes_racing_one_if_match_have_one_winner(app, redis_url, prefix):
    processes, rounds = 3, 30
    settings = json.dumps(_settings(redis_url, prefix))
    children = [subprocess.Popen([sys.executable, "-c", CHILD, settings], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                for _ in range(processes)]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        for n in range(rounds):
            response = app.post_json(URL, {"data": {"title": "start"}}, headers=ALICE)
            record_id, etag = response.json["data"]["id"], response.headers["ETag"]
            for i, child in enumerate(children):  # as close together as pipes allow
                child.stdin.write(json.dumps([record_id, etag, f"p{i}"]) + "\n")
                child.stdin.flush()
            statuses = [int(child.stdout.readline()) for child in children]
            assert sorted(statuses) == [200] + [412] * (processes - 1), f"round {n}: {statuses}"
            winner = f"p{statuses.index(200)}"
            assert app.get(f"{URL}/{record_id}", headers=ALICE).json["data"]["title"] == winner
    finally:
        for child in children:
            child.stdin.close()
            child.wait(30)


# -- timestamps in commit order -------------------------------------------------------------


def test_a_since_poller_never_misses_a_record_of_slow_concurrent_writers(app):
    """Writers hold their transaction open after writing (a slow listener);
    a poller following ``_since`` with the ETag it got must see every record."""
    writers, per_writer = 4, 8

    def slow(event):
        time.sleep(0.003)

    _listen(app, slow)
    app.get(URL, headers=ALICE)
    created, seen, done = [], {}, threading.Event()

    def write(n):
        for i in range(per_writer):
            created.append(app.post_json(URL, {"data": {"title": f"{n}-{i}"}}, headers=ALICE).json["data"]["id"])

    def poll():
        etag = None
        while True:
            finished = done.is_set()
            query = f"?_since={etag.strip(chr(34))}" if etag else ""
            response = app.get(URL + query, headers=ALICE)
            for record in response.json["data"]:
                seen[record["id"]] = record["last_modified"]
            etag = response.headers["ETag"]
            if finished:
                return

    poller = threading.Thread(target=poll)
    poller.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    poller.join(60)
    assert len(created) == writers * per_writer
    assert set(created) <= set(seen), f"the poller missed {len(set(created) - set(seen))} records"
    assert len(set(seen.values())) == len(seen)  # unique timestamps


# -- the write lock ----------------------------------------------------------------------------


def test_a_crashed_writer_blocks_a_collection_only_until_its_lock_expires(redis_url, prefix):
    config = make_config(storage_url=redis_url, storage_prefix=f"{prefix}s:", storage_lock_ttl="0.5")
    storage = redis_storage.load_from_config(config)
    other = redis_storage.load_from_config(config)
    try:
        with pytest.raises(ConflictError):
            with storage.transaction():
                storage.create("c", "p", {"id": "lost"})  # takes the lock...
                started = time.monotonic()
                created = []
                thread = threading.Thread(target=lambda: created.append(other.create("c", "p", {"id": "next"})))
                thread.start()
                thread.join(5)  # ...which the other server gets once it expired
                assert created and 0.3 < time.monotonic() - started < 3
        # the first transaction lost its lock: its commit was refused, nothing of it remains
        assert [r["id"] for r in other.get_all("c", "p")[0]] == ["next"]
    finally:
        storage.flush()


def test_two_transactions_locking_in_opposite_orders_do_not_wait_for_each_other(redis_url, prefix):
    config = make_config(storage_url=redis_url, storage_prefix=f"{prefix}s:", storage_lock_ttl="30")
    storage = redis_storage.load_from_config(config)
    barrier = threading.Barrier(2)
    outcomes = []

    def transaction(first, second):
        try:
            with storage.transaction():
                storage.create(first, "p", {})
                barrier.wait(5)
                storage.create(second, "p", {})
                time.sleep(0.05)
            outcomes.append("committed")
        except ConflictError:
            outcomes.append("conflict")

    try:
        started = time.monotonic()
        threads = [threading.Thread(target=transaction, args=args) for args in (("a", "b"), ("b", "a"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert time.monotonic() - started < 5, "a deadlock waited for the locks to expire"
        assert "conflict" in outcomes and len(outcomes) == 2
        for collection in ("a", "b"):  # what committed is whole; what conflicted left nothing
            assert len(storage.get_all(collection, "p")[0]) == outcomes.count("committed")
    finally:
        storage.flush()


def test_writers_of_other_collections_do_not_wait(redis_url, prefix):
    config = make_config(storage_url=redis_url, storage_prefix=f"{prefix}s:", storage_lock_ttl="30")
    storage = redis_storage.load_from_config(config)
    other = redis_storage.load_from_config(config)
    try:
        with storage.transaction():
            storage.create("a", "p", {})
            started = time.monotonic()
            other.create("b", "p", {})
            other.get_all("a", "p")
            assert time.monotonic() - started < 1
    finally:
        storage.flush()


# -- flushes stay within their prefix ----------------------------------------------------------


def test_a_cache_with_the_default_prefix_flushes_only_its_own_keys(redis_url, prefix):
    """``cache_prefix`` defaults to empty: the Redis cache then uses its own
    prefix, so its flush never wipes the storage and permissions of the
    same database."""
    config = make_config(storage_url=redis_url, storage_prefix=f"{prefix}s:", permission_url=redis_url,
                         permission_prefix=f"{prefix}p:", cache_url=redis_url)
    storage = redis_storage.load_from_config(config)
    permission = redis_permission.load_from_config(config)
    cache = redis_cache.load_from_config(config)
    assert cache.prefix == redis_cache.DEFAULT_PREFIX
    try:
        record = storage.create("c", "p", {})
        permission.add_principal_to_ace("/o", "read", "alice")
        cache.set(f"{prefix}k", 1)
        cache.flush()
        assert storage.get("c", "p", record["id"]) == record
        assert permission.check_permission("/o", "read", ["alice"])
        assert cache.get(f"{prefix}k") is None
    finally:
        storage.flush()
        permission.flush()


def test_no_backend_flushes_an_empty_prefix(redis_url, prefix):
    client = redis.Redis.from_url(redis_url)
    client.set(f"{prefix}bystander", 1)
    try:
        for backend in (redis_storage.RedisStorage(client, prefix=""), redis_permission.RedisPermission(client, prefix="")):
            with pytest.raises(ValueError):
                backend.flush()
        assert client.get(f"{prefix}bystander") == b"1"
        assert redis_cache.RedisCache(client, prefix="").prefix == redis_cache.DEFAULT_PREFIX
    finally:
        client.delete(f"{prefix}bystander")


def test_a_rolled_back_write_over_a_tombstone_leaves_the_tombstone(redis_url, prefix):
    storage = redis_storage.load_from_config(make_config(storage_url=redis_url, storage_prefix=f"{prefix}s:"))
    try:
        storage.create("c", "p", {"id": "gone"})
        tombstone = storage.delete("c", "p", "gone")
        stamp = storage.collection_timestamp("c", "p")
        with pytest.raises(ZeroDivisionError):
            with storage.transaction():
                with storage.transaction():  # a batch sub-request that succeeds
                    storage.create("c", "p", {"id": "gone", "v": "back"})
                with pytest.raises(KeyError), storage.transaction():  # one that fails: only its writes go
                    storage.delete("c", "p", "gone")
                    raise KeyError
                assert storage.get("c", "p", "gone")["v"] == "back"
                1 / 0
        assert storage.get_all("c", "p", include_deleted=True)[0] == [tombstone]
        assert storage.collection_timestamp("c", "p") == stamp
    finally:
        storage.flush()


def test_permissions_join_the_storage_on_the_same_database_only(redis_url, prefix):
    base = redis_url.rsplit("/", 1)[0]
    storage = redis_storage.load_from_config(make_config(storage_url=f"{base}/0", storage_prefix=f"{prefix}s:"))
    same = redis_permission.load_from_config(make_config(  # other pool settings, same database
        permission_url=f"{base}/0", permission_pool_size="3", permission_pool_timeout="7", permission_prefix=f"{prefix}p:"))
    other = redis_permission.load_from_config(make_config(permission_url=f"{base}/1", permission_prefix=f"{prefix}p:"))
    assert same.client is not storage.client
    assert same.join_transactions(storage) is True
    assert other.join_transactions(storage) is False


def test_a_transaction_writing_collections_that_share_a_local_lock_does_not_wait_for_itself(
        redis_url, prefix, monkeypatch):
    from cliquet.storage import redis_transaction

    monkeypatch.setattr(redis_transaction, "LOCAL_STRIPES", 1)  # every collection on one local lock
    storage = redis_storage.load_from_config(make_config(storage_url=redis_url, storage_prefix=f"{prefix}s:"))
    try:
        started = time.monotonic()
        with storage.transaction():
            storage.create("a", "p", {"id": "x"})
            storage.create("b", "p", {"id": "y"})
        assert time.monotonic() - started < 1
        assert storage.get("b", "p", "y")["id"] == "y"
    finally:
        storage.flush()


def test_the_process_cache_of_collections_holds_committed_data_only(redis_url, prefix):
    config = make_config(storage_url=redis_url, storage_prefix=f"{prefix}s:")
    storage = redis_storage.load_from_config(config)
    other = redis_storage.load_from_config(config)  # another app server
    try:
        kept = storage.create("c", "p", {"id": "kept"})
        assert storage.get_all("c", "p") == ([kept], 1)  # cached
        with pytest.raises(ZeroDivisionError):
            with storage.transaction():
                storage.create("c", "p", {"id": "mine"})
                storage.delete("c", "p", "kept")
                assert [r["id"] for r in storage.get_all("c", "p")[0]] == ["mine"]
                1 / 0
        assert storage.get_all("c", "p") == ([kept], 1)
        theirs = other.create("c", "p", {"id": "theirs"})
        assert storage.get_all("c", "p") == ([theirs, kept], 2)
    finally:
        storage.flush()
