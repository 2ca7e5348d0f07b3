"""The contract suite of cache backends: :class:`CacheContract`.

Usage, in a backend's test module::

    from cliquet.testing import make_config
    from cliquet.testing.cache import CacheContract

    class TestMyCache(CacheContract):
        @pytest.fixture
        def backend(self, cliquet_worker_prefix):
            return mycache.load_from_config(make_config(cache_prefix=cliquet_worker_prefix))

        @pytest.fixture
        def make_backend(self, backend):
            # another cache on the same server, with another prefix
            return lambda prefix: mycache.Cache(prefix=prefix, server=backend.server)

Besides the fixtures of :mod:`cliquet.testing.contract`, the suite uses an
optional ``make_backend`` fixture: a callable taking a prefix and returning
another cache on the *same server* with that prefix (the prefix-isolation
tests are skipped without it).

Semantics encoded here:

* any JSON value round-trips, types included (``True`` stays a boolean,
  ``1`` an int, ``1.5`` a float, ``None`` is stored as a value);
* ``ttl()``: seconds left (a float ≥ 0), ``-1`` for a key without expiry,
  ``-2`` for a missing or expired key;
* ``set(key, value, ttl)`` replaces value *and* expiry (``ttl=None``:
  forever); ``ttl <= 0`` leaves no readable key; ``expire(key, ttl <= 0)``
  removes the key;
* an expired key is never returned by ``get``/``delete`` and ``expire`` on it
  returns ``False``;
* keys are any strings (``/``, ``:``, spaces, non-ASCII) and are
  case-sensitive; ``flush()`` removes only the keys of the backend's prefix.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from cliquet.cache import CacheBase
from cliquet.testing.contract import BackendContract

#: Short expiry used by the tests (seconds), and how long they wait past it.
SHORT_TTL = 0.5  # long enough for a loaded CI machine to read the key back first
WAIT = 0.8

JSON_VALUES = {
    "object": {"a": 1, "b": "two"},
    "nested": {"a": {"b": [1, {"c": None, "d": [True, False]}]}, "é": "ü", "empty": {}, "list": []},
    "array": [1, "two", 3.5, None, True, False, {"x": [0]}],
    "string": "hello",
    "unicode": "ünïcødé ✓ 日本語 🎉",
    "empty string": "",
    "zero": 0,
    "negative": -7,
    "big int": 2**53,
    "float": 3.25,
    "true": True,
    "false": False,
    "empty object": {},
    "empty array": [],
}


def assert_same_json(got, expected):
    """Assert equality *and* identical JSON types, recursively (``True`` ≠ ``1``)."""
    assert type(got) is type(expected), f"{got!r} is a {type(got).__name__}, expected {type(expected).__name__}"
    if isinstance(expected, dict):
        assert set(got) == set(expected)
        for key in expected:
            assert_same_json(got[key], expected[key])
    elif isinstance(expected, list):
        assert len(got) == len(expected)
        for mine, theirs in zip(got, expected):
            assert_same_json(mine, theirs)
    else:
        assert got == expected


class CacheContract(BackendContract):
    """Tests every :class:`~cliquet.cache.CacheBase` must pass."""

    base_class = CacheBase

    @pytest.fixture
    def make_backend(self):
        """A callable ``prefix -> cache on the same server`` (default: unknown)."""
        return None

    @pytest.fixture
    def key(self):
        """A key no other test uses."""
        return f"key-{uuid.uuid4().hex}"

    @staticmethod
    def other_backends(make_backend, count=2):
        """Return ``count`` caches on one server with fresh prefixes (or skip)."""
        if make_backend is None:
            pytest.skip("no `make_backend` fixture: provide `prefix -> cache on the same server` "
                        "to run the prefix-isolation tests")
        return [make_backend(f"t{uuid.uuid4().hex[:12]}_{i}:") for i in range(count)]

    def failing_calls(self):
        key = f"key-{uuid.uuid4().hex}"
        return [("initialize_schema", ()), ("flush", ()), ("ttl", (key,)), ("expire", (key, 10)),
                ("set", (key, {"a": 1}, 10)), ("set", (key, "x")), ("get", (key,)), ("delete", (key,))]

    # -- values -----------------------------------------------------------------

    @pytest.mark.parametrize("name", sorted(JSON_VALUES))
    def test_json_values_round_trip(self, backend, key, name):
        value = JSON_VALUES[name]
        backend.set(key, value)
        assert_same_json(backend.get(key), value)

    def test_none_is_a_stored_value(self, backend, key):
        backend.set(key, None)
        assert backend.get(key) is None
        assert backend.ttl(key) == -1

    def test_returned_values_are_copies(self, backend, key):
        value = {"list": [1, 2], "inner": {"a": 1}}
        backend.set(key, value)
        value["list"].append(3)
        got = backend.get(key)
        assert got == {"list": [1, 2], "inner": {"a": 1}}
        got["inner"]["a"] = 2
        assert backend.get(key) == {"list": [1, 2], "inner": {"a": 1}}

    def test_get_missing_returns_none(self, backend, key):
        assert backend.get(key) is None

    def test_set_replaces_the_value(self, backend, key):
        backend.set(key, "one")
        backend.set(key, ["two"])
        assert backend.get(key) == ["two"]

    @pytest.mark.parametrize("suffix", ["", " ", "/a/b", ":é:ü", "?x=1&y", "日本", "A"])
    def test_keys_are_distinct_strings(self, backend, key, suffix):
        backend.set(key + "a", "plain")
        backend.set(key + "a" + suffix, f"with {suffix!r}")
        assert backend.get(key + "a" + suffix) == f"with {suffix!r}"
        if suffix:
            assert backend.get(key + "a") == "plain"

    # -- delete -------------------------------------------------------------------

    def test_delete_returns_the_value(self, backend, key):
        backend.set(key, {"a": [1]})
        assert backend.delete(key) == {"a": [1]}
        assert backend.get(key) is None
        assert backend.ttl(key) == -2

    def test_delete_missing_returns_none(self, backend, key):
        assert backend.delete(key) is None

    def test_delete_leaves_other_keys(self, backend, key):
        backend.set(key + "1", 1)
        backend.set(key + "2", 2)
        backend.delete(key + "1")
        assert backend.get(key + "2") == 2

    # -- ttl and expiry ------------------------------------------------------------

    def test_ttl_of_missing_key_is_minus_two(self, backend, key):
        assert backend.ttl(key) == -2

    def test_ttl_without_expiry_is_minus_one(self, backend, key):
        backend.set(key, "v")
        assert backend.ttl(key) == -1

    def test_ttl_counts_down_from_the_set_value(self, backend, key):
        backend.set(key, "v", ttl=10)
        remaining = backend.ttl(key)
        assert isinstance(remaining, (int, float)) and not isinstance(remaining, bool)
        assert 9 < remaining <= 10

    def test_fractional_ttl(self, backend, key):
        backend.set(key, "v", ttl=2.5)
        assert 1.5 < backend.ttl(key) <= 2.5

    def test_set_again_replaces_the_expiry(self, backend, key):
        backend.set(key, "v", ttl=10)
        backend.set(key, "w")
        assert backend.ttl(key) == -1
        backend.set(key, "x", ttl=100)
        assert 90 < backend.ttl(key) <= 100

    def test_expire_sets_the_ttl_of_an_existing_key(self, backend, key):
        backend.set(key, "v")
        assert backend.expire(key, 10) is True
        assert 9 < backend.ttl(key) <= 10
        assert backend.get(key) == "v"

    def test_expire_of_missing_key_returns_false(self, backend, key):
        assert backend.expire(key, 10) is False
        assert backend.ttl(key) == -2
        assert backend.get(key) is None

    def test_expired_key_is_never_returned(self, backend, key):
        backend.set(key, {"secret": 1}, ttl=SHORT_TTL)
        assert backend.get(key) == {"secret": 1}
        time.sleep(WAIT)
        assert backend.get(key) is None
        assert backend.ttl(key) == -2
        assert backend.expire(key, 10) is False
        assert backend.delete(key) is None
        assert backend.get(key) is None

    def test_expire_makes_a_key_expire(self, backend, key):
        backend.set(key, "v")
        assert backend.expire(key, SHORT_TTL) is True
        time.sleep(WAIT)
        assert backend.get(key) is None
        assert backend.ttl(key) == -2

    def test_set_after_expiry_starts_afresh(self, backend, key):
        backend.set(key, "old", ttl=SHORT_TTL)
        time.sleep(WAIT)
        backend.set(key, "new")
        assert backend.get(key) == "new"
        assert backend.ttl(key) == -1

    def test_non_positive_ttl_leaves_no_readable_key(self, backend, key):
        backend.set(key, "v", ttl=0)
        assert backend.get(key) is None
        backend.set(key + "x", "v")
        assert backend.expire(key + "x", 0) is True
        assert backend.get(key + "x") is None
        assert backend.ttl(key + "x") == -2

    # -- prefixes and flush ---------------------------------------------------------

    def test_flush_removes_own_keys(self, backend, make_backend, key):
        cache = backend if make_backend is None else self.other_backends(make_backend, 1)[0]
        cache.set(key, 1)
        cache.set(key + "b", 2, ttl=10)
        cache.flush()
        assert cache.get(key) is None
        assert cache.get(key + "b") is None
        assert cache.ttl(key) == -2

    def test_prefixes_isolate_keys(self, make_backend, key):
        first, second = self.other_backends(make_backend)
        first.set(key, "first")
        second.set(key, "second", ttl=10)
        assert first.get(key) == "first"
        assert second.get(key) == "second"
        assert first.ttl(key) == -1
        assert first.delete(key) == "first"
        assert second.get(key) == "second"

    def test_flush_keeps_other_prefixes(self, make_backend, key):
        first, second = self.other_backends(make_backend)
        first.set(key, "first")
        second.set(key, "second")
        second.set(key + "2", "second too")
        first.flush()
        assert first.get(key) is None
        assert second.get(key) == "second"
        assert second.get(key + "2") == "second too"

    # -- concurrency ------------------------------------------------------------------

    def test_concurrent_writers(self, backend, key):
        errors = []

        def work(n):
            try:
                for i in range(20):
                    backend.set(f"{key}-{n}-{i}", [n, i])
                    assert backend.get(f"{key}-{n}-{i}") == [n, i]
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert all(backend.get(f"{key}-{n}-19") == [n, 19] for n in range(4))
