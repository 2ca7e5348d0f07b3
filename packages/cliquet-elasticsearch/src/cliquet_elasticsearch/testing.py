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

__all__ = ["ElasticsearchNode", "find_java_home", "free_port"]


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
