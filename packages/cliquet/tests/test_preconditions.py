"""If-Match / If-None-Match on records and collections: 304 and 412."""

import uuid

URL = "/v1/articles"


def create(app, headers, **fields):
    fields.setdefault("title", "hello")
    return app.post_json(URL, {"data": fields}, headers=headers, status=201).json["data"]


def q(ts):
    return f'"{ts}"'


def test_get_record_if_none_match_current_is_304(app, headers):
    r = create(app, headers)
    resp = app.get(f"{URL}/{r['id']}", headers={**headers, "If-None-Match": q(r["last_modified"])}, status=304)
    assert resp.body == b"" and resp.headers["ETag"] == q(r["last_modified"])
    app.get(f"{URL}/{r['id']}", headers={**headers, "If-None-Match": q(1)}, status=200)


def test_get_record_if_match_stale_is_412(app, headers):
    r = create(app, headers)
    resp = app.get(f"{URL}/{r['id']}", headers={**headers, "If-Match": q(1)}, status=412)
    assert resp.json["errno"] == 114


def test_put_if_match_current_succeeds_and_stale_fails(app, headers):
    r = create(app, headers)
    url = f"{URL}/{r['id']}"
    ok = app.put_json(url, {"data": {"title": "b"}}, headers={**headers, "If-Match": q(r["last_modified"])})
    resp = app.put_json(url, {"data": {"title": "c"}}, headers={**headers, "If-Match": q(r["last_modified"])},
                        status=412)
    assert resp.json["errno"] == 114
    assert resp.json["details"]["existing"] == ok.json["data"]
    assert resp.headers["ETag"] == q(ok.json["data"]["last_modified"])
    assert app.get(url, headers=headers).json["data"]["title"] == "b"


def test_put_if_none_match_star_creates_only(app, headers):
    url = f"{URL}/{uuid.uuid4()}"
    app.put_json(url, {"data": {"title": "a"}}, headers={**headers, "If-None-Match": "*"}, status=201)
    app.put_json(url, {"data": {"title": "b"}}, headers={**headers, "If-None-Match": "*"}, status=412)


def test_put_if_match_on_missing_record_is_412(app, headers):
    app.put_json(f"{URL}/{uuid.uuid4()}", {"data": {"title": "a"}}, headers={**headers, "If-Match": q(1)},
                 status=412)
    app.put_json(f"{URL}/{uuid.uuid4()}", {"data": {"title": "a"}}, headers={**headers, "If-Match": "*"},
                 status=412)


def test_patch_and_delete_with_stale_if_match_change_nothing(app, headers):
    r = create(app, headers, title="a")
    url = f"{URL}/{r['id']}"
    stale = {**headers, "If-Match": q(r["last_modified"] - 1)}
    app.patch_json(url, {"data": {"title": "b"}}, headers=stale, status=412)
    app.delete(url, headers=stale, status=412)
    assert app.get(url, headers=headers).json["data"] == r
    app.patch_json(url, {"data": {"title": "b"}}, headers={**headers, "If-Match": q(r["last_modified"])})


def test_patch_delete_missing_record_with_if_match_is_412(app, headers):
    url = f"{URL}/{uuid.uuid4()}"
    app.patch_json(url, {"data": {"title": "b"}}, headers={**headers, "If-Match": q(1)}, status=412)
    app.delete(url, headers={**headers, "If-Match": q(1)}, status=412)
    app.get(url, headers={**headers, "If-Match": q(1)}, status=412)


def test_collection_if_none_match(app, headers):
    create(app, headers)
    etag = app.get(URL, headers=headers).headers["ETag"]
    app.get(URL, headers={**headers, "If-None-Match": etag}, status=304)
    create(app, headers)
    app.get(URL, headers={**headers, "If-None-Match": etag}, status=200)


def test_collection_if_match(app, headers):
    create(app, headers)
    etag = app.get(URL, headers=headers).headers["ETag"]
    app.post_json(URL, {"data": {"title": "b"}}, headers={**headers, "If-Match": etag}, status=201)
    resp = app.post_json(URL, {"data": {"title": "c"}}, headers={**headers, "If-Match": etag}, status=412)
    assert resp.json["errno"] == 114
    app.get(URL, headers={**headers, "If-Match": etag}, status=412)
    app.delete(URL, headers={**headers, "If-Match": etag}, status=412)
    assert len(app.get(URL, headers=headers).json["data"]) == 2
