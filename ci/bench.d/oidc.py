"""A GET with a bearer token against the same GET with Basic, over HTTP.

    ./ci/bench --oidc                                  (starts the services, Keycloak among them)
    hatch run test:python ci/bench.d/oidc.py [--no-token-cache] [--check]

The example application (docs/example/myproject.ini, memory backends, one
Granian worker and one thread, RSGI: as ``ci/bench`` serves it) runs with
``cliquet_oidc`` added to its includes and one provider, ``keycloak``: the
Keycloak of ``ci/services`` when ``CLIQUET_TEST_KEYCLOAK_URL`` is set (alice's
access tokens from the password grant), else a small provider of this
script's own on loopback (``cliquet_oidc.testing.LocalProvider``). A second
server, the example application as shipped (no ``cliquet_oidc``), gives the
Basic reference without it.

Each server holds 1 000 articles per user; wrk (``bench.lua``, mode ``get``)
reads them at random, one record a request, in turns: Basic, bearer, Basic
without cliquet-oidc, ``BENCH_RUNS`` rounds of ``BENCH_DURATION`` seconds
(each bearer run with a token fresh from the provider). The report gives the
median ok-requests/s of each, p50/p99, and the time of a bearer GET over a
Basic GET on the same server (target: <= 1.10). ``--no-token-cache`` sets
``oidc_token_cache_size = 0``: the signature is checked at every request.
Exit status 1 when a check before measuring fails (or, with ``--check``,
when the ratio misses the target).

Knobs (as ``ci/bench``): BENCH_DURATION (5), BENCH_RUNS (3),
BENCH_CONNECTIONS (16), BENCH_THREADS (2), BENCH_RECORDS (1000). Needs wrk
(``ci/bench`` installs it) and the test environment (cliquet-oidc, Granian).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from servers import ROOT, basic, http, stop_group

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, ".cache", "bench")
TARGET = 1.10
PROVIDER = "keycloak"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ini_with_oidc(directory: str) -> str:
    """The example app's INI with ``cliquet_oidc`` added to its includes."""
    with open(os.path.join(ROOT, "docs", "example", "myproject.ini")) as f:
        ini = f.read()
    changed, count = re.subn(r"^(pyramid\.includes\s*=.*)$", r"\1 cliquet_oidc", ini, count=1, flags=re.M)
    if not count:
        raise RuntimeError("docs/example/myproject.ini has no pyramid.includes line")
    path = os.path.join(directory, "myproject-oidc.ini")
    with open(path, "w") as f:
        f.write(changed)
    return path


class Server:
    """The example app under Granian, as ``ci/bench`` starts it (RSGI,
    ``paste_app:rsgi_application``, one worker, one thread)."""

    def __init__(self, label: str, ini: str, env: dict):
        self.label = label
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(OUT, "logs", f"oidc-{label}.log")
        granian = os.path.join(os.path.dirname(sys.executable), "granian")
        self.cmd = [granian, "--interface", "rsgi", "--workers", "1", "--host", "127.0.0.1",
                    "--port", str(self.port), "--log-level", "warning", "--no-ws",
                    "--working-dir", HERE, "paste_app:rsgi_application"]
        self.env = dict(os.environ, **env, BENCH_INI=ini, BENCH_APP_THREADS="1", BENCH_APP_WORKERS="1",
                        BENCH_LOGGING="0")
        self.proc = None

    def start(self):
        """Start it in its own process group and wait until ``/v1/`` answers."""
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited ({self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if http(self.base_url, "GET", "/v1/", basic("probe"), timeout=5)[0] == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"{self.label} not ready after 90 s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by its processes (Granian's
        main process and its worker: its process group), from /proc."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                # after the command: state, ppid, pgrp, … utime (12th), stime (13th)
                if int(fields[2]) == self.proc.pid:
                    total += int(fields[11]) + int(fields[12])
        return total / tick

    def log_tail(self) -> str:
        """The last lines it printed."""
        with contextlib.suppress(OSError), open(self.log_path) as f:
            return "".join(f.readlines()[-30:])
        return ""

    def stop(self):
        """TERM its process group, KILL after 10 s."""
        stop_group(self.proc)


class Tokens:
    """Access tokens for alice: from Keycloak, or from a local provider."""

    def __init__(self):
        from cliquet_oidc.testing import LocalProvider

        keycloak = os.environ.get("CLIQUET_TEST_KEYCLOAK_URL")
        self.local = None
        if keycloak:
            self.issuer = keycloak.rstrip("/") + "/realms/cliquet"
            self.source = f"Keycloak ({self.issuer})"
        else:
            self.local = LocalProvider()
            self.issuer = self.local.issuer
            self.source = "a local provider (CLIQUET_TEST_KEYCLOAK_URL not set)"

    def fresh(self) -> str:
        """A new access token (Keycloak's live 5 minutes: one per wrk run)."""
        from cliquet_oidc.testing import claims_for, get_tokens

        if self.local is not None:
            return self.local.sign(claims_for(self.issuer, subject="alice", lifetime=600, groups=["editors"]))
        return get_tokens(self.issuer, "cliquet", "cliquet-test-secret", "alice", "alice-password")["access_token"]

    def close(self):
        """Stop the local provider, if any."""
        if self.local is not None:
            self.local.close()


def preload(base_url: str, auth: str, count: int) -> list[str]:
    """``count`` articles for the caller, through /batch; returns their ids."""
    ids = []
    for start in range(0, count, 25):
        requests = [{"method": "POST", "path": "/articles",
                     "body": {"data": {"title": f"article {i}", "url": f"http://example.com/{i}",
                                       "tags": ["bench"], "score": i, "published": i % 2 == 0}}}
                    for i in range(start, min(start + 25, count))]
        status, _, body = http(base_url, "POST", "/v1/batch", auth, {"requests": requests})
        if status != 200 or any(r["status"] != 201 for r in body["responses"]):
            raise RuntimeError(f"preload failed: {status} {json.dumps(body)[:300]}")
        ids += [r["body"]["data"]["id"] for r in body["responses"]]
    return ids


def run_wrk(cfg: dict, base_url: str, auth: str, ids_file: str) -> dict:
    """One wrk run of ``bench.lua`` in mode ``get``; its BENCHJSON figures."""
    env = dict(os.environ, BENCH_MODE="get", BENCH_AUTH=auth, BENCH_PATH="/v1/articles",
               BENCH_IDS_FILE=ids_file, BENCH_THREADS=str(cfg["threads"]))
    cmd = ["wrk", "-t", str(cfg["threads"]), "-c", str(cfg["connections"]), "-d", f"{cfg['duration']}s",
           "--timeout", "30s", "-s", os.path.join(HERE, "bench.lua"), base_url]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace",
                          timeout=cfg["duration"] + 120)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            result = json.loads(line[len("BENCHJSON "):])
            break
    else:
        raise RuntimeError(f"wrk gave no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    seconds = result["duration_us"] / 1e6
    result["ok_rate"] = result["ok"] / seconds
    result["p50_ms"] = result["p50_us"] / 1000
    result["p99_ms"] = result["p99_us"] / 1000
    return result


def check(condition: bool, message: str):
    """Fail the run with ``message`` unless ``condition``."""
    if not condition:
        raise RuntimeError(f"check failed: {message}")


def main(argv=None) -> int:
    """Start the servers, check them, measure, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-token-cache", action="store_true",
                        help="oidc_token_cache_size = 0: the signature is checked at every request")
    parser.add_argument("--check", action="store_true", help=f"exit 1 when bearer/Basic exceeds {TARGET}")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("oidc.py: wrk is needed (apt-get install wrk; ./ci/bench --oidc installs it)", file=sys.stderr)
        return 1
    cfg = {
        "duration": int(os.environ.get("BENCH_DURATION", "5")),
        "runs": int(os.environ.get("BENCH_RUNS", "3")),
        "connections": int(os.environ.get("BENCH_CONNECTIONS", "16")),
        "threads": int(os.environ.get("BENCH_THREADS", "2")),
        "records": int(os.environ.get("BENCH_RECORDS", "1000")),
    }
    tokens = Tokens()
    servers = []
    tmp = tempfile.mkdtemp(prefix="cliquet-bench-oidc-")
    try:
        oidc_env = {
            "CLIQUET_OIDC_PROVIDERS": PROVIDER,
            f"CLIQUET_OIDC_{PROVIDER.upper()}_ISSUER": tokens.issuer,
            f"CLIQUET_OIDC_{PROVIDER.upper()}_AUDIENCE": "cliquet",
            f"CLIQUET_OIDC_{PROVIDER.upper()}_PRINCIPALS_CLAIMS": "groups",
        }
        if args.no_token_cache:
            oidc_env["CLIQUET_OIDC_TOKEN_CACHE_SIZE"] = "0"
        with_oidc = Server("with-oidc", ini_with_oidc(tmp), oidc_env)
        shipped = Server("shipped", os.path.join(ROOT, "docs", "example", "myproject.ini"), {})
        servers = [with_oidc, shipped]
        for server in servers:
            print(f"starting {server.label} on {server.base_url}", file=sys.stderr)
            server.start()

        basic_auth = basic("bench-oidc-basic")
        token = tokens.fresh()
        status, _, hello = http(with_oidc.base_url, "GET", "/v1/", f"Bearer {token}")
        check(status == 200 and hello.get("user", {}).get("id", "").startswith(f"oidc-{PROVIDER}:"),
              f"the bearer token names an oidc-{PROVIDER}: user ({status} {hello.get('user')})")
        user_id = hello["user"]["id"]
        print(f"preloading {cfg['records']} articles per user", file=sys.stderr)
        runs = {}  # label -> (server, auth or None for a fresh token, ids file)
        for label, server, auth in (("Basic", with_oidc, basic_auth), ("bearer", with_oidc, None),
                                    ("Basic, no cliquet-oidc", shipped, basic_auth)):
            ids = preload(server.base_url, auth or f"Bearer {token}", cfg["records"])
            status, _, body = http(server.base_url, "GET", f"/v1/articles/{ids[0]}", auth or f"Bearer {token}")
            check(status == 200, f"{label}: GET of its own article ({status})")
            if auth is None:
                check(body["permissions"]["write"] == [user_id], f"alice's article is hers ({body['permissions']})")
                other = http(server.base_url, "GET", f"/v1/articles/{ids[0]}", basic_auth)[0]
                check(other in (403, 404), f"alice's article is not the Basic user's ({other})")
            ids_file = os.path.join(tmp, f"ids-{len(runs)}.txt")
            with open(ids_file, "w") as f:
                f.write("\n".join(ids) + "\n")
            runs[label] = (server, auth, ids_file)

        results = {label: [] for label in runs}
        for round_ in range(cfg["runs"]):
            for label, (server, auth, ids_file) in runs.items():
                header = auth or f"Bearer {tokens.fresh()}"
                if auth is None:  # the new token checked once, outside the measure
                    check(http(server.base_url, "GET", "/v1/", header)[2].get("user", {}).get("id") == user_id,
                          "a fresh token names the same user")
                cpu = server.cpu_seconds()
                res = run_wrk(cfg, server.base_url, header, ids_file)
                # the server's CPU time per answered request: what a request
                # costs, much less sensitive than req/s to a busy machine
                res["cpu_us"] = (server.cpu_seconds() - cpu) / max(res["ok"] + res["bad"], 1) * 1e6
                check(res["bad"] == 0 and res["errors"]["timeout"] == 0 and res["errors"]["connect"] == 0,
                      f"{label}: every answer ok ({res['statuses']}, errors {res['errors']})")
                results[label].append(res)
                print(f"round {round_ + 1}/{cfg['runs']} {label:<24} {res['ok_rate']:8.0f} req/s  "
                      f"p50 {res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms  "
                      f"server CPU {res['cpu_us']:.0f} us/request", file=sys.stderr)

        rate = {label: statistics.median(r["ok_rate"] for r in rs) for label, rs in results.items()}
        cpu = {label: statistics.median(r["cpu_us"] for r in rs) for label, rs in results.items()}
        # Rounds run the three back to back: each round's own ratio, then the median.
        paired = [b["ok_rate"] / t["ok_rate"] for b, t in zip(results["Basic"], results["bearer"])]
        paired_cpu = [t["cpu_us"] / b["cpu_us"] for b, t in zip(results["Basic"], results["bearer"])]
        ratio = statistics.median(paired)
        ratio_cpu = statistics.median(paired_cpu)
        shipped_ratio = statistics.median(
            s["ok_rate"] / b["ok_rate"] for s, b in zip(results["Basic, no cliquet-oidc"], results["Basic"]))
        shipped_cpu = statistics.median(
            b["cpu_us"] / s["cpu_us"] for s, b in zip(results["Basic, no cliquet-oidc"], results["Basic"]))
        load = os.getloadavg()[0]
        lines = [
            "# A GET with a bearer token vs Basic (ci/bench.d/oidc.py)",
            "",
            f"{datetime.datetime.now().isoformat(timespec='seconds')}, tokens from {tokens.source}, "
            f"{'signature checked at every request' if args.no_token_cache else 'checked tokens remembered'}; "
            f"the example app on the memory backends under Granian (RSGI, 1 worker x 1 thread); wrk "
            f"{cfg['threads']} threads x {cfg['connections']} connections, {cfg['runs']} runs of "
            f"{cfg['duration']} s each, GET /v1/articles/<id> of {cfg['records']} records a user.",
            "",
            f"Load average at the end: {load:.1f}.",
            "",
            "| server, credentials | ok req/s (median) | p50 ms | p99 ms | server CPU us/req | runs (req/s) |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for label, rs in results.items():
            lines.append(f"| {label} | {rate[label]:.0f} | {statistics.median(r['p50_ms'] for r in rs):.2f} | "
                         f"{statistics.median(r['p99_ms'] for r in rs):.2f} | {cpu[label]:.0f} | "
                         f"{', '.join('%.0f' % r['ok_rate'] for r in rs)} |")
        verdict = "within" if ratio <= TARGET else "OVER"
        verdict_cpu = "within" if ratio_cpu <= TARGET else "OVER"
        lines += [
            "",
            f"A bearer GET / a Basic GET on the same server (median of the rounds' own ratios): "
            f"**{ratio:.3f}** in time per request (req/s; {verdict} the target of {TARGET:.2f}), "
            f"**{ratio_cpu:.3f}** in server CPU per request ({verdict_cpu}).",
            f"Basic with cliquet-oidc included / Basic on the app as shipped: {shipped_ratio:.3f} in time, "
            f"{shipped_cpu:.3f} in server CPU per request.",
        ]
        report = "\n".join(lines) + "\n"
        print(report)
        os.makedirs(OUT, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        with open(os.path.join(OUT, f"oidc-{stamp}.md"), "w") as f:
            f.write(report)
        return 1 if args.check and min(ratio, ratio_cpu) > TARGET else 0
    except RuntimeError as exc:
        print(f"oidc.py: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.stop()
        tokens.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
