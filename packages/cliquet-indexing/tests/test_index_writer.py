"""The embedded indexer's writer: requests never wait on the index file,
changes are grouped in transactions, a search reads its own process's
writes, and the pending changes are bounded."""

from __future__ import annotations

import random
import re
import sqlite3
import threading
import time

from cliquet_indexing.embedded import EmbeddedIndexer
from cliquet_indexing.embedded.writer import IndexWriter
from cliquet_indexing.indexer import IndexEntry
from cliquet_indexing.retry import INDEX, UNINDEX, RetryQueue
from cliquet_indexing.testing.app import make_search_app

URL = "/v1/search/articles"


def entry(record_id, version, **fields):
    return IndexEntry("u", {"id": record_id, "last_modified": version, **fields}, ("u",))


def test_writes_do_not_wait_for_another_process_holding_the_index(tmp_path, alice):
    """Another process in a long write transaction on the index file: writes
    answer at once (they used to wait for SQLite's lock inside the request),
    and the changes are searchable once it commits."""
    path = str(tmp_path / "index.db")
    app = make_search_app(indexing_url=f"sqlite:///{path}?timeout=3")
    app.post_json("/v1/articles", {"data": {"title": "warm"}}, headers=alice)
    app.app.registry.indexer.write_behind.flush()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        durations = []
        for i in range(5):
            started = time.perf_counter()
            app.post_json("/v1/articles", {"data": {"title": f"w{i}"}}, headers=alice, status=201)
            durations.append(time.perf_counter() - started)
        assert max(durations) < 0.5, durations
    finally:
        other.execute("COMMIT")
        other.close()
    resp = app.post_json(URL, {"sort": ["title"]}, headers=alice)
    assert [r["title"] for r in resp.json["data"]] == ["w0", "w1", "w2", "w3", "w4", "warm"]
    assert not app.app.registry.indexing_retry.failing


def test_a_search_reads_the_writes_of_its_process(alice):
    """The writer thread is made too slow to help: the search applies what is pending."""
    app = make_search_app()
    writer = app.app.registry.indexer.write_behind
    writer.gather = 60
    created = app.post_json("/v1/articles", {"data": {"title": "fresh"}}, headers=alice).json["data"]
    app.patch_json(f"/v1/articles/{created['id']}", {"data": {"title": "fresher"}}, headers=alice)
    resp = app.get(URL + "?q=fresher", headers=alice)
    assert [r["id"] for r in resp.json["data"]] == [created["id"]]
    app.delete(f"/v1/articles/{created['id']}", headers=alice)
    assert app.get(URL, headers=alice).headers["Total-Records"] == "0"


def test_changes_of_many_requests_share_one_transaction(tmp_path):
    indexer = EmbeddedIndexer(f"sqlite:///{tmp_path / 'index.db'}")
    writer = IndexWriter(indexer, gather=0.3)
    barrier = threading.Barrier(8)

    def write(n):
        barrier.wait()
        for i in range(10):
            writer.submit("r", [(INDEX, "u", f"{n}-{i}", entry(f"{n}-{i}", 1, t="x"))])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    deadline = time.monotonic() + 10
    while len(writer) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(writer) == 0
    assert writer.transactions <= 2  # one, or two if the thread woke between the first submits
    assert len(list(indexer.indexed_keys("r"))) == 80
    writer.close()
    indexer.close()


def test_the_newest_version_wins_whatever_the_order_of_submits():
    indexer = EmbeddedIndexer()
    writer = indexer.write_behind
    for _ in range(20):
        ops = [(INDEX, "u", "a", entry("a", v, t=f"v{v}")) for v in range(1, 9)] + [(UNINDEX, "u", "b", 5),
                                                                                   (INDEX, "u", "b", entry("b", 4))]
        random.shuffle(ops)
        for op in ops:
            writer.submit("r", [op])
        time.sleep(random.choice([0, 0.006]))
    writer.flush()
    assert sorted(indexer.indexed_keys("r")) == [("u", "a", 8)]
    indexer.close()


def test_a_full_writer_makes_a_write_wait_at_most_the_write_timeout():
    """Past its bound the writer refuses; the retry queue takes the changes
    (and replays them), so nothing is lost and nothing waits longer."""
    indexer = EmbeddedIndexer()
    writer = indexer.write_behind
    writer.max_pending, writer.gather = 2, 60
    queue = RetryQueue(indexer, interval=0, write_timeout=0.2)
    assert queue.submit("r", [(INDEX, "u", "a", entry("a", 1)), (INDEX, "u", "b", entry("b", 1))])
    started = time.perf_counter()
    assert queue.submit("r", [(INDEX, "u", "c", entry("c", 1))]) is False
    assert 0.15 < time.perf_counter() - started < 1
    assert queue.failing and len(queue) == 1 and len(writer) == 2
    assert queue.replay() == 1
    writer.flush()
    assert sorted(k for _, k, _ in indexer.indexed_keys("r")) == ["a", "b", "c"]
    indexer.close()


def test_a_failed_transaction_goes_to_the_retry_queue(tmp_path):
    path = str(tmp_path / "index.db")
    indexer = EmbeddedIndexer(f"sqlite:///{path}?timeout=0.05")
    indexer.initialize_schema()
    queue = RetryQueue(indexer, interval=0)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        assert queue.submit("r", [(INDEX, "u", "a", entry("a", 1))]) is True
        indexer.write_behind.flush()
        assert queue.failing and len(queue) == 1
        assert queue.submit("r", [(UNINDEX, "u", "a", 2)]) is False  # the circuit is open
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert queue.replay() == 1
    assert list(indexer.indexed_keys("r")) == []
    indexer.close()


def _rows(indexer):
    """The ``vals``, ``scope`` and ``fts`` rows of the one indexed record,
    with field paths for field codes (two indexes number fields differently)."""
    conn, t = indexer._connection(), indexer.tables
    paths = dict(conn.execute(f"SELECT code, path FROM {t['fields']}").fetchall())
    vals = sorted(conn.execute(f"SELECT f.path, v.kind, v.v FROM {t['vals']} v JOIN {t['fields']} f "
                               "ON f.code = v.field").fetchall(), key=repr)
    scope = sorted(conn.execute(f"SELECT resource, principal FROM {t['scope']}").fetchall())
    words = [re.sub(r"\bc(\d+)x", lambda m: paths[int(m.group(1))] + ":", words)
             for words, in conn.execute(f"SELECT words FROM {t['fts']}").fetchall()]
    return vals, scope, words


def test_an_update_rewrites_only_what_changed_and_matches_a_fresh_index():
    indexer = EmbeddedIndexer()
    versions = [
        {"title": "a b", "tags": ["x", "x", "y"], "n": 1, "ok": True},
        {"title": "a b", "tags": ["x", "x", "y"], "n": 2, "ok": True},  # one number changes
        {"title": "c", "tags": ["x"], "n": 2.0, "ok": 1},
        {"tags": ["x", "x"], "n": "2"},  # no words left, a number becomes a string
        {"title": "d d", "tags": [], "n": 2},
    ]
    principals = [("u",), ("u",), ("u", "g"), ("g",), ("u", "system.Everyone")]
    conn = indexer._connection()
    for version, (fields, readers) in enumerate(zip(versions, principals), start=1):
        before = conn.total_changes
        indexer.index_records("r", [IndexEntry("u", {"id": "a", "last_modified": version, **fields}, readers)])
        if version == 2:
            # the docs row, n and last_modified out and in (5 rows), not every value,
            # the scope and the words again (about 20 rows)
            assert conn.total_changes - before <= 5
        fresh = EmbeddedIndexer()
        fresh.index_records("r", [IndexEntry("u", {"id": "a", "last_modified": version, **fields}, readers)])
        assert _rows(indexer) == _rows(fresh), version
        fresh.close()
    indexer.close()
