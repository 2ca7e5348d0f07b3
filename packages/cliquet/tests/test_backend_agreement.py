"""The PostgreSQL and Redis storages answer random queries exactly like the
reference (the memory storage, i.e. :mod:`cliquet.storage.query`).

The contract suite checks each rule on hand-picked cases; this drives many
random combinations of filters, sort keys, pages and tombstones through the
real servers and compares the ids, their order and the totals.
"""

from __future__ import annotations

import random
import urllib.parse
import uuid

import pytest

from cliquet.testing.plugin import require_module

from cliquet.storage import COMPARISON, Filter, Sort
from cliquet.storage import memory as memory_storage
from cliquet.testing import make_config

SCALARS = [0, 1, 2.5, -3, 10, 2**40, "", "a", "B", "é", "z", "😀", "10", "a b", "a-c", True, False, None]
SHAPES = [[1, 2], [], {"k": 1}, {}, "a", 1, None]
FIELDS = ["v", "w", "meta.rank"]
OPERATORS = list(COMPARISON)


def _record(rng, n):
    record = {}
    for field in ("v", "w"):
        if rng.random() < 0.85:
            record[field] = rng.choice(SCALARS)
    if rng.random() < 0.7:
        record["meta"] = {"rank": rng.choice(SCALARS)} if rng.random() < 0.9 else "flat"
    if rng.random() < 0.5:
        record["shape"] = rng.choice(SHAPES)
    record["n"] = n
    return record


def _filter(rng, stamps, ids):
    kind = rng.random()
    if kind < 0.15:
        return Filter("last_modified", rng.choice(stamps), rng.choice([COMPARISON.GT, COMPARISON.MIN,
                                                                      COMPARISON.LT, COMPARISON.MAX]))
    if kind < 0.22:
        return Filter("id", rng.sample(ids, 3), rng.choice([COMPARISON.IN, COMPARISON.EXCLUDE]))
    if kind < 0.32:
        return Filter("shape", rng.choice(SHAPES), rng.choice([COMPARISON.EQ, COMPARISON.NOT]))
    operator = rng.choice(OPERATORS)
    if operator in (COMPARISON.IN, COMPARISON.EXCLUDE):
        value = rng.sample(SCALARS, rng.randint(1, 4))
    else:
        value = rng.choice(SCALARS)
    return Filter(rng.choice(FIELDS), value, operator)


def _sorting(rng):
    fields = rng.sample(FIELDS + ["last_modified"], rng.randint(0, 2))
    return [Sort(f, rng.choice([1, -1])) for f in fields] + [Sort("id", rng.choice([1, -1]))]


def _walk(storage, c, p, filters, sorting, limit, include_deleted):
    """All pages, following ``after``; return ids in order and the totals."""
    ids, totals, after = [], set(), None
    for _ in range(200):
        page, total = storage.get_all(c, p, filters=filters, sorting=sorting, after=after, limit=limit,
                                      include_deleted=include_deleted)
        totals.add(total)
        if not page:
            break
        ids += [r["id"] for r in page]
        last = page[-1]
        after = [_value(last, s.field) for s in sorting]
    return ids, totals


def _value(record, field):
    value = record
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _agree(storage, seed, queries=120):
    rng = random.Random(seed)
    reference = memory_storage.load_from_config(make_config())
    c, p = f"agree-{uuid.uuid4().hex[:8]}", "p"
    stamp = 1_600_000_000_000
    for n in range(60):
        stamp += rng.randint(1, 3)
        record = dict(_record(rng, n), id=f"r{n:02d}{rng.choice('aBz')}", last_modified=stamp)
        for backend in (reference, storage):
            backend.create(c, p, dict(record))
    for object_id in rng.sample(sorted(r["id"] for r in reference.get_all(c, p)[0]), 12):
        stamp += rng.randint(1, 3)
        for backend in (reference, storage):
            backend.delete(c, p, object_id, last_modified=stamp)
    records, _ = reference.get_all(c, p, include_deleted=True)
    stamps = [r["last_modified"] for r in records]
    ids = [r["id"] for r in records]
    for _ in range(queries):
        filters = [_filter(rng, stamps, ids) for _ in range(rng.randint(0, 2))]
        sorting = _sorting(rng)
        limit = rng.choice([1, 3, 7, 25, 100])
        include_deleted = rng.random() < 0.3
        expected = _walk(reference, c, p, filters, sorting, limit, include_deleted)
        got = _walk(storage, c, p, filters, sorting, limit, include_deleted)
        assert got == expected, f"filters={filters} sorting={sorting} limit={limit} deleted={include_deleted}"


@pytest.mark.services
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("codepoint", [None, False], ids=["server-collation", "any-collation"])
def test_postgresql_agrees_with_the_reference(postgresql_url, cliquet_worker_prefix, seed, codepoint):
    """``codepoint=False`` forces the sort keys used on databases whose
    collation is not code point order (en_US.UTF-8…)."""
    psycopg = require_module("psycopg")
    from cliquet.storage import postgresql as pg_storage

    schema = f"{cliquet_worker_prefix}agree{seed}{codepoint}".lower()
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    option = urllib.parse.quote(f"-csearch_path={schema}")
    url = f"{postgresql_url}{'&' if '?' in postgresql_url else '?'}options={option}"
    storage = pg_storage.load_from_config(make_config(storage_url=url))
    storage.initialize_schema()
    storage.codepoint_strings = codepoint
    try:
        _agree(storage, seed)
    finally:
        storage.client.close()
        with psycopg.connect(postgresql_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.services
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_redis_agrees_with_the_reference(redis_url, cliquet_worker_prefix, seed):
    require_module("redis")
    from cliquet.storage import redis as redis_storage

    storage = redis_storage.load_from_config(
        make_config(storage_url=redis_url, storage_prefix=f"{cliquet_worker_prefix}agree{seed}:"))
    try:
        _agree(storage, seed)
    finally:
        storage.flush()
