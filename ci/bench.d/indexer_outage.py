"""``ci/bench --indexer-outage``: a write's latency with Elasticsearch up, then
unreachable, then back.

The app (cliquet-indexing's test ``articles``, per-user, memory storage,
indexed in Elasticsearch with the default settings — a 10 s request timeout)
runs under Granian exactly as ``ci/bench`` runs ours: RSGI, one worker,
``BENCH_APP_THREADS`` threads (4). Elasticsearch is the node ``ci/services``
started, reached through a :class:`cliquet_elasticsearch.testing.SwitchableProxy`
so it can be cut without stopping it. ``BENCH_OUTAGE_CONNECTIONS`` (8)
clients create records back to back for ``BENCH_OUTAGE_DURATION`` seconds
(10) per phase:

``up``      Elasticsearch answers (every write indexed before it returns);
``down``    the proxy turns into a black hole at the phase's first instant
            (connections accepted, never answered: the worst outage, a
            request timeout rather than a refused connection), the writes in
            flight at that moment included; ``BENCH_OUTAGE_MODE=refuse``
            resets connections instead (a stopped server);
``back``    the proxy forwards again; then the index must converge to
            storage (the background retry queue) within 60 s.

Prints a Markdown table (requests, non-2xx, p50, p99, max per phase) and the
ratio of p99 down to p99 up. Exit status 1 when that ratio exceeds 1.2, a
write failed, or the index did not converge.
"""

import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TARGET_RATIO = 1.2
AUTH = "Basic " + base64.b64encode(b"bench:outage").decode()


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port, method, path, body=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": AUTH, "Content-Type": "application/json"}
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def write_ini(directory, es_url, prefix):
    path = os.path.join(directory, "outage.ini")
    with open(path, "w") as f:
        f.write("[app:main]\n"
                "use = call:cliquet_indexing.testing.app:app_factory\n"
                "pyramid.includes = cliquet_indexing\n"
                "cliquet.userid_hmac_secret = 0d1e2f3a4b5c6d7e8f90\n"
                "cliquet.logging_renderer = off\n"
                "cliquet.indexing_backend = cliquet_elasticsearch\n"
                f"cliquet.indexing_url = {es_url}\n"
                f"cliquet.indexing_prefix = {prefix}\n")
    return path


def start_server(ini, port, threads):
    binary = os.path.join(os.path.dirname(sys.executable), "granian")
    cmd = [binary, "--interface", "rsgi", "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-ws", "--working-dir", HERE, "paste_app:rsgi_application"]
    env = dict(os.environ, BENCH_INI=ini, BENCH_APP_THREADS=str(threads), BENCH_APP_WORKERS="1")
    log = open(os.path.join(os.path.dirname(ini), "server.log"), "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    log.close()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): see {os.path.dirname(ini)}/server.log")
        try:
            if request(port, "GET", "/v1/", timeout=2)[0] == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def load(port, connections, duration, on_start=None):
    """Create records from ``connections`` keep-alive clients for ``duration`` s;
    return ``[(latency, status)]``."""
    results, lock = [], threading.Lock()
    barrier = threading.Barrier(connections + 1)
    stop_at = [0.0]

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": AUTH, "Content-Type": "application/json"}
        mine, i = [], 0
        barrier.wait()
        while time.monotonic() < stop_at[0]:
            body = json.dumps({"data": {"title": f"outage bench {n} {i}", "score": i}})
            started = time.perf_counter()
            try:
                conn.request("POST", "/v1/articles", body, headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            mine.append((time.perf_counter() - started, status))
            i += 1
        conn.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    if on_start:
        on_start()
    stop_at[0] = time.monotonic() + duration
    barrier.wait()
    for thread in threads:
        thread.join()
    return results


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def figures(results):
    latencies = [latency for latency, _ in results]
    statuses = sorted({status for _, status in results if not 200 <= status < 300})
    return {"requests": len(results), "failed": sum(1 for _, status in results if not 200 <= status < 300),
            "statuses": ", ".join(map(str, statuses)) or "-",
            "p50": percentile(latencies, 0.50) * 1000, "p99": percentile(latencies, 0.99) * 1000,
            "max": max(latencies, default=float("nan")) * 1000}


def totals(port):
    """``(records in storage, records found by search)`` of the bench user."""
    _, stored, _ = request(port, "GET", "/v1/articles?_limit=1")
    _, found, _ = request(port, "GET", "/v1/search/articles?size=0")
    lower = lambda headers: {k.lower(): v for k, v in headers.items()}  # noqa: E731
    return int(lower(stored)["total-records"]), int(lower(found).get("total-records", -1))


def main():
    from cliquet_elasticsearch.testing import SwitchableProxy

    es_url = os.environ.get("CLIQUET_TEST_ELASTICSEARCH_URL")
    if not es_url:
        sys.exit("CLIQUET_TEST_ELASTICSEARCH_URL is not set (eval \"$(ci/services)\")")
    duration = float(os.environ.get("BENCH_OUTAGE_DURATION", "10"))
    connections = int(os.environ.get("BENCH_OUTAGE_CONNECTIONS", "8"))
    threads = int(os.environ.get("BENCH_APP_THREADS", "4"))
    mode = os.environ.get("BENCH_OUTAGE_MODE", "blackhole")
    proxy = SwitchableProxy(es_url)
    directory = tempfile.mkdtemp(prefix="cliquet-bench-outage-")
    prefix = f"bench_outage_{os.getpid()}_"
    port = free_port()
    proc = start_server(write_ini(directory, proxy.url, prefix), port, threads)
    rows, failures = [], []
    try:
        request(port, "POST", "/v1/articles", {"data": {"title": "warm up"}})
        print(f"phase up: {duration:.0f}s, {connections} connections", file=sys.stderr)
        rows.append(("up", figures(load(port, connections, duration))))
        print(f"phase down ({mode})", file=sys.stderr)
        rows.append((f"down ({mode})", figures(load(port, connections, duration,
                                                     on_start=lambda: proxy.set_mode(mode)))))
        print("phase back", file=sys.stderr)
        rows.append(("back", figures(load(port, connections, duration,
                                          on_start=lambda: proxy.set_mode("forward")))))
        deadline, state = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            state = totals(port)
            if state[0] == state[1]:
                break
            time.sleep(0.5)
        converged = state is not None and state[0] == state[1]
        if not converged:
            failures.append(f"the index did not converge: {state[0]} records stored, {state[1]} found")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        proxy.close()
        try:
            from elasticsearch import Elasticsearch

            client = Elasticsearch(es_url, request_timeout=30)
            names = sorted(client.indices.get(index=f"{prefix}*", allow_no_indices=True, ignore_unavailable=True))
            if names:
                client.indices.delete(index=",".join(names))
            client.close()
        except Exception as exc:  # the figures matter more than the clean-up
            print(f"could not remove the bench indexes {prefix}*: {exc}", file=sys.stderr)
    up, down = rows[0][1], rows[1][1]
    ratio = down["p99"] / up["p99"] if up["p99"] else float("inf")
    print("| phase | requests | non-2xx | statuses | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for name, row in rows:
        print(f"| {name} | {row['requests']} | {row['failed']} | {row['statuses']} | {row['p50']:.1f} | {row['p99']:.1f} "
              f"| {row['max']:.1f} |")
    print(f"\np99 down / p99 up = {ratio:.2f} (target <= {TARGET_RATIO}); index converged: "
          f"{state[0]} records stored, {state[1]} found")
    if ratio > TARGET_RATIO:
        failures.append(f"p99 with the indexer down is {ratio:.2f}x its p99 with it up")
    failures += [f"{name}: {row['failed']} write(s) failed" for name, row in rows if row["failed"]]
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
