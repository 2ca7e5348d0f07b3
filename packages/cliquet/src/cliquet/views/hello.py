"""``GET /v1/``: what this service is, and who is calling."""

from __future__ import annotations

from cliquet.services import make_service
from cliquet.settings import public_settings
from cliquet.utils import json_response

hello = make_service(name="hello", path="/", description="Welcome")

PROTOCOL_VERSION = "2"


@hello.get(permission="__no_permission_required__")
def get_hello(request):
    """Project name and versions, URL, public settings, capabilities, user."""
    registry = request.registry
    settings = registry.settings
    data = {
        "project_name": settings["cliquet.project_name"],
        "project_version": settings["cliquet.project_version"],
        "http_api_version": settings["cliquet.http_api_version"],
        "project_docs": settings["cliquet.project_docs"],
        "cliquet_protocol_version": PROTOCOL_VERSION,
        "url": request.route_url("hello"),
        "settings": public_settings(registry),
        "capabilities": dict(getattr(registry, "api_capabilities", {})),
    }
    userid = request.authenticated_userid
    if userid is not None:
        data["user"] = {"id": userid}
    return json_response(request, data)
