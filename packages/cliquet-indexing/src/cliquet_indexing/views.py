"""The search endpoint: ``POST /v1/search/{resource_name}`` with a query body,
``GET /v1/search/{resource_name}?q=words`` for the simple form.
``{resource_name}`` is the resource's name (``article``) or its collection
path (``articles``).

The answer is ``{"data": [records]}`` (plus whatever the indexer adds, e.g.
Elasticsearch ``aggregations``), with ``Total-Records`` giving the number of
matches within what the caller may read.

Errors: 401 anonymous, 404 (errno 111) unknown or non-indexed resource, 400
(errno 107, with ``details``) malformed query — or one past a limit of
:class:`~cliquet_indexing.query.Limits`, or one the indexer refuses or
stops at ``cliquet.search_timeout`` —, 503 (errno 201) indexer down.
"""

from __future__ import annotations

from pyramid import httpexceptions

from cliquet.errors import ERRORS, http_error, raise_invalid
from cliquet.resource.http import read_json_body
from cliquet.services import add_service, make_service
from cliquet.utils import json_response

from cliquet_indexing.listeners import is_indexed, resolve_resource
from cliquet_indexing.query import InvalidQuery, simple_query

#: query-string parameters of the GET form.
GET_PARAMETERS = ("q", "size", "from")
#: where the problems of the GET form's body are, in its query string.
GET_NAMES = {"query.multi_match.query": "q"}


def _not_found(resource_name):
    return http_error(httpexceptions.HTTPNotFound(), errno=ERRORS.MISSING_RESOURCE,
                      message=f"No searchable resource named {resource_name!r}.",
                      details=[{"location": "path", "name": "resource_name",
                                "description": f"{resource_name!r} is not an indexed resource"}])


def _query_params(request) -> dict:
    """The query string, split on ``&`` only and decoded strictly: text
    that is not UTF-8 (``%FF``, an encoded surrogate) is a 400, not a 500
    nor a silently replaced character."""
    from urllib.parse import parse_qsl

    try:
        return dict(parse_qsl(request.environ.get("QUERY_STRING", ""), keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise_invalid("querystring", None, "the query string is not valid UTF-8 once percent-decoded")


def _get_body(request) -> dict:
    """Turn ``?q=&size=&from=`` into a query body."""
    params = _query_params(request)
    details = [{"location": "querystring", "name": name, "description": "unknown parameter "
                f"(expected one of {', '.join(GET_PARAMETERS)})"} for name in params if name not in GET_PARAMETERS]
    body = simple_query(params["q"]) if params.get("q", "").strip() else {}
    for name in ("size", "from"):
        if name in params:
            try:
                body[name] = int(params[name])
            except ValueError:
                details.append({"location": "querystring", "name": name, "description": "must be an integer"})
    if details:
        raise_invalid(details=details)
    return body


def search(request):
    """Search the records of ``resource_name`` the caller may read."""
    from cliquet.views.errors import unauthorized

    if request.authenticated_userid is None:
        raise unauthorized(request)
    segment = request.matchdict["resource_name"]
    resource_name = resolve_resource(request.registry, segment)
    if resource_name is None or not is_indexed(request.registry, resource_name):
        raise _not_found(segment)
    body = read_json_body(request) if request.method == "POST" else _get_body(request)
    indexer = request.registry.indexer
    try:
        query = indexer.validate_query(body)
        # A backend may refuse what the portable check let through (say, a
        # sort on an Elasticsearch text field): that is a 400 too.
        result = indexer.search(resource_name, query, request.principals)
    except InvalidQuery as exc:
        details = exc.details
        if request.method != "POST":
            details = [dict(d, location="querystring", name=GET_NAMES.get(d["name"], d["name"])) for d in details]
        raise_invalid(details=details, message=f"Invalid search query: {exc}")
    payload = {"data": result.records}
    payload.update(result.extra)
    return json_response(request, payload, headers={"Total-Records": str(result.total)})


search_service = make_service(name="search", path="/search/{resource_name}",
                              description="Search the records of a resource")
search_service.add_view("POST", search, permission="__no_permission_required__")
search_service.add_view("GET", search, permission="__no_permission_required__")


def add_search_service(config):
    """Register the search service (call inside the version's route prefix)."""
    add_service(config, search_service)
