"""``cliquet-indexing reindex``: a real process rebuilds the index file from a
real PostgreSQL storage shared with the application, repairing missed
changes and removing stale entries; it can be interrupted and run again."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse

import pytest
import webtest
from pyramid.paster import get_app

from cliquet.testing.app import basic_auth
from cliquet_indexing.embedded import EmbeddedIndexer
from cliquet_indexing.indexer import IndexEntry
from cliquet_indexing.scripts import main, reindex_resource

pytestmark = pytest.mark.services

INI = """
[app:main]
use = call:cliquet_indexing.testing.app:app_factory
pyramid.includes = cliquet_indexing
cliquet.userid_hmac_secret = test
cliquet.storage_backend = cliquet.storage.postgresql
cliquet.storage_url = {storage_url}
cliquet.indexing_url = sqlite:///{index_path}
cliquet.indexing_retry_interval = 0
cliquet.schema_check = migrate
"""


@pytest.fixture
def storage_url(postgresql_url, cliquet_worker_prefix, request):
    """A PostgreSQL schema of this test's own."""
    import psycopg

    schema = f"{cliquet_worker_prefix}ix{abs(hash(request.node.nodeid)) % 10**8}"
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield postgresql_url + ("&" if "?" in postgresql_url else "?") + "options=" + urllib.parse.quote(
        f"-csearch_path={schema}")
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def ini(tmp_path, storage_url):
    index_path = tmp_path / "index.db"
    path = tmp_path / "app.ini"
    path.write_text(INI.format(storage_url=storage_url.replace("%", "%%"), index_path=index_path))
    return str(path)


def app_for(ini):
    """The application of ``ini`` (in this process), its storage schema created."""
    app = webtest.TestApp(get_app(ini))
    app.app.registry.storage.initialize_schema()
    return app


def run_reindex(*args):
    script = os.path.join(os.path.dirname(sys.executable), "cliquet-indexing")
    return subprocess.run([script, "reindex", *args], capture_output=True, text=True, timeout=120)


def total(app, headers):
    resp = app.post_json("/v1/search/articles", {"size": 100, "sort": ["title"]}, headers=headers)
    assert resp.headers["Total-Records"] == str(len(resp.json["data"]))
    return [r["title"] for r in resp.json["data"]]


def test_reindex_repairs_missed_and_stale_entries(ini, tmp_path):
    app = app_for(ini)
    alice, bob = basic_auth("alice"), basic_auth("bob")
    for i in range(25):
        app.post_json("/v1/articles", {"data": {"title": f"a{i:02d}"}}, headers=alice)
    for i in range(4):
        app.post_json("/v1/articles", {"data": {"title": f"b{i}"}}, headers=bob)
    registry = app.app.registry
    alice_id = app.get("/v1/", headers=alice).json["user"]["id"]
    # changes the index missed: written to storage only, removed from the index, stale entries
    for i in range(25, 30):
        registry.storage.create("article", alice_id, {"title": f"a{i:02d}"})
    # an index that lost entries (restored from an old copy): 3 of alice's records missing
    keys = list(registry.indexer.indexed_keys("article"))
    lost = [key for key in keys if key[0] == alice_id][:3]
    kept = [key for key in keys if key not in lost]
    records = {(p, r["id"]): r for p in (alice_id, app.get("/v1/", headers=bob).json["user"]["id"])
               for r in registry.storage.get_all("article", p)[0]}
    registry.indexer.flush()
    registry.indexer.index_records("article", [IndexEntry(p, records[(p, rid)], (p,)) for p, rid, _ in kept])
    assert sum(1 for key in kept if key[0] == alice_id) == 22
    registry.indexer.index_records("article", [IndexEntry(alice_id, {"id": "ghost", "last_modified": 1,
                                                                     "title": "ghost"}, (alice_id,))])
    assert len(total(app, alice)) == 25 - 3 + 1

    result = run_reindex("--ini", ini, "--batch-size", "7")
    assert result.returncode == 0, result.stderr
    assert "34 record(s) of 2 parent(s) indexed, 1 stale entry removed" in result.stdout
    assert total(app, alice) == [f"a{i:02d}" for i in range(30)]
    assert total(app, bob) == [f"b{i}" for i in range(4)]

    again = run_reindex("--ini", ini, "--resource", "articles", "-q")
    assert again.returncode == 0, again.stderr
    assert "34 record(s) of 2 parent(s) indexed, 0 stale entries removed" in again.stdout
    assert len(total(app, alice)) == 30


def test_interrupted_then_rerun(ini):
    app = app_for(ini)
    registry = app.app.registry
    for i in range(40):
        registry.storage.create("article", "someone", {"title": f"t{i:02d}"})
    registry.indexer.index_records("article", [IndexEntry("someone", {"id": "stale", "last_modified": 1},
                                                          ("someone",))])
    calls = []

    def interrupt(step, total):
        calls.append(step)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reindex_resource(registry, None, "article", batch_size=10, progress=interrupt)
    keys = set(registry.indexer.indexed_keys("article"))
    assert len(keys) == 20 + 1  # two batches in, the stale entry not yet removed
    counts = reindex_resource(registry, None, "article", batch_size=10)
    assert counts == {"indexed": 40, "removed": 1, "parents": 1}
    assert set(registry.indexer.indexed_keys("article")) == {("someone", r["id"], r["last_modified"]) for r in
                                                            registry.storage.get_all("article", "someone")[0]}


def test_unknown_resource_and_missing_plugin(ini, tmp_path, capsys):
    assert main(["reindex", "--ini", ini, "--resource", "unicorns"]) == 2
    assert "No indexed resource named 'unicorns'" in capsys.readouterr().out
    bare = tmp_path / "bare.ini"
    bare.write_text("[app:main]\nuse = call:cliquet.testing.app:app_factory\ncliquet.userid_hmac_secret = x\n")
    assert main(["reindex", "--ini", str(bare)]) == 2
    assert "does not include cliquet_indexing" in capsys.readouterr().out


def test_an_indexer_file_is_what_the_command_fills(ini, tmp_path):
    app = app_for(ini)
    app.app.registry.storage.create("article", "u1", {"title": "only in storage"})
    assert run_reindex("--ini", ini, "-q").returncode == 0
    indexer = EmbeddedIndexer(url=f"sqlite:///{tmp_path / 'index.db'}")
    found = indexer.search("article", indexer.validate_query({"query": {"match": {"title": "storage"}}}), ["u1"])
    assert [r["title"] for r in found.records] == ["only in storage"]
    indexer.close()


def test_reindex_never_removes_what_was_written_during_the_run(ini):
    """A record created (and indexed by the service) while reindex reads
    storage is not taken for a stale entry; one deleted meanwhile stays deleted."""
    app = app_for(ini)
    registry = app.app.registry
    for i in range(30):
        registry.storage.create("article", "someone", {"title": f"t{i:02d}"})
    doomed = registry.storage.create("article", "someone", {"id": "zzzz-doomed", "title": "doomed"})
    registry.indexer.index_records("article", [IndexEntry("someone", doomed, ("someone",))])
    written = {}

    def meanwhile(step, total):
        if total is None and not written:
            # behind the cursor of the listing: never seen by this run
            record = registry.storage.create("article", "someone", {"id": "0000-new", "title": "new"})
            registry.indexer.index_records("article", [IndexEntry("someone", record, ("someone",))])
            tombstone = registry.storage.delete("article", "someone", doomed["id"])
            registry.indexer.unindex_records("article", [("someone", doomed["id"], tombstone["last_modified"])])
            written["new"] = record

    counts = reindex_resource(registry, None, "article", batch_size=10, progress=meanwhile)
    keys = {rid for _, rid, _ in registry.indexer.indexed_keys("article")}
    assert "0000-new" in keys
    assert doomed["id"] not in keys
    assert counts["removed"] == 1  # the doomed record's entry, at the version just above its own
    stored = {r["id"] for r in registry.storage.get_all("article", "someone", limit=1000)[0]}
    assert keys == stored
