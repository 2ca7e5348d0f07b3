"""Faults and load, through a real server: ``cliquet serve`` (Granian, 2
workers x 2 threads) on the PostgreSQL and Redis backends of ``ci/services``,
driven over HTTP by client threads on loopback.

* concurrent writers and batches: no 409, no 5xx, nothing acknowledged lost;
* concurrent PATCHes with one ``If-Match``: one winner, the others 412;
* concurrent creates: unique, increasing timestamps;
* the server SIGKILLed mid-load: no acknowledged write lost, no half-written
  record;
* the database stopped under a running app: 503 errno 201 with
  ``Retry-After`` and a failing heartbeat, then recovery without a restart
  (on a private server, never the shared one).

Every test has its own server and its own PostgreSQL schema or Redis key
prefix. The tests of one backend share an xdist group, so that the two
backends' tests run side by side rather than all at once.
``CLIQUET_LOAD_SECONDS`` sets the length of the load test (20 s).
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import contextlib
import http.client
import os
import random
import threading
import time
import urllib.parse
import uuid

import pytest

from cliquet.testing.plugin import require_module

from cliquet.testing.http import KeepAliveClient
from cliquet.testing.server import serve

LOAD_SECONDS = float(os.environ.get("CLIQUET_LOAD_SECONDS", "20"))
HTTP_TIMEOUT = 60.0
ALICE = "Basic " + base64.b64encode(b"alice:secret").decode()
BOB = "Basic " + base64.b64encode(b"bob:secret").decode()
KINDS = ("storage", "cache", "permission")

INI = """
[app:main]
use = call:cliquet.testing.app:shared_app_factory
cliquet.userid_hmac_secret = load and faults
cliquet.logging_level = WARNING
cliquet.retry_after_seconds = 7
"""

pytestmark = pytest.mark.services


def _backend(name):
    return pytest.param(name, id=name, marks=pytest.mark.xdist_group(f"served-{name}"))


BACKENDS = [_backend("postgresql"), _backend("redis")]


# -- HTTP --------------------------------------------------------------------------


def Client(url, auth=ALICE):
    """One keep-alive HTTP connection (one per thread); a request that got no
    answer raises ``OSError``/``HTTPException`` and is never sent again."""
    return KeepAliveClient(url, auth=auth, timeout=HTTP_TIMEOUT)


def read_all(url, auth=ALICE) -> dict:
    """Every record of ``/v1/articles`` the user may read, by id."""
    client, records = Client(url, auth), {}
    path = "/v1/articles?_limit=5000&_sort=last_modified"
    while path:
        answer = client.request("GET", path)
        assert answer.status == 200, (answer.status, answer.body)
        records.update((r["id"], r) for r in answer.data)
        next_page = answer.headers.get("next-page")
        path = None
        if next_page:
            parts = urllib.parse.urlsplit(next_page)
            path = f"{parts.path}?{parts.query}"
    client.close()
    return records


def user_id(url, auth) -> str:
    answer = Client(url, auth).request("GET", "/v1/")
    return answer.body["user"]["id"]


def create_body(title, score, tag):
    return {"data": {"title": title, "score": score, "tags": [tag]}}


def batch_body(prefix, size=25):
    return {"defaults": {"method": "POST", "path": "/articles"},
            "requests": [{"body": create_body(f"{prefix}-{i}", i, prefix)} for i in range(size)]}


def payload(record) -> dict:
    """The fields a client sent (without id and last_modified)."""
    return {k: v for k, v in record.items() if k not in ("id", "last_modified")}


# -- per-test backends and servers ----------------------------------------------------------


def _env_for(backend, url, prefix=""):
    env = {}
    for kind in KINDS:
        env[f"CLIQUET_{kind.upper()}_BACKEND"] = f"cliquet.{kind}.{backend}"
        env[f"CLIQUET_{kind.upper()}_URL"] = url
        if prefix:
            env[f"CLIQUET_{kind.upper()}_PREFIX"] = f"{prefix}{kind[0]}:"
    return env


@pytest.fixture
def ini(tmp_path):
    path = tmp_path / "app.ini"
    path.write_text(INI)
    return str(path)


@pytest.fixture
def backend_env(request, cliquet_worker_prefix):
    """The environment that puts the served app on a fresh schema (PostgreSQL)
    or key prefix (Redis) of the shared test server."""
    tag = f"{cliquet_worker_prefix}lf{uuid.uuid4().hex[:8]}"
    if request.param == "postgresql":
        psycopg = require_module("psycopg", reason="the `postgresql` extra is not installed")
        base = request.getfixturevalue("postgresql_url")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{tag}"')
        option = urllib.parse.quote(f"-csearch_path={tag}")
        yield _env_for("postgresql", f"{base}{'&' if '?' in base else '?'}options={option}")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{tag}" CASCADE')
    else:
        require_module("redis", reason="the `redis` extra is not installed")
        from cliquet.storage.redis_client import close_client, delete_prefix, get_client

        base = request.getfixturevalue("redis_url")
        yield _env_for("redis", base, prefix=f"{tag}:")
        client = get_client(base, pool_size=1)
        delete_prefix(client, f"{tag}:")
        close_client(client)


def _statuses(results) -> collections.Counter:
    total = collections.Counter()
    for result in results:
        total.update(result["counts"])
    return total


# -- 1. writers and batches for LOAD_SECONDS ----------------------------------------------------


def _writer(url, n, deadline, stop=None):
    """Create a record, PATCH one of ours (If-Match), again until ``deadline``."""
    client, counts, acked, pending, errors = Client(url), collections.Counter(), {}, None, []
    mine, i = [], 0
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        i += 1
        body = create_body(f"w{n}-{i}", i, f"w{n}")
        pending = ("create", body["data"], None)
        try:
            answer = client.request("POST", "/v1/articles", body)
            counts[f"POST {answer.status}"] += 1
            if answer.status == 201:
                acked[answer.data["id"]] = answer.data
                mine.append(answer.data["id"])
            elif len(errors) < 5:
                errors.append(answer.body)
            target = random.choice(mine) if mine else None
            if target is None:
                continue
            current = acked[target]
            change = {"score": current["score"] + 1000, "tags": [f"w{n}", f"p{i}"]}
            pending = ("patch", {**payload(current), **change}, target)
            answer = client.request("PATCH", f"/v1/articles/{target}", {"data": change},
                                    {"If-Match": f'"{current["last_modified"]}"'})
            counts[f"PATCH {answer.status}"] += 1
            if answer.status == 200:
                acked[target] = answer.data
            elif len(errors) < 5:
                errors.append(answer.body)
            pending = None
        except (OSError, http.client.HTTPException) as exc:
            counts[f"no answer ({type(exc).__name__})"] += 1
            break
    client.close()
    return {"counts": counts, "acked": acked, "pending": pending, "errors": errors}


def _batcher(url, n, deadline, stop=None):
    """Send batches of 25 creates until ``deadline``."""
    client, counts, acked, pending, errors, i = Client(url), collections.Counter(), {}, None, [], 0
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        i += 1
        body = batch_body(f"b{n}-{i}")
        pending = ("batch", [sub["body"]["data"] for sub in body["requests"]], None)
        try:
            answer = client.request("POST", "/v1/batch", body)
        except (OSError, http.client.HTTPException) as exc:
            counts[f"no answer ({type(exc).__name__})"] += 1
            break
        pending = None
        counts[f"batch {answer.status}"] += 1
        if answer.status != 200:
            errors.append(answer.body)
            continue
        for sub in answer.body["responses"]:
            counts[f"batch/POST {sub['status']}"] += 1
            if sub["status"] == 201:
                acked[sub["body"]["data"]["id"]] = sub["body"]["data"]
            elif len(errors) < 5:
                errors.append(sub["body"])
    client.close()
    return {"counts": counts, "acked": acked, "pending": pending, "errors": errors}


def _run_load(url, seconds, stop=None, writers=16, batchers=4):
    deadline = time.monotonic() + seconds
    with concurrent.futures.ThreadPoolExecutor(writers + batchers) as pool:
        futures = [pool.submit(_writer, url, n, deadline, stop) for n in range(writers)]
        futures += [pool.submit(_batcher, url, n, deadline, stop) for n in range(batchers)]
        return [future.result() for future in futures]


@pytest.mark.parametrize("backend_env", BACKENDS, indirect=True)
def test_concurrent_writers_and_batches_lose_nothing(ini, backend_env):
    with serve(ini, backend_env, migrate=True) as server:
        started = time.monotonic()
        results = _run_load(server.url, LOAD_SECONDS)
        elapsed = time.monotonic() - started
        stored = read_all(server.url)
    counts = _statuses(results)
    acked = {rid: record for result in results for rid, record in result["acked"].items()}
    errors = [error for result in results for error in result["errors"]][:5]
    requests = sum(counts.values())
    print(f"{elapsed:.1f} s, {requests / elapsed:.0f} answers/s, {len(acked)} records: {dict(counts)}")
    bad = {status: n for status, n in counts.items() if not status.endswith((" 200", " 201"))}
    assert not bad, f"unexpected answers {bad} of {dict(counts)}; first errors: {errors}"
    assert counts["POST 201"] > 0 and counts["PATCH 200"] > 0 and counts["batch/POST 201"] > 0, dict(counts)
    missing = acked.keys() - stored.keys()
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged records are missing"
    assert stored.keys() == acked.keys(), f"{len(stored.keys() - acked.keys())} records nobody was answered for"
    changed = [rid for rid in acked if stored[rid] != acked[rid]]
    assert not changed, f"{len(changed)} records differ from their last answer, e.g. " \
                        f"{acked[changed[0]]} became {stored[changed[0]]}"


# -- 2. one If-Match, 50 PATCHes -----------------------------------------------------------------


@pytest.mark.parametrize("backend_env", BACKENDS, indirect=True)
def test_concurrent_patches_with_one_if_match_have_one_winner(ini, backend_env):
    with serve(ini, backend_env, migrate=True) as server:
        record = Client(server.url).request("POST", "/v1/articles", create_body("contended", 0, "x")).data
        etag = f'"{record["last_modified"]}"'
        barrier = threading.Barrier(50)

        def patch(n):
            client = Client(server.url)
            client.request("GET", "/v1/")  # connected before the race starts
            barrier.wait()
            answer = client.request("PATCH", f"/v1/articles/{record['id']}",
                                    {"data": {"score": n, "tags": [f"patch-{n}"]}}, {"If-Match": etag})
            client.close()
            return n, answer

        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(patch, range(50)))
        stored = Client(server.url).request("GET", f"/v1/articles/{record['id']}").data
    counts = collections.Counter(answer.status for _, answer in answers)
    print(dict(counts))
    assert counts == {200: 1, 412: 49}, dict(counts)
    winner, answer = next((n, answer) for n, answer in answers if answer.status == 200)
    assert stored == answer.data
    assert stored["score"] == winner and stored["tags"] == [f"patch-{winner}"] and stored["title"] == "contended"
    assert stored["last_modified"] > record["last_modified"]
    assert all(a.body["errno"] == 114 for _, a in answers if a.status == 412)


# -- 3. 1 000 concurrent creates -------------------------------------------------------------------


@pytest.mark.parametrize("backend_env", BACKENDS, indirect=True)
def test_concurrent_creates_get_distinct_increasing_timestamps(ini, backend_env):
    threads, per_thread = 20, 50

    def create(n):
        client, answers = Client(server.url), []
        for i in range(per_thread):
            answers.append(client.request("POST", "/v1/articles", create_body(f"c{n}-{i}", i, f"c{n}")))
        client.close()
        return answers

    with serve(ini, backend_env, migrate=True) as server:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            per_client = list(pool.map(create, range(threads)))
        stored = read_all(server.url)
        etag = Client(server.url).request("GET", "/v1/articles?_limit=1").headers["etag"]
    counts = collections.Counter(a.status for answers in per_client for a in answers)
    assert counts == {201: 1000}, dict(counts)
    assert len(stored) == 1000
    stamps = sorted(record["last_modified"] for record in stored.values())
    assert len(set(stamps)) == 1000, f"{1000 - len(set(stamps))} timestamps are shared"
    assert all(a < b for a, b in zip(stamps, stamps[1:]))
    for answers in per_client:
        # Answered creates as stored; one client's later create is newer.
        assert all(stored[a.data["id"]] == a.data for a in answers)
        own = [a.data["last_modified"] for a in answers]
        assert own == sorted(own) and len(set(own)) == len(own)
    assert etag == f'"{stamps[-1]}"'


# -- 4. SIGKILL mid-load -------------------------------------------------------------------------


@pytest.mark.parametrize("backend_env", BACKENDS, indirect=True)
def test_killing_the_server_mid_load_loses_no_acknowledged_write(ini, backend_env):
    stop = threading.Event()
    with serve(ini, backend_env, migrate=True) as server:
        bob = user_id(server.url, BOB)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            load = pool.submit(_run_load, server.url, 60, stop, 8, 2)
            time.sleep(random.uniform(2.0, 3.0))
            stop.set()  # the clients stop at their next answer, or at the error
            server.kill()
            results = load.result()
    counts = _statuses(results)
    print(f"before the kill: {dict(counts)}")
    assert sum(n for status, n in counts.items() if status.startswith("no answer")) >= 1, \
        f"no request was in flight when the server was killed: {dict(counts)}"
    bad = {s: n for s, n in counts.items() if not s.endswith((" 200", " 201")) and not s.startswith("no answer")}
    assert not bad, f"unexpected answers before the kill {bad} of {dict(counts)}"

    # The same database, a new server; bob may read every record, alice only
    # those whose permissions were written with them.
    with serve(ini, {**backend_env, "CLIQUET_ARTICLE_READ_PRINCIPALS": bob}, migrate=True) as server:
        everything = read_all(server.url, BOB)
        owned = read_all(server.url, ALICE)
    acked = {rid: record for result in results for rid, record in result["acked"].items()}
    in_flight = [result["pending"] for result in results if result["pending"]]
    missing = acked.keys() - everything.keys()
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged records lost"
    unreachable = everything.keys() - owned.keys()
    assert not unreachable, f"{len(unreachable)} records stored without their permissions: " + "; ".join(
        f"{everything[rid]} ({'acknowledged' if rid in acked else 'not acknowledged'})" for rid in unreachable)
    unanswered_creates = {}
    for kind, sent, _ in in_flight:
        for data in (sent if kind == "batch" else [sent] if kind == "create" else []):
            unanswered_creates[data["title"]] = data
    patches = {target: sent for kind, sent, target in in_flight if kind == "patch"}
    for rid, record in everything.items():
        if rid in acked:
            if record == acked[rid]:
                continue
            # Only a PATCH in flight may have been applied without an answer.
            assert rid in patches and payload(record) == patches[rid], \
                f"{record} is neither its acknowledged version {acked[rid]} nor the one in flight"
            assert record["last_modified"] > acked[rid]["last_modified"]
        else:
            assert unanswered_creates.get(record["title"]) == payload(record), \
                f"{record} was never acknowledged nor in flight in this form"
    print(f"{len(acked)} acknowledged, {len(everything)} stored, "
          f"{len(everything) - len(acked.keys() & everything.keys())} from requests in flight")


# -- 5. the database down and back ----------------------------------------------------------------


def _private_server(backend):
    """A started private server of ``backend`` (:mod:`cliquet.testing.servers`)."""
    from cliquet.testing import servers

    if backend == "postgresql":
        require_module("psycopg", reason="the `postgresql` extra is not installed")
        server = servers.private_postgresql()
    else:
        require_module("redis", reason="the `redis` extra is not installed")
        server = servers.private_redis()
    server.down, server.up = server.stop, server.start
    return server


def _wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_down_gives_503_and_the_app_recovers_by_itself(ini, backend):
    database = _private_server(backend)
    try:
        env = _env_for(backend, database.url, prefix="down:" if backend == "redis" else "")
        with serve(ini, env, migrate=True) as server, contextlib.ExitStack() as stack:
            client = Client(server.url)
            record = client.request("POST", "/v1/articles", create_body("before", 1, "x")).data
            assert client.request("GET", "/__heartbeat__").status == 200

            database.down()
            stack.callback(lambda: print(server.log_tail(80)))
            started, answers = time.monotonic(), []
            for _ in range(4):  # enough for both workers to notice
                answers.append(client.request("GET", f"/v1/articles/{record['id']}"))
                answers.append(client.request("POST", "/v1/articles", create_body("during", 2, "x")))
                answers.append(client.request("GET", "/v1/articles"))
                answers.append(client.request("PATCH", f"/v1/articles/{record['id']}", {"data": {"score": 3}}))
            elapsed = time.monotonic() - started
            statuses = collections.Counter(a.status for a in answers)
            assert statuses == {503: len(answers)}, dict(statuses)
            assert all(a.body["errno"] == 201 and a.headers["retry-after"] == "7" for a in answers)
            assert elapsed < 30, f"{len(answers)} requests took {elapsed:.1f} s while the database was down"
            heartbeat = client.request("GET", "/__heartbeat__")
            assert heartbeat.status == 503 and heartbeat.body == dict.fromkeys(KINDS, False), heartbeat.body
            assert client.request("GET", "/__lbheartbeat__").status == 200  # the process is alive

            database.up()
            pid = server.pid
            assert _wait_for(lambda: client.request("GET", "/__heartbeat__").status == 200, 30), \
                "the heartbeat did not recover"
            assert client.request("GET", "/__heartbeat__").body == dict.fromkeys(KINDS, True)
            after = collections.Counter()
            for i in range(10):  # both workers
                after[client.request("GET", f"/v1/articles/{record['id']}").status] += 1
                after[client.request("POST", "/v1/articles", create_body(f"after-{i}", i, "x")).status] += 1
            assert after == {200: 10, 201: 10}, dict(after)
            stored = read_all(server.url)
            assert stored[record["id"]] == record
            assert sorted(r["title"] for r in stored.values()) == ["after-%d" % i for i in range(10)] + ["before"]
            assert server.process.poll() is None and server.pid == pid  # the same process throughout
            print(f"down: {dict(statuses)} in {elapsed:.2f} s; after: {dict(after)}")
    finally:
        database.cleanup()
