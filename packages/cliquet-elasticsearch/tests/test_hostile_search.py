"""Hostile searches through the whole WSGI stack with Elasticsearch as the
indexer: the same refusals as the embedded indexer's (the portable limits),
the Elasticsearch DSL bounded before it is walked, and what Elasticsearch
itself refuses a 400 — never a 5xx (issue 11 §2)."""

from __future__ import annotations

import pytest

from cliquet.testing.app import basic_auth
from cliquet_indexing.query import Limits
from cliquet_indexing.testing.app import make_search_app
from cliquet_indexing.testing.queries import HOSTILE_SEARCHES, assert_refused

from cliquet_elasticsearch import translate

URL = "/v1/search/articles"


@pytest.fixture
def alice():
    return basic_auth("alice")


@pytest.fixture
def app(elasticsearch_url, es_prefix, alice):
    app = make_search_app(indexing_backend="cliquet_elasticsearch", indexing_url=elasticsearch_url,
                          indexing_prefix=es_prefix, elasticsearch_timeout="30s")
    for i in range(3):
        app.post_json("/v1/articles", {"data": {"title": f"brown fox {i}", "score": i}}, headers=alice)
    return app


def test_hostile_bodies_are_refused(app, alice):
    # One app for every case: an index per case would cost more than the cases.
    for case in sorted(HOSTILE_SEARCHES):
        build, setting = HOSTILE_SEARCHES[case]
        assert_refused(app, URL, alice, build(), setting, seconds=5.0)
    assert app.get("/v1/articles", headers=alice).headers["Total-Records"] == "3"


@pytest.mark.parametrize("body, setting", [
    ({"query": {"match": {"title": {"query": "x", "boost": 2}}}, "aggs": {"s": {"terms": {"field": "title.keyword",
                                                                                         "include": ["a"] * 2000}}}},
     "search_max_terms"),
    ({"query": {"wildcard": {"title.keyword": "x" * 9000}}}, "search_max_string_length"),
    ({"query": {"fuzzy": {"title": "x"}}, "aggs": {f"a{i}": {"max": {"field": "score"}} for i in range(600)}},
     "search_max_clauses"),
    ({"query": {"range": {"score": {"gt": 9223372036854775807 + 1}}}, "aggs": {}}, None),
], ids=["a long list", "a long string", "too many objects", "past int64"])
def test_elasticsearch_dsl_is_bounded(app, alice, body, setting):
    import json

    assert_refused(app, URL, alice, json.dumps(body).encode(), setting, seconds=5.0)


def test_what_elasticsearch_refuses_is_a_400(app, alice):
    body = {"query": {"fuzzy": {"title": {"value": "x", "no_such_option": 1}}}}
    resp = app.post_json(URL, body, headers=alice, status=400)
    assert resp.json["errno"] == 107
    assert "Elasticsearch refused" in resp.json["details"][0]["description"]


def test_at_the_default_limits_searches_are_served(app, alice):
    many = {"query": {"bool": {"must_not": [{"term": {"score": i}} for i in range(1, 255)],
                               "should": [{"match": {"title": " ".join(["fox"] + ["w"] * 255)}}]}}}
    assert [r["score"] for r in app.post_json(URL, many, headers=alice).json["data"]] == [0]


def test_every_search_carries_the_timeout_and_a_timed_out_one_is_refused(app, alice):
    # The service's timeout replaces the body's: a client cannot lift it.
    raw = translate.validate({"query": {"fuzzy": {"title": "x"}}, "timeout": "1h"}, 100, Limits(timeout=0.25))
    assert "timeout" not in raw[translate.RAW]
    assert translate.timeout(Limits(timeout=0.25)) == "250ms"
    indexer = app.app.registry.indexer
    sent = {}
    search = indexer.client.search

    def recording(**kwargs):
        sent.update(kwargs)
        response = search(**kwargs)
        assert response["timed_out"] is False
        return response

    indexer.client.search = recording
    app.post_json(URL, {"query": {"fuzzy": {"title": "x"}}, "timeout": "1h"}, headers=alice)
    assert sent["timeout"] == translate.timeout(indexer.limits) == "1000ms"
    app.post_json(URL, {"query": {"match": {"title": "fox"}}}, headers=alice)
    assert sent["timeout"] == "1000ms"
    # Elasticsearch answers partial hits with timed_out when the time is up:
    # the endpoint refuses them (a test node cannot be made slow on demand).
    indexer.client.search = lambda **kwargs: dict(search(**kwargs), timed_out=True)
    resp = app.post_json(URL, {"query": {"match": {"title": "fox"}}}, headers=alice, status=400)
    assert "cliquet.search_timeout" in resp.json["details"][0]["description"]
