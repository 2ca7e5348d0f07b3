"""The indexer contract suite against the embedded SQLite FTS5 indexer, in
memory and in a file (where a second process-like connection holding an
exclusive lock is the real fault the error-path tests use)."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from cliquet_indexing import embedded
from cliquet_indexing.testing import make_config
from cliquet_indexing.testing.contract import IndexerContract


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive lock on the SQLite file ``path`` (as another process would)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


class TestEmbeddedInMemory(IndexerContract):
    @pytest.fixture
    def backend(self, cliquet_worker_prefix):
        indexer = embedded.load_from_config(make_config(indexing_prefix=cliquet_worker_prefix))
        indexer.initialize_schema()
        yield indexer
        indexer.close()


class TestEmbeddedInAFile(IndexerContract):
    @pytest.fixture
    def path(self, tmp_path):
        return str(tmp_path / "index.db")

    @pytest.fixture
    def backend(self, path, cliquet_worker_prefix):
        indexer = embedded.load_from_config(make_config(indexing_url=f"sqlite:///{path}?timeout=0.05",
                                                        indexing_prefix=cliquet_worker_prefix))
        indexer.initialize_schema()
        yield indexer
        indexer.close()

    @pytest.fixture
    def make_backend(self, path):
        return lambda prefix: embedded.EmbeddedIndexer(url=f"sqlite:///{path}", prefix=prefix)

    @pytest.fixture
    def backend_error(self, path):
        return lambda: locked(path)
