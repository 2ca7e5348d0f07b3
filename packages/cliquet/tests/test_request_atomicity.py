"""One atomic, isolated boundary per request, through the WSGI app: what
the shared :class:`cliquet.testing.atomicity.RequestAtomicityContract` (a
failure after each write, racing ``If-Match``, revocation under concurrent
writes; run per backend in ``test_*_backends.py``) does not check.

A request's writes — records, permissions, timestamps — all happen or none
do, and concurrent requests never see or undo each other's partial work.
Every test runs on the memory backends and, with the same assertions, on
Redis and PostgreSQL against their real servers.
"""

import threading
import time
import uuid

import pytest
import webtest

from cliquet.testing.app import SharedArticle, app_on_backends, basic_auth, make_app

URL = "/v1/articles"
ALICE, BOB = basic_auth("alice"), basic_auth("bob")


@pytest.fixture(params=[
    "memory",
    pytest.param("redis", marks=pytest.mark.services),
    pytest.param("postgresql", marks=pytest.mark.services),
])
def app(request, cliquet_worker_prefix):
    """A shareable-articles app on the backends of the parameter (each test
    gets its own keys or schema)."""
    prefix = f"{cliquet_worker_prefix}atom{uuid.uuid4().hex[:8]}_"
    yield from app_on_backends(request, request.param, prefix)


def userid(app, headers):
    return app.get("/v1/", headers=headers).json["user"]["id"]


def record_url(record_id):
    return f"{URL}/{record_id}"


def snapshot(app, record_id):
    """Everything a request on the record may have changed: the record, its
    ACL, the collection's ETag and what bob may do."""
    registry = app.app.registry
    uri = f"/articles/{record_id}"
    resp = app.get(record_url(record_id), headers=ALICE, expect_errors=True)
    return {
        "record": (resp.status_int, resp.json.get("data")),
        "acl": registry.permission.get_object_permissions(uri),
        "etag": app.get(URL, headers=ALICE).headers["ETag"],
        "bob reads": app.get(record_url(record_id), headers=BOB, expect_errors=True).status_int,
    }


def test_an_invalid_response_behavior_writes_nothing(app):
    record = app.post_json(URL, {"data": {"title": "mine"}}, headers=ALICE).json["data"]
    before = snapshot(app, record["id"])
    resp = app.patch_json(record_url(record["id"]),
                          {"data": {"title": "shared"}, "permissions": {"write": [userid(app, BOB)]}},
                          headers={**ALICE, "Response-Behavior": "everything"}, status=400)
    assert resp.json["errno"] == 107
    assert resp.json["details"][0]["name"] == "Response-Behavior"
    assert snapshot(app, record["id"]) == before
    app.patch_json(record_url(record["id"]), {"data": {"title": "bob's"}}, headers=BOB, status=403)


def _listed(app, headers, query=""):
    return {r["id"] for r in app.get(f"{URL}{query}", headers=headers).json["data"]}


def test_a_revocation_is_seen_by_the_next_list_even_when_lists_ran_during_it(app, monkeypatch):
    """bob's read on X is revoked and granted again while another client
    writes and bob lists without pause; the permission backend is slow to
    write X's ACL, so bob's lists do run while the revocation is under way
    (a list in that window saw the new collection timestamp with the old
    ACL, and cached it under that timestamp). The very next list, ``_since``
    list and get after the revocation must not show X."""
    registry = app.app.registry
    wsgi = app.app
    bob = userid(app, BOB)
    target = app.post_json(URL, {"data": {"title": "x"}, "permissions": {"read": [bob]}}, headers=ALICE).json
    other = app.post_json(URL, {"data": {"title": "y"}, "permissions": {"read": [bob]}}, headers=ALICE).json
    x, y = target["data"]["id"], other["data"]["id"]
    start = target["data"]["last_modified"] - 1
    real = registry.permission.replace_object_permissions

    def slow(object_id, permissions):
        if object_id.endswith(x):
            time.sleep(0.02)
        return real(object_id, permissions)

    monkeypatch.setattr(registry.permission, "replace_object_permissions", slow)
    stop = threading.Event()
    errors = []

    def loop(action):
        client = webtest.TestApp(wsgi)
        n = 0
        try:
            while not stop.is_set():
                n += 1
                action(client, n)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    def write(client, n):
        client.patch_json(record_url(y), {"data": {"title": f"y{n}"}}, headers=ALICE)
        time.sleep(0.003)

    def read(client, n):
        client.get(URL, headers=BOB)
        client.get(f"{URL}?_since={start}", headers=BOB)

    threads = [threading.Thread(target=loop, args=(action,)) for action in (write, read)]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(15):
            app.patch_json(record_url(x), {"permissions": {"read": []}}, headers=ALICE)
            assert x not in _listed(app, BOB), f"round {round_}: list"
            assert x not in _listed(app, BOB, f"?_since={start}"), f"round {round_}: _since"
            app.get(record_url(x), headers=BOB, status=403)
            app.patch_json(record_url(x), {"permissions": {"read": [bob]}}, headers=ALICE)
            assert x in _listed(app, BOB), f"round {round_}: list after the grant"
            app.get(record_url(x), headers=BOB, status=200)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []


def test_a_permission_changed_without_a_record_write_is_seen_by_lists(app):
    """The read check of lists is never served from a cache keyed by the
    collection timestamp (which does not move here)."""
    registry = app.app.registry
    bob = userid(app, BOB)
    record = app.post_json(URL, {"data": {"title": "x"}, "permissions": {"read": [bob]}}, headers=ALICE).json
    assert _listed(app, BOB) == {record["data"]["id"]}
    registry.permission.remove_principal_from_ace(f"/articles/{record['data']['id']}", "read", bob)
    assert _listed(app, BOB) == set()
    registry.permission.add_principal_to_ace(f"/articles/{record['data']['id']}", "read", bob)
    assert _listed(app, BOB) == {record["data"]["id"]}


def test_no_request_writes_the_cache_backend(monkeypatch):
    """The cache backend is outside the request boundary: that holds only
    as long as no request writes it (one that does must commit and roll back
    its entries with the rest, and change this test)."""
    app = make_app(resources=(SharedArticle,))
    cache = app.app.registry.cache
    calls = []
    for name in ("set", "delete", "expire", "flush"):
        monkeypatch.setattr(cache, name, lambda *args, _name=name, **kwargs: calls.append(_name))
    bob = userid(app, BOB)
    record = app.post_json(URL, {"data": {"title": "a"}, "permissions": {"read": [bob]}}, headers=ALICE).json
    url = record_url(record["data"]["id"])
    app.patch_json(url, {"data": {"title": "b"}}, headers=ALICE)
    app.put_json(url, {"data": {"title": "c"}}, headers=ALICE)
    app.get(URL, headers=BOB)
    app.post_json("/v1/batch", {"requests": [{"method": "GET", "path": url},
                                             {"method": "DELETE", "path": url}]}, headers=ALICE)
    app.get(url, headers=ALICE, status=404)
    app.patch_json(url, {"data": {"title": "d"}}, headers={**ALICE, "Response-Behavior": "x"}, status=400)
    assert calls == []
