"""SQL for filters, sorting and keyset pagination over JSONB records.

Field names go into the SQL text as escape-string literals (never as
parameters; see :func:`quote_literal`) so
that the planner can match expression indexes such as
``((data -> 'title'))``; values always travel as parameters. The text of a
query depends only on the *shape* of the request (fields, operators, value
types), so psycopg prepares it once per connection and reuses it.

Semantics follow :mod:`cliquet.storage.query` (the reference, in Python): a
JSON ``null`` is a missing field (``NULLIF(data -> 'f', 'null')``);
comparisons only match values of the filter value's JSON type, strings by
code point; ``NOT``/``EXCLUDE`` are exact negations, so they match a missing
field; missing values sort last in ascending order (``NULLS LAST``), first in
descending order (``NULLS FIRST``) — PostgreSQL's own defaults — and JSONB's
own order of types (strings < numbers < booleans < arrays < objects) is the
reference's. Strings sort by the database collation, which is code point
order with ``C`` or ``C.UTF-8`` (what ``ci/services`` creates).
"""

from __future__ import annotations

from typing import Any, Sequence

from psycopg.types.json import Jsonb

import orjson

from cliquet.storage import COMPARISON, AccessibleIds

_OPERATORS = {
    COMPARISON.LT: "<",
    COMPARISON.GT: ">",
    COMPARISON.MIN: ">=",
    COMPARISON.MAX: "<=",
}


def json_type(value: Any) -> str:
    """Return the ``jsonb_typeof`` name of a Python JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return "object"


def jsonb(value: Any) -> Jsonb:
    """Wrap a value as a JSONB parameter (serialised with orjson)."""
    return Jsonb(value, dumps=orjson.dumps)


def quote_literal(text: str) -> str:
    """Quote ``text`` as an SQL string literal, with ``%`` doubled for
    psycopg's placeholders.

    The literal means the same text whatever the server's
    ``standard_conforming_strings`` (a server, database or role may turn it
    ``off``, and then a backslash in a plain ``'...'`` literal is an escape:
    a syntax error at best, SQL injection at worst). Text with a backslash
    becomes an escape string (``E'...'``, backslashes doubled), which reads
    the same in both modes; text without one stays a plain literal, which
    also does — and keeps the SQL, hence the names of the field indexes,
    unchanged."""
    if "\x00" in text:
        raise ValueError("field names cannot contain NUL characters")
    quoted = text.replace("'", "''").replace("%", "%%")
    if "\\" in text:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


class Column:
    """How one record field is reached in SQL.

    :ivar sql: the expression.
    :ivar kind: ``"text"`` (the id), ``"int"`` (last_modified) or ``"jsonb"``.
    """

    __slots__ = ("sql", "kind")

    def __init__(self, sql: str, kind: str):
        self.sql = sql
        self.kind = kind

    def accepts(self, value) -> bool:
        """Whether ``value`` has the JSON type of this column (typed columns)."""
        if self.kind == "text":
            return isinstance(value, str)
        if self.kind == "int":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind == "rank":
            return type(value) is int
        if self.kind == "ctext":
            return isinstance(value, str)
        return True

    def param(self, value):
        """Adapt a value for a comparison with this column."""
        if self.kind in ("jsonb", "jsonbnn"):
            return jsonb(value)
        return value

    def array_param(self, values):
        """Adapt a list of values for ``= ANY(...)``, keeping the comparable ones."""
        if self.kind == "jsonb":
            return [jsonb(v) for v in values]
        return [v for v in values if self.accepts(v)]

    @property
    def array_cast(self) -> str:
        return {"text": "text[]", "int": "numeric[]", "jsonb": "jsonb[]"}[self.kind]

    @property
    def nullable(self) -> bool:
        return self.kind == "jsonb"


def column(field: str, id_field: str = "id", modified_field: str = "last_modified", table: str = "") -> Column:
    """Return the :class:`Column` of a (dotted) record field."""
    if field == id_field:
        return Column(f"{table}id", "text")
    if field == modified_field:
        return Column(f"{table}last_modified", "int")
    parts = field.split(".")
    if len(parts) == 1:
        return Column(f"NULLIF({table}data -> {quote_literal(field)}, 'null'::jsonb)", "jsonb")
    path = ",".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)
    return Column(f"NULLIF({table}data #> {quote_literal('{' + path + '}')}, 'null'::jsonb)", "jsonb")


_TYPE_RANKS = {"string": 1, "number": 2, "boolean": 3, "array": 4, "object": 5}
_MISSING_RANK = 6


def rank_sql(col: Column) -> str:
    """The rank of a JSONB field's type, in the reference's order (6: missing)."""
    return (f"(CASE jsonb_typeof({col.sql}) WHEN 'string' THEN 1 WHEN 'number' THEN 2 WHEN 'boolean' THEN 3 "
            f"WHEN 'array' THEN 4 WHEN 'object' THEN 5 ELSE 6 END)")


def text_sql(col: Column) -> str:
    """A JSONB field's text if it is a string (``''`` otherwise), in code point order."""
    return f"(COALESCE(CASE WHEN jsonb_typeof({col.sql}) = 'string' THEN {col.sql} #>> '{{}}' END, '') COLLATE \"C\")"


def value_sql(col: Column) -> str:
    """A JSONB field's value, JSON ``null`` when missing (never SQL ``NULL``)."""
    return f"COALESCE({col.sql}, 'null'::jsonb)"


def sort_keys(col: Column, direction: int, codepoint: bool) -> list[tuple[Column, int]]:
    """Return the ``ORDER BY`` keys of one sort field.

    A JSONB field sorts by the rank of its type (strings, numbers, booleans,
    arrays, objects, then missing — the reference's order), then by its
    value; where the database collation is not code point order, strings by
    their text ``COLLATE "C"`` in between. No key is ever ``NULL``, so that
    a keyset position is one row comparison that an index on the same keys
    answers as a range scan: page *n* costs what page 1 costs.
    """
    if col.kind != "jsonb":
        return [(col, direction)]
    keys = [(Column(rank_sql(col), "rank"), direction)]
    if not codepoint:
        keys.append((Column(text_sql(col), "ctext"), direction))
    keys.append((Column(value_sql(col), "jsonbnn"), direction))
    return keys


def sort_values(col: Column, value, codepoint: bool) -> list:
    """Return the ``after`` values matching :func:`sort_keys` for one field."""
    if col.kind != "jsonb":
        return [value]
    rank = _MISSING_RANK if value is None else _TYPE_RANKS[json_type(value)]
    values = [rank]
    if not codepoint:
        values.append(value if isinstance(value, str) else "")
    values.append(value)
    return values


def _comparable(value) -> bool:
    """Ordering filters only apply to strings and numbers."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def filter_sql(col: Column, operator: COMPARISON, value, params: list, codepoint: bool = True,
               indexed: bool = True) -> str:
    """Return the SQL condition of one filter, appending its parameters.

    A JSON ``null`` is a missing field (the expression of a JSONB field is
    ``NULL`` for both). Equality and ordering on a JSONB field are written
    on the field's sort keys (:func:`sort_keys`), so that the index of a
    declared field answers them as a range. Equality on a field without
    that index (``indexed`` false) is the value's alone: JSONB equality
    implies the same type, and the planner, which has no statistics on
    either expression then, would multiply two default selectivities and
    expect 2 matching rows of 100 000 — and sort the whole collection
    instead of walking the ``last_modified`` index (97 ms instead of
    0.3 ms for ``published=true`` at 100 000 records).
    """
    if operator in (COMPARISON.IN, COMPARISON.EXCLUDE):
        values = list(value) if isinstance(value, (list, tuple, set, frozenset, AccessibleIds)) else [value]
        with_null = any(v is None for v in values)
        arr = col.array_param([v for v in values if v is not None])
        parts = []
        if arr:
            params.append(arr)
            parts.append(f"{col.sql} = ANY(%s::{col.array_cast})")
        if with_null and col.nullable:
            parts.append(f"{col.sql} IS NULL")
        cond = "(" + " OR ".join(parts) + ")" if parts else "FALSE"
        if operator is COMPARISON.IN:
            return cond
        if col.nullable and not with_null and parts:
            return f"({col.sql} IS NULL OR NOT {cond})"
        return f"NOT {cond}"

    if operator in (COMPARISON.EQ, COMPARISON.NOT):
        if value is None:
            cond = f"{col.sql} IS NULL" if col.nullable else "FALSE"
        elif not col.accepts(value):
            cond = "FALSE"
        elif operator is COMPARISON.EQ and col.kind == "jsonb" and indexed:
            return _on_keys(col, "=", value, params, codepoint)
        elif operator is COMPARISON.EQ and col.kind == "jsonb":
            params.append(jsonb(value))
            return f"{value_sql(col)} = %s"
        else:
            params.append(col.param(value))
            cond = f"{col.sql} = %s"
        if operator is COMPARISON.EQ:
            return cond
        if cond == "FALSE":
            return "TRUE"
        if value is None:
            return f"{col.sql} IS NOT NULL"
        return f"({col.sql} IS NULL OR {col.sql} <> %s)" if col.nullable else f"{col.sql} <> %s"

    op = _OPERATORS[operator]
    if not _comparable(value) or not col.accepts(value):
        return "FALSE"
    if col.kind != "jsonb":
        params.append(value)
        return f"{col.sql} {op} %s"
    return _on_keys(col, op, value, params, codepoint)


def _on_keys(col: Column, op: str, value, params: list, codepoint: bool) -> str:
    """``field op value`` on the sort keys of a JSONB field: same type rank,
    then the text (strings, where the collation is not code point order) or
    the value; strings always compare by code point."""
    rank = _TYPE_RANKS[json_type(value)]
    if not codepoint:
        text = value if isinstance(value, str) else ""
        params.append(text)
        if isinstance(value, str) and op != "=":
            return f"({rank_sql(col)} = {rank} AND {text_sql(col)} {op} %s)"
        params.append(jsonb(value))
        return f"({rank_sql(col)} = {rank} AND {text_sql(col)} = %s AND {value_sql(col)} {op} %s)"
    params.append(jsonb(value))
    return f"({rank_sql(col)} = {rank} AND {value_sql(col)} {op} %s)"


def order_sql(columns: Sequence[tuple[Column, int]]) -> str:
    """Return the ``ORDER BY`` list (missing values last ascending, first descending)."""
    return ", ".join(f"{col.sql} {'ASC' if direction >= 0 else 'DESC'}" for col, direction in columns)


def keyset_sql(columns: Sequence[tuple[Column, int]], after: Sequence[Any], params: list) -> str:
    """Return the condition "strictly after the row whose sort values are
    ``after``" in the order of ``columns``, appending its parameters.

    ``None`` in ``after`` stands for a missing value (SQL ``NULL``).
    """
    if all(not col.nullable for col, _ in columns) and len({d >= 0 for _, d in columns}) == 1:
        # Keys that are never NULL, in one direction: a row comparison, which
        # an index on these keys answers as a range scan.
        if any(not col.accepts(v) for (col, _), v in zip(columns, after)):
            return "FALSE"
        op = ">" if columns[0][1] >= 0 else "<"
        params.extend(col.param(v) for (col, _), v in zip(columns, after))
        lhs = ", ".join(col.sql for col, _ in columns)
        rhs = ", ".join("%s" for _ in columns)
        return f"({lhs}) {op} ({rhs})"

    alternatives = []
    for i, ((col, direction), value) in enumerate(zip(columns, after)):
        terms: list[str] = []
        local: list = []
        for (prev, _), prev_value in zip(columns[:i], after[:i]):
            if prev_value is None and prev.nullable:
                terms.append(f"{prev.sql} IS NULL")
            elif not prev.accepts(prev_value):
                terms.append("FALSE")
            else:
                local.append(prev.param(prev_value))
                terms.append(f"{prev.sql} = %s")
        if value is None and col.nullable:
            # Missing values come last ascending: nothing after them; first
            # descending: every present value is after them.
            if direction >= 0:
                continue
            terms.append(f"{col.sql} IS NOT NULL")
        elif not col.accepts(value):
            continue
        else:
            local.append(col.param(value))
            if direction >= 0:
                terms.append(f"({col.sql} > %s OR {col.sql} IS NULL)" if col.nullable else f"{col.sql} > %s")
            else:
                terms.append(f"{col.sql} < %s")
        params.extend(local)
        alternatives.append("(" + " AND ".join(terms) + ")")
    if not alternatives:
        return "FALSE"
    return "(" + " OR ".join(alternatives) + ")"


# -- the statements of the storage -------------------------------------------------

NOW_MS = "floor(extract(epoch from clock_timestamp()) * 1000)::bigint"

# Bump the collection's counter and return the new value: the given timestamp
# when it is newer than the counter (or the counter is new), otherwise
# greatest(now, last + 1). With a count > 1, reserve that many consecutive
# timestamps and return the last one.
BUMP = f"""
INSERT INTO cliquet_timestamps AS t (parent_id, collection_id, last_modified)
SELECT %(parent_id)s, %(collection_id)s, COALESCE(%(given)s::bigint, {NOW_MS} + %(count)s - 1)
{{condition}}
ON CONFLICT (parent_id, collection_id) DO UPDATE
   SET last_modified = CASE
       WHEN %(given)s::bigint IS NOT NULL AND EXCLUDED.last_modified > t.last_modified
       THEN EXCLUDED.last_modified
       ELSE greatest({NOW_MS} + %(count)s - 1, t.last_modified + %(count)s) END
RETURNING last_modified
"""

GET = (
    "SELECT last_modified, data FROM cliquet_records "
    "WHERE parent_id = %s AND collection_id = %s AND id = %s AND NOT deleted"
)

#: Bump the counter (by ``count``: the first of the timestamps reserved goes
#: to this record, the others to the transaction's next creates, see
#: :data:`CREATE_AT`) and insert the record, unless its id is taken by a
#: live record (no row then, and no bump).
CREATE = f"""
WITH ts AS ({BUMP.format(condition='''WHERE NOT EXISTS (
    SELECT 1 FROM cliquet_records
     WHERE parent_id = %(parent_id)s AND collection_id = %(collection_id)s
       AND id = %(id)s AND NOT deleted)''')})
INSERT INTO cliquet_records AS r (parent_id, collection_id, id, last_modified, deleted, data)
SELECT %(parent_id)s, %(collection_id)s, %(id)s, ts.last_modified - %(count)s + 1, FALSE, %(data)s FROM ts
ON CONFLICT (parent_id, collection_id, id) DO UPDATE
   SET last_modified = EXCLUDED.last_modified, deleted = FALSE, data = EXCLUDED.data
 WHERE r.deleted
RETURNING last_modified
"""

#: A create at a timestamp the transaction reserved (a :data:`CREATE` with a
#: count > 1 took the next ones and holds the collection's counter row until
#: it commits): no bump, the counter is already past it. No row if the id
#: is taken by a live record.
CREATE_AT = """
INSERT INTO cliquet_records AS r (parent_id, collection_id, id, last_modified, deleted, data)
VALUES (%(parent_id)s, %(collection_id)s, %(id)s, %(at)s, FALSE, %(data)s)
ON CONFLICT (parent_id, collection_id, id) DO UPDATE
   SET last_modified = EXCLUDED.last_modified, deleted = FALSE, data = EXCLUDED.data
 WHERE r.deleted
RETURNING last_modified
"""

UPDATE = f"""
WITH ts AS ({BUMP.format(condition='')})
INSERT INTO cliquet_records AS r (parent_id, collection_id, id, last_modified, deleted, data)
SELECT %(parent_id)s, %(collection_id)s, %(id)s, ts.last_modified, FALSE, %(data)s FROM ts
ON CONFLICT (parent_id, collection_id, id) DO UPDATE
   SET last_modified = EXCLUDED.last_modified, deleted = FALSE, data = EXCLUDED.data
RETURNING last_modified
"""

#: :data:`UPDATE` of a live record this transaction read at version
#: ``%(expected)s``: no row if it changed since. The counter row is locked
#: first (the bump, as every writer does); the record's row is then found in
#: the statement's snapshot and, if a concurrent transaction changed it
#: meanwhile, re-checked on its newest version (read committed's rule for
#: ``UPDATE``): a change committed in between is never overwritten. The
#: caller's rollback undoes the bump when there is no row.
UPDATE_READ = f"""
WITH ts AS ({BUMP.format(condition='')})
UPDATE cliquet_records AS r SET last_modified = ts.last_modified, data = %(data)s FROM ts
 WHERE r.parent_id = %(parent_id)s AND r.collection_id = %(collection_id)s AND r.id = %(id)s
   AND NOT r.deleted AND r.last_modified = %(expected)s
RETURNING r.last_modified
"""

LOCK_LIVE = (
    "SELECT last_modified FROM cliquet_records WHERE parent_id = %s AND collection_id = %s AND id = %s "
    "AND NOT deleted"
)

LOCK_SCOPE = "SELECT 1 FROM cliquet_timestamps WHERE parent_id = %s AND collection_id = %s FOR UPDATE"

COLLECTION_TIMESTAMP = "SELECT last_modified FROM cliquet_timestamps WHERE parent_id = %s AND collection_id = %s"

INIT_TIMESTAMP = f"""
INSERT INTO cliquet_timestamps AS t (parent_id, collection_id, last_modified)
VALUES (%s, %s, {NOW_MS})
ON CONFLICT (parent_id, collection_id) DO UPDATE SET last_modified = t.last_modified
RETURNING last_modified
"""
