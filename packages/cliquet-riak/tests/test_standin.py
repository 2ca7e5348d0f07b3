"""The stand-in speaks Riak's documented HTTP API.

Plain HTTP requests, checked against what Riak's HTTP API documentation
says (each behaviour relied on is listed with its reference in
``docs/riak.rst``). They pass against a real Riak KV 3.x too
(``CLIQUET_RIAK_URL``), except the few marked as being about the stand-in
itself. What Riak leaves unspecified (the order of key listings and of
unpaginated 2i results, how long a tombstone stays) is never assumed.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import time
import uuid

import pytest

from cliquet_riak.client import Response, parse_siblings
from cliquet_riak.testing import StandinProcess

standin_only = pytest.mark.skipif(
    __import__("os").environ.get("CLIQUET_RIAK_URL") is not None,
    reason="about the stand-in itself (CLIQUET_RIAK_URL points at a real Riak)")


@pytest.fixture
def bucket(riak_base_url, riak_bucket):
    """A fresh bucket of the default type (URL without trailing slash)."""
    return f"{riak_base_url}/buckets/{riak_bucket}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def typed_bucket(riak_base_url, riak_bucket, http):
    """A fresh bucket that allows siblings."""
    url = f"{riak_base_url}/types/default/buckets/{riak_bucket}_m{uuid.uuid4().hex[:10]}"
    r = http.request("PUT", url + "/props", body=json.dumps({"props": {"allow_mult": True}}),
                     headers={"Content-Type": "application/json"})
    assert r.status == 204
    return url


#: Siblings as multipart when there are some, else the value itself.
READ_ANY = "multipart/mixed, */*;q=0.5"


def put(http, url, body=b"{}", ctype="application/json", **headers):
    return http.request("PUT", url, body=body, headers={"Content-Type": ctype, **headers})


def listed(http, bucket) -> list[str]:
    r = http.request("GET", bucket + "/keys?keys=true")
    assert r.status == 200
    return json.loads(r.data)["keys"]


def index(http, url):
    r = http.request("GET", url)
    assert r.status == 200, (r.status, r.data)
    return json.loads(r.data)


def test_ping(http, riak_base_url):
    r = http.request("GET", riak_base_url + "/ping")
    assert (r.status, r.data) == (200, b"OK")


def test_store_fetch_delete(http, bucket):
    url = bucket + "/keys/k1"
    assert http.request("GET", url).status == 404
    assert put(http, url, b'{"a": 1}').status == 204
    r = http.request("GET", url)
    assert r.status == 200
    assert json.loads(r.data) == {"a": 1}
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Riak-Vclock"]
    assert r.headers["ETag"] and r.headers["Last-Modified"]
    assert http.request("DELETE", url).status == 204
    gone = http.request("GET", url)
    assert gone.status == 404
    assert gone.headers["Content-Type"].startswith("text/plain")
    assert http.request("DELETE", url).status == 404
    assert http.request("DELETE", bucket + "/keys/never-written").status == 404


def test_typed_and_untyped_paths_are_the_same_bucket(http, riak_base_url, riak_bucket):
    name = f"{riak_bucket}_{uuid.uuid4().hex[:8]}"
    assert put(http, f"{riak_base_url}/buckets/{name}/keys/k", b"1").status == 204
    r = http.request("GET", f"{riak_base_url}/types/default/buckets/{name}/keys/k")
    assert (r.status, r.data) == (200, b"1")


def test_url_encoded_keys(http, bucket):
    assert put(http, bucket + "/keys/a%2Fb%20c%C3%A9", b'"x"').status == 204
    r = http.request("GET", bucket + "/keys?keys=true")
    assert r.status == 200
    assert json.loads(r.data)["keys"] == ["a/b cé"]


def test_metadata_and_indexes_round_trip(http, bucket):
    url = bucket + "/keys/k"
    r = put(http, url, b"{}", **{"X-Riak-Meta-Color": "blue", "X-Riak-Index-age_int": "42",
                                 "X-Riak-Index-tag_bin": "red, green"})
    assert r.status == 204
    r = http.request("GET", url)
    assert r.headers["X-Riak-Meta-Color"] == "blue"
    assert r.headers["X-Riak-Index-age_int"] == "42"
    assert sorted(t.strip() for t in r.headers["X-Riak-Index-tag_bin"].split(",")) == ["green", "red"]


def test_invalid_integer_index_is_400(http, bucket):
    assert put(http, bucket + "/keys/k", **{"X-Riak-Index-age_int": "old"}).status == 400


def test_returnbody(http, bucket):
    r = http.request("PUT", bucket + "/keys/k?returnbody=true", body=b'"v"',
                     headers={"Content-Type": "application/json"})
    assert (r.status, r.data) == (200, b'"v"')
    assert r.headers["X-Riak-Vclock"]


def test_post_without_key_creates_one(http, bucket):
    r = http.request("POST", bucket + "/keys", body=b"1", headers={"Content-Type": "application/json"})
    assert r.status == 201
    location = r.headers["Location"]
    assert "/keys/" in location
    key = location.rsplit("/", 1)[1]
    assert json.loads(http.request("GET", bucket + "/keys?keys=true").data)["keys"] == [key]


def test_conditional_requests(http, bucket):
    url = bucket + "/keys/k"
    assert put(http, url, b"1", **{"If-None-Match": "*"}).status == 204
    assert put(http, url, b"2", **{"If-None-Match": "*"}).status == 412
    etag = http.request("GET", url).headers["ETag"]
    assert http.request("GET", url, headers={"If-None-Match": etag}).status == 304


def test_without_allow_mult_the_last_write_wins(http, bucket):
    url = bucket + "/keys/k"
    put(http, url, b"1")
    put(http, url, b"2")
    r = http.request("GET", url, headers={"Accept": READ_ANY})
    assert (r.status, r.data) == (200, b"2")


def test_an_object_answers_only_in_its_own_media_type(http, bucket):
    """Content negotiation: one value is only served as its Content-Type."""
    url = bucket + "/keys/k"
    put(http, url, b'{"a": 1}')
    assert http.request("GET", url, headers={"Accept": "multipart/mixed"}).status == 406
    assert http.request("GET", url, headers={"Accept": "text/html"}).status == 406
    assert http.request("GET", url, headers={"Accept": "application/json;q=0, */*;q=0"}).status == 406
    for accept in ("application/json", "application/*", "*/*", READ_ANY, "text/html, */*;q=0.1"):
        r = http.request("GET", url, headers={"Accept": accept})
        assert (r.status, json.loads(r.data)) == (200, {"a": 1}), accept
    # A missing key is 404 whatever the client accepts.
    assert http.request("GET", bucket + "/keys/none", headers={"Accept": "multipart/mixed"}).status == 404
    # A write is answered in the media type it was sent in.
    assert put(http, url, b"2", **{"Accept": "multipart/mixed"}).status == 406
    assert json.loads(http.request("GET", url).data) == {"a": 1}


def test_a_deleted_key_reads_as_not_found_at_once(http, bucket):
    url = bucket + "/keys/k"
    put(http, url, b"1", **{"X-Riak-Index-n_int": "5"})
    assert http.request("DELETE", url).status == 204
    r = http.request("GET", url)
    assert r.status == 404
    # The tombstone's clock: writing with it makes no sibling of the tombstone.
    assert r.headers.get("X-Riak-Vclock")
    assert index(http, bucket + "/index/n_int/0/10")["keys"] == []
    assert http.request("DELETE", url).status == 404


def test_a_tombstone_stays_in_key_listings_for_a_while(http, bucket):
    """Riak's delete_mode (3000 ms by default): listings name a deleted key
    until its tombstone is reaped; reads already answer 404."""
    for key in ("kept", "deleted"):
        put(http, f"{bucket}/keys/{key}", b"1")
    assert http.request("DELETE", bucket + "/keys/deleted").status == 204
    assert http.request("GET", bucket + "/keys/deleted").status == 404
    assert sorted(listed(http, bucket)) == ["deleted", "kept"]
    assert sorted(index(http, bucket + "/index/$key/a/z")["keys"]) == ["deleted", "kept"]
    deadline = time.monotonic() + 15
    while "deleted" in listed(http, bucket) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert listed(http, bucket) == ["kept"]
    assert index(http, bucket + "/index/$key/a/z")["keys"] == ["kept"]


def test_a_blind_write_after_a_delete_leaves_a_tombstone_sibling(http, typed_bucket):
    url = typed_bucket + "/keys/k"
    put(http, url, b'"old"')
    http.request("DELETE", url)
    put(http, url, b'"new"')
    r = http.request("GET", url, headers={"Accept": "multipart/mixed"})
    assert r.status == 300
    siblings = parse_siblings(Response(r.status, r.headers, r.data))
    deleted = [body for headers, body in siblings if headers.get("X-Riak-Deleted") == "true"]
    alive = [body for headers, body in siblings if headers.get("X-Riak-Deleted") != "true"]
    assert (len(deleted), alive) == (1, [b'"new"'])


def test_a_write_with_the_tombstone_clock_makes_no_sibling(http, typed_bucket):
    url = typed_bucket + "/keys/k"
    put(http, url, b'"old"')
    http.request("DELETE", url)
    vclock = http.request("GET", url).headers["X-Riak-Vclock"]
    put(http, url, b'"new"', **{"X-Riak-Vclock": vclock})
    r = http.request("GET", url, headers={"Accept": READ_ANY})
    assert (r.status, r.data) == (200, b'"new"')


def test_blind_writes_make_siblings_with_allow_mult(http, typed_bucket):
    url = typed_bucket + "/keys/k"
    put(http, url, b'"one"', **{"X-Riak-Meta-N": "1"})
    put(http, url, b'"two"', **{"X-Riak-Meta-N": "2"})
    # Without multipart: the vtags, as text.
    plain = http.request("GET", url, headers={"Accept": "text/plain"})
    assert plain.status == 300
    lines = plain.data.decode().split()
    assert lines[0] == "Siblings:" and len(lines) == 3
    one = http.request("GET", f"{url}?vtag={lines[1]}")
    assert one.status == 200 and one.data in (b'"one"', b'"two"')
    # With multipart: every sibling, with its metadata.
    r = http.request("GET", url, headers={"Accept": "multipart/mixed"})
    assert r.status == 300
    assert r.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    siblings = parse_siblings(Response(r.status, r.headers, r.data))
    assert sorted((h["X-Riak-Meta-N"], body) for h, body in siblings) == [("1", b'"one"'), ("2", b'"two"')]
    # With neither form accepted: 406.
    assert http.request("GET", url, headers={"Accept": "application/json"}).status == 406
    # Writing with the vclock read resolves them.
    assert put(http, url, b'"merged"', **{"X-Riak-Vclock": r.headers["X-Riak-Vclock"]}).status == 204
    r = http.request("GET", url, headers={"Accept": READ_ANY})
    assert (r.status, r.data) == (200, b'"merged"')
    assert http.request("GET", url, headers={"Accept": "multipart/mixed"}).status == 406


def test_returnbody_with_siblings_is_300(http, typed_bucket):
    url = typed_bucket + "/keys/k"
    put(http, url, b'"one"')
    r = http.request("PUT", url + "?returnbody=true", body=b'"two"',
                     headers={"Content-Type": "application/json", "Accept": READ_ANY})
    assert r.status == 300
    assert r.headers["X-Riak-Vclock"]
    bodies = sorted(body for _, body in parse_siblings(Response(r.status, r.headers, r.data)))
    assert bodies == [b'"one"', b'"two"']


def test_write_with_current_vclock_makes_no_sibling(http, typed_bucket):
    url = typed_bucket + "/keys/k"
    put(http, url, b"1")
    vclock = http.request("GET", url).headers["X-Riak-Vclock"]
    put(http, url, b"2", **{"X-Riak-Vclock": vclock})
    r = http.request("GET", url, headers={"Accept": READ_ANY})
    assert (r.status, r.data) == (200, b"2")


def test_stale_vclock_keeps_the_concurrent_write(http, typed_bucket):
    url = typed_bucket + "/keys/k"
    put(http, url, b"1")
    stale = http.request("GET", url).headers["X-Riak-Vclock"]
    put(http, url, b"2", **{"X-Riak-Vclock": stale})
    put(http, url, b"3", **{"X-Riak-Vclock": stale})
    r = http.request("GET", url, headers={"Accept": "multipart/mixed"})
    assert r.status == 300
    assert sorted(body for _, body in parse_siblings(Response(r.status, r.headers, r.data))) == [b"2", b"3"]


def test_key_listing(http, bucket):
    for i in range(5):
        put(http, f"{bucket}/keys/k{i}", b"1")
    r = http.request("GET", bucket + "/keys?keys=true")
    assert sorted(json.loads(r.data)["keys"]) == [f"k{i}" for i in range(5)]
    streamed = http.request("GET", bucket + "/keys?keys=stream", preload_content=False)
    body = streamed.read().decode()
    decoder, keys, pos = json.JSONDecoder(), [], 0
    while pos < len(body):
        chunk, pos = decoder.raw_decode(body, pos)
        keys += chunk["keys"]
    assert sorted(keys) == [f"k{i}" for i in range(5)]
    # Without keys=true|stream Riak lists nothing, and answers 200.
    for query in ("", "?keys=false"):
        r = http.request("GET", bucket + "/keys" + query)
        assert r.status == 200
        assert "keys" not in json.loads(r.data)


def test_secondary_index_queries(http, bucket):
    for i in range(10):
        put(http, f"{bucket}/keys/k{i}", b"1", **{"X-Riak-Index-n_int": str(i * 10),
                                                  "X-Riak-Index-even_bin": "yes" if i % 2 == 0 else "no"})
    exact = json.loads(http.request("GET", bucket + "/index/n_int/30").data)
    assert exact == {"keys": ["k3"]}
    ranged = json.loads(http.request("GET", bucket + "/index/n_int/20/50").data)
    assert sorted(ranged["keys"]) == ["k2", "k3", "k4", "k5"]
    # In no particular order without pagination, return_terms included.
    terms = json.loads(http.request("GET", bucket + "/index/n_int/20/30?return_terms=true").data)
    assert sorted(terms["results"], key=json.dumps) == [{"20": "k2"}, {"30": "k3"}]
    # Sorted when asked for.
    ordered = index(http, bucket + "/index/n_int/0/90?return_terms=true&pagination_sort=true")
    assert ordered["results"] == [{str(i * 10): f"k{i}"} for i in range(10)]
    # return_terms is for ranges: one value answers keys.
    assert index(http, bucket + "/index/n_int/30?return_terms=true") == {"keys": ["k3"]}
    evens = json.loads(http.request("GET", bucket + "/index/even_bin/yes").data)
    assert sorted(evens["keys"]) == ["k0", "k2", "k4", "k6", "k8"]
    assert http.request("GET", bucket + "/index/n_int/a/b").status == 400
    for bad in ("max_results=0", "max_results=-1", "max_results=x", "return_terms=yes"):
        r = http.request("GET", f"{bucket}/index/n_int/0/90?{bad}")
        assert r.status == 400, bad


def test_a_range_names_a_key_once_per_matching_term(http, bucket):
    put(http, bucket + "/keys/k", b"1", **{"X-Riak-Index-n_int": "1, 2"})
    put(http, bucket + "/keys/other", b"1", **{"X-Riak-Index-n_int": "9"})
    terms = index(http, bucket + "/index/n_int/0/5?return_terms=true")
    assert sorted(terms["results"], key=json.dumps) == [{"1": "k"}, {"2": "k"}]
    keys = index(http, bucket + "/index/n_int/0/5")["keys"]
    assert set(keys) == {"k"}  # once or twice: clients must not count on either


def test_secondary_index_streaming_is_multipart(http, bucket):
    for i in range(4):
        put(http, f"{bucket}/keys/k{i}", b"1", **{"X-Riak-Index-n_int": str(i)})
    r = http.request("GET", bucket + "/index/n_int/0/10?stream=true&max_results=4")
    assert r.status == 200
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("multipart/mixed")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + r.data)
    keys, continuation = [], None
    for part in message.iter_parts():
        data = json.loads(part.get_payload(decode=True))
        keys += data.get("keys", [])
        continuation = data.get("continuation", continuation)
    assert keys == ["k0", "k1", "k2", "k3"]
    assert continuation  # a full page


def test_secondary_index_pagination(http, bucket):
    for i in range(7):
        put(http, f"{bucket}/keys/k{i}", b"1", **{"X-Riak-Index-n_int": str(i)})
    seen, continuation, pages = [], None, []
    while True:
        query = "max_results=3" + (f"&continuation={continuation}" if continuation else "")
        page = json.loads(http.request("GET", f"{bucket}/index/n_int/0/100?{query}").data)
        assert len(page["keys"]) <= 3
        pages.append(len(page["keys"]))
        seen += page["keys"]
        continuation = page.get("continuation")
        if not continuation:
            break
    # Paginated results are sorted (by term, then key).
    assert seen == [f"k{i}" for i in range(7)]
    assert pages == [3, 3, 1]


def test_a_full_last_page_still_has_a_continuation(http, bucket):
    for i in range(6):
        put(http, f"{bucket}/keys/k{i}", b"1", **{"X-Riak-Index-n_int": str(i)})
    first = index(http, f"{bucket}/index/n_int/0/100?max_results=3&return_terms=true")
    assert first["results"] == [{str(i): f"k{i}"} for i in range(3)]
    second = index(http, f"{bucket}/index/n_int/0/100?max_results=3&return_terms=true"
                         f"&continuation={first['continuation']}")
    assert second["results"] == [{str(i): f"k{i}"} for i in range(3, 6)]
    # Riak cannot tell that nothing follows a full page: the next one is empty.
    assert second.get("continuation")
    last = index(http, f"{bucket}/index/n_int/0/100?max_results=3&continuation={second['continuation']}")
    assert last["keys"] == [] and "continuation" not in last


def test_special_key_and_bucket_indexes(http, bucket):
    for key in ("a:1", "a:2", "b:1"):
        put(http, f"{bucket}/keys/{key}", b"1")
    by_key = json.loads(http.request("GET", bucket + "/index/$key/a:/a:~").data)
    assert sorted(by_key["keys"]) == ["a:1", "a:2"]
    name = bucket.rsplit("/", 1)[1]
    every = json.loads(http.request("GET", f"{bucket}/index/$bucket/{name}").data)
    assert sorted(every["keys"]) == ["a:1", "a:2", "b:1"]


def test_bucket_properties(http, bucket):
    r = http.request("GET", bucket + "/props")
    assert r.status == 200
    props = json.loads(r.data)["props"]
    assert props["allow_mult"] is False and props["n_val"] >= 1
    r = http.request("PUT", bucket + "/props", body=json.dumps({"props": {"allow_mult": True}}),
                     headers={"Content-Type": "application/json"})
    assert r.status == 204
    assert json.loads(http.request("GET", bucket + "/props").data)["props"]["allow_mult"] is True
    bad = http.request("PUT", bucket + "/props", body=b"not json", headers={"Content-Type": "application/json"})
    assert bad.status == 400


@standin_only
def test_typed_buckets_allow_siblings_by_default(http, riak_base_url):
    props = json.loads(http.request("GET", f"{riak_base_url}/types/maps/buckets/b/props").data)["props"]
    assert props["allow_mult"] is True


@standin_only
def test_unknown_paths_are_404(http, riak_base_url):
    assert http.request("GET", riak_base_url + "/nothing/here").status == 404


@standin_only
def test_peers_receive_writes():
    first = StandinProcess().start()
    second = StandinProcess(peers=[first.url]).start()
    try:
        import urllib3

        pool = urllib3.PoolManager(retries=False, timeout=5)
        url = "/types/default/buckets/b/keys/k"
        pool.request("PUT", second.url + url, body=b'"copied"', headers={"Content-Type": "application/json"})
        assert pool.request("GET", first.url + url).data == b'"copied"'
        pool.request("DELETE", second.url + url)
        assert pool.request("GET", first.url + url).status == 404
    finally:
        second.kill()
        first.kill()
