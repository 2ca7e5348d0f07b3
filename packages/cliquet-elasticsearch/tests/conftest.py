"""Fixtures of the cliquet-elasticsearch tests: the Elasticsearch node that
``ci/services`` started (``CLIQUET_TEST_ELASTICSEARCH_URL``) and indexers on
it, each with an index prefix of its own (xdist worker + test)."""

from __future__ import annotations

import uuid

import pytest

from cliquet.testing.plugin import service_url

ELASTICSEARCH_URL_VARIABLE = "CLIQUET_TEST_ELASTICSEARCH_URL"
#: seconds a request may take in tests (roomy: CI machines are busy).
TIMEOUT = 30


@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    """The shared test node (skip locally, fail in CI, when unset)."""
    return service_url(ELASTICSEARCH_URL_VARIABLE)


@pytest.fixture
def es_prefix(cliquet_worker_prefix, _remove_test_indexes) -> str:
    """An index prefix unique to this worker and this test (its indexes are
    removed at the end of the session)."""
    return f"{cliquet_worker_prefix}{uuid.uuid4().hex[:8]}_".lower()


@pytest.fixture(scope="session")
def _remove_test_indexes(elasticsearch_url, cliquet_worker_prefix):
    """At the end of the session, remove every index this worker created
    (cheaper than one deletion per test)."""
    yield
    from elasticsearch import Elasticsearch

    client = Elasticsearch(elasticsearch_url, request_timeout=60)
    try:
        names = sorted(client.indices.get(index=f"{cliquet_worker_prefix}*", allow_no_indices=True,
                                          ignore_unavailable=True, filter_path="*.settings.index.uuid"))
        for start in range(0, len(names), 50):
            client.indices.delete(index=",".join(names[start:start + 50]))
    finally:
        client.close()


@pytest.fixture
def make_indexer(elasticsearch_url, _remove_test_indexes):
    """``make_indexer(prefix, **options)``: an indexer on the test node,
    closed after the test (its indexes are removed at the end of the session)."""
    from cliquet_elasticsearch.indexer import ElasticsearchIndexer

    made = []

    def make(prefix, **options):
        options.setdefault("timeout", TIMEOUT)
        indexer = ElasticsearchIndexer(url=options.pop("url", elasticsearch_url), prefix=prefix, **options)
        made.append(indexer)
        return indexer

    yield make
    for indexer in made:
        indexer.close()
