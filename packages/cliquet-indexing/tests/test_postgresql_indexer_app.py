"""The PostgreSQL indexer through the WSGI app on a PostgreSQL storage (the
real server of ``ci/services``): the default beside that storage, written in
the request's transaction, so a failed request leaves no index write."""

from __future__ import annotations

import urllib.parse
import uuid

import pytest

from cliquet.events import ResourceChanged
from cliquet.testing.app import SharedArticle, basic_auth
from cliquet.testing.plugin import postgresql_schema, require_module

from cliquet_indexing.postgresql import PostgreSQLIndexer
from cliquet_indexing.setup import migrate_indexer
from cliquet_indexing.testing.app import make_search_app
from cliquet_indexing.testing.queries import HOSTILE_SEARCHES, assert_refused

psycopg = require_module("psycopg", reason="the `postgresql` extra of cliquet is not installed")

pytestmark = pytest.mark.services


@pytest.fixture
def schema_url(postgresql_url, cliquet_worker_prefix):
    """A schema of this test's own on the test server."""
    schema = f"{cliquet_worker_prefix}pa{uuid.uuid4().hex[:8]}"
    with postgresql_schema(postgresql_url, schema) as url:
        yield url


@pytest.fixture
def app(schema_url):
    """A search app on PostgreSQL storage and permissions, no indexer named, migrated."""
    app = make_search_app(resources=(SharedArticle,), storage_backend="cliquet.storage.postgresql",
                          storage_url=schema_url, permission_backend="cliquet.permission.postgresql",
                          permission_url=schema_url)
    registry = app.app.registry
    registry.storage.initialize_schema()
    registry.permission.initialize_schema()
    migrate_indexer(registry)  # what `cliquet migrate` runs
    return app


def titles(app, headers, query=None):
    body = {"size": 100, "sort": ["title"], **({"query": query} if query else {})}
    resp = app.post_json("/v1/search/articles", body, headers=headers)
    assert resp.headers["Total-Records"] == str(len(resp.json["data"]))
    return [r["title"] for r in resp.json["data"]]


def test_it_is_the_default_beside_postgresql_storage_and_shares_its_client(app):
    registry = app.app.registry
    assert isinstance(registry.indexer, PostgreSQLIndexer)
    assert registry.indexer.client is registry.storage.client
    exists = registry.storage.client.execute("SELECT to_regclass('cliquet_index') IS NOT NULL", fetch="one")[0]
    assert exists  # created by the migrate hook


def test_an_explicit_indexer_or_a_sqlite_url_keeps_the_embedded_one(schema_url, tmp_path):
    from cliquet_indexing.embedded import EmbeddedIndexer

    pg = {"storage_backend": "cliquet.storage.postgresql", "storage_url": schema_url}
    named = make_search_app(indexing_backend="cliquet_indexing.embedded", **pg)
    assert isinstance(named.app.registry.indexer, EmbeddedIndexer)
    sqlite = make_search_app(indexing_url=f"sqlite:///{tmp_path / 'i.db'}", **pg)
    assert isinstance(sqlite.app.registry.indexer, EmbeddedIndexer)
    assert isinstance(make_search_app().app.registry.indexer, EmbeddedIndexer)  # memory storage


def test_writes_are_searchable_when_acknowledged_within_the_read_scope(app):
    alice, bob = basic_auth("alice"), basic_auth("bob")
    created = app.post_json("/v1/articles", {"data": {"title": "Brown fox", "tags": ["pets"]}}, headers=alice)
    record_id = created.json["data"]["id"]
    app.post_json("/v1/articles", {"data": {"title": "Lazy dog"}}, headers=bob)
    assert titles(app, alice, {"match": {"title": "FOX"}}) == ["Brown fox"]
    assert titles(app, bob) == ["Lazy dog"]
    app.patch_json(f"/v1/articles/{record_id}", {"data": {"title": "Quick fox"}}, headers=alice)
    assert titles(app, alice, {"match_phrase": {"title": "quick fox"}}) == ["Quick fox"]
    # shared with bob: the read principals are replaced in the same transaction
    bob_id = app.get("/v1/", headers=bob).json["user"]["id"]
    app.patch_json(f"/v1/articles/{record_id}", {"permissions": {"read": [bob_id]}}, headers=alice)
    assert titles(app, bob) == ["Lazy dog", "Quick fox"]
    app.delete(f"/v1/articles/{record_id}", headers=alice)
    assert titles(app, alice) == [] and titles(app, bob) == ["Lazy dog"]
    assert app.get("/v1/search/articles?q=fox", headers=alice).json["data"] == []


def test_a_request_that_fails_after_its_write_leaves_no_index_write(app):
    """The index row is written in the request's transaction: the listener
    failing after it rolls back the record and its index entry together."""
    alice = basic_auth("alice")
    registry = app.app.registry
    kept = app.post_json("/v1/articles", {"data": {"title": "kept"}}, headers=alice).json["data"]

    seen = []

    def fail(event):
        ids = [r["new"]["id"] for r in event.impacted_records if r["new"].get("title") in ("boom", "changed")]
        if ids:
            # the index already holds the write, inside the transaction about to roll back
            indexed = {key[1]: key[2] for key in registry.indexer.indexed_keys("article")}
            seen.append(all(indexed.get(r["new"]["id"]) == r["new"]["last_modified"]
                            for r in event.impacted_records))
            raise RuntimeError("a listener fails after the index write")

    registry.registerHandler(fail, (ResourceChanged,))  # after the indexer's listener
    app.post_json("/v1/articles", {"data": {"title": "boom"}}, headers=alice, status=500)
    app.patch_json(f"/v1/articles/{kept['id']}", {"data": {"title": "changed"}}, headers=alice, status=500)
    batch = {"requests": [{"method": "POST", "path": "/articles", "body": {"data": {"title": "fine"}}},
                          {"method": "POST", "path": "/articles", "body": {"data": {"title": "boom"}}}]}
    app.post_json("/v1/batch", batch, headers=alice, expect_errors=True)
    assert seen == [True, True, True]
    assert titles(app, alice) == ["kept"]
    rows = registry.storage.client.execute("SELECT data->>'title' FROM cliquet_index WHERE NOT deleted",
                                           readonly=True)
    assert [row[0] for row in rows] == ["kept"]
    assert registry.indexer.indexed_keys("article") and len(list(registry.indexer.indexed_keys("article"))) == 1


def test_the_index_write_leaves_with_the_commit_in_one_message(app, monkeypatch):
    """A write's index row costs no round trip of its own: its upsert is
    queued and sent in the same pipeline as the ``COMMIT``."""
    alice = basic_auth("alice")
    app.post_json("/v1/articles", {"data": {"title": "warm"}}, headers=alice)
    pipelines, current = [], []
    original_execute, original_pipeline = psycopg.Connection.execute, psycopg.Connection.pipeline

    def execute(self, query, *args, **kwargs):
        (current[-1] if current else pipelines.append([]) or pipelines[-1]).append(" ".join(str(query).split()))
        return original_execute(self, query, *args, **kwargs)

    import contextlib

    @contextlib.contextmanager
    def pipeline(self):
        current.append([])
        try:
            with original_pipeline(self) as p:
                yield p
        finally:
            pipelines.append(current.pop())

    monkeypatch.setattr(psycopg.Connection, "execute", execute)
    monkeypatch.setattr(psycopg.Connection, "pipeline", pipeline)
    app.post_json("/v1/articles", {"data": {"title": "Brown fox"}}, headers=alice)
    monkeypatch.undo()
    index_messages = [m for m in pipelines if any("cliquet_index" in q for q in m)]
    assert len(index_messages) == 1, pipelines
    assert index_messages[0][-1] == "COMMIT" and len(index_messages[0]) == 2, index_messages
    assert not any(m == ["COMMIT"] for m in pipelines)  # no COMMIT of its own
    assert titles(app, alice, {"match": {"title": "fox"}}) == ["Brown fox"]


def test_a_failing_index_write_fails_the_commit_and_undoes_the_record(app):
    """The queued index write fails at the commit: the request answers 503
    and neither the record nor its permissions nor its index row remain."""
    alice = basic_auth("alice")
    client = app.app.registry.storage.client
    app.post_json("/v1/articles", {"data": {"title": "kept"}}, headers=alice)
    client.execute("ALTER TABLE cliquet_index ADD CONSTRAINT no_boom CHECK (data->>'title' <> 'boom')", fetch=None)
    resp = app.post_json("/v1/articles", {"data": {"title": "boom"}}, headers=alice, status=503)
    assert resp.json["errno"] == 201
    assert [r["title"] for r in app.get("/v1/articles", headers=alice).json["data"]] == ["kept"]
    assert client.execute("SELECT count(*) FROM cliquet_index", fetch="one")[0] == 1
    assert client.execute("SELECT count(*) FROM cliquet_access_control_entries "
                          "WHERE object_id NOT LIKE '%' || (SELECT record_id FROM cliquet_index) || '%'",
                          fetch="one")[0] == 0
    # the pool's connection is clean: the next write goes through
    app.post_json("/v1/articles", {"data": {"title": "fine"}}, headers=alice)
    assert titles(app, alice) == ["fine", "kept"]


def test_deferring_is_refused_outside_a_transaction_and_in_a_savepoint(app):
    """:meth:`PostgreSQLClient.defer` queues only at the top level of a
    transaction; a later statement of the transaction sends the queue first."""
    client = app.app.registry.storage.client
    client.execute("CREATE TABLE deferred_t (n int)", fetch=None)
    assert client.defer("INSERT INTO deferred_t VALUES (%s)", (0,)) is False
    with client.transaction():
        with client.transaction():
            assert client.defer("INSERT INTO deferred_t VALUES (%s)", (1,)) is False
        assert client.defer("INSERT INTO deferred_t VALUES (%s)", (2,)) is True
        # read inside the transaction: the queued write was sent first
        assert client.execute("SELECT array_agg(n) FROM deferred_t", fetch="one")[0] == [2]
        assert client.defer("INSERT INTO deferred_t VALUES (%s)", (3,)) is True
    assert client.execute("SELECT array_agg(n ORDER BY n) FROM deferred_t", fetch="one")[0] == [2, 3]
    with pytest.raises(RuntimeError):
        with client.transaction():
            client.execute("INSERT INTO deferred_t VALUES (4)", fetch=None)
            client.defer("INSERT INTO deferred_t VALUES (%s)", (5,))
            raise RuntimeError("undone")
    assert client.execute("SELECT array_agg(n ORDER BY n) FROM deferred_t", fetch="one")[0] == [2, 3]


def test_reindex_fills_the_index_of_a_service_switched_to_it(app):
    """Records written before the switch (an empty index here) are found
    once ``cliquet-indexing reindex`` ran."""
    from cliquet_indexing.scripts import reindex_resource

    alice, bob = basic_auth("alice"), basic_auth("bob")
    registry = app.app.registry
    for i in range(12):
        app.post_json("/v1/articles", {"data": {"title": f"old {i:02d}"}}, headers=alice)
    app.post_json("/v1/articles", {"data": {"title": "bob's"}}, headers=bob)
    registry.indexer.flush()
    assert titles(app, alice) == []
    counts = reindex_resource(registry, None, "article", batch_size=5)
    assert counts["indexed"] == 13 and counts["removed"] == 0
    assert titles(app, alice) == [f"old {i:02d}" for i in range(12)]
    assert titles(app, bob) == ["bob's"]


def test_on_another_database_it_indexes_after_the_commit(schema_url, postgresql_url, cliquet_worker_prefix):
    """An ``indexing_url`` that is not the storage's database cannot join its
    transaction: the indexer then works like a remote one (after the commit,
    through the retry queue), never writing before the storage commits."""
    other = f"{cliquet_worker_prefix}po{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{other}"')
    try:
        index_url = f"{postgresql_url}?options={urllib.parse.quote(f'-csearch_path={other}')}"
        app = make_search_app(resources=(SharedArticle,), storage_backend="cliquet.storage.postgresql",
                              storage_url=schema_url, permission_backend="cliquet.permission.postgresql",
                              permission_url=schema_url, indexing_url=index_url)
        registry = app.app.registry
        registry.storage.initialize_schema()
        registry.permission.initialize_schema()
        migrate_indexer(registry)
        assert isinstance(registry.indexer, PostgreSQLIndexer) and registry.indexer.transactional is False
        alice = basic_auth("alice")
        app.post_json("/v1/articles", {"data": {"title": "elsewhere"}}, headers=alice)
        assert titles(app, alice) == ["elsewhere"]
    finally:
        with psycopg.connect(postgresql_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{other}" CASCADE')


@pytest.mark.parametrize("case", sorted(HOSTILE_SEARCHES))
def test_hostile_searches_are_refused(app, case):
    """The hostile bodies every indexer refuses: a 400 naming the limit, in
    a bounded time, nothing written — on the PostgreSQL indexer too."""
    alice = basic_auth("alice")
    for i in range(3):
        app.post_json("/v1/articles", {"data": {"title": f"brown fox {i}", "score": i}}, headers=alice)
    build, setting = HOSTILE_SEARCHES[case]
    assert_refused(app, "/v1/search/articles", alice, build(), setting)
    assert app.get("/v1/articles", headers=alice).headers["Total-Records"] == "3"
