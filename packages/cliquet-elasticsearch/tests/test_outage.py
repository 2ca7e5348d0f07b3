"""Elasticsearch becomes unreachable under a running service — a port that
refuses connections, or a black hole that accepts them and never answers —
then comes back. Writes keep answering promptly all along (they never wait
on the indexer once it is known down), and once it is back the background
retry queue brings the index in line with storage: nothing missing, nothing
deleted brought back.

Elasticsearch is reached through a :class:`SwitchableProxy`: the shared node
itself is never stopped.
"""

from __future__ import annotations

import time

import pytest

from cliquet.testing.app import basic_auth
from cliquet_elasticsearch.testing import SwitchableProxy
from cliquet_indexing.indexer import IndexEntry
from cliquet_indexing.retry import INDEX
from cliquet_indexing.testing.app import make_search_app

#: a write's time budget while the indexer is down (a normal one takes ~10 ms).
PROMPT = 0.5
#: the indexer's request timeout: the write that finds it down may wait this long.
TIMEOUT = 2.0


@pytest.fixture
def proxy(elasticsearch_url):
    proxy = SwitchableProxy(elasticsearch_url)
    yield proxy
    proxy.close()


def storage_state(app, resource="article"):
    registry = app.app.registry
    state = {}
    for parent in registry.storage.parent_ids(resource):
        records, _ = registry.storage.get_all(resource, parent, limit=10_000)
        state.update({(parent, r["id"]): r["last_modified"] for r in records})
    return state


def index_state(app, resource="article"):
    return {(p, r): v for p, r, v in app.app.registry.indexer.indexed_keys(resource)}


def timed(call, *args, **kwargs):
    started = time.perf_counter()
    response = call(*args, **kwargs)
    return response, time.perf_counter() - started


@pytest.mark.parametrize("outage", ["blackhole", "refuse"])
def test_writes_stay_prompt_while_elasticsearch_is_unreachable(proxy, es_prefix, outage):
    app = make_search_app(indexing_backend="cliquet_elasticsearch", indexing_url=proxy.url,
                          indexing_prefix=es_prefix, elasticsearch_timeout=str(TIMEOUT),
                          indexing_retry_interval="0.5")
    registry = app.app.registry
    alice = basic_auth("alice")
    user_id = app.get("/v1/", headers=alice).json["user"]["id"]
    before = [app.post_json("/v1/articles", {"data": {"title": f"before {i}"}}, headers=alice).json["data"]
              for i in range(4)]
    assert app.get("/v1/search/articles?q=before", headers=alice).headers["Total-Records"] == "4"

    proxy.set_mode(outage)
    # The first write finds the indexer down: it may wait for the timeout, no more.
    _, first = timed(app.post_json, "/v1/articles", {"data": {"title": "during first"}}, headers=alice,
                     status=201)
    assert first < TIMEOUT * 3 + 1
    durations = []
    for i in range(15):
        _, took = timed(app.post_json, "/v1/articles", {"data": {"title": f"during {i}"}}, headers=alice,
                        status=201)
        durations.append(took)
    _, took = timed(app.patch_json, f"/v1/articles/{before[0]['id']}", {"data": {"title": "renamed"}},
                    headers=alice, status=200)
    durations.append(took)
    _, took = timed(app.delete, f"/v1/articles/{before[1]['id']}", headers=alice, status=200)
    durations.append(took)
    assert max(durations) < PROMPT, durations
    assert registry.indexing_retry.failing
    # Another worker's late event for the record just deleted, queued too.
    registry.indexing_retry.submit("article", [
        (INDEX, user_id, before[1]["id"], IndexEntry(user_id, before[1], (user_id,)))])
    time.sleep(1.5)  # background attempts fail meanwhile, the changes stay queued
    assert len(registry.indexing_retry) == 18

    proxy.set_mode("forward")
    deadline = time.monotonic() + 60
    while (len(registry.indexing_retry) or registry.indexing_retry.failing) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(registry.indexing_retry) == 0 and not registry.indexing_retry.failing
    assert index_state(app) == storage_state(app)
    assert app.get("/v1/search/articles?q=during", headers=alice).headers["Total-Records"] == "16"
    assert app.get("/v1/search/articles?q=before", headers=alice).headers["Total-Records"] == "2"
    assert [r["id"] for r in app.get("/v1/search/articles?q=renamed", headers=alice).json["data"]] == [
        before[0]["id"]]
    # and the late event never brings the deleted record back
    registry.indexer.index_records("article", [IndexEntry(user_id, before[1], (user_id,))])
    assert before[1]["id"] not in {r["id"] for r in app.post_json(
        "/v1/search/articles", {"size": 100}, headers=alice).json["data"]}
    # indexed directly again
    app.post_json("/v1/articles", {"data": {"title": "after"}}, headers=alice, status=201)
    assert len(registry.indexing_retry) == 0
    assert app.get("/v1/search/articles?q=after", headers=alice).headers["Total-Records"] == "1"
