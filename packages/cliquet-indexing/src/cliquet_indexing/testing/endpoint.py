"""The search endpoint contract: what ``/v1/search/{resource}`` answers,
through the whole WSGI stack, whatever the indexer behind it.

Every indexer runs it — the embedded one, the PostgreSQL one and
Elasticsearch here, a third party's by importing it — and provides one
fixture, ``make_app``: a callable ``(resources=None, include="pyramid.includes",
**settings) -> webtest.TestApp`` on a fresh index, with cliquet-indexing (or
the package that includes it) enabled the way ``include`` says and the
resources of :mod:`cliquet.testing.app` registered::

    from cliquet_indexing.testing.app import make_search_app
    from cliquet_indexing.testing.endpoint import SearchEndpointContract

    class TestEmbeddedEndpoint(SearchEndpointContract):
        @pytest.fixture
        def make_app(self):
            return make_search_app

Written records must be searchable as soon as the write answered (an indexer
that indexes later refreshes before answering, or its tests wait); each
``make_app`` call starts on an empty index.
"""

from __future__ import annotations

import json

import pytest

from cliquet.testing.app import Article, SharedArticle, basic_auth

URL = "/v1/search/articles"

#: Bodies every indexer refuses with a 400 and errno 107 (the portable query
#: language is validated before any indexer sees it).
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
}


#: Bodies outside the portable query language: refused by an indexer that
#: speaks only that language, passed through by Elasticsearch (its DSL).
BEYOND_PORTABLE_BODIES = {
    "unknown clause": {"query": {"fuzzy": {"title": "x"}}},
    "unknown top-level key": {"aggs": {}},
}


def create(app, headers, **data):
    """Create an article; return the record."""
    return app.post_json("/v1/articles", {"data": data}, headers=headers).json["data"]


def search(app, headers, body=None, status=200):
    """POST a search on the articles."""
    return app.post_json(URL, body if body is not None else {}, headers=headers, status=status)


def userid(app, headers):
    """The user id of the caller (as the hello view says)."""
    return app.get("/v1/", headers=headers).json["user"]["id"]


class SearchEndpointContract:
    """The endpoint tests every indexer passes (no ``Test`` prefix: collected
    only where an indexer's test module subclasses it)."""

    @pytest.fixture
    def make_app(self):
        """Provide ``(resources=None, include="pyramid.includes", **settings)
        -> webtest.TestApp`` building an app on the indexer under test."""
        raise NotImplementedError(
            "SearchEndpointContract needs a `make_app` fixture returning a callable "
            "(resources=None, include='pyramid.includes', **settings) -> webtest.TestApp")

    @pytest.fixture(params=["per-user", "shareable"])
    def app(self, request, make_app):
        """A fresh app whose ``articles`` are per-user or shareable."""
        return make_app(resources=(Article,) if request.param == "per-user" else (SharedArticle,))

    @pytest.fixture
    def alice(self):
        """Basic auth headers of a user."""
        return basic_auth("alice")

    @pytest.fixture
    def bob(self):
        """Basic auth headers of another user."""
        return basic_auth("bob")

    def test_created_records_are_found(self, app, alice):
        first = create(app, alice, title="The brown fox", score=3.0, tags=["animals"])
        create(app, alice, title="Lazy dogs", score=1.0)
        resp = search(app, alice, {"query": {"match": {"title": "FOX"}}})
        assert resp.json == {"data": [first]}
        assert resp.headers["Total-Records"] == "1"

    def test_both_resource_names_work(self, app, alice):
        create(app, alice, title="x")
        assert app.post_json("/v1/search/article", {}, headers=alice).headers["Total-Records"] == "1"

    def test_updates_and_deletes_follow(self, app, alice):
        record = create(app, alice, title="before")
        app.patch_json(f"/v1/articles/{record['id']}", {"data": {"title": "after"}}, headers=alice)
        assert search(app, alice, {"query": {"match": {"title": "before"}}}).json["data"] == []
        found = search(app, alice, {"query": {"match": {"title": "after"}}}).json["data"]
        assert [r["title"] for r in found] == ["after"]
        app.delete(f"/v1/articles/{record['id']}", headers=alice)
        resp = search(app, alice)
        assert (resp.json["data"], resp.headers["Total-Records"]) == ([], "0")

    def test_collection_delete_unindexes(self, app, alice):
        for i in range(3):
            create(app, alice, title=f"n{i}")
        app.delete("/v1/articles", headers=alice)
        assert search(app, alice).headers["Total-Records"] == "0"

    def test_batch_writes_are_indexed(self, app, alice):
        requests = [{"method": "POST", "path": "/articles", "body": {"data": {"title": f"batch {i}", "score": i}}}
                    for i in range(12)]
        app.post_json("/v1/batch", {"requests": requests}, headers=alice)
        resp = search(app, alice, {"query": {"range": {"score": {"gte": 4}}}, "sort": [{"score": "desc"}],
                                   "size": 3})
        assert resp.headers["Total-Records"] == "8"
        assert [r["score"] for r in resp.json["data"]] == [11, 10, 9]

    def test_two_users_never_see_each_other(self, app, alice, bob):
        for i in range(23):
            create(app, alice, title=f"secret plan {i}", score=float(i))
        for i in range(7):
            create(app, bob, title=f"secret recipe {i}", score=float(i))
        for headers, expected, word in ((alice, 23, "plan"), (bob, 7, "recipe")):
            seen = []
            for start in range(0, 30, 5):
                resp = search(app, headers, {"query": {"match": {"title": "secret"}}, "sort": ["score"],
                                             "size": 5, "from": start})
                assert resp.headers["Total-Records"] == str(expected)
                seen += resp.json["data"]
            assert len(seen) == expected
            assert all(word in r["title"] for r in seen)
        resp = search(app, bob, {"query": {"match": {"title": "plan"}}})
        assert (resp.json["data"], resp.headers["Total-Records"]) == ([], "0")
        resp = app.get(URL + "?q=secret+plan", headers=bob)
        assert (resp.json["data"], resp.headers["Total-Records"]) == ([], "0")
        assert app.get(URL + "?q=secret+plan", headers=alice).headers["Total-Records"] == "23"

    def test_shares_are_searchable_and_revocable(self, make_app, alice, bob):
        app = make_app(resources=(SharedArticle,))
        carol = basic_auth("carol")
        private = create(app, alice, title="private note")
        shared = app.post_json("/v1/articles", {"data": {"title": "team note"},
                                                "permissions": {"read": [userid(app, bob)]}},
                               headers=alice).json["data"]
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
        app.patch_json(f"/v1/articles/{private['id']}", {"permissions": {"read": ["system.Everyone"]}},
                       headers=alice)
        assert found(carol) == [private["id"], public["id"]]

    def test_group_principals_count(self, make_app, alice, bob):
        app = make_app(resources=(SharedArticle,))
        app.post_json("/v1/articles", {"data": {"title": "for the team"}, "permissions": {"read": ["group:team"]}},
                      headers=alice)
        assert search(app, bob).headers["Total-Records"] == "0"
        app.app.registry.permission.add_user_principal(userid(app, bob), "group:team")
        assert search(app, bob).headers["Total-Records"] == "1"

    def test_get_form(self, app, alice):
        create(app, alice, title="Brown fox", tags=["quick"])
        create(app, alice, title="Brown bear")
        assert app.get(URL + "?q=brown", headers=alice).headers["Total-Records"] == "2"
        assert app.get(URL + "?q=quick+BROWN", headers=alice).headers["Total-Records"] == "1"
        assert len(app.get(URL + "?size=1", headers=alice).json["data"]) == 1
        assert app.get(URL, headers=alice).headers["Total-Records"] == "2"

    @pytest.mark.parametrize("case", sorted(BAD_BODIES))
    def test_bad_queries_are_400_107(self, app, alice, case):
        resp = search(app, alice, BAD_BODIES[case], status=400)
        assert resp.json["errno"] == 107
        assert resp.json["details"] and all(d["location"] == "body" for d in resp.json["details"])

    @pytest.mark.parametrize("body", [[], "match_all", 3, None, True], ids=repr)
    def test_a_body_that_is_not_an_object_is_400_107(self, app, alice, body):
        resp = app.post(URL, params=json.dumps(body), headers={**alice, "Content-Type": "application/json"},
                        status=400)
        assert resp.json["errno"] == 107

    def test_malformed_json_is_400(self, app, alice):
        resp = app.post(URL, params="{nope", headers={**alice, "Content-Type": "application/json"}, status=400)
        assert resp.json["errno"] == 106

    def test_bad_get_parameters(self, app, alice):
        assert app.get(URL + "?size=x", headers=alice, status=400).json["errno"] == 107
        assert app.get(URL + "?size=-2", headers=alice, status=400).json["details"][0]["location"] == "querystring"
        assert app.get(URL + "?nope=1", headers=alice, status=400).json["errno"] == 107

    def test_unknown_resource_is_404(self, app, alice):
        resp = app.post_json("/v1/search/unicorns", {}, headers=alice, status=404)
        assert resp.json["errno"] == 111

    def test_anonymous_is_401(self, app):
        assert app.post_json(URL, {}, status=401).json["errno"] == 104
        assert app.get(URL + "?q=x", status=401).json["errno"] == 104

    def test_capability_and_heartbeat(self, app):
        assert "search" in app.get("/v1/").json["capabilities"]
        assert app.get("/__heartbeat__").json["indexer"] is True

    def test_included_after_initialize(self, make_app, alice):
        app = make_app(include="config.include")
        create(app, alice, title="late include")
        assert search(app, alice, {"query": {"match": {"title": "late"}}}).headers["Total-Records"] == "1"
        assert "search" in app.get("/v1/").json["capabilities"]


class PortableSearchEndpointContract(SearchEndpointContract):
    """:class:`SearchEndpointContract` for an indexer that speaks only the
    portable query language (the embedded and PostgreSQL indexers)."""

    @pytest.mark.parametrize("case", sorted(BEYOND_PORTABLE_BODIES))
    def test_queries_beyond_the_portable_language_are_400_107(self, app, alice, case):
        resp = search(app, alice, BEYOND_PORTABLE_BODIES[case], status=400)
        assert resp.json["errno"] == 107
