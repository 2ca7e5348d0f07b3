"""The indexer fails (its SQLite file is locked by another connection, as
another process would): searches get 503 errno 201, writes still succeed
without waiting on the indexer, and the retry queue brings the index back in
line once the indexer is back — never resurrecting a deleted record."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time

import pytest

from cliquet.storage.exceptions import BackendError
from cliquet_indexing.indexer import IndexEntry
from cliquet_indexing.retry import INDEX, UNINDEX, RetryQueue
from cliquet_indexing.testing.app import make_search_app

URL = "/v1/search/articles"


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive lock on the index file."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.fixture
def index_path(tmp_path):
    return str(tmp_path / "index.db")


def make(index_path, timeout=0.05, **settings):
    return make_search_app(indexing_url=f"sqlite:///{index_path}?timeout={timeout}", **settings)


def settle(app):
    """Apply the changes the index writer holds now (in the test's thread):
    with the index locked they land in the retry queue."""
    app.app.registry.indexer.write_behind.flush()


def titles(app, headers):
    resp = app.post_json(URL, {"sort": ["title"], "size": 100}, headers=headers)
    assert resp.headers["Total-Records"] == str(len(resp.json["data"]))
    return [r["title"] for r in resp.json["data"]]


def test_search_is_503_while_writes_succeed(index_path, alice, caplog):
    app = make(index_path)
    queue = app.app.registry.indexing_retry
    kept = app.post_json("/v1/articles", {"data": {"title": "a"}}, headers=alice).json["data"]
    with locked(index_path):
        app.post_json("/v1/articles", {"data": {"title": "b"}}, headers=alice, status=201)
        app.patch_json(f"/v1/articles/{kept['id']}", {"data": {"title": "a2"}}, headers=alice, status=200)
        resp = app.post_json(URL, {}, headers=alice, status=503)
        assert resp.json["errno"] == 201
        assert int(resp.headers["Retry-After"]) > 0
        assert app.get(URL + "?q=a", headers=alice, status=503).json["errno"] == 201
        assert app.get("/__heartbeat__", status=503).json["indexer"] is False
        # storage is the truth: the records are there
        assert len(app.get("/v1/articles", headers=alice).json["data"]) == 2
        assert len(queue) == 2 and queue.failing
    assert "queued for retry" in caplog.text
    # Back, but the requests do not replay the backlog: the queue does (in
    # the background in production; by hand here, the thread is off).
    app.post_json("/v1/articles", {"data": {"title": "c"}}, headers=alice, status=201)
    assert len(queue) == 3
    assert queue.replay() == 3
    assert not queue.failing
    assert titles(app, alice) == ["a2", "b", "c"]
    app.post_json("/v1/articles", {"data": {"title": "d"}}, headers=alice, status=201)
    assert len(queue) == 0  # indexed straight away again
    assert app.get("/__heartbeat__").json["indexer"] is True


def test_writes_do_not_wait_on_a_failing_indexer(index_path, alice):
    """A call to the locked index waits its whole timeout (1 s here); only
    the write that finds the indexer down pays it, the next ones do not."""
    app = make(index_path, timeout=1)
    app.post_json("/v1/articles", {"data": {"title": "first"}}, headers=alice)
    settle(app)
    with locked(index_path):
        app.post_json("/v1/articles", {"data": {"title": "finds it down"}}, headers=alice, status=201)
        durations = []
        for i in range(10):
            started = time.perf_counter()
            app.post_json("/v1/articles", {"data": {"title": f"w{i}"}}, headers=alice, status=201)
            durations.append(time.perf_counter() - started)
        settle(app)
    assert max(durations) < 0.5, durations
    assert len(app.app.registry.indexing_retry) == 11


def test_the_newest_change_wins_in_the_queue(index_path, alice):
    app = make(index_path)
    record = app.post_json("/v1/articles", {"data": {"title": "x"}}, headers=alice).json["data"]
    with locked(index_path):
        app.patch_json(f"/v1/articles/{record['id']}", {"data": {"title": "y"}}, headers=alice)
        app.delete(f"/v1/articles/{record['id']}", headers=alice)
        again = app.post_json("/v1/articles", {"data": {"title": "z"}}, headers=alice).json["data"]
        app.put_json(f"/v1/articles/{again['id']}", {"data": {"title": "zz"}}, headers=alice)
        settle(app)
        assert len(app.app.registry.indexing_retry) == 2
    assert app.app.registry.indexing_retry.replay() == 2
    assert titles(app, alice) == ["zz"]


@pytest.mark.parametrize("late_first", [True, False], ids=["late-event-first", "replay-first"])
def test_a_late_change_never_resurrects_a_deleted_record(index_path, alice, late_first):
    """Another worker's after-commit event for an older version arrives
    after (or before) the deletion is replayed: the record stays deleted."""
    app = make(index_path)
    registry = app.app.registry
    record = app.post_json("/v1/articles", {"data": {"title": "doomed"}}, headers=alice).json["data"]
    user_id = app.get("/v1/", headers=alice).json["user"]["id"]
    with locked(index_path):
        app.delete(f"/v1/articles/{record['id']}", headers=alice, status=200)
        settle(app)
    late = [(INDEX, user_id, record["id"], IndexEntry(user_id, record, (user_id,)))]
    if late_first:
        registry.indexing_retry.submit("article", late)
    assert registry.indexing_retry.replay() >= 1
    registry.indexing_retry.submit("article", late)
    registry.indexer.index_records("article", [IndexEntry(user_id, record, (user_id,))])
    assert titles(app, alice) == []
    assert app.get(URL + "?q=doomed", headers=alice).headers["Total-Records"] == "0"


def test_background_retry(index_path, alice):
    app = make(index_path, indexing_retry_interval="0.05")
    with locked(index_path):
        for title in ("p", "q"):
            app.post_json("/v1/articles", {"data": {"title": title}}, headers=alice)
        time.sleep(0.2)  # attempts while still locked fail and keep the changes
        assert len(app.app.registry.indexing_retry) == 2
    deadline = time.monotonic() + 10
    while len(app.app.registry.indexing_retry) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert titles(app, alice) == ["p", "q"]
    assert not app.app.registry.indexing_retry.failing


def test_a_full_queue_marks_the_index_stale(index_path, alice, caplog):
    app = make(index_path, indexing_retry_max_queued="2")
    with locked(index_path):
        for title in ("1", "2", "3"):
            app.post_json("/v1/articles", {"data": {"title": title}}, headers=alice)
        settle(app)
    queue = app.app.registry.indexing_retry
    assert (len(queue), queue.dropped, queue.stale) == (2, 1, True)
    assert "cliquet-indexing reindex" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR, "cliquet_indexing.retry"):
        queue.replay()
    assert "1 change(s) were dropped" in caplog.text
    assert titles(app, alice) == ["1", "2"]


class BlockingIndexer:
    """Wraps an indexer: ``index_records`` waits for :attr:`release`."""

    def __init__(self, indexer):
        self.indexer = indexer
        self.entered = threading.Event()
        self.release = threading.Event()

    def index_records(self, resource_name, entries):
        self.entered.set()
        assert self.release.wait(10)
        self.indexer.index_records(resource_name, entries)

    def unindex_records(self, resource_name, keys):
        self.indexer.unindex_records(resource_name, keys)


def test_no_lock_is_held_while_the_indexer_is_called(index_path):
    from cliquet_indexing.embedded import EmbeddedIndexer

    indexer = EmbeddedIndexer(f"sqlite:///{index_path}")
    blocking = BlockingIndexer(indexer)
    queue = RetryQueue(blocking, interval=0)
    entry = IndexEntry("u", {"id": "a", "last_modified": 1, "t": "x"}, ("u",))
    queue.add("r", [(INDEX, "u", "a", entry)])
    replaying = threading.Thread(target=queue.replay)
    replaying.start()
    try:
        assert blocking.entered.wait(10)
        started = time.perf_counter()
        # While the replay waits on the indexer, requests queue and read the queue at once.
        newer = IndexEntry("u", {"id": "b", "last_modified": 2}, ("u",))
        assert queue.submit("r", [(INDEX, "u", "b", newer), (UNINDEX, "u", "a", 5)]) is False
        assert len(queue) == 2 and queue.failing
        assert time.perf_counter() - started < 0.5
    finally:
        blocking.release.set()
        replaying.join(10)
    assert len(queue) == 0 and not queue.failing  # what came meanwhile was sent too
    assert list(indexer.indexed_keys("r")) == [("u", "b", 2)]


def test_a_queue_replay_that_fails_keeps_everything(index_path):
    class Down:
        def index_records(self, *args):
            raise BackendError(None, "down")

        unindex_records = index_records

    queue = RetryQueue(Down(), interval=0)
    entry = IndexEntry("u", {"id": "a", "last_modified": 3}, ("u",))
    assert queue.submit("r", [(INDEX, "u", "a", entry), (UNINDEX, "u", "b", 4)]) is False
    with pytest.raises(BackendError):
        queue.replay()
    assert [(op, rid) for _, op, _, rid, _ in queue.pending()] == [(INDEX, "a"), (UNINDEX, "b")]
    # an older change of a queued record does not replace it; a deletion at the same version does
    older = IndexEntry("u", {"id": "a", "last_modified": 2}, ("u",))
    queue.add("r", [(INDEX, "u", "a", older), (UNINDEX, "u", "b", 3)])
    assert [payload for *_, payload in queue.pending()] == [entry, 4]
    queue.add("r", [(UNINDEX, "u", "a", 3)])
    assert [(op, payload) for _, op, _, _, payload in queue.pending()] == [(UNINDEX, 4), (UNINDEX, 3)]


def test_a_hanging_indexer_costs_a_write_at_most_the_write_timeout(index_path):
    from cliquet_indexing.embedded import EmbeddedIndexer

    indexer = EmbeddedIndexer(f"sqlite:///{index_path}")
    hanging = BlockingIndexer(indexer)
    queue = RetryQueue(hanging, interval=0, write_timeout=0.2)
    entry = IndexEntry("u", {"id": "a", "last_modified": 1, "t": "x"}, ("u",))
    started = time.perf_counter()
    assert queue.submit("r", [(INDEX, "u", "a", entry)]) is False
    assert time.perf_counter() - started < 1
    assert queue.failing and len(queue) == 1  # queued as well as in flight
    started = time.perf_counter()
    assert queue.submit("r", [(UNINDEX, "u", "b", 2)]) is False  # no call at all now
    assert time.perf_counter() - started < 0.1
    hanging.release.set()
    assert queue.replay() == 2
    assert list(indexer.indexed_keys("r")) == [("u", "a", 1)]
    queue.close()


def test_the_write_timeout_setting_reaches_the_queue(index_path):
    app = make(index_path, indexing_write_timeout="0.25")
    assert app.app.registry.indexing_retry.write_timeout == 0.25


def test_a_slow_call_that_succeeds_after_all_unqueues_its_changes(index_path):
    from cliquet_indexing.embedded import EmbeddedIndexer

    indexer = EmbeddedIndexer(f"sqlite:///{index_path}")
    slow = BlockingIndexer(indexer)
    queue = RetryQueue(slow, interval=0, write_timeout=0.1)
    entry = IndexEntry("u", {"id": "a", "last_modified": 1}, ("u",))
    assert queue.submit("r", [(INDEX, "u", "a", entry)]) is False
    assert queue.failing and len(queue) == 1
    slow.release.set()
    deadline = time.monotonic() + 10
    while queue.failing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not queue.failing and len(queue) == 0
    assert list(indexer.indexed_keys("r")) == [("u", "a", 1)]
    queue.close()
