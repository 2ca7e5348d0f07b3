"""Filters, sort keys and keyset positions evaluated in Python.

The semantics of :class:`~cliquet.storage.Filter` and
:class:`~cliquet.storage.Sort` written once, for backends that evaluate
queries in the process (the memory backend; a Redis backend may reuse it).
The contract suite :mod:`cliquet.testing.storage` checks the same rules on
every backend:

* **null is missing**: a field whose value is ``null`` behaves everywhere
  (filters, sorting, ``after``) exactly like an absent field.
* **JSON types**: values have one of the types string, number (``int`` and
  ``float`` together), boolean, array, object. ``True`` is not ``1``.
* **Filters**: ``EQ``/``IN`` match values of the same type that are equal
  (``EQ None`` and ``IN [None]`` match null and missing fields); ``NOT`` and
  ``EXCLUDE`` are their exact negations, hence match missing fields;
  ``LT``/``GT``/``MIN``/``MAX`` match only strings or numbers of the same type
  as the filter value (never a missing field, never when the value is
  ``None``); strings compare by Unicode code point.
* **Sorting**: ascending order is strings (by code point) < numbers <
  booleans (``false < true``) < arrays < objects < missing/null; descending
  is its exact reverse, so missing/null values come last ascending and first
  descending. Arrays and objects are ordered by their canonical JSON text
  (their relative order is not part of the contract).
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Iterable, Sequence

import orjson

from cliquet.storage import COMPARISON, AccessibleIds, Filter, Sort

MISSING: Any = object()
"""Marker returned by field getters for an absent field."""

RANK_STRING, RANK_NUMBER, RANK_BOOL, RANK_ARRAY, RANK_OBJECT, RANK_OTHER, RANK_MISSING = 1, 2, 3, 4, 5, 6, 9

_RANKS = {str: RANK_STRING, int: RANK_NUMBER, float: RANK_NUMBER, bool: RANK_BOOL,
          list: RANK_ARRAY, tuple: RANK_ARRAY, dict: RANK_OBJECT, type(None): RANK_MISSING}
_TYPES_OF_RANK = {RANK_STRING: (str,), RANK_NUMBER: (int, float), RANK_BOOL: (bool,)}


def json_rank(value: Any) -> int:
    """Return the rank of the JSON type of ``value`` (see the module docstring)."""
    rank = _RANKS.get(type(value))
    if rank is not None:
        return rank
    if value is MISSING:
        return RANK_MISSING
    for kind, kind_rank in ((bool, RANK_BOOL), (str, RANK_STRING), (int, RANK_NUMBER), (float, RANK_NUMBER),
                            (dict, RANK_OBJECT), (list, RANK_ARRAY), (tuple, RANK_ARRAY)):
        if isinstance(value, kind):
            return kind_rank
    return RANK_OTHER


def canonical(value: Any) -> bytes:
    """Return the canonical JSON text of ``value`` (sorted keys), for comparisons."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def sort_component(value: Any) -> tuple:
    """Return an ascending sort key for one field value (``MISSING`` allowed)."""
    kind = type(value)
    if kind is str:
        return (RANK_STRING, value)
    if kind is int or kind is float:
        return (RANK_NUMBER, value)
    if value is None or value is MISSING:
        return (RANK_MISSING, 0)
    rank = json_rank(value)
    if rank == RANK_STRING:
        return (rank, str(value))
    if rank == RANK_NUMBER:
        return (rank, float(value) if isinstance(value, float) else int(value))
    if rank == RANK_BOOL:
        return (rank, bool(value))
    if rank in (RANK_ARRAY, RANK_OBJECT):
        return (rank, canonical(value))
    return (RANK_OTHER, repr(value))


def make_getter(field: str) -> Callable[[dict], Any]:
    """Return a function reading ``field`` (a dotted path) from a record, or ``MISSING``."""
    if "." not in field:
        return operator.methodcaller("get", field, MISSING)
    parts = tuple(field.split("."))

    def get_dotted(record):
        value = record
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                return MISSING
            value = value[part]
        return value
    return get_dotted


def _equality_test(value: Any) -> Callable[[Any], bool]:
    if value is None or value is MISSING:
        return lambda x: x is None or x is MISSING
    rank = json_rank(value)
    types = _TYPES_OF_RANK.get(rank)
    if types is None:
        text = canonical(value)
        return lambda x: json_rank(x) == rank and canonical(x) == text
    if rank == RANK_NUMBER:
        return lambda x: (type(x) is int or type(x) is float) and x == value
    kind = types[0]
    return lambda x: type(x) is kind and x == value


def _membership_test(values: Any) -> Callable[[Any], bool]:
    if isinstance(values, AccessibleIds):
        ids = values.ids  # record ids are strings
        return lambda x: type(x) is str and x in ids
    if not isinstance(values, (list, tuple, set, frozenset)):
        values = [values]
    scalars: dict[type, set] = {}
    others = []
    with_null = False
    for value in values:
        if value is None:
            with_null = True
            continue
        rank = json_rank(value)
        if rank == RANK_NUMBER:
            scalars.setdefault(int, set()).add(value)
            scalars.setdefault(float, set()).add(value)
        elif rank in (RANK_STRING, RANK_BOOL):
            scalars.setdefault(_TYPES_OF_RANK[rank][0], set()).add(value)
        else:
            others.append(_equality_test(value))

    def test(x):
        if x is None or x is MISSING:
            return with_null
        bucket = scalars.get(type(x))
        if bucket is not None and x in bucket:
            return True
        return any(other(x) for other in others)
    return test


def _ordering_test(value: Any, operator: COMPARISON) -> Callable[[Any], bool]:
    rank = json_rank(value)
    if rank not in (RANK_STRING, RANK_NUMBER):
        return lambda x: False
    types = _TYPES_OF_RANK[rank]
    if operator is COMPARISON.LT:
        return lambda x: type(x) in types and x < value
    if operator is COMPARISON.GT:
        return lambda x: type(x) in types and x > value
    if operator is COMPARISON.MIN:
        return lambda x: type(x) in types and x >= value
    return lambda x: type(x) in types and x <= value


def value_test(operator: COMPARISON, value: Any) -> Callable[[Any], bool]:
    """Return a predicate on a field value (or ``MISSING``) for one filter."""
    if operator is COMPARISON.EQ:
        return _equality_test(value)
    if operator is COMPARISON.NOT:
        test = _equality_test(value)
        return lambda x: not test(x)
    if operator is COMPARISON.IN:
        return _membership_test(value)
    if operator is COMPARISON.EXCLUDE:
        test = _membership_test(value)
        return lambda x: not test(x)
    if operator in (COMPARISON.LT, COMPARISON.GT, COMPARISON.MIN, COMPARISON.MAX):
        return _ordering_test(value, operator)
    raise ValueError(f"unknown filter operator {operator!r}")


def compile_filters(filters: Iterable[Filter] | None, fields: Iterable[str] | None = None) -> Callable[[dict], bool]:
    """Return a predicate on records that holds when every filter holds.

    :param fields: if given, only the filters on these fields are kept (used
        for tombstones, which are matched on ``id`` and ``last_modified`` only).
    """
    allowed = None if fields is None else set(fields)
    tests = [(make_getter(f.field), value_test(f.operator, f.value))
             for f in (filters or ()) if allowed is None or f.field in allowed]
    if not tests:
        return lambda record: True
    if len(tests) == 1:
        (get, test), = tests
        return lambda record: test(get(record))
    return lambda record: all(test(get(record)) for get, test in tests)


def freeze(value: Any) -> Any:
    """Return a hashable form of a JSON value that keeps its type (``1`` ≠ ``True``)."""
    if isinstance(value, AccessibleIds):
        return value  # hashable by its key, without loading the ids
    if isinstance(value, (list, tuple)):
        return (RANK_ARRAY, tuple(freeze(v) for v in value))
    if isinstance(value, dict):
        return (RANK_OBJECT, tuple(sorted((k, freeze(v)) for k, v in value.items())))
    return (json_rank(value), value)


def _column(records: list, field: str) -> list:
    """Return comparable ascending keys of ``field`` for ``records``.

    When every value is a number, or every value a string, the raw values
    are their own keys (C-speed comparisons); otherwise :func:`sort_component`.
    """
    if "." in field:
        get = make_getter(field)
        values = [get(r) for r in records]
    else:
        values = [r.get(field, MISSING) for r in records]
    kinds = set(map(type, values))
    if kinds == {str} or (kinds and kinds <= {int, float}):
        return values
    return [sort_component(v) for v in values]


def sort_records(records: list, sorting: Sequence[Sort]) -> list:
    """Return ``records`` sorted by ``sorting`` (stable: ties keep the input order)."""
    if not records:
        return []
    order = list(range(len(records)))
    for sort in reversed(sorting):
        column = _column(records, sort.field)
        order.sort(key=column.__getitem__, reverse=sort.direction < 0)
    return [records[i] for i in order]


def record_key(record: dict, sorting: Sequence[Sort]) -> tuple:
    """Return the sort key of one record, comparable with :func:`after_key`."""
    return tuple(sort_component(make_getter(s.field)(record)) for s in sorting)


def after_key(values: Sequence[Any], sorting: Sequence[Sort]) -> tuple:
    """Return the sort key of an ``after`` position (one value per sort field)."""
    values = list(values)
    if len(values) != len(sorting):
        raise ValueError(f"'after' has {len(values)} values for {len(sorting)} sort fields")
    return tuple(sort_component(v) for v in values)


def is_after(key: tuple, position: tuple, directions: Sequence[int]) -> bool:
    """Return whether a record's ``key`` comes strictly after ``position``."""
    for mine, theirs, direction in zip(key, position, directions):
        if mine != theirs:
            return (mine > theirs) if direction >= 0 else (mine < theirs)
    return False


def position_after(records: list, position: tuple, sorting: Sequence[Sort]) -> int:
    """Return the index of the first of the sorted ``records`` strictly after ``position``.

    A binary search: only O(log n) records get their sort key computed.
    """
    directions = [s.direction for s in sorting]
    getters = [make_getter(s.field) for s in sorting]
    low, high = 0, len(records)
    while low < high:
        middle = (low + high) // 2
        key = tuple(sort_component(get(records[middle])) for get in getters)
        if is_after(key, position, directions):
            high = middle
        else:
            low = middle + 1
    return low
