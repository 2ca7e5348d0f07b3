"""``ci/bench --cluster``: the app tier — several service processes behind a
real HAProxy, over clustered backends.

For each backend of ``--backends`` (``postgresql,redis`` by default) the
bench starts its own private cluster (nothing of ``ci/services`` is touched):

``postgresql``  a primary and a streaming replica with synchronous
                replication (:func:`cliquet.testing.servers.private_postgresql_pair`),
                reached through one libpq multi-host URL with
                ``target_session_attrs=read-write``;
``redis``       a Redis Cluster, three masters and three replicas
                (:func:`cliquet.testing.servers.private_redis_cluster`), the
                storage with ``storage_wait_replicas = 1``.

It starts as many ``cliquet serve`` processes (``--workers 1 --threads
BENCH_APP_THREADS``, each on its own loopback port) as the largest step of
``--processes`` (default ``1,2,…`` up to the number of cores), and for each
step an HAProxy (Debian's, installed by ``ci/services``) with a generated
configuration balancing over that many of them (``leastconn``, health check
on ``/__lbheartbeat__``). wrk (``bench.lua``) then measures, through HAProxy,
creating records (``create``) and reading one (``get``): ok-requests/s, p50
and p99.

Then the backend loses a node under load, with every process behind HAProxy:
``BENCH_CLUSTER_WRITERS`` (8) keep-alive clients create records for
``BENCH_CLUSTER_DRILL`` seconds (12); after a third of it the PostgreSQL
primary is stopped at once (``pg_ctl stop -m immediate``) and the replica
promoted one second later, or the Redis master of the service's hash slot is
killed (``SIGKILL``), its replica takes over, and the killed node is started
again (it rejoins as the new master's replica, which ``WAIT 1`` needs). Every
answer must be a 201 or a 503 with ``Retry-After`` (never a 502/504 from the
balancer, never a 500), and every acknowledged record must be found
afterwards, as acknowledged.

Prints a Markdown report on stdout (also saved to
``.cache/bench/cluster-<date>.md``). Exit status 1 when a check failed: an
acknowledged write lost, an unexpected answer, or writes that did not
resume. Knobs: ``BENCH_DURATION`` (s per wrk run, 5), ``BENCH_CONNECTIONS``
(16), ``BENCH_THREADS`` (wrk threads, 2), ``BENCH_APP_THREADS`` (4).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import datetime
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from cliquet.testing import servers
from cliquet.testing.http import KeepAliveClient
from cliquet.testing.server import free_port, serve

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
AUTH = "Basic " + base64.b64encode(b"bench:cluster").decode()
RETRY_AFTER = "3"
KINDS = ("storage", "cache", "permission")
#: every key of the Redis backends carries this hash tag (one slot, one master).
REDIS_HASH_TAG = "{cliquet}"

INI = f"""
[app:main]
use = call:cliquet.testing.app:shared_app_factory
cliquet.userid_hmac_secret = cluster bench
cliquet.logging_level = WARNING
cliquet.logging_renderer = off
cliquet.retry_after_seconds = {RETRY_AFTER}
"""

HAPROXY_CFG = """global
    maxconn 4096
    nbthread 1

defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    option http-keep-alive

frontend cliquet
    bind 127.0.0.1:{port}
    default_backend processes

backend processes
    balance leastconn
    option httpchk GET /__lbheartbeat__
    http-check expect status 200
{servers}
"""


def log(message):
    print(f"ci/bench --cluster: {message}", file=sys.stderr, flush=True)


def Client(port, timeout=120.0):
    """One keep-alive HTTP connection to 127.0.0.1:``port``; ``request``
    returns ``(status, headers, body)``."""
    return KeepAliveClient(f"http://127.0.0.1:{port}", auth=AUTH, timeout=timeout)


# -- backends -------------------------------------------------------------------


class PostgreSQLBackend:
    """A primary + synchronous streaming replica; losing a node = the primary
    stopped at once, the replica promoted one second later."""

    name = "postgresql"

    def __init__(self):
        self.pair = servers.private_postgresql_pair(synchronous=True)
        self.env = {}
        for kind in KINDS:
            self.env[f"CLIQUET_{kind.upper()}_BACKEND"] = f"cliquet.{kind}.postgresql"
            self.env[f"CLIQUET_{kind.upper()}_URL"] = self.pair.url
        self.description = ("PostgreSQL primary + synchronous streaming replica, multi-host URL "
                            "(`target_session_attrs=read-write`)")

    def lose_a_node(self):
        """Stop the primary; promote the replica a second later. Return the events."""
        began = time.monotonic()
        self.pair.stop_primary("immediate")
        time.sleep(1.0)
        promoting = time.monotonic()
        self.pair.promote()
        return {"lost": began, "replacement_ready": time.monotonic(), "promote_s": time.monotonic() - promoting}

    def cleanup(self):
        self.pair.cleanup()


class RedisBackend:
    """A Redis Cluster (3 masters + 3 replicas), storage with WAIT 1; losing a
    node = the master of the service's slot killed, restarted once its
    replica took over."""

    name = "redis"

    def __init__(self):
        self.cluster = servers.private_redis_cluster()
        self.env = {"CLIQUET_STORAGE_WAIT_REPLICAS": "1", "CLIQUET_STORAGE_WAIT_TIMEOUT": "1.0"}
        for kind in KINDS:
            self.env[f"CLIQUET_{kind.upper()}_BACKEND"] = f"cliquet.{kind}.redis"
            self.env[f"CLIQUET_{kind.upper()}_URL"] = self.cluster.url
        self.description = ("Redis Cluster, 3 masters + 3 replicas (node timeout "
                            f"{self.cluster.node_timeout_ms} ms), `storage_wait_replicas = 1`")

    def lose_a_node(self):
        """Kill the master of the service's slot; once its replica took over,
        start it again (it rejoins as a replica). Return the events."""
        victim = self.cluster.master_of(REDIS_HASH_TAG)
        began = time.monotonic()
        self.cluster.kill(victim)
        self.cluster.wait_taken_over(REDIS_HASH_TAG, victim)
        took_over = time.monotonic()
        self.cluster.start_node(victim)
        return {"lost": began, "replacement_ready": took_over, "failover_s": took_over - began,
                "rejoined_s": time.monotonic() - began}

    def cleanup(self):
        self.cluster.cleanup()


BACKENDS = {"postgresql": PostgreSQLBackend, "redis": RedisBackend}


# -- HAProxy --------------------------------------------------------------------


def haproxy_binary():
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if found is None:
        raise SystemExit("ci/bench --cluster: no haproxy binary: run ./ci/services (ci/services.d/45-haproxy.sh)")
    return found


@contextlib.contextmanager
def haproxy(ports, directory):
    """An HAProxy in front of the processes on ``ports``; yields its port."""
    port = free_port()
    lines = "\n".join(f"    server p{n} 127.0.0.1:{p} check inter 1s fall 2 rise 1 maxconn 64"
                      for n, p in enumerate(ports))
    cfg = os.path.join(directory, f"haproxy-{len(ports)}.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG.format(port=port, servers=lines))
    logfile = open(os.path.join(directory, f"haproxy-{len(ports)}.log"), "w")
    process = subprocess.Popen([haproxy_binary(), "-f", cfg, "-db"], stdout=logfile, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    logfile.close()
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"haproxy exited with {process.returncode}: see {directory}")
            try:
                if Client(port, timeout=2).request("GET", "/__lbheartbeat__")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("haproxy did not answer")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- measuring --------------------------------------------------------------------


def run_wrk(port, mode, duration, connections, threads, ids_file=None):
    """One wrk run through HAProxy; the ``BENCHJSON`` line of ``bench.lua``."""
    env = dict(os.environ, BENCH_MODE=mode, BENCH_AUTH=AUTH, BENCH_PATH="/v1/articles",
               BENCH_THREADS=str(threads), BENCH_IDS_FILE=ids_file or "")
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s", "--timeout", "30s",
               "-s", os.path.join(HERE, "bench.lua"), f"http://127.0.0.1:{port}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, errors="replace", timeout=duration + 120)
    for line in done.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            result = json.loads(line[len("BENCHJSON "):])
            result["rps"] = result["ok"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError(f"wrk gave no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def preload(port, count):
    """Create ``count`` records through HAProxy; return their ids."""
    client, ids = Client(port), []
    for n in range(count):
        status, _, body = client.request("POST", "/v1/articles",
                                         {"data": {"title": f"preload {n}", "score": n, "tags": ["bench"]}})
        if status != 201:
            raise RuntimeError(f"preload: {status} {body}")
        ids.append(body["data"]["id"])
    client.close()
    return ids


def read_all(port):
    """Every record of ``/v1/articles``, by id (following ``Next-Page``)."""
    client, records, path = Client(port), {}, "/v1/articles?_limit=5000&_sort=last_modified"
    while path:
        status, headers, body = client.request("GET", path)
        if status != 200:
            raise RuntimeError(f"listing: {status} {body}")
        records.update((r["id"], r) for r in body["data"])
        path = None
        if headers.get("next-page"):
            parts = urllib.parse.urlsplit(headers["next-page"])
            path = f"{parts.path}?{parts.query}"
    client.close()
    return records


def drill(port, backend, writers, duration):
    """Writers create records through HAProxy while the backend loses a node."""
    stop = threading.Event()
    answers = [[] for _ in range(writers)]
    acked = [dict() for _ in range(writers)]

    def writer(n):
        client, i = Client(port, timeout=60), 0
        while not stop.is_set():
            i += 1
            record = {"title": f"drill {n}-{i}", "score": i, "tags": [f"w{n}"]}
            started = time.monotonic()
            try:
                status, headers, body = client.request("POST", "/v1/articles", {"data": record})
            except (OSError, http.client.HTTPException) as exc:
                answers[n].append((started, time.monotonic(), f"no answer ({type(exc).__name__})", None))
                continue
            answers[n].append((started, time.monotonic(), status, headers.get("retry-after")))
            if status == 201:
                acked[n][body["data"]["id"]] = body["data"]
            elif status == 503:
                time.sleep(0.05)
        client.close()

    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        futures = [pool.submit(writer, n) for n in range(writers)]
        try:
            time.sleep(duration / 3)
            events = backend.lose_a_node()
            time.sleep(max(0.0, duration * 2 / 3 - (time.monotonic() - events["lost"])))
        finally:
            stop.set()
        for future in futures:
            future.result()

    entries = sorted(entry for per_writer in answers for entry in per_writer)
    lost_at = events["lost"]
    after = [e for e in entries if e[0] >= lost_at]
    resumed = next((e[1] for e in after if e[2] == 201), None)
    stored = read_all(port)
    acknowledged = {rid: rec for per_writer in acked for rid, rec in per_writer.items()}
    missing = [rid for rid in acknowledged if rid not in stored]
    changed = [rid for rid in acknowledged if rid in stored and stored[rid] != acknowledged[rid]]
    statuses = {}
    for entry in entries:
        key = str(entry[2]) + (" + Retry-After" if entry[2] == 503 and entry[3] else "")
        statuses[key] = statuses.get(key, 0) + 1
    unavailable = [e for e in entries if e[2] == 503]
    return {
        "acknowledged": len(acknowledged),
        "acked_before": sum(1 for e in entries if e[1] < lost_at and e[2] == 201),
        "statuses": statuses,
        "unexpected": {k: v for k, v in statuses.items() if k not in ("201", "503 + Retry-After")},
        "missing": len(missing), "changed": len(changed),
        "resumed_s": None if resumed is None else resumed - lost_at,
        "last_503_s": max((e[1] - lost_at for e in unavailable), default=0.0),
        "slowest_s": max((e[1] - e[0] for e in entries), default=0.0),
        "events": {k: (round(v, 2) if k.endswith("_s") else None) for k, v in events.items()
                   if k.endswith("_s")},
    }


# -- the run ----------------------------------------------------------------------


def bench_backend(name, steps, cfg, directory, report):
    log(f"{name}: starting the private cluster")
    backend = BACKENDS[name]()
    failures = []
    try:
        ini = os.path.join(directory, f"{name}.ini")
        with open(ini, "w") as f:
            f.write(INI)
        with contextlib.ExitStack() as stack:
            processes = []
            for n in range(max(steps)):
                log(f"{name}: starting service process {n + 1}/{max(steps)}")
                processes.append(stack.enter_context(
                    serve(ini, backend.env, workers=1, threads=cfg["app_threads"], migrate=(n == 0))))
            ports = [int(p.url.rsplit(":", 1)[1]) for p in processes]
            stack.callback(lambda: sys.exc_info()[0] and [log(f"log of {p.url}:\n{p.log_tail(40)}")
                                                          for p in processes])
            ids_file = os.path.join(directory, f"{name}-ids.txt")
            rows = []
            for count in steps:
                with haproxy(ports[:count], directory) as port:
                    if not os.path.exists(ids_file):
                        with open(ids_file, "w") as f:
                            f.write("\n".join(preload(port, 200)) + "\n")
                    row = {"processes": count}
                    for mode in ("create", "get"):
                        result = run_wrk(port, mode, cfg["duration"], cfg["connections"], cfg["threads"],
                                         ids_file if mode == "get" else None)
                        log(f"{name}: {count} process(es), {mode}: {result['rps']:.0f} req/s, "
                            f"p99 {result['p99_us'] / 1000:.1f} ms, not ok {result['bad']}")
                        row[mode] = result
                        if result["bad"] or sum(result["errors"].values()) - result["errors"]["status"]:
                            failures.append(f"{name} {mode} x{count}: {result['bad']} answers not ok "
                                            f"({result['statuses']}), errors {result['errors']}")
                    rows.append(row)
            log(f"{name}: losing a node under {cfg['writers']} writers through HAProxy ({max(steps)} processes)")
            with haproxy(ports, directory) as port:
                outcome = drill(port, backend, cfg["writers"], cfg["drill"])
            alive = all(p.process.poll() is None for p in processes)
    finally:
        backend.cleanup()

    first = rows[0]
    report.append(f"\n## {name}: {backend.description}\n")
    report.append("| processes | create req/s | create p50 | create p99 | get req/s | get p50 | get p99 |")
    report.append("|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        cells = [str(row["processes"])]
        for mode in ("create", "get"):
            r = row[mode]
            ratio = r["rps"] / first[mode]["rps"] if first[mode]["rps"] else float("nan")
            cells += [f"{r['rps']:.0f} (x{ratio:.2f})", f"{r['p50_us'] / 1000:.1f} ms", f"{r['p99_us'] / 1000:.1f} ms"]
        report.append("| " + " | ".join(cells) + " |")
    report.append(f"\nA node lost under {cfg['writers']} writers through HAProxy ({max(steps)} processes, "
                  f"{cfg['drill']:.0f} s): {outcome['acknowledged']} records acknowledged "
                  f"({outcome['acked_before']} before the loss), **{outcome['missing']} lost**, "
                  f"{outcome['changed']} changed; answers {outcome['statuses']}; backend events "
                  f"{outcome['events']}; writes resumed "
                  + (f"{outcome['resumed_s']:.2f} s" if outcome["resumed_s"] is not None else "never")
                  + f" after the loss (last 503 at {outcome['last_503_s']:.2f} s; slowest answer "
                  f"{outcome['slowest_s']:.2f} s); service processes still up: {alive}.")
    if outcome["missing"] or outcome["changed"]:
        failures.append(f"{name}: {outcome['missing']} acknowledged records lost, {outcome['changed']} changed")
    if outcome["unexpected"]:
        failures.append(f"{name}: unexpected answers during the drill: {outcome['unexpected']}")
    if outcome["resumed_s"] is None:
        failures.append(f"{name}: writes did not resume after the loss")
    if not alive:
        failures.append(f"{name}: a service process died")
    return failures


def main(argv=None):
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(prog="ci/bench --cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="postgresql,redis",
                        help="comma-separated: postgresql, redis (default: both)")
    parser.add_argument("--processes", default=",".join(str(n) for n in range(1, cores + 1)),
                        help="comma-separated numbers of service processes behind HAProxy "
                             f"(default: 1..{cores}, the cores)")
    args = parser.parse_args(argv)
    steps = sorted({int(n) for n in args.processes.split(",") if n.strip()})
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not steps or min(steps) < 1:
        parser.error(f"unknown backend(s) {unknown} or bad --processes")
    cfg = {"duration": float(os.environ.get("BENCH_DURATION", "5")),
           "connections": int(os.environ.get("BENCH_CONNECTIONS", "16")),
           "threads": int(os.environ.get("BENCH_THREADS", "2")),
           "app_threads": int(os.environ.get("BENCH_APP_THREADS", "4")),
           "writers": int(os.environ.get("BENCH_CLUSTER_WRITERS", "8")),
           "drill": float(os.environ.get("BENCH_CLUSTER_DRILL", "12"))}
    haproxy_binary()
    version = subprocess.run([haproxy_binary(), "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    report = [f"# ci/bench --cluster, {datetime.datetime.now():%Y-%m-%d %H:%M}",
              f"\n{cores} cores; {version.strip()}; wrk {cfg['connections']} connections, {cfg['threads']} threads, "
              f"{cfg['duration']:.0f} s a run, on the same machine; each process `cliquet serve --workers 1 "
              f"--threads {cfg['app_threads']}`; HAProxy `leastconn`, health check `/__lbheartbeat__`. "
              "Ratios (xN) are to one process."]
    failures = []
    directory = tempfile.mkdtemp(prefix="cliquet-bench-cluster-")
    try:
        for name in names:
            failures += bench_backend(name, steps, cfg, directory, report)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if failures:
        report.append("\n## Failed\n")
        report += [f"- {failure}" for failure in failures]
    text = "\n".join(report) + "\n"
    print(text)
    out_dir = os.path.join(ROOT, ".cache", "bench")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"cluster-{datetime.datetime.now():%Y%m%d-%H%M%S}.md"), "w") as f:
        f.write(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
