"""Hostile searches through the whole WSGI stack, on the embedded indexer:
each is a 400 JSON error naming the limit it passed, within a time bound;
none is a 5xx, and none holds the indexer for long enough to delay a writer
(issue 11 §2, "Slow searches" and "5xx from input")."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from cliquet.testing.app import basic_auth
from cliquet_indexing.indexer import IndexEntry
from cliquet_indexing.testing.app import make_search_app
from cliquet_indexing.testing.queries import HOSTILE_SEARCHES, assert_refused

URL = "/v1/search/articles"


@pytest.fixture
def alice():
    return basic_auth("alice")


@pytest.fixture
def app(alice):
    """One app for the read-only cases: records with ``title`` and ``score``."""
    app = make_search_app()
    for i in range(5):
        app.post_json("/v1/articles", {"data": {"title": f"brown fox {i}", "score": i}}, headers=alice)
    return app


def userid(app, headers):
    return app.get("/v1/", headers=headers).json["user"]["id"]


@pytest.mark.parametrize("case", sorted(HOSTILE_SEARCHES))
def test_hostile_bodies_are_refused(app, alice, case):
    build, setting = HOSTILE_SEARCHES[case]
    assert_refused(app, URL, alice, build(), setting)
    assert app.get("/v1/articles", headers=alice).headers["Total-Records"] == "5"  # nothing written


@pytest.mark.parametrize("query, name", [
    ("q=" + "+".join(["w"] * 300), "q"),
    ("q=" + "x" * 9000, "q"),
    ("q=%FF", None),
    ("q=%ED%A0%80", None),  # an encoded surrogate
    ("size=9223372036854775808", "size"),
    ("from=99999999999999999999", "from"),
])
def test_hostile_get_forms_are_refused(app, alice, query, name):
    start = time.monotonic()
    resp = app.get(f"{URL}?{query}", headers=alice, status=400)
    assert time.monotonic() - start < 3.0
    assert resp.json["errno"] == 107
    assert [d["location"] for d in resp.json["details"]] == ["querystring"]
    assert resp.json["details"][0]["name"] == name


def test_the_errors_name_the_field(app, alice):
    resp = app.post(URL, params=b'{"query": {"bool": {"filter": [{"range": {"score": {"gte": 1}}}, '
                                b'{"term": {"score": 9223372036854775808}}]}}}',
                    headers={**alice, "Content-Type": "application/json"}, status=400)
    assert resp.json["details"][0]["name"] == "query.bool.filter.1.term.score"


def test_the_largest_numbers_are_served(app, alice):
    for value in (9223372036854775807, -9223372036854775808, 1.7976931348623157e308, -5e-324):
        resp = app.post_json(URL, {"query": {"bool": {"should": [{"term": {"score": value}},
                                                                 {"range": {"score": {"lt": value}}}]}}},
                             headers=alice)
        assert resp.status_code == 200


def test_at_the_default_limits_searches_are_served(app, alice):
    many = {"query": {"bool": {"must_not": [{"term": {"score": i}} for i in range(1, 255)],
                               "should": [{"match": {"title": " ".join(["fox"] + ["w"] * 255)}}]}}}
    resp = app.post_json(URL, many, headers=alice)
    assert [r["score"] for r in resp.json["data"]] == [0]


def test_raised_limits_are_served_by_the_engine(alice):
    # 3 000 clauses: the embedded engine used to answer 503 ("Expression tree
    # is too large") past about 1 000; its conditions are now a balanced tree.
    app = make_search_app(search_max_clauses="5000", search_timeout="60s")  # (compiling 3 000 takes ~0.5 s)
    for score in (1, 5000):
        app.post_json("/v1/articles", {"data": {"title": "x", "score": score}}, headers=alice)
    for key, expected in (("must_not", [5000]), ("should", [1])):
        body = {"query": {"bool": {key: [{"term": {"score": i}} for i in range(3000)]}}}
        assert [r["score"] for r in app.post_json(URL, body, headers=alice).json["data"]] == expected


def test_what_the_engine_refuses_is_a_400_not_a_503(alice):
    app = make_search_app()
    app.post_json("/v1/articles", {"data": {"title": "x", "score": 1}}, headers=alice)
    connection = app.app.registry.indexer._connection()
    connection.setlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, 8)  # a smaller engine than the validator expects
    body = {"query": {"bool": {"must": [{"term": {"score": i}} for i in range(200)]}}}
    resp = app.post_json(URL, body, headers=alice, status=400)
    assert resp.json["errno"] == 107
    assert "Expression tree is too large" in resp.json["details"][0]["description"]
    connection.setlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, 1000)
    assert app.get("/__heartbeat__").json["indexer"] is True  # the backend was never down


def test_a_slow_search_is_stopped_and_does_not_delay_writers(alice):
    """255 ``prefix`` probes on each of 1 000 records take seconds on the
    embedded engine: the search is stopped at ``search_timeout`` (a 400 that
    names it), and a write waiting for the indexer meanwhile is not delayed
    by more than that."""
    timeout = 0.3
    app = make_search_app(search_timeout=str(timeout))
    owner = userid(app, alice)
    app.app.registry.indexer.index_records("article", [
        IndexEntry(owner, {"id": f"r{i}", "last_modified": i + 1, "title": f"brown fox {i}"}, (owner,))
        for i in range(1000)])
    body = {"query": {"bool": {"should": [{"prefix": {"title": f"zz{i}"}} for i in range(255)]}}}
    answers = {}
    started = threading.Event()

    def slow_search():
        started.set()
        begin = time.monotonic()
        answers["search"] = app.post_json(URL, body, headers=alice, expect_errors=True)
        answers["search_seconds"] = time.monotonic() - begin

    thread = threading.Thread(target=slow_search)
    thread.start()
    started.wait()
    time.sleep(0.05)  # the search holds the indexer
    begin = time.monotonic()
    app.post_json("/v1/articles", {"data": {"title": "written meanwhile"}}, headers=alice, status=201)
    write_seconds = time.monotonic() - begin
    thread.join()
    resp = answers["search"]
    assert resp.status_code == 400 and resp.json["errno"] == 107
    assert "cliquet.search_timeout" in resp.json["details"][0]["description"]
    assert answers["search_seconds"] < timeout + 1.0
    assert write_seconds < timeout + 1.0
    found = app.post_json(URL, {"query": {"match": {"title": "meanwhile"}}}, headers=alice)
    assert found.headers["Total-Records"] == "1"


def test_limits_are_settings(alice):
    app = make_search_app(search_max_words="2", search_max_clauses="3", search_max_terms="2",
                          search_max_string_length="5", search_max_depth="1")
    cases = [({"query": {"match": {"title": "a b c"}}}, "search_max_words"),
             ({"query": {"bool": {"must": [{"match_all": {}}] * 3}}}, "search_max_clauses"),
             ({"query": {"terms": {"score": [1, 2, 3]}}}, "search_max_terms"),
             ({"query": {"term": {"title": "abcdef"}}}, "search_max_string_length"),
             ({"query": {"bool": {"must": {"bool": {"must": {"match_all": {}}}}}}}, "search_max_depth")]
    for body, setting in cases:
        resp = app.post_json(URL, body, headers=alice, status=400)
        assert f"cliquet.{setting}" in resp.json["details"][0]["description"]
    app.post_json(URL, {"query": {"match": {"title": "a b"}}}, headers=alice, status=200)


@pytest.mark.parametrize("name, good, value", [("search_max_clauses", "10", "0"), ("search_max_words", "10", "-1"),
                                               ("search_timeout", "250ms", "soon")])
def test_invalid_limit_settings_fail_at_start_up(name, good, value):
    from pyramid.exceptions import ConfigurationError

    make_search_app(**{name: good})
    with pytest.raises(ConfigurationError, match=name):
        make_search_app(**{name: value})
