"""Shareable records: permissions in bodies, and who may do what."""

import pytest

from cliquet.testing.app import SharedArticle, basic_auth, make_app

URL = "/v1/articles"
OWNER, READER, WRITER, STRANGER = (basic_auth(u) for u in ("owner", "reader", "writer", "stranger"))


def userid(app, headers):
    return app.get("/v1/", headers=headers).json["user"]["id"]


@pytest.fixture
def app():
    return make_app(resources=(SharedArticle,))


@pytest.fixture
def shared(app):
    """A record of OWNER, readable by READER, writable by WRITER."""
    perms = {"read": [userid(app, READER)], "write": [userid(app, WRITER)]}
    return app.post_json(URL, {"data": {"title": "doc"}, "permissions": perms}, headers=OWNER).json


def test_creator_is_in_write_and_writers_read(app, shared):
    perms = shared["permissions"]
    owner, reader, writer = userid(app, OWNER), userid(app, READER), userid(app, WRITER)
    assert perms["write"] == sorted([owner, writer])
    assert perms["read"] == sorted([owner, reader, writer])


ROLES = {"owner": OWNER, "reader": READER, "writer": WRITER, "stranger": STRANGER, "anonymous": {}}
# expected status per verb and role
MATRIX = {
    "get": {"owner": 200, "reader": 200, "writer": 200, "stranger": 403, "anonymous": 401},
    "patch": {"owner": 200, "reader": 403, "writer": 200, "stranger": 403, "anonymous": 401},
    "put": {"owner": 200, "reader": 403, "writer": 200, "stranger": 403, "anonymous": 401},
    "delete": {"owner": 200, "reader": 403, "writer": 200, "stranger": 403, "anonymous": 401},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("verb", MATRIX)
def test_permission_matrix(app, shared, verb, role):
    url = f"{URL}/{shared['data']['id']}"
    headers = ROLES[role]
    expected = MATRIX[verb][role]
    if verb == "get":
        resp = app.get(url, headers=headers, status=expected)
    elif verb == "delete":
        resp = app.delete(url, headers=headers, status=expected)
    else:
        resp = getattr(app, f"{verb}_json")(url, {"data": {"title": "changed"}}, headers=headers, status=expected)
    if expected >= 400:
        assert resp.json["errno"] == {401: 104, 403: 121}[expected]
        assert app.get(url, headers=OWNER).json["data"]["title"] == "doc"


@pytest.mark.parametrize("role,expected", [("owner", 1), ("reader", 1), ("writer", 1), ("stranger", 0)])
def test_lists_show_what_each_may_read(app, shared, role, expected):
    app.post_json(URL, {"data": {"title": "private"}}, headers=OWNER)
    app.post_json(URL, {"data": {"title": "stranger's"}}, headers=STRANGER)
    resp = app.get(f"{URL}?title=doc", headers=ROLES[role])
    assert len(resp.json["data"]) == expected
    assert resp.headers["Total-Records"] == str(expected)


def test_anonymous_list_is_401(app, shared):
    assert app.get(URL, status=401).json["errno"] == 104


def test_create_then_list_with_pagination_over_shared_set(app):
    for i in range(5):
        app.post_json(URL, {"data": {"title": f"s{i}"}, "permissions": {"read": ["system.Authenticated"]}},
                      headers=OWNER)
        app.post_json(URL, {"data": {"title": f"p{i}"}}, headers=OWNER)
    seen, url = [], f"{URL}?_limit=2&_sort=title"
    while url:
        resp = app.get(url, headers=STRANGER)
        assert resp.headers["Total-Records"] == "5"
        seen += [r["title"] for r in resp.json["data"]]
        url = resp.headers.get("Next-Page")
    assert seen == [f"s{i}" for i in range(5)]


def test_shared_with_everyone_is_readable_anonymously(app):
    rid = app.post_json(URL, {"data": {"title": "public"}, "permissions": {"read": ["system.Everyone"]}},
                        headers=OWNER).json["data"]["id"]
    assert app.get(f"{URL}/{rid}").json["data"]["title"] == "public"


def test_patch_with_only_permissions_changes_only_them(app, shared):
    url = f"{URL}/{shared['data']['id']}"
    stranger = userid(app, STRANGER)
    resp = app.patch_json(url, {"permissions": {"read": [stranger]}}, headers=OWNER).json
    assert resp["data"]["title"] == "doc"
    assert stranger in resp["permissions"]["read"]
    assert userid(app, READER) not in resp["permissions"]["read"]
    assert userid(app, WRITER) in resp["permissions"]["write"]  # write untouched
    app.get(url, headers=STRANGER, status=200)
    app.get(url, headers=READER, status=403)


def test_put_replaces_permissions_caller_and_creator_keep_write(app, shared):
    url = f"{URL}/{shared['data']['id']}"
    resp = app.put_json(url, {"data": {"title": "new"}, "permissions": {"read": []}}, headers=WRITER).json
    writers = sorted([userid(app, OWNER), userid(app, WRITER)])
    assert resp["permissions"] == {"read": writers, "write": writers}
    app.get(url, headers=OWNER, status=200)
    app.get(url, headers=READER, status=403)


@pytest.mark.parametrize("permissions,name", [
    ("read", "permissions"),
    ({"read": "system.Everyone"}, "permissions.read"),
    ({"admin": ["x"]}, "permissions.admin"),
    ({"write": [1]}, "permissions.write"),
])
def test_invalid_permissions_are_400(app, permissions, name):
    resp = app.post_json(URL, {"data": {"title": "x"}, "permissions": permissions}, headers=OWNER, status=400)
    assert resp.json["errno"] == 107 and resp.json["details"][0]["name"] == name
    assert app.get(URL, headers=OWNER).json["data"] == []


def test_per_user_resource_refuses_permissions():
    app = make_app()
    resp = app.post_json(URL, {"data": {"title": "x"}, "permissions": {}}, headers=OWNER, status=400)
    assert resp.json["details"][0]["name"] == "permissions"


def test_groups_grant_access(app):
    rid = app.post_json(URL, {"data": {"title": "team"}, "permissions": {"read": ["group:team"]}},
                        headers=OWNER).json["data"]["id"]
    app.get(f"{URL}/{rid}", headers=STRANGER, status=403)
    app.app.registry.permission.add_user_principal(userid(app, STRANGER), "group:team")
    app.get(f"{URL}/{rid}", headers=STRANGER, status=200)


def test_collection_principals_settings():
    app = make_app(resources=(SharedArticle,), article_create_principals="basicauth:nobody",
                   article_read_principals="system.Authenticated")
    resp = app.post_json(URL, {"data": {"title": "x"}}, headers=OWNER, status=403)
    assert resp.json["errno"] == 121


def test_readers_see_tombstones_when_polling(app, shared):
    since = shared["data"]["last_modified"]
    app.delete(f"{URL}/{shared['data']['id']}", headers=OWNER)
    data = app.get(f"{URL}?_since={since - 1}", headers=READER).json["data"]
    assert data == [{"id": shared["data"]["id"], "last_modified": data[0]["last_modified"], "deleted": True}]


def test_events_carry_read_principals(app, shared):
    from cliquet.events import ResourceChanged

    received = []
    app.app.registry.registerHandler(received.append, (ResourceChanged,))
    app.app.registry.cliquet_event_listeners = {}
    app.patch_json(f"{URL}/{shared['data']['id']}", {"data": {"title": "x"}}, headers=WRITER)
    principals = received[0].impacted_records[0]["read_principals"]
    assert set(principals) == {userid(app, u) for u in (OWNER, READER, WRITER)}
