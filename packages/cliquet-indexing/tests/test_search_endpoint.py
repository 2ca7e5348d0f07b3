"""The search endpoint on the embedded indexer: the shared endpoint contract
(:mod:`cliquet_indexing.testing.endpoint`, which every indexer runs), then
what only this package's settings do."""

from __future__ import annotations

import pytest

from cliquet.testing.app import Article
from cliquet_indexing.testing.app import make_search_app
from cliquet_indexing.testing.endpoint import PortableSearchEndpointContract, create, search

URL = "/v1/search/articles"


class TestEmbeddedSearchEndpoint(PortableSearchEndpointContract):
    """The embedded SQLite FTS5 indexer (the default) on memory backends."""

    @pytest.fixture
    def make_app(self):
        return make_search_app


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
