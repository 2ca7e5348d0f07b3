"""A stand-in for a Riak KV node: its documented HTTP API, in one process.

No package registry ships a Riak server, so the tests of ``cliquet_riak``
run against this program, over a real socket, in its own process::

    python -m cliquet_riak.testing.standin --port 8098
    python -m cliquet_riak.testing.standin --port 8098 --peer http://127.0.0.1:8099

It prints ``riak-standin listening on http://HOST:PORT`` once it accepts
connections. With ``--peer`` (repeatable) every write is copied to the
peers before it is acknowledged, so several stand-ins behave like the nodes
of one cluster; a node that starts with peers first copies the data of the
first peer that answers (standing in for Riak's hand-off), and one without
peers, or whose peers are all down, starts empty.

It behaves as a Riak KV 3.x node does where clients can tell (each point is
in ``docs/riak.rst`` with the documentation it comes from):

* content negotiation: an object answers only in the media types it has
  (its own ``Content-Type``; ``text/plain`` or ``multipart/mixed`` when it
  has siblings), so ``Accept: multipart/mixed`` on an object without
  siblings is ``406 Not Acceptable``;
* a delete leaves a tombstone for ``--delete-mode`` milliseconds (Riak's
  default: 3000): reads answer ``404`` with ``X-Riak-Vclock`` and
  ``X-Riak-Deleted: true``, key listings and ``$key``/``$bucket`` queries
  still name the key;
* ``GET .../keys`` without ``keys=true|stream`` answers ``200 {}``;
* secondary index results come in no particular order unless paginated
  (``max_results``, ``continuation``) or ``pagination_sort=true``; a range
  query names a key once per matching term; a full page carries a
  ``continuation`` (the next may be empty); ``stream=true`` answers
  ``multipart/mixed``.

What it speaks (paths also exist without ``/types/{type}``, meaning the
``default`` type):

* ``GET /ping`` → ``200 OK``; ``GET /stats`` → JSON counters.
* ``GET|PUT|POST|DELETE /types/{type}/buckets/{bucket}/keys/{key}`` with
  ``X-Riak-Vclock``, ``X-Riak-Meta-*``, ``X-Riak-Index-*``, ``ETag``,
  ``Last-Modified``, ``Link``; ``returnbody=true``; ``If-None-Match`` /
  ``If-Match`` on writes (``412``) and ``If-None-Match`` on reads (``304``);
  siblings as ``300 Multiple Choices`` — every sibling in one
  ``multipart/mixed`` body when the client accepts it, else the list of
  vtags, and one sibling with ``?vtag=``. Status codes as documented:
  ``200``, ``201`` (``POST`` without key), ``204``, ``300``, ``304``,
  ``400``, ``404``, ``412``.
* ``GET /types/{type}/buckets/{bucket}/keys?keys=true`` (or ``=stream``).
* ``GET /types/{type}/buckets/{bucket}/index/{name}/{value}`` and
  ``.../index/{name}/{min}/{max}`` for ``*_int``, ``*_bin``, ``$key`` and
  ``$bucket``, with ``return_terms``, ``max_results`` + ``continuation``,
  ``pagination_sort`` and ``stream``.
* ``GET|PUT|DELETE /types/{type}/buckets/{bucket}/props``.

Buckets in a type other than ``default`` allow siblings (``allow_mult``),
as in Riak 2.x. Not modelled: quorum parameters (accepted, ignored), links
walking, MapReduce, Search, CRDT data types, ``term_regex``.
"""

from __future__ import annotations

import argparse
import base64
import email.utils
import http.client
import json
import random
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cliquet_riak.testing.store import DEFAULT_DELETE_MODE, Sibling, Store, decode_clock, encode_clock

MULTIPART_BOUNDARY = "RiakStandinSiblingBoundary"


class RequestError(Exception):
    """An HTTP error answer: status and a plain-text message."""

    def __init__(self, status: int, message: str = "", headers=()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def choose_media_type(provided: list[str], accept: str | None) -> str | None:
    """Pick what to answer among ``provided`` for an ``Accept`` header, as
    Riak's web server (Webmachine) does: the accepted ranges by decreasing
    ``q`` (header order between equals), each matched against ``provided``
    in order; ``q=0`` refuses. ``None``: nothing acceptable (``406``).
    Without ``Accept``, the first provided type."""
    if not accept or not accept.strip():
        return provided[0] if provided else None
    ranges = []
    for position, item in enumerate(accept.split(",")):
        params = [p.strip() for p in item.split(";")]
        media = params[0].lower()
        if not media:
            continue
        if media == "*":
            media = "*/*"
        q = 1.0
        for param in params[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((-q, position, media))
    for negative_q, _, media in sorted(ranges):
        if negative_q >= 0:
            break
        for candidate in provided:
            have = _media(candidate)
            if media in ("*/*", have) or (media.endswith("/*") and have.startswith(media[:-1])):
                return candidate
    return None


def parse_indexes(headers) -> dict[str, list]:
    """Read the ``X-Riak-Index-*`` headers: ``*_int`` values must be integers."""
    indexes: dict[str, list] = {}
    for name, value in headers.items():
        lower = name.lower()
        if not lower.startswith("x-riak-index-"):
            continue
        field = lower[len("x-riak-index-"):]
        values = [v.strip() for v in value.split(",") if v.strip()]
        if field.endswith("_int"):
            try:
                converted = [int(v) for v in values]
            except ValueError:
                raise RequestError(400, f"Could not parse index fields: {name}: {value}") from None
        elif field.endswith("_bin"):
            converted = values
        else:
            raise RequestError(400, f"Could not parse index fields: {name} (names end in _int or _bin)")
        indexes.setdefault(field, []).extend(converted)
    return indexes


def parse_meta(headers) -> dict[str, str]:
    """Read the ``X-Riak-Meta-*`` headers (names lower-cased, like Riak)."""
    return {name.lower()[len("x-riak-meta-"):]: value
            for name, value in headers.items() if name.lower().startswith("x-riak-meta-")}


def sibling_headers(sibling: Sibling, bucket_path: str) -> list[tuple[str, str]]:
    """The headers that describe one sibling (object read or multipart part)."""
    headers = [
        ("Content-Type", sibling.content_type),
        ("ETag", f'"{sibling.vtag}"'),
        ("Last-Modified", email.utils.formatdate(sibling.last_modified, usegmt=True)),
        ("Link", f'<{bucket_path}>; rel="up"'),
    ]
    headers += [(f"X-Riak-Meta-{name}", value) for name, value in sorted(sibling.meta.items())]
    for field, values in sorted(sibling.indexes.items()):
        headers.append((f"X-Riak-Index-{field}", ", ".join(str(v) for v in values)))
    if sibling.deleted:
        headers.append(("X-Riak-Deleted", "true"))
    return headers


def _boolean(query: dict, name: str, default):
    value = query.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise RequestError(400, f"Invalid {name}. {value!r} is not a boolean")


class Handler(BaseHTTPRequestHandler):
    """One HTTP/1.1 connection to the stand-in (keep-alive, like Riak's)."""

    protocol_version = "HTTP/1.1"
    server_version = "MochiWeb/1.1 WebMachine/1.10.9 (riak-standin)"
    server: "StandinServer"

    # -- plumbing --------------------------------------------------------------

    def setup(self):
        """Send small answers at once (no Nagle delay), like Riak's web server."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        """Quiet: the stand-in logs nothing per request."""

    def _body(self) -> bytes:
        return self.request_body

    def _send(self, status: int, body: bytes = b"", headers=(), content_type="text/plain"):
        self.send_response(status)
        sent = {name.lower() for name, _ in headers}
        if body and "content-type" not in sent:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, data, headers=()):
        self._send(status, json.dumps(data).encode(), headers, "application/json")

    def _send_chunks(self, chunks):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            data = json.dumps(chunk).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")

    def _dispatch(self):
        self.server.count_request()
        # Read the whole body first: an early error answer must not leave
        # part of it on the kept-alive connection.
        length = int(self.headers.get("Content-Length") or 0)
        self.request_body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        self.query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        try:
            self._route(parts)
        except RequestError as exc:
            self._send(exc.status, exc.message.encode(), exc.headers)
        except (ValueError, KeyError) as exc:
            self._send(400, f"Bad request: {exc}".encode())

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _dispatch

    def _route(self, parts: list[str]):
        if parts == ["ping"]:
            return self._only("GET", "HEAD") or self._send(200, b"OK")
        if parts == ["stats"]:
            return self._only("GET") or self._send_json(200, self.server.stats())
        if parts == ["standin", "replicate"]:
            return self._only("POST") or self._replicated()
        if parts == ["standin", "dump"]:
            return self._only("GET") or self._send_json(200, self.server.store.dump())
        bucket_type = "default"
        if parts[:1] == ["types"] and len(parts) >= 2:
            bucket_type, parts = parts[1], parts[2:]
        if len(parts) < 3 or parts[0] != "buckets" or not parts[1]:
            raise RequestError(404, "Not Found")
        bucket, rest = parts[1], parts[2:]
        path = (f"/types/{bucket_type}" if bucket_type != "default" else "") + f"/buckets/{bucket}"
        self.location = (bucket_type, bucket, path)
        if rest == ["props"]:
            return self._props()
        if rest == ["keys"]:
            return self._keys()
        if len(rest) == 2 and rest[0] == "keys" and rest[1]:
            return self._object(rest[1])
        if len(rest) in (3, 4) and rest[0] == "index":
            return self._only("GET") or self._index(rest[1], rest[2:])
        raise RequestError(404, "Not Found")

    def _only(self, *methods):
        if self.command not in methods:
            raise RequestError(405, "Method Not Allowed")
        return None

    # -- objects ---------------------------------------------------------------

    def _object(self, key: str):
        if self.command in ("GET", "HEAD"):
            return self._fetch(key)
        if self.command in ("PUT", "POST"):
            return self._store(key)
        if self.command == "DELETE":
            return self._delete(key)
        raise RequestError(405, "Method Not Allowed")

    def _negotiate(self, provided: list[str]) -> str:
        chosen = choose_media_type(provided, self.headers.get("Accept"))
        if chosen is None:
            raise RequestError(406, "")
        return chosen

    @staticmethod
    def _read_types(siblings: list[Sibling]) -> list[str]:
        """What a read of these siblings can be answered in (Riak's
        ``content_types_provided``)."""
        if len(siblings) == 1:
            return [siblings[0].content_type]
        return ["text/plain", "multipart/mixed"]

    def _answer_siblings(self, siblings: list[Sibling], ok_status: int = 200, chosen: str | None = None):
        """Answer one value, or ``300`` with the siblings in ``chosen`` form."""
        bucket_type, bucket, path = self.location
        clock = encode_clock(_merged_clock(siblings))
        if len(siblings) == 1:
            sibling = siblings[0]
            inm = self.headers.get("If-None-Match")
            if self.command in ("GET", "HEAD") and inm and inm.strip() == f'"{sibling.vtag}"':
                return self._send(304, headers=[("X-Riak-Vclock", clock)])
            headers = [("X-Riak-Vclock", clock), ("Vary", "Accept-Encoding")]
            return self._send(ok_status, sibling.value, headers + sibling_headers(sibling, path))
        if chosen == "multipart/mixed":
            chunks = []
            for sibling in siblings:
                lines = [f"{name}: {value}" for name, value in sibling_headers(sibling, path)]
                head = ("\r\n--" + MULTIPART_BOUNDARY + "\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode()
                chunks.append(head + sibling.value)
            body = b"".join(chunks) + f"\r\n--{MULTIPART_BOUNDARY}--\r\n".encode()
            ctype = f"multipart/mixed; boundary={MULTIPART_BOUNDARY}"
            return self._send(300, body, [("X-Riak-Vclock", clock), ("Content-Type", ctype)])
        body = "Siblings:\n" + "".join(s.vtag + "\n" for s in siblings)
        return self._send(300, body.encode(), [("X-Riak-Vclock", clock), ("Content-Type", "text/plain")])

    def _existing(self, key: str) -> list[Sibling]:
        """The siblings of an object that is there: ``404`` when it is missing
        or only a tombstone (then with its clock and ``X-Riak-Deleted``)."""
        bucket_type, bucket, _ = self.location
        siblings = self.server.store.get(bucket_type, bucket, key)
        if not any(not s.deleted for s in siblings):
            headers = []
            if siblings:
                headers = [("X-Riak-Vclock", encode_clock(_merged_clock(siblings))),
                           ("X-Riak-Deleted", "true")]
            raise RequestError(404, "not found\n", headers)
        return siblings

    def _fetch(self, key: str):
        siblings = self._existing(key)
        vtag = self.query.get("vtag")
        if vtag is not None:
            chosen = [s for s in siblings if s.vtag == vtag]
            if not chosen:
                raise RequestError(404, "not found\n")
            siblings = chosen
        chosen_type = self._negotiate(self._read_types(siblings))
        return self._answer_siblings(siblings, chosen=chosen_type)

    def _store(self, key: str | None):
        bucket_type, bucket, path = self.location
        # Riak's order: malformed request (400), content negotiation (406),
        # preconditions (412), then the write.
        if self.headers.get("Content-Type") is None:
            raise RequestError(400, "Missing Content-Type request header")
        data = {
            "value": self._body(),
            "content_type": self.headers["Content-Type"],
            "meta": parse_meta(self.headers),
            "indexes": parse_indexes(self.headers),
        }
        self._negotiate([_media(data["content_type"])])
        current = self.server.store.get(bucket_type, bucket, key) if key else []
        live = [s for s in current if not s.deleted]
        if self.headers.get("If-None-Match", "").strip() == "*" and live:
            raise RequestError(412, "Precondition Failed")
        if_match = self.headers.get("If-Match")
        if if_match and not any(f'"{s.vtag}"' == if_match.strip() for s in live):
            raise RequestError(412, "Precondition Failed")
        created = key is None
        key = key or uuid.uuid4().hex
        clock = decode_clock(self.headers.get("X-Riak-Vclock"))
        siblings = self.server.store.put(bucket_type, bucket, key, data, clock)
        self.server.replicate(bucket_type, bucket, key, siblings)
        location = [("Location", f"{path}/keys/{urllib.parse.quote(key, safe='')}")]
        if self.query.get("returnbody") == "true":
            chosen = choose_media_type(["multipart/mixed", "text/plain"], self.headers.get("Accept"))
            return self._answer_siblings(siblings, ok_status=201 if created else 200, chosen=chosen)
        return self._send(201 if created else 204, headers=location if created else [])

    def _delete(self, key: str):
        bucket_type, bucket, _ = self.location
        siblings = self._existing(key)
        self._negotiate(self._read_types(siblings))
        clock = decode_clock(self.headers.get("X-Riak-Vclock"))
        after = self.server.store.delete(bucket_type, bucket, key, clock)
        if after is None:  # deleted by someone else meanwhile
            raise RequestError(404, "not found\n")
        self.server.replicate(bucket_type, bucket, key, after)
        return self._send(204)

    # -- buckets ---------------------------------------------------------------

    def _keys(self):
        bucket_type, bucket, _ = self.location
        if self.command == "POST":
            return self._store(None)
        self._only("GET")
        mode = self.query.get("keys")
        keys = self.server.store.keys(bucket_type, bucket)
        if mode == "true":
            return self._send_json(200, {"keys": keys})
        if mode == "stream":
            return self._send_chunks([{"keys": keys[i:i + 100]} for i in range(0, len(keys), 100)]
                                     + [{"keys": []}])
        # Riak: any other value (or none) lists nothing, and says so with 200.
        return self._send_json(200, {})

    def _props(self):
        bucket_type, bucket, _ = self.location
        if self.command == "GET":
            return self._send_json(200, {"props": self.server.store.get_props(bucket_type, bucket)})
        if self.command == "PUT":
            if "json" not in (self.headers.get("Content-Type") or ""):
                raise RequestError(415, "Unsupported Media Type")
            try:
                props = json.loads(self._body())["props"]
            except (ValueError, KeyError, TypeError):
                raise RequestError(400, 'Expected a JSON body {"props": {...}}') from None
            if not isinstance(props, dict):
                raise RequestError(400, "props must be an object")
            self.server.store.set_props(bucket_type, bucket, props)
        elif self.command == "DELETE":
            self.server.store.reset_props(bucket_type, bucket)
        else:
            raise RequestError(405, "Method Not Allowed")
        self.server.replicate_props(bucket_type, bucket)
        return self._send(204)

    def _index(self, field: str, values: list[str]):
        bucket_type, bucket, _ = self.location
        return_terms = _boolean(self.query, "return_terms", False)
        pagination_sort = _boolean(self.query, "pagination_sort", None)
        limit = None
        if "max_results" in self.query:
            raw = self.query["max_results"]
            limit = int(raw) if raw.strip().lstrip("-").isdigit() else 0
            if limit <= 0:
                raise RequestError(400, f"Invalid max_results. {raw!r} is not a positive integer")
        if field.endswith("_int"):
            try:
                bounds = [int(v) for v in values]
            except ValueError:
                raise RequestError(400, "Could not parse index value") from None
        elif field.endswith("_bin") or field in ("$key", "$bucket"):
            bounds = list(values)
        else:
            raise RequestError(400, "Unknown field type: index names end in _int or _bin")
        low, high = bounds[0], bounds[-1]
        results = self.server.store.index_query(bucket_type, bucket, field, low, high)
        if field == "$bucket" and low != bucket:
            results = []
        continuation = self.query.get("continuation")
        if continuation:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(continuation)))
            except ValueError:
                raise RequestError(400, "Invalid query: invalid continuation") from None
            results = [r for r in results if (r[0], r[1]) > after]
        # Riak sorts only what it paginates (or when asked); a coverage query
        # otherwise merges the vnodes' answers as they come.
        if not (limit or continuation or pagination_sort):
            random.shuffle(results)
        answer: dict = {}
        if limit is not None:
            results = results[:limit]
        # Terms come back only for range queries (not for one value, not $bucket).
        if return_terms and len(values) == 2 and field != "$bucket":
            answer["results"] = [{str(term): key} for term, key in results]
        else:
            answer["keys"] = [key for _, key in results]
        if limit is not None and len(results) == limit:
            # A full page has a continuation, even when nothing follows.
            last = json.dumps(list(results[-1])).encode()
            answer["continuation"] = base64.urlsafe_b64encode(last).decode("ascii")
        if self.query.get("stream") == "true":
            return self._send_index_stream(answer)
        return self._send_json(200, answer)

    def _send_index_stream(self, answer: dict):
        """``stream=true``: the results in ``multipart/mixed`` parts, as Riak streams them."""
        boundary = uuid.uuid4().hex
        name = "results" if "results" in answer else "keys"
        items = answer[name]
        parts = [{name: items[i:i + 100]} for i in range(0, len(items), 100)]
        if "continuation" in answer:
            parts.append({"continuation": answer["continuation"]})
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/mixed;boundary={boundary}")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunks = [f"\r\n--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode()
                  + json.dumps(part).encode() for part in parts]
        chunks.append(f"\r\n--{boundary}--\r\n".encode())
        for data in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")

    # -- replication -------------------------------------------------------------

    def _replicated(self):
        data = json.loads(self._body())
        store = self.server.store
        if "props" in data:
            store.reset_props(data["type"], data["bucket"])
            store.set_props(data["type"], data["bucket"], data["props"])
        else:
            siblings = [Sibling.from_json(s) for s in data["siblings"]]
            store.replace(data["type"], data["bucket"], data["key"], siblings)
        return self._send(204)


def _merged_clock(siblings: list[Sibling]) -> dict[str, int]:
    clock: dict[str, int] = {}
    for sibling in siblings:
        for actor, count in sibling.clock.items():
            clock[actor] = max(clock.get(actor, 0), count)
    return clock


class StandinServer(ThreadingHTTPServer):
    """The stand-in node: a threaded HTTP server around a :class:`Store`.

    :param address: ``(host, port)``; port ``0`` picks a free one.
    :param peers: base URLs of the other nodes to copy writes to.
    :param delete_mode: seconds a tombstone stays (``None``: kept forever).
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, peers=(), node_name=None, delete_mode=DEFAULT_DELETE_MODE):
        super().__init__(address, Handler)
        host, port = self.server_address[:2]
        self.store = Store(node_name or f"standin-{port}", delete_mode=delete_mode)
        self.peers = [urllib.parse.urlsplit(p) for p in peers]
        self.started = time.time()
        self._requests = 0
        self._counter_lock = threading.Lock()

    @property
    def url(self) -> str:
        """The base URL of this node."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def count_request(self):
        """Count one request (shown by ``/stats`` as ``node_gets``-like counter)."""
        with self._counter_lock:
            self._requests += 1

    def stats(self) -> dict:
        """What ``GET /stats`` answers (Riak's has many more counters)."""
        return {"nodename": self.store.node_name, "standin": True,
                "requests_total": self._requests, "keys_total": self.store.count(),
                "uptime_seconds": round(time.time() - self.started, 3)}

    def _post_to_peers(self, payload: dict):
        body = json.dumps(payload).encode()
        for peer in self.peers:
            try:
                conn = http.client.HTTPConnection(peer.hostname, peer.port, timeout=2)
                conn.request("POST", "/standin/replicate", body, {"Content-Type": "application/json"})
                conn.getresponse().read()
                conn.close()
            except OSError:
                pass  # a peer that is down misses the write, like a node without hand-off

    def hand_off(self) -> str | None:
        """Copy every bucket of the first peer that answers; return its URL."""
        for peer in self.peers:
            try:
                conn = http.client.HTTPConnection(peer.hostname, peer.port, timeout=2)
                conn.request("GET", "/standin/dump")
                response = conn.getresponse()
                body = response.read()
                conn.close()
            except OSError:
                continue
            if response.status == 200:
                self.store.load(json.loads(body))
                return f"http://{peer.hostname}:{peer.port}"
        return None

    def replicate(self, bucket_type, bucket, key, siblings):
        """Copy the state of one key to the peers."""
        if self.peers:
            self._post_to_peers({"type": bucket_type, "bucket": bucket, "key": key,
                                 "siblings": [s.to_json() for s in siblings]})

    def replicate_props(self, bucket_type, bucket):
        """Copy the properties of one bucket to the peers."""
        if self.peers:
            props = self.store.get_props(bucket_type, bucket)
            for name in ("name", "type", "young_vclock", "old_vclock"):
                props.pop(name, None)
            self._post_to_peers({"type": bucket_type, "bucket": bucket, "props": props})


def main(argv=None):
    """Run a stand-in node until interrupted (see the module documentation)."""
    parser = argparse.ArgumentParser(prog="python -m cliquet_riak.testing.standin",
                                     description="A stand-in for Riak KV's HTTP API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8098, help="0 picks a free port")
    parser.add_argument("--peer", action="append", default=[],
                        help="base URL of another stand-in node to copy writes to")
    parser.add_argument("--delete-mode", default=str(int(DEFAULT_DELETE_MODE * 1000)),
                        help="milliseconds a tombstone stays (Riak's delete_mode: 3000), "
                             "'immediate' or 'keep'")
    args = parser.parse_args(argv)
    mode = args.delete_mode.strip().lower()
    delete_mode = None if mode == "keep" else 0.0 if mode == "immediate" else int(mode) / 1000
    server = StandinServer((args.host, args.port), peers=args.peer, delete_mode=delete_mode)
    server.hand_off()
    print(f"riak-standin listening on {server.url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
