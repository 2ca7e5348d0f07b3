"""Elasticsearch stops in the middle of a run: searches answer 503 (errno
201), writes still succeed (storage is the truth), and once Elasticsearch is
back the background retry queue and ``reindex`` bring the index in line with storage.

The node stopped here is one this test starts for itself, on ports of its
own: the node the other tests share is never touched.
"""

from __future__ import annotations

import time
import uuid

import pytest

from cliquet.testing.app import basic_auth
from cliquet_elasticsearch.indexer import ElasticsearchIndexer
from cliquet_elasticsearch.testing import ElasticsearchNode
from cliquet_indexing.scripts import reindex_resource
from cliquet_indexing.testing.app import make_search_app

pytestmark = pytest.mark.xdist_group("elasticsearch-fault-node")


@pytest.fixture(scope="module")
def own_node(elasticsearch_url):
    node = ElasticsearchNode.beside(elasticsearch_url)
    try:
        node.start()
        yield node
    finally:
        node.destroy()


def storage_keys(app, resource="article"):
    registry = app.app.registry
    keys = set()
    for parent in registry.storage.parent_ids(resource):
        records, _ = registry.storage.get_all(resource, parent, limit=10_000)
        keys.update((parent, r["id"], r["last_modified"]) for r in records)
    return keys


def indexed(app, resource="article"):
    indexer = app.app.registry.indexer
    return set(indexer.indexed_keys(resource))


def test_down_then_back(own_node, es_prefix):
    app = make_search_app(indexing_backend="cliquet_elasticsearch", indexing_url=own_node.url,
                          indexing_prefix=es_prefix, elasticsearch_timeout="30s", indexing_retry_interval="1")
    registry = app.app.registry
    assert isinstance(registry.indexer, ElasticsearchIndexer)
    alice = basic_auth("alice")
    kept = [app.post_json("/v1/articles", {"data": {"title": f"before {i}"}}, headers=alice).json["data"]
            for i in range(5)]
    assert app.get("/v1/search/articles?q=before", headers=alice).headers["Total-Records"] == "5"
    assert app.get("/__heartbeat__").json["indexer"] is True

    own_node.stop()
    resp = app.post_json("/v1/search/articles", {}, headers=alice, status=503)
    assert resp.json["errno"] == 201 and "Retry-After" in resp.headers
    assert app.get("/__heartbeat__", status=503).json["indexer"] is False
    # Writes go on: created, updated, deleted while the indexer is down.
    added = [app.post_json("/v1/articles", {"data": {"title": f"during {i}"}}, headers=alice, status=201)
             .json["data"] for i in range(4)]
    app.patch_json(f"/v1/articles/{kept[0]['id']}", {"data": {"title": "renamed while down"}}, headers=alice)
    app.delete(f"/v1/articles/{kept[1]['id']}", headers=alice)
    assert len(registry.indexing_retry) == 6
    assert len(app.get("/v1/articles", headers=alice).json["data"]) == 8

    own_node.start()
    # The background thread replays what was queued; writes meanwhile queue theirs.
    app.post_json("/v1/articles", {"data": {"title": "after"}}, headers=alice, status=201)
    deadline = time.monotonic() + 60
    while (len(registry.indexing_retry) or registry.indexing_retry.failing) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(registry.indexing_retry) == 0
    assert indexed(app) == storage_keys(app)
    assert app.get("/v1/search/articles?q=during", headers=alice).headers["Total-Records"] == "4"
    assert app.get("/v1/search/articles?q=renamed", headers=alice).json["data"][0]["id"] == kept[0]["id"]
    assert app.get(f"/v1/search/articles?q=before", headers=alice).headers["Total-Records"] == "3"
    assert {r["id"] for r in added} <= {k[1] for k in indexed(app)}
    assert kept[1]["id"] not in {k[1] for k in indexed(app)}

    # Changes the index never heard of (a process that died with its queue,
    # a write straight to storage): reindex repairs the index from storage.
    parent = next(iter(registry.storage.parent_ids("article")))
    registry.storage.create("article", parent, {"id": str(uuid.uuid4()), "title": "lost change"})
    registry.storage.delete("article", parent, kept[2]["id"])
    assert indexed(app) != storage_keys(app)
    counts = reindex_resource(registry, None, "article")
    assert counts["removed"] == 1
    assert indexed(app) == storage_keys(app)
    assert app.get("/v1/search/articles?q=lost", headers=alice).headers["Total-Records"] == "1"
