"""HTTP details of resource requests: content negotiation, JSON bodies and
``If-Match`` / ``If-None-Match`` preconditions.

Every JSON body is read by :func:`loads_json` within limits that keep it
harmless further on: at most ``cliquet.json_max_depth`` levels of nesting
(Python recursion in merge-patch and orjson's serialisation stop near 255
and 1 000 levels) and integers within 64 bits (what every backend, indexer
and client stores exactly).
"""

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


#: the 64-bit signed range of integers in JSON bodies.
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
#: the highest ``cliquet.json_max_depth``: a response nests a record up to
#: six levels deeper than its body did (a list inside a batch) and must stay
#: within orjson's 254 levels.
MAX_JSON_DEPTH = 200
#: the default ``cliquet.json_max_depth``.
DEFAULT_JSON_DEPTH = 64


def as_json_depth(value):
    """Setting converter: an integer between 1 and :data:`MAX_JSON_DEPTH`."""
    depth = int(value)
    if isinstance(value, bool) or not 1 <= depth <= MAX_JSON_DEPTH:
        raise ValueError(f"expected an integer between 1 and {MAX_JSON_DEPTH}")
    return depth


def _dotted(path) -> str:
    name = ".".join(str(part) for part in path)
    return name if len(name) <= 200 else name[:199] + "…"


def json_limits_violation(value, max_depth: int):
    """Return ``(dotted path, description)`` of the first place where ``value``
    nests deeper than ``max_depth`` containers or holds an integer outside
    64 bits, or ``None``. Iterative: any depth is walked without recursion.
    """
    # Each entry is (container, depth, path of its parent, its key): the
    # path of a container is only built when it has children to walk, so a
    # body of 100 000 empty objects costs no path at all.
    stack = [(value, 1, (), None)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth, parent, key = stack.pop()
        path = parent if key is None else (*parent, key)
        if depth > max_depth:
            return _dotted(path), f"Nested deeper than {max_depth} levels"
        for key, child in (node.items() if isinstance(node, dict) else enumerate(node)):
            if isinstance(child, (dict, list)):
                if child or depth + 1 > max_depth:
                    stack.append((child, depth + 1, path, key))
            elif type(child) is int and not INT64_MIN <= child <= INT64_MAX:
                return _dotted((*path, key)), "Integer outside the 64-bit range"
    if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
        return "", "Integer outside the 64-bit range"
    return None


def loads_json(raw: bytes, max_depth: int, location: str = "body"):
    """Parse ``raw`` as JSON within the limits above.

    :raises: 400 errno 106 for malformed JSON (invalid UTF-8, lone
        surrogates and infinite numbers included), 400 errno 107 naming the
        place that nests too deep or holds an integer outside 64 bits.
    """
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson's own limit, past any allowed setting
            raise_invalid(location, None, f"Nested deeper than {max_depth} levels")
        raise_invalid(location, None, f"Invalid JSON: {exc}", errno=ERRORS.BADJSON)
    problem = json_limits_violation(parsed, max_depth)
    if problem is not None:
        raise_invalid(location, problem[0] or None, problem[1])
    return parsed


def read_json_body(request):
    """Return the parsed JSON body (``{}`` when empty), read by
    :func:`loads_json` with ``cliquet.json_max_depth``.

    :raises: 415 for a non-JSON ``Content-Type``, 400 errno 106 for malformed
        JSON, 400 errno 107 when the body is not an object or is past the
        limits of :func:`loads_json`.
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
    parsed = loads_json(body, request.registry.settings.get("cliquet.json_max_depth") or DEFAULT_JSON_DEPTH)
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


def check_preconditions(request, timestamp, current=None, exists=True, none_match_any=True):
    """Apply ``If-Match`` / ``If-None-Match`` to an object with ``timestamp``.

    :param exists: whether the record (or collection) exists.
    :param none_match_any: whether ``If-None-Match: *`` is about this object;
        ``False`` for a ``POST`` on a collection, where it is about the record
        being created (checked against that record's id instead).
    :raises: 412 (errno 114) when a precondition fails; 304 for a read whose
        ``If-None-Match`` matches.
    """
    if_match = parse_precondition(request, "If-Match")
    if if_match is not None:
        if not exists or (if_match != ANY and if_match != timestamp):
            raise modified_meanwhile(current, timestamp if exists else None)
    if_none_match = parse_precondition(request, "If-None-Match")
    if if_none_match == ANY and not none_match_any:
        return
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
