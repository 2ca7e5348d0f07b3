"""The search endpoint with Elasticsearch as the indexer, beyond the shared
endpoint contract (test_endpoint_contract.py: read scope, pages, totals,
shares, the portable language and the protocol's errors): the ways of
enabling the package, the Elasticsearch DSL passing through, and the DSL
refused because it would look past the read scope."""

from __future__ import annotations

import pytest
import webtest
from pyramid.config import Configurator

import cliquet
from cliquet.testing.app import TEST_SECRET, Article, SharedArticle, basic_auth
from cliquet_elasticsearch.indexer import ElasticsearchIndexer
from cliquet_indexing.testing.app import make_search_app

URL = "/v1/search/articles"


def included_app(prefix, url, how, resources=(Article,)):
    """An app enabling cliquet_elasticsearch by ``pyramid.includes`` or by
    ``config.include`` after ``cliquet.initialize``."""
    settings = {"cliquet.userid_hmac_secret": TEST_SECRET, "cliquet.indexing_url": url,
                "cliquet.indexing_prefix": prefix, "cliquet.indexing_retry_interval": "0",
                "cliquet.elasticsearch_timeout": "30s"}
    if how == "pyramid.includes":
        settings["pyramid.includes"] = "cliquet_elasticsearch"
    config = Configurator(settings=settings)
    cliquet.initialize(config, "0.0.1", project_name="testapp")
    if how == "config.include":
        config.include("cliquet_elasticsearch")
    for resource_cls in resources:
        config.add_resource(resource_cls)
    return webtest.TestApp(config.make_wsgi_app())


@pytest.fixture(params=["per-user", "shareable"])
def app(request, elasticsearch_url, es_prefix):
    resources = (Article,) if request.param == "per-user" else (SharedArticle,)
    return included_app(es_prefix, elasticsearch_url, "pyramid.includes", resources)


@pytest.fixture
def alice():
    return basic_auth("alice")


@pytest.fixture
def bob():
    return basic_auth("bob")


def create(app, headers, **data):
    return app.post_json("/v1/articles", {"data": data}, headers=headers).json["data"]


def search(app, headers, body=None, status=200):
    return app.post_json(URL, body if body is not None else {}, headers=headers, status=status)


def userid(app, headers):
    return app.get("/v1/", headers=headers).json["user"]["id"]


@pytest.mark.parametrize("how", ["pyramid.includes", "config.include", "indexing_backend"])
def test_the_ways_to_enable_it(elasticsearch_url, es_prefix, alice, how):
    if how == "indexing_backend":
        app = make_search_app(indexing_backend="cliquet_elasticsearch", indexing_url=elasticsearch_url,
                              indexing_prefix=es_prefix, elasticsearch_timeout="30s")
    else:
        app = included_app(es_prefix, elasticsearch_url, how)
    indexer = app.app.registry.indexer
    assert isinstance(indexer, ElasticsearchIndexer) and indexer.prefix == es_prefix
    record = create(app, alice, title="Enabled by " + how)
    resp = search(app, alice, {"query": {"match": {"title": "enabled"}}})
    assert resp.json["data"] == [record] and resp.headers["Total-Records"] == "1"
    assert "search" in app.get("/v1/").json["capabilities"]
    assert app.get("/__heartbeat__").json["indexer"] is True


def test_an_explicit_backend_is_kept(elasticsearch_url, es_prefix):
    settings = {"cliquet.userid_hmac_secret": TEST_SECRET, "cliquet.indexing_backend": "cliquet_indexing.embedded",
                "pyramid.includes": "cliquet_elasticsearch"}
    config = Configurator(settings=settings)
    cliquet.initialize(config, "0.0.1", project_name="testapp")
    config.commit()
    assert not isinstance(config.registry.indexer, ElasticsearchIndexer)


def test_elasticsearch_dsl_passes_through(app, alice):
    create(app, alice, title="Elasticsearch in action", score=5)
    create(app, alice, title="Elephants", score=1)
    resp = search(app, alice, {"query": {"fuzzy": {"title": {"value": "elasticsaerch"}}}})
    assert [r["title"] for r in resp.json["data"]] == ["Elasticsearch in action"]
    resp = search(app, alice, {"query": {"match_phrase_prefix": {"title": "elep"}},
                               "highlight": {"fields": {"title": {}}}})
    assert resp.headers["Total-Records"] == "1"


BAD_BODIES = {
    # Elasticsearch DSL that would look past the read scope.
    "global aggregation": {"aggs": {"all": {"global": {}, "aggs": {"n": {"value_count": {"field": "score"}}}}}},
    "nested global aggregation": {"aggs": {"t": {"terms": {"field": "score"},
                                                 "aggs": {"g": {"global": {}}}}}},
    "significant terms": {"aggs": {"s": {"significant_terms": {"field": "title.keyword"}}}},
    "terms of every record": {"aggs": {"t": {"terms": {"field": "title.keyword", "min_doc_count": 0}}}},
    "suggesters": {"suggest": {"s": {"text": "x", "term": {"field": "title"}}}},
    "terms lookup": {"query": {"terms": {"title": {"index": "other", "id": "1", "path": "x"}}}},
    "reserved fields": {"query": {"term": {"_cliquet.s": "system.Everyone"}}},
    "unknown top-level key": {"script_fields": {}},
    "size too large (DSL)": {"query": {"fuzzy": {"title": "x"}}, "size": 1000},
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_queries_are_400_107(app, alice, case):
    resp = search(app, alice, BAD_BODIES[case], status=400)
    assert resp.json["errno"] == 107
    assert resp.json["details"] and all(d["location"] == "body" for d in resp.json["details"])


def test_a_query_elasticsearch_refuses_is_400_107(app, alice):
    create(app, alice, title="x")
    resp = search(app, alice, {"query": {"match_all": {}}, "sort": [{"title": "asc"}], "aggs": {}}, status=400)
    assert resp.json["errno"] == 107


