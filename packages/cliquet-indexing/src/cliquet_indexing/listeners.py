"""The listener that indexes every committed record change.

Subscribed to :class:`cliquet.events.AfterResourceChanged`: it runs once the
storage transaction committed, so the index never holds a change that was
rolled back. A batch of writes arrives as one event per resource and action,
and is indexed in one bulk call.

When the indexer fails the write still succeeds (storage is the truth): the
change is queued in the :class:`~cliquet_indexing.retry.RetryQueue`, which
replays it in the background; while the indexer is down, writes queue their
changes without calling it, so they do not wait on it.
"""

from __future__ import annotations

import logging

from cliquet_indexing.retry import operations_of

logger = logging.getLogger("cliquet_indexing")


def resolve_resource(registry, segment: str) -> str | None:
    """Return the name of the resource ``segment`` designates in a search URL:
    its name (``article``) or its collection path (``articles``)."""
    resources = getattr(registry, "cliquet_resources", {})
    if segment in resources:
        return segment
    for name, resource_cls in resources.items():
        if resource_cls.collection_path.strip("/") == segment:
            return name
    return None


def is_indexed(registry, resource_name: str) -> bool:
    """Whether the records of ``resource_name`` are indexed (and searchable).

    Every resource is, unless ``cliquet.indexing_resources`` lists some; an
    :class:`~cliquet_indexing.resource.IndexedResource` always is.
    """
    resource_cls = getattr(registry, "cliquet_resources", {}).get(resource_name)
    if resource_cls is None:
        return False
    if getattr(resource_cls, "indexed", False):
        return True
    chosen = registry.settings.get("cliquet.indexing_resources")
    return chosen is None or "*" in chosen or resource_name in chosen


def on_resource_changed(event) -> None:
    """Index the impacted records of ``event`` (unindex deleted ones)."""
    request = event.request
    registry = request.registry
    resource_name = event.payload["resource_name"]
    if getattr(registry.indexer, "transactional", False):
        return  # indexed before the commit, in the storage transaction
    if not is_indexed(registry, resource_name):
        return
    operations = operations_of(event)
    if not operations:
        return
    if not registry.indexing_retry.submit(resource_name, operations):
        logger.debug("Indexer unavailable: %d change(s) of %r queued for retry", len(operations), resource_name)
