"""Failover drill on a PostgreSQL primary and its streaming replica.

Each test starts its own pair (:func:`cliquet.testing.servers.private_postgresql_pair`:
``initdb`` + ``pg_basebackup`` of Debian's PostgreSQL, free loopback ports),
so the shared server of ``ci/services`` is never touched. The backends are
given one multi-host URL, the replica listed first, with
``target_session_attrs=read-write``.

The drill, through a real ``cliquet serve`` (Granian, 2 workers x 2
threads) under a load of writers: the primary is stopped at once (as a
crash would), the replica promoted a little later. Meanwhile every request
that needs the database answers 503 errno 201 with ``Retry-After`` (never a
500, never a stall); once the replica is promoted the pools reconnect to it
and writes resume in the same process; and, with synchronous replication,
every write that was acknowledged is on the new primary, as acknowledged.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import contextlib
import http.client
import threading
import time
import urllib.parse

import pytest

from cliquet.testing.plugin import require_module
from cliquet.testing.http import KeepAliveClient
from cliquet.testing.server import serve

ALICE = "Basic " + base64.b64encode(b"alice:secret").decode()
KINDS = ("storage", "cache", "permission")
RETRY_AFTER = "7"
#: seconds of load before the primary is stopped, without a primary, and
#: after the replica answers writes.
BEFORE, WITHOUT_PRIMARY, AFTER = 3.0, 2.5, 3.0
WRITERS = 6

INI = f"""
[app:main]
use = call:cliquet.testing.app:shared_app_factory
cliquet.userid_hmac_secret = postgresql failover
cliquet.logging_level = WARNING
cliquet.retry_after_seconds = {RETRY_AFTER}
"""

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("postgresql-failover")]


def Client(url, timeout=60.0):
    """One keep-alive HTTP connection as alice; returns ``(status, headers, body)``."""
    return KeepAliveClient(url, auth=ALICE, timeout=timeout)


def read_all(url) -> dict:
    """Every record of ``/v1/articles``, by id."""
    client, records, path = Client(url), {}, "/v1/articles?_limit=5000&_sort=last_modified"
    while path:
        status, headers, body = client.request("GET", path)
        assert status == 200, (status, body)
        records.update((r["id"], r) for r in body["data"])
        path = None
        if headers.get("next-page"):
            parts = urllib.parse.urlsplit(headers["next-page"])
            path = f"{parts.path}?{parts.query}"
    client.close()
    return records


def fields(record) -> dict:
    return {k: v for k, v in record.items() if k not in ("id", "last_modified")}


@pytest.fixture
def pair():
    """A private primary + synchronous streaming replica."""
    require_module("psycopg", reason="the `postgresql` extra is not installed")
    from cliquet.testing import servers

    pair = servers.private_postgresql_pair(synchronous=True)
    yield pair
    pair.cleanup()


@pytest.fixture
def ini(tmp_path):
    path = tmp_path / "app.ini"
    path.write_text(INI)
    return str(path)


def _env(url):
    env = {}
    for kind in KINDS:
        env[f"CLIQUET_{kind.upper()}_BACKEND"] = f"cliquet.{kind}.postgresql"
        env[f"CLIQUET_{kind.upper()}_URL"] = url
    return env


def test_a_multi_host_url_reaches_the_primary_whichever_is_listed_first(pair):
    from cliquet.storage import postgresql_client

    hosts = urllib.parse.urlsplit(pair.url).netloc.split("@")[1]
    assert hosts.split(",")[0].endswith(f":{pair.replica.port}")  # the standby comes first
    # The key of a multi-host URL names both servers: it is not the key of either alone.
    single = f"postgresql://postgres@127.0.0.1:{pair.primary.port}/postgres"
    assert postgresql_client.database_key(pair.url) != postgresql_client.database_key(single)
    client = postgresql_client.PostgreSQLClient(pair.url, pool_size=2, pool_timeout=5)
    try:
        client.execute("CREATE TABLE written (n int)", fetch=None)
        with client.transaction():
            client.execute("INSERT INTO written VALUES (1)", fetch=None)
        port = client.execute("SELECT inet_server_port()", fetch="one", readonly=True)[0]
        assert port == pair.primary.port
    finally:
        client.close()
    # The synchronous standby has it once the primary acknowledged it.
    assert pair.replica_sql("SELECT count(*) FROM written").strip() == "1"


def _writer(url, n, stop, log):
    """Create records and PATCH our last one (If-Match) until ``stop``; note
    every answer with its time, what was acknowledged, and what may or may
    not have been written (a request with no success answer)."""
    client = Client(url)
    acked, uncertain, i = {}, {}, 0
    while not stop.is_set():
        i += 1
        target = next((rid for rid in reversed(list(acked)) if rid not in uncertain), None)
        if i % 2 == 0 and target is not None:
            current = acked[target]
            change = {"score": current["score"] + 1000}
            method, path, body = "PATCH", f"/v1/articles/{target}", {"data": change}
            headers = {"If-Match": f'"{current["last_modified"]}"'}
        else:
            change = {"title": f"w{n}-{i}", "score": i, "tags": [f"w{n}"]}
            method, path, body, headers, target = "POST", "/v1/articles", {"data": change}, None, None
        started = time.monotonic()
        try:
            status, answer_headers, answer = client.request(method, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            log.append((started, time.monotonic(), method, f"no answer ({type(exc).__name__})", None, None))
            if target is not None:
                uncertain[target] = {**fields(acked[target]), **change}
            continue
        log.append((started, time.monotonic(), method, status, answer_headers.get("retry-after"),
                    (answer or {}).get("errno")))
        if status in (200, 201):
            acked[answer["data"]["id"]] = answer["data"]
        elif target is not None:
            uncertain[target] = {**fields(acked[target]), **change}
        if status == 503:
            time.sleep(0.05)
    client.close()
    return acked, uncertain


def test_failover_under_load_answers_503_then_resumes_and_loses_no_acknowledged_write(pair, ini):
    with serve(ini, _env(pair.url), migrate=True) as server:
        pid = server.pid
        stop, logs = threading.Event(), [[] for _ in range(WRITERS)]
        with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
            futures = [pool.submit(_writer, server.url, n, stop, logs[n]) for n in range(WRITERS)]
            try:
                time.sleep(BEFORE)
                stopped = time.monotonic()
                pair.stop_primary("immediate")

                # No primary: the service says so at once, reads included.
                time.sleep(0.5)
                probe = Client(server.url, timeout=30)
                window = {}
                for name, method, path in [("list", "GET", "/v1/articles"),
                                           ("create", "POST", "/v1/articles"),
                                           ("heartbeat", "GET", "/__heartbeat__"),
                                           ("lbheartbeat", "GET", "/__lbheartbeat__")]:
                    began = time.monotonic()
                    body = {"data": {"title": "none", "score": 0, "tags": []}} if method == "POST" else None
                    status, headers, answer = probe.request(method, path, body)
                    window[name] = (status, headers.get("retry-after"), (answer or {}).get("errno"),
                                    time.monotonic() - began)
                probe.close()
                time.sleep(max(0.0, WITHOUT_PRIMARY - (time.monotonic() - stopped)))

                promoting = time.monotonic()
                pair.promote()
                promoted = time.monotonic()
                deadline = promoted + 30
                while time.monotonic() < deadline:
                    done = [entry for log in logs for entry in list(log)
                            if entry[0] >= promoted and entry[3] in (200, 201)]
                    if done:
                        break
                    time.sleep(0.1)
                resumed = min((e[1] for log in logs for e in list(log) if e[0] >= promoted
                               and e[3] in (200, 201)), default=None)
                time.sleep(AFTER)
            finally:
                stop.set()
            results = [future.result() for future in futures]
        heartbeat = Client(server.url).request("GET", "/__heartbeat__")
        stored = read_all(server.url)
        same_process = server.process.poll() is None and server.pid == pid
        log_tail = server.log_tail(60)

    entries = [entry for log in logs for entry in log]
    statuses = collections.Counter(f"{e[2]} {e[3]}" for e in entries)
    print(f"answers: {dict(statuses)}; promote took {promoted - promoting:.2f} s; writes resumed "
          f"{(resumed - promoted) if resumed else float('nan'):.2f} s after it; window: {window}")

    # Never a 500, never a request without an answer: success or 503 errno 201 + Retry-After.
    bad = {s: n for s, n in statuses.items() if not s.endswith((" 200", " 201", " 503"))}
    assert not bad, f"unexpected answers {bad}; server log:\n{log_tail}"
    unavailable = [e for e in entries if e[3] == 503]
    assert unavailable, f"no request saw the switch: {dict(statuses)}"
    assert all(e[4] == RETRY_AFTER and e[5] == 201 for e in unavailable), unavailable[:3]
    # ... and answered quickly: no request waited for a pool while there was no primary.
    assert max(e[1] - e[0] for e in unavailable) < 10, max(e[1] - e[0] for e in unavailable)
    # Nothing succeeded while no server accepted writes.
    assert not [e for e in entries if stopped + 0.2 < e[0] and e[1] < promoting and e[3] in (200, 201)]

    # Without a primary, reads too answer 503 (the standby is not read from),
    # the heartbeat fails and the process itself stays up.
    assert window["list"][:3] == (503, RETRY_AFTER, 201), window
    assert window["create"][:3] == (503, RETRY_AFTER, 201), window
    assert window["heartbeat"][0] == 503 and window["lbheartbeat"][0] == 200, window
    assert all(answer[3] < 10 for answer in window.values()), window

    # The replica took over: writes resumed in the same process, no restart.
    assert resumed is not None, f"no write succeeded within 30 s of the promotion:\n{log_tail}"
    assert resumed - promoted < 15
    assert same_process
    assert heartbeat[0] == 200, heartbeat
    assert sum(1 for e in entries if e[0] >= promoted and e[3] in (200, 201)) > 5

    # Synchronous replication: every acknowledged write is there, as acknowledged
    # (or, for a record whose later write got no success answer, as that write made it).
    acked = {rid: record for result in results for rid, record in result[0].items()}
    uncertain = {rid: change for result in results for rid, change in result[1].items()}
    before = sum(1 for e in entries if e[1] <= stopped and e[3] in (200, 201))
    assert before > 5, f"too little load before the switch ({before} writes)"
    missing = acked.keys() - stored.keys()
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged records are lost"
    changed = [rid for rid in acked if stored[rid] != acked[rid]
               and not (rid in uncertain and fields(stored[rid]) == uncertain[rid])]
    assert not changed, f"{len(changed)} records differ from their last acknowledged state, e.g. " \
                        f"{acked[changed[0]]} became {stored[changed[0]]}"
    print(f"{len(acked)} acknowledged records, all on the new primary; "
          f"{len(stored) - len(acked)} written without an answer")
