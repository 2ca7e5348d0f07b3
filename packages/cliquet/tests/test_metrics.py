"""Metrics: StatsD over a real UDP socket, Prometheus at /__metrics__,
backend timings, and nothing at all when both are off."""

import socket
import time

import pytest
from pyramid.exceptions import ConfigurationError

from cliquet.cache import CacheBase
from cliquet.metrics import (
    Metrics,
    StatsDClient,
    instrument_backend,
    parse_statsd_url,
    public_methods,
)
from cliquet.permission import PermissionBase
from cliquet.storage import StorageBase
from cliquet.testing.app import basic_auth, make_app


@pytest.fixture
def udp_server():
    """A UDP socket on loopback standing in for the StatsD daemon."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.2)
    yield server
    server.close()


def received(server, until, timeout=5.0):
    """Datagrams read from ``server`` until one starts with ``until``."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data, _ = server.recvfrom(65535)
        except socket.timeout:
            continue
        lines.extend(data.decode().splitlines())
        if any(line.startswith(until) for line in lines):
            return lines
    raise AssertionError(f"no {until!r} in {lines}")


def test_statsd_gets_request_and_backend_timings(udp_server):
    port = udp_server.getsockname()[1]
    app = make_app(statsd_url=f"udp://127.0.0.1:{port}", statsd_prefix="myapp")
    app.post_json("/v1/articles", {"data": {"title": "x"}}, headers=basic_auth())
    lines = received(udp_server, "myapp.request.article-collection.post.201:")
    assert any(line.startswith("myapp.backend.storage.create:") and line.endswith("|ms") for line in lines)
    request_line = next(line for line in lines if line.startswith("myapp.request.article-collection.post.201:"))
    milliseconds = float(request_line.split(":")[1].split("|")[0])
    assert 0 < milliseconds < 10_000
    app.get("/v1/nowhere", status=404)
    assert received(udp_server, "myapp.request.unmatched.get.404:")


def test_statsd_client_formats(udp_server):
    client = StatsDClient("127.0.0.1", udp_server.getsockname()[1], prefix="p")
    client.incr("hits", 3)
    client.gauge("queue", 7)
    client.timing("t", 1.5)
    assert received(udp_server, "p.t:") == ["p.hits:3|c", "p.queue:7|g", "p.t:1.500|ms"]
    client.close()


def test_statsd_lines_of_one_request_share_datagrams(udp_server):
    client = StatsDClient("127.0.0.1", udp_server.getsockname()[1])
    assert client.start_batch() is True
    assert client.start_batch() is False  # nested (batch sub-requests): same batch
    for i in range(200):
        client.timing(f"k{i:03d}", 1)
    client.flush_batch()
    datagrams = []
    udp_server.settimeout(2)
    while sum(len(d.splitlines()) for d in datagrams) < 200:
        datagrams.append(udp_server.recvfrom(65535)[0].decode())
    assert 1 < len(datagrams) < 200 and all(len(d) <= StatsDClient.MAX_DATAGRAM for d in datagrams)
    assert [line for d in datagrams for line in d.splitlines()] == [f"k{i:03d}:1.000|ms" for i in range(200)]
    client.timing("alone", 2)  # outside a batch: sent at once
    assert udp_server.recvfrom(65535)[0] == b"alone:2.000|ms"


def test_statsd_down_never_breaks_a_request():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed below: nobody listens there
    app = make_app(statsd_url=f"udp://127.0.0.1:{port}")
    for _ in range(3):
        app.get("/v1/articles", headers=basic_auth(), status=200)


@pytest.mark.parametrize("url", ["http://localhost:8125", "udp://", "localhost"])
def test_statsd_url_must_be_udp(url):
    with pytest.raises(ValueError):
        parse_statsd_url(url)
    with pytest.raises(ConfigurationError, match="cliquet.statsd_url"):
        make_app(statsd_url=url)


def test_statsd_url_default_port():
    assert parse_statsd_url("udp://stats.local") == ("stats.local", 8125)


def metric_value(text, name, **labels):
    """The value of one sample of the Prometheus text format."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{wanted}}} not in:\n{text}")


def test_prometheus_endpoint_exposes_request_and_backend_histograms():
    app = make_app(prometheus_enabled="true")
    for _ in range(2):
        app.post_json("/v1/articles", {"data": {"title": "x"}}, headers=basic_auth())
    app.get("/v1/articles", status=401)
    response = app.get("/__metrics__")
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert metric_value(text, "cliquet_request_duration_seconds_count",
                        endpoint="article-collection", method="POST", status="201") == 2
    assert metric_value(text, "cliquet_request_duration_seconds_count",
                        endpoint="article-collection", method="GET", status="401") == 1
    assert metric_value(text, "cliquet_backend_duration_seconds_count", backend="storage", method="create") == 2
    assert metric_value(text, "cliquet_backend_duration_seconds_sum", backend="storage", method="create") > 0


def test_each_app_has_its_own_prometheus_registry():
    first, second = make_app(prometheus_enabled=True), make_app(prometheus_enabled=True)
    first.get("/v1/")
    first.get("/v1/")
    second.get("/v1/")
    count = {"endpoint": "hello", "method": "GET", "status": "200"}
    assert metric_value(first.get("/__metrics__").text, "cliquet_request_duration_seconds_count", **count) == 2
    assert metric_value(second.get("/__metrics__").text, "cliquet_request_duration_seconds_count", **count) == 1


def test_metrics_are_off_by_default_and_cost_nothing():
    app = make_app()
    app.get("/__metrics__", status=404)
    registry = app.app.registry
    assert not hasattr(registry, "cliquet_metrics")
    for kind in ("storage", "cache", "permission"):
        assert "_cliquet_instrumented" not in vars(getattr(registry, kind))
    from pyramid.interfaces import ITweens

    tweens = [name for name, _factory in registry.getUtility(ITweens).implicit()]
    assert "cliquet.logs.request_log_tween_factory" in tweens
    assert "cliquet.metrics.metrics_tween_factory" not in tweens


def test_instrumented_backends_keep_their_class_and_identity():
    app = make_app(prometheus_enabled=True)
    registry = app.app.registry
    for kind, base in (("storage", StorageBase), ("cache", CacheBase), ("permission", PermissionBase)):
        backend = getattr(registry, kind)
        assert isinstance(backend, base)
        assert type(backend).__module__.startswith("cliquet.")
        assert "heartbeat" in vars(backend)  # wrapped on the instance, not the class
    assert registry.storage.transaction.__func__ is type(registry.storage).transaction  # not timed


class Recorder:
    """A Metrics sink that keeps what it is told (what the wrapper reports)."""

    def __init__(self):
        self.calls = []

    def backend_observer(self, kind, method):
        return lambda seconds: self.calls.append((kind, method, seconds))


class Flaky(CacheBase):
    """A cache whose ``get`` raises."""

    def get(self, key):
        raise KeyError(key)

    def set(self, key, value, ttl=None):
        return None


def test_backend_calls_are_timed_even_when_they_raise():
    recorder = Recorder()
    cache = instrument_backend(Flaky(), "cache", CacheBase, recorder)
    cache.set("a", 1)
    with pytest.raises(KeyError):
        cache.get("a")
    assert [(k, m) for k, m, _ in recorder.calls] == [("cache", "set"), ("cache", "get")]
    assert all(seconds >= 0 for _, _, seconds in recorder.calls)
    instrument_backend(cache, "cache", CacheBase, recorder)  # twice: no double wrapping
    cache.set("b", 2)
    assert len(recorder.calls) == 3


def test_public_methods_are_the_base_api():
    names = public_methods(StorageBase)
    assert {"create", "get", "update", "delete", "get_all", "heartbeat"} <= set(names)
    assert "transaction" not in names and not any(n.startswith("_") for n in names)


def test_metrics_with_both_sinks(udp_server):
    from cliquet.metrics import PrometheusMetrics

    statsd = StatsDClient("127.0.0.1", udp_server.getsockname()[1])
    metrics = Metrics(statsd, PrometheusMetrics())
    metrics.backend_observer("storage", "get")(0.002)
    metrics.observe_request("a/b", "GET", 200, 0.001)
    lines = received(udp_server, "request.")
    assert lines == ["backend.storage.get:2.000|ms", "request.a_b.get.200:1.000|ms"]
    text = metrics.prometheus.render()[0].decode()
    assert metric_value(text, "cliquet_backend_duration_seconds_count", backend="storage", method="get") == 1
