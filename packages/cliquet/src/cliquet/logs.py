"""Request logs: one line per request, as JSON or as readable text.

``config.include("cliquet.logs")`` (done by Cliquet itself) adds a tween
that, once the response is known, logs one line to the standard library's
``cliquet.request`` logger: method, path, route, status, duration in
milliseconds, user id, request id and, for an error, its ``errno``.

* ``cliquet.logging_renderer = json`` (default) — one JSON object per line,
  what log shippers ingest;
* ``console`` — a short readable line for development;
* ``off`` — no tween at all: nothing is measured, nothing costs.

The request id is the incoming ``X-Request-Id`` header when it is sane (1 to
128 letters, digits, ``.``, ``_``, ``:`` or ``-``), 32 random hex digits
otherwise;
it is sent back in the response's ``X-Request-Id`` header and available as
``request.environ["cliquet.request_id"]``. Batch sub-requests are logged with
the id of their batch.

Lines are ordinary :mod:`logging` records (the fields are also on the record
as ``record.cliquet_request``): ``cliquet.logging_level`` sets the logger's
level and, unless the logging configuration already put a handler on
``cliquet.request`` itself, Cliquet gives that logger a handler that writes
the rendered line alone to standard error, without propagating to the root
logger's (prefixing) handlers.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time

import orjson
from pyramid.tweens import INGRESS

from cliquet.settings import Setting, declare_settings

LOGGER_NAME = "cliquet.request"
REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
RENDERERS = ("json", "console", "off")


def _as_renderer(value):
    text = str(value).strip().lower()
    if text not in RENDERERS:
        raise ValueError(f"expected one of {', '.join(RENDERERS)}")
    return text


def _as_level(value):
    text = str(value).strip().upper()
    level = logging.getLevelName(text)
    if not isinstance(level, int):
        raise ValueError("expected a logging level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    return text


LOGGING_SETTINGS = {
    "logging_renderer": Setting("json", _as_renderer,
                                doc="Request log lines: json (one object per line), console (readable) or off."),
    "logging_level": Setting("INFO", _as_level,
                             doc="Level of the cliquet.request logger (5xx lines are logged at ERROR)."),
}


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at emit time (so that
    test runners that swap it, and daemonised servers, keep working)."""

    def __init__(self):
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it
        pass

    def emit(self, record):
        """Write the rendered line as it is (standard error is line-buffered)."""
        try:
            msg = record.msg if isinstance(record.msg, str) and not record.args else self.format(record)
            sys.stderr.write(msg + "\n")
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)

    def write_line(self, line: str) -> None:
        """Write ``line`` without a :class:`logging.LogRecord` (the request
        log's fast path, when this handler is the logger's only one)."""
        try:
            with self.lock:
                sys.stderr.write(line + "\n")
        except Exception:  # pragma: no cover - logging must never raise
            pass


def request_id(environ) -> str:
    """Return the request id of ``environ``: a sane incoming ``X-Request-Id``
    or 32 random hex digits, remembered in ``environ["cliquet.request_id"]``."""
    rid = environ.get("cliquet.request_id")
    if rid is None:
        incoming = environ.get(_REQUEST_ID_ENVIRON)
        rid = incoming if incoming and _REQUEST_ID_RE.fullmatch(incoming) else os.urandom(16).hex()
        environ["cliquet.request_id"] = rid
    return rid


def response_errno(response):
    """The ``errno`` of an error response, or ``None``."""
    errno = getattr(response, "cliquet_errno", None)
    if errno is not None:
        return int(errno)
    if response.status_code < 400 or "json" not in (response.content_type or ""):
        return None
    try:
        body = orjson.loads(response.body)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None
    errno = body.get("errno") if isinstance(body, dict) else None
    return errno if isinstance(errno, int) else None


_SECOND = [-1, ""]  # the last second formatted, and its text


def _timestamp(now: float) -> str:
    second = int(now)
    if second != _SECOND[0]:
        _SECOND[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND[0] = second
    return f"{_SECOND[1]}.{int(now * 1000) % 1000:03d}Z"


def loggable(text) -> str:
    """``text`` safe to put in a log line: every character that is not
    printable (line breaks, other controls, bidirectional overrides, lone
    surrogates, …) and the backslash become Python-style escapes (``\\n``,
    ``\\x1b``, ``\\u202e``), so request data can neither add lines to a log
    nor disguise one. ``None`` stays ``None``."""
    if text is None:
        return None
    text = str(text)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(char if char.isprintable() and char != "\\" else _escape(char) for char in text)


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if code < 0x100:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def render_json(fields: dict) -> str:
    """One JSON object on one line, every character of it printable: the
    characters JSON may leave raw but that tools read as line breaks or that
    reorder text (``U+0085``, ``U+2028``, bidirectional overrides, …) are
    written as ``\\uXXXX`` escapes, which decode to the same values."""
    line = orjson.dumps(fields).decode()
    if line.isprintable():
        return line
    return "".join(char if char.isprintable() else _json_escape(char) for char in line)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def render_console(fields: dict) -> str:
    """A readable line: ``12:00:01.042 GET /v1/articles 200 1.8ms user=… id=…``.

    Method, path and user id come from the request: they are escaped with
    :func:`loggable`, so that they cannot start a line of their own.
    """
    clock = fields["time"][11:23]
    line = (f"{clock} {loggable(fields['method'])} {loggable(fields['path'])} {fields['status']} "
            f"{fields['duration_ms']:.1f}ms")
    if "errno" in fields:
        line += f" errno={fields['errno']}"
    line += f" user={loggable(fields['user_id']) or '-'} id={fields['request_id']}"
    return line


def _userid(request):
    try:
        return request.authenticated_userid
    except Exception:  # a broken security policy must not break logging
        return None


def _sole_handler(logger):
    """Our stderr handler when it is all ``logger`` writes to (no other
    handler, no filter, no propagation): lines then skip the
    :class:`logging.LogRecord`, which costs more than the rest of the line."""
    handlers = logger.handlers
    if len(handlers) != 1 or logger.propagate or logger.filters:
        return None
    own = handlers[0]
    if not isinstance(own, _StderrHandler) or own.filters:
        return None
    return own


def request_log_tween_factory(handler, registry):
    """The tween that times each request and logs its line.

    The line is built once the response is known, from what the request
    already holds; when Cliquet's own stderr handler is the only place it
    goes (the default), it is written without a :class:`logging.LogRecord`
    (see :func:`_sole_handler`), otherwise it is an ordinary log record."""
    settings = registry.settings
    render = render_console if settings["cliquet.logging_renderer"] == "console" else render_json
    logger = logging.getLogger(LOGGER_NAME)
    info, error = logging.INFO, logging.ERROR
    perf_counter = time.perf_counter
    wall = time.time

    def log_line(request, status, duration, response=None):
        level = error if status >= 500 else info
        if not logger.isEnabledFor(level):
            return
        environ = request.environ
        parent = getattr(request, "cliquet_batch_parent", None)
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if not path.isascii():  # WSGI paths are bytes decoded as latin-1
            path = path.encode("latin-1", "replace").decode("utf-8", "replace")
        fields = {
            "time": _timestamp(wall()),
            "level": logging.getLevelName(level),
            "method": request.method,
            "path": path,
            "route": getattr(getattr(request, "matched_route", None), "name", None),
            "status": status,
            "duration_ms": round(duration * 1000, 3),
            "user_id": _userid(request),
            "request_id": environ["cliquet.request_id"],
        }
        if parent is not None:
            fields["batch"] = True
        if status >= 400:
            errno = response_errno(response) if response is not None else 999
            if errno is not None:
                fields["errno"] = errno
        sole = _sole_handler(logger)
        if sole is not None:
            if level >= sole.level:
                sole.write_line(render(fields))
            return
        # makeRecord + handle: what Logger.log does, without looking for the
        # caller's frame (always this function)
        record = logger.makeRecord(LOGGER_NAME, level, "", 0, render(fields), None, None,
                                   "log_line", {"cliquet_request": fields})
        logger.handle(record)

    def tween(request):
        environ = request.environ
        parent = getattr(request, "cliquet_batch_parent", None)
        if parent is not None and "cliquet.request_id" not in environ:
            environ["cliquet.request_id"] = parent.environ.get("cliquet.request_id") or request_id(environ)
        rid = request_id(environ)
        start = perf_counter()
        try:
            response = handler(request)
        except Exception:
            log_line(request, 500, perf_counter() - start)
            raise
        log_line(request, response.status_code, perf_counter() - start, response)
        response.headerlist.append((REQUEST_ID_HEADER, rid))  # cheaper than headers[...] = rid
        return response

    return tween


def _own_handler(logger):
    return next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)


def configure_logger(level: str) -> logging.Logger:
    """Set ``cliquet.request``'s level; give it a stderr handler (and stop
    propagation) unless the logging configuration put handlers of its own on it."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    foreign = [h for h in logger.handlers if not isinstance(h, _StderrHandler)]
    if not foreign and _own_handler(logger) is None:
        logger.addHandler(_StderrHandler())
        logger.propagate = False
    return logger


def includeme(config):
    """Declare the logging settings and add the request log tween (unless off)."""
    declare_settings(config, LOGGING_SETTINGS)
    settings = config.get_settings()
    if settings["cliquet.logging_renderer"] == "off":
        return
    configure_logger(settings["cliquet.logging_level"])
    config.add_tween("cliquet.logs.request_log_tween_factory", under=INGRESS)
