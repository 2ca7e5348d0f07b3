"""Test helpers: a throw-away Elasticsearch node of a test's own.

Fault tests stop and restart Elasticsearch; they must never do that to the
node other tests share. :class:`ElasticsearchNode` starts another node from
the same installation as a running one (found through that node's
``path.home``), on ports of its own, with its own data directory::

    node = ElasticsearchNode.beside("http://127.0.0.1:9200")
    node.start()           # about a minute on a small machine
    ...                    # node.url
    node.stop()            # then node.start() again: the data is kept
    node.destroy()

It needs what ``ci/services`` needs: a JDK >= 21 (under ``/usr/lib/jvm`` or
``/opt``, or ``CLIQUET_ES_JAVA_HOME``) and, as root, the ``elasticsearch``
system user (Elasticsearch refuses to run as root).
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import orjson

__all__ = ["ElasticsearchNode", "SwitchableProxy", "find_java_home", "free_port"]


def find_java_home() -> str | None:
    """Return the newest JDK >= 21 found (``CLIQUET_ES_JAVA_HOME`` first)."""
    if os.environ.get("CLIQUET_ES_JAVA_HOME"):
        return os.environ["CLIQUET_ES_JAVA_HOME"]
    best, best_major = None, 0
    for base in ("/usr/lib/jvm", "/opt"):
        for path in sorted(pathlib.Path(base).glob("*")) if os.path.isdir(base) else []:
            release = path / "release"
            if not (path / "bin" / "java").exists() or not release.exists():
                continue
            match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(errors="replace"), re.M)
            if match and int(match.group(1)) >= 21 and int(match.group(1)) > best_major:
                best, best_major = str(path), int(match.group(1))
    return best


def free_port() -> int:
    """Return a TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return orjson.loads(response.read())


class ElasticsearchNode:
    """A single Elasticsearch node on loopback, started and stopped by the test.

    :param home: the Elasticsearch installation (``path.home``).
    :param java_home: a JDK >= 21.
    """

    def __init__(self, home: str, java_home: str | None = None):
        self.home = home
        self.java_home = java_home or find_java_home()
        self.port = free_port()
        self.transport_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.directory = tempfile.mkdtemp(prefix=f"cliquet-es-node-{self.port}-")
        self.process: subprocess.Popen | None = None
        self._configure()

    @classmethod
    def beside(cls, url: str) -> "ElasticsearchNode":
        """A new node from the installation of the node at ``url``."""
        nodes = _get(f"{url}/_nodes/_local/settings")["nodes"]
        home = next(iter(nodes.values()))["settings"]["path"]["home"]
        return cls(home)

    def _configure(self):
        config = os.path.join(self.directory, "config")
        shutil.copytree(os.path.join(self.home, "config"), config)
        for sub in ("data", "logs"):
            os.makedirs(os.path.join(self.directory, sub))
        with open(os.path.join(config, "elasticsearch.yml"), "w") as f:
            f.write(f"cluster.name: cliquet-fault-{self.port}\n"
                    f"node.name: cliquet-fault-{self.port}\n"
                    "network.host: 127.0.0.1\n"
                    f"http.port: {self.port}\n"
                    f"transport.port: {self.transport_port}\n"
                    "discovery.type: single-node\n"
                    "xpack.security.enabled: false\n"
                    "cluster.routing.allocation.disk.threshold_enabled: false\n"
                    f"path.data: {self.directory}/data\n"
                    f"path.logs: {self.directory}/logs\n")
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", "elasticsearch:", self.directory], check=True)
            os.chmod(self.directory, 0o755)

    def _command(self) -> list[str]:
        command = [os.path.join(self.home, "bin", "elasticsearch")]
        if os.getuid() == 0:
            command = ["runuser", "-u", "elasticsearch", "--"] + command
        return command

    def start(self, timeout: float = 240.0) -> None:
        """Start the node and wait until it answers with a green or yellow cluster."""
        if self.java_home is None:
            raise RuntimeError("no JDK >= 21 found (set CLIQUET_ES_JAVA_HOME)")
        env = dict(os.environ, ES_JAVA_HOME=self.java_home, ES_PATH_CONF=os.path.join(self.directory, "config"),
                   ES_JAVA_OPTS="-Xms256m -Xmx256m")
        log = open(os.path.join(self.directory, "logs", "stdout.log"), "ab")
        self.process = subprocess.Popen(self._command(), cwd=self.directory, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Elasticsearch exited ({self.process.returncode}); see {self.directory}/logs")
            try:
                health = _get(f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=1s")
                if health.get("status") in ("green", "yellow"):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Elasticsearch did not start within {timeout}s; see {self.directory}/logs")

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the node (SIGTERM to its process group, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        except ProcessLookupError:
            pass

    def destroy(self) -> None:
        """Stop the node and remove its directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class SwitchableProxy:
    """A TCP proxy on loopback in front of a server, which a test switches
    between forwarding, refusing and black-holing connections — Elasticsearch
    going away and coming back, without touching the node other tests use::

        proxy = SwitchableProxy("http://127.0.0.1:9200")
        proxy.url              # give this to the indexer
        proxy.set_mode("blackhole")   # connections accepted, never answered
        proxy.set_mode("refuse")      # connections reset at once (a closed port)
        proxy.set_mode("forward")
        proxy.close()

    Switching mode cuts the connections open at that moment (a client's
    pooled keep-alive connections included).
    """

    MODES = ("forward", "refuse", "blackhole")

    def __init__(self, target_url: str):
        import threading
        import urllib.parse

        parts = urllib.parse.urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.mode = "forward"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: set = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def set_mode(self, mode: str) -> None:
        """Switch to ``mode`` (one of :attr:`MODES`) and cut the open connections."""
        if mode not in self.MODES:
            raise ValueError(mode)
        with self._lock:
            self.mode = mode
            doomed, self._open = self._open, set()
        for sock in doomed:
            self._shut(sock)

    def close(self) -> None:
        """Stop listening and cut every connection."""
        self._closed = True
        self.set_mode("refuse")
        self._listener.close()

    @staticmethod
    def _shut(sock) -> None:
        import contextlib
        import struct

        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        with contextlib.suppress(OSError):
            sock.close()

    def _accept(self) -> None:
        import threading

        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                mode = self.mode
                if mode != "refuse":
                    self._open.add(client)
            if mode == "refuse":
                self._shut(client)
            elif mode == "blackhole":
                threading.Thread(target=self._drain, args=(client,), daemon=True).start()
            else:
                threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _drain(self, client) -> None:
        try:
            while client.recv(65536):
                pass
        except OSError:
            pass

    def _forward(self, client) -> None:
        import threading

        try:
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
        except OSError:
            self._shut(client)
            return
        with self._lock:
            self._open.add(upstream)

        def pump(source, sink):
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                self._shut(source)
                self._shut(sink)

        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)
