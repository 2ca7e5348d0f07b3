"""Configuration: settings, backend loading errors, includes, the query
validator's normalization."""

from __future__ import annotations

import pytest
from pyramid.exceptions import ConfigurationError

from cliquet_indexing import embedded, query
from cliquet_indexing.embedded import parse_url
from cliquet_indexing.testing import make_config
from cliquet_indexing.testing.app import make_search_app


def test_defaults():
    indexer = embedded.load_from_config(make_config())
    assert (indexer.database, indexer.prefix, indexer.max_size) == (":memory:", "", 100)


@pytest.mark.parametrize("url, expected", [
    (None, ":memory:"), ("", ":memory:"), ("memory", ":memory:"), ("sqlite://", ":memory:"),
    ("sqlite:///index.db", "index.db"), ("sqlite:////var/lib/x/index.db", "/var/lib/x/index.db"),
    ("sqlite:////tmp/a%20b.db?timeout=2", "/tmp/a b.db"),
])
def test_urls(url, expected):
    assert parse_url(url)[0] == expected


def test_url_timeout():
    assert parse_url("sqlite:////tmp/x.db?timeout=0.5")[1] == 0.5


def test_other_schemes_are_refused():
    with pytest.raises(ValueError):
        parse_url("http://localhost:9200")
    with pytest.raises(ConfigurationError, match="sqlite"):
        make_search_app(indexing_url="http://localhost:9200")


def test_bad_prefix():
    with pytest.raises(ValueError, match="indexing_prefix"):
        embedded.EmbeddedIndexer(prefix="a-b;")


def test_unknown_backend_names_the_setting():
    with pytest.raises(ConfigurationError, match="cliquet.indexing_backend"):
        make_search_app(indexing_backend="no.such.module")
    with pytest.raises(ConfigurationError, match="no load_from_config"):
        make_search_app(indexing_backend="cliquet_indexing.query")
    with pytest.raises(ConfigurationError, match="not an IndexerBase"):
        make_search_app(indexing_backend="cliquet.storage.memory")


def test_bad_settings_values():
    with pytest.raises(ConfigurationError, match="search_max_size"):
        make_search_app(search_max_size="0")


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("CLIQUET_SEARCH_MAX_SIZE", "7")
    app = make_search_app()
    assert app.app.registry.indexer.max_size == 7
    assert app.get("/v1/").json["settings"]["search_max_size"] == 7


def test_including_twice_is_harmless():
    from pyramid.config import Configurator

    import cliquet
    from cliquet.testing.app import TEST_SECRET, Article

    config = Configurator(settings={"cliquet.userid_hmac_secret": TEST_SECRET,
                                    "pyramid.includes": "cliquet_indexing"})
    cliquet.initialize(config, "0.0.1", project_name="x")
    config.include("cliquet_indexing")
    config.add_resource(Article)
    config.make_wsgi_app()


def test_normalized_query():
    assert query.validate({}) == {"query": {"match_all": {}}, "sort": [], "size": 10, "from": 0}
    body = query.validate({"query": {"bool": {"must": {"match": {"a": "x"}}, "should": [{"term": {"b": 1}}]}},
                           "sort": ["a", {"b": {"order": "desc"}}], "size": 0, "from": 5})
    assert body == {"query": {"bool": {"must": [{"match": {"a": {"query": "x", "operator": "or"}}}],
                                       "filter": [], "should": [{"term": {"b": {"value": 1}}}],
                                       "must_not": [], "minimum_should_match": 0}},
                    "sort": [{"a": "asc"}, {"b": "desc"}], "size": 0, "from": 5}


def test_every_problem_is_listed():
    with pytest.raises(query.InvalidQuery) as caught:
        query.validate({"query": {"bool": {"must": [{"nope": {}}, {"range": {"x": {"gt": "a", "lt": 3}}}]}},
                        "size": -1, "extra": 1})
    names = [d["name"] for d in caught.value.details]
    assert names == ["extra", "query.bool.must.0.nope", "query.bool.must.1.range.x", "size"]


def test_window_limit():
    with pytest.raises(query.InvalidQuery, match="from"):
        query.validate({"from": 9995, "size": 10})


def test_deep_nesting_is_refused():
    clause = {"match_all": {}}
    for _ in range(25):
        clause = {"bool": {"must": clause}}
    with pytest.raises(query.InvalidQuery, match="nest"):
        query.validate({"query": clause})


def test_tokens():
    assert query.tokens("Hello, WÖRLD! snake_case 42x") == ["hello", "wörld", "snake_case", "42x"]
    assert query.tokens("Straße") == ["strasse"]


def test_default_index_beside_a_shared_storage(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    shared = {"storage_backend": "cliquet.storage.postgresql", "storage_url": "postgresql://h/db"}
    first = embedded.load_from_config(make_config(**shared))
    again = embedded.load_from_config(make_config(**shared))
    other = embedded.load_from_config(make_config(indexing_prefix="p2_", **shared))
    assert first.database == again.database != other.database
    assert first.database.startswith(str(tmp_path)) and first.database.endswith(".db")
    assert embedded.load_from_config(make_config()).database == ":memory:"
    explicit = embedded.load_from_config(make_config(indexing_url="memory", **shared))
    assert explicit.database == ":memory:"
    for indexer in (first, again, other):
        indexer.close()
