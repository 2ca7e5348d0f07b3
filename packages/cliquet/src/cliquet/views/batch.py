"""``POST /v1/batch``: several requests in one.

Body::

    {"defaults": {"method": "POST", "headers": {...}},
     "requests": [{"method": "PUT", "path": "/articles/1", "headers": {...}, "body": {...}}, ...]}

Each sub-request goes through the whole stack (tweens included, so each one is
its own nested storage transaction: a failed sub-request leaves nothing
behind and never undoes a sibling that succeeded). The answer is always 200
with one entry per request, errors in place::

    {"responses": [{"status": 201, "path": "/v1/articles", "headers": {...}, "body": {...}}, ...]}

Bounded work: at most ``cliquet.batch_max_requests`` sub-requests, whose
bodies add up to at most ``cliquet.max_request_body_size`` bytes, and never a
batch inside a batch, nor an operational endpoint (``/__heartbeat__`` and
the others the protocol tween answers outside any transaction: inside the
batch's transaction, the heartbeat's checks waited for the very lock the
batch held). The recursion guard is on the *resolved route*, not
the path text (``/%62atch``, ``/v1/batch?x`` name the batch too): a
sub-request whose path routes to the batch refuses the whole batch, and the
batch view itself refuses to run as a sub-request (an alias route to it
included).
"""

from __future__ import annotations

import re
from urllib.parse import quote

import orjson
from pyramid import httpexceptions
from pyramid.interfaces import IRoutesMapper

from cliquet.errors import ERRORS, http_error, raise_invalid
from cliquet.resource.http import DEFAULT_JSON_DEPTH, loads_json
from cliquet.services import make_service
from cliquet.tweens import ROOT_PATHS
from cliquet.utils import json_response

batch = make_service(name="batch", path="/batch", description="Batch operations")

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_REQUEST_KEYS = {"method", "path", "headers", "body"}
#: headers of the batch request that sub-requests inherit unless they set them.
_INHERITED = ("Authorization", "Origin", "Accept-Language", "User-Agent")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_PATH_SAFE = "/?&=%:;@!$'()*+,~-._[]"
#: levels the batch envelope adds above a sub-request's body (object, list, object).
_ENVELOPE_DEPTH = 3


def _validate(body, max_requests):
    if not isinstance(body, dict):
        raise_invalid("body", None, "The body must be a JSON object")
    unknown = set(body) - {"defaults", "requests"}
    if unknown:
        raise_invalid("body", sorted(unknown)[0], "Unknown field")
    defaults = body.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - _REQUEST_KEYS:
        raise_invalid("body", "defaults", "Must be an object with method, path, headers or body")
    if "method" in defaults and (not isinstance(defaults["method"], str)
                                 or defaults["method"].upper() not in _METHODS):
        raise_invalid("body", "defaults.method", f"Must be one of {', '.join(_METHODS)}")
    if "path" in defaults and (not isinstance(defaults["path"], str) or not defaults["path"].startswith("/")):
        raise_invalid("body", "defaults.path", "Must be an absolute path")
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise_invalid("body", "requests", "Must be a non-empty list")
    if len(requests) > max_requests:
        raise_invalid("body", "requests", f"Number of requests is limited to {max_requests}")
    merged = []
    for i, sub in enumerate(requests):
        if not isinstance(sub, dict):
            raise_invalid("body", f"requests.{i}", "Must be an object")
        unknown = set(sub) - _REQUEST_KEYS
        if unknown:
            raise_invalid("body", f"requests.{i}.{sorted(unknown)[0]}", "Unknown field")
        item = {**defaults, **sub}
        item["headers"] = {**defaults.get("headers", {}), **sub.get("headers", {})} if (
            isinstance(defaults.get("headers", {}), dict) and isinstance(sub.get("headers", {}), dict)) else None
        if item["headers"] is None or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in item["headers"].items()):
            raise_invalid("body", f"requests.{i}.headers", "Must be an object of strings")
        if not all(_HEADER_NAME.fullmatch(k) and _HEADER_VALUE.fullmatch(v) for k, v in item["headers"].items()):
            raise_invalid("body", f"requests.{i}.headers", "Invalid header name or value")
        method = item.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise_invalid("body", f"requests.{i}.method", f"Must be one of {', '.join(_METHODS)}")
        item["method"] = method.upper()
        path = item.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise_invalid("body", f"requests.{i}.path", "Must be an absolute path")
        item["path"] = quote(path, safe=_PATH_SAFE)  # non-ASCII and controls percent-encoded
        merged.append(item)
    return merged


@batch.post(permission="__no_permission_required__")
def post_batch(request):
    """Run every sub-request and gather their answers."""
    if getattr(request, "cliquet_batch_parent", None) is not None:
        raise_invalid("path", None, "Recursive calls to the batch endpoint are not allowed")
    settings = request.registry.settings
    max_depth = settings.get("cliquet.json_max_depth") or DEFAULT_JSON_DEPTH
    body = loads_json(request.body or b"{}", max_depth + _ENVELOPE_DEPTH)
    requests = _validate(body, settings["cliquet.batch_max_requests"])
    prefix = "/v" + str(settings["cliquet.http_api_version"]).split(".")[0]
    subs = [_build(request, i, item, prefix) for i, item in enumerate(requests)]
    max_body = settings["cliquet.max_request_body_size"]
    if sum(len(sub.body) for sub, _ in subs) > max_body:
        raise http_error(httpexceptions.HTTPRequestEntityTooLarge(), errno=ERRORS.REQUEST_TOO_LARGE,
                         message=f"The bodies of the sub-requests add up to more than {max_body} bytes")
    # A run of creates in one collection reserves its timestamps at once
    # (one bump of the collection's counter instead of one each).
    expect = getattr(request.registry.storage, "expect_creates", None)
    runs = _create_runs(requests)
    responses = []
    for i, (sub, path) in enumerate(subs):
        if expect is not None and (i == 0 or runs[i - 1] == 1):  # a run starts here
            expect(runs[i])
        responses.append(_run(request, sub, path))
    return json_response(request, {"responses": responses})


def _create_runs(requests):
    """For each sub-request, how many ``POST`` to the same path with the same
    headers follow in a row from it, itself included (1 for any other)."""
    runs = [1] * len(requests)
    for i in range(len(requests) - 2, -1, -1):
        item, following = requests[i], requests[i + 1]
        if (item["method"] == following["method"] == "POST" and item["path"] == following["path"]
                and item["headers"] == following["headers"]):
            runs[i] = runs[i + 1] + 1
    return runs


def _build(parent, i, item, prefix):
    """``(sub-request, path)`` of ``item`` (the ``i``-th), refused if it
    would route to the batch itself or its path cannot be decoded."""
    path = item["path"]
    if not (path == prefix or path.startswith(prefix + "/")):
        path = prefix + path
    headers = {name: parent.headers[name] for name in _INHERITED if name in parent.headers}
    headers.update(item["headers"])
    kwargs = {"method": item["method"], "headers": headers, "base_url": parent.application_url}
    if "body" in item:
        kwargs["body"] = orjson.dumps(item["body"])
        headers.setdefault("Content-Type", "application/json")
    sub = type(parent).blank(path, **kwargs)  # the app's request class
    sub.registry = parent.registry
    sub.cliquet_batch_parent = parent
    mapper = parent.registry.getUtility(IRoutesMapper)
    try:
        route = mapper(sub)["route"]
    except UnicodeDecodeError:  # pyramid's URLDecodeError
        raise_invalid("body", f"requests.{i}.path", "Not valid UTF-8 once percent-decoded")
    # With a trailing slash, the protocol tween redirects to the batch.
    redirected = mapper.get_route(batch.name).match(sub.path_info.rstrip("/"))
    if (route is not None and route.name == batch.name) or redirected is not None:
        raise_invalid("body", f"requests.{i}.path", "Recursive calls to the batch endpoint are not allowed")
    if sub.path_info[len(prefix):].startswith(ROOT_PATHS):
        raise_invalid("body", f"requests.{i}.path", "Operational endpoints cannot be batched")
    return sub, path


def _run(parent, sub, path):
    response = parent.invoke_subrequest(sub, use_tweens=True)
    try:
        body = orjson.loads(response.body) if response.body else None
    except orjson.JSONDecodeError:
        body = response.text
    return {
        "status": response.status_code,
        "path": path,
        "headers": dict(response.headers),
        "body": body,
    }
