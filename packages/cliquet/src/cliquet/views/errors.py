"""Exception views: every error becomes the protocol's JSON error body."""

from __future__ import annotations

import logging

from pyramid import httpexceptions
from pyramid.interfaces import ISecurityPolicy
from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config

from cliquet.errors import ERRORS, http_error, json_error_from_exception
from cliquet.storage.exceptions import BackendError, ConflictError

logger = logging.getLogger("cliquet")


@notfound_view_config()
def notfound(request):
    """404 errno 111, for unknown URLs and missing records alike."""
    context = request.exception
    if getattr(context, "cliquet_errno", None) is not None:
        return context
    return http_error(httpexceptions.HTTPNotFound(), errno=ERRORS.MISSING_RESOURCE,
                      message="The resource you are looking for could not be found.")


def unauthorized(request, message="Please authenticate yourself to use this endpoint."):
    """401: errno 105 when credentials were sent but unusable, else 104.

    A policy may keep why it refused them as a string in
    ``environ["cliquet.invalid_credentials"]`` (it becomes the message), and
    its ``forget(request)`` gives the ``WWW-Authenticate`` challenges (one
    header each: several policies side by side list them all).
    """
    reason = request.environ.get("cliquet.invalid_credentials")
    invalid = bool(reason) or (
        "HTTP_AUTHORIZATION" in request.environ and request.authenticated_userid is None
    )
    if isinstance(reason, str) and reason:
        message = reason
    errno = ERRORS.INVALID_AUTH_TOKEN if invalid else ERRORS.MISSING_AUTH_TOKEN
    response = http_error(httpexceptions.HTTPUnauthorized(), errno=errno, message=message)
    policy = request.registry.queryUtility(ISecurityPolicy)
    challenges = [value for name, value in (policy.forget(request) if hasattr(policy, "forget") else ())
                  if name.lower() == "www-authenticate"]
    if not challenges:
        realm = request.registry.settings.get("cliquet.project_name") or "Realm"
        challenges = [f'Basic realm="{realm}"']
    for value in challenges:
        response.headers.add("WWW-Authenticate", value)
    return response


@forbidden_view_config()
def forbidden(request):
    """401 when anonymous, 403 errno 121 when authenticated."""
    if request.authenticated_userid is None:
        return unauthorized(request)
    return http_error(httpexceptions.HTTPForbidden(), errno=ERRORS.FORBIDDEN,
                      message="This user cannot access this resource.")


@exception_view_config(httpexceptions.HTTPException)
def http_exception(context, request):
    """Any other HTTP exception, with its default errno (redirects and 304 as they are)."""
    if context.code < 400:
        return context
    if isinstance(context, httpexceptions.HTTPUnauthorized) and getattr(context, "cliquet_errno", None) is None:
        return unauthorized(request)
    return json_error_from_exception(context)


def backend_error_response(request, exc):
    """503 errno 201 with ``Retry-After``."""
    logger.error("Backend error: %s", exc, exc_info=exc)
    response = http_error(httpexceptions.HTTPServiceUnavailable(), errno=ERRORS.BACKEND,
                          message="Service temporary unavailable due to overloading or maintenance, "
                                  "please retry later.")
    response.headers["Retry-After"] = str(request.registry.settings["cliquet.retry_after_seconds"])
    response.cliquet_conflict = isinstance(exc, ConflictError)  # the protocol tween runs the request again
    return response


@exception_view_config(BackendError)
def backend_error(context, request):
    """A backend failed."""
    return backend_error_response(request, context)


@exception_view_config(Exception)
def internal_error(context, request):
    """Anything unexpected: 500 errno 999, the traceback goes to the log only."""
    from cliquet.logs import loggable

    logger.exception("Unexpected error on %s %s", loggable(request.method), loggable(request.path))
    return http_error(httpexceptions.HTTPInternalServerError(), errno=ERRORS.UNDEFINED,
                      message="A programmatic error occurred; it was logged.")
