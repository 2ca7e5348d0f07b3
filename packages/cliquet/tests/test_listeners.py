"""Event listeners configured by settings; the Redis listener on a real Redis."""

import uuid

import orjson
import pytest
from pyramid.exceptions import ConfigurationError

from cliquet.testing.app import SharedArticle, basic_auth, make_app

URL = "/v1/articles"


def listener_app(redis_url, key, **extra):
    settings = {
        "event_listeners": "redis",
        "event_listeners.redis.use": "cliquet.listeners.redis",
        "event_listeners.redis.url": redis_url,
        "event_listeners.redis.key": key,
    }
    settings.update({f"event_listeners.redis.{k}": v for k, v in extra.items()})
    return make_app(settings)


@pytest.fixture
def key():
    return f"cliquet-test:{uuid.uuid4()}"


@pytest.fixture
def redis_client(redis_url, key):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.delete(key)


def test_redis_listener_pushes_committed_changes(redis_url, redis_client, key):
    app = listener_app(redis_url, key)
    record = app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth()).json["data"]
    app.post_json(URL, {"data": {"title": 3}}, headers=basic_auth(), status=400)  # nothing sent
    app.delete(f"{URL}/{record['id']}", headers=basic_auth())
    events = [orjson.loads(m) for m in redis_client.lrange(key, 0, -1)]
    assert [e["action"] for e in events] == ["create", "delete"]
    assert events[0]["resource_name"] == "article"
    assert events[0]["impacted_records"][0]["new"] == record


def test_redis_listener_filters_actions_and_resources(redis_url, redis_client, key):
    app = listener_app(redis_url, key, actions="delete")
    record = app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth()).json["data"]
    assert redis_client.llen(key) == 0
    app.delete(f"{URL}/{record['id']}", headers=basic_auth())
    assert redis_client.llen(key) == 1
    app = listener_app(redis_url, key, resources="other")
    app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth())
    assert redis_client.llen(key) == 1


def test_redis_listener_stream_mode(redis_url, redis_client, key):
    app = listener_app(redis_url, key, mode="stream")
    app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth())
    entries = redis_client.xrange(key)
    assert orjson.loads(entries[0][1][b"event"])["action"] == "create"


def test_listener_down_does_not_fail_committed_writes():
    app = make_app({"event_listeners": "redis", "event_listeners.redis.use": "cliquet.listeners.redis",
                    "event_listeners.redis.url": "redis://127.0.0.1:1/0"}, resources=(SharedArticle,))
    app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth(), status=201)
    assert len(app.get(URL, headers=basic_auth()).json["data"]) == 1


def test_listener_without_module_fails_at_startup():
    with pytest.raises(ConfigurationError, match="event_listeners.foo.use"):
        make_app({"event_listeners": "foo"})
    with pytest.raises(ConfigurationError, match="load_from_config"):
        make_app({"event_listeners": "foo", "event_listeners.foo.use": "cliquet.listeners"})
