"""Fixtures of cliquet-riak's tests.

By default every pytest-xdist worker starts its own Riak stand-in process
(:mod:`cliquet_riak.testing.standin`) on a free port. When
``CLIQUET_RIAK_URL`` is set (``http://127.0.0.1:8098``, e.g. the official
``basho/riak-kv`` container), the tests that need a Riak talk to it instead;
the tests that kill the node (faults) keep using stand-ins.

Each worker uses its own buckets (``cliquet_test_<worker>``) and each test
its own key prefix, so nothing is shared between tests.
"""

from __future__ import annotations

import os
import uuid

import pytest
import urllib3

from cliquet_riak.testing import StandinProcess

REAL_RIAK_URL = os.environ.get("CLIQUET_RIAK_URL")


@pytest.fixture(scope="session")
def worker_id_safe(request) -> str:
    """The pytest-xdist worker id (``master`` without xdist)."""
    return os.environ.get("PYTEST_XDIST_WORKER", "master")


@pytest.fixture(scope="session")
def riak_standin():
    """The worker's own stand-in node (``None`` when a real Riak is used)."""
    if REAL_RIAK_URL:
        yield None
        return
    node = StandinProcess().start()
    yield node
    node.kill()


@pytest.fixture(scope="session")
def riak_base_url(riak_standin) -> str:
    """``http://host:port`` of the Riak node the tests use."""
    return REAL_RIAK_URL.rstrip("/") if REAL_RIAK_URL else riak_standin.url


@pytest.fixture(scope="session")
def riak_bucket(worker_id_safe) -> str:
    """A bucket of the ``default`` type that only this worker uses."""
    return f"cliquet_test_{worker_id_safe}"


@pytest.fixture
def prefix() -> str:
    """A cache key prefix that only this test uses."""
    return f"t{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="session")
def http():
    """A plain HTTP client, to look at what the backend stored."""
    manager = urllib3.PoolManager(retries=False, timeout=5)
    yield manager
    manager.clear()
