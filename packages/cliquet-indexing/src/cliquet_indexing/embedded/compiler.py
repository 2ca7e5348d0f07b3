"""From a validated portable query to one SQL statement of the embedded
indexer.

The statement has a *driver* — the set of candidate documents the engine
walks first — and *probes* checked on each candidate through an index:

* the driver is, by preference, the full-text clauses among the query's
  mandatory clauses (one FTS5 ``MATCH``, which also gives the relevance
  score), else one indexed value clause (``term``, ``terms``, ``prefix``,
  ``range``, ``exists``), else the caller's read scope;
* everything else — the read scope included — becomes correlated
  ``EXISTS`` probes on ``(doc, …)`` indexes, so the cost follows the number
  of candidates, not the size of the resource.

Totals come from ``count(*) OVER ()`` in the same statement, so they are
exact and within the read scope; the JSON of the records is read for the
page only.

Long lists of conditions are joined as balanced trees, so the expression
depth SQLite sees grows with the logarithm of the clauses, not their number;
:func:`bounded` stops a statement that runs past the search timeout and
turns what SQLite refuses to run into :class:`~cliquet_indexing.query.InvalidQuery`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import time
from typing import Callable

from cliquet_indexing.query import InvalidQuery, Limits, tokens

BOOL, NUMBER, STRING = 0, 1, 2
#: ``multi_match`` on every field that holds text.
ANY_FIELD = "*"
#: the preference of value clauses as drivers (most selective first, as a rule).
DRIVER_RANK = {"term": 0, "terms": 1, "prefix": 2, "range": 3, "exists": 4}


def kind_of(value) -> int:
    """Return the kind stored for a scalar JSON value."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, float)):
        return NUMBER
    return STRING


def token(code: int, word: str) -> str:
    """Return the FTS token of ``word`` in the field of ``code``."""
    return f"c{code}x{word}"


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def successor(prefix: str) -> str | None:
    """Return the smallest string greater than every string starting with ``prefix``."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


#: SQLite's answers to a statement too large or complex to run (its
#: compile-time limits): the query's fault, never the engine's.
REFUSALS = ("too large", "too many", "too big", "too complex", "stack overflow", "fts5: ")
#: SQLite VM instructions between two checks of the clock.
PROGRESS_STEPS = 1000


def join(parts: list, operator: str) -> str:
    """Join SQL ``parts`` with ``operator`` as a balanced tree of
    parentheses: depth ``log2(n)``, where a plain chain would be ``n``
    deep (SQLite refuses expressions deeper than 1 000)."""
    if len(parts) == 1:
        return parts[0]
    middle = len(parts) // 2
    return f"({join(parts[:middle], operator)}){operator}({join(parts[middle:], operator)})"


@contextlib.contextmanager
def bounded(conn: sqlite3.Connection, limits: Limits):
    """Run the statements of one search within ``limits.timeout``.

    A progress handler interrupts the statement once the time is up (checked
    every :data:`PROGRESS_STEPS` instructions), which gives the lock back to
    the writers; that, and a statement SQLite refuses as too large, raise
    :class:`~cliquet_indexing.query.InvalidQuery`. Other SQLite errors pass
    (the indexer reports them as the backend's).
    """
    deadline = time.monotonic() + limits.timeout
    state = {"expired": False}

    def progress():
        if time.monotonic() > deadline:
            state["expired"] = True
            return 1
        return 0

    conn.set_progress_handler(progress, PROGRESS_STEPS)
    try:
        yield
    except sqlite3.OperationalError as exc:
        if state["expired"]:
            raise limits.timed_out() from exc
        message = str(exc)
        if any(refusal in message.lower() for refusal in REFUSALS):
            raise InvalidQuery([{"location": "body", "name": "query",
                                 "description": f"the embedded indexer cannot run this query ({message}): "
                                                "make it smaller"}]) from exc
        raise
    finally:
        conn.set_progress_handler(None, 0)


@dataclasses.dataclass
class Fragment:
    """A piece of SQL with its parameters."""

    sql: str
    params: list


class Compiler:
    """Compiles the clauses of one search.

    :param tables: ``{"docs": ..., "vals": ..., "scope": ..., "fts": ...}``
        table names.
    :param code: ``path -> field code or None`` for the searched resource.
    :param text_codes: ``() -> codes of the resource's fields that hold text``.
    """

    def __init__(self, tables: dict, code: Callable[[str], int | None], text_codes: Callable[[], list]):
        self.t = tables
        self.code = code
        self.text_codes = text_codes

    # -- full text ----------------------------------------------------------------------

    def fts_expr(self, clause) -> str | None:
        """Return the FTS5 expression of a full-text clause, or ``None`` when
        it cannot match anything (no word, unknown field)."""
        name, body = next(iter(clause.items()))
        if name == "multi_match":
            words = tokens(body["query"])
            fields = body["fields"]
            if ANY_FIELD in fields:
                codes = self.text_codes()
            else:
                codes = [c for c in (self.code(f) for f in fields) if c is not None]
            if not words or not codes:
                return None
            per_word = ["(" + " OR ".join(_fts_string(token(c, w)) for c in codes) + ")" for w in words]
            return "(" + join(per_word, " AND " if body["operator"] == "and" else " OR ") + ")"
        field, options = next(iter(body.items()))
        code = self.code(field)
        words = tokens(options["query"])
        if code is None or not words:
            return None
        if name == "match_phrase":
            return _fts_string(" ".join(token(code, w) for w in words))
        joiner = " AND " if options["operator"] == "and" else " OR "
        return "(" + join([_fts_string(token(code, w)) for w in words], joiner) + ")"

    # -- value clauses --------------------------------------------------------------------

    def value_condition(self, clause) -> Fragment | None:
        """Return the ``vals`` condition (without the ``doc`` part) of a value
        clause, or ``None`` when it cannot match."""
        name, body = next(iter(clause.items()))
        if name == "exists":
            code = self.code(body["field"])
            return None if code is None else Fragment("field = ?", [code])
        field, options = next(iter(body.items()))
        code = self.code(field)
        if code is None:
            return None
        if name == "term":
            value = options["value"]
            return Fragment("field = ? AND kind = ? AND v = ?", [code, kind_of(value), value])
        if name == "terms":
            parts, params = [], []
            for kind in (BOOL, NUMBER, STRING):
                values = [v for v in options if kind_of(v) == kind]
                if values:
                    parts.append(f"(kind = ? AND v IN ({', '.join('?' * len(values))}))")
                    params += [kind, *values]
            if not parts:
                return None
            if len(parts) == 1:
                return Fragment(f"field = ? AND {parts[0]}", [code, *params])
            return Fragment(f"field = ? AND ({' OR '.join(parts)})", [code, *params])
        if name == "range":
            kind = STRING if any(isinstance(v, str) for v in options.values()) else NUMBER
            sql, params = ["field = ? AND kind = ?"], [code, kind]
            for op, symbol in (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<=")):
                if op in options:
                    sql.append(f"v {symbol} ?")
                    params.append(options[op])
            return Fragment(" AND ".join(sql), params)
        if name == "prefix":
            value = options["value"]
            upper = successor(value)
            sql, params = "field = ? AND kind = ? AND v >= ?", [code, STRING, value]
            if upper is not None:
                sql += " AND v < ?"
                params.append(upper)
            return Fragment(sql, params)
        raise ValueError(f"not a value clause: {name}")  # pragma: no cover - validated before

    # -- boolean expressions (probes) ----------------------------------------------------

    def probe(self, clause) -> Fragment:
        """Return a boolean SQL expression of ``clause`` on the document ``d``."""
        name, body = next(iter(clause.items()))
        if name == "match_all":
            return Fragment("1", [])
        if name in ("match", "match_phrase", "multi_match"):
            expr = self.fts_expr(clause)
            if expr is None:
                return Fragment("0", [])
            return Fragment(f"d.id IN (SELECT rowid FROM {self.t['fts']} WHERE {self.t['fts']} MATCH ?)", [expr])
        if name == "bool":
            return self.bool_probe(body)
        condition = self.value_condition(clause)
        if condition is None:
            return Fragment("0", [])
        return Fragment(f"EXISTS (SELECT 1 FROM {self.t['vals']} INDEXED BY {self.t['vals_doc']} "
                        f"WHERE doc = d.id AND {condition.sql})", condition.params)

    def bool_probe(self, body) -> Fragment:
        """Return the expression of a ``bool`` clause."""
        parts, params = [], []
        for clause in body["must"] + body["filter"]:
            fragment = self.probe(clause)
            parts.append(f"({fragment.sql})")
            params += fragment.params
        for clause in body["must_not"]:
            fragment = self.probe(clause)
            parts.append(f"NOT ({fragment.sql})")
            params += fragment.params
        minimum = body["minimum_should_match"]
        if minimum > 0:
            if minimum > len(body["should"]):
                return Fragment("0", [])
            pieces = []
            for clause in body["should"]:
                fragment = self.probe(clause)
                pieces.append(f"(CASE WHEN {fragment.sql} THEN 1 ELSE 0 END)")
                params += fragment.params
            parts.append(f"({join(pieces, ' + ')}) >= {int(minimum)}")
        if not parts:
            return Fragment("1", [])
        return Fragment(join(parts, " AND "), params)

    # -- the whole statement --------------------------------------------------------------

    @staticmethod
    def mandatory(clause) -> tuple[list, Callable[[list], dict] | None]:
        """Split a top-level clause into its mandatory conjuncts.

        :returns: ``(conjuncts, rebuild)`` where ``rebuild(remaining)``
            returns a clause equivalent to the rest once some conjuncts are
            handled by the driver.
        """
        name, body = next(iter(clause.items()))
        if name != "bool":
            return [clause], lambda rest: {"bool": {"must": rest, "filter": [], "should": [], "must_not": [],
                                                    "minimum_should_match": 0}}
        conjuncts = body["must"] + body["filter"]
        return conjuncts, lambda rest: {"bool": dict(body, must=rest, filter=[])}

    def statement(self, query: dict, resource: str, principals: list, sort_codes: list) -> tuple[str, list, bool]:
        """Return ``(sql, params, scored)`` selecting ``id, total`` rows (the
        records are read for the returned page only).

        :param sort_codes: ``[(code or None, "asc"|"desc")]``.
        """
        t = self.t
        conjuncts, rebuild = self.mandatory(query["query"])
        texts = [c for c in conjuncts if next(iter(c)) in ("match", "match_phrase", "multi_match")]
        values = sorted((c for c in conjuncts if next(iter(c)) in DRIVER_RANK),
                        key=lambda c: DRIVER_RANK[next(iter(c))])
        params: list = []
        scored = False
        holes = ", ".join("?" * len(principals))
        scope_probe = (f"EXISTS (SELECT 1 FROM {t['scope']} s INDEXED BY {t['scope_doc']} "
                       f"WHERE s.doc = d.id AND s.principal IN ({holes}))")
        conditions, condition_params = [scope_probe], list(principals)
        # Field codes belong to one resource, so FTS and value drivers only
        # yield documents of this resource; the scope driver filters it.
        if texts:
            expressions = [self.fts_expr(c) for c in texts]
            if any(e is None for e in expressions):
                return "", [], False
            rank = "" if sort_codes else ", rank AS score"  # BM25 costs: only when it orders
            driver = f"(SELECT rowid AS id{rank} FROM {t['fts']} WHERE {t['fts']} MATCH ?)"
            params.append(join(expressions, " AND "))
            rest = [c for c in conjuncts if c not in texts]
            scored = True
        elif values:
            condition = self.value_condition(values[0])
            if condition is None:
                return "", [], False
            driver = f"(SELECT DISTINCT doc AS id FROM {t['vals']} INDEXED BY {t['vals_value']} WHERE {condition.sql})"
            params += condition.params
            rest = [c for c in conjuncts if c is not values[0]]
        else:
            driver = f"(SELECT DISTINCT doc AS id FROM {t['scope']} WHERE resource = ? AND principal IN ({holes}))"
            params += [resource, *principals]
            rest = conjuncts
            conditions, condition_params = [], []  # the driver is the read scope
        remaining = self.probe(rebuild(rest))
        if remaining.sql != "1":
            conditions.append(f"({remaining.sql})")
            condition_params += remaining.params
        ordered = bool(sort_codes) or (scored and not sort_codes)
        columns = ["d.id AS id", "count(*) OVER () AS total"]
        order = []
        for i, (code, direction) in enumerate(sort_codes):
            if code is None:
                continue
            aggregate = "MIN" if direction == "asc" else "MAX"
            columns.append(f"(SELECT {aggregate}(v) FROM {t['vals']} INDEXED BY {t['vals_doc']} "
                           f"WHERE doc = d.id AND field = {int(code)}) AS k{i}")
            order += [f"(k{i} IS NULL)", f"k{i} {direction.upper()}"]
        if scored and not sort_codes:
            order.append("c.score")
        if ordered:
            # ties: by record id (the docs row is only read when there is an order)
            order += ["d.record_id", "d.parent_id"]
            source = f"{driver} AS c CROSS JOIN {t['docs']} AS d ON d.id = c.id"
        else:
            source = f"{driver} AS d"
        sql = f"SELECT {', '.join(columns)} FROM {source}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        params += condition_params
        if order:
            sql += " ORDER BY " + ", ".join(order)
        return sql, params, scored
