"""The embedded indexer's writer: index changes applied off the request path.

A request hands its changes to :meth:`IndexWriter.submit`, which puts them
in a bounded dictionary (one pending operation per record, the newest by
version) and returns at once. A writer thread wakes up, waits
:data:`GATHER` seconds for more changes, then applies everything pending in
**one** SQLite transaction (:meth:`EmbeddedIndexer.write
<cliquet_indexing.embedded.indexer.EmbeddedIndexer.write>`). No lock is
held across requests: a request takes the writer's lock for a dictionary
update, the writer holds the index's lock for one transaction.

When a change becomes searchable
    Within :data:`GATHER` plus one transaction after the response (a few
    milliseconds) for every process. In the process that wrote it, at once:
    :meth:`flush` — which a search and ``indexed_keys`` call first — applies
    what is pending before reading, so a client reads its own writes from
    the process that served them.

When the index is full of pending work
    At most :data:`MAX_PENDING` records wait. A request that finds the
    writer full waits for room, at most the retry queue's write timeout
    (``cliquet.indexing_write_timeout``); then its changes go to the retry
    queue (:mod:`cliquet_indexing.retry`), which turns *failing* and replays
    them in the background.

When the index fails
    The transaction's changes go to the retry queue (the circuit breaker of
    :mod:`cliquet_indexing.retry`); while it is failing, the writer hands it
    what is pending without calling SQLite.
"""

from __future__ import annotations

import logging
import threading
import time

from cliquet.storage.exceptions import BackendError

from cliquet_indexing.retry import _order

logger = logging.getLogger("cliquet_indexing.embedded")

#: the most records with changes waiting for the writer.
MAX_PENDING = 10_000
#: seconds the writer waits, once woken, for more changes to group.
GATHER = 0.005


class IndexWriter:
    """Pending index changes of one :class:`~cliquet_indexing.embedded.EmbeddedIndexer`
    and the thread that applies them in grouped transactions.

    :param indexer: the embedded indexer (its ``write`` method applies a group).
    :param max_pending: the most records pending.
    :param gather: seconds the thread waits for more changes before a transaction.
    """

    def __init__(self, indexer, max_pending: int = MAX_PENDING, gather: float = GATHER):
        self.indexer = indexer
        self.max_pending = max_pending
        self.gather = gather
        #: the :class:`~cliquet_indexing.retry.RetryQueue` failed changes go to
        #: (set by the queue; without one they are logged and lost).
        self.retry = None
        #: transactions applied (by the thread or :meth:`flush`).
        self.transactions = 0
        self._pending: dict = {}
        self._cond = threading.Condition(threading.Lock())
        self._applying = threading.Lock()
        self._thread = None
        self._closed = False
        self._idle = False  # the thread waits for changes (only then is it notified)

    def __len__(self):
        with self._cond:
            return len(self._pending)

    def submit(self, resource_name: str, operations: list, timeout: float = 5.0) -> bool:
        """Add ``(op, parent_id, record id, payload)`` operations (see
        :mod:`cliquet_indexing.retry`) for the writer thread.

        :returns: ``False`` when the writer stayed full ``timeout`` seconds
            (nothing was added), ``True`` otherwise.
        """
        with self._cond:
            if len(self._pending) >= self.max_pending and not self._cond.wait_for(
                    lambda: len(self._pending) < self.max_pending, max(timeout, 0) or None):
                return False
            pending = self._pending
            for op, parent_id, record_id, payload in operations:
                key = (resource_name, parent_id, record_id)
                known = pending.get(key)
                if known is None or _order(op, payload) >= _order(*known):
                    pending[key] = (op, payload)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="cliquet-indexing-writer", daemon=True)
                self._thread.start()
            elif self._idle:
                self._idle = False
                self._cond.notify_all()
        return True

    def flush(self) -> int:
        """Apply every pending change now, in the calling thread (after any
        transaction the writer thread is in): what was submitted before the
        call is in the index when it returns, or in the retry queue.

        :returns: how many records were applied.
        """
        with self._applying:
            return self._apply(self._take())

    def discard(self) -> None:
        """Forget what is pending (the index is being emptied)."""
        with self._applying, self._cond:
            self._pending.clear()
            self._cond.notify_all()

    def _take(self) -> dict:
        with self._cond:
            taken, self._pending = self._pending, {}
            self._cond.notify_all()  # room for waiting requests
        return taken

    def _apply(self, taken: dict) -> int:
        """Apply ``{(resource, parent_id, id): (op, payload)}`` in one transaction
        (under ``_applying``); on failure hand it to the retry queue."""
        if not taken:
            return 0
        grouped: dict = {}
        for (resource_name, parent_id, record_id), (op, payload) in taken.items():
            grouped.setdefault(resource_name, []).append((op, parent_id, record_id, payload))
        retry = self.retry
        if retry is not None and retry.failing:
            for resource_name, operations in grouped.items():
                retry.add(resource_name, operations)
            return 0
        try:
            self.indexer.write(grouped)
            self.transactions += 1
            return len(taken)
        except BackendError as exc:
            if retry is None:
                logger.error("Index writer: %d change(s) lost (%s); run `cliquet-indexing reindex`", len(taken), exc)
            else:
                for resource_name, operations in grouped.items():
                    retry.failed(resource_name, operations, exc)
            return 0

    def _run(self):
        while True:
            with self._cond:
                while not (self._pending or self._closed):
                    self._idle = True
                    self._cond.wait()
                self._idle = False
                if self._closed:
                    return
            if self.gather > 0:
                time.sleep(self.gather)
            try:
                with self._applying:
                    self._apply(self._take())
            except Exception:  # pragma: no cover - never let the thread die silently
                logger.exception("Index writer failed")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and apply what is pending (a later :meth:`submit`
        starts a new thread)."""
        with self._cond:
            self._closed = True
            self._idle = False
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        try:
            self.flush()
        except Exception:  # pragma: no cover - closing must not raise
            logger.exception("Index writer: pending changes not applied at close")
        with self._cond:  # a later submit starts a new thread
            self._closed, self._thread = False, None
