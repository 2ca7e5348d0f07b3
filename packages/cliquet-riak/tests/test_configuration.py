"""Settings, URLs and ``includeme``."""

from __future__ import annotations

import pytest
from cliquet.testing import make_config
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

import cliquet
import cliquet_riak
from cliquet_riak import cache as riak_cache
from cliquet_riak.client import RiakLocation


@pytest.mark.parametrize("url, nodes, bucket_type, bucket", [
    ("riak://h1:8098,h2:8099/maps/cache", ("http://h1:8098", "http://h2:8099"), "maps", "cache"),
    ("riak://h1/cache", ("http://h1:8098",), "default", "cache"),
    ("riak://h1:8098", ("http://h1:8098",), "default", "cliquet_cache"),
    ("http://h1:1/types/T/buckets/B http://h2:2/types/T/buckets/B", ("http://h1:1", "http://h2:2"), "T", "B"),
    ("http://h1:1/buckets/B", ("http://h1:1",), "default", "B"),
    ("https://h1:8443/T/B", ("https://h1:8443",), "T", "B"),
    ("riak://h1:1,h1:1/b", ("http://h1:1",), "default", "b"),
])
def test_location_parsing(url, nodes, bucket_type, bucket):
    location = RiakLocation.parse(url)
    assert (location.nodes, location.bucket_type, location.bucket) == (nodes, bucket_type, bucket)


def test_location_from_a_list():
    location = RiakLocation.parse(["riak://a:1/t/b", "riak://b:2/t/b"])
    assert location.nodes == ("http://a:1", "http://b:2")


@pytest.mark.parametrize("url", ["", "redis://h:1/0", "riak://h:1/a/b/c", "riak://a:1/x riak://b:1/y", "riak://:1/b"])
def test_invalid_locations(url):
    with pytest.raises(ValueError):
        RiakLocation.parse(url)


def test_invalid_url_is_a_configuration_error_naming_the_setting():
    with pytest.raises(ConfigurationError, match="cliquet.cache_url"):
        riak_cache.load_from_config(make_config(cache_url="mysql://nope"))


def test_settings_are_read_and_converted():
    config = make_config(cache_url="riak://h:1/t/b riak://g:2/t/b", cache_prefix="pre:", cache_pool_size="3",
                         riak_read_timeout="2m", riak_purge_interval="0", riak_node_down_seconds="750ms")
    backend = riak_cache.load_from_config(config)
    assert backend.prefix == "pre:"
    assert backend.client.nodes == ["http://h:1", "http://g:2"]
    assert backend.location.bucket_path == "/types/t/buckets/b"
    assert backend.purge_interval == 0
    assert backend.client.down_seconds == 0.75
    pool = backend.client._nodes[0].pool
    assert pool.timeout.read_timeout == 120.0
    assert pool.pool.maxsize == 3


def test_environment_overrides_the_ini(monkeypatch):
    monkeypatch.setenv("CLIQUET_RIAK_READ_TIMEOUT", "7")
    backend = riak_cache.load_from_config(make_config(cache_url="riak://h:1/b", riak_read_timeout="1"))
    assert backend.client._nodes[0].pool.timeout.read_timeout == 7.0


def test_invalid_setting_value_fails():
    with pytest.raises(ConfigurationError, match="riak_purge_interval"):
        riak_cache.load_from_config(make_config(cache_url="riak://h:1/b", riak_purge_interval="often"))


def _app_config(riak_base_url, **settings):
    raw = {"cliquet.userid_hmac_secret": "s", "cliquet.cache_url": riak_base_url + "/t/b"}
    raw.update(settings)
    return Configurator(settings=raw)


def test_included_first_it_becomes_the_cache_backend(riak_base_url):
    config = _app_config(riak_base_url, **{"pyramid.includes": "cliquet_riak"})
    cliquet.initialize(config, "1.0", project_name="app")
    config.commit()
    assert isinstance(config.registry.cache, riak_cache.RiakCache)
    assert config.registry.heartbeats["riak"] is cliquet_riak.heartbeat_check


def test_included_after_initialize_it_replaces_the_default_cache(riak_base_url):
    config = _app_config(riak_base_url)
    cliquet.initialize(config, "1.0", project_name="app")
    config.include("cliquet_riak")
    config.include("cliquet_riak")  # twice: harmless
    config.commit()
    assert isinstance(config.registry.cache, riak_cache.RiakCache)
    assert "riak" in config.registry.heartbeats


def test_an_explicit_cache_backend_is_kept(riak_base_url):
    config = _app_config(riak_base_url, **{"pyramid.includes": "cliquet_riak",
                                           "cliquet.cache_backend": "cliquet.cache.memory"})
    cliquet.initialize(config, "1.0", project_name="app")
    config.commit()
    assert not isinstance(config.registry.cache, riak_cache.RiakCache)
    assert "riak" not in config.registry.heartbeats


def test_an_explicit_backend_in_the_environment_is_kept(riak_base_url, monkeypatch):
    monkeypatch.setenv("CLIQUET_CACHE_BACKEND", "cliquet.cache.memory")
    config = _app_config(riak_base_url, **{"pyramid.includes": "cliquet_riak"})
    cliquet.initialize(config, "1.0", project_name="app")
    config.commit()
    assert not isinstance(config.registry.cache, riak_cache.RiakCache)


def test_the_package_itself_can_be_named_as_the_backend(riak_base_url):
    config = _app_config(riak_base_url, **{"cliquet.cache_backend": "cliquet_riak"})
    cliquet.initialize(config, "1.0", project_name="app")
    config.commit()
    assert isinstance(config.registry.cache, riak_cache.RiakCache)


def test_unknown_riak_setting_is_refused(riak_base_url):
    config = _app_config(riak_base_url, **{"pyramid.includes": "cliquet_riak",
                                           "cliquet.riak_read_timout": "1"})
    cliquet.initialize(config, "1.0", project_name="app")
    with pytest.raises(ConfigurationError, match="riak_read_timout"):
        config.commit()


def test_included_twice_in_one_configuration_registers_once(riak_base_url):
    config = _app_config(riak_base_url, **{"pyramid.includes": "cliquet_riak"})
    config.include("cliquet_riak")  # and once more, as the INI already did
    cliquet.initialize(config, "1.0", project_name="app")
    config.commit()
    assert isinstance(config.registry.cache, riak_cache.RiakCache)


def test_another_plugin_claiming_the_default_cache_conflicts(riak_base_url):
    from pyramid.exceptions import ConfigurationConflictError

    def other_cache_plugin(config):
        config.action(cliquet_riak.DEFAULT_CACHE_DISCRIMINATOR, lambda: None)

    config = _app_config(riak_base_url)
    cliquet.initialize(config, "1.0", project_name="app")
    config.include("cliquet_riak")
    config.include(other_cache_plugin)
    with pytest.raises(ConfigurationConflictError):
        config.commit()
