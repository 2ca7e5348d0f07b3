"""The example service of the documentation (docs/example, which includes
cliquet_indexing) switched to Elasticsearch by environment variables alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliquet.testing.plugin import require_module
import webtest

from cliquet.testing.app import basic_auth
from cliquet_elasticsearch.indexer import ElasticsearchIndexer

INI = Path(__file__).resolve().parents[3] / "docs" / "example" / "myproject.ini"


@pytest.fixture
def example_app(monkeypatch, elasticsearch_url, es_prefix):
    require_module("myproject")
    from pyramid.paster import get_app

    monkeypatch.setenv("CLIQUET_INDEXING_BACKEND", "cliquet_elasticsearch")
    monkeypatch.setenv("CLIQUET_INDEXING_URL", elasticsearch_url)
    monkeypatch.setenv("CLIQUET_INDEXING_PREFIX", es_prefix)
    monkeypatch.setenv("CLIQUET_INDEXING_RETRY_INTERVAL", "0")
    monkeypatch.setenv("CLIQUET_ELASTICSEARCH_TIMEOUT", "30s")
    return webtest.TestApp(get_app(str(INI), "main"))


def test_environment_variables_switch_the_example_to_elasticsearch(example_app, es_prefix):
    alice, bob = basic_auth("alice"), basic_auth("bob")
    indexer = example_app.app.registry.indexer
    assert isinstance(indexer, ElasticsearchIndexer) and indexer.prefix == es_prefix
    example_app.post_json("/v1/articles", {"data": {"title": "Searching with Elasticsearch", "score": 4}},
                          headers=alice)
    example_app.post_json("/v1/articles", {"data": {"title": "Bob's own notes"}}, headers=bob)
    resp = example_app.post_json("/v1/search/articles", {"query": {"match": {"title": "elasticsearch"}}},
                                 headers=alice)
    assert [r["title"] for r in resp.json["data"]] == ["Searching with Elasticsearch"]
    assert example_app.get("/v1/search/articles?q=notes", headers=alice).headers["Total-Records"] == "0"
    # The records really are in Elasticsearch, in the prefixed index.
    assert indexer.client.count(index=f"{es_prefix}article")["count"] == 2


def test_cliquet_migrate_creates_the_indexes(monkeypatch, elasticsearch_url, es_prefix, capsys):
    require_module("myproject")
    from elasticsearch import Elasticsearch

    from cliquet.scripts.cliquet import main

    monkeypatch.setenv("CLIQUET_INDEXING_BACKEND", "cliquet_elasticsearch")
    monkeypatch.setenv("CLIQUET_INDEXING_URL", elasticsearch_url)
    monkeypatch.setenv("CLIQUET_INDEXING_PREFIX", es_prefix)
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    try:
        assert main(["migrate", "--ini", str(INI), "--dry-run"]) == 0
        assert not client.indices.exists_alias(name=f"{es_prefix}article")
        assert main(["migrate", "--ini", str(INI)]) == 0
        assert client.indices.exists_alias(name=f"{es_prefix}article")
        assert main(["migrate", "--ini", str(INI)]) == 0  # again: nothing to do
        out = capsys.readouterr().out
        assert f"would create index {es_prefix}article.v1" in out
        assert out.count(f"created index {es_prefix}article.v1") == 1
    finally:
        client.close()
