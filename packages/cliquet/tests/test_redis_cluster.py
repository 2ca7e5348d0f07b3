"""The Redis backends on a Redis Cluster: the shared contract suites on the
cluster of ``ci/services`` (``CLIQUET_TEST_REDIS_CLUSTER_URL``,
``redis+cluster://host:port``), the key layout (one hash slot per service,
the cache spread), the event listener.

The failover drill, which kills a master, runs on a private cluster of its
own (``test_redis_failover.py``), so the shared one is never touched.
"""

from __future__ import annotations

import pytest

from cliquet.testing.plugin import require_module, service_url

require_module("redis", reason="the `redis` extra is not installed")

from cliquet.cache import redis as redis_cache  # noqa: E402
from cliquet.permission import redis as redis_permission  # noqa: E402
from cliquet.storage import redis as redis_storage  # noqa: E402
from cliquet.storage.redis_client import close_client, get_client, is_cluster  # noqa: E402
from cliquet.testing import make_config  # noqa: E402
from cliquet.testing.atomicity import RequestAtomicityContract  # noqa: E402
from cliquet.testing.cache import CacheContract  # noqa: E402
from cliquet.testing.permission import PermissionContract  # noqa: E402
from cliquet.testing.servers import client_replaced, free_port  # noqa: E402
from cliquet.testing.storage import StorageContract  # noqa: E402

CLUSTER_URL_VARIABLE = "CLIQUET_TEST_REDIS_CLUSTER_URL"

pytestmark = pytest.mark.services


@pytest.fixture(scope="session")
def redis_cluster_url() -> str:
    """``CLIQUET_TEST_REDIS_CLUSTER_URL`` (skip locally / fail in CI when unset)."""
    return service_url(CLUSTER_URL_VARIABLE)


def unreachable(backend):
    """Point ``backend`` at a port where no server listens, then back."""
    dead = get_client(f"redis://127.0.0.1:{free_port()}/0", pool_size=1, pool_timeout=0.5)
    return client_replaced(backend, dead, close_client)


class TestClusterStorage(StorageContract):
    @pytest.fixture
    def backend(self, redis_cluster_url, cliquet_worker_prefix):
        storage = redis_storage.load_from_config(
            make_config(storage_url=redis_cluster_url, storage_prefix=f"{cliquet_worker_prefix}s:"))
        storage.initialize_schema()
        assert is_cluster(storage.client)
        return storage

    @pytest.fixture
    def concurrent_backend(self, redis_cluster_url, cliquet_worker_prefix):
        """Another app server's storage on the same keys."""
        return redis_storage.load_from_config(
            make_config(storage_url=redis_cluster_url, storage_prefix=f"{cliquet_worker_prefix}s:"))

    @pytest.fixture
    def backend_spec(self, redis_cluster_url, cliquet_worker_prefix):
        return "cliquet.storage.redis", {"storage_url": redis_cluster_url,
                                         "storage_prefix": f"{cliquet_worker_prefix}s:"}

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: unreachable(backend)


class TestClusterRequests(RequestAtomicityContract):
    @pytest.fixture
    def app_settings(self, redis_cluster_url, cliquet_worker_prefix):
        return {"storage_backend": "cliquet.storage.redis", "storage_url": redis_cluster_url,
                "storage_prefix": f"{cliquet_worker_prefix}rs:", "permission_backend": "cliquet.permission.redis",
                "permission_url": redis_cluster_url, "permission_prefix": f"{cliquet_worker_prefix}rp:",
                "cache_backend": "cliquet.cache.redis", "cache_url": redis_cluster_url,
                "cache_prefix": f"{cliquet_worker_prefix}rc:"}


class TestClusterCache(CacheContract):
    @pytest.fixture
    def backend(self, redis_cluster_url, cliquet_worker_prefix):
        return redis_cache.load_from_config(
            make_config(cache_url=redis_cluster_url, cache_prefix=f"{cliquet_worker_prefix}c:"))

    @pytest.fixture
    def make_backend(self, backend, cliquet_worker_prefix):
        return lambda prefix: redis_cache.RedisCache(backend.client, prefix=f"{cliquet_worker_prefix}{prefix}")

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: unreachable(backend)


class TestClusterPermission(PermissionContract):
    @pytest.fixture
    def backend(self, redis_cluster_url, cliquet_worker_prefix):
        return redis_permission.load_from_config(
            make_config(permission_url=redis_cluster_url, permission_prefix=f"{cliquet_worker_prefix}p:"))

    @pytest.fixture
    def storage(self, redis_cluster_url, cliquet_worker_prefix):
        return redis_storage.load_from_config(
            make_config(storage_url=redis_cluster_url, storage_prefix=f"{cliquet_worker_prefix}s:"))

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: unreachable(backend)


def test_one_service_one_slot_and_the_cache_spread(redis_cluster_url, cliquet_worker_prefix):
    """Storage and permission keys share a hash tag (one script commits a
    request); a prefix with its own tag keeps it; cache keys spread."""
    config = make_config(storage_url=redis_cluster_url, permission_url=redis_cluster_url,
                         cache_url=redis_cluster_url, storage_prefix=f"{cliquet_worker_prefix}ls:",
                         permission_prefix=f"{cliquet_worker_prefix}lp:", cache_prefix=f"{cliquet_worker_prefix}lc:")
    storage = redis_storage.load_from_config(config)
    permission = redis_permission.load_from_config(config)
    cache = redis_cache.load_from_config(config)
    client = storage.client
    try:
        assert storage.prefix == "{cliquet}" + f"{cliquet_worker_prefix}ls:"
        assert permission.join_transactions(storage) is True
        with storage.transaction():
            record = storage.create("articles", "", {"title": "x"})
            permission.add_principal_to_ace(f"/articles/{record['id']}", "read", "bob")
        keys = list(client.scan_iter(match=f"*{cliquet_worker_prefix}l[sp]:*"))
        assert len(keys) >= 5
        assert len({client.keyslot(k) for k in keys}) == 1
        own = redis_storage.load_from_config(make_config(
            storage_url=redis_cluster_url, storage_prefix="{%sown}:s:" % cliquet_worker_prefix))
        assert own.prefix == "{%sown}:s:" % cliquet_worker_prefix
        assert permission.join_transactions(own) is False  # another slot: not one script
        for i in range(64):
            cache.set(f"k{i}", i)
        slots = {client.keyslot(k) for k in client.scan_iter(match=f"{cliquet_worker_prefix}lc:*")}
        masters = {client.nodes_manager.get_node_from_slot(s).name for s in slots}
        assert len(masters) == 3
        cache.flush()
        assert cache.get("k1") is None and storage.get_all("articles", "")[1] == 1
    finally:
        storage.flush()
        permission.flush()
        cache.flush()


def test_listener_on_the_cluster(redis_cluster_url, cliquet_worker_prefix):
    """The Redis listener takes a ``redis+cluster://`` URL."""
    from cliquet.testing.app import basic_auth, make_app

    key = f"{cliquet_worker_prefix}events"
    app = make_app({"event_listeners": "redis", "event_listeners.redis.use": "cliquet.listeners.redis",
                    "event_listeners.redis.url": redis_cluster_url, "event_listeners.redis.key": key})
    client = get_client(redis_cluster_url, pool_size=10, pool_timeout=5.0)
    try:
        app.post_json("/v1/articles", {"data": {"title": "t"}}, headers=basic_auth("alice"), status=201)
        events = client.lrange(key, 0, -1)
        assert len(events) == 1 and b'"create"' in events[0]
    finally:
        client.delete(key)
