"""The Riak cache against the shared cache contract suite, unchanged.

Twice: on a bucket of the ``default`` type (no siblings), and on a bucket
with ``allow_mult = true``, where every overwrite makes siblings that the
backend has to resolve.
"""

from __future__ import annotations

import contextlib
import json

import pytest
from cliquet.testing import make_config
from cliquet.testing.cache import CacheContract

from cliquet_riak import cache as riak_cache


def _backend(url, prefix, **settings):
    backend = riak_cache.load_from_config(make_config(cache_url=url, cache_prefix=prefix,
                                                      riak_read_timeout="5s", **settings))
    backend.initialize_schema()
    return backend


@contextlib.contextmanager
def _node_down(node):
    node.kill()
    try:
        yield
    finally:
        node.start()


class RiakContractFixtures(CacheContract):
    bucket_suffix = ""

    @pytest.fixture
    def bucket_url(self, riak_base_url, riak_bucket):
        return f"{riak_base_url}/types/default/buckets/{riak_bucket}{self.bucket_suffix}"

    @pytest.fixture
    def backend(self, bucket_url, prefix):
        backend = _backend(bucket_url, prefix)
        yield backend
        backend.close()

    @pytest.fixture
    def make_backend(self, backend):
        return lambda prefix: riak_cache.RiakCache(backend.client, backend.location, prefix=prefix)

    @pytest.fixture
    def backend_error(self, riak_standin):
        if riak_standin is None:
            return None  # a real Riak is not ours to kill: see test_faults.py
        return lambda: _node_down(riak_standin)


class TestRiakCache(RiakContractFixtures):
    """Default bucket type: Riak keeps one value per key."""


class TestRiakCacheWithSiblings(RiakContractFixtures):
    """A bucket with ``allow_mult``: blind writes create siblings."""

    bucket_suffix = "_mult"

    @pytest.fixture
    def backend(self, bucket_url, prefix, http):
        response = http.request("PUT", bucket_url + "/props", body=json.dumps({"props": {"allow_mult": True}}),
                                headers={"Content-Type": "application/json"})
        assert response.status == 204
        backend = _backend(bucket_url, prefix)
        yield backend
        backend.close()
