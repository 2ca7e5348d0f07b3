"""The indexer fails (its SQLite file is locked by another connection, as
another process would): searches get 503 errno 201, writes still succeed,
and the retry queue brings the index back in line once the indexer is back."""

from __future__ import annotations

import contextlib
import sqlite3
import time

import pytest

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


def make(index_path, **settings):
    return make_search_app(indexing_url=f"sqlite:///{index_path}?timeout=0.05", **settings)


def titles(app, headers):
    resp = app.post_json(URL, {"sort": ["title"], "size": 100}, headers=headers)
    assert resp.headers["Total-Records"] == str(len(resp.json["data"]))
    return [r["title"] for r in resp.json["data"]]


def test_search_is_503_while_writes_succeed(index_path, alice, caplog):
    app = make(index_path)
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
        assert len(app.app.registry.indexing_retry) == 2
    assert "queued for retry" in caplog.text
    # the next change replays what was missed first
    app.post_json("/v1/articles", {"data": {"title": "c"}}, headers=alice, status=201)
    assert len(app.app.registry.indexing_retry) == 0
    assert titles(app, alice) == ["a2", "b", "c"]
    assert app.get("/__heartbeat__").json["indexer"] is True


def test_the_latest_change_wins_in_the_queue(index_path, alice):
    app = make(index_path)
    record = app.post_json("/v1/articles", {"data": {"title": "x"}}, headers=alice).json["data"]
    with locked(index_path):
        app.patch_json(f"/v1/articles/{record['id']}", {"data": {"title": "y"}}, headers=alice)
        app.delete(f"/v1/articles/{record['id']}", headers=alice)
        again = app.post_json("/v1/articles", {"data": {"title": "z"}}, headers=alice).json["data"]
        app.put_json(f"/v1/articles/{again['id']}", {"data": {"title": "zz"}}, headers=alice)
        assert len(app.app.registry.indexing_retry) == 2
    assert app.app.registry.indexing_retry.replay() == 2
    assert titles(app, alice) == ["zz"]


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


def test_a_full_queue_drops_the_oldest(index_path, alice, caplog):
    app = make(index_path, indexing_retry_max_queued="2")
    with locked(index_path):
        for title in ("1", "2", "3"):
            app.post_json("/v1/articles", {"data": {"title": title}}, headers=alice)
    queue = app.app.registry.indexing_retry
    assert (len(queue), queue.dropped) == (2, 1)
    assert "cliquet-indexing reindex" in caplog.text
    queue.replay()
    assert titles(app, alice) == ["2", "3"]
