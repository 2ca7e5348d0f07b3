"""Bulk indexing throughput and search latency through cliquet-elasticsearch,
beside the bare ``elasticsearch`` client on the same node, in the same run.

    eval "$(./ci/services)"
    hatch run test:python packages/cliquet-elasticsearch/bench.py [--records 100000]

Bulk load
    The same records loaded four ways, interleaved 10 000 at a time (the
    order rotating, after a warm-up round) so that the node's warm-up and
    merges weigh on all alike:

    * bare client: ``client.bulk`` in requests of 1 000, Elasticsearch's
      default dynamic mapping, one refresh at the end;
    * plugin, 10 000 per call: ``ElasticsearchIndexer.index_records`` with
      10 000 records (sent as bulk requests of 1 000, the default
      ``cliquet.elasticsearch_refresh = true`` refreshing once per call);
    * plugin, 1 000 per call: what ``cliquet-indexing reindex`` does with its
      default batch size: a refresh after every 1 000 records;
    * the same with ``refresh = false`` (one refresh at the end), the
      setting to run a large reindex with.

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
    refresh_off = None
    indexer = ElasticsearchIndexer(url=args.url, prefix=run + "plugin_", timeout=120)
    client = Elasticsearch(args.url, request_timeout=120)
    bare_index = run + "bare"
    records = make_records(args.records)
    owners = [USERS[i % len(USERS)] for i in range(len(records))]
    version = next(iter(client.nodes.info(node_id="_local", metric="_none")["nodes"].values()))["version"]
    print(f"Elasticsearch {version} at {args.url}, client "
          f"{__import__('elasticsearch').__versionstr__}, {len(records)} records")
    try:
        # -- bulk load ---------------------------------------------------------------
        # Four loads of the same records, interleaved round by round (the
        # order rotating) so that the node's warm-up and merges weigh on all
        # alike; a first round is a warm-up and does not count.
        refresh_off = ElasticsearchIndexer(url=args.url, prefix=run + "norefresh_", timeout=120, refresh="false")
        client.indices.create(index=bare_index, settings={"number_of_shards": 1, "auto_expand_replicas": "0-1"})

        def entries(lo, hi):
            return [IndexEntry(owners[i], records[i], (owners[i],)) for i in range(lo, hi)]

        def bare(lo, hi):
            for start in range(lo, hi, args.batch):
                operations = []
                for record in records[start:min(start + args.batch, hi)]:
                    operations.append({"index": {"_index": bare_index, "_id": record["id"]}})
                    operations.append(record)
                assert not client.bulk(operations=operations)["errors"]

        def plugin_round(lo, hi):
            indexer.index_records("round", entries(lo, hi))

        def plugin_calls(target, resource):
            def load(lo, hi):
                for start in range(lo, hi, args.batch):
                    target.index_records(resource, entries(start, min(start + args.batch, hi)))
            return load

        loads = {"bare client": bare, "plugin, 10 000 per call": plugin_round,
                 "plugin, 1 000 per call": plugin_calls(indexer, "calls"),
                 "plugin, 1 000 per call, refresh=false": plugin_calls(refresh_off, "calls")}
        seconds = dict.fromkeys(loads, 0.0)
        step = 10_000
        rounds = [(lo, min(lo + step, len(records))) for lo in range(0, len(records), step)]
        for n, (lo, hi) in enumerate([rounds[0]] + rounds):
            names = list(loads)[n % len(loads):] + list(loads)[:n % len(loads)]
            for name in names:
                started = time.perf_counter()
                loads[name](lo, hi)
                if n:
                    seconds[name] += time.perf_counter() - started
        for name, refresh in (("bare client", lambda: client.indices.refresh(index=bare_index)),
                              ("plugin, 1 000 per call, refresh=false",
                               lambda: client.indices.refresh(index=refresh_off.alias("calls")))):
            started = time.perf_counter()
            refresh()
            seconds[name] += time.perf_counter() - started
        assert client.count(index=bare_index)["count"] == len(records)
        for target, resource in ((indexer, "round"), (indexer, "calls"), (refresh_off, "calls")):
            assert target.search(resource, target.validate_query({"size": 0}), USERS).total == len(records)
        rates = {name: len(records) / value for name, value in seconds.items()}
        for name, rate in rates.items():
            print(f"bulk load  {name:40s} {rate:8.0f} records/s   {rate / rates['bare client']:5.0%} of bare")
        plugin_rate, bare_rate = rates["plugin, 10 000 per call"], rates["bare client"]

        # -- search ----------------------------------------------------------------------
        rng = random.Random(3)
        bodies = [{"query": {"bool": {"must": [{"match": {"title": rng.choice(WORDS)}}],
                                      "filter": [{"range": {"score": {"gte": rng.randint(0, 900)}}}]}},
                   "sort": [{"score": "desc"}], "size": 10} for _ in range(50)]
        alias = indexer.alias("round")
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
            result = indexer.search("round", indexer.validate_query(body), principals)
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
        if refresh_off is not None:
            refresh_off.flush()
            refresh_off.close()
        client.options(ignore_status=404).indices.delete(index=bare_index)
        indexer.close()
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
