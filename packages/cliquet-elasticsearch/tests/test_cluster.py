"""The indexer on the three-node cluster of ``ci/services``
(``CLIQUET_TEST_ELASTICSEARCH_CLUSTER_URL``): indexes with one replica, and a
node killed (SIGKILL) in the middle of indexing — searches keep answering,
writes keep succeeding, and once the node is back no index update is lost.

The node is killed for real and started again with its own ``start`` script
(written by ``ci/services``), with its data. These tests share one
pytest-xdist group: only one of them touches the cluster at a time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.parse

import orjson
import pytest
import urllib3

from cliquet.testing.app import basic_auth
from cliquet.testing.plugin import service_url
from cliquet_elasticsearch.indexer import ElasticsearchIndexer
from cliquet_elasticsearch.testing import free_port
from cliquet_indexing.testing.app import make_search_app

pytestmark = pytest.mark.xdist_group("elasticsearch-cluster")

CLUSTER_URL_VARIABLE = "CLIQUET_TEST_ELASTICSEARCH_CLUSTER_URL"
http = urllib3.PoolManager(retries=False, timeout=30)


@pytest.fixture(scope="session")
def cluster_url() -> str:
    """The three nodes' URLs, comma-separated (skip locally, fail in CI, when unset)."""
    return service_url(CLUSTER_URL_VARIABLE)


@pytest.fixture
def cluster_nodes(cluster_url):
    """The node URLs; before and after the test, every node is running and
    answers HTTP, and the cluster has its three nodes (a failed test must
    not leave one down; a node restarted by the previous test may have
    joined the cluster before its HTTP port is open)."""
    urls = cluster_url.split(",")
    _all_up(urls)
    yield urls
    _all_up(urls)


def _all_up(urls, timeout: float = 120) -> None:
    """Start the nodes that do not answer; return once each answers HTTP
    and the cluster counts them all."""
    for url in urls:
        if not _answers(url):
            _start(url)
    deadline = time.monotonic() + timeout
    while not all(_answers(url) for url in urls):
        assert time.monotonic() < deadline, f"a node of {urls} does not answer after {timeout} s"
        time.sleep(0.5)
    _wait_for_nodes(urls[0], len(urls))


def _get(url: str, path: str) -> dict:
    response = http.request("GET", url + path)
    assert response.status == 200, (url + path, response.status, response.data[:300])
    return orjson.loads(response.data)


def _answers(url: str) -> bool:
    """Whether the node answers HTTP (``GET /`` is not served by this distribution)."""
    try:
        return http.request("GET", url + "/_nodes/_local/http", timeout=2).status == 200
    except urllib3.exceptions.HTTPError:
        return False


def _node_directory(url: str) -> str:
    return f"/tmp/cliquet-es-cluster-{urllib.parse.urlsplit(url).port}"


def _kill(url: str) -> None:
    """SIGKILL the node's process: no clean shutdown, like a crash."""
    with open(os.path.join(_node_directory(url), "es.pid")) as f:
        pid = int(f.read().strip())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _answers(url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _answers(url)


def _start(url: str) -> None:
    """Start the node again with its data, detached (its own start script)."""
    subprocess.run([os.path.join(_node_directory(url), "start")], check=True, timeout=240,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for_nodes(url: str, count: int, status: str = "yellow", index: str = "", timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            health = _get(url, f"/_cluster/health/{index}?wait_for_nodes={count}"
                               f"&wait_for_status={status}&timeout=5s")
            if not health["timed_out"]:
                return health
        except (AssertionError, urllib3.exceptions.HTTPError):
            time.sleep(0.5)
    raise AssertionError(f"the cluster did not reach {count} nodes / {status} in {timeout} s")


def _shards(url: str, index: str) -> list[dict]:
    return _get(url, f"/_cat/shards/{index}?format=json&h=index,shard,prirep,state,node")


def test_indexes_have_one_replica_on_another_node(make_indexer, es_prefix, cluster_nodes):
    indexer = make_indexer(es_prefix, url=",".join(cluster_nodes), replicas="1")
    indexer.create_indexes(["article"])
    alias = indexer.alias("article")
    _wait_for_nodes(cluster_nodes[0], 3, status="green", index=alias, timeout=60)
    settings = _get(cluster_nodes[0], f"/{alias}/_settings")
    (index_settings,) = settings.values()
    assert index_settings["settings"]["index"]["number_of_replicas"] == "1"
    shards = _shards(cluster_nodes[0], alias)
    assert sorted(s["prirep"] for s in shards) == ["p", "r"]
    assert all(s["state"] == "STARTED" for s in shards)
    assert len({s["node"] for s in shards}) == 2  # never both copies on one node


def test_any_node_url_and_a_dead_one_among_them(make_indexer, es_prefix, cluster_nodes):
    dead = f"http://127.0.0.1:{free_port()}"
    indexer = make_indexer(es_prefix, url=" ".join([dead] + cluster_nodes), replicas="1")
    assert indexer.hosts[0] == dead and len(indexer.hosts) == 4
    assert indexer.heartbeat() is True
    indexer.create_indexes(["article"])
    # Written through any node, seen through each one.
    app = make_search_app(indexing_backend="cliquet_elasticsearch", indexing_url=",".join(cluster_nodes),
                          indexing_prefix=es_prefix, elasticsearch_replicas="1")
    alice = basic_auth("alice")
    for _ in cluster_nodes:
        app.post_json("/v1/articles", {"data": {"title": "everywhere"}}, headers=alice, status=201)
    assert app.get("/v1/search/articles?q=everywhere", headers=alice).headers["Total-Records"] == "3"
    alias = indexer.alias("article")
    for url in cluster_nodes:
        assert _get(url, f"/{alias}/_count?q=title:everywhere")["count"] == 3


def stored(app, resource="article"):
    """``{(parent, id): record}`` of every record in storage (the truth)."""
    registry = app.app.registry
    records = {}
    for parent in registry.storage.parent_ids(resource):
        page, _ = registry.storage.get_all(resource, parent, limit=100_000)
        records.update({(parent, r["id"]): r for r in page})
    return records


def index_state(app, resource="article"):
    return {(p, r): v for p, r, v in app.app.registry.indexer.indexed_keys(resource)}


def test_a_node_killed_mid_indexing_loses_no_update(es_prefix, cluster_nodes):
    url = ",".join(cluster_nodes)
    app = make_search_app(indexing_backend="cliquet_elasticsearch", indexing_url=url,
                          indexing_prefix=es_prefix, elasticsearch_replicas="1",
                          elasticsearch_timeout="20s", indexing_retry_interval="0.5")
    registry = app.app.registry
    registry.indexer.create_indexes(["article"])
    alias = registry.indexer.alias("article")
    _wait_for_nodes(cluster_nodes[0], 3, status="green", index=alias, timeout=60)
    alice = basic_auth("alice")
    # The node that holds the primary copy goes: the replica must take over.
    primary = next(s["node"] for s in _shards(cluster_nodes[0], alias) if s["prirep"] == "p")
    victim = next(u for u in cluster_nodes if primary.endswith(str(urllib.parse.urlsplit(u).port)))
    survivor = next(u for u in cluster_nodes if u != victim)

    stop = threading.Event()
    lock = threading.Lock()  # webtest apps are not thread-safe: one request at a time
    writes, searches, search_times, errors = [], [], [], []

    def writer():
        i = 0
        created = []
        while not stop.is_set():
            try:
                with lock:
                    r = app.post_json("/v1/articles", {"data": {"title": f"record {i}"}},
                                      headers=alice, expect_errors=True)
                writes.append(r.status_int)
                if r.status_int == 201:
                    created.append(r.json["data"]["id"])
                if i % 5 == 4 and len(created) > 2:
                    with lock:
                        patched = app.patch_json(f"/v1/articles/{created[-2]}",
                                                 {"data": {"title": f"patched {i}"}},
                                                 headers=alice, expect_errors=True)
                        deleted = app.delete(f"/v1/articles/{created.pop(0)}", headers=alice,
                                             expect_errors=True)
                    writes.extend([patched.status_int, deleted.status_int])
            except Exception as exc:  # noqa: BLE001 - reported by the assertions below
                errors.append(repr(exc))
            i += 1
            time.sleep(0.01)

    def searcher():
        while not stop.is_set():
            started = time.perf_counter()
            try:
                with lock:
                    r = app.get("/v1/search/articles?q=record", headers=alice, expect_errors=True)
                searches.append(r.status_int)
                search_times.append(time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))
            time.sleep(0.02)

    threads = [threading.Thread(target=writer), threading.Thread(target=searcher)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        _kill(victim)
        killed_at = time.monotonic()
        time.sleep(6)  # indexing goes on without the node
        _start(victim)
        back_after = time.monotonic() - killed_at
        _wait_for_nodes(survivor, 3, status="green", index=alias)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not errors, errors[:5]
    assert writes and set(writes) <= {200, 201}, sorted(set(writes))
    assert searches and set(searches) == {200}, sorted(set(searches))
    deadline = time.monotonic() + 60
    retry = registry.indexing_retry
    while (len(retry) or retry.failing) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(retry) == 0 and not retry.failing
    records = stored(app)
    assert index_state(app) == {key: r["last_modified"] for key, r in records.items()}
    total = app.get("/v1/search/articles?q=record", headers=alice).headers["Total-Records"]
    assert int(total) == sum(1 for r in records.values() if r["title"].startswith("record"))
    # Both copies agree once the node is back (the replica recovered).
    counts = {s["prirep"]: s for s in _get(survivor, f"/_cat/shards/{alias}?format=json&h=prirep,docs")}
    assert counts["p"]["docs"] == counts["r"]["docs"]
    print(f"\nnode killed: {len(writes)} writes, {len(searches)} searches, "
          f"slowest search {max(search_times):.2f} s, node back and green after {back_after:.0f} s")
