"""Bulk indexing throughput and search latency through cliquet-elasticsearch,
beside the bare ``elasticsearch`` client on the same node, in the same run.

    eval "$(./ci/services)"
    hatch run test:python packages/cliquet-elasticsearch/bench.py [--records 100000]

Bulk load
    plugin: ``ElasticsearchIndexer.index_records`` in calls of 1 000 records
    (what ``cliquet-indexing reindex`` does), each call ending with a
    refresh (the default ``cliquet.elasticsearch_refresh = true``: written
    records are searchable when the call returns).
    bare: ``client.bulk`` with the same records in requests of 1 000,
    Elasticsearch's default dynamic mapping, one refresh at the end.

Search
    the same portable query (``match`` + ``range`` + sort, size 10) run
    through the plugin (validation, translation, read scope, records out)
    and sent by the bare client as the request body the plugin builds, on
    the same index; alternated, after a warm-up; p50/p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu amber basalt cobalt dune ember "
         "fjord granite harbor island jungle kelp lagoon meadow nebula orchid prairie quartz river summit "
         "tundra upland valley willow yarrow zephyr").split()
USERS = [f"user{i}" for i in range(10)]


def make_records(count: int, seed: int = 7) -> list:
    """``count`` records of varied shapes (text, numbers, lists, objects)."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        records.append({
            "id": f"r{i:07d}", "last_modified": 1_700_000_000_000 + i,
            "title": " ".join(rng.choices(WORDS, k=rng.randint(3, 6))),
            "body": " ".join(rng.choices(WORDS, k=20)),
            "score": rng.randint(0, 1000), "rating": round(rng.random() * 5, 2),
            "published": rng.random() < 0.5, "tags": rng.sample(WORDS, 2),
            "author": {"name": rng.choice(WORDS).title(), "age": rng.randint(18, 90)},
        })
    return records


def percentile(samples: list, fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main(argv=None) -> int:
    from elasticsearch import Elasticsearch

    from cliquet_elasticsearch import translate
    from cliquet_elasticsearch.indexer import ElasticsearchIndexer
    from cliquet_indexing.indexer import IndexEntry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("CLIQUET_TEST_ELASTICSEARCH_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=400)
    args = parser.parse_args(argv)

    run = f"bench{os.getpid()}_"
    indexer = ElasticsearchIndexer(url=args.url, prefix=run + "plugin_", timeout=120)
    client = Elasticsearch(args.url, request_timeout=120)
    bare_index = run + "bare"
    records = make_records(args.records)
    owners = [USERS[i % len(USERS)] for i in range(len(records))]
    print(f"Elasticsearch {client.info()['version']['number']} at {args.url}, client "
          f"{__import__('elasticsearch').__versionstr__}, {len(records)} records")
    try:
        # -- bulk load ---------------------------------------------------------------
        indexer.index_records("warmup", [IndexEntry("u", dict(records[0]), ("u",))])
        started = time.perf_counter()
        for start in range(0, len(records), args.batch):
            entries = [IndexEntry(owners[i], records[i], (owners[i],))
                       for i in range(start, min(start + args.batch, len(records)))]
            indexer.index_records("articles", entries)
        plugin_seconds = time.perf_counter() - started

        client.indices.create(index=bare_index, settings={"number_of_shards": 1, "auto_expand_replicas": "0-1"})
        started = time.perf_counter()
        for start in range(0, len(records), args.batch):
            operations = []
            for record in records[start:start + args.batch]:
                operations.append({"index": {"_index": bare_index, "_id": record["id"]}})
                operations.append(record)
            response = client.bulk(operations=operations)
            assert not response["errors"]
        client.indices.refresh(index=bare_index)
        bare_seconds = time.perf_counter() - started
        assert client.count(index=bare_index)["count"] == len(records)
        assert indexer.search("articles", indexer.validate_query({"size": 0}), USERS).total == len(records)

        plugin_rate, bare_rate = len(records) / plugin_seconds, len(records) / bare_seconds
        print(f"bulk load  plugin {plugin_rate:9.0f} records/s ({plugin_seconds:.1f}s)   "
              f"bare {bare_rate:9.0f} records/s ({bare_seconds:.1f}s)   ratio {plugin_rate / bare_rate:.0%}")

        # -- search ----------------------------------------------------------------------
        rng = random.Random(3)
        bodies = [{"query": {"bool": {"must": [{"match": {"title": rng.choice(WORDS)}}],
                                      "filter": [{"range": {"score": {"gte": rng.randint(0, 900)}}}]}},
                   "sort": [{"score": "desc"}], "size": 10} for _ in range(50)]
        alias = indexer.alias("articles")
        types, text_fields = indexer._field_types(alias)

        def bare_body(body, principals):
            query = indexer.validate_query(body)
            return {"query": translate.scoped(translate.translate(query["query"], types, text_fields), principals),
                    "sort": translate.sort_clauses(query["sort"], types), "size": query["size"],
                    "from": query["from"]}

        prepared = [(body, [USERS[i % len(USERS)]]) for i, body in enumerate(bodies)]
        raw = [bare_body(body, principals) for body, principals in prepared]
        timings = {"plugin": [], "bare": []}
        for n in range(args.queries + 50):
            body, principals = prepared[n % len(prepared)]
            started = time.perf_counter()
            result = indexer.search("articles", indexer.validate_query(body), principals)
            plugin_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            response = client.search(index=alias, track_total_hits=True, **raw[n % len(raw)])
            bare_ms = (time.perf_counter() - started) * 1000
            assert response["hits"]["total"]["value"] == result.total
            if n >= 50:
                timings["plugin"].append(plugin_ms)
                timings["bare"].append(bare_ms)
        p50 = {k: statistics.median(v) for k, v in timings.items()}
        p99 = {k: percentile(v, 0.99) for k, v in timings.items()}
        print(f"search     plugin p50 {p50['plugin']:.2f} ms p99 {p99['plugin']:.2f} ms   "
              f"bare p50 {p50['bare']:.2f} ms p99 {p99['bare']:.2f} ms   "
              f"added p50 {p50['plugin'] - p50['bare']:+.2f} ms   ({args.queries} queries each)")
        ok = plugin_rate >= 0.8 * bare_rate and p50["plugin"] - p50["bare"] <= 2.0
        print("targets (>= 80% of bare bulk throughput, <= 2 ms added p50):", "met" if ok else "NOT met")
        return 0
    finally:
        indexer.flush()
        client.options(ignore_status=404).indices.delete(index=bare_index)
        indexer.close()
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
