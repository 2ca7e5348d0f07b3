"""The shared search endpoint contract on the PostgreSQL indexer: storage,
permissions and the index in one PostgreSQL schema of this test's own (the
real server of ``ci/services``)."""

from __future__ import annotations

import uuid

import pytest

from cliquet.testing.plugin import postgresql_schema, require_module
from cliquet_indexing.postgresql import PostgreSQLIndexer
from cliquet_indexing.setup import migrate_indexer
from cliquet_indexing.testing.app import make_search_app
from cliquet_indexing.testing.endpoint import PortableSearchEndpointContract

psycopg = require_module("psycopg", reason="the `postgresql` extra of cliquet is not installed")

pytestmark = pytest.mark.services


class TestPostgreSQLSearchEndpoint(PortableSearchEndpointContract):
    """The indexer that lives in the storage's database and transaction."""

    @pytest.fixture
    def make_app(self, postgresql_url, cliquet_worker_prefix):
        schema = f"{cliquet_worker_prefix}pe{uuid.uuid4().hex[:8]}"
        with postgresql_schema(postgresql_url, schema) as url:
            def make(resources=None, include="pyramid.includes", **settings):
                app = make_search_app(resources, include, storage_backend="cliquet.storage.postgresql",
                                      storage_url=url, permission_backend="cliquet.permission.postgresql",
                                      permission_url=url, **settings)
                registry = app.app.registry
                assert isinstance(registry.indexer, PostgreSQLIndexer)
                migrate_indexer(registry)
                return app

            yield make
