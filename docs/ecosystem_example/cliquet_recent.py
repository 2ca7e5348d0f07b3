"""cliquet_recent: the latest changes of each resource, at /v1/recent/{resource}.

The feature example of the documentation ("Writing an ecosystem package"),
run by docs/tests. An application adds it after ``cliquet.initialize()``::

    config.include("cliquet_recent")
"""

from pyramid.httpexceptions import HTTPUnauthorized

from cliquet.events import ACTIONS, AfterResourceChanged
from cliquet.services import add_service, make_service
from cliquet.settings import Setting, as_int, declare_settings
from cliquet.utils import json_response

SETTINGS = {
    "recent_size": Setting(10, as_int, doc="How many changes are kept per user and resource."),
}

recent = make_service(name="recent", path="/recent/{resource_name}",
                      description="The caller's latest changes to a resource")


def cache_key(user_id, resource_name):
    """Where the changes of one user on one resource are kept."""
    return f"recent:{user_id}:{resource_name}"


def remember_changes(event):
    """Listener: put the committed changes at the front of the list."""
    registry = event.request.registry
    payload = event.payload
    key = cache_key(payload["user_id"], payload["resource_name"])
    changes = registry.cache.get(key) or []
    for impacted in event.impacted_records:
        record = impacted.get("new") or impacted["old"]
        changes.insert(0, {"action": ACTIONS(payload["action"]).value,
                           "id": record["id"], "last_modified": record["last_modified"]})
    registry.cache.set(key, changes[: registry.settings["cliquet.recent_size"]])


@recent.get(permission="__no_permission_required__")
def get_recent(request):
    """The caller's latest changes, newest first."""
    if request.authenticated_userid is None:
        raise HTTPUnauthorized()
    key = cache_key(request.authenticated_userid, request.matchdict["resource_name"])
    return json_response(request, {"data": request.registry.cache.get(key) or []})


def cache_answers(request):
    """Heartbeat check: the feature needs the cache."""
    return request.registry.cache.heartbeat()


def includeme(config):
    """Settings, listener, endpoint, capability and heartbeat of the feature.

    Only registers; Pyramid runs it once per configuration, however many
    times it is included."""
    declare_settings(config, SETTINGS)
    config.add_subscriber(remember_changes, AfterResourceChanged)
    with config.route_prefix_context("v1"):
        add_service(config, recent)
    config.add_api_capability("recent", description="The latest changes of each resource",
                              url="https://example.com/cliquet-recent")
    config.add_heartbeat_check("recent", cache_answers)
