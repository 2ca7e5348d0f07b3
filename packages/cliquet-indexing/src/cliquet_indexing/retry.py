"""The retry queue: changes the indexer could not take, replayed later.

Storage is the truth; the index follows it. When the indexer fails while a
change is being indexed, the write has already committed: the change is
logged and kept here, one pending operation per record (the latest wins, so
a replay never resurrects a deleted record nor an old version), and replayed
in order — before the next change is indexed, and by a background thread
every ``cliquet.indexing_retry_interval`` seconds while anything is pending.

The queue lives in the process's memory: a process that stops with changes
pending loses them (they are logged, with their keys), and
``cliquet-indexing reindex`` repairs the index from storage.
"""

from __future__ import annotations

import collections
import logging
import threading

from cliquet.storage.exceptions import BackendError

from cliquet_indexing.indexer import IndexEntry, IndexerBase

logger = logging.getLogger("cliquet_indexing.retry")

INDEX, UNINDEX = "index", "unindex"


class RetryQueue:
    """Pending index operations, keyed by ``(resource, parent_id, record id)``.

    :param indexer: the indexer to replay into.
    :param interval: seconds between background attempts (``0``: no thread).
    :param max_queued: past this, the oldest pending operations are dropped
        (and logged as lost: run ``reindex``).
    """

    def __init__(self, indexer: IndexerBase, interval: float = 10.0, max_queued: int = 100_000):
        self.indexer = indexer
        self.interval = interval
        self.max_queued = max_queued
        self.dropped = 0
        self._pending: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._thread = None

    def __len__(self):
        with self._lock:
            return len(self._pending)

    def pending(self) -> list:
        """Return the pending operations, oldest first: ``[(key, op, entry)]``."""
        with self._lock:
            return [(key, op, entry) for key, (op, entry) in self._pending.items()]

    def add(self, resource_name: str, operations) -> None:
        """Queue ``[(op, parent_id, record id, entry or None)]`` for ``resource_name``."""
        with self._lock:
            for op, parent_id, record_id, entry in operations:
                key = (resource_name, parent_id, record_id)
                self._pending.pop(key, None)
                self._pending[key] = (op, entry)
            while len(self._pending) > self.max_queued:
                key, _ = self._pending.popitem(last=False)
                self.dropped += 1
                logger.error("Indexing retry queue full: dropped the change of %s/%s/%s "
                             "(run `cliquet-indexing reindex`)", *key)
        self._start()

    def apply(self, resource_name: str, operations) -> None:
        """Index ``operations`` now, after anything pending; queue them on failure.

        :raises BackendError: when the indexer failed (the operations are queued).
        """
        with self._lock:
            try:
                self.replay()
                _apply(self.indexer, resource_name, operations)
            except BackendError:
                self.add(resource_name, operations)
                raise

    def replay(self) -> int:
        """Send every pending operation, oldest first, grouped per resource.

        :returns: how many were sent.
        :raises BackendError: the indexer still fails (what was not sent stays queued).
        """
        sent = 0
        with self._lock:
            while self._pending:
                resource_name = next(iter(self._pending))[0]
                batch = []
                for key, (op, entry) in self._pending.items():
                    if key[0] != resource_name or len(batch) >= 500:
                        break
                    batch.append((op, key[1], key[2], entry))
                _apply(self.indexer, resource_name, batch)
                for _, parent_id, record_id, _ in batch:
                    self._pending.pop((resource_name, parent_id, record_id), None)
                sent += len(batch)
        if sent:
            logger.info("Indexing retry queue: replayed %d change(s)", sent)
        return sent

    # -- background ------------------------------------------------------------------

    def _start(self):
        if self.interval <= 0:
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="cliquet-indexing-retry", daemon=True)
                self._thread.start()

    def _run(self):
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return
            try:
                self.replay()
            except BackendError as exc:
                logger.warning("Indexer still unavailable, %d change(s) pending: %s", len(self), exc)
            except Exception:  # pragma: no cover - never let the thread die silently
                logger.exception("Indexing retry queue failed")


def _apply(indexer: IndexerBase, resource_name: str, operations) -> None:
    """Send a list of ``(op, parent_id, record id, entry)`` in order, grouping runs."""
    run_op, run = None, []

    def flush():
        if not run:
            return
        if run_op == INDEX:
            indexer.index_records(resource_name, [entry for _, _, _, entry in run])
        else:
            indexer.unindex_records(resource_name, [(parent, rid) for _, parent, rid, _ in run])

    for operation in operations:
        if operation[0] != run_op:
            flush()
            run_op, run = operation[0], []
        run.append(operation)
    flush()


def operations_of(event) -> list:
    """Return the ``(op, parent_id, record id, entry)`` of a resource event."""
    parent_id = event.payload["user_id"]
    action = event.payload["action"]
    out = []
    for impacted in event.impacted_records:
        new = impacted["new"]
        if action == "delete" or new.get("deleted"):
            out.append((UNINDEX, parent_id, new["id"], None))
        else:
            principals = tuple(impacted.get("read_principals") or (parent_id,))
            out.append((INDEX, parent_id, new["id"], IndexEntry(parent_id, new, principals)))
    return out
