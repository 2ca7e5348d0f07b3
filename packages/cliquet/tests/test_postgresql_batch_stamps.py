"""A run of creates in one collection (a batch's consecutive ``POST``
sub-requests) reserves its timestamps with one bump of the collection's
counter: the others are plain inserts, and the guarantees stay — unique,
increasing timestamps, a counter that covers every record, nothing reused
once a rolled back savepoint released the counter row."""

import threading
import uuid

import pytest

from cliquet.testing.plugin import postgresql_schema, require_module

psycopg = require_module("psycopg", reason="the `postgresql` extra is not installed")

from cliquet.storage import postgresql as pg_storage  # noqa: E402
from cliquet.testing import make_config  # noqa: E402
from cliquet.testing.app import basic_auth, make_postgresql_app  # noqa: E402
from cliquet.testing.statements import record_statements  # noqa: E402

URL = "/v1/articles"


@pytest.fixture
def pg_url(postgresql_url, cliquet_worker_prefix):
    with postgresql_schema(postgresql_url, f"{cliquet_worker_prefix}stamps") as url:
        yield url


@pytest.fixture
def app(pg_url):
    return make_postgresql_app(pg_url)


@pytest.fixture
def storage(pg_url):
    backend = pg_storage.load_from_config(make_config(storage_url=pg_url))
    backend.initialize_schema()
    return backend


def _create(title):
    return {"method": "POST", "path": "/articles", "body": {"data": {"title": title}}}


@pytest.mark.services
def test_a_batch_of_creates_bumps_the_counter_once(app, monkeypatch):
    before = app.post_json(URL, {"data": {"title": "before"}}, headers=basic_auth()).json["data"]
    statements = record_statements(monkeypatch)
    resp = app.post_json("/v1/batch", {"requests": [_create(f"b{i}") for i in range(5)]}, headers=basic_auth())
    assert [r["status"] for r in resp.json["responses"]] == [201] * 5
    stamps = [r["body"]["data"]["last_modified"] for r in resp.json["responses"]]
    assert stamps == sorted(set(stamps)) and stamps[0] > before["last_modified"]
    bumps = [s for s in statements if "INSERT INTO cliquet_timestamps" in s]
    plain = [s for s in statements if s.startswith("INSERT INTO cliquet_records")]
    assert len(bumps) == 1 and len(plain) == 4, statements
    listed = app.get(URL, headers=basic_auth())
    assert listed.headers["ETag"] == f'"{stamps[-1]}"'  # the counter covers them all, no gap
    after = app.post_json(URL, {"data": {"title": "after"}}, headers=basic_auth()).json["data"]
    assert after["last_modified"] > stamps[-1]


@pytest.mark.services
def test_a_run_broken_by_a_failed_sub_request_keeps_unique_increasing_stamps(app):
    requests = [_create("a"), _create("b"),
                {"method": "POST", "path": "/articles", "body": {"data": {"title": 42}}},  # 400: not a string
                _create("c"), {"method": "GET", "path": "/articles"}, _create("d"), _create("e")]
    resp = app.post_json("/v1/batch", {"requests": requests}, headers=basic_auth())
    statuses = [r["status"] for r in resp.json["responses"]]
    assert statuses == [201, 201, 400, 201, 200, 201, 201], resp.json
    created = [r["body"]["data"]["last_modified"] for r in resp.json["responses"] if r["status"] == 201]
    assert created == sorted(set(created))
    # the list in the middle saw a timestamp no later create goes under
    listed = resp.json["responses"][4]
    assert int(listed["headers"]["ETag"].strip('"')) < created[3]
    records = app.get(URL, headers=basic_auth()).json["data"]
    assert sorted(r["last_modified"] for r in records) == created


@pytest.mark.services
def test_a_rolled_back_reservation_is_never_used(storage):
    """Rolling back the savepoint of the create that reserved releases the
    counter row: another writer may take those timestamps meanwhile."""
    c = f"c-{uuid.uuid4().hex[:8]}"
    storage.create(c, "p", {"id": "first"})
    other = {}

    def concurrent_create():
        other["record"] = storage.create(c, "p", {"id": "other"})

    with storage.transaction():
        storage.expect_creates(3)
        with pytest.raises(RuntimeError):
            with storage.transaction():
                reserved = storage.create(c, "p", {"id": "undone"})
                raise RuntimeError()
        thread = threading.Thread(target=concurrent_create)  # not blocked: the row lock went with the savepoint
        thread.start()
        thread.join(10)
        assert not thread.is_alive()
        mine = storage.create(c, "p", {"id": "mine"})
    assert other["record"]["last_modified"] >= reserved["last_modified"]
    stamps = [r["last_modified"] for r in storage.get_all(c, "p")[0]]
    assert len(stamps) == len(set(stamps)) == 3
    assert mine["last_modified"] > other["record"]["last_modified"]


@pytest.mark.services
def test_concurrent_batches_in_one_collection_never_share_a_stamp(app):
    errors, stamps = [], []

    def send(n):
        try:
            resp = app.post_json("/v1/batch", {"requests": [_create(f"{n}-{i}") for i in range(10)]},
                                 headers=basic_auth())
            stamps.extend(r["body"]["data"]["last_modified"] for r in resp.json["responses"])
            assert [r["status"] for r in resp.json["responses"]] == [201] * 10
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(stamps) == len(set(stamps)) == 40
    listed = app.get(URL, headers=basic_auth())
    assert int(listed.headers["ETag"].strip('"')) == max(stamps)
