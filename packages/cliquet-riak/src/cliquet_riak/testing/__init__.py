"""Test support for ``cliquet_riak``, shipped so that users can test with it too.

* :mod:`cliquet_riak.testing.standin` — a stand-in Riak node (HTTP API) to run
  in its own process.
* :class:`StandinProcess` — start, kill and restart such a process from a test.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class StandinProcess:
    """A stand-in Riak node running as a child process.

    :param port: the port to listen on (``None``: a free one, kept across
        restarts so that clients can reconnect to the same address).
    :param peers: base URLs of other stand-in nodes to copy writes to; a node
        that starts with peers first copies the data of one that answers
        (standing in for Riak's hand-off).
    :param delete_mode: milliseconds a tombstone stays after a delete
        (Riak's default, 3000), ``"immediate"`` or ``"keep"``.

    ::

        node = StandinProcess().start()
        node.url      # 'http://127.0.0.1:41234'
        node.kill()   # like a crashed node
        node.start()  # back, on the same port, empty (or with its peers' data)
    """

    def __init__(self, port: int | None = None, peers=(), host: str = "127.0.0.1",
                 delete_mode: int | str = 3000):
        self.host = host
        self.port = port or free_port(host)
        self.peers = list(peers)
        self.delete_mode = delete_mode
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Base URL of the node (``http://host:port``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 15.0) -> "StandinProcess":
        """Start the process and wait until it accepts connections."""
        if self.running:
            return self
        cmd = [sys.executable, "-m", "cliquet_riak.testing.standin",
               "--host", self.host, "--port", str(self.port), "--delete-mode", str(self.delete_mode)]
        for peer in self.peers:
            cmd += ["--peer", peer]
        deadline = time.monotonic() + timeout
        while True:
            # stderr goes to a file: a pipe nobody reads could fill up and block the node.
            errors = tempfile.TemporaryFile(mode="w+")
            self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True)
            line = self.process.stdout.readline()
            if "listening on" in line:
                self._errors = errors
                return self
            self.process.wait()
            errors.seek(0)
            error = errors.read()
            errors.close()
            # The port may still be held by the previous process for a moment.
            if time.monotonic() > deadline or "Address already in use" not in error:
                raise RuntimeError(f"the Riak stand-in did not start: {error.strip()[-2000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """Kill the process (SIGKILL: no clean shutdown, like a crash)."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process.stdout.close()
            self._errors.close()
            self.process = None

    stop = kill
