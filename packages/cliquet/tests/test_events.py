"""ResourceChanged, AfterResourceChanged and ResourceRead."""

import pytest
import webtest
from pyramid.config import Configurator

import cliquet
from cliquet.events import AfterResourceChanged, ResourceChanged, ResourceRead
from cliquet.testing.app import TEST_SECRET, Article, basic_auth

URL = "/v1/articles"


@pytest.fixture
def received():
    return []


def make(received, fail_on=None, **settings):
    config = Configurator(settings={"cliquet.userid_hmac_secret": TEST_SECRET,
                                    **{f"cliquet.{k}": v for k, v in settings.items()}})
    cliquet.initialize(config, "1.0")
    config.add_resource(Article)

    def listener(event):
        if fail_on is type(event):
            raise RuntimeError("listener failed")
        received.append(event)

    for cls in (ResourceChanged, AfterResourceChanged, ResourceRead):
        config.add_subscriber(listener, cls)
    return webtest.TestApp(config.make_wsgi_app())


def test_create_sends_changed_then_after(received):
    app = make(received)
    record = app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth()).json["data"]
    assert [type(e) for e in received] == [ResourceChanged, AfterResourceChanged]
    payload = received[0].payload
    assert payload["action"] == "create" and payload["resource_name"] == "article"
    assert payload["uri"] == "/articles" and payload["user_id"].startswith("basicauth:")
    assert payload["timestamp"] == record["last_modified"]
    assert received[0].impacted_records == [{"new": record, "read_principals": [payload["user_id"]]}]


def test_update_and_delete_carry_old_and_new(received):
    app = make(received)
    record = app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth()).json["data"]
    received.clear()
    updated = app.patch_json(f"{URL}/{record['id']}", {"data": {"title": "b"}}, headers=basic_auth()).json["data"]
    assert received[0].payload["action"] == "update"
    assert received[0].impacted_records[0]["old"] == record
    assert received[0].impacted_records[0]["new"] == updated
    received.clear()
    tombstone = app.delete(f"{URL}/{record['id']}", headers=basic_auth()).json["data"]
    assert received[0].payload["action"] == "delete"
    assert received[0].impacted_records[0]["old"] == updated
    assert received[0].impacted_records[0]["new"] == tombstone


def test_reads_send_resource_read(received):
    app = make(received)
    app.get(URL, headers=basic_auth())
    assert [type(e) for e in received] == [ResourceRead]
    assert received[0].payload["action"] == "read"


def test_failed_request_sends_nothing(received):
    app = make(received)
    app.post_json(URL, {"data": {"title": 3}}, headers=basic_auth(), status=400)
    assert received == []


def test_batch_groups_events_per_resource_once(received):
    app = make(received)
    requests = [{"method": "POST", "path": "/articles", "body": {"data": {"title": str(i)}}} for i in range(5)]
    requests.append({"method": "POST", "path": "/articles", "body": {"data": {"title": 42}}})  # fails
    app.post_json("/v1/batch", {"requests": requests}, headers=basic_auth())
    changed = [e for e in received if type(e) is ResourceChanged]
    after = [e for e in received if type(e) is AfterResourceChanged]
    assert len(changed) == 1 and len(after) == 1
    assert len(changed[0].impacted_records) == 5


def test_listener_failing_in_resource_changed_undoes_the_write(received):
    app = make(received, fail_on=ResourceChanged)
    resp = app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth(), status=500)
    assert resp.json["errno"] == 999
    assert app.get(URL, headers=basic_auth()).json["data"] == []


def test_listener_failing_after_commit_does_not_fail_the_write(received):
    app = make(received, fail_on=AfterResourceChanged)
    app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth(), status=201)
    assert len(app.get(URL, headers=basic_auth()).json["data"]) == 1


def test_write_conflicts_run_the_request_again(received):
    from cliquet.storage.exceptions import ConflictError

    app = make(received)
    storage = app.app.registry.storage
    original, calls = storage.create, []

    def create_conflicting_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConflictError(None, "concurrent change")
        return original(*args, **kwargs)

    storage.create = create_conflicting_once
    record = app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth(), status=201).json["data"]
    assert len(calls) == 2
    assert [e.impacted_records[0]["new"] for e in received if type(e) is AfterResourceChanged] == [record]
    storage.create = lambda *a, **k: (_ for _ in ()).throw(ConflictError(None, "always"))
    resp = app.post_json(URL, {"data": {"title": "b"}}, headers=basic_auth(), status=503)
    assert resp.json["errno"] == 201
