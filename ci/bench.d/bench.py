"""Driver of ``ci/bench``: start the servers, preload, run wrk, report.

Run through ``ci/bench`` (which installs wrk, Kinto and the example app and
sets ``BENCH_CLIQUET_BIN`` / ``BENCH_KINTO_BIN``). Environment knobs:

``BENCH_CONFIG``        server groups from ``servers.CONFIGS`` (default ``memory``;
                        ``production`` = postgresql,redis, ``all`` = the three)
``BENCH_DURATION``      seconds per wrk run (default 5)
``BENCH_RUNS``          runs per scenario, the median is reported (default 3)
``BENCH_QUICK=1``       1 run of 2 s: a smoke test of the script itself
``BENCH_CONNECTIONS``   wrk connections (default 16)
``BENCH_THREADS``       wrk threads (default 2)
``BENCH_SIZES``         collection sizes, e.g. ``1000,10000,100000``
``BENCH_SCENARIOS``     scenarios at the first size (default all)
``BENCH_SCALE_SCENARIOS`` scenarios at the next sizes (default ``get,list,since,search``)
``BENCH_PROFILE_SCENARIOS`` scenarios profiled by ``--profile`` (``get,batch``)
``BENCH_SOAK_DURATION`` seconds of ``--soak`` per server (default 60, quick 10)
``BENCH_HTTP_PRELOAD_MAX`` largest size preloaded through HTTP (default 10000): a
                        server without the SQL preload of ``bulk.py`` (memory, Redis;
                        PostgreSQL ones have it) is skipped at larger sizes, with a message
"""

import argparse
import contextlib
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import backends
import bulk
import profiling
import report
import servers
import soak
from scenarios import (
    SCENARIOS, CheckFailed, check, count_records, preload, query_for, search_file,
    since_marker,
)
from servers import ALIASES, CONFIGS, HERE, ROOT, http, stop_group

OUT = os.path.join(ROOT, ".cache", "bench")
#: Records preloaded through HTTP before the SQL preload takes over (bulk.py).
BULK_FROM = 1000


class Skipped(Exception):
    """A server is not measured at a size (no fast enough way to preload it)."""


def _env_list(name, default):
    return [x.strip() for x in os.environ.get(name, default).split(",") if x.strip()]


def settings():
    """The run's parameters, from the environment."""
    quick = os.environ.get("BENCH_QUICK") == "1"
    return {
        "configs": [g for name in _env_list("BENCH_CONFIG", "memory")
                    for g in ALIASES.get(name, [name])],
        "duration": int(os.environ.get("BENCH_DURATION", "2" if quick else "5")),
        "runs": int(os.environ.get("BENCH_RUNS", "1" if quick else "3")),
        "connections": int(os.environ.get("BENCH_CONNECTIONS", "16")),
        "threads": int(os.environ.get("BENCH_THREADS", "2")),
        "sizes": [int(x) for x in _env_list("BENCH_SIZES", "1000,10000")],
        "scenarios": _env_list("BENCH_SCENARIOS", ",".join(SCENARIOS)),
        "scale_scenarios": _env_list("BENCH_SCALE_SCENARIOS", "get,list,since,search"),
        "profile_scenarios": _env_list("BENCH_PROFILE_SCENARIOS", "get,batch"),
        "soak_duration": int(os.environ.get("BENCH_SOAK_DURATION", "10" if quick else "60")),
        "quick": quick,
    }


def free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    """A server started under Granian, and what the bench knows about it."""

    def __init__(self, server, env):
        self.server = server
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(OUT, "logs", server.label.replace(" ", "-") + ".log")
        binary = os.path.join(os.environ[server.app.bin_env], "granian")
        if server.app.name in ("cliquet", "floor"):
            # as `cliquet serve` runs it: RSGI, bodies read before a thread is taken
            interface = ["--interface", "rsgi", "--workers", str(server.workers)]
            entry = "paste_app:rsgi_application"
        else:
            interface = ["--interface", "wsgi", "--workers", str(server.workers),
                         "--blocking-threads", str(server.threads)]
            entry = "paste_app:application"
        self.cmd = [
            binary, *interface,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "warning", "--no-ws",
            "--working-dir", HERE, entry,
        ]
        self.env = dict(env, BENCH_INI=server.ini_path, BENCH_APP_THREADS=str(server.threads),
                        BENCH_APP_WORKERS=str(server.workers),
                        BENCH_LOGGING="1" if server.logging else "0")
        self.proc = None
        self.read = None        # Target of the preloaded collection
        self.ids = []
        self.marker = None
        self.ids_file = None

    def start(self):
        """Start Granian in its own process group."""
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout=90):
        """Poll ``/v1/`` until it answers 200; fail with the log's tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.server.label} exited ({self.proc.returncode})\n"
                                   + self.log_tail())
            try:
                status, _, _ = http(self.base_url, "GET", "/v1/", "Basic eDp5", timeout=5)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.server.label} not ready after {timeout}s\n" + self.log_tail())

    def log_tail(self, lines=30):
        """The last lines the server printed."""
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def target(self, name):
        """A (new) collection on this server."""
        return self.server.app.target(self.base_url, name)

    def stop(self):
        """Stop the whole process group: TERM, then KILL after 10 s."""
        if self.ids_file:
            with contextlib.suppress(OSError):
                os.unlink(self.ids_file)
        stop_group(self.proc)


def run_wrk(cfg, running, scenario, target, duration, ids_file):
    """One wrk run; return the parsed ``BENCHJSON`` line of ``bench.lua``."""
    env = dict(
        os.environ,
        BENCH_MODE=scenario.mode,
        BENCH_AUTH=target.auth,
        BENCH_PATH=target.search_path if scenario.key == "search" else target.path,
        BENCH_SEARCH_FILE=search_file(),
        BENCH_BATCH_PATH=target.batch_path,
        BENCH_QUERY=query_for(scenario, running.marker),
        BENCH_IDS_FILE=ids_file,
        BENCH_THREADS=str(cfg["threads"]),
    )
    cmd = [
        "wrk", "-t", str(cfg["threads"]), "-c", str(cfg["connections"]),
        "-d", f"{duration}s", "--timeout", "30s",
        "-s", os.path.join(HERE, "bench.lua"), running.base_url,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace",
                          timeout=duration + 120)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            result = json.loads(line[len("BENCHJSON "):])
            break
    else:
        raise RuntimeError(f"wrk gave no result (exit {proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    seconds = result["duration_us"] / 1e6
    ok = result["ok"] - (result["gets"] if scenario.key == "patch" else 0)
    answered = result["ok"] + result["bad"]
    result.update(
        ok_rate=ok / seconds,
        records_rate=result["records"] / seconds,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        non_ok=(result["bad"] + result["errors"]["timeout"]) / max(answered, 1),
    )
    return result


def prepare_stage(running, size, shared=None, keys=()):
    """Grow the read collection to ``size`` records; write the ids file.

    ``shared``: the running server whose records this one reads (the floor):
    nothing is preloaded, its ids are used. ``keys``: the stage's scenarios
    (an embedded index filled after a bulk load only when ``search`` runs).
    """
    if running.read is None:
        running.read = running.target("read")
    if shared is not None:
        running.ids = shared.ids
    have = len(running.ids)
    if shared is None and size > have:
        started = time.monotonic()
        if not running.server.bulk and size > int(os.environ.get("BENCH_HTTP_PRELOAD_MAX", "10000")):
            raise Skipped(f"{running.server.label}: {size} records take too long to preload "
                          f"through HTTP (BENCH_HTTP_PRELOAD_MAX)")
        through_http = min(size, BULK_FROM) if running.server.bulk else size
        if through_http > have:
            running.ids += preload(running.base_url, running.read, have, through_http,
                                   running.server.app.preload_parallel)
        if size > len(running.ids):
            running.ids += bulk_extend(running, len(running.ids), size, "search" in keys)
        total = count_records(running.base_url, running.read)
        if total != size:
            raise CheckFailed(f"{running.server.label}: {total} records in the collection "
                              f"after preloading {size}")
        backends.analyze(running.server.label)
        print(f"  {running.server.label}: {size - have} records preloaded in "
              f"{time.monotonic() - started:.1f}s", file=sys.stderr)
    if shared is None:
        running.marker = since_marker(running.base_url, running.read)
    if running.ids_file is None:
        fd, running.ids_file = tempfile.mkstemp(prefix="bench-ids-", dir=OUT)
        os.close(fd)
    with open(running.ids_file, "w") as f:
        f.write("\n".join(running.ids[:size]) + "\n")


def measure(cfg, servers, size, keys, results, failures, profile, stamp):
    """Check, then run each scenario ``runs`` times on each server in turn."""
    for key in keys:
        scenario = SCENARIOS[key]
        alive = []
        for running in servers:
            if running.server.scenarios and key not in running.server.scenarios:
                continue
            if key == "search" and not running.server.search:
                continue
            try:
                try:
                    check(scenario, running.base_url, running.read, running.ids, running.marker)
                except CheckFailed as exc:
                    # Kinto answers a create that lands on a taken timestamp
                    # 409 "please retry" (its measured runs count those): its
                    # check retries once, as its clients would.
                    if not (running.server.is_reference and exc.status == 409):
                        raise
                    time.sleep(0.1)
                    check(scenario, running.base_url, running.read, running.ids, running.marker)
                alive.append(running)
            except (CheckFailed, OSError) as exc:
                msg = f"{running.server.label}, {scenario.title} at {size}: {exc}"
                print(f"ERROR: check failed, not measured: {msg}", file=sys.stderr)
                failures.append(msg)
        for run in range(cfg["runs"]):
            for running in list(alive):
                try:
                    target = running.read
                    if scenario.writes:
                        before = count_records(running.base_url, target)
                    res = run_wrk(cfg, running, scenario, target, cfg["duration"],
                                  running.ids_file)
                    if scenario.writes:
                        # Every create answered 2xx must be there afterwards
                        # (requests still in flight when wrk stopped may add more).
                        added = count_records(running.base_url, target) - before
                        res["lost"] = max(0, res["records"] - added)
                except (CheckFailed, OSError, RuntimeError, subprocess.SubprocessError) as exc:
                    msg = f"{running.server.label}, {scenario.title} at {size}: {exc}"
                    print(f"ERROR: {msg}", file=sys.stderr)
                    failures.append(msg)
                    alive.remove(running)
                    continue
                results.setdefault((running.server.label, key, size), []).append(res)
                print(f"  {size:>6} {scenario.title:<26} {running.server.label:<20} "
                      f"run {run + 1}: {res['ok_rate']:9.1f} ok/s  p50 {res['p50_ms']:7.2f} ms"
                      f"  p99 {res['p99_ms']:8.2f} ms  non-ok {res['non_ok']:.1%}"
                      f"  {res['statuses']}"
                      + (f"  ({res['gets']} GETs for ETags)" if res["gets"] else "")
                      + (f"  LOST {res['lost']} acknowledged creates" if res.get("lost") else ""),
                      file=sys.stderr)
                if res["first_error"]:
                    print(f"    first error answer: {res['first_error'][:200]}", file=sys.stderr)
        if profile is not None and key in cfg["profile_scenarios"]:
            for running in alive:
                if running.server.profile:
                    out = os.path.join(
                        OUT, f"profile-{running.server.label.replace(' ', '-')}-{key}-{size}-{stamp}.txt")
                    profiling.record(
                        running, out, cfg["duration"],
                        lambda r=running: run_wrk(cfg, r, scenario, r.read,
                                                  cfg["duration"] + 1, r.ids_file))
                    profile.append((running.server.label, scenario.title, size, out))


def start_servers(name, failures):
    """Start the servers of group ``name`` on fresh backends; return the ready ones."""
    servers = []
    try:
        for server in CONFIGS[name]:
            try:
                env = backends.environment(server)
            except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                print(f"ERROR: {server.label}: {exc}", file=sys.stderr)
                failures.append(f"{server.label} not started: {exc}")
                continue
            if env is None:
                continue
            running = Running(server, env)
            servers.append(running)
            running.start()
        for running in list(servers):
            try:
                running.wait_ready()
            except RuntimeError as exc:
                print(f"ERROR: {exc}", file=sys.stderr)
                failures.append(f"{running.server.label} did not start: see "
                                f"{os.path.relpath(running.log_path, ROOT)}")
                running.stop()
                servers.remove(running)
                continue
            print(f"{running.server.label} ready on {running.base_url} "
                  f"({running.server.workers} worker(s) x {running.server.threads} thread(s))",
                  file=sys.stderr)
    except BaseException:
        for running in servers:
            running.stop()
        raise
    return servers


def bulk_extend(running, start, stop, search):
    """Preload records ``start``..``stop``-1 without HTTP (``bulk.py``);
    return their ids. ``search``: the stage searches, so an index that the
    bulk load does not write (the embedded one) is filled by a reindex."""
    server = running.server
    if server.app is servers.KINTO:
        return bulk.extend_kinto(backends.DATABASES[server.label], start, stop)
    if "redis" in server.needs:
        ids = bulk.extend_backends(running.env, running.ids[0], start, stop)
        in_sql = False
    else:
        in_sql = server.search and server.indexer == servers.POSTGRESQL_INDEXER
        ids = bulk.extend(backends.DATABASES[server.label], start, stop, index=in_sql)
    if server.search and not in_sql and search:
        bulk.reindex(server, running.env)
    return ids


def run_group(name, cfg, args, stamp, results, failures, profiles):
    """Measure every size of one group, each on freshly started servers.

    A stage starts the servers on empty backends (a new PostgreSQL database,
    a flushed Redis db, a new process for memory), preloads exactly ``size``
    records in one collection and runs its scenarios in order: the reads and
    PATCH first, then create and batch, which write into the same collection.
    So "at N records" means the same for both apps, whatever their speed.
    """
    for i, size in enumerate(cfg["sizes"]):
        keys = cfg["scenarios"] if i == 0 else cfg["scale_scenarios"]
        if not keys:
            continue
        print(f"--- {name}, {size} records", file=sys.stderr)
        servers = start_servers(name, failures)
        try:
            by_label = {r.server.label: r for r in servers}
            for running in list(servers):
                try:
                    shared = running.server.shares
                    if shared and shared not in by_label:
                        raise RuntimeError(f"{shared} is not running")
                    prepare_stage(running, size, by_label.get(shared), keys)
                except Skipped as exc:
                    print(f"SKIPPED {exc}", file=sys.stderr)
                    running.stop()
                    servers.remove(running)
                except (CheckFailed, OSError, RuntimeError, subprocess.CalledProcessError) as exc:
                    msg = f"{running.server.label}: preloading {size} records failed: {exc}"
                    print(f"ERROR: {msg}", file=sys.stderr)
                    failures.append(msg)
                    running.stop()
                    servers.remove(running)
            measure(cfg, servers, size, keys, results, failures,
                    profiles if args.profile else None, stamp)
        finally:
            for running in servers:
                running.stop()


def soak_group(name, cfg, failures, soaks):
    """``--soak``: each server of the group in turn, on fresh backends."""
    servers = start_servers(name, failures)
    try:
        for running in servers:
            print(f"  soaking {running.server.label} for {cfg['soak_duration']}s",
                  file=sys.stderr)
            try:
                figures = soak.run(cfg, running, OUT)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                failures.append(f"{running.server.label}, soak: {exc}")
                continue
            soaks.append((running.server.label, figures))
            print(f"    {figures}", file=sys.stderr)
            if soak.problems(figures) and not running.server.is_reference:
                failures.append(f"{running.server.label}: soak failed")
    finally:
        for running in servers:
            running.stop()


def _terminated(signum, frame):
    raise KeyboardInterrupt


def main():
    """Entry point; the exit status is 1 if a check or a server failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true",
                        help="py-spy our server during the get and list scenarios")
    parser.add_argument("--soak", action="store_true",
                        help="instead of the benchmark: concurrent creates, PATCHes and "
                             "batches, then check that no acknowledged write was lost")
    args = parser.parse_args()
    cfg = settings()
    for name in cfg["configs"]:
        if name not in CONFIGS:
            sys.exit(f"unknown BENCH_CONFIG {name!r}: choose among {', '.join(CONFIGS)}")
    os.makedirs(OUT, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H%M%SZ")
    results, failures, profiles, soaks = {}, [], [], []
    # Ctrl-C and TERM unwind through the finally blocks that stop the servers
    # (SIGINT explicitly: a background job may have inherited it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminated)
    load_before = os.getloadavg()
    try:
        for name in cfg["configs"]:
            if args.soak:
                soak_group(name, cfg, failures, soaks)
            else:
                run_group(name, cfg, args, stamp, results, failures, profiles)
    except KeyboardInterrupt:
        print("ci/bench interrupted: servers stopped; partial report", file=sys.stderr)
        failures.append("interrupted: partial report")
    except (RuntimeError, CheckFailed, subprocess.CalledProcessError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        failures.append(str(exc))
    text = report.render(cfg, now, load_before, results, failures, profiles, soaks)
    print(text)
    path = os.path.join(OUT, f"{'soak' if args.soak else 'results'}-{stamp}.md")
    with open(path, "w") as f:
        f.write(text)
    print(f"saved to {os.path.relpath(path, ROOT)}", file=sys.stderr)
    if failures and failures[-1].startswith("interrupted"):
        return 130
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
