"""The PostgreSQL client's transaction control sent only before the
statements that need it (``BEGIN``, ``SAVEPOINT``, ``RELEASE`` in one
message): a failed statement undoes exactly its level, a transaction
that PostgreSQL aborted is never reported as committed, and a connection
found dead before anything was written is swapped for a fresh one."""

import time
import uuid

import pytest

from cliquet.testing.plugin import postgresql_schema, require_module

psycopg = require_module("psycopg", reason="the `postgresql` extra is not installed")

from cliquet.storage import postgresql as pg_storage  # noqa: E402
from cliquet.storage.exceptions import BackendError  # noqa: E402
from cliquet.testing import make_config  # noqa: E402
from cliquet.testing.statements import record_statements  # noqa: E402


@pytest.fixture
def storage(postgresql_url, cliquet_worker_prefix):
    with postgresql_schema(postgresql_url, f"{cliquet_worker_prefix}savepoints") as url:
        backend = pg_storage.load_from_config(make_config(storage_url=url))
        backend.initialize_schema()
        yield backend


@pytest.fixture
def collection():
    return f"c-{uuid.uuid4().hex[:8]}"


def _ids(storage, collection):
    return {r["id"] for r in storage.get_all(collection, "p")[0]}


@pytest.mark.services
def test_a_transaction_aborted_by_a_failed_statement_is_not_reported_committed(storage, collection):
    # PostgreSQL answers ROLLBACK, not an error, to such a COMMIT: a request
    # (or a batch of them) must not answer as if its writes were kept.
    with pytest.raises(BackendError, match="nothing was committed"):
        with storage.transaction():
            storage.create(collection, "p", {"id": "a"})
            with pytest.raises(BackendError):
                storage.client.execute("SELECT 1 / 0", readonly=True)
    assert _ids(storage, collection) == set()


@pytest.mark.services
def test_a_failed_read_in_a_nested_block_undoes_only_that_block(storage, collection, monkeypatch):
    statements = record_statements(monkeypatch)
    with storage.transaction():
        storage.create(collection, "p", {"id": "a"})
        with pytest.raises(BackendError):
            with storage.transaction():
                storage.create(collection, "p", {"id": "inner"})
                storage.client.execute("SELECT 1 / 0", readonly=True)
        with pytest.raises(BackendError):
            with storage.transaction():  # the read is the block's first statement
                storage.client.execute("SELECT 1 / 0", readonly=True)
        with storage.transaction():
            pass  # a block that sends nothing costs nothing
        storage.create(collection, "p", {"id": "b"})
    assert _ids(storage, collection) == {"a", "b"}
    # a savepoint only for a block that sends something, before its first statement
    control = [s for s in statements if s.startswith(("BEGIN", "SAVEPOINT", "RELEASE"))]
    assert control == ["BEGIN", "SAVEPOINT cliquet_sp1", "RELEASE SAVEPOINT cliquet_sp1; SAVEPOINT cliquet_sp1"]


@pytest.mark.services
def test_a_connection_dead_before_the_first_write_is_swapped(storage, collection):
    with storage.transaction() as conn:
        assert storage.get_all(collection, "p")[0] == []  # a read: no BEGIN yet
        with psycopg.connect(storage.client.url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        for _ in range(50):
            if conn.closed or conn.broken:
                break
            time.sleep(0.05)
            try:
                conn.pgconn.consume_input()
            except psycopg.OperationalError:
                break
        with storage.transaction():  # BEGIN and SAVEPOINT on a dead connection
            storage.create(collection, "p", {"id": "x"})
        storage.create(collection, "p", {"id": "y"})
    assert _ids(storage, collection) == {"x", "y"}


@pytest.mark.services
@pytest.mark.parametrize("began", [False, True])
def test_a_failing_deferred_write_fails_the_commit_and_leaves_the_connection_clean(storage, collection, began):
    with pytest.raises(BackendError):
        with storage.transaction() as conn:
            if began:
                storage.create(collection, "p", {"id": "a"})
            assert storage.client.defer("SELECT 1 / 0", None)
    assert conn.info.transaction_status.name == "IDLE"  # rolled back, back in the pool as it came
    assert _ids(storage, collection) == set()
    with storage.transaction():
        storage.create(collection, "p", {"id": "b"})
    assert _ids(storage, collection) == {"b"}


@pytest.mark.services
@pytest.mark.parametrize("commits_between", range(8))
def test_a_failed_pipeline_leaves_no_statement_half_prepared(postgresql_url, commits_between):
    # psycopg prepares a statement the sixth time it runs on a connection.
    # A COMMIT whose sixth run was in a pipeline that a failed statement
    # aborted was never prepared by the server, yet psycopg took it as
    # prepared (once it had seen a ROLLBACK): every later COMMIT on that
    # connection failed with 'prepared statement "_pg3_1" does not exist'.
    from cliquet.storage.postgresql_client import PostgreSQLClient

    client = PostgreSQLClient(postgresql_url, pool_size=1)  # one connection: every transaction on it

    def commit():
        with client.transaction():
            client.execute("SELECT 1", fetch="one")  # not readonly: sends the BEGIN

    def fail():
        with pytest.raises(BackendError):
            with client.transaction():
                client.execute("SELECT 1", fetch="one")
                assert client.defer("SELECT 1 / 0", None)

    try:
        fail()
        for _ in range(commits_between):
            commit()
        fail()
        for _ in range(8):
            commit()
    finally:
        client.close()


@pytest.mark.services
@pytest.mark.parametrize("runs_before", range(8))
def test_a_statement_prepared_in_a_failed_pipeline_is_prepared_again(postgresql_url, runs_before):
    # The statement's run that psycopg prepares (its sixth) falls, for one
    # of these parameters, in a pipeline that an earlier statement fails:
    # the server skipped the preparation, so psycopg must not use it.
    from cliquet.storage.postgresql_client import pipeline

    statement = "SELECT %s::int + 1"
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        for i in range(runs_before):
            with pipeline(conn):
                assert conn.execute(statement, (i,)).fetchone() == (i + 1,)
        with pytest.raises(psycopg.errors.DivisionByZero):
            with pipeline(conn):
                conn.execute("SELECT 1 / 0")
                conn.execute(statement, (0,))
        for i in range(8):
            assert conn.execute(statement, (i,)).fetchone() == (i + 1,)
            with pipeline(conn):
                cursor = conn.execute(statement, (i,))
            assert cursor.fetchone() == (i + 1,)
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] >= 1
