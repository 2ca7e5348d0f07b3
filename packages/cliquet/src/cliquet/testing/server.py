"""Serve an application for real in tests: ``cliquet serve`` (Granian) in a
child process on a free loopback port.

::

    from cliquet.testing.server import serve

    with serve("app.ini", {"CLIQUET_STORAGE_BACKEND": "cliquet.storage.postgresql",
                           "CLIQUET_STORAGE_URL": url}, migrate=True) as server:
        urllib.request.urlopen(server.url + "/v1/")
        server.kill()  # SIGKILL the master and its workers, as a crash would

The server runs in a process group of its own, so that stopping it (or
killing it) reaches Granian's workers too. Its output goes to a log file
whose tail is shown when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

__all__ = ["ServedApp", "backend_environ", "cliquet_command", "free_port", "serve"]

_KINDS = ("storage", "cache", "permission")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port nothing listens on at the moment on ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def cliquet_command() -> list[str]:
    """The ``cliquet`` command of this interpreter's environment: the script
    next to ``sys.executable``, or ``python -m cliquet.scripts.cliquet``."""
    script = os.path.join(os.path.dirname(sys.executable), "cliquet")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "cliquet.scripts.cliquet"]


class ServedApp:
    """A running ``cliquet serve``: its :attr:`url` (``http://127.0.0.1:PORT``,
    no trailing slash), its :attr:`process` and its :attr:`log` file path."""

    def __init__(self, process: subprocess.Popen, url: str, log: str):
        self.process = process
        self.url = url
        self.log = log

    @property
    def pid(self) -> int:
        """The process id of the Granian master (also its process group id)."""
        return self.process.pid

    def _signal_group(self, signum) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the master and its workers at once, as a crash would, and
        wait for the master to be gone."""
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group; SIGKILL what is left after ``timeout``."""
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Workers may outlive the master: whatever is left in the group goes.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the server wrote."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as stream:
                return "".join(stream.readlines()[-lines:])
        except OSError:
            return ""


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/__lbheartbeat__", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _environment(environ: dict | None) -> dict:
    env = dict(os.environ)
    env.update({key: str(value) for key, value in (environ or {}).items()})
    return env


def run_migrate(ini: str, environ: dict | None = None, timeout: float = 120.0) -> None:
    """Run ``cliquet migrate --ini INI`` with ``environ`` added to this
    process's environment; raise :class:`RuntimeError` with its output if it fails."""
    done = subprocess.run(cliquet_command() + ["migrate", "--ini", ini], env=_environment(environ),
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"cliquet migrate failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@contextlib.contextmanager
def backend_environ(backend: str, url: str, tag: str):
    """Yield the environment that serves an app on ``backend``
    (``postgresql`` or ``redis``) for its storage, cache and permissions, in
    a place of its own on the server at ``url``: the PostgreSQL schema
    ``tag`` (created, then dropped) or the Redis key prefix ``tag:`` (its keys
    deleted afterwards)."""
    env, prefix = {}, ""
    if backend == "postgresql":
        import urllib.parse

        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{tag}"')
        option = urllib.parse.quote(f"-csearch_path={tag}")
        server_url = f"{url}{'&' if '?' in url else '?'}options={option}"
    elif backend == "redis":
        server_url, prefix = url, f"{tag}:"
    else:
        raise ValueError(f"no served backend {backend!r} (postgresql or redis)")
    for kind in _KINDS:
        env[f"CLIQUET_{kind.upper()}_BACKEND"] = f"cliquet.{kind}.{backend}"
        env[f"CLIQUET_{kind.upper()}_URL"] = server_url
        if prefix:
            env[f"CLIQUET_{kind.upper()}_PREFIX"] = f"{prefix}{kind[0]}:"
    try:
        yield env
    finally:
        if backend == "postgresql":
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{tag}" CASCADE')
        else:
            from cliquet.storage.redis_client import close_client, delete_prefix, get_client

            client = get_client(url, pool_size=1)
            delete_prefix(client, prefix)
            close_client(client)


@contextlib.contextmanager
def serve(ini: str, environ: dict | None = None, *, workers: int = 2, threads: int = 2,
          port: int | None = None, migrate: bool = False, timeout: float = 60.0):
    """Start ``cliquet serve --ini INI`` and yield a :class:`ServedApp` once
    ``/__lbheartbeat__`` answers; stop it (SIGTERM, then SIGKILL) on exit.

    :param environ: variables added to this process's environment for the
        server (``CLIQUET_STORAGE_BACKEND``, ``CLIQUET_STORAGE_URL``, …).
    :param port: the port to listen on (default: a free one). Give the port
        of a killed server to start a new one in its place.
    :param migrate: run ``cliquet migrate`` with the same environment first.
    :param timeout: seconds to wait for the server to answer.
    :raises RuntimeError: the server exited or did not answer in time (the
        message has the end of its output).
    """
    if migrate:
        run_migrate(ini, environ)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    fd, log = tempfile.mkstemp(prefix="cliquet-serve-", suffix=".log")
    command = cliquet_command() + ["serve", "--ini", ini, "--host", "127.0.0.1", "--port", str(port),
                                   "--workers", str(workers), "--threads", str(threads)]
    with os.fdopen(fd, "wb") as output:
        process = subprocess.Popen(command, env=_environment(environ), stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    served = ServedApp(process, url, log)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(url):
            if process.poll() is not None:
                raise RuntimeError(f"cliquet serve exited with {process.returncode}:\n{served.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"cliquet serve did not answer within {timeout} s:\n{served.log_tail()}")
            time.sleep(0.1)
        yield served
    finally:
        served.stop()
        with contextlib.suppress(OSError):
            os.unlink(log)
