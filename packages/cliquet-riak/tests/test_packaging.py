"""Packaging: the published wheels work on their own.

Builds the wheels of ``cliquet``, ``cliquet-riak`` and the example service
(``docs/example``), installs them in a fresh virtual environment (their
dependencies come from the package index), then serves the example with
``cliquet.cache_backend = cliquet_riak.cache`` against a Riak stand-in and
checks that ``/v1/__heartbeat__`` reports the cache healthy.

It takes from a few seconds (warm ``uv`` cache) to a minute or two; it runs
as one xdist group so that it never competes with itself.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from cliquet_riak.testing import StandinProcess, free_port

pytestmark = pytest.mark.xdist_group("riak-packaging")

PACKAGE = pathlib.Path(__file__).resolve().parents[1]
REPO = PACKAGE.parents[1]
CORE = REPO / "packages" / "cliquet"
EXAMPLE = REPO / "docs" / "example"
INDEXING = REPO / "packages" / "cliquet-indexing"  # the example app includes it
ADMIN = REPO / "packages" / "cliquet-admin"  # and the web console


def run(cmd, timeout=600, **kwargs):
    """Run a command; fail the test with its output if it fails."""
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


class Installer:
    """Build wheels and make a virtual environment with ``uv`` (fast), or
    with ``python -m build`` and ``venv`` + ``pip`` when ``uv`` is missing."""

    def __init__(self):
        self.uv = shutil.which("uv")

    def wheel(self, project: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
        if self.uv:
            run([self.uv, "build", "--wheel", "--out-dir", out, project])
        else:
            run([sys.executable, "-m", "build", "--wheel", "--outdir", out, project])
        name = project.name if project.name != "example" else "myproject"
        wheels = sorted(out.glob(name.replace("-", "_") + "-*.whl"))
        assert wheels, f"no wheel for {project} in {out}"
        return wheels[-1]

    def venv(self, path: pathlib.Path, requirements: list[str]) -> pathlib.Path:
        python = path / "bin" / "python"
        if self.uv:
            run([self.uv, "venv", "--python", sys.executable, path])
            run([self.uv, "pip", "install", "--python", python, *requirements])
        else:
            run([sys.executable, "-m", "venv", path])
            run([python, "-m", "pip", "install", "--quiet", *requirements])
        return python


def wait_for(url, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = pathlib.Path(process.args[0]).parents[2] / "service.log"
            pytest.fail(f"the service exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout}s")


def test_wheels_in_a_fresh_venv_serve_the_example_with_a_riak_cache(tmp_path):
    installer = Installer()
    wheels = tmp_path / "wheels"
    core = installer.wheel(CORE, wheels)
    riak = installer.wheel(PACKAGE, wheels)
    indexing = installer.wheel(INDEXING, wheels)
    admin = installer.wheel(ADMIN, wheels)
    example = installer.wheel(EXAMPLE, wheels)
    python = installer.venv(tmp_path / "venv", [f"cliquet[serve] @ {core.as_uri()}", str(riak), str(indexing),
                                                 str(admin),
                                                 str(example)])

    # The packages come from the venv, not from this checkout.
    where = run([python, "-c", "import cliquet, cliquet_riak, myproject; "
                 "print(cliquet.__file__); print(cliquet_riak.__file__); print(cliquet_riak.__version__)"],
                cwd=tmp_path).stdout.split()
    assert all(str(tmp_path / "venv") in path for path in where[:2]), where

    node = StandinProcess().start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLIQUET_", "MYPROJECT_"))}
    env.update(CLIQUET_CACHE_BACKEND="cliquet_riak.cache",
               CLIQUET_CACHE_URL=f"riak://127.0.0.1:{node.port}/default/packaging",
               CLIQUET_CACHE_PREFIX="example:", PYTHONDONTWRITEBYTECODE="1")
    ini = EXAMPLE / "myproject.ini"
    bindir = python.parent
    try:
        run([bindir / "cliquet", "migrate", "--ini", ini], cwd=tmp_path, env=env, timeout=120)
        log = open(tmp_path / "service.log", "w")  # noqa: SIM115 - closed below
        service = subprocess.Popen(
            [bindir / "cliquet", "serve", "--ini", ini, "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--threads", "2"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            status, health = wait_for(f"http://127.0.0.1:{port}/v1/__heartbeat__", service)
            assert status == 200, health
            assert health["cache"] is True
            # The cache really is Riak: stop the node and the heartbeat says so.
            node.kill()
            status, health = wait_for(f"http://127.0.0.1:{port}/v1/__heartbeat__", service)
            assert status == 503 and health["cache"] is False, health
        finally:
            service.terminate()
            try:
                service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()
            log.close()
    finally:
        node.kill()
