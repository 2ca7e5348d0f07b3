"""Events: how plugins learn about what happens to records, without
subclassing anything.

* :class:`ResourceChanged` — records were created, updated or deleted. Sent
  inside the storage transaction, just before it commits: a listener that
  raises makes the request fail and the writes are undone.
* :class:`AfterResourceChanged` — the same, once the transaction committed.
  A listener that raises is logged and ignored: the write stands.
* :class:`ResourceRead` — records were read (only built when someone listens).

Events are grouped per resource and action: a batch of 25 creates sends one
``ResourceChanged`` with 25 impacted records. A failed request (or failed
batch sub-request) sends nothing. Subscribe with Pyramid's usual
``config.add_subscriber(listener, ResourceChanged)``.
"""

from __future__ import annotations

import enum
import logging

from zope.interface import implementedBy

logger = logging.getLogger("cliquet.events")


class ACTIONS(str, enum.Enum):
    """What happened to the records."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    READ = "read"


class _ResourceEvent:
    """Base of the resource events.

    :attr payload: ``{"action", "resource_name", "uri", "user_id", "timestamp"}``.
    :attr impacted_records: for writes, a list of ``{"old": ..., "new": ...}``
        (``old`` absent on create); for reads, a list of records.
    :attr request: the request (the batch request for batched writes).
    """

    def __init__(self, payload, impacted_records, request):
        self.payload = payload
        self.impacted_records = impacted_records
        self.request = request

    def __repr__(self):
        return (f"<{type(self).__name__} {self.payload['action']} {self.payload['resource_name']} "
                f"x{len(self.impacted_records)}>")


class ResourceChanged(_ResourceEvent):
    """Records changed; the transaction has not committed yet."""


class AfterResourceChanged(_ResourceEvent):
    """Records changed and the change is committed."""


class ResourceRead(_ResourceEvent):
    """Records were read."""


def has_listeners(registry, event_class) -> bool:
    """Whether anything subscribed to ``event_class`` (cached per registry)."""
    cache = registry.__dict__.setdefault("cliquet_event_listeners", {})
    if event_class not in cache:
        cache[event_class] = bool(registry.adapters.subscriptions([implementedBy(event_class)], None))
    return cache[event_class]


class EventCollector:
    """Gathers the changes of one request, grouped per (resource, action, uri)."""

    def __init__(self):
        self.groups: dict = {}

    def add(self, resource_name, action, uri, user_id, timestamp, impacted):
        """Record one impacted record (``{"old", "new"}``)."""
        key = (resource_name, action, uri, user_id)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = {"payload": {
                "action": action, "resource_name": resource_name, "uri": uri,
                "user_id": user_id, "timestamp": timestamp}, "impacted": []}
        group["payload"]["timestamp"] = max(group["payload"]["timestamp"], timestamp)
        group["impacted"].append(impacted)

    def merge(self, other: "EventCollector"):
        """Take the events of a successful batch sub-request."""
        for key, group in other.groups.items():
            mine = self.groups.get(key)
            if mine is None:
                self.groups[key] = group
            else:
                mine["impacted"].extend(group["impacted"])
                mine["payload"]["timestamp"] = max(mine["payload"]["timestamp"], group["payload"]["timestamp"])

    def notify(self, request, event_class, swallow=False):
        """Send one ``event_class`` per group."""
        if not self.groups or not has_listeners(request.registry, event_class):
            return
        for group in self.groups.values():
            event = event_class(dict(group["payload"]), group["impacted"], request)
            if not swallow:
                request.registry.notify(event)
                continue
            try:
                request.registry.notify(event)
            except Exception:
                logger.exception("A listener of %s failed (the write is committed)", event_class.__name__)


def notify_read(request, resource_name, uri, user_id, timestamp, records):
    """Send :class:`ResourceRead` if anyone listens."""
    if has_listeners(request.registry, ResourceRead):
        payload = {"action": ACTIONS.READ.value, "resource_name": resource_name, "uri": uri,
                   "user_id": user_id, "timestamp": timestamp}
        request.registry.notify(ResourceRead(payload, records, request))
