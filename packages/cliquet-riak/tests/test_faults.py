"""Faults: Riak nodes (stand-in processes) killed mid-run, and fail-over.

These tests always use their own stand-in processes, even when
``CLIQUET_RIAK_URL`` names a real Riak: they kill and restart nodes.
"""

from __future__ import annotations

import json

import pytest
import urllib3
import webtest
from cliquet.storage.exceptions import BackendError
from cliquet.testing import make_config
from pyramid.config import Configurator

import cliquet
from cliquet_riak import cache as riak_cache
from cliquet_riak.testing import StandinProcess

pytestmark = pytest.mark.xdist_group("riak-faults")

BUCKET = "/types/default/buckets/faults"


@pytest.fixture
def node():
    node = StandinProcess().start()
    yield node
    node.kill()


@pytest.fixture
def two_nodes():
    first = StandinProcess()
    second = StandinProcess(peers=[first.url])
    first.peers = [second.url]
    first.start()
    second.start()
    yield first, second
    first.kill()
    second.kill()


@pytest.fixture
def three_nodes():
    nodes = [StandinProcess() for _ in range(3)]
    for node in nodes:
        node.peers = [other.url for other in nodes if other is not node]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.kill()


def make_cache(*urls, prefix="p:"):
    cache_url = " ".join(url + BUCKET for url in urls)
    return riak_cache.load_from_config(make_config(
        cache_url=cache_url, cache_prefix=prefix, riak_connect_timeout="0.5s",
        riak_read_timeout="5s", riak_node_down_seconds="1s"))


def stats(url):
    return json.loads(urllib3.request("GET", url + "/stats", retries=False).data)


def test_node_killed_then_back_without_restarting_the_app(node):
    cache = make_cache(node.url)
    cache.set("k", "v")
    assert cache.get("k") == "v"
    node.kill()
    with pytest.raises(BackendError) as raised:
        cache.get("k")
    assert "no Riak node answered" in str(raised.value)
    with pytest.raises(BackendError):
        cache.set("k", "w")
    assert cache.heartbeat() is False
    node.start()  # same port, empty: a node that lost its data
    assert cache.heartbeat() is True
    assert cache.get("k") is None
    cache.set("k", "again")
    assert cache.get("k") == "again"


def test_requests_are_spread_over_the_nodes(two_nodes):
    first, second = two_nodes
    cache = make_cache(first.url, second.url)
    before = (stats(first.url)["requests_total"], stats(second.url)["requests_total"])
    for i in range(20):
        cache.set(f"k{i}", i)
        assert cache.get(f"k{i}") == i
    after = (stats(first.url)["requests_total"], stats(second.url)["requests_total"])
    served = [a - b for a, b in zip(after, before)]
    # Each node served a good share of the 40 requests (replication adds to them).
    assert min(served) >= 15, served


@pytest.mark.parametrize("down", [0, 1])
def test_one_node_down_the_cache_keeps_working(two_nodes, down):
    nodes = list(two_nodes)
    cache = make_cache(*(n.url for n in nodes))
    cache.set("before", "written on both")
    nodes[down].kill()
    assert cache.heartbeat() is True
    assert cache.get("before") == "written on both"
    for i in range(10):
        cache.set(f"k{i}", i, ttl=60)
        assert cache.get(f"k{i}") == i
        assert 0 < cache.ttl(f"k{i}") <= 60
    assert cache.delete("k0") == 0
    cache.flush()
    assert cache.get("k1") is None
    # Both down: a BackendError; one back: working again.
    nodes[1 - down].kill()
    assert cache.heartbeat() is False
    with pytest.raises(BackendError):
        cache.get("before")
    nodes[down].start()
    cache.set("after", "ok")
    assert cache.get("after") == "ok"


def raw_get(url, key, prefix="p:"):
    """What one node holds for a cache key (status, body)."""
    r = urllib3.request("GET", f"{url}{BUCKET}/keys/{prefix}{key}", retries=False, timeout=5)
    return r.status, r.data


def test_three_nodes_one_lost_and_rejoining(three_nodes):
    """A node killed mid-run: the cache keeps working on the two others; once
    it is back it holds what was written meanwhile (hand-off) and takes its
    share of the requests again."""
    cache = make_cache(*(n.url for n in three_nodes))
    for i in range(10):
        cache.set(f"before{i}", i)
    lost = three_nodes[1]
    lost.kill()
    for i in range(10):
        cache.set(f"during{i}", i, ttl=60)
        assert cache.get(f"during{i}") == i
        assert cache.get(f"before{i}") == i
    cache.delete("before0")
    lost.start()
    assert cache.heartbeat() is True
    for i in range(10):
        assert raw_get(lost.url, f"during{i}") == (200, str(i).encode())
    assert raw_get(lost.url, "before0")[0] == 404
    assert raw_get(lost.url, "before1") == (200, b"1")
    served_before = stats(lost.url)["requests_total"]
    for i in range(1, 10):
        assert cache.get(f"before{i}") == i
        assert cache.get(f"during{i}") == i
    assert stats(lost.url)["requests_total"] - served_before >= 4
    cache.set("after", "everywhere")
    assert all(raw_get(n.url, "after") == (200, b'"everywhere"') for n in three_nodes)


@pytest.fixture
def app(node):
    """A Cliquet service whose cache is Riak (via ``pyramid.includes``), with
    one view that reads the cache."""
    config = Configurator(settings={
        "pyramid.includes": "cliquet_riak",
        "cliquet.cache_url": node.url + BUCKET,
        "cliquet.riak_read_timeout": "5s",
        "cliquet.userid_hmac_secret": "test",
    })
    cliquet.initialize(config, "1.0", project_name="riakapp")

    def read_cache(request):
        return {"value": request.registry.cache.get("greeting")}

    config.add_route("read_cache", "/v1/read-cache")
    config.add_view(read_cache, route_name="read_cache", renderer="json")
    return webtest.TestApp(config.make_wsgi_app())


def test_http_layer_answers_503_errno_201_and_heartbeat_false(app, node):
    assert app.get("/v1/read-cache").json == {"value": None}
    health = app.get("/v1/__heartbeat__").json
    assert health["cache"] is True and health["riak"] is True
    node.kill()
    response = app.get("/v1/read-cache", status=503)
    assert response.json["errno"] == 201
    assert int(response.headers["Retry-After"]) > 0
    health = app.get("/v1/__heartbeat__", status=503).json
    assert health["cache"] is False and health["riak"] is False
    node.start()
    assert app.get("/v1/__heartbeat__").json["riak"] is True
    assert app.get("/v1/read-cache").json == {"value": None}
