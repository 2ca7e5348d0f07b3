"""The one module through which Cliquet uses Cornice.

Cornice describes services (a path and views per method); Cliquet registers
every endpoint through :func:`make_service` and :func:`add_service`, so that
replacing Cornice means changing this file only.
"""

from __future__ import annotations

from cornice import Service as _CorniceService
from cornice.util import current_service as _current_service
from pyramid import httpexceptions
from pyramid.decorator import reify
from pyramid.interfaces import IRequestExtensions
from pyramid.request import Request

from cliquet.errors import ERRORS, http_error


def _error_handler(request):
    """Turn Cornice's accumulated ``request.errors`` into a protocol error."""
    errors = request.errors
    details = [
        {"location": e.get("location"), "name": e.get("name"),
         "description": e["description"].decode() if isinstance(e.get("description"), bytes) else e.get("description")}
        for e in errors
    ]
    status = getattr(errors, "status", 400)
    exc = httpexceptions.status_map.get(status, httpexceptions.HTTPBadRequest)()
    message = "; ".join(str(d["description"]) for d in details) or None
    return http_error(exc, errno=ERRORS.INVALID_PARAMETERS, message=message, details=details)


def make_service(name, path, description="", **kwargs):
    """Return a service: a named path whose views are added per method.

    :param name: unique route name.
    :param path: URL pattern below the version prefix (``/articles/{id}``).
    """
    kwargs.setdefault("cors_enabled", False)  # CORS is done for every response by cliquet.tweens
    kwargs.setdefault("error_handler", _error_handler)
    return _CorniceService(name=name, path=path, description=description, **kwargs)


def add_service(config, service):
    """Register ``service`` and its views in ``config``."""
    config.add_cornice_service(service)


class CliquetRequest(Request):
    """The request class of Cliquet applications.

    Its lazily computed attributes are class-level properties: attributes
    added with ``config.add_request_method(..., reify=True)`` make Pyramid
    build a new class for every request, which cost ~10 % of a GET.
    """

    @reify
    def current_service(self):
        """The Cornice service matched by this request (what Cornice adds)."""
        return _current_service(self)

    @reify
    def principals(self):
        """The caller's principals (see :func:`cliquet.authentication.request_principals`)."""
        from cliquet.authentication import request_principals

        return request_principals(self)


def includeme(config):
    """Include Cornice with Cliquet's request class."""
    config.include("cornice")
    config.set_request_factory(CliquetRequest)

    def drop_per_request_properties():
        extensions = config.registry.queryUtility(IRequestExtensions)
        if extensions is not None:
            for name in ("current_service", "principals"):
                if name in extensions.descriptors and hasattr(CliquetRequest, name):
                    del extensions.descriptors[name]

    config.action(None, drop_per_request_properties, order=10_001)
