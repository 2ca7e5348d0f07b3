"""Fixtures of the cliquet-elasticsearch tests: the Elasticsearch node that
``ci/services`` started (``CLIQUET_TEST_ELASTICSEARCH_URL``) and indexers on
it, each with an index prefix of its own (xdist worker + test)."""

from __future__ import annotations

import uuid

import pytest

from cliquet.testing.plugin import service_url

ELASTICSEARCH_URL_VARIABLE = "CLIQUET_TEST_ELASTICSEARCH_URL"


@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    """The shared test node (skip locally, fail in CI, when unset)."""
    return service_url(ELASTICSEARCH_URL_VARIABLE)


@pytest.fixture
def es_prefix(cliquet_worker_prefix) -> str:
    """An index prefix unique to this worker and this test."""
    return f"{cliquet_worker_prefix}{uuid.uuid4().hex[:8]}_".lower()


@pytest.fixture
def make_indexer(elasticsearch_url):
    """``make_indexer(prefix, **options)``: an indexer on the test node,
    flushed and closed after the test."""
    from cliquet_elasticsearch.indexer import ElasticsearchIndexer

    made = []

    def make(prefix, **options):
        indexer = ElasticsearchIndexer(url=options.pop("url", elasticsearch_url), prefix=prefix, **options)
        made.append(indexer)
        return indexer

    yield make
    for indexer in made:
        try:
            indexer.flush()
        except Exception:
            pass
        indexer.close()
