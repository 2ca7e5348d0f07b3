"""Measure the embedded indexer: bulk index throughput, and the latency of a
``match`` + ``range`` + sort query, beside a plain Python scan of the same
records (the floor any engine must beat).

Run from the repository root::

    hatch run test:python packages/cliquet-indexing/bench.py [--sizes 10000 100000] [--queries 300]

The records are synthetic articles (title and body drawn from a Zipf-like
vocabulary, numbers, tags, a nested author); the caller may read every record
(the worst case for the read scope). Each query matches a random word of the
vocabulary's middle band in ``title`` (a second, smaller series: one of the
10 most frequent words, each in about a third of the titles), keeps
``views`` in a range and sorts by ``score`` descending, 10 per page, with
the exact total.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from cliquet_indexing.embedded import EmbeddedIndexer
from cliquet_indexing.indexer import IndexEntry
from cliquet_indexing.query import tokens

OWNER = "basicauth:bench"


def vocabulary(size=3000, seed=1):
    """Return pronounceable distinct words."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "zo", "pa", "do", "ge", "fu", "ha", "ji", "bo"]
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def make_records(count, words, seed=2):
    """Return ``count`` synthetic articles."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(words))]

    def sentence(low, high):
        return " ".join(rng.choices(words, weights, k=rng.randint(low, high))).capitalize()

    return [{"id": f"{i:08d}-rec", "last_modified": 1_700_000_000_000 + i, "title": sentence(3, 8),
             "body": sentence(20, 50), "score": round(rng.random() * 100, 3), "views": rng.randint(0, 10_000),
             "published": rng.random() < 0.7, "tags": rng.sample(words[:50], rng.randint(0, 3)),
             "author": {"name": rng.choice(words[:200]).capitalize(), "age": rng.randint(18, 90)}}
            for i in range(count)]


def query_for(word):
    return {"query": {"bool": {"must": [{"match": {"title": word}}],
                               "filter": [{"range": {"views": {"gte": 1000, "lt": 9000}}}]}},
            "sort": [{"score": "desc"}], "size": 10}


def python_scan(prepared, word, principals):
    """The floor: a loop over pre-tokenized records (scope, match, range, sort)."""
    hits = [r for r, title_words, readers in prepared
            if word in title_words and 1000 <= r["views"] < 9000 and not readers.isdisjoint(principals)]
    hits.sort(key=lambda r: (-r["score"], r["id"]))
    return hits[:10], len(hits)


def percentiles(samples):
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def run(size, queries, url, words):
    records = make_records(size, words)
    indexer = EmbeddedIndexer(url=url, prefix=f"b{size}_")
    indexer.initialize_schema()
    indexer.flush()
    entries = [IndexEntry(OWNER, r, (OWNER,)) for r in records]
    started = time.perf_counter()
    for start in range(0, size, 1000):
        indexer.index_records("article", entries[start:start + 1000])
    index_rate = size / (time.perf_counter() - started)

    rng = random.Random(3)
    principals = ["system.Everyone", "system.Authenticated", OWNER]
    prepared = [(r, set(tokens(r["title"])), {OWNER}) for r in records]
    out = {"size": size, "index_rate": index_rate}
    for label, band, count in (("", words[100:1000], queries), ("broad_", words[:10], max(20, queries // 10))):
        picked = [rng.choice(band) for _ in range(count)]
        out.update({label + k: v for k, v in measure(indexer, prepared, picked, principals).items()})
    indexer.close()
    return out


def measure(indexer, prepared, picked, principals):
    """Time the engine and the scan on the queries of ``picked`` words."""
    engine, floor, totals = [], [], []
    for word in picked:
        validated = indexer.validate_query(query_for(word))
        t0 = time.perf_counter()
        result = indexer.search("article", validated, principals)
        t1 = time.perf_counter()
        expected, total = python_scan(prepared, word, set(principals))
        t2 = time.perf_counter()
        assert result.total == total and [r["id"] for r in result.records] == [r["id"] for r in expected], word
        engine.append((t1 - t0) * 1000)
        floor.append((t2 - t1) * 1000)
        totals.append(total)
    return {"engine": percentiles(engine), "floor": percentiles(floor), "hits": statistics.median(totals)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--url", default="", help="cliquet.indexing_url (default: in memory)")
    args = parser.parse_args(argv)
    words = vocabulary()
    print(f"{'records':>8} | {'indexed/s':>9} | {'median hits':>11} | {'FTS5 p50':>8} | {'FTS5 p99':>8} | "
          f"{'scan p50':>8} | {'scan p99':>8} | p50 ratio")
    for size in args.sizes:
        r = run(size, args.queries, args.url, words)
        for label, name in (("", "mid-frequency words"), ("broad_", "the 10 most frequent words")):
            (e50, e99), (f50, f99) = r[label + "engine"], r[label + "floor"]
            print(f"{size:>8} | {r['index_rate']:>9.0f} | {r[label + 'hits']:>11.0f} | {e50:>6.2f}ms | "
                  f"{e99:>6.2f}ms | {f50:>6.2f}ms | {f99:>6.2f}ms | {f50 / e50:>6.1f}x  ({name})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
