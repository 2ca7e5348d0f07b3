"""The search endpoint through the whole WSGI stack, with Elasticsearch as
the indexer: both ways of enabling the package, the read scope (pages,
totals, shares, aggregations), the portable query language and the
Elasticsearch DSL passing through, and the protocol's errors."""

from __future__ import annotations

import json

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


def test_created_updated_deleted(app, alice):
    first = create(app, alice, title="The brown fox", score=3.0, tags=["animals"])
    second = create(app, alice, title="Lazy dogs", score=1.0)
    assert search(app, alice, {"query": {"match": {"title": "FOX"}}}).json["data"] == [first]
    app.patch_json(f"/v1/articles/{first['id']}", {"data": {"title": "after"}}, headers=alice)
    assert search(app, alice, {"query": {"match": {"title": "fox"}}}).json["data"] == []
    app.delete(f"/v1/articles/{second['id']}", headers=alice)
    resp = search(app, alice)
    assert [r["title"] for r in resp.json["data"]] == ["after"] and resp.headers["Total-Records"] == "1"
    app.delete("/v1/articles", headers=alice)
    assert search(app, alice).headers["Total-Records"] == "0"


def test_batch_writes_are_indexed(app, alice):
    requests = [{"method": "POST", "path": "/articles", "body": {"data": {"title": f"batch {i}", "score": i}}}
                for i in range(12)]
    app.post_json("/v1/batch", {"requests": requests}, headers=alice)
    resp = search(app, alice, {"query": {"range": {"score": {"gte": 4}}}, "sort": [{"score": "desc"}], "size": 3})
    assert resp.headers["Total-Records"] == "8"
    assert [r["score"] for r in resp.json["data"]] == [11, 10, 9]


def test_two_users_never_see_each_other(app, alice, bob):
    requests = [{"method": "POST", "path": "/articles", "body": {"data": {"title": f"secret plan {i}",
                                                                          "score": i}}} for i in range(23)]
    app.post_json("/v1/batch", {"requests": requests}, headers=alice)
    for i in range(7):
        create(app, bob, title=f"secret recipe {i}", score=i)
    for headers, expected, word in ((alice, 23, "plan"), (bob, 7, "recipe")):
        seen = []
        for start in range(0, 30, 5):
            resp = search(app, headers, {"query": {"match": {"title": "secret"}}, "sort": ["score"],
                                         "size": 5, "from": start})
            assert resp.headers["Total-Records"] == str(expected)
            seen += resp.json["data"]
        assert len(seen) == expected and all(word in r["title"] for r in seen)
    assert search(app, bob, {"query": {"match": {"title": "plan"}}}).headers["Total-Records"] == "0"
    assert app.get(URL + "?q=secret+plan", headers=bob).headers["Total-Records"] == "0"
    assert app.get(URL + "?q=secret+plan", headers=alice).headers["Total-Records"] == "23"
    # Aggregations count only what the caller may read, too.
    body = {"size": 0, "aggs": {"words": {"terms": {"field": "title.keyword", "size": 50}},
                                "top": {"max": {"field": "score"}}}}
    resp = search(app, bob, body)
    assert resp.json["data"] == [] and resp.headers["Total-Records"] == "7"
    buckets = resp.json["aggregations"]["words"]["buckets"]
    assert sum(b["doc_count"] for b in buckets) == 7 and all("recipe" in b["key"] for b in buckets)
    assert resp.json["aggregations"]["top"]["value"] == 6


def test_shares_are_searchable_and_revocable(elasticsearch_url, es_prefix, alice, bob):
    app = included_app(es_prefix, elasticsearch_url, "config.include", (SharedArticle,))
    carol = basic_auth("carol")
    private = create(app, alice, title="private note")
    shared = app.post_json("/v1/articles", {"data": {"title": "team note"},
                                            "permissions": {"read": [userid(app, bob)]}}, headers=alice).json["data"]
    public = app.post_json("/v1/articles", {"data": {"title": "public note"},
                                            "permissions": {"read": ["system.Authenticated"]}},
                           headers=alice).json["data"]

    def found(headers):
        resp = search(app, headers, {"query": {"match": {"title": "note"}}, "sort": ["title"]})
        assert resp.headers["Total-Records"] == str(len(resp.json["data"]))
        return [r["id"] for r in resp.json["data"]]

    assert found(alice) == [private["id"], public["id"], shared["id"]]
    assert found(bob) == [public["id"], shared["id"]]
    assert found(carol) == [public["id"]]
    app.patch_json(f"/v1/articles/{shared['id']}", {"permissions": {"read": []}}, headers=alice)
    assert found(bob) == [public["id"]]
    app.patch_json(f"/v1/articles/{private['id']}", {"permissions": {"read": ["system.Everyone"]}}, headers=alice)
    assert found(carol) == [private["id"], public["id"]]


def test_get_form(app, alice):
    create(app, alice, title="Brown fox", tags=["quick"])
    create(app, alice, title="Brown bear")
    assert app.get(URL + "?q=brown", headers=alice).headers["Total-Records"] == "2"
    assert app.get(URL + "?q=quick+BROWN", headers=alice).headers["Total-Records"] == "1"
    assert len(app.get(URL + "?size=1", headers=alice).json["data"]) == 1


def test_elasticsearch_dsl_passes_through(app, alice):
    create(app, alice, title="Elasticsearch in action", score=5)
    create(app, alice, title="Elephants", score=1)
    resp = search(app, alice, {"query": {"fuzzy": {"title": {"value": "elasticsaerch"}}}})
    assert [r["title"] for r in resp.json["data"]] == ["Elasticsearch in action"]
    resp = search(app, alice, {"query": {"match_phrase_prefix": {"title": "elep"}},
                               "highlight": {"fields": {"title": {}}}})
    assert resp.headers["Total-Records"] == "1"


BAD_BODIES = {
    "match on a number": {"query": {"match": {"title": 3}}},
    "range without bounds": {"query": {"range": {"score": {}}}},
    "range on a list": {"query": {"range": {"score": {"gt": [1]}}}},
    "terms not a list": {"query": {"terms": {"tags": "a"}}},
    "bool must a string": {"query": {"bool": {"must": "x"}}},
    "two clauses in one": {"query": {"match": {"title": "a"}, "term": {"title": "a"}}},
    "negative size": {"size": -1},
    "size a string": {"size": "10"},
    "size too large": {"size": 101},
    "negative from": {"from": -1},
    "bad sort order": {"sort": [{"score": "sideways"}]},
    "bad field name": {"query": {"term": {"a b": 1}}},
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


@pytest.mark.parametrize("body", [[], "match_all", 3, None, True], ids=repr)
def test_a_body_that_is_not_an_object_is_400_107(app, alice, body):
    resp = app.post(URL, params=json.dumps(body), headers={**alice, "Content-Type": "application/json"},
                    status=400)
    assert resp.json["errno"] == 107


def test_unknown_resource_is_404_and_anonymous_401(app, alice):
    assert app.post_json("/v1/search/unicorns", {}, headers=alice, status=404).json["errno"] == 111
    assert app.post_json(URL, {}, status=401).json["errno"] == 104
