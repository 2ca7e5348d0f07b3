"""The PostgreSQL backends against the shared contract suites, on the real
server of ``ci/services`` (``CLIQUET_TEST_POSTGRESQL_URL``), plus a fault
drill on a private server this module starts, stops and restarts itself.

Each pytest-xdist worker works in its own schema (``search_path`` in the
URL), dropped at the end of the session.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.parse

import pytest

from cliquet.testing.plugin import require_module

psycopg = require_module("psycopg", reason="the `postgresql` extra is not installed")

from cliquet.cache import postgresql as pg_cache  # noqa: E402
from cliquet.permission import postgresql as pg_permission  # noqa: E402
from cliquet.storage import postgresql as pg_storage  # noqa: E402
from cliquet.storage.exceptions import BackendError, RecordNotFoundError  # noqa: E402
from cliquet.storage.postgresql_client import PostgreSQLClient  # noqa: E402
from cliquet.storage.postgresql_schema import STORAGE_MIGRATIONS, SchemaVersionError, migrate  # noqa: E402
from cliquet.testing import make_config  # noqa: E402
from cliquet.testing.atomicity import RequestAtomicityContract  # noqa: E402
from cliquet.testing.cache import CacheContract  # noqa: E402
from cliquet.testing.permission import PermissionContract  # noqa: E402
from cliquet.testing.servers import client_replaced, private_postgresql  # noqa: E402
from cliquet.testing.storage import StorageContract  # noqa: E402


def with_schema(url: str, schema: str) -> str:
    """Return ``url`` with ``search_path`` set to ``schema``."""
    option = urllib.parse.quote(f"-csearch_path={schema}")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


@pytest.fixture(scope="session")
def pg_schema_url(postgresql_url, cliquet_worker_prefix):
    """The test server's URL with a schema of this worker's own."""
    schema = f"{cliquet_worker_prefix}pg"
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield with_schema(postgresql_url, schema)
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _unreachable_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens there once the socket is closed: connections are refused.
    return f"postgresql://nobody@127.0.0.1:{port}/nothing"


def unreachable(backend):
    """Point ``backend`` at a port where no server listens, then back."""
    dead = PostgreSQLClient(_unreachable_url(), pool_size=1, pool_timeout=0.3)
    return client_replaced(backend, dead, PostgreSQLClient.close)


@pytest.mark.services
class TestPostgreSQLStorage(StorageContract):
    @pytest.fixture
    def backend(self, pg_schema_url):
        storage = pg_storage.load_from_config(make_config(storage_url=pg_schema_url))
        storage.initialize_schema()
        return storage

    @pytest.fixture
    def backend_spec(self, pg_schema_url):
        return "cliquet.storage.postgresql", {"storage_url": pg_schema_url, "storage_pool_size": 2}

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: unreachable(backend)


@pytest.mark.services
class TestPostgreSQLRequests(RequestAtomicityContract):
    """Storage, permission and cache on one database, with different pool
    settings (they share one client and one transaction all the same)."""

    @pytest.fixture
    def app_settings(self, pg_schema_url, cliquet_worker_prefix):
        return {"storage_backend": "cliquet.storage.postgresql", "storage_url": pg_schema_url,
                "storage_pool_size": 4, "permission_backend": "cliquet.permission.postgresql",
                "permission_url": pg_schema_url, "permission_pool_timeout": 20.0,
                "cache_backend": "cliquet.cache.postgresql", "cache_url": pg_schema_url,
                "cache_prefix": f"{cliquet_worker_prefix}req:"}


@pytest.mark.services
class TestPostgreSQLCache(CacheContract):
    @pytest.fixture
    def backend(self, pg_schema_url, cliquet_worker_prefix):
        cache = pg_cache.load_from_config(make_config(cache_url=pg_schema_url, cache_prefix=cliquet_worker_prefix))
        cache.initialize_schema()
        return cache

    @pytest.fixture
    def make_backend(self, backend):
        return lambda prefix: pg_cache.PostgreSQLCache(backend.client, prefix=prefix)

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: unreachable(backend)


@pytest.mark.services
class TestPostgreSQLPermission(PermissionContract):
    @pytest.fixture
    def backend(self, pg_schema_url):
        permission = pg_permission.load_from_config(make_config(permission_url=pg_schema_url))
        permission.initialize_schema()
        return permission

    @pytest.fixture
    def storage(self, pg_schema_url):
        storage = pg_storage.load_from_config(make_config(storage_url=pg_schema_url, storage_pool_size=3))
        storage.initialize_schema()
        return storage

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: unreachable(backend)


# -- schema migrations -----------------------------------------------------------


@pytest.mark.services
def test_migrations_are_recorded_and_a_newer_schema_is_refused(postgresql_url, cliquet_worker_prefix):
    schema = f"{cliquet_worker_prefix}mig"
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    client = PostgreSQLClient(with_schema(postgresql_url, schema), pool_size=2)
    try:
        assert migrate(client, "storage", STORAGE_MIGRATIONS, dry_run=True) == [1, 2, 3, 4]
        assert migrate(client, "storage", STORAGE_MIGRATIONS[:1]) == [1]
        assert migrate(client, "storage", STORAGE_MIGRATIONS) == [2, 3, 4]
        assert migrate(client, "storage", STORAGE_MIGRATIONS) == []
        version = client.execute("SELECT version FROM cliquet_schema WHERE component = 'storage'", fetch="one")
        assert version == (4,)
        with pytest.raises(SchemaVersionError):
            migrate(client, "storage", STORAGE_MIGRATIONS[:1])
    finally:
        client.close()
        with psycopg.connect(postgresql_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- fault drill on a private server ------------------------------------------------


@pytest.fixture
def private_server():
    server = private_postgresql()
    try:
        yield server
    finally:
        server.cleanup()


def _wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.services
def test_backends_fail_cleanly_and_recover_after_a_server_restart(private_server):
    config = make_config(storage_url=private_server.url, cache_url=private_server.url,
                         permission_url=private_server.url, storage_pool_timeout=2.0,
                         cache_pool_timeout=2.0, permission_pool_timeout=2.0, storage_pool_size=4)
    storage = pg_storage.load_from_config(config)
    cache = pg_cache.load_from_config(config)
    permission = pg_permission.load_from_config(config)
    for backend in (storage, cache, permission):
        backend.initialize_schema()
    try:
        record = storage.create("articles", "alice", {"title": "before"})
        cache.set("k", {"v": 1})
        permission.add_principal_to_ace("/articles/1", "read", "alice")
        # Several pooled connections, all about to die with the server.
        with storage.transaction():
            storage.get("articles", "alice", record["id"])

        private_server.stop()

        for backend in (storage, cache, permission):
            assert backend.heartbeat() is False
        started = time.monotonic()
        with pytest.raises(BackendError):
            storage.get("articles", "alice", record["id"])
        with pytest.raises(BackendError):
            storage.create("articles", "alice", {"title": "during"})
        with pytest.raises(BackendError):
            with storage.transaction():
                storage.create("articles", "alice", {"title": "during"})
        with pytest.raises(BackendError):
            cache.get("k")
        with pytest.raises(BackendError):
            permission.check_permission("/articles/1", "read", ["alice"])
        assert time.monotonic() - started < 30

        private_server.start()

        # Same backend objects: the pool reconnects by itself.
        assert _wait_until(storage.heartbeat), "the storage did not recover"
        assert storage.get("articles", "alice", record["id"])["title"] == "before"
        created = storage.create("articles", "alice", {"title": "after"})
        assert created["last_modified"] > record["last_modified"]
        with storage.transaction():
            storage.update("articles", "alice", created["id"], {"title": "after, in a transaction"})
        assert storage.get("articles", "alice", created["id"])["title"] == "after, in a transaction"
        assert cache.get("k") == {"v": 1}
        assert permission.check_permission("/articles/1", "read", ["alice"]) is True
        records, total = storage.get_all("articles", "alice")
        assert total == 2 and {r["title"] for r in records} == {"before", "after, in a transaction"}
        with pytest.raises(RecordNotFoundError):
            storage.get("articles", "alice", "never-written")

        # A restart while idle: the pooled connections are stale, yet no call
        # fails (reads and BEGIN are retried on a fresh connection).
        with storage.transaction():
            storage.get("articles", "alice", record["id"])
        private_server.stop()
        private_server.start()
        assert storage.get("articles", "alice", record["id"])["title"] == "before"
        storage.create("articles", "alice", {"title": "after the second restart"})
        with storage.transaction():
            storage.create("articles", "alice", {"title": "in a transaction"})
        assert cache.get("k") == {"v": 1}
        assert storage.get_all("articles", "alice")[1] == 4
    finally:
        for backend in (storage, cache, permission):
            backend.client.close()


# -- concurrent writers and _since polling ------------------------------------------


_WRITER = """
import json, sys, time
from cliquet.storage import postgresql
from cliquet.testing import make_config
url, collection, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
storage = postgresql.load_from_config(make_config(storage_url=url, storage_pool_size=2))
stamps = []
for n in range(count):
    with storage.transaction():
        stamps.append(storage.create(collection, "p", {"n": n})["last_modified"])
        time.sleep(0.001)  # hold the transaction open a little
print(json.dumps(stamps))
"""


@pytest.mark.services
def test_several_app_servers_get_unique_increasing_timestamps_and_polling_misses_nothing(pg_schema_url):
    import json
    import sys
    import threading
    import uuid as uuid_module

    from cliquet.storage import COMPARISON, Filter, Sort

    collection = f"poll-{uuid_module.uuid4().hex[:8]}"
    storage = pg_storage.load_from_config(make_config(storage_url=pg_schema_url))
    storage.initialize_schema()
    seen, done = {}, threading.Event()

    def poll():
        since = 0
        while True:
            finished = done.is_set()
            page, _ = storage.get_all(collection, "p", filters=[Filter("last_modified", since, COMPARISON.GT)],
                                      sorting=[Sort("last_modified", 1)], include_deleted=True)
            for record in page:
                seen[record["id"]] = record["last_modified"]
                since = max(since, record["last_modified"])
            if finished:
                return

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        # Four "app servers": processes with their own pools and transactions.
        writers = [subprocess.Popen([sys.executable, "-c", _WRITER, pg_schema_url, collection, "40"],
                                    stdout=subprocess.PIPE, text=True) for _ in range(4)]
        outputs = [writer.communicate(timeout=120)[0] for writer in writers]
        assert all(writer.returncode == 0 for writer in writers)
    finally:
        done.set()
        poller.join(timeout=60)
    stamps = [stamp for output in outputs for stamp in json.loads(output)]

    assert len(stamps) == 160 and len(set(stamps)) == 160
    assert storage.get_all(collection, "p")[1] == 160
    # The poller, which only ever asked for "newer than the newest I saw",
    # saw every record: timestamps became visible in increasing order.
    assert len(seen) == 160 and set(seen.values()) == set(stamps)


# -- beyond the contract: purge horizon, counts, declared-field indexes ----------------


@pytest.fixture
def pg_storage_backend(pg_schema_url):
    storage = pg_storage.load_from_config(make_config(storage_url=pg_schema_url))
    storage.initialize_schema()
    return storage


@pytest.mark.services
def test_purge_remembers_its_horizon(pg_storage_backend):
    import uuid as uuid_module

    storage, c = pg_storage_backend, f"purge-{uuid_module.uuid4().hex[:8]}"
    assert storage.purged_before(c, "p") is None
    records = [storage.create(c, "p", {"n": n}) for n in range(3)]
    tombstones = [storage.delete(c, "p", r["id"]) for r in records]
    assert storage.purge_deleted(c, "p", before=tombstones[1]["last_modified"]) == 1
    assert storage.purged_before(c, "p") == tombstones[1]["last_modified"]
    assert storage.purge_deleted(c, "p", before=tombstones[0]["last_modified"]) == 0
    assert storage.purged_before(c, "p") == tombstones[1]["last_modified"]  # never goes back
    assert storage.purge_deleted(c, "p") == 2
    assert storage.purged_before(c, "p") == storage.collection_timestamp(c, "p") + 1


@pytest.mark.services
def test_unfiltered_totals_stay_exact_through_rollbacks(pg_storage_backend):
    import uuid as uuid_module

    storage, c = pg_storage_backend, f"count-{uuid_module.uuid4().hex[:8]}"
    kept = [storage.create(c, "p", {"n": n}) for n in range(5)]
    with pytest.raises(ZeroDivisionError):
        with storage.transaction():
            storage.create(c, "p", {"n": 99})
            storage.delete(c, "p", kept[0]["id"])
            storage.delete_all(c, "p", with_deleted=False)
            assert storage.get_all(c, "p", limit=1)[1] == 0
            1 / 0
    assert storage.get_all(c, "p", limit=1)[1] == 5
    storage.delete(c, "p", kept[0]["id"])
    storage.update(c, "p", kept[0]["id"], {"n": 0})  # over its tombstone
    storage.update(c, "p", kept[1]["id"], {"n": 1})  # replaces a live record
    storage.delete(c, "p", kept[2]["id"], with_deleted=False)
    assert storage.get_all(c, "p", limit=1)[1] == 4
    assert storage.get_all(c, "p", limit=0)[1] == 4


@pytest.mark.services
@pytest.mark.parametrize("codepoint", [True, False])
def test_declared_fields_get_indexes_that_sorted_pages_use(pg_storage_backend, codepoint):
    storage = pg_storage_backend
    storage.codepoint_strings = codepoint
    statements = storage.create_field_indexes(["title", "meta.rank", "id"])
    assert len(statements) == 2  # id has the primary key
    assert storage.create_field_indexes(["title", "meta.rank"]) == statements  # idempotent
    from cliquet.storage import Sort

    for field in ("title", "meta.rank"):
        for direction in (1, -1):
            sorting = [Sort(field, direction), Sort("id", direction)]
            with _statements(storage) as captured:
                storage.get_all("indexed", "p", sorting=sorting, limit=10)
                # A later page: its position must be an index condition.
                storage.get_all("indexed", "p", sorting=sorting, limit=10, after=["x", "some-id"])
            for (query, params), keyset in zip(captured, (False, True)):
                plan = _plan(storage, query, params, "SET enable_seqscan = off", "SET enable_sort = off",
                             "SET enable_incremental_sort = off")
                assert "cliquet_records_field_" in plan and "Sort" not in plan, plan
                if keyset:
                    cond = [line for line in plan.splitlines() if "Index Cond" in line and "cliquet_timestamps" not in line]
                    assert any("ROW(" in line for line in cond), plan


def _captured_page(storage, **get_all):
    """Run ``storage.get_all(**get_all)``; return its answer and its page's
    statement with its parameters."""
    with _statements(storage) as captured:
        answer = storage.get_all(**get_all)
    (page,) = [(q, p) for q, p in captured if "ORDER BY" in q]
    return answer, page


@contextlib.contextmanager
def _statements(storage):
    """Collect ``(query, params)`` of every statement the storage's client executes."""
    captured = []
    real = storage.client.execute

    def spy(query, params=None, **kwargs):
        captured.append((query, params))
        return real(query, params, **kwargs)

    storage.client.execute = spy
    try:
        yield captured
    finally:
        storage.client.execute = real


def _plan(storage, query, params, *settings):
    """``EXPLAIN`` of ``query`` on a connection of its own, after ``settings``."""
    with psycopg.connect(storage.client.url, autocommit=True) as conn:
        for setting in settings:
            conn.execute(setting)
        return "\n".join(row[0] for row in conn.execute("EXPLAIN " + query, params).fetchall())


@pytest.mark.services
def test_an_equality_filter_on_a_field_without_index_walks_the_timestamp_index(pg_storage_backend):
    """``published=true`` on a field no index covers: the planner has no
    statistics on the filter's expressions, and with the type-rank term
    beside the value's it expected one matching row of 20 000, and sorted
    the whole collection (at 100 000 records: 97 ms instead of 0.3 ms)."""
    from cliquet.storage import COMPARISON, Filter, Sort

    storage = pg_storage_backend
    storage.create("plain", "p", {"published": True})
    storage.client.execute(
        "INSERT INTO cliquet_records (parent_id, collection_id, id, last_modified, deleted, data) "
        "SELECT 'p', 'plain', 'r' || g, 1000 + g, false, jsonb_build_object('published', g % 2 = 0) "
        "FROM generate_series(1, 20000) AS g", fetch=None)
    storage.client.execute("ANALYZE cliquet_records", fetch=None)
    (records, total), (query, params) = _captured_page(
        storage, collection_id="plain", parent_id="p", filters=[Filter("published", True, COMPARISON.EQ)],
        sorting=[Sort("last_modified", -1)], limit=10)
    assert total == 10_001 and len(records) == 10 and all(r["published"] is True for r in records)
    assert "jsonb_typeof" not in query
    plan = _plan(storage, query, params)
    assert "Index Scan Backward" in plan and "Seq Scan on cliquet_records" not in plan, plan


@pytest.mark.services
def test_an_equality_filter_on_a_declared_field_is_a_range_of_its_index(pg_storage_backend):
    from cliquet.storage import COMPARISON, Filter

    storage = pg_storage_backend
    for value in ("a", "b", 1, True):
        storage.create("declared", "p", {"title": value, "kind": value})
    storage.create_field_indexes(["title"])
    for field, indexed in (("title", True), ("kind", False)):
        (records, _), (query, params) = _captured_page(
            storage, collection_id="declared", parent_id="p", filters=[Filter(field, "a", COMPARISON.EQ)])
        assert [r[field] for r in records] == ["a"]  # the same answer either way
        # on the index's keys (rank, value: a range of the index) only where it exists
        assert ("jsonb_typeof" in query) is indexed


@pytest.mark.services
def test_filters_on_ever_new_field_names_keep_nothing_per_field(pg_storage_backend):
    """Filter field names come from clients: telling which fields have an
    index must not remember each name it is asked about."""
    from cliquet.storage import COMPARISON, Filter

    storage = pg_storage_backend
    storage.create("fields", "p", {"f0": 1})

    def held():
        return sum(len(v) for v in vars(storage).values() if isinstance(v, (dict, set, frozenset, list)))

    storage.get_all("fields", "p", filters=[Filter("warm-up", 1, COMPARISON.EQ)])
    before = held()
    for n in range(300):
        assert storage.get_all("fields", "p", filters=[Filter(f"f{n}", 1, COMPARISON.EQ)])[1] == (n == 0)
    assert held() == before


@pytest.mark.services
def test_begin_waits_for_the_first_write(pg_storage_backend):
    storage = pg_storage_backend
    c = f"lazy-{time.time_ns()}"
    record = storage.create(c, "p", {"v": 0})
    with storage.transaction() as conn:
        storage.get(c, "p", record["id"])
        storage.get_all(c, "p")
        storage.collection_timestamp(c, "p")
        assert conn.info.transaction_status.name == "IDLE"  # no BEGIN sent: reads only
        with pytest.raises(ZeroDivisionError):
            with storage.transaction():  # the first write happens in a nested block
                storage.create(c, "p", {"id": "inner"})
                1 / 0
        storage.create(c, "p", {"id": "outer"})
    assert {r["id"] for r in storage.get_all(c, "p")[0]} == {record["id"], "outer"}


# -- one database, one client, one transaction ------------------------------------------


@pytest.mark.services
def test_backends_on_one_database_share_one_client_whatever_their_pool_settings(pg_schema_url):
    config = make_config(storage_url=pg_schema_url, permission_url=pg_schema_url, cache_url=pg_schema_url,
                         storage_pool_size=3, cache_pool_size=12, permission_pool_timeout=45.0)
    storage = pg_storage.load_from_config(config)
    permission = pg_permission.load_from_config(config)
    cache = pg_cache.load_from_config(config)
    assert storage.client is permission.client is cache.client
    assert storage.client.pool_size >= 12 and storage.client.pool.max_size >= 12  # the largest asked
    assert storage.client.pool_timeout >= 45.0 and storage.client.pool.timeout >= 45.0
    assert permission.join_transactions(storage) is True
    # Another spelling of the same database is the same database.
    respelled = pg_schema_url.replace("postgresql://", "postgres://", 1) + "&connect_timeout=7"
    assert pg_permission.load_from_config(make_config(permission_url=respelled)).client is storage.client


@pytest.mark.services
def test_another_schema_is_another_database_and_cannot_join(pg_schema_url, postgresql_url, cliquet_worker_prefix):
    storage = pg_storage.load_from_config(make_config(storage_url=pg_schema_url))
    other = pg_permission.load_from_config(make_config(permission_url=with_schema(postgresql_url,
                                                                                   f"{cliquet_worker_prefix}else")))
    assert other.client is not storage.client
    assert other.join_transactions(storage) is False
    from cliquet.storage import memory as memory_storage

    assert pg_permission.load_from_config(make_config(permission_url=pg_schema_url)).join_transactions(
        memory_storage.load_from_config(make_config())) is False


@pytest.mark.services
def test_a_failed_transaction_undoes_permissions_with_records_when_only_storage_pool_size_is_set(pg_schema_url):
    config = make_config(storage_url=pg_schema_url, permission_url=pg_schema_url, storage_pool_size=4)
    storage = pg_storage.load_from_config(config)
    permission = pg_permission.load_from_config(config)
    for backend in (storage, permission):
        backend.initialize_schema()
    c = f"joined-{time.time_ns()}"
    with pytest.raises(ZeroDivisionError):
        with storage.transaction():
            record = storage.create(c, "p", {"v": 1})
            permission.replace_object_permissions(f"/{c}/{record['id']}", {"read": ["bob"]})
            permission.add_principal_to_ace(f"/{c}/{record['id']}", "write", "bob")
            1 / 0
    assert storage.get_all(c, "p", include_deleted=True) == ([], 0)
    assert permission.get_object_permissions(f"/{c}/{record['id']}") == {}


# -- field names whatever standard_conforming_strings says ------------------------------------


@pytest.mark.services
@pytest.mark.parametrize("conforming", ["on", "off"])
def test_field_names_with_backslashes_and_quotes_whatever_standard_conforming_strings(
        pg_schema_url, conforming):
    from cliquet.storage import COMPARISON, Filter, Sort

    url = pg_schema_url + "%20" + urllib.parse.quote(f"-cstandard_conforming_strings={conforming}")
    storage = pg_storage.PostgreSQLStorage(PostgreSQLClient(url, pool_size=2))
    try:
        assert storage.client.execute("SHOW standard_conforming_strings", fetch="one")[0] == conforming
        storage.initialize_schema()
        c = f"scs-{conforming}-{time.time_ns()}"
        odd = ["a\\", "b\\'", "c'\\", "d\\' OR TRUE) --", "e\\\\"]
        for n, field in enumerate(odd):
            storage.create(c, "p", {"id": f"r{n}", field: n, "x": {field: n}})
        for n, field in enumerate(odd):
            for name in (field, f"x.{field}"):
                records, total = storage.get_all(c, "p", filters=[Filter(name, n, COMPARISON.EQ)])
                assert ([r["id"] for r in records], total) == ([f"r{n}"], 1), name
            ordered, _ = storage.get_all(c, "p", sorting=[Sort(field, 1), Sort("id", 1)])  # missing last
            assert ordered[0]["id"] == f"r{n}"
        assert len(storage.create_field_indexes(odd)) == len(odd)
    finally:
        storage.client.close()
