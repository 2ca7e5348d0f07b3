"""A keep-alive HTTP client for tests and benchmarks that talk to a real
server (:mod:`cliquet.testing.server`, ``ci/bench``): one connection per
client, JSON bodies, and no retry — a request that got no answer raises and
is never sent again, so a test can tell an acknowledged write from one that
may or may not have happened.

::

    client = KeepAliveClient(server.url, auth="Basic YWxpY2U6c2VjcmV0")
    status, headers, body = client.request("POST", "/v1/articles", {"data": {}})
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import NamedTuple

__all__ = ["Answer", "KeepAliveClient"]


class Answer(NamedTuple):
    """A response: ``status``, ``headers`` (lower-case names) and the decoded
    JSON ``body`` (``None`` when empty; ``{"raw": …}`` when not JSON).
    Unpacks as ``status, headers, body``."""

    status: int
    headers: dict
    body: object

    @property
    def data(self):
        """The body's ``data`` member."""
        return self.body["data"]


class KeepAliveClient:
    """One keep-alive HTTP connection to ``base_url`` (use one per thread).

    :param auth: the ``Authorization`` header sent with every request.
    :param timeout: seconds to wait for a connection or an answer.
    """

    def __init__(self, base_url: str, auth: str | None = None, timeout: float = 60.0):
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port, self.auth, self.timeout = parts.hostname, parts.port, auth, timeout
        self.conn = None

    def request(self, method: str, path: str, body=None, headers: dict | None = None) -> Answer:
        """Send one request; ``body`` is sent as JSON.

        :raises OSError, http.client.HTTPException: no answer came (the
            connection is dropped; the next request opens a new one).
        """
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        all_headers = {**({"Authorization": self.auth} if self.auth else {}), **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=payload, headers=all_headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = {"raw": raw[:200].decode(errors="replace")}
        return Answer(response.status, answer_headers, parsed)

    def close(self) -> None:
        """Close the connection (the next request opens another)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
