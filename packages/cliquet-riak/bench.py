"""Get/set operations per second through the Riak cache backend.

Not a test: a measurement to run by hand, from the repository root::

    hatch run test:python packages/cliquet-riak/bench.py [--ops 5000] [--threads 1 8]

It measures ``set`` then ``get`` through :class:`cliquet_riak.cache.RiakCache`
against a Riak stand-in started for the run (or the Riak at
``CLIQUET_RIAK_URL``), and, in the same run, through the Redis cache
(``cliquet.cache.redis``) when ``CLIQUET_TEST_REDIS_URL`` is set, so that the
figures compare backends on the same machine at the same moment. Each
backend gets its own key prefix, flushed afterwards.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import time
import uuid

from cliquet.testing import make_config

VALUE = {"user": "alice", "scopes": ["read", "write"], "expires": 1700000000, "n": 1}


def measure(cache, operation: str, ops: int, threads: int) -> float:
    """Run ``ops`` operations split over ``threads`` threads; return ops/s."""
    per_thread = ops // threads
    errors: list[BaseException] = []

    def work(index):
        try:
            for i in range(per_thread):
                key = f"bench-{index}-{i}"
                if operation == "set":
                    cache.set(key, VALUE, ttl=300)
                else:
                    cache.get(key)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return per_thread * threads / elapsed


def bench(name, cache, ops, thread_counts):
    """Print one line per (operation, threads) for ``cache``."""
    cache.flush()
    cache.set("warm-up", 1)
    cache.get("warm-up")
    rows = []
    for threads in thread_counts:
        for operation in ("set", "get"):
            rate = measure(cache, operation, ops, threads)
            rows.append((name, operation, threads, rate))
            print(f"{name:<22} {operation:<4} threads={threads:<3} {rate:>10,.0f} ops/s", flush=True)
    cache.flush()
    return rows


def main(argv=None):
    """Run the measurements and print ops/s (and the Riak/Redis ratios)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=5000, help="operations per measurement")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args(argv)
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"

    from cliquet_riak import cache as riak_cache
    from cliquet_riak.testing import StandinProcess

    node = None
    riak_url = os.environ.get("CLIQUET_RIAK_URL")
    if not riak_url:
        node = StandinProcess().start()
        riak_url = node.url
    results = []
    try:
        pool = str(max(args.threads) + 2)
        riak = riak_cache.load_from_config(make_config(cache_url=f"{riak_url}/default/bench",
                                                       cache_prefix=prefix, cache_pool_size=pool,
                                                       riak_purge_interval="0"))
        label = "riak (stand-in)" if node else "riak"
        print(f"# {args.ops} operations each; Riak at {riak_url}", flush=True)
        # The floor: bare HTTP round trips (GET /ping) on the same client.
        start = time.perf_counter()
        for _ in range(args.ops):
            riak.client.request("GET", "/ping", ok=(200,))
        rate = args.ops / (time.perf_counter() - start)
        print(f"{label:<22} ping threads=1   {rate:>10,.0f} ops/s  (HTTP round trips, the floor)", flush=True)
        results += bench(label, riak, args.ops, args.threads)
        riak.close()
    finally:
        if node:
            node.kill()

    redis_url = os.environ.get("CLIQUET_TEST_REDIS_URL")
    if redis_url:
        try:
            redis_cache = importlib.import_module("cliquet.cache.redis")
        except ImportError as exc:
            print(f"# Redis cache backend not available ({exc}): no comparison", flush=True)
        else:
            redis = redis_cache.load_from_config(make_config(cache_url=redis_url, cache_prefix=prefix,
                                                             cache_pool_size=str(max(args.threads) + 2)))
            results += bench("redis", redis, args.ops, args.threads)
            by_key = {(op, t): rate for name, op, t, rate in results if name == "redis"}
            for name, op, threads, rate in results:
                if name != "redis" and (op, threads) in by_key:
                    print(f"# {op} threads={threads}: riak/redis = {rate / by_key[(op, threads)]:.2f}")
    else:
        print("# CLIQUET_TEST_REDIS_URL is not set: no Redis comparison", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
