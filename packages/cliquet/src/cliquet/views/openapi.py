"""``GET /v1/__api__``: the OpenAPI 3.1 description of the service (no
authentication needed). Built once per application from what is registered
(:func:`cliquet.openapi.build_openapi`); ``servers`` names the URL the
request came to."""

from __future__ import annotations

from cliquet.services import add_service, make_service
from cliquet.utils import json_response

openapi = make_service(name="openapi", path="/__api__", description="OpenAPI description of this service")


@openapi.get(permission="__no_permission_required__")
def get_openapi(request):
    """The OpenAPI document, as JSON."""
    registry = request.registry
    document = getattr(registry, "cliquet_openapi_document", None)
    if document is None:
        from cliquet.openapi import build_openapi

        document = registry.cliquet_openapi_document = build_openapi(registry)
    return json_response(request, {**document, "servers": [{"url": request.application_url}]})


def includeme(config):
    """Register ``/v<major>/__api__``."""
    prefix = "v" + str(config.get_settings()["cliquet.http_api_version"]).split(".")[0]
    with config.route_prefix_context(prefix):
        add_service(config, openapi)
