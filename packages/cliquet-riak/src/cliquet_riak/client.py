"""A small client for Riak KV's HTTP API: several nodes, pooled connections.

Requests are spread over the nodes in turn. A node that fails to answer
(refused or dropped connection, timeout, ``5xx``) is skipped for
``down_seconds`` while the request goes on with the next node; when every node
fails, :class:`~cliquet.storage.exceptions.BackendError` is raised. Nodes that
are marked down are still tried last, so the cluster coming back is noticed
at once.

Connections are kept by `urllib3 <https://urllib3.readthedocs.io/>`_, one
pool per node of ``pool_size`` connections.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import urllib3
from cliquet.storage.exceptions import BackendError

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8098


@dataclass(frozen=True)
class RiakLocation:
    """Where the cache lives: nodes, bucket type and bucket, parsed from a URL.

    Accepted forms (several URLs separated by spaces or newlines must all
    name the same bucket)::

        riak://host1:8098,host2:8098/bucket-type/bucket
        riak://host:8098/bucket          (bucket type "default")
        http://host:8098/types/T/buckets/B
        https://host:8443/T/B
    """

    nodes: tuple[str, ...]
    bucket_type: str = "default"
    bucket: str = "cliquet_cache"

    @classmethod
    def parse(cls, value, default_bucket: str = "cliquet_cache") -> "RiakLocation":
        """Parse a ``cache_url`` (a string, or a list of strings)."""
        urls = value if isinstance(value, (list, tuple)) else str(value or "").split()
        if not urls:
            raise ValueError("no Riak URL given (cliquet.cache_url = riak://host:8098/type/bucket)")
        nodes: list[str] = []
        places = set()
        for url in urls:
            parts = urllib.parse.urlsplit(url.strip())
            if parts.scheme not in ("riak", "http", "https"):
                raise ValueError(f"unsupported scheme in {url!r}: use riak://, http:// or https://")
            scheme = "https" if parts.scheme == "https" else "http"
            for netloc in parts.netloc.split(","):
                host, _, port = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
                if not host:
                    raise ValueError(f"no host in {url!r}")
                nodes.append(f"{scheme}://{host}:{int(port or DEFAULT_PORT)}")
            segments = [urllib.parse.unquote(s) for s in parts.path.split("/") if s]
            if len(segments) == 4 and segments[0] == "types" and segments[2] == "buckets":
                segments = [segments[1], segments[3]]
            elif len(segments) == 2 and segments[0] == "buckets":
                segments = [segments[1]]
            if len(segments) > 2:
                raise ValueError(f"too many path segments in {url!r}: expected /bucket-type/bucket")
            bucket_type, bucket = (["default"] + segments)[-2:] if segments else ("default", default_bucket)
            places.add((bucket_type, bucket))
        if len(places) > 1:
            raise ValueError(f"the Riak URLs name different buckets: {sorted(places)}")
        bucket_type, bucket = places.pop()
        return cls(tuple(dict.fromkeys(nodes)), bucket_type, bucket)

    @property
    def bucket_path(self) -> str:
        """``/types/T/buckets/B`` (URL-encoded)."""
        quote = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
        return f"/types/{quote(self.bucket_type)}/buckets/{quote(self.bucket)}"


@dataclass
class Response:
    """What a request answered: status, headers (case-insensitive), body."""

    status: int
    headers: urllib3.HTTPHeaderDict
    body: bytes
    node: str = ""

    def json(self):
        """Decode the body as JSON."""
        return json.loads(self.body)


@dataclass
class _Node:
    url: str
    pool: urllib3.HTTPConnectionPool
    down_until: float = 0.0
    failures: int = field(default=0)


class RiakHTTPClient:
    """Requests to a Riak cluster over HTTP with spreading and fail-over.

    :param nodes: base URLs (``http://host:port``).
    :param pool_size: connections kept per node.
    :param pool_timeout: seconds to wait for a free connection of a pool.
    :param connect_timeout: seconds to open a connection.
    :param read_timeout: seconds to wait for an answer.
    :param down_seconds: how long a failing node is tried only last.
    """

    def __init__(self, nodes, pool_size=10, pool_timeout=30.0, connect_timeout=2.0,
                 read_timeout=5.0, down_seconds=5.0):
        timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.pool_timeout = pool_timeout
        self.down_seconds = down_seconds
        self._nodes = []
        for url in nodes:
            parts = urllib.parse.urlsplit(url)
            cls = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
            pool = cls(parts.hostname, parts.port, maxsize=pool_size or 1, block=True,
                       timeout=timeout, retries=False)
            self._nodes.append(_Node(url, pool))
        self._turn = itertools.count()
        self._lock = threading.Lock()

    @property
    def nodes(self) -> list[str]:
        """Base URLs of the nodes."""
        return [n.url for n in self._nodes]

    def _order(self) -> list[_Node]:
        start = next(self._turn) % len(self._nodes)
        turn = self._nodes[start:] + self._nodes[:start]
        now = time.monotonic()
        up = [n for n in turn if n.down_until <= now]
        return up + [n for n in turn if n.down_until > now]

    def _mark(self, node: _Node, ok: bool, error=None) -> None:
        with self._lock:
            if ok:
                if node.failures:
                    logger.info("Riak node %s answers again", node.url)
                node.failures, node.down_until = 0, 0.0
            else:
                if not node.failures:
                    logger.warning("Riak node %s failed: %s", node.url, error)
                node.failures += 1
                node.down_until = time.monotonic() + self.down_seconds

    def request(self, method: str, path: str, body: bytes | None = None, headers=None,
                fields=None, ok=(200, 204, 300, 404)) -> Response:
        """Send one request to the first node that answers.

        :param path: path of the resource, already URL-encoded.
        :param fields: query parameters.
        :param ok: statuses returned to the caller; any other raises
            :class:`BackendError` (``5xx`` first tries the other nodes).
        :raises BackendError: every node failed, or an unexpected status.
        """
        if fields:
            path = f"{path}?{urllib.parse.urlencode(fields)}"
        last_error = None
        for node in self._order():
            try:
                raw = node.pool.urlopen(method, path, body=body, headers=headers or {},
                                        pool_timeout=self.pool_timeout, preload_content=True,
                                        redirect=False)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                self._mark(node, False, exc)
                last_error = exc
                continue
            response = Response(raw.status, raw.headers, raw.data, node.url)
            if raw.status >= 500:
                self._mark(node, False, f"HTTP {raw.status}")
                last_error = RuntimeError(f"Riak node {node.url} answered {raw.status}: {raw.data[:200]!r}")
                continue
            self._mark(node, True)
            if raw.status not in ok:
                raise BackendError(message=f"Riak answered {raw.status} to {method} {path}: {raw.data[:300]!r}")
            return response
        raise BackendError(last_error, f"no Riak node answered ({', '.join(self.nodes)}): {last_error}")

    def ping(self) -> dict[str, bool]:
        """Ask every node for ``/ping``; return ``{url: answered}``."""
        result = {}
        for node in self._nodes:
            try:
                raw = node.pool.urlopen("GET", "/ping", pool_timeout=self.pool_timeout, retries=False)
                result[node.url] = raw.status == 200
            except (urllib3.exceptions.HTTPError, OSError):
                result[node.url] = False
            self._mark(node, result[node.url], "ping failed")
        return result

    def close(self) -> None:
        """Close every pooled connection."""
        for node in self._nodes:
            node.pool.close()


def parse_siblings(response: Response) -> list[tuple[urllib3.HTTPHeaderDict, bytes]]:
    """Split a ``300 Multiple Choices`` ``multipart/mixed`` answer into
    ``(headers, body)`` pairs, one per sibling."""
    ctype = response.headers.get("Content-Type", "")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + response.body)
    siblings = []
    for part in message.iter_parts():
        headers = urllib3.HTTPHeaderDict()
        for name, value in part.items():
            headers.add(name, str(value))
        siblings.append((headers, part.get_payload(decode=True) or b""))
    return siblings
