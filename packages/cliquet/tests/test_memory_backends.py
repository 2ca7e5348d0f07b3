"""The memory backends against the shared contract suites."""

import contextlib

import pytest

from cliquet.cache import memory as memory_cache
from cliquet.permission import memory as memory_permission
from cliquet.storage import memory as memory_storage
from cliquet.storage.exceptions import BackendError
from cliquet.testing import make_config
from cliquet.testing.atomicity import RequestAtomicityContract
from cliquet.testing.cache import CacheContract
from cliquet.testing.permission import PermissionContract
from cliquet.testing.storage import StorageContract


class _DownLock:
    """Stands for an unreachable server: taking the lock fails."""

    def __enter__(self):
        raise BackendError(message="simulated outage")

    def __exit__(self, *exc):  # pragma: no cover - never entered
        return False


@contextlib.contextmanager
def _down(backend):
    saved = backend._lock
    backend._lock = _DownLock()
    try:
        yield
    finally:
        backend._lock = saved


class TestMemoryCache(CacheContract):
    @pytest.fixture
    def backend(self):
        return memory_cache.load_from_config(make_config(cache_prefix="test:"))

    @pytest.fixture
    def make_backend(self, backend):
        return lambda prefix: memory_cache.Cache(prefix=prefix, server=backend.server)

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: _down(backend)


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def backend(self):
        return memory_storage.load_from_config(make_config())

    @pytest.fixture
    def capabilities(self):
        # One process's memory: nothing for another process to share.
        return {"transactions", "isolation"}

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: _down(backend)


class TestMemoryPermission(PermissionContract):
    @pytest.fixture
    def backend(self):
        return memory_permission.load_from_config(make_config())

    @pytest.fixture
    def storage(self):
        return memory_storage.load_from_config(make_config())

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: _down(backend)


class TestMemoryRequests(RequestAtomicityContract):
    """The memory backends of one app (the defaults), through the app."""

    @pytest.fixture
    def app_settings(self):
        return {"storage_backend": "cliquet.storage.memory", "permission_backend": "cliquet.permission.memory",
                "cache_backend": "cliquet.cache.memory"}

    @pytest.fixture
    def capabilities(self):
        # One process's memory: another app server has its own.
        return {"atomicity", "isolation"}
