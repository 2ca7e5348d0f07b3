"""How many statements each request sends to PostgreSQL: every round trip
is latency on the request's critical path, so the folds made to save them
are pinned here, through the real stack and the real server."""


import pytest

from cliquet.testing.plugin import postgresql_schema, require_module

psycopg = require_module("psycopg", reason="the `postgresql` extra is not installed")

from cliquet.testing.app import basic_auth, make_postgresql_app  # noqa: E402
from cliquet.testing.statements import record_statements  # noqa: E402

URL = "/v1/articles"


@pytest.fixture
def pg_url(postgresql_url, cliquet_worker_prefix):
    schema = f"{cliquet_worker_prefix}trips"
    with postgresql_schema(postgresql_url, schema) as url:
        yield url


@pytest.fixture
def app(pg_url):
    return make_postgresql_app(pg_url)


@pytest.fixture
def statements(monkeypatch):
    """The text of every statement sent from now on (a list, cleared at will)."""
    return record_statements(monkeypatch)


@pytest.mark.services
def test_replacing_permissions_is_one_statement_that_keeps_unchanged_entries(app, statements):
    permission = app.app.registry.permission
    permission.replace_object_permissions("/o", {"read": ["a", "b"], "write": ["w"]})
    ctid = permission.client.execute(
        "SELECT ctid::text FROM cliquet_access_control_entries WHERE object_id = '/o' AND principal = 'a'",
        fetch="one")[0]
    statements.clear()
    result = permission.replace_object_permissions("/o", {"read": ["a", "c"], "share": []})
    assert len(statements) == 1, statements
    assert result == {"read": {"a", "c"}, "write": {"w"}}
    assert permission.get_object_permissions("/o") == result
    # "a" was kept, not deleted and inserted again
    assert permission.client.execute(
        "SELECT ctid::text FROM cliquet_access_control_entries WHERE object_id = '/o' AND principal = 'a'",
        fetch="one")[0] == ctid
    assert permission.replace_object_permissions("/o", {}) == result


@pytest.mark.services
def test_a_create_sends_one_statement_for_its_permissions(app, statements):
    app.post_json(URL, {"data": {"title": "warm-up"}}, headers=basic_auth())
    statements.clear()
    app.post_json(URL, {"data": {"title": "t"}, "permissions": {"read": ["bob"]}}, headers=basic_auth())
    aces = [s for s in statements if "cliquet_access_control_entries" in s]
    assert len(aces) == 1, aces


@pytest.mark.services
def test_a_create_reads_the_collection_timestamp_only_for_a_precondition(app, statements):
    first = app.post_json(URL, {"data": {"title": "warm-up"}}, headers=basic_auth()).json["data"]
    statements.clear()
    app.post_json(URL, {"data": {"title": "t"}}, headers=basic_auth())
    reads = [s for s in statements if s.startswith("SELECT") and "cliquet_timestamps" in s]
    assert reads == []
    assert len(statements) <= 6, statements  # principals, BEGIN, ACEs, record, COMMIT (+ the permission check)
    stale = {**basic_auth(), "If-Match": f'"{first["last_modified"]}"'}
    resp = app.post_json(URL, {"data": {"title": "late"}}, headers=stale, status=412)
    assert resp.json["errno"] == 114
    assert "late" not in {r["title"] for r in app.get(URL, headers=basic_auth()).json["data"]}
    ts = app.get(URL, headers=basic_auth()).headers["ETag"]
    app.post_json(URL, {"data": {"title": "fresh"}}, headers={**basic_auth(), "If-Match": ts}, status=201)


@pytest.mark.services
def test_a_batch_sub_request_pays_one_savepoint_round_trip(app, statements):
    app.post_json(URL, {"data": {"title": "warm-up"}}, headers=basic_auth())
    statements.clear()
    requests = [{"method": "POST", "path": "/articles", "body": {"data": {"title": f"b{i}"}}} for i in range(5)]
    resp = app.post_json("/v1/batch", {"requests": requests}, headers=basic_auth())
    assert [r["status"] for r in resp.json["responses"]] == [201] * 5
    savepoints = [s for s in statements if "SAVEPOINT" in s]
    # the first with BEGIN, the others with the RELEASE of the one before: one message each
    assert savepoints == ["BEGIN; SAVEPOINT cliquet_sp1"] + ["RELEASE SAVEPOINT cliquet_sp1; SAVEPOINT cliquet_sp1"] * 4
    assert len(statements) == 1 + 5 * 3 + 1, statements  # principals, (savepoint, ACEs, record) each, COMMIT
    assert statements[-1] == "COMMIT"


class _Boom(Exception):
    pass


@pytest.mark.services
def test_ended_savepoints_released_late_still_undo_exactly_the_failed_block(app):
    storage = app.app.registry.storage
    c = "late-release"

    def block(record_id, fail=False, inner=()):
        try:
            with storage.transaction():
                storage.create(c, "p", {"id": record_id})
                for args in inner:
                    block(*args)
                if fail:
                    raise _Boom()
        except _Boom:
            pass

    with storage.transaction():
        storage.create(c, "p", {"id": "top"})
        block("a")
        block("b", fail=True)
        block("c", inner=[("c1",), ("c2", True), ("c3",)])
        block("d", fail=True, inner=[("d1",), ("d2",)])
        block("e", inner=[("e1", False, [("e11",)])])
        storage.create(c, "p", {"id": "last"})
    ids = {r["id"] for r in storage.get_all(c, "p")[0]}
    assert ids == {"top", "a", "c", "c1", "c3", "e", "e1", "e11", "last"}
    stamps = sorted(r["last_modified"] for r in storage.get_all(c, "p")[0])
    assert len(set(stamps)) == len(stamps)


@pytest.mark.services
@pytest.mark.parametrize("concurrent_commits", ["before", "while_waiting"])
def test_updating_a_record_read_earlier_is_one_statement_that_loses_no_update(app, statements, concurrent_commits):
    import threading

    from cliquet.storage.exceptions import ConflictError

    storage = app.app.registry.storage
    c = f"checked-{concurrent_commits}"
    record = storage.create(c, "p", {"id": "r", "v": 0})
    other_holds_lock, other_may_commit = threading.Event(), threading.Event()

    def other():
        with storage.transaction():
            storage.update(c, "p", "r", {"v": "other"})
            other_holds_lock.set()
            other_may_commit.wait(10)

    with pytest.raises(ConflictError):
        with storage.transaction():
            assert storage.get(c, "p", "r")["v"] == 0
            thread = threading.Thread(target=other)
            thread.start()
            assert other_holds_lock.wait(10)
            if concurrent_commits == "before":
                other_may_commit.set()
                thread.join(10)
            else:
                threading.Timer(0.3, other_may_commit.set).start()
            statements.clear()
            try:
                storage.update(c, "p", "r", {"v": "mine"})
            finally:
                thread.join(10)
    writes = [s for s in statements if s.startswith("WITH ts AS")]
    assert len(writes) == 1 and not any("FOR UPDATE" in s for s in statements), statements
    current = storage.get(c, "p", "r")
    assert current["v"] == "other" and current["last_modified"] > record["last_modified"]

    with storage.transaction():  # unchanged since read: the write goes through
        storage.get(c, "p", "r")
        updated = storage.update(c, "p", "r", {"v": "mine"})
    assert storage.get(c, "p", "r") == updated and updated["last_modified"] > current["last_modified"]


@pytest.mark.services
def test_since_reads_the_purge_horizon_with_its_page(app, statements):
    first = app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth()).json["data"]
    app.post_json(URL, {"data": {"title": "b"}}, headers=basic_auth())
    statements.clear()
    resp = app.get(f"{URL}?_since={first['last_modified']}", headers=basic_auth())
    assert [r["title"] for r in resp.json["data"]] == ["b"]
    assert not [s for s in statements if s.startswith("SELECT purged_before")], statements


@pytest.mark.services
def test_a_purge_during_a_since_poll_is_never_missed(app, monkeypatch):
    import threading

    storage = app.app.registry.storage
    gone = app.post_json(URL, {"data": {"title": "gone"}}, headers=basic_auth()).json["data"]
    since = gone["last_modified"]
    app.delete(f"{URL}/{gone['id']}", headers=basic_auth())
    app.post_json(URL, {"data": {"title": "new"}}, headers=basic_auth())
    original = type(storage).get_all_with_timestamp  # what a list without a precondition reads

    def get_all_after_a_purge(self, *args, **kwargs):
        # Another client purges every tombstone just before the page is read.
        purge = threading.Thread(target=storage.purge_deleted, args=(None, None))
        purge.start()
        purge.join(10)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(storage), "get_all_with_timestamp", get_all_after_a_purge)
    resp = app.get(f"{URL}?_since={since - 1}", headers=basic_auth(), status=400)
    assert resp.json["errno"] == 107 and "resync" in resp.json["message"]


@pytest.mark.services
def test_a_list_reads_its_timestamp_with_its_page(app, statements):
    first = app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth()).json["data"]
    last = app.post_json(URL, {"data": {"title": "b"}}, headers=basic_auth()).json["data"]
    for query in (f"?_since={first['last_modified']}", "?_sort=title&_limit=1", "?title=nothing"):
        app.get(URL + query, headers=basic_auth())  # the kept count, then...
        statements.clear()
        resp = app.get(URL + query, headers=basic_auth())
        stamps = [s for s in statements if s.startswith("SELECT last_modified FROM cliquet_timestamps")]
        assert len(stamps) == 1 and stamps[0] in statements.pipelined, statements
        assert len(statements) - len(statements.pipelined) == 1, statements  # the user's principals
        assert resp.headers["ETag"] == f'"{last["last_modified"]}"'
    # With a precondition, the timestamp decides before any page is read.
    statements.clear()
    app.get(URL, headers={**basic_auth(), "If-None-Match": f'"{last["last_modified"]}"'}, status=304)
    assert not [s for s in statements if " id, last_modified, deleted, data " in s], statements


@pytest.mark.services
def test_a_get_reads_the_acl_and_the_user_principals_in_one_statement(app, statements):
    record = app.post_json(URL, {"data": {"title": "t"}}, headers=basic_auth()).json["data"]
    statements.clear()
    app.get(f"{URL}/{record['id']}", headers=basic_auth())
    assert len(statements) == 2, statements  # the record, then its ACL with the user's principals
    assert not [s for s in statements if s.startswith("SELECT principal FROM cliquet_user_principals")]
    app.get(f"{URL}/{record['id']}", headers=basic_auth("bob"), status=403)


@pytest.mark.services
def test_a_batch_reads_the_user_principals_once(app, statements):
    app.post_json(URL, {"data": {"title": "warm-up"}}, headers=basic_auth())
    statements.clear()
    requests = [{"method": "POST", "path": "/articles", "body": {"data": {"title": f"b{i}"}}} for i in range(5)]
    resp = app.post_json("/v1/batch", {"requests": requests}, headers=basic_auth())
    assert [r["status"] for r in resp.json["responses"]] == [201] * 5
    reads = [s for s in statements if "cliquet_user_principals" in s]
    assert len(reads) == 1, reads


@pytest.mark.services
def test_user_principals_changed_in_a_transaction_are_read_again(app):
    permission = app.app.registry.permission
    storage = app.app.registry.storage
    permission.add_user_principal("u", "g1")
    with storage.transaction():
        assert permission.get_user_principals("u") == {"g1"}
        permission.add_user_principal("u", "g2")
        assert permission.get_user_principals("u") == {"g1", "g2"}
        try:
            with storage.transaction():
                permission.remove_user_principal("u", "g1")
                assert permission.get_user_principals("u") == {"g2"}
                raise _Boom()
        except _Boom:
            pass
        assert permission.get_user_principals("u") == {"g1", "g2"}
        acl, principals = permission.get_object_permissions_and_user_principals("/o", ["read"], "u")
        assert (acl, principals) == ({}, {"g1", "g2"})
    assert permission.get_user_principals("u") == {"g1", "g2"}
