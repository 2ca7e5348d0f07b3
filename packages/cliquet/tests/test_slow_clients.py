"""Slow and stalled clients against a real server (``cliquet serve``,
Granian) in every served configuration: the memory backends (1 worker x 1
thread) and PostgreSQL and Redis (2 workers x 2 threads).

A client that announces a body and stops sending it, or sends it a byte at a
time, must not delay anyone else's request by more than 100 ms; a body that
is still incomplete after ``cliquet.request_body_timeout`` is answered 408
(JSON, errno 107) and nothing is written.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
import uuid

import pytest

from cliquet.testing.plugin import require_module
from cliquet.testing.server import backend_environ, serve

BODY_TIMEOUT = 2.0
ALLOWED_DELAY = 0.1
INI = f"""
[app:main]
use = call:cliquet.testing.app:shared_app_factory
cliquet.userid_hmac_secret = slow clients
cliquet.logging_level = WARNING
cliquet.request_body_timeout = {BODY_TIMEOUT}s
"""

CONFIGURATIONS = [
    pytest.param(("memory", 1, 1), id="memory-1x1"),
    pytest.param(("postgresql", 2, 2), id="postgresql-2x2",
                 marks=[pytest.mark.services, pytest.mark.xdist_group("served-postgresql")]),
    pytest.param(("redis", 2, 2), id="redis-2x2",
                 marks=[pytest.mark.services, pytest.mark.xdist_group("served-redis")]),
]


def auth(user):
    return "Basic " + base64.b64encode(f"{user}:secret".encode()).decode()


@pytest.fixture
def served(request, tmp_path, cliquet_worker_prefix):
    """Start the configuration's server; yield ``(server, threads per worker x workers)``."""
    backend, workers, threads = request.param
    ini = tmp_path / "app.ini"
    ini.write_text(INI)
    if backend == "memory":
        with serve(str(ini), workers=workers, threads=threads) as server:
            yield server, workers * threads
        return
    require_module("psycopg" if backend == "postgresql" else "redis",
                   reason=f"the `{backend}` extra is not installed")
    url = request.getfixturevalue(f"{backend}_url")
    tag = f"{cliquet_worker_prefix}sc{uuid.uuid4().hex[:8]}"
    with backend_environ(backend, url, tag) as env, \
            serve(str(ini), env, workers=workers, threads=threads, migrate=True) as server:
        yield server, workers * threads


def _port(server):
    return int(server.url.rsplit(":", 1)[1])


def stalled_post(port, user, announced=1000, sent=b"{"):
    """A socket that sent a POST's headers and the first bytes of its body, and stops."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /v1/articles HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\n"
                 b"Authorization: " + auth(user).encode() + b"\r\n"
                 b"Content-Length: " + str(announced).encode() + b"\r\n\r\n" + sent)
    return sock


def read_response(sock):
    """``(status, headers, parsed body, seconds waited)`` (the requests say
    ``Connection: close``: the answer ends when the server closes)."""
    started = time.monotonic()
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, json.loads(body), \
        time.monotonic() - started


def timed_requests(port, rounds=5):
    """Latencies of GET /__lbheartbeat__ and GET /v1/articles, each on a new connection."""
    latencies = []
    for _ in range(rounds):
        for path, headers in (("/__lbheartbeat__", {}), ("/v1/articles", {"Authorization": auth("reader")})):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            started = time.monotonic()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            latencies.append(time.monotonic() - started)
            conn.close()
            assert response.status == 200, (path, response.status)
    return latencies


def slow_post(port, user, results, pause=0.02):
    """POST a whole record, one byte every ``pause`` seconds; keep ``(status, body)``."""
    body = json.dumps({"data": {"title": "sent slowly"}}).encode()
    sock = stalled_post(port, user, announced=len(body), sent=b"")
    try:
        for byte in body:
            sock.sendall(bytes([byte]))
            time.sleep(pause)
        results.append(read_response(sock)[:3])
    except Exception as exc:  # noqa: BLE001 - reported by the test
        results.append((None, None, repr(exc)))
    finally:
        sock.close()


@pytest.mark.parametrize("served", CONFIGURATIONS, indirect=True)
def test_stalled_and_slow_clients_delay_no_one(served):
    server, app_threads = served
    port = _port(server)
    baseline = max(timed_requests(port))
    slow = []
    slow_thread = threading.Thread(target=slow_post, args=(port, "slow", slow))
    slow_thread.start()
    # more than twice the threads: every worker gets more than it has threads
    stalled = [stalled_post(port, "stalled") for _ in range(2 * app_threads + 2)]
    try:
        time.sleep(0.2)  # let them be taken in
        with_stalled = timed_requests(port)
        assert max(with_stalled) <= baseline + ALLOWED_DELAY, (baseline, with_stalled)
        answers = [read_response(sock) for sock in stalled]
    finally:
        for sock in stalled:
            sock.close()
        slow_thread.join(timeout=30)
    for status, headers, body, waited in answers:
        assert status == 408, body
        assert body["errno"] == 107 and body["code"] == 408 and "did not arrive" in body["message"]
        assert headers["connection"] == "close" and headers["content-type"] == "application/json"
        assert waited <= BODY_TIMEOUT + 5
    [(status, _, body)] = slow
    assert status == 201, body and body["data"]["title"] == "sent slowly"  # slow is not refused
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/v1/articles", headers={"Authorization": auth("stalled")})
    assert json.loads(conn.getresponse().read())["data"] == []  # nothing written by a stalled body


@pytest.mark.parametrize("served", CONFIGURATIONS[:1], indirect=True)
def test_a_body_larger_than_allowed_is_not_read(served):
    server, _ = served
    sock = stalled_post(_port(server), "big", announced=10 * 1024 * 1024, sent=b"{" * 1024)
    status, headers, body, waited = read_response(sock)
    sock.close()
    assert (status, body["errno"]) == (413, 113) and waited < BODY_TIMEOUT


@pytest.mark.parametrize("served", CONFIGURATIONS[:1], indirect=True)
def test_a_client_that_never_reads_its_answers_delays_no_one(served):
    server, _ = served
    port = _port(server)
    baseline = max(timed_requests(port))
    reader = socket.create_connection(("127.0.0.1", port), timeout=30)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = b"GET /v1/__api__ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    try:
        reader.sendall(request * 200)  # pipelined: several MB of answers it never reads
        time.sleep(0.5)
        latencies = timed_requests(port)
        assert max(latencies) <= baseline + ALLOWED_DELAY, (baseline, latencies)
    finally:
        reader.close()

