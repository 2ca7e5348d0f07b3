"""Shared lists at scale (issue 18): a list's cost with and without writers.

Run on its own (after ``eval "$(ci/services)"`` for Redis and PostgreSQL)::

    hatch run test:python ci/bench.d/shared_lists.py [--sizes 1000,10000,100000]
        [--backends memory,redis,postgresql] [--lists 300] [--rounds 5] [--pin] [--json out.json]

What it does, per backend and size: N users (20) own the records of one
shareable collection, a tenth of them shared for reading with
``system.Authenticated``; the records are loaded straight into the storage
and permission backends (in transactions of 500, the way the resource
writes them: permissions and record together), not through HTTP, so that
100 000 records load in seconds. A reader then lists the way the
``ShareableResource`` does — the read check as an ``AccessibleIds``
filter, ``_sort=-score&_limit=20`` — with nobody writing, and while a
writer keeps creating records (a tenth shared) in transactions like a
request's, the two phases alternating in ``--rounds`` rounds (5) so that
both see the machine in the same state: the memory writer is a thread of
the same process (the memory backends live in one process), the Redis and
PostgreSQL writer a process of its own, as another worker would be, paused
between its busy phases. Reported: list p50 and p99 (ms) over all rounds,
quiet and with the writer busy, the writer's rate, and the ratios. With
``--pin``, the reader runs on one CPU and the writer and the Redis server
on the others (:class:`Pinned`).

The storage and permission backends are the library's own, on the
services of ``ci/services`` (Redis db 13, PostgreSQL database
``bench_shared_lists`` dropped and created again): the figure is the list
path's, without the HTTP and WSGI layers (which cost the same whatever the
store's size).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import sys
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from backends import _postgresql_database  # noqa: E402  (the bench's own helper: a fresh database)

from cliquet.storage import COMPARISON, AccessibleIds, Filter, Sort  # noqa: E402
from cliquet.testing import make_config  # noqa: E402

USERS = 20
COLLECTION = "articles"
PREFIX = f"/{COLLECTION}/"
AUTHENTICATED = "system.Authenticated"
BATCH = 500
#: the fields the example resource declares (``indexed_fields``): ``cliquet
#: migrate`` creates their indexes on PostgreSQL, and so does the bench.
INDEXED_FIELDS = ("published", "score", "title")


def user(n):
    """The principal of user ``n``."""
    return f"basicauth:user{n}"


def build(kind):
    """Return ``(storage, permission)`` of ``kind``, empty, joined."""
    if kind == "memory":
        from cliquet.permission import memory as mp
        from cliquet.storage import memory as ms

        storage, permission = ms.load_from_config(make_config()), mp.load_from_config(make_config())
    elif kind == "redis":
        from cliquet.permission import redis as rp
        from cliquet.storage import redis as rs

        url = os.environ["CLIQUET_TEST_REDIS_URL"]
        url = urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/13"))
        storage = rs.load_from_config(make_config(storage_url=url, storage_prefix="bench:s:"))
        permission = rp.load_from_config(make_config(permission_url=url, permission_prefix="bench:p:"))
    else:
        from cliquet.permission import postgresql as pp
        from cliquet.storage import postgresql as ps

        url = os.environ["BENCH_SHARED_PG_URL"]
        storage = ps.load_from_config(make_config(storage_url=url))
        permission = pp.load_from_config(make_config(permission_url=url))
    permission.join_transactions(storage)
    return storage, permission


def fresh(kind):
    """Empty the backends of ``kind`` (a new PostgreSQL database, a flushed Redis db)."""
    if kind == "postgresql":
        os.environ["BENCH_SHARED_PG_URL"] = _postgresql_database(
            os.environ["CLIQUET_TEST_POSTGRESQL_URL"], "shared lists")
    storage, permission = build(kind)
    if kind != "postgresql":
        storage.flush()
        permission.flush()
    storage.initialize_schema()
    permission.initialize_schema()
    if hasattr(storage, "create_field_indexes"):  # what `cliquet migrate` does for the resource
        storage.create_field_indexes(INDEXED_FIELDS)
    return storage, permission


def write_one(storage, permission, rng, n):
    """Create one record the way a request does (permissions, then the
    record, in one transaction); a tenth are shared."""
    record_id = uuid.uuid4().hex
    owner = user(n % USERS)
    acl = {"write": [owner], "creator": [owner]}
    if rng.random() < 0.1:
        acl["read"] = [AUTHENTICATED]
    permission.replace_object_permissions(f"{PREFIX}{record_id}", acl)
    storage.create(COLLECTION, "", {"id": record_id, "score": rng.random(), "title": f"article {n}",
                                    "body": "x" * 200})


def load(kind, storage, permission, count):
    """Load ``count`` records in transactions of :data:`BATCH`; ANALYZE on PostgreSQL."""
    rng = random.Random(count)
    for first in range(0, count, BATCH):
        with storage.transaction():
            for n in range(first, min(count, first + BATCH)):
                write_one(storage, permission, rng, n)
    if kind == "postgresql":  # statistics, as `cliquet migrate` leaves them and autovacuum keeps them
        storage.analyze()
        permission.analyze()


def list_once(storage, permission, reader):
    """One list as ``ShareableResource`` makes it; return (ms, records, total)."""
    principals = [reader, AUTHENTICATED, "system.Everyone"]

    def loader():
        ids = set()
        for perm in ("read", "write"):
            ids.update(o[len(PREFIX):] for o in permission.get_accessible_objects(principals, perm, prefix=PREFIX))
        return ids

    accessible = AccessibleIds(principals, ("read", "write"), PREFIX, loader=loader, source=permission)
    started = time.perf_counter()
    with storage.transaction():
        records, total = storage.get_all(COLLECTION, "", filters=[Filter("id", accessible, COMPARISON.IN)],
                                         sorting=[Sort("score", -1)], limit=20)
    return (time.perf_counter() - started) * 1000, records, total


#: seconds between two lists (readers are paced like clients, not a busy loop
#: that would starve the writer thread of the memory run of the interpreter).
PAUSE = 0.002


#: quiet and busy phases alternate this many times (see :func:`interleaved`).
ROUNDS = 5


def measure(storage, permission, lists):
    """List ``lists`` times (readers taking turns); return the durations (ms)."""
    durations = []
    for i in range(lists):
        ms, records, _ = list_once(storage, permission, user(i % USERS))
        assert len(records) == 20
        durations.append(ms)
        time.sleep(PAUSE)
    return durations


def _write_while(storage, permission, go, stop, count, seed):
    """Create records while ``go`` is set, until ``stop`` is; ``count()``
    after each."""
    rng, n = random.Random(seed), 0
    while not stop.is_set():
        if not go.wait(0.05):
            continue
        with storage.transaction():
            write_one(storage, permission, rng, n)
        n += 1
        count()
        if storage.__class__.__module__.endswith("memory"):
            time.sleep(0)  # the reader shares this interpreter


def _writer_process(kind, go, stop, counter, seed):
    storage, permission = build(kind)

    def count():
        with counter.get_lock():
            counter.value += 1

    _write_while(storage, permission, go, stop, count, seed)


class Pinned:
    """``--pin``: the reader (this thread) on the first CPU, the writer and
    the Redis server on the others, their affinities given back on exit.
    On a 2-core machine where the reader, the writer and the servers share
    both cores, the same list code runs up to twice as slow while the
    writer is busy whatever it does (cold caches after each preemption):
    pinned, the busy/quiet ratio is the list path's own. PostgreSQL's
    processes are left where they are (the reader's own backend works for
    it)."""

    def __init__(self, enabled, kind, storage):
        cpus = sorted(os.sched_getaffinity(0))
        self.enabled = enabled and len(cpus) >= 2
        self.reader, self.others = {cpus[0]}, set(cpus[1:])
        self._saved: dict = {}
        self._servers = []
        if self.enabled and kind == "redis":  # its server's pid, when local
            try:
                self._servers.append(int(storage.client.info("server")["process_id"]))
            except Exception:  # noqa: BLE001 - a remote or restricted server: not pinned
                pass

    def _pin(self, pid, cpus):
        try:
            self._saved.setdefault(pid, os.sched_getaffinity(pid))
            os.sched_setaffinity(pid, cpus)
        except OSError:  # not ours to move: left where it is
            pass

    def __enter__(self):
        if self.enabled:
            self._pin(0, self.reader)
            for pid in self._servers:
                self._pin(pid, self.others)
        return self

    def writer(self, pid):
        """Move the writer (a process id, or a thread's native id) off the reader's CPU."""
        if self.enabled:
            self._pin(pid, self.others)

    def __exit__(self, *exc):
        for pid, cpus in self._saved.items():
            try:
                os.sched_setaffinity(pid, cpus)
            except OSError:
                pass
        self._saved.clear()


class Writer:
    """One writer, paused between the busy phases: a thread of this process
    on memory (the backends live here), a process of its own otherwise (as
    another worker would be)."""

    def __init__(self, kind, storage, permission):
        if kind == "memory":
            self.go, self.stop, self._done = threading.Event(), threading.Event(), [0]

            def count():
                self._done[0] += 1

            self._worker = threading.Thread(target=_write_while, daemon=True,
                                            args=(storage, permission, self.go, self.stop, count, 7))
        else:
            context = multiprocessing.get_context("spawn")
            self.go, self.stop, self._counter = context.Event(), context.Event(), context.Value("i", 0)
            self._worker = context.Process(target=_writer_process, daemon=True,
                                           args=(kind, self.go, self.stop, self._counter, 7))
        self._worker.start()

    @property
    def pid(self) -> int:
        """The writer's process id (memory: its thread's native id)."""
        return self._worker.native_id if hasattr(self, "_done") else self._worker.pid

    @property
    def done(self) -> int:
        """Records written so far."""
        return self._done[0] if hasattr(self, "_done") else self._counter.value

    def resume(self):
        """Let it write; return once it does (20 writes: started and warm)."""
        self.go.set()
        first, deadline = self.done, time.monotonic() + 60
        while self.done < first + 20 and time.monotonic() < deadline:
            time.sleep(0.01)

    def pause(self):
        """Stop its writes; return once none is under way."""
        self.go.clear()
        last = -1
        while self.done != last:
            last = self.done
            time.sleep(0.06)

    def close(self):
        self.stop.set()
        self.go.set()
        self._worker.join(30)


def interleaved(kind, storage, permission, lists, rounds, pin=False):
    """``rounds`` rounds of ``lists / rounds`` lists with nobody writing, then
    as many with the writer busy: the two phases see the machine in the same
    state (a load that comes and goes weighs on both). Return (quiet
    durations, busy durations, writes/s while busy)."""
    per_round = max(1, lists // rounds)
    quiet, busy, written, seconds = [], [], 0, 0.0
    writer = Writer(kind, storage, permission)
    try:
        with Pinned(pin, kind, storage) as pinned:
            pinned.writer(writer.pid)
            for _ in range(rounds):
                writer.pause()
                measure(storage, permission, USERS)  # not counted: each reader catches up with the busy phase
                quiet.extend(measure(storage, permission, per_round))
                writer.resume()
                before, t0 = writer.done, time.perf_counter()
                busy.extend(measure(storage, permission, per_round))
                written += writer.done - before
                seconds += time.perf_counter() - t0
    finally:
        writer.close()
    return quiet, busy, written / seconds


def pct(values, p):
    """The ``p``-th percentile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run(kind, size, lists, rounds=ROUNDS, pin=False):
    """One row of the report."""
    storage, permission = fresh(kind)
    t0 = time.perf_counter()
    load(kind, storage, permission, size)
    loaded = time.perf_counter() - t0
    measure(storage, permission, USERS * 2)  # warm: each reader's first list builds its view
    quiet, busy, rate = interleaved(kind, storage, permission, lists, rounds, pin)
    if kind == "postgresql":  # the next size drops this database: leave no pooled connection to it
        from cliquet.storage.postgresql_client import close_all

        close_all()
    row = {"backend": kind, "records": size, "load_s": round(loaded, 1), "rounds": rounds, "pinned": pin,
           "quiet_p50": statistics.median(quiet), "quiet_p99": pct(quiet, 99),
           "busy_p50": statistics.median(busy), "busy_p99": pct(busy, 99), "writes_per_s": rate}
    row["busy_over_quiet"] = row["busy_p50"] / row["quiet_p50"]
    return row


def main(argv=None):
    """Run the scenario and print a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--backends", default="memory,redis,postgresql")
    parser.add_argument("--lists", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--pin", action="store_true",
                        help="the reader on one CPU, the writer and the Redis server on the others (see Pinned)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    rows = []
    if args.pin:
        print(f"pinned: the reader on CPU {min(os.sched_getaffinity(0))}, "
              "the writer and the Redis server on the others")
    print(f"{'backend':<11} {'records':>8} {'load s':>7} {'quiet p50':>9} {'p99':>7} "
          f"{'busy p50':>9} {'p99':>7} {'busy/quiet':>10} {'writes/s':>9}", flush=True)
    for kind in args.backends.split(","):
        need = {"redis": "CLIQUET_TEST_REDIS_URL", "postgresql": "CLIQUET_TEST_POSTGRESQL_URL"}.get(kind)
        if need and not os.environ.get(need):
            print(f"SKIPPED {kind}: {need} is not set (eval \"$(ci/services)\" first)", file=sys.stderr)
            continue
        for size in (int(s) for s in args.sizes.split(",")):
            row = run(kind, size, args.lists, args.rounds, args.pin)
            rows.append(row)
            print(f"{kind:<11} {size:>8} {row['load_s']:>7} {row['quiet_p50']:>9.2f} {row['quiet_p99']:>7.2f} "
                  f"{row['busy_p50']:>9.2f} {row['busy_p99']:>7.2f} {row['busy_over_quiet']:>10.2f} "
                  f"{row['writes_per_s']:>9.0f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
