"""The protocol tween: what every response of a Cliquet service gets.

One tween, close to the server, handles in order: a body the server could
not read (408/413, see :mod:`cliquet.serving`), the ``Host`` header (the
configured public host, or a trusted one: 400 otherwise), CORS preflight,
the version prefix (307 redirect or 404 errno 116),
end of service (410 errno 202), body size limits (411/413), the storage
transaction of the request, and on the way out CORS (``Vary: Origin``
always), ``Backoff`` and ``Alert`` headers. Keeping this in one
place costs one function call per request instead of a chain of subscribers.
"""

from __future__ import annotations

import datetime
import re

import orjson
from pyramid import httpexceptions

from cliquet.errors import ERRORS, http_error, invalid_path_error
from cliquet.storage.exceptions import BackendError
from cliquet.events import AfterResourceChanged, EventCollector, ResourceChanged
from cliquet.views.errors import backend_error_response, internal_error

_EXPOSED_HEADERS = ", ".join([
    "Alert", "Backoff", "Retry-After", "Content-Length", "ETag", "Last-Modified",
    "Next-Page", "Total-Records", "Response-Behavior", "X-Request-Id",
])
_ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_VERSION_RE = re.compile(r"^/v(\d+)(/|$)")
#: paths answered without the version prefix too.
ROOT_PATHS = ("/__heartbeat__", "/__lbheartbeat__", "/__version__", "/__metrics__")
_BODY_METHODS = ("POST", "PUT", "PATCH")
_PREFLIGHT_VARY = ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
#: a Host header: a name or a bracketed IPv6 address, and an optional port.
_HOST_RE = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9_.\-]+)(?::\d{1,5})?")
#: what :mod:`cliquet.serving` puts in ``environ[BODY_ERROR]`` when it could
#: not read a request body: the body did not arrive in time, or is too large.
BODY_ERROR = "cliquet.body_error"
BODY_TIMEOUT, BODY_TOO_LARGE = "timeout", "too-large"


class _Rollback(Exception):
    """Carries an error response out of the storage transaction."""

    def __init__(self, response):
        self.response = response


def _parse_eos(value):
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        from pyramid.exceptions import ConfigurationError

        raise ConfigurationError(f"Invalid setting cliquet.eos = {value!r}: expected YYYY-MM-DD")


def host_name(host: str) -> str | None:
    """The name part of a ``Host`` header, lower-cased (``Example.com:8443``
    → ``example.com``, ``[::1]:80`` → ``[::1]``); ``None`` when it is not a
    valid host."""
    host = host.strip().lower()
    match = _HOST_RE.fullmatch(host)
    return match.group(1) if match else None


def host_trusted(name: str, trusted) -> bool:
    """Whether the host ``name`` is one of ``trusted``: exact names, or
    ``.example.com`` for that domain and its subdomains, or ``*`` for any."""
    for entry in trusted:
        if entry == "*" or entry == name:
            return True
        if entry.startswith(".") and (name.endswith(entry) or name == entry[1:]):
            return True
    return False


def add_vary(response, names) -> None:
    """Add the header ``names`` to the response's ``Vary`` (once each)."""
    vary = response.vary or ()
    missing = tuple(name for name in names if name not in vary)
    if missing:
        response.vary = tuple(vary) + missing


def protocol_tween_factory(handler, registry):
    """Build the tween with the settings read once."""
    settings = registry.settings
    prefix = "/v" + str(settings["cliquet.http_api_version"]).split(".")[0]
    major = prefix[2:]
    redirect = settings["cliquet.version_prefix_redirect_enabled"]
    origins = settings["cliquet.cors_origins"]
    cors_enabled = bool(origins)
    any_origin = "*" in origins
    # Credentials are allowed to the origins listed by name only: "*" lets
    # any page read answers, never with the user's credentials.
    allowed_origins = frozenset(origin for origin in origins if origin != "*")
    max_age = str(settings["cliquet.cors_max_age_seconds"])
    backoff = settings["cliquet.backoff"]
    backoff = str(backoff) if backoff else None
    max_body = settings["cliquet.max_request_body_size"]
    eos_date = _parse_eos(settings["cliquet.eos"])
    eos_message = settings["cliquet.eos_message"]
    eos_url = settings["cliquet.eos_url"]
    public_scheme = settings["cliquet.http_scheme"]
    public_host = settings["cliquet.http_host"]
    trusted_hosts = tuple(host.lower() for host in settings["cliquet.http_trusted_hosts"])

    def alert_header(code):
        alert = {"code": code}
        if eos_message:
            alert["message"] = eos_message
        if eos_url:
            alert["url"] = eos_url
        return orjson.dumps(alert).decode()

    def cors_headers(request, response):
        """CORS headers for the request's ``Origin``; ``Vary: Origin`` always,
        since whether they are there depends on it."""
        add_vary(response, ("Origin",))
        origin = request.environ.get("HTTP_ORIGIN")
        if origin and (origin in allowed_origins or any_origin):
            headers = response.headers
            headers["Access-Control-Allow-Origin"] = origin
            if origin in allowed_origins:
                headers["Access-Control-Allow-Credentials"] = "true"
            headers["Access-Control-Expose-Headers"] = _EXPOSED_HEADERS

    def preflight(request):
        response = registry.cliquet_response_factory(status=200)
        add_vary(response, _PREFLIGHT_VARY)
        origin = request.environ.get("HTTP_ORIGIN")
        if any_origin or origin in allowed_origins:
            headers = response.headers
            headers["Access-Control-Allow-Methods"] = _ALLOWED_METHODS
            requested = request.environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
            headers["Access-Control-Allow-Headers"] = requested or "Authorization, Content-Type, If-Match, If-None-Match"
            headers["Access-Control-Max-Age"] = max_age
        return response

    def check_host(environ):
        """Return a 400 for a ``Host`` header that is invalid or not trusted
        (when no public host is configured), or None."""
        host = environ.get("HTTP_HOST")
        if host is None:  # HTTP/1.0: URLs are built from the server's own address
            return None
        name = host_name(host)
        if name is not None and host_trusted(name, trusted_hosts):
            return None
        from cliquet.logs import loggable

        return http_error(httpexceptions.HTTPBadRequest(), errno=ERRORS.INVALID_PARAMETERS,
                          message=f"Host {loggable(host)!r} is not served here (see cliquet.http_host "
                                  "and cliquet.http_trusted_hosts)",
                          details=[{"location": "header", "name": "Host",
                                    "description": "not a trusted host"}])

    def body_error(environ):
        """Return the error for a body the server could not read, or None."""
        error = environ.get(BODY_ERROR)
        if error == BODY_TIMEOUT:
            timeout = settings["cliquet.request_body_timeout"]
            return http_error(httpexceptions.HTTPRequestTimeout(), errno=ERRORS.INVALID_PARAMETERS,
                              message=f"The request body did not arrive within {timeout:g} s",
                              details=[{"location": "body", "name": None,
                                        "description": "incomplete after the body timeout"}])
        if error == BODY_TOO_LARGE:
            return http_error(httpexceptions.HTTPRequestEntityTooLarge(), errno=ERRORS.REQUEST_TOO_LARGE,
                              message=f"Request body larger than {max_body} bytes")
        return None

    def check_request(request):
        """Return an error response for a request refused before routing, or None."""
        try:
            path = request.path_info
        except UnicodeDecodeError:  # %FF, an encoded surrogate: routing would fail with a bare 500
            return invalid_path_error("not valid UTF-8 once percent-decoded")
        if path == prefix or (path.endswith("/") and len(path) > len(prefix) + 1
                              and path.startswith(prefix + "/")):
            # /v1 → /v1/ and /v1/articles/ → /v1/articles
            location = request.application_url + (prefix + "/" if path == prefix else path.rstrip("/"))
            if request.query_string:
                location += "?" + request.query_string
            return httpexceptions.HTTPTemporaryRedirect(location=location)
        if not path.startswith(prefix + "/"):
            match = _VERSION_RE.match(path)
            if match and match.group(1) != major:
                return http_error(httpexceptions.HTTPNotFound(), errno=ERRORS.VERSION_NOT_AVAILABLE,
                                  message=f"API version {match.group(1)} is not available; this server speaks {prefix}")
            if redirect and not path.startswith(ROOT_PATHS):
                location = request.application_url + prefix + path
                if request.query_string:
                    location += "?" + request.query_string
                return httpexceptions.HTTPTemporaryRedirect(location=location)
        if eos_date is not None and datetime.date.today() >= eos_date:
            return http_error(httpexceptions.HTTPGone(), errno=ERRORS.SERVICE_DEPRECATED,
                              message="The service has reached its end of life")
        if request.method in _BODY_METHODS:
            length = request.environ.get("CONTENT_LENGTH")
            if not length:
                if "chunked" in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
                    return http_error(httpexceptions.HTTPLengthRequired(), errno=ERRORS.MISSING_CONTENT_LENGTH,
                                      message="A Content-Length header is required")
            elif not length.isdigit():
                return http_error(httpexceptions.HTTPBadRequest(), errno=ERRORS.INVALID_PARAMETERS,
                                  message="Invalid Content-Length header",
                                  details=[{"location": "header", "name": "Content-Length",
                                            "description": "not an integer"}])
            elif int(length) > max_body:
                return http_error(httpexceptions.HTTPRequestEntityTooLarge(), errno=ERRORS.REQUEST_TOO_LARGE,
                                  message=f"Request body larger than {max_body} bytes")
        return None

    def tween(request):
        environ = request.environ
        if public_scheme:
            environ["wsgi.url_scheme"] = public_scheme
        # an incomplete body first: nothing else about the request matters
        response = body_error(environ)
        if public_host:
            environ["HTTP_HOST"] = public_host
        elif response is None:
            # URLs (Next-Page, redirects, the hello view's) are built from the
            # Host header: only a trusted one may be reflected.
            response = check_host(environ)
            if response is not None:
                path = environ.get("PATH_INFO", "")
                if path.startswith(prefix + "/"):
                    path = path[len(prefix):]
                if path.startswith(ROOT_PATHS):
                    response = None  # health checks build no URL: any Host will do
        if response is None and request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            response = preflight(request)
            if cors_enabled:
                cors_headers(request, response)
            return response
        if response is None:
            response = check_request(request)
        if response is None:
            if request.method in _BODY_METHODS:
                # Read the body before anything can answer early (401, 503):
                # an HTTP/1.1 server closes a keep-alive connection whose
                # request body was left unread, and the client's next
                # request on it fails (Granian does, without a warning).
                request.body  # noqa: B018 - webob keeps it for the views
            path = request.path_info
            if path.startswith(prefix + "/"):
                path = path[len(prefix):]
            if path.startswith(ROOT_PATHS):
                # Never write, and must answer (the heartbeat saying which
                # backend fails) while the storage is unreachable.
                response = handler(request)
            else:
                response = _in_transaction(request, handler)
        if cors_enabled:
            cors_headers(request, response)
        if backoff:
            response.headers["Backoff"] = backoff
        if eos_date is not None:
            response.headers["Alert"] = alert_header(
                "hard-eol" if datetime.date.today() >= eos_date else "soft-eol")
        return response

    return tween


#: how many times a request is run again after a write conflict.
CONFLICT_RETRIES = 3


def _in_transaction(request, handler):
    """Run the request in a storage transaction, undone on any error status.

    Resource events are gathered while the request runs; ``ResourceChanged``
    is sent before the commit, ``AfterResourceChanged`` after it. A batch
    sub-request hands its events to the batch request instead, which sends
    them grouped, once.

    When the backend refuses a write because a concurrent transaction changed
    what this one read (:class:`~cliquet.storage.exceptions.ConflictError`),
    the whole request runs again: it then sees the new state (and, say,
    answers 412 to a stale ``If-Match``) instead of losing an update.
    """
    storage = getattr(request.registry, "storage", None)
    if storage is None:  # pragma: no cover - cliquet always sets one
        return handler(request)
    for attempt in range(CONFLICT_RETRIES + 1):
        response, events = _attempt(request, handler, storage)
        if not getattr(response, "cliquet_conflict", False) or attempt == CONFLICT_RETRIES:
            break
    if events is not None and getattr(request, "cliquet_batch_parent", None) is None:
        events.notify(request, AfterResourceChanged, swallow=True)
    return response


def _attempt(request, handler, storage):
    """One run of the request; returns ``(response, events or None if undone)``."""
    events = request.cliquet_events = EventCollector()
    parent = getattr(request, "cliquet_batch_parent", None)
    try:
        with storage.transaction():
            response = handler(request)
            if response.status_code >= 400:
                raise _Rollback(response)
            if parent is not None:
                parent.cliquet_events.merge(events)
            else:
                try:
                    events.notify(request, ResourceChanged)
                except BackendError as exc:
                    raise _Rollback(backend_error_response(request, exc))
                except Exception as exc:
                    raise _Rollback(internal_error(exc, request))
    except _Rollback as rollback:
        return rollback.response, None
    except BackendError as exc:  # the commit itself failed
        return backend_error_response(request, exc), None
    return response, events
