"""Slow and stalled clients for ``--soak``: raw sockets beside wrk's normal load.

* a *stalled* client sends a POST's headers announcing ``Content-Length:
  1000`` and one byte of body, then waits for the server's answer (a 408
  after ``cliquet.request_body_timeout``) and starts again;
* a *slow* client sends a whole, valid record one byte every
  ``BENCH_SOAK_SLOW_PAUSE`` seconds (0.05) and expects 201.

:class:`HostileClients` runs them in threads until stopped and counts the
answers each kind got.
"""

import collections
import json
import socket
import threading
import time
import urllib.parse


class HostileClients:
    """``stalled`` + ``slow`` client threads against ``base_url`` (POST to
    ``path`` with ``auth``) until :meth:`stop`."""

    def __init__(self, base_url, auth, path, stalled=8, slow=4, pause=0.05):
        parts = urllib.parse.urlsplit(base_url)
        self.address = (parts.hostname, parts.port)
        self.auth, self.path, self.pause = auth, path, pause
        self.counts = collections.Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(self._stalled,), daemon=True)
                         for _ in range(stalled)]
        self._threads += [threading.Thread(target=self._loop, args=(self._slow,), daemon=True)
                          for _ in range(slow)]

    def start(self):
        """Start every client."""
        for thread in self._threads:
            thread.start()
        return self

    def stop(self):
        """Stop them (their sockets are closed) and return the answers counted."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        return dict(self.counts)

    def _count(self, key):
        with self._lock:
            self.counts[key] += 1

    def _loop(self, client):
        while not self._stop.is_set():
            try:
                client()
            except OSError as exc:
                if not self._stop.is_set():
                    self._count(f"error {type(exc).__name__}")
                    time.sleep(0.1)

    def _connect(self, length):
        sock = socket.create_connection(self.address, timeout=1)
        sock.sendall(
            f"POST {self.path} HTTP/1.1\r\nHost: {self.address[0]}\r\n"
            f"Authorization: {self.auth}\r\nContent-Type: application/json\r\n"
            f"Connection: close\r\nContent-Length: {length}\r\n\r\n".encode())
        return sock

    def _answer(self, sock, kind):
        """Wait (while not stopped) for the status line and count it."""
        data = b""
        while b"\r\n" not in data and not self._stop.is_set():
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                break
            data += chunk
        if data:
            self._count(f"{kind} {data.split(b' ', 2)[1].decode(errors='replace')}")

    def _stalled(self):
        with self._connect(1000) as sock:
            sock.sendall(b"{")
            self._answer(sock, "stalled")

    def _slow(self):
        body = json.dumps({"data": {"title": "sent slowly", "tags": ["slow"]}}).encode()
        with self._connect(len(body)) as sock:
            for byte in body:
                if self._stop.wait(self.pause):
                    return
                sock.sendall(bytes([byte]))
            self._answer(sock, "slow")
