"""The two example packages of docs/ecosystem.rst, run for real.

``cliquet_sqlite`` (a cache backend) goes through Cliquet's cache contract
suite exactly as a third party's backend would: the test class only says how
to build the backend. ``cliquet_recent`` (a feature) is included in an app
and driven over HTTP.
"""

import contextlib
import sqlite3
import sys
from pathlib import Path

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

import cliquet
from cliquet.testing import make_config
from cliquet.testing.app import TEST_SECRET, Article, basic_auth
from cliquet.testing.cache import CacheContract

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ecosystem_example"))

import cliquet_recent  # noqa: E402
import cliquet_sqlite  # noqa: E402


class TestSQLiteCache(CacheContract):
    @pytest.fixture
    def backend(self, tmp_path):
        config = make_config(cache_prefix="app:", sqlite_cache_path=str(tmp_path / "cache.sqlite"))
        return cliquet_sqlite.load_from_config(config)

    @pytest.fixture
    def make_backend(self, backend):
        return lambda prefix: cliquet_sqlite.SQLiteCache(backend.database, prefix=prefix)

    @pytest.fixture
    def backend_error(self, backend):
        @contextlib.contextmanager
        def broken():
            saved = backend.database.connection
            closed = sqlite3.connect(":memory:")
            closed.close()
            backend.database.connection = closed
            try:
                yield
            finally:
                backend.database.connection = saved

        return broken


def make_app(**settings):
    config = Configurator(settings={"cliquet.userid_hmac_secret": TEST_SECRET, **settings})
    cliquet.initialize(config, "1.0", project_name="demo")
    config.add_resource(Article)
    config.include("cliquet_recent")
    config.include("cliquet_recent")
    return webtest.TestApp(config.make_wsgi_app())


def test_recent_changes_are_listed_newest_first():
    app = make_app()
    alice = basic_auth("alice")
    first = app.post_json("/v1/articles", {"data": {"title": "a"}}, headers=alice).json["data"]
    second = app.post_json("/v1/articles", {"data": {"title": "b"}}, headers=alice).json["data"]
    tombstone = app.delete(f"/v1/articles/{first['id']}", headers=alice).json["data"]
    changes = app.get("/v1/recent/article", headers=alice).json["data"]
    assert changes == [
        {"action": "delete", "id": first["id"], "last_modified": tombstone["last_modified"]},
        {"action": "create", "id": second["id"], "last_modified": second["last_modified"]},
        {"action": "create", "id": first["id"], "last_modified": first["last_modified"]},
    ]
    assert app.get("/v1/recent/article", headers=basic_auth("bob")).json["data"] == []
    assert app.get("/v1/recent/article", status=401).json["errno"] == 104


def test_recent_declares_capability_heartbeat_and_setting(monkeypatch):
    monkeypatch.setenv("CLIQUET_RECENT_SIZE", "1")
    app = make_app()
    assert "recent" in app.get("/v1/").json["capabilities"]
    assert app.get("/__heartbeat__").json["recent"] is True
    alice = basic_auth("alice")
    for title in "abc":
        app.post_json("/v1/articles", {"data": {"title": title}}, headers=alice)
    assert len(app.get("/v1/recent/article", headers=alice).json["data"]) == 1


def test_a_misspelt_setting_of_the_package_fails_at_start_up():
    with pytest.raises(ConfigurationError, match="cliquet.recent_sizes"):
        make_app(**{"cliquet.recent_sizes": "3"})


def test_the_sqlite_cache_serves_an_app(tmp_path):
    config = Configurator(settings={"cliquet.userid_hmac_secret": TEST_SECRET,
                                    "cliquet.cache_backend": "cliquet_sqlite",
                                    "cliquet.sqlite_cache_path": str(tmp_path / "c.sqlite")})
    cliquet.initialize(config, "1.0")
    app = webtest.TestApp(config.make_wsgi_app())
    assert app.get("/__heartbeat__").json["cache"] is True
    assert isinstance(config.registry.cache, cliquet_sqlite.SQLiteCache)
