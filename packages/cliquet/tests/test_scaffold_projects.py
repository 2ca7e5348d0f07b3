"""``cliquet init`` projects, for real: generated for several combinations of
backends and packages, installed from the monorepo's wheels in fresh virtual
environments, their own tests run against the real services, then served.

The wheels of every distribution are built once per test session (the
first xdist worker to get the lock builds them; the others reuse them). Each
combination is a test of its own, so xdist spreads them over the workers.

To keep this under a few minutes, the generated suites run with
``CLIQUET_TEST_RACE_ROUNDS=3`` (the suites' own knob; Cliquet's tests run the
races in full), and the Elasticsearch project without the 112 parametrized
query cases of the indexer suite (``test_clause*``, each indexing a data set
in fresh indexes: minutes on Elasticsearch), which cliquet-elasticsearch's
own ``tests/test_contract.py`` runs on the same indexer.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid

import pytest

from cliquet.testing.plugin import postgresql_schema, service_url
from cliquet.testing.servers import free_port

REPO = pathlib.Path(__file__).resolve().parents[3]
DISTRIBUTIONS = {
    "cliquet": REPO / "packages" / "cliquet",
    "cliquet-riak": REPO / "packages" / "cliquet-riak",
    "cliquet-indexing": REPO / "packages" / "cliquet-indexing",
    "cliquet-elasticsearch": REPO / "packages" / "cliquet-elasticsearch",
    "cliquet-oidc": REPO / "packages" / "cliquet-oidc",
    "cliquet-admin": REPO / "packages" / "cliquet-admin",
}
UV = shutil.which("uv") or str(pathlib.Path(sys.executable).parent / "uv")

#: name -> (cliquet init arguments, the services its tests and server need, pytest selection)
COMBINATIONS = {
    "memory": (["--storage", "memory", "--cache", "memory"], set(), []),
    "postgresql_indexing": (["--storage", "postgresql", "--cache", "postgresql", "--with", "indexing,oidc"],
                            {"postgresql", "indexing"}, []),
    "redis_riak": (["--storage", "redis", "--cache", "riak", "--with", "admin"], {"redis", "riak"}, []),
    "postgresql_elasticsearch": (["--storage", "postgresql", "--cache", "memory", "--with", "elasticsearch"],
                                 {"postgresql", "elasticsearch", "indexing"}, ["-k", "not test_clause"]),
}
SERVICE_VARIABLES = {"postgresql": "CLIQUET_TEST_POSTGRESQL_URL", "redis": "CLIQUET_TEST_REDIS_URL",
                     "elasticsearch": "CLIQUET_TEST_ELASTICSEARCH_URL"}


def run(cmd, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; fail the test with the end of its output if it fails."""
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}", pytrace=False)
    return result


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> dict[str, pathlib.Path]:
    """The wheel of every Python distribution of the monorepo, built once per
    session (``tmp_path_factory``'s base directory is shared by the xdist
    workers of one run; a file lock makes one of them build)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    out = root / "monorepo-wheels"
    out.mkdir(exist_ok=True)
    with open(root / "monorepo-wheels.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "done").exists():
            for project in DISTRIBUTIONS.values():
                run([UV, "build", "--wheel", "--quiet", "--out-dir", out, project])
            (out / "done").write_text("")
    found = {}
    for name in DISTRIBUTIONS:
        matches = sorted(out.glob(name.replace("-", "_") + "-*.whl"))
        assert matches, f"no wheel of {name} in {out}"
        found[name] = matches[-1]
    return found


def requirement_name(requirement: str) -> str:
    """The distribution name of a PEP 508 requirement string."""
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


def service_environ(needs: set[str], tag: str, stack: contextlib.ExitStack) -> dict[str, str]:
    """Settings (as environment variables) that point a served project at the
    test services, in a schema / key prefix / bucket / index prefix of its own."""
    environ = {}
    if "postgresql" in needs:
        url = stack.enter_context(postgresql_schema(service_url(SERVICE_VARIABLES["postgresql"]), f"{tag}srv"))
        environ.update(CLIQUET_STORAGE_URL=url, CLIQUET_PERMISSION_URL=url, CLIQUET_CACHE_URL=url,
                       CLIQUET_INDEXING_URL=url)
    if "redis" in needs:
        url = service_url(SERVICE_VARIABLES["redis"])
        environ.update(CLIQUET_STORAGE_URL=url, CLIQUET_STORAGE_PREFIX=f"{tag}s:", CLIQUET_PERMISSION_URL=url,
                       CLIQUET_PERMISSION_PREFIX=f"{tag}p:")
    if "riak" in needs:
        from cliquet_riak.testing import StandinProcess

        base = os.environ.get("CLIQUET_RIAK_URL", "").strip().rstrip("/")
        if not base:
            node = StandinProcess().start()
            stack.callback(node.kill)
            base = node.url
        environ.update(CLIQUET_CACHE_URL=f"{base}/types/default/buckets/{tag}cache", CLIQUET_CACHE_PREFIX=tag)
    if "elasticsearch" in needs:
        url = service_url(SERVICE_VARIABLES["elasticsearch"])
        environ.update(CLIQUET_INDEXING_URL=url, CLIQUET_INDEXING_PREFIX=f"{tag}ix_")
        stack.callback(remove_indexes, url, f"{tag}ix_")
    return environ


def remove_indexes(url: str, prefix: str) -> None:
    """Remove the Elasticsearch indexes whose names start with ``prefix``."""
    from elasticsearch import Elasticsearch

    client = Elasticsearch(url, request_timeout=60)
    try:
        names = sorted(client.indices.get(index=f"{prefix}*", allow_no_indices=True, ignore_unavailable=True,
                                          filter_path="*.settings.index.uuid"))
        if names:
            client.indices.delete(index=",".join(names))
    finally:
        client.close()


def clean_environ(**extra) -> dict[str, str]:
    """This process's environment without Cliquet settings (only the test
    services' URLs stay), plus ``extra``."""
    keep = ("CLIQUET_TEST_", "CLIQUET_RIAK_URL")
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("CLIQUET_") or k.startswith(keep)}
    for variable in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
                     "PYTEST_ADDOPTS", "COVERAGE_PROCESS_START"):
        environ.pop(variable, None)
    environ.update(extra, PYTHONDONTWRITEBYTECODE="1")
    return environ


def wait_until_served(url: str, process: subprocess.Popen, log: pathlib.Path, timeout: float = 60.0):
    """Wait for ``url`` to answer; fail with the server's log if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"cliquet serve exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout}s:\n{log.read_text()[-4000:]}")


def request(url, method="GET", body=None, user="alice"):
    """An HTTP request with Basic credentials; return (status, JSON body)."""
    import base64

    token = base64.b64encode(f"{user}:secret".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, method=method, data=data, headers={
        "Authorization": f"Basic {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.mark.services
@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_a_generated_project_installs_passes_its_tests_and_serves(combination, wheels, tmp_path):
    arguments, needs, selection = COMBINATIONS[combination]
    for service in sorted(needs & set(SERVICE_VARIABLES)):
        service_url(SERVICE_VARIABLES[service])  # skip (fail under CI=true) without it
    name = f"svc_{combination}"
    started = time.monotonic()
    phases = {}

    def phase(label):
        phases[label] = round(time.monotonic() - started - sum(phases.values()), 1)

    # 1. `cliquet init`, as a user runs it (no terminal: the flags decide).
    cliquet = pathlib.Path(sys.executable).parent / "cliquet"
    run([cliquet, "init", name, *arguments, "--directory", tmp_path], stdin=subprocess.DEVNULL)
    project = tmp_path / name
    phase("init")
    declared = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]

    # 2. A fresh virtual environment: the project and its test extra; the
    # Cliquet distributions it declares come from the monorepo's wheels.
    local = [wheels[requirement_name(r)] for r in declared if requirement_name(r) in wheels]
    assert len(local) == len(declared), declared  # every declared distribution is one of ours
    venv = tmp_path / "venv"
    run([UV, "venv", "--quiet", "--python", sys.executable, venv])
    python = venv / "bin" / "python"
    run([UV, "pip", "install", "--quiet", "--python", python, f"{project}[test]", *local], timeout=900)
    installed = run([python, "-c", "import importlib.metadata as m, json; print(json.dumps(sorted("
                     "d.metadata['Name'] for d in m.distributions() if d.metadata['Name'].startswith('cliquet'))))"],
                    cwd=tmp_path).stdout
    assert json.loads(installed) == sorted(requirement_name(r) for r in declared)
    phase("install")

    # 3. The project's own tests (contract suites + functional test), on the real services.
    result = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:randomly", "-x", *selection], cwd=project,
                            capture_output=True, text=True, timeout=900,
                            env=clean_environ(CI="true", CLIQUET_TEST_RACE_ROUNDS="3"))
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{summary}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    assert re.search(r"\d+ passed", summary) and "failed" not in summary, summary
    phase("tests")

    # 4. Served by `cliquet serve`: POST 201, GET 200.
    tag = f"t{uuid.uuid4().hex[:8]}_"
    with contextlib.ExitStack() as stack:
        environ = clean_environ(**service_environ(needs, tag, stack))
        port = free_port()
        log = tmp_path / "serve.log"
        output = stack.enter_context(open(log, "w"))
        server = subprocess.Popen([venv / "bin" / "cliquet", "serve", "--ini", project / f"{name}.ini",
                                   "--port", str(port), "--workers", "1", "--threads", "2"],
                                  cwd=project, env=environ, stdout=output, stderr=subprocess.STDOUT)

        def stop():
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

        stack.callback(stop)
        base = f"http://127.0.0.1:{port}/v1"
        wait_until_served(f"{base}/__lbheartbeat__", server, log)
        status, created = request(f"{base}/notes", "POST", {"data": {"title": "Served"}})
        assert status == 201, created
        status, listed = request(f"{base}/notes")
        assert status == 200 and listed["data"] == [created["data"]], listed
        status, health = request(f"{base}/__heartbeat__")
        assert status == 200 and all(health.values()), health
        if "indexing" in needs:
            status, found = request(f"{base}/search/notes?q=served")
            assert status == 200 and [n["id"] for n in found["data"]] == [created["data"]["id"]], found
    phase("serve")
    print(f"{combination}: {summary}; seconds per phase: {phases}")
