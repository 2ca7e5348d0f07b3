"""The Redis backends against the shared contract suites, on the real server
of ``ci/services`` (``CLIQUET_TEST_REDIS_URL``), plus a fault drill on a
private server this module starts, shuts down and restarts itself.

Each pytest-xdist worker (and each run) has its own key prefix.
"""

from __future__ import annotations

import time

import pytest

from cliquet.testing.plugin import require_module

require_module("redis", reason="the `redis` extra is not installed")

from cliquet.cache import redis as redis_cache  # noqa: E402
from cliquet.permission import redis as redis_permission  # noqa: E402
from cliquet.storage import redis as redis_storage  # noqa: E402
from cliquet.storage.exceptions import BackendError  # noqa: E402
from cliquet.storage.redis_client import close_client, get_client  # noqa: E402
from cliquet.testing import make_config  # noqa: E402
from cliquet.testing.atomicity import RequestAtomicityContract  # noqa: E402
from cliquet.testing.cache import CacheContract  # noqa: E402
from cliquet.testing.permission import PermissionContract  # noqa: E402
from cliquet.testing.servers import client_replaced  # noqa: E402
from cliquet.testing.servers import free_port as _free_port  # noqa: E402
from cliquet.testing.servers import private_redis as start_private_redis  # noqa: E402
from cliquet.testing.storage import StorageContract  # noqa: E402


def unreachable(backend):
    """Point ``backend`` at a port where no server listens, then back."""
    dead = get_client(f"redis://127.0.0.1:{_free_port()}/0", pool_size=1, pool_timeout=0.5)
    return client_replaced(backend, dead, close_client)


@pytest.mark.services
class TestRedisStorage(StorageContract):
    @pytest.fixture
    def backend(self, redis_url, cliquet_worker_prefix):
        storage = redis_storage.load_from_config(
            make_config(storage_url=redis_url, storage_prefix=f"{cliquet_worker_prefix}s:"))
        storage.initialize_schema()
        return storage

    @pytest.fixture
    def concurrent_backend(self, redis_url, cliquet_worker_prefix):
        """Another app server's storage on the same keys."""
        return redis_storage.load_from_config(
            make_config(storage_url=redis_url, storage_prefix=f"{cliquet_worker_prefix}s:"))

    @pytest.fixture
    def backend_spec(self, redis_url, cliquet_worker_prefix):
        return "cliquet.storage.redis", {"storage_url": redis_url, "storage_prefix": f"{cliquet_worker_prefix}s:"}

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: unreachable(backend)


@pytest.mark.services
class TestRedisRequests(RequestAtomicityContract):
    @pytest.fixture
    def app_settings(self, redis_url, cliquet_worker_prefix):
        return {"storage_backend": "cliquet.storage.redis", "storage_url": redis_url,
                "storage_prefix": f"{cliquet_worker_prefix}rs:", "permission_backend": "cliquet.permission.redis",
                "permission_url": redis_url, "permission_prefix": f"{cliquet_worker_prefix}rp:",
                "cache_backend": "cliquet.cache.redis", "cache_url": redis_url,
                "cache_prefix": f"{cliquet_worker_prefix}rc:"}


@pytest.mark.services
class TestRedisCache(CacheContract):
    @pytest.fixture
    def backend(self, redis_url, cliquet_worker_prefix):
        return redis_cache.load_from_config(make_config(cache_url=redis_url, cache_prefix=f"{cliquet_worker_prefix}c:"))

    @pytest.fixture
    def make_backend(self, backend, cliquet_worker_prefix):
        return lambda prefix: redis_cache.RedisCache(backend.client, prefix=f"{cliquet_worker_prefix}{prefix}")

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: unreachable(backend)


@pytest.mark.services
class TestRedisPermission(PermissionContract):
    @pytest.fixture
    def backend(self, redis_url, cliquet_worker_prefix):
        return redis_permission.load_from_config(
            make_config(permission_url=redis_url, permission_prefix=f"{cliquet_worker_prefix}p:"))

    @pytest.fixture
    def storage(self, redis_url, cliquet_worker_prefix):
        return redis_storage.load_from_config(
            make_config(storage_url=redis_url, storage_prefix=f"{cliquet_worker_prefix}s:"))

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: unreachable(backend)


@pytest.mark.services
def test_flushes_keep_other_backends_keys(redis_url, cliquet_worker_prefix):
    config = make_config(storage_url=redis_url, permission_url=redis_url, cache_url=redis_url,
                         storage_prefix=f"{cliquet_worker_prefix}fs:",
                         permission_prefix=f"{cliquet_worker_prefix}fp:",
                         cache_prefix=f"{cliquet_worker_prefix}fc:")
    storage = redis_storage.load_from_config(config)
    permission = redis_permission.load_from_config(config)
    cache = redis_cache.load_from_config(config)
    record = storage.create("c", "p", {"a": 1})
    permission.add_principal_to_ace("/o", "read", "alice")
    cache.set("k", 1)
    storage.flush()
    assert permission.check_permission("/o", "read", ["alice"]) and cache.get("k") == 1
    permission.flush()
    cache.flush()
    assert storage.get_all("c", "p") == ([], 0)
    assert record["id"] and not permission.check_permission("/o", "read", ["alice"]) and cache.get("k") is None


# -- fault drill on a private server ------------------------------------------------


@pytest.fixture
def private_redis():
    server = start_private_redis()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.mark.services
def test_backends_fail_cleanly_and_recover_after_a_server_restart(private_redis):
    config = make_config(storage_url=private_redis.url, cache_url=private_redis.url,
                         permission_url=private_redis.url, storage_pool_timeout=2.0,
                         cache_pool_timeout=2.0, permission_pool_timeout=2.0)
    storage = redis_storage.load_from_config(config)
    cache = redis_cache.load_from_config(config)
    permission = redis_permission.load_from_config(config)
    try:
        record = storage.create("articles", "alice", {"title": "before"})
        cache.set("k", {"v": 1})
        permission.add_principal_to_ace("/articles/1", "read", "alice")

        private_redis.shutdown()

        for backend in (storage, cache, permission):
            assert backend.heartbeat() is False
        started = time.monotonic()
        with pytest.raises(BackendError):
            storage.get("articles", "alice", record["id"])
        with pytest.raises(BackendError):
            storage.create("articles", "alice", {"title": "during"})
        with pytest.raises(BackendError):
            storage.get_all("articles", "alice")
        with pytest.raises(BackendError):
            cache.get("k")
        with pytest.raises(BackendError):
            permission.check_permission("/articles/1", "read", ["alice"])
        assert time.monotonic() - started < 10

        private_redis.start()

        # Same backend objects: the pool reconnects by itself.
        assert storage.heartbeat() is True
        assert storage.get("articles", "alice", record["id"])["title"] == "before"
        created = storage.create("articles", "alice", {"title": "after"})
        assert created["last_modified"] > record["last_modified"]
        assert cache.get("k") == {"v": 1}
        assert permission.check_permission("/articles/1", "read", ["alice"]) is True
        records, total = storage.get_all("articles", "alice")
        assert total == 2 and {r["title"] for r in records} == {"before", "after"}
    finally:
        for backend in (storage, cache, permission):
            close_client(backend.client)


@pytest.mark.services
def test_purge_remembers_its_horizon(redis_url, cliquet_worker_prefix):
    storage = redis_storage.load_from_config(
        make_config(storage_url=redis_url, storage_prefix=f"{cliquet_worker_prefix}pb:"))
    try:
        assert storage.purged_before("c", "p") is None
        records = [storage.create("c", "p", {"n": n}) for n in range(3)]
        tombstones = [storage.delete("c", "p", r["id"]) for r in records]
        assert storage.purge_deleted("c", "p", before=tombstones[1]["last_modified"]) == 1
        assert storage.purged_before("c", "p") == tombstones[1]["last_modified"]
        assert storage.purge_deleted("c", "p", before=tombstones[0]["last_modified"]) == 0
        assert storage.purged_before("c", "p") == tombstones[1]["last_modified"]
        assert storage.purge_deleted(None, None) == 2
        assert storage.purged_before("c", "p") == storage.collection_timestamp("c", "p") + 1
    finally:
        storage.flush()


@pytest.mark.services
def test_since_reads_only_changes_even_many(redis_url, cliquet_worker_prefix):
    from cliquet.storage import COMPARISON, Filter, Sort

    storage = redis_storage.load_from_config(
        make_config(storage_url=redis_url, storage_prefix=f"{cliquet_worker_prefix}since:"))
    try:
        first = storage.create("c", "p", {"n": -1})
        created = [storage.create("c", "p", {"n": n}) for n in range(2500)]
        storage.delete("c", "p", created[0]["id"])
        since = [Filter("last_modified", first["last_modified"], COMPARISON.GT)]
        records, total = storage.get_all("c", "p", filters=since, sorting=[Sort("last_modified", 1)],
                                         include_deleted=True)
        assert total == 2499 and len(records) == 2500
        assert records[-1] == {"id": created[0]["id"], "deleted": True,
                               "last_modified": storage.collection_timestamp("c", "p")}
        assert [r["n"] for r in records[:-1]] == list(range(1, 2500))
    finally:
        storage.flush()
