"""Search p50 of the portable query mix, PostgreSQL indexer vs embedded, in
process (no HTTP, no server: what the indexers themselves cost).

Both indexers get the same records (``scenarios.article``, as ``ci/bench``
preloads them: a tenth readable by ``system.Authenticated``, the rest by
their owner only) and every query of ``scenarios.SEARCH_QUERIES`` is sent in
turn as the owner; both answers are checked equal. Run from the root::

    eval "$(ci/services)"
    hatch run test:python ci/bench.d/search_mix.py [--sizes 1000 10000 100000] [--rounds 60]

Prints one Markdown row per size and query, then the mix (median of every
query's time), with the ratio PostgreSQL ÷ embedded (target ≤ 2× at 100 000).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scenarios import SEARCH_QUERIES, article  # noqa: E402

OWNER = "basicauth:bench"
PARENT = "bench-user"


def entries(size):
    """The index entries of ``size`` preloaded articles."""
    from cliquet_indexing.indexer import IndexEntry

    out = []
    for n in range(size):
        record = dict(article(n), id=f"{n:08d}-rec", last_modified=1_700_000_000_000 + n)
        readers = (OWNER, "system.Authenticated") if n % 10 == 0 else (OWNER,)
        out.append(IndexEntry(PARENT, record, readers))
    return out


def postgresql_indexer(url, size):
    """A PostgreSQL indexer on its own table, filled in bulk."""
    from cliquet.storage.postgresql_client import get_client

    from cliquet_indexing.postgresql import PostgreSQLIndexer

    indexer = PostgreSQLIndexer(get_client(url, pool_size=2), prefix=f"mix{size}_")
    indexer.initialize_schema()
    indexer.flush()
    return indexer


def fill(indexer, rows, chunk=2000):
    """Index ``rows`` in chunks; return the records/s."""
    started = time.perf_counter()
    for start in range(0, len(rows), chunk):
        indexer.index_records("article", rows[start:start + chunk])
    return len(rows) / (time.perf_counter() - started)


def timed(indexer, rounds, principals):
    """Per query: the sorted list of times (ms) and the last answer."""
    out = []
    for query in SEARCH_QUERIES:
        validated = indexer.validate_query(query)
        samples, result = [], None
        for _ in range(rounds):
            t0 = time.perf_counter()
            result = indexer.search("article", validated, principals)
            samples.append((time.perf_counter() - t0) * 1000)
        out.append((sorted(samples), result))
    return out


def main(argv=None):
    """Run the sizes; print the table."""
    from cliquet_indexing.embedded import EmbeddedIndexer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--url", default=os.environ.get("CLIQUET_TEST_POSTGRESQL_URL"))
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="search timeout of both indexers, seconds (the service's default, 1 s, "
                             "stops the broad queries at 100 000 on both)")
    args = parser.parse_args(argv)
    principals = ["system.Everyone", "system.Authenticated", OWNER]
    print("| records | query | hits | embedded p50 ms | PostgreSQL p50 ms | ratio |")
    print("|---:|---|---:|---:|---:|---:|")
    for size in args.sizes:
        rows = entries(size)
        embedded = EmbeddedIndexer(url="", prefix=f"mix{size}_")
        embedded.initialize_schema()
        pg = postgresql_indexer(args.url, size)
        for indexer in (embedded, pg):
            indexer.limits = dataclasses.replace(indexer.limits, timeout=args.timeout)
        fill(embedded, rows)
        fill(pg, rows)
        pg.client.execute(f"ANALYZE {pg.table}", fetch=None)
        # warm both
        timed(embedded, 3, principals), timed(pg, 3, principals)
        e, p = timed(embedded, args.rounds, principals), timed(pg, args.rounds, principals)
        all_e, all_p = [], []
        for i, ((es, er), (ps, pr)) in enumerate(zip(e, p)):
            assert er.total == pr.total and [r["id"] for r in er.records] == [r["id"] for r in pr.records], \
                (size, SEARCH_QUERIES[i], er.total, pr.total)
            e50, p50 = statistics.median(es), statistics.median(ps)
            all_e += es
            all_p += ps
            name = next(iter(SEARCH_QUERIES[i]["query"]))
            print(f"| {size} | {i + 1}. {name} | {er.total} | {e50:.2f} | {p50:.2f} | {p50 / e50:.1f}× |", flush=True)
        e50, p50 = statistics.median(all_e), statistics.median(all_p)
        print(f"| {size} | **mix** | — | {e50:.2f} | {p50:.2f} | **{p50 / e50:.1f}×** |", flush=True)
        embedded.close()
        pg.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
