"""Tombstone retention: with ``cliquet.tombstones_retention`` set (``30d``),
tombstones older than that are purged, at most once per interval
(a tenth of the retention, at most an hour), after a committed write.

Clients polling with a ``_since`` older than what was purged get a 400 naming
``_since`` that tells them to resync from scratch — never a silently
incomplete list of changes.
"""

from __future__ import annotations

import logging
import threading
import time

from cliquet.events import AfterResourceChanged
from cliquet.utils import msec_time

logger = logging.getLogger("cliquet")


class TombstonePurger:
    """Purges old tombstones, not more often than ``interval`` seconds.

    :param retention: seconds a tombstone is kept.
    """

    def __init__(self, retention: float, interval: float | None = None):
        self.retention = retention
        self.interval = interval if interval is not None else min(retention / 10, 3600)
        self._next = 0.0
        self._lock = threading.Lock()

    def maybe_purge(self, storage) -> int | None:
        """Purge if the interval has passed; return the count (``None`` if not due)."""
        now = time.monotonic()
        if now < self._next or not self._lock.acquire(blocking=False):
            return None
        try:
            self._next = now + self.interval
            count = storage.purge_deleted(None, None, before=msec_time() - int(self.retention * 1000))
            if count:
                logger.info("Purged %d tombstones older than %ss", count, self.retention)
            return count
        except Exception:
            logger.exception("Purging tombstones failed (will retry)")
            return None
        finally:
            self._lock.release()

    def __call__(self, event):
        """``AfterResourceChanged`` subscriber."""
        self.maybe_purge(event.request.registry.storage)


def includeme(config):
    """Subscribe the purger when ``cliquet.tombstones_retention`` is set."""
    retention = config.get_settings().get("cliquet.tombstones_retention")
    if retention:
        purger = TombstonePurger(retention)
        config.registry.cliquet_tombstone_purger = purger
        config.add_subscriber(purger, AfterResourceChanged)
