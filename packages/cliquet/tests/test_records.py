"""Records: POST, GET, PUT, PATCH, DELETE through the real WSGI stack."""

import uuid

import pytest

URL = "/v1/articles"


def create(app, headers, **fields):
    fields.setdefault("title", "hello")
    return app.post_json(URL, {"data": fields}, headers=headers, status=201).json["data"]


def test_create_returns_201_with_id_and_timestamp(app, headers):
    resp = app.post_json(URL, {"data": {"title": "Hello", "score": 3, "tags": ["a"]}}, headers=headers, status=201)
    data = resp.json["data"]
    assert uuid.UUID(data["id"]).version == 4
    assert data["title"] == "Hello" and data["score"] == 3 and data["tags"] == ["a"]
    assert resp.headers["ETag"] == f'"{data["last_modified"]}"'


def test_create_with_given_id_then_again_returns_200(app, headers):
    rid = str(uuid.uuid4())
    app.post_json(URL, {"data": {"id": rid, "title": "a"}}, headers=headers, status=201)
    resp = app.post_json(URL, {"data": {"id": rid, "title": "b"}}, headers=headers, status=200)
    assert resp.json["data"]["title"] == "a"


def test_create_with_existing_id_and_if_none_match_star_is_412(app, headers):
    rid = str(uuid.uuid4())
    app.post_json(URL, {"data": {"id": rid, "title": "a"}}, headers=headers)
    resp = app.post_json(URL, {"data": {"id": rid, "title": "b"}}, headers={**headers, "If-None-Match": "*"},
                         status=412)
    assert resp.json["errno"] == 114


def test_get_record(app, headers):
    record = create(app, headers, title="x")
    resp = app.get(f"{URL}/{record['id']}", headers=headers)
    assert resp.json["data"] == record
    assert resp.headers["ETag"] == f'"{record["last_modified"]}"'
    assert "GMT" in resp.headers["Last-Modified"]


def test_get_record_with_fields(app, headers):
    record = create(app, headers, title="x", score=2, author={"name": "Ann", "age": 3})
    resp = app.get(f"{URL}/{record['id']}?_fields=score,author.name", headers=headers)
    assert resp.json["data"] == {"id": record["id"], "last_modified": record["last_modified"], "score": 2,
                                 "author": {"name": "Ann"}}


def test_records_are_private_to_their_user(app, headers, other_headers):
    record = create(app, headers)
    # Per-user records live in another scope (404); a shareable one is there but not shared (403).
    resp = app.get(f"{URL}/{record['id']}", headers=other_headers, status=(403, 404))
    assert resp.json["errno"] in (111, 121)
    assert app.get(URL, headers=other_headers).json["data"] == []


def test_put_creates_then_replaces(app, headers):
    rid = str(uuid.uuid4())
    resp = app.put_json(f"{URL}/{rid}", {"data": {"title": "a", "score": 1}}, headers=headers, status=201)
    assert resp.json["data"]["id"] == rid
    resp = app.put_json(f"{URL}/{rid}", {"data": {"title": "b"}}, headers=headers, status=200)
    assert "score" not in resp.json["data"] and resp.json["data"]["title"] == "b"


def test_put_with_mismatching_id_in_body_is_400(app, headers):
    rid = str(uuid.uuid4())
    resp = app.put_json(f"{URL}/{rid}", {"data": {"id": str(uuid.uuid4()), "title": "a"}}, headers=headers,
                        status=400)
    assert resp.json["details"][0]["name"] == "data.id"


def test_put_on_tombstone_recreates(app, headers):
    record = create(app, headers)
    app.delete(f"{URL}/{record['id']}", headers=headers)
    app.put_json(f"{URL}/{record['id']}", {"data": {"title": "back"}}, headers=headers, status=201)


def test_patch_merges_fields(app, headers):
    record = create(app, headers, title="a", score=1)
    resp = app.patch_json(f"{URL}/{record['id']}", {"data": {"published": True}}, headers=headers)
    data = resp.json["data"]
    assert data["title"] == "a" and data["score"] == 1 and data["published"] is True
    assert data["last_modified"] > record["last_modified"]


def test_patch_without_change_keeps_timestamp(app, headers):
    record = create(app, headers, title="a")
    resp = app.patch_json(f"{URL}/{record['id']}", {"data": {"title": "a"}}, headers=headers)
    assert resp.json["data"]["last_modified"] == record["last_modified"]


def test_patch_with_merge_patch_removes_null_fields(app, headers):
    record = create(app, headers, title="a", score=1, author={"name": "x", "age": 2})
    resp = app.patch(f"{URL}/{record['id']}", '{"data": {"score": null, "author": {"age": null}}}',
                     headers={**headers, "Content-Type": "application/merge-patch+json"})
    data = resp.json["data"]
    assert "score" not in data and data["author"] == {"name": "x"}


def test_patch_validates_the_merged_record(app, headers):
    record = create(app, headers)
    resp = app.patch_json(f"{URL}/{record['id']}", {"data": {"score": "high"}}, headers=headers, status=400)
    assert resp.json["details"][0]["name"] == "data.score"
    assert app.get(f"{URL}/{record['id']}", headers=headers).json["data"] == record


@pytest.mark.parametrize("behavior,expected_keys", [
    ("light", {"id", "last_modified", "score"}),
    ("diff", {"last_modified", "score"}),
    ("full", {"id", "last_modified", "score", "title"}),
])
def test_patch_response_behavior(app, headers, behavior, expected_keys):
    record = create(app, headers, title="a", score=1)
    resp = app.patch_json(f"{URL}/{record['id']}", {"data": {"score": 2}},
                          headers={**headers, "Response-Behavior": behavior})
    assert set(resp.json["data"]) == expected_keys


def test_patch_unknown_record_is_404(app, headers):
    resp = app.patch_json(f"{URL}/{uuid.uuid4()}", {"data": {"title": "a"}}, headers=headers, status=404)
    assert resp.json["errno"] == 111


def test_delete_returns_tombstone(app, headers):
    record = create(app, headers)
    resp = app.delete(f"{URL}/{record['id']}", headers=headers)
    data = resp.json["data"]
    assert data["id"] == record["id"] and data["deleted"] is True
    assert data["last_modified"] > record["last_modified"]
    app.get(f"{URL}/{record['id']}", headers=headers, status=404)
    app.delete(f"{URL}/{record['id']}", headers=headers, status=404)


def test_head_on_collection_has_headers_and_no_body(app, headers):
    create(app, headers)
    resp = app.head(URL, headers=headers)
    assert resp.headers["Total-Records"] == "1"
    assert resp.body == b""


def test_delete_collection_removes_only_callers_records(app, headers, other_headers):
    mine = [create(app, headers, title=str(i)) for i in range(3)]
    theirs = create(app, other_headers)
    resp = app.delete(URL, headers=headers)
    assert {r["id"] for r in resp.json["data"]} == {r["id"] for r in mine}
    assert all(r["deleted"] for r in resp.json["data"])
    assert app.get(URL, headers=headers).json["data"] == []
    assert app.get(URL, headers=other_headers).json["data"] == [theirs]


def test_delete_collection_with_filter(app, headers):
    create(app, headers, title="a", published=True)
    keep = create(app, headers, title="b", published=False)
    app.delete(URL + "?published=true", headers=headers)
    assert app.get(URL, headers=headers).json["data"] == [keep]


def test_readonly_mode_refuses_writes_but_reads_work(headers):
    from cliquet.testing.app import make_app

    app = make_app(readonly="true")
    resp = app.post_json(URL, {"data": {"title": "a"}}, headers=headers, status=405)
    assert resp.json["errno"] == 115
    app.get(URL, headers=headers, status=200)
    assert app.get("/v1/").json["settings"]["readonly"] is True
