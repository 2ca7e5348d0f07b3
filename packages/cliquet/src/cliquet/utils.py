"""Small helpers shared by the views."""

from __future__ import annotations

import time

import orjson
from pyramid.response import Response


def json_response(request, data, status=200, headers=None):
    """Return a JSON :class:`~pyramid.response.Response` (serialised by orjson).

    orjson is 5-10x faster than the standard library on the payloads a list
    endpoint returns, and keeps ``str`` subclasses and unicode exact.
    """
    response = Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        charset=None)
    if headers:
        response.headers.update(headers)
    if request.method == "HEAD":
        response.app_iter = [b""]
    return response


def msec_time() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def strip_quotes(value: str) -> str:
    """``'"123"'`` → ``'123'``."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value
