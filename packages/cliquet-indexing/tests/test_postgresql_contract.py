"""The indexer contract suite against the PostgreSQL indexer, on the real
server of ``ci/services`` (``CLIQUET_TEST_POSTGRESQL_URL``), each worker in
a schema of its own."""

from __future__ import annotations

import contextlib
import socket
import urllib.parse

import pytest

from cliquet.testing.plugin import require_module

psycopg = require_module("psycopg", reason="the `postgresql` extra of cliquet is not installed")

from cliquet.storage.postgresql_client import PostgreSQLClient  # noqa: E402

from cliquet_indexing import postgresql  # noqa: E402
from cliquet_indexing.testing import make_config  # noqa: E402
from cliquet_indexing.testing.contract import IndexerContract  # noqa: E402


@pytest.fixture(scope="session")
def pg_index_url(postgresql_url, cliquet_worker_prefix):
    """The test server's URL with a schema of this worker's own."""
    schema = f"{cliquet_worker_prefix}ix"
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{postgresql_url}?options={urllib.parse.quote(f'-csearch_path={schema}')}"
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def unreachable(indexer):
    """Point ``indexer`` at a port where no server listens, then back."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    saved = indexer.client
    dead = PostgreSQLClient(f"postgresql://nobody@127.0.0.1:{port}/nothing", pool_size=1, pool_timeout=0.3)
    indexer.client = dead
    try:
        yield
    finally:
        indexer.client = saved
        dead.close()


@pytest.mark.services
class TestPostgreSQLIndexer(IndexerContract):
    @pytest.fixture
    def backend(self, pg_index_url):
        indexer = postgresql.load_from_config(make_config(indexing_backend="cliquet_indexing.postgresql",
                                                          indexing_url=pg_index_url))
        indexer.initialize_schema()
        yield indexer
        indexer.flush()

    @pytest.fixture
    def make_backend(self, backend):
        return lambda prefix: postgresql.PostgreSQLIndexer(backend.client, prefix=prefix)

    @pytest.fixture
    def backend_error(self, backend):
        return lambda: unreachable(backend)
