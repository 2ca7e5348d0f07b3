"""HTTP details of resource requests: content negotiation, JSON bodies and
``If-Match`` / ``If-None-Match`` preconditions."""

from __future__ import annotations

import orjson
from pyramid import httpexceptions

from cliquet.errors import ERRORS, http_error, raise_invalid
from cliquet.utils import strip_quotes

_JSON_TYPES = ("application/json", "application/merge-patch+json")
ANY = "*"


def check_accept(request) -> None:
    """406 unless the client accepts JSON (a missing ``Accept`` accepts anything)."""
    accept = request.environ.get("HTTP_ACCEPT")
    if not accept or "json" in accept or "*/*" in accept or "application/*" in accept:
        return
    raise http_error(httpexceptions.HTTPNotAcceptable(), errno=ERRORS.INVALID_PARAMETERS,
                     message="This endpoint only answers application/json",
                     details=[{"location": "header", "name": "Accept",
                               "description": "Accept header should include application/json"}])


def read_json_body(request):
    """Return the parsed JSON body (``{}`` when empty).

    :raises: 415 for a non-JSON ``Content-Type``, 400 errno 106 for malformed
        JSON, 400 errno 107 when the body is not an object.
    """
    body = request.body
    if not body:
        return {}
    content_type = request.environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        raise http_error(httpexceptions.HTTPUnsupportedMediaType(), errno=ERRORS.INVALID_PARAMETERS,
                         message="Content-Type must be application/json",
                         details=[{"location": "header", "name": "Content-Type",
                                   "description": f"Unsupported content type {content_type or 'none'!r}"}])
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise_invalid("body", None, f"Invalid JSON: {exc}", errno=ERRORS.BADJSON)
    if not isinstance(parsed, dict):
        raise_invalid("body", None, "The body must be a JSON object")
    return parsed


def parse_precondition(request, header):
    """Return ``None``, ``ANY`` or the integer timestamp of a precondition header."""
    value = request.environ.get("HTTP_" + header.upper().replace("-", "_"))
    if value is None:
        return None
    value = value.strip()
    if value == ANY:
        return ANY
    try:
        return int(strip_quotes(value))
    except ValueError:
        raise_invalid("header", header, 'Must be a quoted timestamp ("1234") or *')


def modified_meanwhile(current=None, timestamp=None):
    """A 412 errno 114, with the current record (if any) in ``details.existing``."""
    details = {"existing": current} if current is not None else None
    response = http_error(httpexceptions.HTTPPreconditionFailed(), errno=ERRORS.MODIFIED_MEANWHILE,
                          message="Resource was modified meanwhile", details=details)
    if timestamp is not None:
        response.headers["ETag"] = f'"{timestamp}"'
    return response


def check_preconditions(request, timestamp, current=None, exists=True):
    """Apply ``If-Match`` / ``If-None-Match`` to an object with ``timestamp``.

    :param exists: whether the record (or collection) exists.
    :raises: 412 (errno 114) when a precondition fails; 304 for a read whose
        ``If-None-Match`` matches.
    """
    if_match = parse_precondition(request, "If-Match")
    if if_match is not None:
        if not exists or (if_match != ANY and if_match != timestamp):
            raise modified_meanwhile(current, timestamp if exists else None)
    if_none_match = parse_precondition(request, "If-None-Match")
    if if_none_match is not None and exists and (if_none_match == ANY or if_none_match == timestamp):
        if request.method in ("GET", "HEAD"):
            response = httpexceptions.HTTPNotModified()
            response.headers["ETag"] = f'"{timestamp}"'
            raise response
        raise modified_meanwhile(current, timestamp)


def http_date(timestamp_ms: int) -> str:
    """An HTTP-date from a millisecond timestamp (for ``Last-Modified``)."""
    from email.utils import formatdate

    return formatdate(timestamp_ms / 1000.0, usegmt=True)
