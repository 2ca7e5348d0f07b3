"""The query half of the storage contract (filters, sorting, pagination),
mixed into :class:`cliquet.testing.storage.StorageContract`.

Rules encoded (the reference is :mod:`cliquet.storage.query`):

* **null is missing** — a field holding ``null`` behaves exactly like an
  absent one, in filters, sorting and ``after`` values.
* **Same JSON type** — ``EQ``/``IN``/``LT``/``GT``/``MIN``/``MAX`` only match
  values of the filter value's type (numbers: ints and floats together;
  booleans are not numbers; ``"2"`` is not ``2``). ``EQ None``/``IN [None]``
  match null and missing fields; ``NOT``/``EXCLUDE`` are the exact
  negations of ``EQ``/``IN`` (so they match missing fields); ordering
  filters never match a missing field; strings compare by code point.
* **Sort order** (ascending): strings (by code point) < numbers < booleans
  (false < true) < arrays < objects < null/missing; descending is the exact
  reverse. Ties keep no particular order: callers end with ``id``.
* **after** — one value per sort field (``None`` for missing), positions are
  compared with the same order; only records strictly after it are returned.
  ``total`` ignores ``after`` and ``limit``.
* **Tombstones** (``include_deleted``) are matched on the filters on ``id``
  and ``last_modified`` only (filters on other fields are ignored for them,
  so a client polling a filtered list still learns of every deletion), are
  sorted as records missing every other field, and are not counted in
  ``total``.
"""

from __future__ import annotations

import functools
import uuid

import pytest

from cliquet.storage import COMPARISON, AccessibleIds, Filter, Sort
from cliquet.storage.query import MISSING, make_getter, sort_component
from cliquet.testing.contract import BackendContract

EQ, NOT, LT, GT, MIN, MAX, IN, EXCLUDE = (COMPARISON.EQ, COMPARISON.NOT, COMPARISON.LT, COMPARISON.GT,
                                         COMPARISON.MIN, COMPARISON.MAX, COMPARISON.IN, COMPARISON.EXCLUDE)

#: name → value of the field ``v`` (``"missing"`` has no ``v``)
TYPED_VALUES = {
    "one": 1, "two-and-half": 2.5, "ten": 10, "minus": -3, "zero": 0,
    "str-2": "2", "str-abc": "abc", "str-B": "B", "str-empty": "",
    "true": True, "false": False, "null": None, "missing": MISSING,
    "array": [1, 2], "object": {"k": 1},
}

FILTER_CASES = [
    ([Filter("v", 1, EQ)], {"one"}),
    ([Filter("v", 1.0, EQ)], {"one"}),
    ([Filter("v", True, EQ)], {"true"}),
    ([Filter("v", False, EQ)], {"false"}),
    ([Filter("v", 0, EQ)], {"zero"}),
    ([Filter("v", "2", EQ)], {"str-2"}),
    ([Filter("v", "", EQ)], {"str-empty"}),
    ([Filter("v", None, EQ)], {"null", "missing"}),
    ([Filter("v", 1, NOT)], set(TYPED_VALUES) - {"one"}),
    ([Filter("v", True, NOT)], set(TYPED_VALUES) - {"true"}),
    ([Filter("v", None, NOT)], set(TYPED_VALUES) - {"null", "missing"}),
    ([Filter("v", 3, LT)], {"one", "two-and-half", "minus", "zero"}),
    ([Filter("v", 1, GT)], {"two-and-half", "ten"}),
    ([Filter("v", 2.5, MIN)], {"two-and-half", "ten"}),
    ([Filter("v", 1, MAX)], {"one", "minus", "zero"}),
    ([Filter("v", "B", MIN)], {"str-abc", "str-B"}),
    ([Filter("v", "a", LT)], {"str-2", "str-B", "str-empty"}),
    ([Filter("v", "1", GT)], {"str-2", "str-abc", "str-B"}),
    ([Filter("v", None, GT)], set()),
    ([Filter("v", [1, "abc", False], IN)], {"one", "str-abc", "false"}),
    ([Filter("v", [1, None], IN)], {"one", "null", "missing"}),
    ([Filter("v", [True], IN)], {"true"}),
    ([Filter("v", [], IN)], set()),
    ([Filter("v", [1, "2", True], EXCLUDE)], set(TYPED_VALUES) - {"one", "str-2", "true"}),
    ([Filter("v", [None], EXCLUDE)], set(TYPED_VALUES) - {"null", "missing"}),
    ([Filter("v", 0, MIN), Filter("v", 10, LT)], {"one", "two-and-half", "zero"}),
    ([Filter("v", 0, MIN), Filter("v", [1, 10], EXCLUDE)], {"two-and-half", "zero"}),
    ([Filter("meta.rank", 2, EQ)], {"ten"}),
    ([Filter("meta.rank", 1, GT)], {"ten", "zero"}),
    ([Filter("meta.rank", 2, NOT)], set(TYPED_VALUES) - {"ten"}),
    ([Filter("name", ["one", "ten"], IN), Filter("v", 5, GT)], {"ten"}),
]


def reference_compare(sorting):
    """Return a ``cmp`` function of records implementing the documented order."""
    getters = [(make_getter(s.field), s.direction) for s in sorting]

    def compare(a, b):
        for get, direction in getters:
            x, y = sort_component(get(a)), sort_component(get(b))
            if x != y:
                return (-1 if x < y else 1) * (1 if direction >= 0 else -1)
        return 0
    return compare


class StorageQueryContract(BackendContract):
    """Filters, sorting, ``after`` pagination, totals and ``include_deleted``."""

    @pytest.fixture
    def collection(self):
        """A collection id no other test uses."""
        return f"c{uuid.uuid4().hex}"

    @pytest.fixture
    def parent(self):
        """A parent id no other test uses."""
        return f"p{uuid.uuid4().hex}"

    @pytest.fixture
    def typed(self, backend, collection, parent):
        """One record per entry of ``TYPED_VALUES`` (plus nested ranks)."""
        ranks = {"ten": 2, "zero": 3, "one": 1, "str-B": "2"}
        for name, value in TYPED_VALUES.items():
            record = {"name": name}
            if value is not MISSING:
                record["v"] = value
            if name in ranks:
                record["meta"] = {"rank": ranks[name]}
            backend.create(collection, parent, record)

    @staticmethod
    def names(records):
        return [r.get("name") for r in records]

    @pytest.mark.parametrize("filters,expected", FILTER_CASES,
                             ids=[f"{f[0].operator.name}-{f[0].field}-{f[0].value!r}-{len(f)}"
                                  for f, _ in FILTER_CASES])
    def test_filters(self, backend, collection, parent, typed, filters, expected):
        records, total = backend.get_all(collection, parent, filters=filters)
        assert set(self.names(records)) == expected
        assert total == len(expected) == len(records)

    def test_filters_on_id_and_last_modified(self, backend, collection, parent):
        records = [backend.create(collection, parent, {"n": n}) for n in range(5)]
        middle = records[2]["last_modified"]
        found, _ = backend.get_all(collection, parent, filters=[Filter("last_modified", middle, GT)])
        assert sorted(r["n"] for r in found) == [3, 4]
        found, _ = backend.get_all(collection, parent, filters=[Filter("last_modified", middle, MIN)])
        assert sorted(r["n"] for r in found) == [2, 3, 4]
        found, _ = backend.get_all(collection, parent, filters=[Filter("last_modified", middle, LT)])
        assert sorted(r["n"] for r in found) == [0, 1]
        wanted = [records[0]["id"], records[4]["id"], "unknown"]
        found, total = backend.get_all(collection, parent, filters=[Filter("id", wanted, IN)])
        assert sorted(r["n"] for r in found) == [0, 4] and total == 2

    def test_filter_on_accessible_ids(self, backend, collection, parent):
        records = [backend.create(collection, parent, {"n": i}) for i in range(5)]
        chosen = {records[1]["id"], records[3]["id"], "not-a-record"}
        accessible = AccessibleIds(["alice"], ["read"], "/x/", 1, lambda: chosen)
        found, total = backend.get_all(collection, parent, filters=[Filter("id", accessible, COMPARISON.IN)],
                                       sorting=[Sort("n", 1)])
        assert [r["n"] for r in found] == [1, 3] and total == 2
        empty = AccessibleIds(["bob"], ["read"], "/x/", 1, lambda: set())
        assert backend.get_all(collection, parent, filters=[Filter("id", empty, COMPARISON.IN)]) == ([], 0)

    def test_unknown_collection_is_empty(self, backend, collection, parent):
        assert backend.get_all(collection, parent) == ([], 0)
        assert backend.get_all(collection, parent, filters=[Filter("a", 1, EQ)], limit=5,
                               include_deleted=True) == ([], 0)

    # -- sorting ---------------------------------------------------------------------

    def test_sort_ascending_by_type_then_value(self, backend, collection, parent, typed):
        records, _ = backend.get_all(collection, parent, sorting=[Sort("v", 1), Sort("name", 1)])
        assert self.names(records)[:11] == [
            "str-empty", "str-2", "str-B", "str-abc",
            "minus", "zero", "one", "two-and-half", "ten",
            "false", "true"]
        assert set(self.names(records)[11:13]) == {"array", "object"}
        assert self.names(records)[13:] == ["missing", "null"]

    def test_sort_descending_is_the_reverse(self, backend, collection, parent, typed):
        records, _ = backend.get_all(collection, parent, sorting=[Sort("v", -1), Sort("name", -1)])
        names = self.names(records)
        assert names[:2] == ["null", "missing"]
        assert names[4:] == ["true", "false", "ten", "two-and-half", "one", "zero", "minus",
                             "str-abc", "str-B", "str-2", "str-empty"]

    def test_sort_on_several_fields_and_directions(self, backend, collection, parent):
        rows = [("a", 2, "x"), ("b", 1, "y"), ("c", 2, "y"), ("d", 1, "x"), ("e", None, "x"), ("f", 2, None)]
        for name, group, label in rows:
            record = {"name": name, "group": group}
            if label is not None:
                record["label"] = label
            backend.create(collection, parent, record)
        records, total = backend.get_all(collection, parent, sorting=[Sort("group", -1), Sort("label", 1)])
        assert self.names(records) == ["e", "a", "c", "f", "d", "b"] and total == 6
        records, _ = backend.get_all(collection, parent, sorting=[Sort("label", -1), Sort("group", 1)])
        assert self.names(records) == ["f", "b", "c", "d", "a", "e"]

    def test_sort_on_a_dotted_field(self, backend, collection, parent, typed):
        records, _ = backend.get_all(collection, parent, sorting=[Sort("meta.rank", 1), Sort("name", 1)])
        assert self.names(records)[:4] == ["str-B", "one", "ten", "zero"]

    def test_sort_by_last_modified(self, backend, collection, parent):
        records = [backend.create(collection, parent, {"n": n}) for n in range(5)]
        backend.update(collection, parent, records[1]["id"], {"n": 1})
        expected = [0, 2, 3, 4, 1]
        found, _ = backend.get_all(collection, parent, sorting=[Sort("last_modified", 1)])
        assert [r["n"] for r in found] == expected
        found, _ = backend.get_all(collection, parent, sorting=[Sort("last_modified", -1)])
        assert [r["n"] for r in found] == expected[::-1]

    # -- limit, total, after --------------------------------------------------------------

    def test_limit_and_total(self, backend, collection, parent):
        for n in range(10):
            backend.create(collection, parent, {"n": n, "even": n % 2 == 0})
        records, total = backend.get_all(collection, parent, sorting=[Sort("n", 1)], limit=3)
        assert [r["n"] for r in records] == [0, 1, 2] and total == 10
        records, total = backend.get_all(collection, parent, filters=[Filter("even", True, EQ)],
                                         sorting=[Sort("n", -1)], limit=2)
        assert [r["n"] for r in records] == [8, 6] and total == 5

    def test_after_takes_positions_between_records(self, backend, collection, parent, typed):
        records, total = backend.get_all(collection, parent, sorting=[Sort("v", 1), Sort("name", 1)],
                                         after=[2, "zzz"])
        assert self.names(records)[:3] == ["two-and-half", "ten", "false"] and total == len(TYPED_VALUES)
        records, _ = backend.get_all(collection, parent, sorting=[Sort("v", 1), Sort("name", 1)],
                                     after=[None, "missing"])
        assert self.names(records) == ["null"]
        records, _ = backend.get_all(collection, parent, sorting=[Sort("v", -1), Sort("name", 1)],
                                     after=["a", "zzz"])
        assert self.names(records) == ["str-B", "str-2", "str-empty"]
        records, _ = backend.get_all(collection, parent, sorting=[Sort("v", 1), Sort("name", 1)],
                                     after=[True, "true"])
        assert set(self.names(records)) == {"array", "object", "missing", "null"}

    @pytest.mark.parametrize("sorting", [
        [Sort("v", 1), Sort("id", 1)],
        [Sort("v", -1), Sort("id", -1)],
        [Sort("v", -1), Sort("name", 1), Sort("id", 1)],
        [Sort("meta.rank", 1), Sort("v", -1), Sort("id", -1)],
        [Sort("group", 1), Sort("v", -1), Sort("id", 1)],
        [Sort("last_modified", -1), Sort("id", 1)],
    ], ids=lambda s: ",".join(f"{'-' if x.direction < 0 else ''}{x.field}" for x in s))
    @pytest.mark.parametrize("page_size", [1, 4, 7])
    def test_after_walks_the_whole_collection(self, backend, collection, parent, sorting, page_size):
        self._make_walk_data(backend, collection, parent)
        filters = [Filter("skip", True, NOT)]
        full, total = backend.get_all(collection, parent, filters=filters, sorting=sorting, include_deleted=True)
        expected = sorted(full, key=functools.cmp_to_key(reference_compare(sorting)))
        assert full == expected
        assert total == 45 and len(full) == 50
        walked, after = [], None
        getters = [make_getter(s.field) for s in sorting]
        for _ in range(len(full) + 2):  # a backend that loops must fail, not hang
            page, page_total = backend.get_all(collection, parent, filters=filters, sorting=sorting,
                                               after=after, limit=page_size, include_deleted=True)
            assert page_total == total
            if not page:
                break
            assert len(page) <= page_size
            walked.extend(page)
            after = [None if g(page[-1]) is MISSING else g(page[-1]) for g in getters]
        else:
            pytest.fail("pagination with `after` never reached an empty page")
        assert walked == full

    @staticmethod
    def _make_walk_data(backend, collection, parent):
        values = [1, 2, 2.5, -1, "a", "B", "é", "", True, False, None, MISSING, 2, "a", 10]
        for n in range(45):
            record = {"name": f"r{n:02d}", "group": n % 3}
            value = values[n % len(values)]
            if value is not MISSING:
                record["v"] = value
            if n % 4:
                record["meta"] = {"rank": n % 5}
            if n % 9 == 0:
                record["group"] = None
            backend.create(collection, parent, record)
        listed, _ = backend.get_all(collection, parent, sorting=[Sort("name", 1)])
        for record in listed[:5]:
            backend.delete(collection, parent, record["id"])
        backend.create(collection, parent, {"name": "skipped", "skip": True})
        for n in range(5):
            backend.create(collection, parent, {"name": f"late{n}", "v": n * 2, "group": n % 3})

    def test_keyset_pages_stay_correct_while_records_change(self, backend, collection, parent):
        for n in range(10):
            backend.create(collection, parent, {"n": n})
        sorting = [Sort("n", 1), Sort("id", 1)]
        first, _ = backend.get_all(collection, parent, sorting=sorting, limit=4)
        position = [first[-1]["n"], first[-1]["id"]]
        backend.create(collection, parent, {"n": 1.5})
        backend.create(collection, parent, {"n": 7.5})
        backend.delete_all(collection, parent, filters=[Filter("n", 5, EQ)])
        rest, total = backend.get_all(collection, parent, sorting=sorting, after=position)
        assert [r["n"] for r in rest] == [4, 6, 7, 7.5, 8, 9] and total == 11

    def test_after_past_the_end_is_empty(self, backend, collection, parent):
        backend.create(collection, parent, {"n": 1})
        records, total = backend.get_all(collection, parent, sorting=[Sort("n", 1)], after=[1])
        assert records == [] and total == 1

    # -- tombstones in listings ---------------------------------------------------------

    def test_include_deleted(self, backend, collection, parent):
        a = backend.create(collection, parent, {"kind": "x"})
        b = backend.create(collection, parent, {"kind": "y"})
        since = backend.collection_timestamp(collection, parent)
        tombstone = backend.delete(collection, parent, a["id"])
        c = backend.create(collection, parent, {"kind": "x"})
        records, total = backend.get_all(collection, parent)
        assert sorted(r["id"] for r in records) == sorted([b["id"], c["id"]]) and total == 2
        records, total = backend.get_all(collection, parent, filters=[Filter("last_modified", since, GT)],
                                         sorting=[Sort("last_modified", -1)], include_deleted=True)
        assert records == [c, tombstone] and total == 1
        records, total = backend.get_all(collection, parent, filters=[Filter("kind", "y", EQ)],
                                         include_deleted=True, sorting=[Sort("last_modified", 1)])
        assert records == [b, tombstone] and total == 1
        records, total = backend.get_all(collection, parent, filters=[Filter("id", [b["id"]], IN)],
                                         include_deleted=True)
        assert records == [b] and total == 1

    def test_tombstones_sort_as_missing_values(self, backend, collection, parent):
        backend.create(collection, parent, {"n": 2})
        doomed = backend.create(collection, parent, {"n": 1})
        tombstone = backend.delete(collection, parent, doomed["id"])
        records, _ = backend.get_all(collection, parent, sorting=[Sort("n", 1)], include_deleted=True)
        assert [r.get("n") for r in records] == [2, None] and records[1] == tombstone
        records, _ = backend.get_all(collection, parent, sorting=[Sort("n", -1)], include_deleted=True)
        assert records[0] == tombstone

