"""What the Elasticsearch indexer does beyond the shared contract: settings,
index layout, records that do not fit the mapping, prefixes that overlap,
several nodes, the DSL checks."""

from __future__ import annotations

import pytest
from pyramid.exceptions import ConfigurationError

import cliquet_elasticsearch
from cliquet_elasticsearch import mapping, translate
from cliquet_elasticsearch.indexer import ElasticsearchIndexer, parse_hosts
from cliquet_indexing.indexer import IndexEntry
from cliquet_indexing.query import InvalidQuery
from cliquet_indexing.testing import make_config

EVERYTHING = {"query": {"match_all": {}}, "sort": [], "size": 100, "from": 0}


def test_load_from_config_reads_the_settings():
    config = make_config(indexing_url="http://a:9200, http://b:9200", indexing_prefix="Shop_",
                         elasticsearch_refresh="wait_for", elasticsearch_timeout="30s",
                         elasticsearch_bulk_size="250", search_max_size="20")
    indexer = cliquet_elasticsearch.load_from_config(config)
    assert isinstance(indexer, ElasticsearchIndexer)
    assert indexer.hosts == ["http://a:9200", "http://b:9200"]
    assert (indexer.prefix, indexer.refresh, indexer.timeout, indexer.bulk_size, indexer.max_size) == (
        "shop_", "wait_for", 30.0, 250, 20)


def test_defaults():
    indexer = cliquet_elasticsearch.load_from_config(make_config())
    assert indexer.hosts == ["http://127.0.0.1:9200"] and indexer.prefix == "cliquet_"
    assert indexer.refresh == "true"


@pytest.mark.parametrize("name, value", [("elasticsearch_refresh", "sometimes"),
                                         ("elasticsearch_bulk_size", "0"),
                                         ("elasticsearch_timeout", "soon")])
def test_bad_settings_name_the_setting(name, value):
    with pytest.raises(ConfigurationError, match=name):
        cliquet_elasticsearch.load_from_config(make_config(**{name: value}))


def test_parse_hosts():
    assert parse_hosts("") == ["http://127.0.0.1:9200"]
    assert parse_hosts("http://a:1 http://b:2,http://c:3") == ["http://a:1", "http://b:2", "http://c:3"]


def test_index_names():
    assert mapping.alias_name("p_", "article") == "p_article"
    assert mapping.alias_name("p_", "Article") == "p_~41727469636c65"
    assert mapping.index_name("p_article") == "p_article.v1"
    assert mapping.doc_id("alice", "a") != mapping.doc_id("alicea", "")
    assert len(mapping.doc_id("x" * 1000, "y" * 1000)) == 32


def test_one_index_per_resource_with_explicit_mappings(make_indexer, es_prefix):
    indexer = make_indexer(es_prefix)
    indexer.index_records("article", [IndexEntry("alice", {"id": "a", "last_modified": 1, "title": "Hello",
                                                           "views": 3}, ("alice",))])
    found = indexer.client.indices.get(index=f"{es_prefix}*")
    assert list(found) == [f"{es_prefix}article.v1"]
    body = found[f"{es_prefix}article.v1"]
    assert f"{es_prefix}article" in body["aliases"]
    properties = body["mappings"]["properties"]
    assert properties["title"]["type"] == "text" and properties["title"]["fields"]["keyword"]["type"] == "keyword"
    assert properties["views"]["type"] == "double"
    assert properties["_cliquet"]["properties"]["s"]["type"] == "keyword"


def test_a_record_that_does_not_fit_is_kept_whole(make_indexer, es_prefix):
    indexer = make_indexer(es_prefix)
    indexer.index_records("r", [IndexEntry("u", {"id": "a", "last_modified": 1, "n": 1}, ("u",))])
    odd = {"id": "b", "last_modified": 2, "n": {"not": "a number"}}
    reserved = {"id": "c", "last_modified": 3, "_cliquet": "mine"}
    indexer.index_records("r", [IndexEntry("u", odd, ("u",)), IndexEntry("u", reserved, ("u",))])
    result = indexer.search("r", EVERYTHING, ["u"])
    assert sorted(result.records, key=lambda r: r["id"])[1:] == [odd, reserved]
    assert indexer.search("r", EVERYTHING, ["someone else"]).total == 0
    assert set(indexer.indexed_keys("r")) == {("u", "a", 1), ("u", "b", 2), ("u", "c", 3)}


def test_flush_spares_an_overlapping_prefix(make_indexer, es_prefix):
    short, longer = make_indexer(es_prefix), make_indexer(es_prefix + "x_")
    for indexer in (short, longer):
        indexer.index_records("r", [IndexEntry("u", {"id": "a", "last_modified": 1}, ("u",))])
    short.flush()
    assert short.search("r", EVERYTHING, ["u"]).total == 0
    assert longer.search("r", EVERYTHING, ["u"]).total == 1


def test_a_removed_index_is_created_again_with_its_mappings(make_indexer, es_prefix):
    indexer = make_indexer(es_prefix)
    indexer.index_records("r", [IndexEntry("u", {"id": "a", "last_modified": 1, "t": "x"}, ("u",))])
    indexer.client.indices.delete(index=f"{es_prefix}r.v1")
    indexer.index_records("r", [IndexEntry("u", {"id": "b", "last_modified": 1, "t": "y"}, ("u",))])
    found = indexer.client.indices.get(index=f"{es_prefix}r*")
    assert list(found) == [f"{es_prefix}r.v1"]
    assert found[f"{es_prefix}r.v1"]["mappings"]["properties"]["t"]["fields"]["keyword"]["type"] == "keyword"


def test_initialize_schema_updates_existing_indexes(make_indexer, es_prefix):
    indexer = make_indexer(es_prefix)
    indexer.index_records("r", [IndexEntry("u", {"id": "a", "last_modified": 1}, ("u",))])
    indexer.initialize_schema(dry_run=True)
    indexer.initialize_schema()
    meta = indexer.client.indices.get_mapping(index=f"{es_prefix}r")[f"{es_prefix}r.v1"]["mappings"]["_meta"]
    assert meta["cliquet"] == {"prefix": es_prefix, "resource": "r", "schema": mapping.SCHEMA_VERSION}


def test_several_nodes_one_down(make_indexer, es_prefix, elasticsearch_url):
    indexer = make_indexer(es_prefix, url=f"http://127.0.0.1:9,{elasticsearch_url}")
    for n in range(4):
        indexer.index_records("r", [IndexEntry("u", {"id": f"a{n}", "last_modified": 1}, ("u",))])
    assert indexer.search("r", EVERYTHING, ["u"]).total == 4
    assert indexer.heartbeat() is True


def test_refresh_false_still_writes(make_indexer, es_prefix):
    indexer = make_indexer(es_prefix, refresh="false")
    indexer.index_records("r", [IndexEntry("u", {"id": "a", "last_modified": 1}, ("u",))])
    indexer.client.indices.refresh(index=indexer.alias("r"))
    assert indexer.search("r", EVERYTHING, ["u"]).total == 1


def test_aggregations_come_back_within_the_scope(make_indexer, es_prefix):
    indexer = make_indexer(es_prefix)
    indexer.index_records("r", [IndexEntry("u" if n % 3 else "v", {"id": f"a{n}", "last_modified": 1,
                                                                    "kind": f"k{n % 2}"}, ("u" if n % 3 else "v",))
                                for n in range(30)])
    query = indexer.validate_query({"size": 0, "aggs": {"kinds": {"terms": {"field": "kind.keyword"}}}})
    result = indexer.search("r", query, ["u"])
    assert result.total == 20 and result.records == []
    assert sum(b["doc_count"] for b in result.extra["aggregations"]["kinds"]["buckets"]) == 20


# -- which bodies pass through (no server needed) --------------------------------------------

@pytest.mark.parametrize("body", [
    {"query": {"fuzzy": {"title": "x"}}},
    {"aggs": {"a": {"terms": {"field": "t.keyword"}}}},
    {"query": {"match_all": {}}, "highlight": {"fields": {"t": {}}}},
    {"query": {"bool": {"must": [{"wildcard": {"t.keyword": "a*"}}]}}},
    {"query": {"match": {"t": {"query": "x", "fuzziness": "AUTO"}}}},
], ids=repr)
def test_other_dsl_passes_through(body):
    query = translate.validate(body, max_size=100)
    assert translate.RAW in query and query["size"] == 10


@pytest.mark.parametrize("body", [
    {"query": {"match": {"_cliquet.s": "u"}}},
    {"query": {"exists": {"field": "_cliquet.p"}}},
    {"sort": ["_cliquet.rid"]},
    {"query": {"fuzzy": {"_cliquet.s": "u"}}},
    {"aggs": {"g": {"global": {}}}},
    {"aggs": {"t": {"terms": {"field": "t.keyword", "min_doc_count": 0}}}},
    {"query": {"more_like_this": {"like": [{"_index": "other", "_id": "1"}]}}},
    {"query": {"percolate": {"field": "q", "document": {}}}},
    {"query": {"fuzzy": {"t": "x"}}, "size": -1},
    {"query": {"fuzzy": {"t": "x"}}, "from": 9995, "size": 10},
    {"query": "fuzzy"},
], ids=repr)
def test_refused_bodies(body):
    with pytest.raises(InvalidQuery):
        translate.validate(body, max_size=100)
