"""What the Riak cache does on Riak beyond the shared contract: how it stores
values and expiries, resolves siblings, purges and flushes."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest
from cliquet.testing import make_config

from cliquet_riak import cache as riak_cache
from cliquet_riak.cache import EXPIRES_INDEX


@pytest.fixture
def bucket_url(riak_base_url, riak_bucket):
    return f"{riak_base_url}/types/default/buckets/{riak_bucket}_sem"


@pytest.fixture
def mult_bucket_url(riak_base_url, riak_bucket, http):
    url = f"{riak_base_url}/types/default/buckets/{riak_bucket}_semmult"
    r = http.request("PUT", url + "/props", body=json.dumps({"props": {"allow_mult": True}}),
                     headers={"Content-Type": "application/json"})
    assert r.status == 204
    return url


def make_cache(url, prefix, **settings):
    return riak_cache.load_from_config(make_config(cache_url=url, cache_prefix=prefix, **settings))


def raw_url(bucket_url, full_key):
    return f"{bucket_url}/keys/{urllib.parse.quote(full_key, safe='')}"


def test_values_are_stored_as_json_under_the_prefixed_key(http, bucket_url, prefix):
    cache = make_cache(bucket_url, prefix)
    cache.set("k", {"a": [1, 2.5, None]}, ttl=60)
    r = http.request("GET", raw_url(bucket_url, prefix + "k"))
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert json.loads(r.data) == {"a": [1, 2.5, None]}
    expires = int(r.headers["X-Riak-Meta-Cliquet-Expires"])
    assert r.headers[f"X-Riak-Index-{EXPIRES_INDEX}"] == str(expires)
    assert 55_000 < expires - time.time() * 1000 <= 60_000


def test_no_expiry_no_index_entry(http, bucket_url, prefix):
    cache = make_cache(bucket_url, prefix)
    cache.set("k", 1)
    r = http.request("GET", raw_url(bucket_url, prefix + "k"))
    assert "X-Riak-Meta-Cliquet-Expires" not in r.headers
    assert f"X-Riak-Index-{EXPIRES_INDEX}" not in r.headers


#: Siblings as multipart when there are some, else the value itself (an
#: object without siblings is not served as multipart/mixed: 406).
READ_ANY = "multipart/mixed, */*;q=0.5"


def _siblings(http, bucket_url, full_key):
    r = http.request("GET", raw_url(bucket_url, full_key), headers={"Accept": "multipart/mixed"})
    return r.status


def test_siblings_resolved_newest_write_wins_and_written_back(http, mult_bucket_url, prefix):
    url = raw_url(mult_bucket_url, prefix + "k")
    now = time.time_ns()
    # Three concurrent writers (blind writes), the middle one the newest.
    for value, written in (("old", now - 2000), ("newest", now + 5_000_000), ("older", now - 1000)):
        r = http.request("PUT", url, body=json.dumps(value).encode(),
                         headers={"Content-Type": "application/json",
                                  "X-Riak-Meta-Cliquet-Written": str(written)})
        assert r.status == 204
    assert _siblings(http, mult_bucket_url, prefix + "k") == 300
    cache = make_cache(mult_bucket_url, prefix)
    assert cache.get("k") == "newest"
    # Written back: Riak now holds one value.
    r = http.request("GET", url, headers={"Accept": READ_ANY})
    assert (r.status, json.loads(r.data)) == (200, "newest")


def test_sibling_resolution_keeps_the_winner_expiry(http, mult_bucket_url, prefix):
    url = raw_url(mult_bucket_url, prefix + "k")
    soon = int(time.time() * 1000) + 30_000
    for value, written, expires in (("a", 1, None), ("b", 2, soon)):
        headers = {"Content-Type": "application/json", "X-Riak-Meta-Cliquet-Written": str(written)}
        if expires:
            headers.update({"X-Riak-Meta-Cliquet-Expires": str(expires),
                            f"X-Riak-Index-{EXPIRES_INDEX}": str(expires)})
        http.request("PUT", url, body=json.dumps(value).encode(), headers=headers)
    cache = make_cache(mult_bucket_url, prefix)
    assert 25 < cache.ttl("k") <= 30
    assert cache.get("k") == "b"


def test_overwrites_on_allow_mult_leave_no_siblings(http, mult_bucket_url, prefix):
    cache = make_cache(mult_bucket_url, prefix)
    for i in range(5):
        cache.set("k", i)
    r = http.request("GET", raw_url(mult_bucket_url, prefix + "k"), headers={"Accept": READ_ANY})
    assert (r.status, r.data) == (200, b"4")


def test_resolution_is_the_same_for_every_reader(http, mult_bucket_url, prefix):
    url = raw_url(mult_bucket_url, prefix + "k")
    for value in ("x", "y"):  # same write time: the tie is broken by content
        http.request("PUT", url, body=json.dumps(value).encode(),
                     headers={"Content-Type": "application/json", "X-Riak-Meta-Cliquet-Written": "7"})
    assert make_cache(mult_bucket_url, prefix).get("k") == "y"


def test_purge_expired_deletes_only_expired_keys_of_its_prefix(http, bucket_url, prefix):
    cache = make_cache(bucket_url, prefix)
    other = make_cache(bucket_url, "other" + prefix)
    cache.set("gone", 1, ttl=0.05)
    cache.set("stays", 2, ttl=60)
    cache.set("forever", 3)
    other.set("gone", 4, ttl=0.05)
    time.sleep(0.15)
    assert cache.purge_expired() == 1
    assert http.request("GET", raw_url(bucket_url, prefix + "gone")).status == 404
    assert http.request("GET", raw_url(bucket_url, prefix + "stays")).status == 200
    assert http.request("GET", raw_url(bucket_url, prefix + "forever")).status == 200
    # The other prefix's expired key is its own business.
    assert http.request("GET", raw_url(bucket_url, "other" + prefix + "gone")).status == 200
    assert other.purge_expired() == 1


def test_expired_keys_are_purged_on_a_schedule(http, bucket_url, prefix):
    cache = make_cache(bucket_url, prefix, riak_purge_interval="0.2s")
    cache.set("gone", 1, ttl=0.05)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.1)
        cache.get("something")  # any use starts the purge once the interval passed
        if http.request("GET", raw_url(bucket_url, prefix + "gone")).status == 404:
            break
    assert http.request("GET", raw_url(bucket_url, prefix + "gone")).status == 404


def test_flush_paginates_and_keeps_other_prefixes(http, bucket_url, prefix, monkeypatch):
    monkeypatch.setattr(riak_cache, "PAGE_SIZE", 3)
    cache = make_cache(bucket_url, prefix)
    neighbour = make_cache(bucket_url, prefix[:-1] + "x:")
    for i in range(8):
        cache.set(f"k{i}", i)
    neighbour.set("k0", "kept")
    cache.flush()
    assert all(cache.get(f"k{i}") is None for i in range(8))
    assert neighbour.get("k0") == "kept"


def test_flush_with_empty_prefix_empties_the_bucket(http, riak_base_url, riak_bucket):
    url = f"{riak_base_url}/types/default/buckets/{riak_bucket}_noprefix"
    cache = make_cache(url, "")
    cache.set("a", 1)
    cache.set("b", 2)
    cache.flush()
    assert cache.get("a") is None and cache.get("b") is None
    for key in ("a", "b"):
        assert http.request("GET", f"{url}/keys/{key}").status == 404
    # Their tombstones may still be listed for a few seconds (delete_mode);
    # nothing else is.
    assert set(json.loads(http.request("GET", url + "/keys?keys=true").data)["keys"]) <= {"a", "b"}
    # A flush right after finds the tombstones and deletes nothing more.
    cache.flush()


def test_set_after_delete_on_allow_mult_settles_the_tombstone_sibling(http, mult_bucket_url, prefix):
    cache = make_cache(mult_bucket_url, prefix)
    cache.set("k", "old")
    cache.delete("k")
    cache.set("k", "new")  # a blind write beside the tombstone: resolved at once
    r = http.request("GET", raw_url(mult_bucket_url, prefix + "k"), headers={"Accept": READ_ANY})
    assert (r.status, json.loads(r.data)) == (200, "new")
    assert cache.get("k") == "new"


def test_a_value_that_is_not_json_is_a_backend_error(http, bucket_url, prefix):
    from cliquet.storage.exceptions import BackendError

    http.request("PUT", raw_url(bucket_url, prefix + "k"), body=b"<html>", headers={"Content-Type": "text/html"})
    with pytest.raises(BackendError):
        make_cache(bucket_url, prefix).get("k")


def test_unreadable_expiry_metadata_is_a_backend_error(http, bucket_url, prefix):
    from cliquet.storage.exceptions import BackendError

    http.request("PUT", raw_url(bucket_url, prefix + "k"), body=b"1",
                 headers={"Content-Type": "application/json", "X-Riak-Meta-Cliquet-Expires": "soon"})
    with pytest.raises(BackendError):
        make_cache(bucket_url, prefix).ttl("k")
