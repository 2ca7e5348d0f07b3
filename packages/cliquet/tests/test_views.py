"""cliquet.storage.views: a view kept one record at a time lists what the
query run whole lists (the order of :func:`cliquet.storage.query.sort_records`)."""

import random

import pytest

from cliquet.storage import Sort
from cliquet.storage import query as q
from cliquet.storage.views import View

FIELDS = ("id", "last_modified")
#: values of every JSON kind (numbers of both types, booleans, equal
#: numbers as int and float, missing): ranks and their ties.
VALUES = [None, True, False, 0, 1, 1.0, -2.5, 3, 10**20, "", "a", "b", "B", [1], [0, 1], {"a": 1}, {}]


def _record(rng, object_id, timestamp):
    record = {"id": object_id, "last_modified": timestamp}
    for field in ("x", "y"):
        if rng.random() < 0.85:
            record[field] = rng.choice(VALUES)
    return record


def _writes(rng, ids, steps, records, tombstones):
    """``steps`` random writes (creations, updates, deletions) among ``ids``
    ids, applied to ``records`` and ``tombstones``; yield each written id."""
    for clock in range(1, steps + 1):
        object_id = str(rng.randrange(ids))
        if object_id in records and rng.random() < 0.3:
            del records[object_id]
            tombstones[object_id] = {"id": object_id, "last_modified": clock, "deleted": True}
        else:
            tombstones.pop(object_id, None)
            records.pop(object_id, None)
            records[object_id] = _record(rng, object_id, clock)
        yield object_id


@pytest.mark.parametrize("sorting", [
    (Sort("x", -1),),
    (Sort("x", 1), Sort("y", -1)),
    (Sort("x", -1), Sort("y", -1), Sort("id", -1)),
    (Sort("last_modified", -1),),
])
@pytest.mark.parametrize("seed", range(4))
def test_a_view_kept_by_writes_lists_what_the_query_lists(sorting, seed):
    rng = random.Random(seed)
    view = View([], sorting, True, FIELDS)
    records, tombstones = {}, {}
    for object_id in _writes(rng, 40, 300, records, tombstones):
        view.update(object_id, records.get(object_id), tombstones.get(object_id))
    expected = q.sort_records(list(records.values()) + list(tombstones.values()), sorting)
    assert [r["id"] for r in view.records] == [r["id"] for r in expected]
    assert view.total == len(records)
    assert view.keys == sorted(view.keys)
    built = View([], sorting, True, FIELDS)
    built.build(records.values(), tombstones.values())
    assert built.records == view.records and built.keys == view.keys


def test_descending_numbers_are_negated_and_other_kinds_wrapped():
    view = View([], (Sort("x", -1),), False, FIELDS)
    number = view.key({"id": "a", "last_modified": 1, "x": 2.5}, False)[:2]
    text = view.key({"id": "b", "last_modified": 1, "x": "z"}, False)[:2]
    assert number == (-q.RANK_NUMBER, -2.5)
    assert text[0] == -q.RANK_STRING and type(text[1]).__name__ == "_Desc"
    assert number < text  # strings rank first ascending: last descending


def _either(items, matches):
    return [r for r in items if any(m(r) for m in matches)]


@pytest.mark.parametrize("include_deleted", [False, True])
@pytest.mark.parametrize("log_most", [4096, 3])
@pytest.mark.parametrize("seed", range(4))
def test_a_union_of_views_lists_and_counts_each_record_once(seed, log_most, include_deleted, monkeypatch):
    """A union of views of one query but for their filters (read scopes in
    use; any filters will do here) pages like "any of them" run whole, and
    its count of live records follows writes, a record held by several
    views counted once, also when the views forget the changes it has not
    seen (a short log: it counts again)."""
    from cliquet.storage import COMPARISON, Filter
    from cliquet.storage import views as views_module
    from cliquet.storage.views import Union

    monkeypatch.setattr(views_module, "LOG_MOST", log_most)
    rng = random.Random(seed)
    sorting = (Sort("x", -1), Sort("last_modified", 1))
    if include_deleted:  # filters tombstones pass too: a record goes from live to tombstone in a view
        wanted = [[Filter("id", {str(n) for n in range(0, 20)}, COMPARISON.IN)],
                  [Filter("id", {str(n) for n in range(10, 30, 2)}, COMPARISON.IN)]]
    else:
        wanted = [[Filter("y", 1, COMPARISON.EQ)], [Filter("x", "a", COMPARISON.EQ)], [Filter("y", 1, COMPARISON.MIN)]]
    views = [View(filters, sorting, include_deleted, FIELDS) for filters in wanted]
    union = Union(views)
    matches = [q.compile_filters(filters) for filters in wanted]
    records, tombstones = {}, {}
    for step, object_id in enumerate(_writes(rng, 30, 400, records, tombstones)):
        for view in views:
            view.update(object_id, records.get(object_id), tombstones.get(object_id))
        if step % 7 == 0:
            live = _either(records.values(), matches)
            dead = _either(tombstones.values(), matches) if include_deleted else []
            expected = q.sort_records(live + dead, sorting)
            assert union.total() == len(live)
            limit = rng.randrange(1, 6)
            assert [r["id"] for r in union.page(None, sorting, limit)] == [r["id"] for r in expected[:limit]]
            if expected:
                pivot = rng.choice(expected)
                position = q.after_key([pivot.get("x"), pivot["last_modified"]], sorting)
                start = q.position_after(expected, position, sorting)
                assert [r["id"] for r in union.page(position, sorting, 50)] == [r["id"] for r in expected[start:]]
    assert union.page(None, sorting, 0) == []
    views[0].build(records.values(), tombstones.values())  # a view built again: counted again
    assert union.total() == len(_either(records.values(), matches))
