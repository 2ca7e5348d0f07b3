"""Metrics: StatsD and Prometheus.

``config.include("cliquet.metrics")`` (done by Cliquet itself) reads two
switches; with both off (the default) it adds nothing at all, so metrics cost
nothing unless asked for.

* ``cliquet.statsd_url = udp://host:8125`` — each request sends a timer
  ``<prefix>.request.<route>.<method>.<status>`` and each backend call a timer
  ``<prefix>.backend.<kind>.<method>`` (milliseconds) over UDP, gathered in
  one datagram per request (newline-separated lines, as StatsD reads them). A StatsD
  server that is down loses the figures, never a request.
* ``cliquet.prometheus_enabled = true`` — the same timings as the histograms
  ``cliquet_request_duration_seconds{endpoint, method, status}`` and
  ``cliquet_backend_duration_seconds{backend, method}``, served in the text
  format at ``/__metrics__`` (needs the ``cliquet[prometheus]`` extra). Each
  application has its own :class:`prometheus_client.CollectorRegistry`.
  ``cliquet.prometheus_principals`` says who may read it (default: anyone).

Every label (and StatsD key segment) has a bounded set of values, whatever
clients send: the route *name* (``unmatched`` when no route matched), the
method among :data:`METHODS` (``other`` for any other), and the status code.
A client inventing methods or paths therefore adds no series.

Backend calls are timed by wrapping, on the instance, every public method of
the backend's base class (:class:`~cliquet.storage.StorageBase`,
:class:`~cliquet.cache.CacheBase`, :class:`~cliquet.permission.PermissionBase`):
``registry.storage`` stays the very same object, of the same class.
"""

from __future__ import annotations

import functools
import re
import socket
import threading
import time
from urllib.parse import urlparse

from pyramid.exceptions import ConfigurationError
from pyramid.response import Response
from pyramid.tweens import INGRESS

from cliquet.authentication import EVERYONE
from cliquet.settings import Setting, as_bool, as_list, as_str, declare_settings

#: methods that are not timed (context managers: timing them means nothing).
UNTIMED = frozenset({"transaction"})
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
UNMATCHED = "unmatched"
#: the methods that get a label of their own; any other is counted as ``other``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"


def method_label(method: str) -> str:
    """``method`` when it is one of :data:`METHODS`, else ``"other"``."""
    return method if method in METHODS else OTHER


def status_label(status) -> str:
    """The status code as a label: three digits, ``other`` if it is not one."""
    return str(status) if isinstance(status, int) and 100 <= status <= 599 else OTHER


def parse_statsd_url(value):
    """``udp://host:port`` → ``(host, port)`` (port 8125 by default).

    :raises ValueError: for another scheme or a missing host.
    """
    parsed = urlparse(value)
    if parsed.scheme != "udp" or not parsed.hostname:
        raise ValueError("expected udp://host:port")
    return parsed.hostname, parsed.port or 8125


def _as_statsd_url(value):
    if value in (None, ""):
        return None
    parse_statsd_url(str(value))
    return str(value)


METRICS_SETTINGS = {
    "statsd_url": Setting(None, _as_statsd_url, doc="StatsD server (udp://host:port); unset: no StatsD."),
    "statsd_prefix": Setting("cliquet", as_str, doc="Prefix of every StatsD key."),
    "prometheus_enabled": Setting(False, as_bool,
                                  doc="Serve Prometheus metrics at /__metrics__ (needs cliquet[prometheus])."),
    "prometheus_principals": Setting("system.Everyone", as_list,
                                     doc="Principals allowed to read /__metrics__ (e.g. the user id of the "
                                         "scraper's Basic credentials); others get 401/403."),
}


def metric_key(text: str) -> str:
    """``text`` made safe as one StatsD key segment."""
    return _KEY_UNSAFE.sub("_", text)


class StatsDClient:
    """A minimal StatsD client: one UDP datagram per metric, never blocking.

    :param host: / :param port: the StatsD server.
    :param prefix: prepended (with a dot) to every key.
    """

    #: most bytes in one datagram when lines are batched (fits any MTU).
    MAX_DATAGRAM = 1400

    def __init__(self, host: str, port: int = 8125, prefix: str = ""):
        info = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
        self.address = info[4]
        self.prefix = prefix + "." if prefix else ""
        self._socket = socket.socket(info[0], socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._local = threading.local()

    def _sendto(self, payload: str) -> None:
        try:
            self._socket.sendto(payload.encode(), self.address)
        except OSError:
            pass

    def send(self, line: str) -> None:
        """Send one raw StatsD line (or keep it for the batch being gathered
        in this thread); network errors are ignored."""
        batch = getattr(self._local, "batch", None)
        if batch is not None:
            batch.append(line)
        else:
            self._sendto(line)

    def start_batch(self) -> bool:
        """Gather this thread's lines until :meth:`flush_batch`; return
        ``False`` (and do nothing) when a batch is already being gathered."""
        if getattr(self._local, "batch", None) is not None:
            return False
        self._local.batch = []
        return True

    def flush_batch(self) -> None:
        """Send the gathered lines, several per datagram (newline-separated)."""
        batch, self._local.batch = self._local.batch, None
        payload = ""
        for line in batch or ():
            if payload and len(payload) + len(line) + 1 > self.MAX_DATAGRAM:
                self._sendto(payload)
                payload = ""
            payload = f"{payload}\n{line}" if payload else line
        if payload:
            self._sendto(payload)

    def timing(self, key: str, milliseconds: float) -> None:
        """Record a duration (``|ms``)."""
        self.send(f"{self.prefix}{key}:{milliseconds:.3f}|ms")

    def incr(self, key: str, count: int = 1) -> None:
        """Increment a counter (``|c``)."""
        self.send(f"{self.prefix}{key}:{count}|c")

    def gauge(self, key: str, value: float) -> None:
        """Set a gauge (``|g``)."""
        self.send(f"{self.prefix}{key}:{value}|g")

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()


class PrometheusMetrics:
    """The Prometheus histograms of one application, in its own registry."""

    def __init__(self):
        try:
            from prometheus_client import CollectorRegistry, Histogram
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigurationError(
                "cliquet.prometheus_enabled needs prometheus_client: install cliquet[prometheus]") from exc
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram("cliquet_request_duration_seconds", "Duration of HTTP requests",
                                  ["endpoint", "method", "status"], registry=self.registry)
        self.backend = Histogram("cliquet_backend_duration_seconds", "Duration of backend calls",
                                 ["backend", "method"], registry=self.registry)
        self._request_children: dict = {}

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Add one request to the histogram."""
        key = (endpoint, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(endpoint, method, str(status))
        child.observe(seconds)

    def backend_observer(self, kind: str, method: str):
        """Return ``observe(seconds)`` for one backend method."""
        return self.backend.labels(kind, method).observe

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Metrics:
    """What the tween and the backend wrappers report to: StatsD, Prometheus
    or both (``registry.cliquet_metrics``)."""

    def __init__(self, statsd: StatsDClient | None = None, prometheus: PrometheusMetrics | None = None):
        self.statsd = statsd
        self.prometheus = prometheus

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """One request answered ``status`` in ``seconds``; ``method`` and
        ``status`` are bounded here (:func:`method_label`, :func:`status_label`)."""
        method, status = method_label(method), status_label(status)
        if self.statsd is not None:
            self.statsd.timing(f"request.{metric_key(endpoint)}.{method.lower()}.{status}", seconds * 1000)
        if self.prometheus is not None:
            self.prometheus.observe_request(endpoint, method, status, seconds)

    def backend_observer(self, kind: str, method: str):
        """Return ``observe(seconds)`` for calls of ``kind``'s ``method``."""
        sinks = []
        if self.statsd is not None:
            statsd, key = self.statsd, f"backend.{kind}.{method}"
            sinks.append(lambda seconds: statsd.timing(key, seconds * 1000))
        if self.prometheus is not None:
            sinks.append(self.prometheus.backend_observer(kind, method))
        if len(sinks) == 1:
            return sinks[0]

        def observe(seconds):
            for sink in sinks:
                sink(seconds)

        return observe


def public_methods(base: type) -> list[str]:
    """The timed API of a backend base class: its public methods."""
    names = set()
    for cls in base.__mro__[:-1]:
        names.update(name for name, value in vars(cls).items()
                     if callable(value) and not name.startswith("_") and name not in UNTIMED)
    return sorted(names)


def _timed(method, observe):
    perf_counter = time.perf_counter

    @functools.wraps(method)
    def timed(*args, **kwargs):
        start = perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            observe(perf_counter() - start)

    return timed


def instrument_backend(backend, kind: str, base: type, metrics: Metrics):
    """Time every call of ``base``'s public methods on ``backend``.

    The methods are replaced on the instance only: ``backend`` keeps its
    class (``isinstance`` checks hold) and its identity. Instrumenting twice
    does nothing.
    """
    if backend.__dict__.get("_cliquet_instrumented"):
        return backend
    for name in public_methods(base):
        method = getattr(backend, name, None)
        if method is not None:
            setattr(backend, name, _timed(method, metrics.backend_observer(kind, name)))
    backend._cliquet_instrumented = True
    return backend


def metrics_tween_factory(handler, registry):
    """The tween timing every request per route, method and status. With
    StatsD, the lines of one request (its backend calls, its batch
    sub-requests) leave in as few datagrams as fit, at the end."""
    metrics = registry.cliquet_metrics
    statsd = metrics.statsd
    perf_counter = time.perf_counter

    def observe(request, status, start):
        route = getattr(getattr(request, "matched_route", None), "name", None) or UNMATCHED
        metrics.observe_request(route, request.method, status, perf_counter() - start)

    def tween(request):
        batching = statsd is not None and statsd.start_batch()
        start = perf_counter()
        try:
            response = handler(request)
        except Exception:
            observe(request, 500, start)
            raise
        else:
            observe(request, response.status_code, start)
        finally:
            if batching:
                statsd.flush_batch()
        return response

    return tween


def get_metrics(request):
    """``GET /__metrics__``: the Prometheus text format, to the principals of
    ``cliquet.prometheus_principals`` only (401 or 403 errno 121 to others)."""
    allowed = request.registry.settings["cliquet.prometheus_principals"]
    if EVERYONE not in allowed and not set(allowed) & set(request.principals):
        from pyramid.httpexceptions import HTTPForbidden

        raise HTTPForbidden()
    body, content_type = request.registry.cliquet_metrics.prometheus.render()
    response = Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


def includeme(config):
    """Declare the settings; when StatsD or Prometheus is on, add the tween,
    instrument the backends and (Prometheus) the ``/__metrics__`` endpoint."""
    declare_settings(config, METRICS_SETTINGS)
    settings = config.get_settings()
    registry = config.registry
    statsd_url = settings["cliquet.statsd_url"]
    enabled = settings["cliquet.prometheus_enabled"]
    if not statsd_url and not enabled:
        return
    statsd = None
    if statsd_url:
        host, port = parse_statsd_url(statsd_url)
        statsd = StatsDClient(host, port, settings["cliquet.statsd_prefix"] or "")
    prometheus = PrometheusMetrics() if enabled else None
    registry.cliquet_metrics = metrics = Metrics(statsd, prometheus)

    from cliquet.setup import BACKENDS

    for kind, base in BACKENDS:
        backend = getattr(registry, kind, None)
        if backend is not None:
            instrument_backend(backend, kind, base, metrics)
    config.add_tween("cliquet.metrics.metrics_tween_factory", under=INGRESS)
    if prometheus is not None:
        from cliquet.services import add_service, make_service

        service = make_service(name="metrics", path="/__metrics__", description="Prometheus metrics")
        service.add_view("GET", get_metrics, permission="__no_permission_required__")
        add_service(config, service)
