"""From a validated portable query to one SQL statement of the PostgreSQL
indexer (see :mod:`cliquet_indexing.postgresql.analysis` for the columns).

Every clause becomes a boolean expression on the index row ``i`` that
PostgreSQL can answer from an index where one fits:

* ``match``, ``match_phrase``, ``multi_match`` → ``i.words @@ tsquery`` (GIN);
* ``term``, ``terms`` → ``i.leaves @> {"path": [value]}`` (GIN, ``jsonb_path_ops``);
* ``exists`` → ``i.fields @> ARRAY[path]`` (GIN);
* ``range``, ``prefix`` → a JSON path filter on the path's leaves
  (``jsonb_path_exists``, values passed as variables), checked on the
  candidates the other conditions leave;
* the read scope → ``i.principals && ARRAY[principals]`` (GIN).

Sort keys are the first (ascending) or last (descending) leaf of the path,
ordered numbers first, then strings by code point, missing last; ties by
record id. Without a sort, full-text queries order by ``ts_rank``.
"""

from __future__ import annotations

import json

from cliquet_indexing.postgresql.analysis import lexeme, quote
from cliquet_indexing.query import tokens

TEXT_CLAUSES = ("match", "match_phrase", "multi_match")
_RANGE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _path(field: str) -> str:
    """The JSON path of a leaf list (field names are validated: ``[A-Za-z0-9_.-]``)."""
    return f'$."{field}"[*]'


class Compiler:
    """Compiles the clauses of one search into SQL with ``%s`` parameters."""

    def __init__(self):
        self.params: list = []
        #: the tsqueries of the full-text clauses (for ``ts_rank``)
        self.texts: list[str] = []

    def param(self, value) -> str:
        """Add a parameter; return its placeholder."""
        self.params.append(value)
        return "%s"

    # -- full text ------------------------------------------------------------------

    def tsquery(self, clause) -> str | None:
        """Return the ``tsquery`` literal of a full-text clause (``None``: no word)."""
        name, body = next(iter(clause.items()))
        if name == "multi_match":
            words = tokens(body["query"])
            fields = [None] if "*" in body["fields"] else list(dict.fromkeys(body["fields"]))
            if not words:
                return None
            per_word = ["(" + " | ".join(quote(lexeme(f, w)) for f in fields) + ")" for w in words]
            return (" & " if body["operator"] == "and" else " | ").join(per_word)
        field, options = next(iter(body.items()))
        words = tokens(options["query"])
        if not words:
            return None
        lexemes = [quote(lexeme(field, w)) for w in words]
        if name == "match_phrase":
            return " <-> ".join(lexemes)
        return (" & " if options["operator"] == "and" else " | ").join(lexemes)

    # -- clauses ---------------------------------------------------------------------

    def condition(self, clause, negated: bool = False) -> str:
        """Return the SQL boolean expression of ``clause`` (never NULL)."""
        name, body = next(iter(clause.items()))
        if name == "match_all":
            return "TRUE"
        if name in TEXT_CLAUSES:
            query = self.tsquery(clause)
            if query is None:
                return "FALSE"
            if not negated:
                self.texts.append(query)
            return f"i.words @@ {self.param(query)}::tsquery"
        if name == "bool":
            return self.bool_condition(body, negated)
        if name == "exists":
            return f"i.fields @> ARRAY[{self.param(body['field'])}::text]"
        field, options = next(iter(body.items()))
        if name == "term":
            return f"i.leaves @> {self.param(json.dumps({field: [options['value']]}))}::jsonb"
        if name == "terms":
            if not options:
                return "FALSE"
            return "(" + " OR ".join(f"i.leaves @> {self.param(json.dumps({field: [v]}))}::jsonb"
                                     for v in options) + ")"
        if name == "range":
            tests = " && ".join(f"@ {_RANGE[op]} $v{op}" for op in options)
            variables = json.dumps({f"v{op}": bound for op, bound in options.items()})
            return (f"jsonb_path_exists(i.leaves, {self.param(f'{_path(field)} ? ({tests})')}::jsonpath, "
                    f"{self.param(variables)}::jsonb)")
        if name == "prefix":
            return (f"jsonb_path_exists(i.leaves, {self.param(f'{_path(field)} ? (@ starts with $p)')}::jsonpath, "
                    f"{self.param(json.dumps({'p': options['value']}))}::jsonb)")
        raise ValueError(f"not a portable clause: {name}")  # pragma: no cover - validated before

    def bool_condition(self, body, negated: bool = False) -> str:
        """Return the expression of a ``bool`` clause."""
        parts = [f"({self.condition(c, negated)})" for c in body["must"] + body["filter"]]
        parts += [f"NOT ({self.condition(c, not negated)})" for c in body["must_not"]]
        minimum = body["minimum_should_match"]
        if minimum > 0:
            if minimum > len(body["should"]):
                return "FALSE"
            should = [self.condition(c, negated) for c in body["should"]]
            if minimum == 1:
                parts.append("(" + " OR ".join(f"({s})" for s in should) + ")")
            else:
                total = " + ".join(f"(CASE WHEN {s} THEN 1 ELSE 0 END)" for s in should)
                parts.append(f"({total}) >= {int(minimum)}")
        return " AND ".join(parts) if parts else "TRUE"

    # -- order -----------------------------------------------------------------------

    def order(self, sort: list) -> tuple[list[str], list[tuple[str, str]]]:
        """Return the order of ``sort`` (then relevance): the values to read
        from each matching row ``i`` (the sort leaf of a path, the rank),
        named ``v0``, ``v1``… in that order, and the sort keys on them as
        ``(expression, direction)`` pairs. Ties go by record id, then parent id."""
        values, keys = [], []
        for item in sort:
            field, direction = next(iter(item.items()))
            # field names are validated ([A-Za-z0-9_.-]): safe as a literal, and one per key
            values.append(f"(i.leaves -> '{field}' -> {0 if direction == 'asc' else -1})")
            leaf = f"v{len(values) - 1}"
            way = "ASC" if direction == "asc" else "DESC"
            keys += [(f"({leaf} IS NULL)", "ASC"),
                     (f"(jsonb_typeof({leaf}) = 'string')", way),
                     (f"(CASE jsonb_typeof({leaf}) WHEN 'number' THEN ({leaf})::numeric "
                      f"WHEN 'boolean' THEN ({leaf})::boolean::int END)", way),
                     (f"(CASE WHEN jsonb_typeof({leaf}) = 'string' THEN {leaf} #>> '{{}}' END) COLLATE \"C\"", way)]
        if not sort and self.texts:
            rank = " | ".join(f"({t})" for t in self.texts)
            values.append(f"ts_rank(i.words, {self.param(rank)}::tsquery)")
            keys.append((f"v{len(values) - 1}", "DESC"))
        return values, keys
