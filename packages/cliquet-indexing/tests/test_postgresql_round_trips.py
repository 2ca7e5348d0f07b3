"""Statements a PATCH sends to PostgreSQL as shipped (the PostgreSQL
indexer on) against the same server without the plugin: the index row is
the only addition, and it leaves with the ``COMMIT`` (no round trip of its
own); a PATCH that leaves the permissions as they are writes no ACE."""

import pytest

from cliquet.testing.plugin import postgresql_schema, require_module

psycopg = require_module("psycopg", reason="the `postgresql` extra is not installed")

from cliquet.testing.app import SharedArticle, basic_auth, make_app  # noqa: E402
from cliquet.testing.statements import record_statements  # noqa: E402
from cliquet_indexing.testing.app import make_search_app  # noqa: E402

URL = "/v1/articles"


@pytest.fixture
def pg_url(postgresql_url, cliquet_worker_prefix):
    schema = f"{cliquet_worker_prefix}idxtrips"
    with postgresql_schema(postgresql_url, schema) as url:
        yield url


@pytest.fixture
def statements(monkeypatch):
    """The text of every statement sent from now on (a list, cleared at will);
    ``statements.pipelined`` those sent inside a pipeline."""
    return record_statements(monkeypatch)


def _patch_statements(app, statements):
    created = app.post_json(URL, {"data": {"title": "hello world", "score": 1}}, headers=basic_auth()).json["data"]
    etag = f'"{created["last_modified"]}"'
    for score in (2, 3):  # warm-up: prepared statements, caches
        etag = app.patch_json(f"{URL}/{created['id']}", {"data": {"score": score}},
                              headers={**basic_auth(), "If-Match": etag}).headers["ETag"]
    statements.clear()
    app.patch_json(f"{URL}/{created['id']}", {"data": {"score": 4.5}}, headers={**basic_auth(), "If-Match": etag})
    return list(statements), created["id"]


@pytest.mark.services
def test_a_patch_as_shipped_adds_only_its_index_row_sent_with_the_commit(pg_url, statements):
    kw = dict(storage_backend="cliquet.storage.postgresql", storage_url=pg_url,
              permission_backend="cliquet.permission.postgresql", permission_url=pg_url)
    core, _ = _patch_statements(make_app(resources=(SharedArticle,), **kw), statements)
    shipped_app = make_search_app(resources=(SharedArticle,), **kw)
    shipped, record_id = _patch_statements(shipped_app, statements)
    index_writes = [s for s in shipped if s.startswith("INSERT INTO cliquet_index")]
    assert len(index_writes) == 1, shipped
    assert [s for s in shipped if not s.startswith("INSERT INTO cliquet_index")] == core
    assert len(shipped) == 6, shipped  # GET, ACEs read, BEGIN, record, index row, COMMIT
    assert not [s for s in shipped if "cliquet_access_control_entries" in s and "INSERT" in s], shipped
    # the index row is queued for the COMMIT: sent last, right before it
    assert shipped[-2:] == [index_writes[0], "COMMIT"]
    assert statements.pipelined == [index_writes[0], "COMMIT"]  # 5 round trips for 6 statements
    found = shipped_app.post_json("/v1/search/articles", {"query": {"range": {"score": {"gte": 4}}}},
                                  headers=basic_auth()).json["data"]
    assert [(r["id"], r["score"]) for r in found] == [(record_id, 4.5)]


def _aces_written(statements):
    return [s for s in statements if "INSERT INTO cliquet_access_control_entries" in s]


@pytest.mark.services
def test_a_patch_writes_the_acl_only_when_it_changes(pg_url, statements):
    app = make_search_app(resources=(SharedArticle,), storage_backend="cliquet.storage.postgresql",
                          storage_url=pg_url, permission_backend="cliquet.permission.postgresql",
                          permission_url=pg_url)
    created = app.post_json(URL, {"data": {"title": "shared"}}, headers=basic_auth()).json
    record_url = f"{URL}/{created['data']['id']}"
    writer = created["permissions"]["write"]
    for body in ({"data": {"title": "same acl"}},
                 {"data": {"title": "same acl, said again"}, "permissions": {"write": writer}},
                 {"data": {"title": "empty read, as stored"}, "permissions": {"read": []}}):
        statements.clear()
        resp = app.patch_json(record_url, body, headers=basic_auth())
        assert _aces_written(statements) == [], (body, list(statements))
        assert resp.json["permissions"] == {"read": writer, "write": writer}
    statements.clear()
    resp = app.patch_json(record_url, {"data": {"title": "shared with all"},
                                       "permissions": {"read": ["system.Everyone"]}}, headers=basic_auth())
    assert len(_aces_written(statements)) == 1, list(statements)
    assert resp.json["permissions"]["read"] == sorted(["system.Everyone", *writer])
    assert app.get(record_url, headers=basic_auth("other")).json["data"]["title"] == "shared with all"
