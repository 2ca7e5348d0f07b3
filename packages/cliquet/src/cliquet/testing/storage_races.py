"""Concurrency contracts of storage backends, part of
:class:`~cliquet.testing.storage.StorageContract`: no lost update, one winner
per race.

Capabilities (the ``capabilities`` fixture):

``"isolation"``
    concurrent transactions never undo each other's writes, and a write over
    a record that a concurrent transaction changed after this one read it is
    refused with :class:`~cliquet.storage.exceptions.ConflictError` — or
    never happens because the backend serialises the two transactions. The
    protocol tween turns the conflict into a rerun of the request, which then
    answers ``412`` to a stale ``If-Match``.
``"shared"``
    several processes (app servers) share the data: the race also runs
    between processes, each building the backend from the ``backend_spec``
    fixture.

Optional fixtures:

``concurrent_backend``
    the backend as another app server sees it (by default the backend
    itself, used from another thread: a transaction is bound to its thread).
``backend_spec``
    ``(dotted module name, settings without prefix)`` from which a new
    process builds the same backend with ``load_from_config`` (required by
    ``"shared"``).
``race_rounds``, ``race_threads``
    how many races, and how many contenders in each (default
    ``CLIQUET_TEST_RACE_ROUNDS`` or 20, and 6). Races hide: more rounds
    find more, and cost more.
"""

from __future__ import annotations

import importlib
import os
import threading
import time

import pytest

from cliquet.storage.exceptions import ConflictError, RecordNotFoundError

#: seconds after which a concurrent writer that has not finished is taken to
#: be waiting for the transaction under test (a backend that serialises).
CONCURRENT_WAIT = 1.0
#: seconds a contender spends between its read and its write.
WORK = 0.001
#: environment variable holding the default number of race rounds.
RACE_ROUNDS_VARIABLE = "CLIQUET_TEST_RACE_ROUNDS"

WON, CONFLICT, PRECONDITION = "won", "conflict", "precondition failed"


def default_race_rounds() -> int:
    """Rounds per race: ``CLIQUET_TEST_RACE_ROUNDS``, or 20."""
    return int(os.environ.get(RACE_ROUNDS_VARIABLE) or 20)


def race_processes(target, make_args, outcomes_each, processes=3, timeout=120.0) -> list:
    """Run ``target`` in ``processes`` spawned processes racing on a shared
    barrier, and return what they put on the shared queue.

    ``make_args(n, barrier, results)`` gives the arguments of process ``n``;
    each process puts ``outcomes_each`` items on ``results``. Spawned, not
    forked: the test process holds pools and threads. A process that hangs
    is killed once the outcomes are in (or ``timeout`` passed).
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=target, args=make_args(n, barrier, results)) for n in range(processes)]
    for worker in workers:
        worker.start()
    try:
        return [results.get(timeout=timeout) for _ in range(processes * outcomes_each)]
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():  # pragma: no cover - a hung contender
                worker.kill()


class RaceFixtures:
    """The fixtures every race contract asks for; override them in a
    subclass to race harder or shorter."""

    @pytest.fixture
    def race_rounds(self):
        """How many races each race test runs (:func:`default_race_rounds`)."""
        return default_race_rounds()

    @pytest.fixture
    def race_threads(self):
        """How many contenders race in each round."""
        return 6


class PreconditionFailed(Exception):
    """The record is not at the version the contender expected (a ``412``)."""


def guarded_update(backend, collection, parent, object_id, expected, value) -> str:
    """What a ``PATCH`` with ``If-Match: "<expected>"`` does to the storage:
    in one transaction, read the record, check its version, write it.

    Return :data:`WON`, :data:`CONFLICT` (the backend refused the write) or
    :data:`PRECONDITION` (the version had changed already).
    """
    try:
        with backend.transaction():
            current = backend.get(collection, parent, object_id)
            if current["last_modified"] != expected:
                raise PreconditionFailed()
            time.sleep(WORK)  # a request's work between its read and its write: races interleave
            backend.update(collection, parent, object_id, dict(current, winner=value))
    except ConflictError:
        return CONFLICT
    except PreconditionFailed:
        return PRECONDITION
    return WON


def load_backend(spec):
    """Build a backend from ``(module name, settings)`` (see ``backend_spec``)."""
    from cliquet.testing import make_config

    module, settings = spec
    return importlib.import_module(module).load_from_config(make_config(**settings))


def race_in_process(spec, barrier, collection, parent, targets, me, results) -> None:
    """A contender process: for each ``(object_id, expected)`` of ``targets``,
    wait on ``barrier`` with the others, then race (see :func:`guarded_update`);
    put ``(round, me, outcome)`` on ``results``."""
    backend = load_backend(spec)
    for n, (object_id, expected) in enumerate(targets):
        try:
            barrier.wait(timeout=60)
            outcome = guarded_update(backend, collection, parent, object_id, expected, me)
        except Exception as exc:  # reported to the parent, which fails the test
            outcome = f"error: {exc!r}"
        results.put((n, me, outcome))


class _Concurrent:
    """Run ``fn`` in a thread of its own (hence outside the caller's transaction)."""

    def __init__(self, fn):
        self.error = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn):
        try:
            fn()
        except BaseException as exc:  # pragma: no cover - reported by the test
            self.error = exc

    def wait(self, timeout) -> bool:
        """Wait up to ``timeout`` seconds; return whether ``fn`` finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


def check_one_winner(outcomes, final, round_number):
    """Assert one :data:`WON`, only conflicts or failed preconditions beside,
    and the stored record written by the winner."""
    winners = [who for who, outcome in outcomes if outcome == WON]
    others = sorted({outcome for _, outcome in outcomes if outcome != WON})
    assert len(winners) == 1, f"round {round_number}: {len(winners)} winners, outcomes {sorted(outcomes)}"
    assert set(others) <= {CONFLICT, PRECONDITION}, f"round {round_number}: {others}"
    assert final["winner"] == winners[0], f"round {round_number}: stored {final['winner']!r}, won by {winners[0]!r}"


class StorageRaceContract(RaceFixtures):
    """Lost updates and racing writers (mixed into ``StorageContract``)."""

    @pytest.fixture
    def concurrent_backend(self, backend):
        """The backend as another app server sees it (default: the same one,
        from another thread)."""
        return backend

    @pytest.fixture
    def backend_spec(self):
        """``(module, settings)`` to build this backend in another process
        (default: unknown)."""
        return None

    # -- one transaction against one concurrent writer -----------------------------

    def _against_a_concurrent_write(self, backend, concurrent_backend, collection, parent, object_id, ours):
        """Read ``object_id`` in a transaction; meanwhile another app server
        writes it; then ``ours(read)`` writes it. Return whether ours was
        refused and whether the concurrent write had ended before ours."""
        refused = False
        try:
            with backend.transaction():
                try:
                    read = backend.get(collection, parent, object_id)
                except RecordNotFoundError:
                    read = None
                writer = _Concurrent(lambda: concurrent_backend.update(
                    collection, parent, object_id, {"v": "concurrent"}))
                ended_first = writer.wait(CONCURRENT_WAIT)
                ours(read)
        except ConflictError:
            refused = True
        assert writer.wait(60), "the concurrent write never ended"
        assert writer.error is None, f"the concurrent write failed: {writer.error!r}"
        return refused, ended_first

    @pytest.mark.parametrize("operation", ["update", "delete", "update of a record read as missing"])
    def test_a_write_over_a_concurrent_change_of_what_was_read_is_refused(
            self, backend, concurrent_backend, collection, parent, capabilities, operation):
        self.require(capabilities, "isolation")
        if operation == "update of a record read as missing":
            object_id = "absent"
        else:
            object_id = backend.create(collection, parent, {"v": 0})["id"]

        def ours(read):
            if operation == "delete":
                backend.delete(collection, parent, object_id)
            else:
                backend.update(collection, parent, object_id, dict(read or {}, v="lost"))

        refused, ended_first = self._against_a_concurrent_write(
            backend, concurrent_backend, collection, parent, object_id, ours)
        if ended_first:
            assert refused, "a write over a change made after the transaction read the record was not refused"
        # Refused, or serialised before the concurrent write: either way, that
        # one is the last word.
        assert backend.get(collection, parent, object_id)["v"] == "concurrent"

    def test_own_writes_and_fresh_reads_are_no_conflict(self, backend, collection, parent, capabilities):
        self.require(capabilities, "isolation")
        record = backend.create(collection, parent, {"v": 0})
        with backend.transaction():
            backend.update(collection, parent, record["id"], {"v": 1})
            backend.get(collection, parent, record["id"])
            backend.update(collection, parent, record["id"], {"v": 2})
            backend.get(collection, parent, record["id"])
            backend.delete(collection, parent, record["id"])
            backend.update(collection, parent, record["id"], {"v": 3})
        assert backend.get(collection, parent, record["id"])["v"] == 3

    # -- races -------------------------------------------------------------------------

    def test_racing_threads_on_one_version_have_exactly_one_winner(
            self, backend, collection, parent, capabilities, race_rounds, race_threads):
        self.require(capabilities, "isolation")
        for round_number in range(race_rounds):
            record = backend.create(collection, parent, {"winner": None})
            barrier = threading.Barrier(race_threads)
            outcomes = []

            def contender(me):
                barrier.wait(timeout=60)
                try:
                    outcome = guarded_update(backend, collection, parent, record["id"], record["last_modified"], me)
                except Exception as exc:  # reported below
                    outcome = f"error: {exc!r}"
                outcomes.append((me, outcome))

            threads = [threading.Thread(target=contender, args=(n,)) for n in range(race_threads)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            assert len(outcomes) == race_threads, f"round {round_number}: a contender hung"
            check_one_winner(outcomes, backend.get(collection, parent, record["id"]), round_number)

    def test_racing_processes_on_one_version_have_exactly_one_winner(
            self, backend, backend_spec, collection, parent, capabilities, race_rounds):
        self.require(capabilities, "shared")
        assert backend_spec is not None, (
            "a backend declaring 'shared' provides `backend_spec`: (module, settings) to build it in another process")
        records = [backend.create(collection, parent, {"winner": None}) for _ in range(race_rounds)]
        targets = [(r["id"], r["last_modified"]) for r in records]
        outcomes = race_processes(
            race_in_process, lambda n, barrier, results: (
                backend_spec, barrier, collection, parent, targets, f"p{n}", results),
            outcomes_each=race_rounds, timeout=120)
        for round_number, record in enumerate(records):
            mine = [(who, outcome) for n, who, outcome in outcomes if n == round_number]
            check_one_winner(mine, backend.get(collection, parent, record["id"]), round_number)

