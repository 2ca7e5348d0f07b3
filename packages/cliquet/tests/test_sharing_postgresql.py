"""Shareable records on PostgreSQL: the read check inside the record query,
and what a request promises when storage and permissions live apart."""


import pytest

from cliquet.testing.plugin import postgresql_schema, require_module

require_module("psycopg", reason="the `postgresql` extra is not installed")

from cliquet.storage import AccessibleIds  # noqa: E402
from cliquet.testing.app import SharedArticle, basic_auth, make_app  # noqa: E402
from cliquet.testing.atomicity import RequestAtomicityContract  # noqa: E402

URL = "/v1/articles"


@pytest.fixture
def pg_url(postgresql_url, cliquet_worker_prefix):
    schema = f"{cliquet_worker_prefix}share"
    with postgresql_schema(postgresql_url, schema) as url:
        yield url


@pytest.mark.services
@pytest.mark.xdist_group("postgresql-sharing")
def test_lists_check_permissions_inside_the_record_query(pg_url, monkeypatch):
    app = make_app(resources=(SharedArticle,), storage_backend="cliquet.storage.postgresql", storage_url=pg_url,
                   permission_backend="cliquet.permission.postgresql", permission_url=pg_url)
    registry = app.app.registry
    registry.storage.initialize_schema()
    registry.permission.initialize_schema()
    bob = app.get("/v1/", headers=basic_auth("bob")).json["user"]["id"]
    for i in range(6):
        perms = {"read": [bob]} if i % 2 else {}
        app.post_json(URL, {"data": {"title": f"t{i}", "score": i}, "permissions": perms}, headers=basic_auth())
    loaded = []
    monkeypatch.setattr(AccessibleIds, "ids", property(lambda self: loaded.append(1) or frozenset()))
    resp = app.get(f"{URL}?_sort=score&_limit=2", headers=basic_auth("bob"))
    assert resp.headers["Total-Records"] == "3"
    seen = [r["title"] for r in resp.json["data"]]
    seen += [r["title"] for r in app.get(resp.headers["Next-Page"], headers=basic_auth("bob")).json["data"]]
    assert seen == ["t1", "t3", "t5"]
    assert loaded == []  # the ids were never fetched: the join did the work
    assert app.get(URL, headers=basic_auth("carol")).json["data"] == []


@pytest.mark.services
class TestMixedBackendsRequests(RequestAtomicityContract):
    """Records on PostgreSQL, permissions in memory: two engines, no common
    transaction. A failed request may leave permissions behind, so
    ``"atomicity"`` is not declared (that test skips, saying why); races and
    revocation still hold."""

    @pytest.fixture
    def capabilities(self):
        return {"isolation"}

    @pytest.fixture
    def app_settings(self, pg_url):
        return {"storage_backend": "cliquet.storage.postgresql", "storage_url": pg_url,
                "permission_backend": "cliquet.permission.memory"}


@pytest.mark.services
def test_startup_says_when_permissions_are_not_atomic_with_records(pg_url, caplog):
    with caplog.at_level("WARNING", logger="cliquet"):
        mixed = make_app(resources=(SharedArticle,), storage_backend="cliquet.storage.postgresql", storage_url=pg_url,
                         permission_backend="cliquet.permission.memory")
    assert mixed.app.registry.cliquet_atomic_permissions is False
    assert [r for r in caplog.records if "not atomic" in r.getMessage()
            and "cliquet.permission.memory" in r.getMessage()], caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="cliquet"):
        joined = make_app(resources=(SharedArticle,), storage_backend="cliquet.storage.postgresql",
                          storage_url=pg_url, storage_pool_size=3,
                          permission_backend="cliquet.permission.postgresql", permission_url=pg_url)
    assert joined.app.registry.cliquet_atomic_permissions is True
    assert not [r for r in caplog.records if "not atomic" in r.getMessage()]
