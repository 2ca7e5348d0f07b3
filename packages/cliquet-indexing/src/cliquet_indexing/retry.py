"""The retry queue: changes the indexer could not take, replayed in the background.

Storage is the truth; the index follows it. An indexer with a ``write_behind``
(the embedded one: :mod:`cliquet_indexing.embedded.writer`) takes a
request's changes in memory and applies them off the request path, in
grouped transactions; its failures come here. With any other indexer, a
change reaches the index from the request that committed it, straight
away, while the indexer answers:
the request waits for the indexer's answer, at most
``cliquet.indexing_write_timeout`` seconds (5), the call itself running on a
small pool of threads. When the call fails or does not answer in time, the
write has already committed: its changes are queued and the queue turns
*failing* (a circuit breaker). From then on no request
calls the indexer: each queues its changes and returns at once, so an
indexer outage costs a write nothing but a dictionary update. A background
thread replays the queue, oldest first, in batches, waiting between failed
attempts from one second doubling up to ``cliquet.indexing_retry_interval``;
once the queue is empty the requests index directly again.

Order does not matter: every write carries its record's version
(:class:`~cliquet_indexing.indexer.IndexerBase` keeps the newest, deletions
included), so a replay never resurrects a deleted record nor an old version,
even when another process indexed a newer one meanwhile. The queue keeps one
operation per record, the newest.

Bounds: at most ``cliquet.indexing_retry_max_queued`` records are pending.
Past that, a change to another record is dropped and the queue is marked
:attr:`~RetryQueue.stale`: the changes are logged (once per outage, with a
count at recovery) and ``cliquet-indexing reindex`` repairs the index from
storage. No lock is held while the indexer is called.

The queue lives in the process's memory: a process that stops with changes
pending loses them (they are logged) and ``reindex`` repairs the index.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading

from cliquet.storage.exceptions import BackendError

from cliquet_indexing.indexer import IndexEntry, IndexerBase

logger = logging.getLogger("cliquet_indexing.retry")

INDEX, UNINDEX = "index", "unindex"
#: records per indexer call of a replay.
REPLAY_BATCH = 500
#: seconds before the first background attempt after a failure (then doubling).
FIRST_DELAY = 1.0
#: threads that call the indexer for requests.
SENDERS = 4


class RetryQueue:
    """Pending index operations, keyed by ``(resource, parent_id, record id)``.

    An operation is ``(op, parent_id, record id, payload)``: ``op`` is
    :data:`INDEX` (``payload`` an :class:`~cliquet_indexing.indexer.IndexEntry`)
    or :data:`UNINDEX` (``payload`` the deletion's version).

    :param indexer: the indexer to write to.
    :param interval: the longest wait between background attempts (``0``: no
        background thread — only :meth:`replay` empties the queue, as tests do).
    :param max_queued: the most records pending (see :attr:`stale`).
    :param write_timeout: the longest a request waits for the indexer
        (``0``: the request calls the indexer itself and waits as long as it takes).
    """

    def __init__(self, indexer: IndexerBase, interval: float = 10.0, max_queued: int = 100_000,
                 write_timeout: float = 5.0):
        self.indexer = indexer
        self.interval = interval
        self.max_queued = max_queued
        self.write_timeout = write_timeout
        #: changes dropped because the queue was full (since the process started).
        self.dropped = 0
        #: ``True`` once a change was dropped: the index misses changes until
        #: ``cliquet-indexing reindex`` runs.
        self.stale = False
        self._pending: collections.OrderedDict = collections.OrderedDict()
        self._failing = False
        self._dropped_in_outage = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._senders = None
        #: the indexer's own write-behind queue, when it has one.
        self.write_behind = getattr(indexer, "write_behind", None)
        if self.write_behind is not None:
            self.write_behind.retry = self

    def __len__(self):
        with self._lock:
            return len(self._pending)

    @property
    def failing(self) -> bool:
        """Whether the indexer is considered down (changes are queued, not sent)."""
        return self._failing

    def pending(self) -> list:
        """Return the pending operations, oldest first: ``[(resource, op, parent_id, record id, payload)]``."""
        with self._lock:
            return [(key[0], op, key[1], key[2], payload) for key, (op, payload) in self._pending.items()]

    # -- the request side -----------------------------------------------------------------

    def submit(self, resource_name: str, operations: list) -> bool:
        """Send ``operations`` to the indexer now, unless it is failing, and
        wait for it at most :attr:`write_timeout`; queue them when it is
        failing, fails or is late. With an indexer ``write_behind``, hand them to
        it instead (waiting at most :attr:`write_timeout` for room). Never raises
        :class:`~cliquet.storage.exceptions.BackendError`.

        :returns: ``True`` when the indexer took them, ``False`` when queued.
        """
        with self._lock:
            if self._failing:
                self._queue(resource_name, operations)
                return False
        if self.write_behind is not None:
            if self.write_behind.submit(resource_name, operations, self.write_timeout):
                return True
            self.failed(resource_name, operations, f"the index writer stayed full {self.write_timeout}s")
            return False
        if self.write_timeout <= 0:
            return self._send(resource_name, operations)
        future = self._pool().submit(self._send, resource_name, operations)
        try:
            return future.result(timeout=self.write_timeout)
        except concurrent.futures.TimeoutError:
            # Still in flight: queued as well (sending a change twice is
            # harmless), and unqueued if the call succeeds after all.
            self.failed(resource_name, operations, f"no answer within {self.write_timeout}s")
            future.add_done_callback(lambda done: done.result() and self._arrived(resource_name, operations))
            return False

    def _send(self, resource_name, operations) -> bool:
        try:
            _apply(self.indexer, resource_name, operations)
            return True
        except BackendError as exc:
            self.failed(resource_name, operations, exc)
            return False

    def _arrived(self, resource_name, operations) -> None:
        """A late call succeeded: drop the copies queued for it (unless newer
        changes replaced them); an empty queue stops failing."""
        with self._lock:
            for op, parent_id, record_id, payload in operations:
                key = (resource_name, parent_id, record_id)
                known = self._pending.get(key)
                if known is not None and known[0] == op and known[1] is payload:
                    del self._pending[key]
            if not self._pending:
                self._failing = False

    def failed(self, resource_name: str, operations: list, reason) -> None:
        """Queue ``operations`` the indexer failed to take (``reason`` is
        logged when this opens the circuit)."""
        with self._lock:
            opened = not self._failing
            self._failing = True
            self._queue(resource_name, operations)
        if opened:
            logger.error("Indexer unavailable: changes are queued for retry in the background (%s)", reason)

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._senders is None:
            with self._lock:
                if self._senders is None:
                    self._senders = concurrent.futures.ThreadPoolExecutor(SENDERS, "cliquet-indexing-send")
        return self._senders

    def add(self, resource_name: str, operations: list) -> None:
        """Queue ``operations`` without trying the indexer (and mark it failing)."""
        with self._lock:
            self._failing = True
            self._queue(resource_name, operations)

    def _queue(self, resource_name, operations):
        """Queue under the lock: keep the newest operation per record, bounded."""
        for op, parent_id, record_id, payload in operations:
            key = (resource_name, parent_id, record_id)
            known = self._pending.get(key)
            if known is not None:
                if _order(op, payload) < _order(*known):
                    continue
                del self._pending[key]
            elif len(self._pending) >= self.max_queued:
                self.dropped += 1
                self._dropped_in_outage += 1
                if not self.stale or self._dropped_in_outage == 1:
                    logger.error("Indexing retry queue full (%d changes): dropping changes, starting with "
                                 "%s/%s/%s; the index is stale until `cliquet-indexing reindex` runs",
                                 self.max_queued, *key)
                self.stale = True
                continue
            self._pending[key] = (op, payload)
        self._start()

    # -- the replay -----------------------------------------------------------------------

    def replay(self) -> int:
        """Send every pending operation, oldest first, in batches of one
        resource; the indexer is called without the lock held, and what is
        queued meanwhile is sent too. Once empty, the queue stops failing.

        :returns: how many were sent.
        :raises BackendError: the indexer still fails (what was not sent stays queued).
        """
        sent = 0
        while True:
            with self._lock:
                batch = self._next_batch()
                if not batch:
                    self._failing = False
                    dropped, self._dropped_in_outage = self._dropped_in_outage, 0
                    break
            resource_name = batch[0][0][0]
            _apply(self.indexer, resource_name, [(op, key[1], key[2], payload) for key, (op, payload) in batch])
            with self._lock:
                for key, item in batch:
                    if self._pending.get(key) is item:  # unless a newer one came meanwhile
                        del self._pending[key]
            sent += len(batch)
        if sent:
            logger.info("Indexing retry queue: replayed %d change(s)", sent)
        if dropped:
            logger.error("Indexer back; %d change(s) were dropped while it was down: run "
                         "`cliquet-indexing reindex`", dropped)
        return sent

    def _next_batch(self) -> list:
        batch = []
        for key, item in self._pending.items():
            if batch and (key[0] != batch[0][0][0] or len(batch) >= REPLAY_BATCH):
                break
            batch.append((key, item))
        return batch

    # -- background -----------------------------------------------------------------------

    def _start(self):
        """Start the background thread (under the lock) unless it runs."""
        if self.interval <= 0 or self._stop.is_set():
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="cliquet-indexing-retry", daemon=True)
            self._thread.start()

    def _run(self):
        delay = min(FIRST_DELAY, self.interval)
        while not self._stop.wait(delay):
            with self._lock:
                if not self._pending:
                    self._failing = False
                    self._thread = None
                    return
            try:
                self.replay()
                delay = min(FIRST_DELAY, self.interval)
            except BackendError as exc:
                delay = min(delay * 2, self.interval)
                logger.warning("Indexer still unavailable, %d change(s) pending (next attempt in %.1fs): %s",
                               len(self), delay, exc)
            except Exception:  # pragma: no cover - never let the thread die silently
                logger.exception("Indexing retry queue failed")
                delay = self.interval

    def close(self, timeout: float = 5.0) -> None:
        """Stop the background thread and the senders (what is pending stays queued)."""
        self._stop.set()
        if self._senders is not None:
            self._senders.shutdown(wait=False, cancel_futures=True)
        thread = self._thread
        if thread is not None:
            thread.join(timeout)


def _order(op: str, payload) -> tuple:
    """The version of an operation; at equal versions a deletion is the newer."""
    if op == INDEX:
        return (payload.version, 0)
    return (int(payload), 1)


def _apply(indexer: IndexerBase, resource_name: str, operations) -> None:
    """Send a list of ``(op, parent_id, record id, payload)`` in order, grouping runs."""
    run_op, run = None, []

    def flush():
        if not run:
            return
        if run_op == INDEX:
            indexer.index_records(resource_name, [payload for _, _, _, payload in run])
        else:
            indexer.unindex_records(resource_name, [(parent, rid, version) for _, parent, rid, version in run])

    for operation in operations:
        if operation[0] != run_op:
            flush()
            run_op, run = operation[0], []
        run.append(operation)
    flush()


def operations_of(event) -> list:
    """Return the ``(op, parent_id, record id, payload)`` of a resource event:
    deletions carry the tombstone's ``last_modified``."""
    parent_id = event.payload["user_id"]
    action = event.payload["action"]
    out = []
    for impacted in event.impacted_records:
        new = impacted["new"]
        if action == "delete" or new.get("deleted"):
            out.append((UNINDEX, parent_id, new["id"], IndexEntry(parent_id, new).version))
        else:
            principals = tuple(impacted.get("read_principals") or (parent_id,))
            out.append((INDEX, parent_id, new["id"], IndexEntry(parent_id, new, principals)))
    return out
