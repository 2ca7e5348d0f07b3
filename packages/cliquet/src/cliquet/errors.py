"""The errno table and the JSON error responses of the Cliquet protocol.

Every error answered by a Cliquet service, 404 and 405 included, has the body::

    {"code": 400, "errno": 107, "error": "Invalid parameters",
     "message": "...", "info": "...", "details": [...]}

``info`` and ``details`` are optional.
"""

from __future__ import annotations

import enum

import orjson
from pyramid import httpexceptions


class ERRORS(enum.IntEnum):
    """Predefined errno values, shared with every Cliquet 3.x client."""

    MISSING_AUTH_TOKEN = 104
    INVALID_AUTH_TOKEN = 105
    BADJSON = 106
    INVALID_PARAMETERS = 107
    MISSING_PARAMETERS = 108
    INVALID_POSTED_DATA = 109
    INVALID_RESOURCE_ID = 110
    MISSING_RESOURCE = 111
    MISSING_CONTENT_LENGTH = 112
    REQUEST_TOO_LARGE = 113
    MODIFIED_MEANWHILE = 114
    METHOD_NOT_ALLOWED = 115
    VERSION_NOT_AVAILABLE = 116
    CLIENT_REACHED_CAPACITY = 117
    FORBIDDEN = 121
    CONSTRAINT_VIOLATED = 122
    BACKEND = 201
    SERVICE_DEPRECATED = 202
    UNDEFINED = 999


#: errno used when an HTTP error is raised without one.
DEFAULT_ERRNO = {
    400: ERRORS.INVALID_PARAMETERS,
    401: ERRORS.MISSING_AUTH_TOKEN,
    403: ERRORS.FORBIDDEN,
    404: ERRORS.MISSING_RESOURCE,
    405: ERRORS.METHOD_NOT_ALLOWED,
    406: ERRORS.INVALID_PARAMETERS,
    409: ERRORS.CONSTRAINT_VIOLATED,
    410: ERRORS.SERVICE_DEPRECATED,
    411: ERRORS.MISSING_CONTENT_LENGTH,
    412: ERRORS.MODIFIED_MEANWHILE,
    413: ERRORS.REQUEST_TOO_LARGE,
    415: ERRORS.INVALID_PARAMETERS,
    429: ERRORS.CLIENT_REACHED_CAPACITY,
    503: ERRORS.BACKEND,
}


def json_error_body(code, errno=None, error=None, message=None, info=None, details=None):
    """Return the protocol's error envelope as a dict."""
    if errno is None:
        errno = DEFAULT_ERRNO.get(code, ERRORS.UNDEFINED)
    if error is None:
        error = httpexceptions.status_map[code].title if code in httpexceptions.status_map else "Error"
    body = {"code": code, "errno": int(errno), "error": error}
    if message is not None:
        body["message"] = message
    if info is not None:
        body["info"] = info
    if details is not None:
        body["details"] = details
    return body


def http_error(httpexception, errno=None, code=None, error=None, message=None, info=None, details=None):
    """Turn a Pyramid HTTP exception into a protocol error response.

    :param httpexception: an instance of a :mod:`pyramid.httpexceptions` class.
    :returns: the same exception, with the JSON error body set; raise it.
    """
    code = code or httpexception.code
    body = json_error_body(code, errno, error or httpexception.title, message, info, details)
    httpexception.body = orjson.dumps(body)
    httpexception.content_type = "application/json"
    httpexception.cliquet_errno = body["errno"]
    return httpexception


def _cut(text, length):
    """``text`` cut to ``length`` characters (with "…"): errors echo client
    input, and must not echo a megabyte of it."""
    if isinstance(text, str) and len(text) > length:
        return text[:length - 1] + "…"
    return text


def raise_invalid(location="body", name=None, description=None, errno=ERRORS.INVALID_PARAMETERS,
                  details=None, message=None):
    """Raise a 400 with ``details`` naming where the problem is.

    :param location: ``body``, ``querystring``, ``path`` or ``header``.
    :param name: the field or parameter at fault (dotted path for nested fields).
    :param description: a human-readable sentence.

    ``name`` and ``description`` are cut to 200 and 500 characters.
    """
    if details is None:
        details = [{"location": location, "name": _cut(name, 200), "description": _cut(description, 500)}]
    if message is None:
        message = "; ".join(
            f"{d['name']} in {d['location']}: {d['description']}" if d.get("name") else str(d["description"])
            for d in details
        )
    raise http_error(httpexceptions.HTTPBadRequest(), errno=errno, message=message, details=details)


def json_error_from_exception(exc):
    """Build a protocol error response from any :class:`HTTPException`.

    Exceptions already formatted by :func:`http_error` are returned unchanged.
    """
    if getattr(exc, "cliquet_errno", None) is not None:
        return exc
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else exc.explanation or None
    if exc.code == 405:
        allowed = exc.headers.get("Allow")
        message = "Method not allowed on this URL" + (f" (allowed: {allowed})" if allowed else "")
    response = http_error(exc, message=message or f"{exc.title}.")
    return response


def invalid_path_error(description):
    """A 400 errno 107 for a URL path the service cannot read (``details``
    name the ``path``): returned, not raised, since it is answered before
    routing."""
    return http_error(httpexceptions.HTTPBadRequest(), errno=ERRORS.INVALID_PARAMETERS,
                      message=f"Invalid URL path: {description}",
                      details=[{"location": "path", "name": None, "description": description}])
