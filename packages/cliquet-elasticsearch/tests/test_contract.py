"""The indexer contract suite of cliquet-indexing, unchanged, against a real
Elasticsearch node."""

from __future__ import annotations

import contextlib

import pytest
from elasticsearch import Elasticsearch

from cliquet_indexing.testing.contract import IndexerContract


class TestElasticsearchIndexer(IndexerContract):
    @pytest.fixture
    def backend(self, make_indexer, es_prefix):
        indexer = make_indexer(es_prefix)
        indexer.initialize_schema()
        return indexer

    @pytest.fixture
    def make_backend(self, make_indexer):
        return make_indexer

    @pytest.fixture
    def backend_error(self, backend):
        @contextlib.contextmanager
        def unreachable():
            # A real client on a loopback port where nothing listens.
            working = backend.client
            backend.client = Elasticsearch("http://127.0.0.1:9", request_timeout=2, max_retries=0)
            try:
                yield
            finally:
                backend.client.close()
                backend.client = working

        return unreachable
