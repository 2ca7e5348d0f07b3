"""Serving a WSGI application so that no client can hold its threads.

Granian's WSGI interface hands a request to a Python thread as soon as the
headers are in, and ``wsgi.input`` then waits on the network from that
thread: one client that announces ``Content-Length: 1000`` and sends one
byte holds it, with no timeout, and with one thread (the memory backends)
every other client waits.

:class:`BufferedWSGI` is an RSGI application (Granian's native interface,
``--interface rsgi``) that runs a WSGI application differently: the request
body is received on the event loop, asynchronously, under a deadline
(``cliquet.request_body_timeout``) and a size limit
(``cliquet.max_request_body_size``), and only a complete request is handed
to one of the application's threads (a pool of ``threads``). Responses are
handed back to Granian whole, which sends them on its own: a client that
reads slowly holds no thread either.

A body that does not arrive in time, or is too large, is not read further:
the application is called without it and with ``environ["cliquet.body_error"]``
set (:data:`cliquet.tweens.BODY_ERROR`), and Cliquet's tween answers 408
(or 413) with the usual JSON error, logs and headers; the connection is then
closed. ``cliquet serve`` uses it; ``cliquet.rsgi:application`` is the entry
point.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import sys

import orjson

from cliquet.tweens import BODY_ERROR, BODY_TIMEOUT, BODY_TOO_LARGE

logger = logging.getLogger("cliquet.serving")

__all__ = ["BufferedWSGI", "wsgi_environ"]

#: what the application answers when it fails without an answer of its own.
_CRASH = (500, [("Content-Type", "application/json")],
          orjson.dumps({"code": 500, "errno": 999, "error": "Internal Server Error",
                        "message": "A programmatic error occurred; it was logged."}))


def _split_address(text: str) -> tuple[str, str]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), port


def wsgi_environ(scope, body: bytes, multiprocess: bool = False) -> dict:
    """The PEP 3333 ``environ`` of an RSGI HTTP ``scope`` whose body is ``body``.

    The path is the one Granian decoded (percent escapes of invalid UTF-8
    become U+FFFD), given to WSGI as UTF-8 bytes read as latin-1, as every
    WSGI server does. Repeated headers are joined with ``,``.
    """
    server_name, server_port = _split_address(scope.server)
    client, _ = _split_address(scope.client)
    environ = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": "HTTP/" + scope.http_version,
        "REMOTE_ADDR": client,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
    }
    for name, value in scope.headers.items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if key in environ:
            environ[key] += "," + value
        else:
            environ[key] = value
    authority = getattr(scope, "authority", None)
    if authority and "HTTP_HOST" not in environ:  # HTTP/2 sends :authority instead
        environ["HTTP_HOST"] = authority
    return environ


class BufferedWSGI:
    """An RSGI application serving the WSGI application ``app`` with its
    request bodies read before a thread is taken (see the module's doc).

    :param app: the WSGI application.
    :param threads: how many requests the application runs at once.
    :param body_timeout: seconds a client has to send its whole body.
    :param max_body_size: bytes past which a body is not read (413).
    :param multiprocess: ``wsgi.multiprocess`` (several workers).
    """

    def __init__(self, app, threads: int = 1, body_timeout: float = 10.0,
                 max_body_size: int | None = None, multiprocess: bool = False):
        self.app = app
        self.threads = threads
        self.body_timeout = body_timeout
        self.max_body_size = max_body_size
        self.multiprocess = multiprocess
        self.executor = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="cliquet-app")

    @classmethod
    def from_app(cls, app, threads: int = 1, multiprocess: bool = False) -> BufferedWSGI:
        """Wrap a Cliquet (Pyramid) application, reading its limits from its
        settings (``cliquet.request_body_timeout``, ``cliquet.max_request_body_size``)."""
        settings = getattr(getattr(app, "registry", None), "settings", None) or {}
        return cls(app, threads=threads,
                   body_timeout=settings.get("cliquet.request_body_timeout") or 10.0,
                   max_body_size=settings.get("cliquet.max_request_body_size"),
                   multiprocess=multiprocess)

    def __rsgi_del__(self, loop):
        """Granian stops the worker: let the running requests finish."""
        self.executor.shutdown(wait=True)

    async def __rsgi__(self, scope, protocol):
        """Serve one request."""
        if scope.proto != "http":  # pragma: no cover - served with --no-ws
            return
        body, error = await self._receive(scope, protocol)
        if body is None:
            return  # the client went away
        environ = wsgi_environ(scope, body, self.multiprocess)
        if error is not None:
            environ[BODY_ERROR] = error
        loop = asyncio.get_running_loop()
        status, headers, content = await loop.run_in_executor(self.executor, self._call, environ)
        if error is not None:  # the rest of the body is still on the wire
            headers = [*headers, ("Connection", "close")]
        try:
            protocol.response_bytes(status, headers, content)
        except Exception:  # noqa: BLE001 - the client is gone; nothing to answer
            logger.debug("could not send the response", exc_info=True)

    async def _receive(self, scope, protocol):
        """``(body, None)``, ``(b"", error)`` for a body refused, or
        ``(None, None)`` when the client disconnected."""
        if scope.method in ("GET", "HEAD", "OPTIONS") and "content-length" not in scope.headers \
                and "transfer-encoding" not in scope.headers:
            return b"", None
        length = scope.headers.get("content-length")
        limit = self.max_body_size
        if limit is not None and length is not None and length.isdigit() and int(length) > limit:
            return b"", BODY_TOO_LARGE  # refused from the header alone (the app says 413)
        try:
            body = await asyncio.wait_for(self._read(protocol, limit), self.body_timeout)
        except asyncio.TimeoutError:
            return b"", BODY_TIMEOUT
        except Exception:  # noqa: BLE001 - Granian raises when the client disconnects
            logger.debug("request body lost", exc_info=True)
            return None, None
        if body is None:
            return b"", BODY_TOO_LARGE
        return body, None

    @staticmethod
    async def _read(protocol, limit):
        """The whole body, or ``None`` once it grows past ``limit``."""
        chunks, size = [], 0
        async for chunk in protocol:
            size += len(chunk)
            if limit is not None and size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _call(self, environ):
        """Run the WSGI application in this thread; ``(status, headers, body)``."""
        answer = []
        written = []

        def start_response(status, headers, exc_info=None):
            if exc_info is not None and answer:
                raise exc_info[1].with_traceback(exc_info[2])
            answer[:] = [int(status[:3]), [(str(name), str(value)) for name, value in headers]]
            return written.append

        try:
            result = self.app(environ, start_response)
            try:
                chunks = written + [chunk for chunk in result if chunk]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            logger.exception("The application failed on %s", environ.get("REQUEST_METHOD"))
            return _CRASH
        if not answer:
            return _CRASH
        return answer[0], answer[1], b"".join(chunks)
