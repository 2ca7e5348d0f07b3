"""The search endpoint through the whole WSGI stack: records written through
the resource endpoints are found by ``/v1/search``, within the caller's read
scope, with exact totals; bad requests get the protocol's errors."""

from __future__ import annotations

import json

import pytest

from cliquet.testing.app import Article, SharedArticle, basic_auth
from cliquet_indexing.testing.app import make_search_app

URL = "/v1/search/articles"


def create(app, headers, **data):
    return app.post_json("/v1/articles", {"data": data}, headers=headers).json["data"]


def search(app, headers, body=None, status=200):
    return app.post_json(URL, body if body is not None else {}, headers=headers, status=status)


def userid(app, headers):
    return app.get("/v1/", headers=headers).json["user"]["id"]


def test_created_records_are_found(app, alice):
    first = create(app, alice, title="The brown fox", score=3.0, tags=["animals"])
    create(app, alice, title="Lazy dogs", score=1.0)
    resp = search(app, alice, {"query": {"match": {"title": "FOX"}}})
    assert resp.json == {"data": [first]}
    assert resp.headers["Total-Records"] == "1"


def test_both_resource_names_work(app, alice):
    create(app, alice, title="x")
    assert app.post_json("/v1/search/article", {}, headers=alice).headers["Total-Records"] == "1"


def test_updates_and_deletes_follow(app, alice):
    record = create(app, alice, title="before")
    app.patch_json(f"/v1/articles/{record['id']}", {"data": {"title": "after"}}, headers=alice)
    assert search(app, alice, {"query": {"match": {"title": "before"}}}).json["data"] == []
    assert [r["title"] for r in search(app, alice, {"query": {"match": {"title": "after"}}}).json["data"]] == [
        "after"]
    app.delete(f"/v1/articles/{record['id']}", headers=alice)
    resp = search(app, alice)
    assert (resp.json["data"], resp.headers["Total-Records"]) == ([], "0")


def test_collection_delete_unindexes(app, alice):
    for i in range(3):
        create(app, alice, title=f"n{i}")
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
    other = {"query": {"match": {"title": "plan"}}}
    resp = search(app, bob, other)
    assert (resp.json["data"], resp.headers["Total-Records"]) == ([], "0")
    resp = app.get(URL + "?q=secret+plan", headers=bob)
    assert (resp.json["data"], resp.headers["Total-Records"]) == ([], "0")
    assert app.get(URL + "?q=secret+plan", headers=alice).headers["Total-Records"] == "23"


def test_shares_are_searchable_and_revocable(alice, bob):
    app = make_search_app(resources=(SharedArticle,))
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


def test_group_principals_count(alice, bob):
    app = make_search_app(resources=(SharedArticle,))
    app.post_json("/v1/articles", {"data": {"title": "for the team"}, "permissions": {"read": ["group:team"]}},
                  headers=alice)
    assert search(app, bob).headers["Total-Records"] == "0"
    app.app.registry.permission.add_user_principal(userid(app, bob), "group:team")
    assert search(app, bob).headers["Total-Records"] == "1"


def test_get_form(app, alice):
    create(app, alice, title="Brown fox", tags=["quick"])
    create(app, alice, title="Brown bear")
    assert app.get(URL + "?q=brown", headers=alice).headers["Total-Records"] == "2"
    assert app.get(URL + "?q=quick+BROWN", headers=alice).headers["Total-Records"] == "1"
    assert len(app.get(URL + "?size=1", headers=alice).json["data"]) == 1
    assert app.get(URL, headers=alice).headers["Total-Records"] == "2"


BAD_BODIES = {
    "unknown clause": {"query": {"fuzzy": {"title": "x"}}},
    "unknown top-level key": {"aggs": {}},
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


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_queries_are_400_107(app, alice, case):
    resp = search(app, alice, BAD_BODIES[case], status=400)
    assert resp.json["errno"] == 107
    assert resp.json["details"] and all(d["location"] == "body" for d in resp.json["details"])


@pytest.mark.parametrize("body", [[], "match_all", 3, None, True], ids=repr)
def test_a_body_that_is_not_an_object_is_400_107(app, alice, body):
    resp = app.post(URL, params=json.dumps(body), headers={**alice, "Content-Type": "application/json"},
                    status=400)
    assert resp.json["errno"] == 107


def test_malformed_json_is_400(app, alice):
    resp = app.post(URL, params="{nope", headers={**alice, "Content-Type": "application/json"}, status=400)
    assert resp.json["errno"] == 106


def test_bad_get_parameters(app, alice):
    assert app.get(URL + "?size=x", headers=alice, status=400).json["errno"] == 107
    assert app.get(URL + "?size=-2", headers=alice, status=400).json["details"][0]["location"] == "querystring"
    assert app.get(URL + "?nope=1", headers=alice, status=400).json["errno"] == 107


def test_unknown_resource_is_404(app, alice):
    resp = app.post_json("/v1/search/unicorns", {}, headers=alice, status=404)
    assert resp.json["errno"] == 111


def test_anonymous_is_401(app):
    assert app.post_json(URL, {}, status=401).json["errno"] == 104
    assert app.get(URL + "?q=x", status=401).json["errno"] == 104


def test_capability_and_heartbeat(app):
    assert "search" in app.get("/v1/").json["capabilities"]
    assert app.get("/__heartbeat__").json["indexer"] is True


def test_included_after_initialize(alice):
    app = make_search_app(include="config.include")
    create(app, alice, title="late include")
    assert search(app, alice, {"query": {"match": {"title": "late"}}}).headers["Total-Records"] == "1"
    assert "search" in app.get("/v1/").json["capabilities"]


def test_max_size_setting(alice):
    app = make_search_app(search_max_size="3")
    assert search(app, alice, {"size": 4}, status=400).json["errno"] == 107
    search(app, alice, {"size": 3})


def test_only_listed_resources_are_indexed(alice):
    from cliquet_indexing.resource import IndexedResource

    class Note(IndexedResource):
        schema = Article.schema

    app = make_search_app(resources=(Article, Note), indexing_resources="")
    create(app, alice, title="not indexed")
    app.post_json("/v1/notes", {"data": {"title": "indexed"}}, headers=alice)
    app.post_json(URL, {}, headers=alice, status=404)
    resp = app.post_json("/v1/search/notes", {}, headers=alice)
    assert [r["title"] for r in resp.json["data"]] == ["indexed"]
