"""The portable query language: a subset of the Elasticsearch query DSL that
every indexer answers the same way, and its validator.

:func:`validate` checks a search request body and returns it *normalized*:
every shorthand expanded, ``sort``, ``size`` and ``from`` present. The
normalized body is still valid Elasticsearch DSL, so a backend on
Elasticsearch can send it as it is.

Normalized clauses (``F`` is a field name, a dotted path into the record)::

    {"match_all": {}}
    {"match": {F: {"query": str, "operator": "or" | "and"}}}
    {"match_phrase": {F: {"query": str}}}
    {"multi_match": {"query": str, "fields": [F or "*", ...], "operator": "or" | "and"}}
    {"term": {F: {"value": str | int | float | bool}}}
    {"terms": {F: [str | int | float | bool, ...]}}
    {"range": {F: {"gt" | "gte" | "lt" | "lte": int | float | str, ...}}}
    {"exists": {"field": F}}
    {"prefix": {F: {"value": str}}}
    {"bool": {"must": [...], "filter": [...], "should": [...], "must_not": [...],
              "minimum_should_match": int}}

A malformed body raises :class:`InvalidQuery`, whose ``details`` name each
problem (the endpoint answers ``400`` with errno ``107``).

Every search is bounded by :class:`Limits` (the ``cliquet.search_*``
settings): clauses, nesting, words, ``terms`` values, string lengths and
numbers are checked here, before any engine sees the query, so every
indexer refuses the same bodies with the same errors; ``timeout`` bounds
the work of the engine itself.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

_ABSENT = object()  # a required option that was not given

__all__ = ["InvalidQuery", "Limits", "validate", "check_bounds", "simple_query", "tokens", "DEFAULT_SIZE",
           "DEFAULT_MAX_SIZE", "MAX_WINDOW", "CLAUSES", "INT64"]

#: ``size`` when the body does not say.
DEFAULT_SIZE = 10
#: default of ``cliquet.search_max_size``.
DEFAULT_MAX_SIZE = 100
#: ``from + size`` may not exceed this (Elasticsearch's default result window).
MAX_WINDOW = 10_000

CLAUSES = ("match_all", "match", "match_phrase", "multi_match", "term", "terms", "range", "exists",
           "prefix", "bool")
TOP_LEVEL = ("query", "sort", "size", "from")
BOOL_KEYS = ("must", "filter", "should", "must_not")
RANGE_KEYS = ("gt", "gte", "lt", "lte")
#: dotted paths of letters, digits, ``_`` and ``-``.
FIELD = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
#: how text is cut into words, by every indexer (Unicode letters and digits).
WORD = re.compile(r"\w+", re.UNICODE)
#: integers in a query fit in 64 bits (what engines store exactly).
INT64 = (-(2 ** 63), 2 ** 63 - 1)
#: problems listed in one answer at most (a body may hold thousands).
MAX_DETAILS = 20
#: the surrogate code points, which no UTF-8 text holds.
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclasses.dataclass(frozen=True)
class Limits:
    """The bounds of one search (``cliquet.search_<name>`` settings).

    :param max_clauses: query clauses in a body, counting every clause
        (``bool`` included), every field a ``multi_match`` names and every
        sort key.
    :param max_depth: how deep ``bool`` clauses nest.
    :param max_words: words of every full-text clause (``match``,
        ``match_phrase``, ``multi_match``) of a body, together.
    :param max_terms: values of every ``terms`` clause of a body, together.
    :param max_string_length: characters of any string of the query (values,
        text, field names). The default, 8191, is also the longest value the
        Elasticsearch indexer keeps for exact comparisons.
    :param timeout: seconds an engine may work on one search; past it the
        search is stopped and refused.
    """

    max_clauses: int = 256
    max_depth: int = 20
    max_words: int = 256
    max_terms: int = 1024
    max_string_length: int = 8191
    timeout: float = 1.0

    #: ``field name -> setting name`` (the errors name the setting).
    SETTINGS = {"max_clauses": "search_max_clauses", "max_depth": "search_max_depth",
                "max_words": "search_max_words", "max_terms": "search_max_terms",
                "max_string_length": "search_max_string_length", "timeout": "search_timeout"}

    @classmethod
    def from_settings(cls, settings) -> "Limits":
        """Read the limits from loaded settings (``cliquet.search_*``); a
        missing one keeps its default."""
        values = {}
        for field, name in cls.SETTINGS.items():
            value = settings.get(f"cliquet.{name}")
            if value is not None:
                values[field] = value
        return cls(**values)

    def describe(self, field: str) -> str:
        """Return ``"at most N … (cliquet.search_…)"`` for an error."""
        what = {"max_clauses": "clauses (query clauses, multi_match fields and sort keys) in a search",
                "max_depth": "levels of nested bool clauses",
                "max_words": "words in the full-text clauses of a search",
                "max_terms": "values in the terms clauses of a search",
                "max_string_length": "characters in a string of a search"}[field]
        return f"at most {getattr(self, field)} {what} (cliquet.{self.SETTINGS[field]})"

    def timed_out(self) -> "InvalidQuery":
        """The error of a search the engine stopped after :attr:`timeout`."""
        return InvalidQuery([{"location": "body", "name": "query",
                              "description": f"the search took longer than {self.timeout:g} s "
                                             f"(cliquet.{self.SETTINGS['timeout']}): make it narrower"}])


class _TooLarge(Exception):
    """A limit was passed: validation stops there (raised inside the checker)."""


def tokens(text: str) -> list[str]:
    """Return the lowercase words of ``text`` (what ``match`` compares): cut
    into words first, then each word case-folded."""
    folded = text.casefold()
    if len(folded) == len(text):  # no character folded into several: same cuts
        return WORD.findall(folded)
    return [word.casefold() for word in WORD.findall(text)]


class InvalidQuery(ValueError):
    """The search body is malformed.

    :param details: ``[{"location": "body", "name": path, "description": text}]``.
    """

    def __init__(self, details: list[dict]):
        self.details = details
        super().__init__("; ".join(f"{d['name']}: {d['description']}" for d in details))


class _Checker:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.details: list[dict] = []
        self.problems = 0
        self.used = {"max_clauses": 0, "max_words": 0, "max_terms": 0}

    def error(self, path: str, description: str):
        self.problems += 1
        if len(self.details) < MAX_DETAILS:
            self.details.append({"location": "body", "name": path or "body", "description": description})

    def raise_problems(self):
        """Raise :class:`InvalidQuery` with what was found (if anything),
        saying how many problems were left out of the list."""
        if self.problems > len(self.details):
            self.details.append({"location": "body", "name": "body",
                                 "description": f"and {self.problems - len(self.details)} more problems"})
        if self.details:
            raise InvalidQuery(self.details)

    def stop(self, path: str, limit: str):
        """A limit was passed: the answer is this one problem, found now."""
        self.details = [{"location": "body", "name": path or "body", "description": self.limits.describe(limit)}]
        self.problems = 1
        raise _TooLarge()

    def spend(self, path: str, limit: str, amount: int = 1):
        """Count ``amount`` against ``limit``; past it, :meth:`stop`."""
        self.used[limit] += amount
        if self.used[limit] > getattr(self.limits, limit):
            self.stop(path, limit)

    def string(self, path, value) -> bool:
        """Check the length and the encoding of a string."""
        if len(value) > self.limits.max_string_length:
            self.stop(path, "max_string_length")
        if not value.isascii() and _SURROGATE.search(value):
            self.error(path, "must be valid Unicode text (no lone surrogate)")
            return False
        return True

    def number(self, path, value) -> bool:
        """Check that a number is an int64 or a finite float."""
        if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
            self.error(path, "integers must be between -2**63 and 2**63-1")
            return False
        if isinstance(value, float) and not math.isfinite(value):
            self.error(path, "must be a finite number")
            return False
        return True

    # -- helpers ------------------------------------------------------------------

    def single_key(self, path, value, what):
        if not isinstance(value, dict):
            self.error(path, f"{what} must be an object")
            return None
        if len(value) != 1:
            self.error(path, f"{what} must have exactly one key")
            return None
        return next(iter(value.items()))

    def field(self, path, name):
        if isinstance(name, str) and not self.string(path, name):
            return False
        if not isinstance(name, str) or not FIELD.match(name):
            self.error(path, f"{name!r} is not a field name (dotted path of letters, digits, _ and -)")
            return False
        return True

    def scalar(self, path, value):
        if isinstance(value, str):
            return self.string(path, value)
        if isinstance(value, bool):
            return True
        if isinstance(value, (int, float)):
            return self.number(path, value)
        self.error(path, "must be a string, a number or a boolean")
        return False

    def text(self, path, value):
        if isinstance(value, str):
            return self.string(path, value)
        self.error(path, "must be a string")
        return False

    def words(self, path, value):
        """Count the words of a full-text query (after :meth:`text`)."""
        self.spend(path, "max_words", len(tokens(value)))

    def options(self, path, body, allowed):
        for key in body:
            if key not in allowed:
                self.error(f"{path}.{key}", f"unknown option (expected one of {', '.join(allowed)})")

    # -- clauses --------------------------------------------------------------------

    def clause(self, path, value, depth=0):
        if depth > self.limits.max_depth:
            self.error(path, f"queries nest at most {self.limits.max_depth} levels "
                             f"(cliquet.{Limits.SETTINGS['max_depth']})")
            return None
        self.spend(path, "max_clauses")
        item = self.single_key(path, value, "a query clause")
        if item is None:
            return None
        name, body = item
        if name not in CLAUSES:
            self.error(f"{path}.{name}", f"unknown query clause (expected one of {', '.join(CLAUSES)})")
            return None
        return getattr(self, "c_" + name)(f"{path}.{name}", body, depth)

    def c_match_all(self, path, body, depth):
        if body != {}:
            if not isinstance(body, dict):
                self.error(path, "must be an object")
            else:
                self.options(path, body, ())
            return None
        return {"match_all": {}}

    def _field_body(self, path, body, what):
        item = self.single_key(path, body, what)
        if item is None:
            return None, None
        name, value = item
        if not self.field(f"{path}.{name}", name):
            return None, None
        return name, value

    def c_match(self, path, body, depth):
        name, value = self._field_body(path, body, "match")
        if name is None:
            return None
        where = f"{path}.{name}"
        operator = "or"
        if isinstance(value, dict):
            self.options(where, value, ("query", "operator"))
            operator = value.get("operator", "or")
            if operator not in ("or", "and"):
                self.error(f"{where}.operator", "must be \"or\" or \"and\"")
            if "query" not in value:
                self.error(f"{where}.query", "is required")
                return None
            value = value["query"]
            where += ".query"
        if not self.text(where, value):
            return None
        self.words(where, value)
        return {"match": {name: {"query": value, "operator": operator}}}

    def _long_form(self, where, value, key):
        """``{field: value}`` or ``{field: {key: value}}``: return ``(value,
        where)``, or ``(_ABSENT, where)`` after reporting a missing ``key``."""
        if not isinstance(value, dict):
            return value, where
        self.options(where, value, (key,))
        if key not in value:
            self.error(f"{where}.{key}", "is required")
            return _ABSENT, where
        return value[key], f"{where}.{key}"

    def c_match_phrase(self, path, body, depth):
        name, value = self._field_body(path, body, "match_phrase")
        if name is None:
            return None
        value, where = self._long_form(f"{path}.{name}", value, "query")
        if value is _ABSENT or not self.text(where, value):
            return None
        self.words(where, value)
        return {"match_phrase": {name: {"query": value}}}

    def c_multi_match(self, path, body, depth):
        if not isinstance(body, dict):
            self.error(path, "must be an object")
            return None
        self.options(path, body, ("query", "fields", "operator"))
        if not self.text(f"{path}.query", body.get("query")):
            return None
        self.words(f"{path}.query", body["query"])
        fields = body.get("fields", ["*"])
        if not isinstance(fields, list) or not fields:
            self.error(f"{path}.fields", "must be a non-empty list of field names")
            return None
        self.spend(f"{path}.fields", "max_clauses", len(fields))
        for i, field in enumerate(fields):
            if field != "*":
                self.field(f"{path}.fields.{i}", field)
        operator = body.get("operator", "or")
        if operator not in ("or", "and"):
            self.error(f"{path}.operator", "must be \"or\" or \"and\"")
        return {"multi_match": {"query": body["query"], "fields": list(fields), "operator": operator}}

    def c_term(self, path, body, depth):
        name, value = self._field_body(path, body, "term")
        if name is None:
            return None
        where = f"{path}.{name}"
        if isinstance(value, dict):
            self.options(where, value, ("value",))
            if "value" not in value:
                self.error(f"{where}.value", "is required")
                return None
            value = value["value"]
            where += ".value"
        if not self.scalar(where, value):
            return None
        return {"term": {name: {"value": value}}}

    def c_terms(self, path, body, depth):
        name, values = self._field_body(path, body, "terms")
        if name is None:
            return None
        where = f"{path}.{name}"
        if not isinstance(values, list):
            self.error(where, "must be a list of values")
            return None
        self.spend(where, "max_terms", len(values))
        if not all([self.scalar(f"{where}.{i}", v) for i, v in enumerate(values)]):
            return None
        return {"terms": {name: list(values)}}

    def c_range(self, path, body, depth):
        name, bounds = self._field_body(path, body, "range")
        if name is None:
            return None
        where = f"{path}.{name}"
        if not isinstance(bounds, dict) or not bounds:
            self.error(where, f"must be an object with at least one of {', '.join(RANGE_KEYS)}")
            return None
        self.options(where, bounds, RANGE_KEYS)
        kinds = set()
        for key, bound in bounds.items():
            if isinstance(bound, bool) or not isinstance(bound, (int, float, str)):
                self.error(f"{where}.{key}", "must be a number or a string")
            elif not self.scalar(f"{where}.{key}", bound):
                continue
            else:
                kinds.add(str if isinstance(bound, str) else float)
        if len(kinds) > 1:
            self.error(where, "bounds must all be numbers or all be strings")
        return {"range": {name: dict(bounds)}}

    def c_exists(self, path, body, depth):
        if not isinstance(body, dict):
            self.error(path, "must be an object")
            return None
        self.options(path, body, ("field",))
        if "field" not in body:
            self.error(f"{path}.field", "is required")
            return None
        if not self.field(f"{path}.field", body["field"]):
            return None
        return {"exists": {"field": body["field"]}}

    def c_prefix(self, path, body, depth):
        name, value = self._field_body(path, body, "prefix")
        if name is None:
            return None
        value, where = self._long_form(f"{path}.{name}", value, "value")
        if value is _ABSENT or not self.text(where, value):
            return None
        return {"prefix": {name: {"value": value}}}

    def c_bool(self, path, body, depth):
        if not isinstance(body, dict):
            self.error(path, "must be an object")
            return None
        self.options(path, body, BOOL_KEYS + ("minimum_should_match",))
        out = {}
        for key in BOOL_KEYS:
            value = body.get(key, [])
            if isinstance(value, dict):
                value = [value]
            if not isinstance(value, list):
                self.error(f"{path}.{key}", "must be a query clause or a list of them")
                continue
            if len(value) > self.limits.max_clauses:  # refused before walking them
                self.spend(f"{path}.{key}", "max_clauses", len(value))
            out[key] = [self.clause(f"{path}.{key}.{i}", v, depth + 1) for i, v in enumerate(value)]
        default = 0 if (out.get("must") or out.get("filter")) else (1 if out.get("should") else 0)
        minimum = body.get("minimum_should_match", default)
        if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
            self.error(f"{path}.minimum_should_match", "must be an integer >= 0")
        elif isinstance(out.get("should"), list):
            # more than there are matches nothing, whatever the number: say it with a small one
            minimum = min(minimum, len(out["should"]) + 1)
        out["minimum_should_match"] = minimum
        return {"bool": out}

    # -- top level ------------------------------------------------------------------

    def sort(self, value):
        if isinstance(value, (str, dict)):
            value = [value]
        if not isinstance(value, list):
            self.error("sort", "must be a list of field names or {field: \"asc\"|\"desc\"}")
            return []
        self.spend("sort", "max_clauses", len(value))
        out = []
        for i, item in enumerate(value):
            where = f"sort.{i}"
            if isinstance(item, str):
                if self.field(where, item):
                    out.append({item: "asc"})
                continue
            pair = self.single_key(where, item, "a sort item")
            if pair is None:
                continue
            name, order = pair
            if isinstance(order, dict):
                self.options(f"{where}.{name}", order, ("order",))
                order = order.get("order", "asc")
            if order not in ("asc", "desc"):
                self.error(f"{where}.{name}", "order must be \"asc\" or \"desc\"")
                continue
            if self.field(where, name):
                out.append({name: order})
        return out

    def integer(self, name, value, maximum=None):
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(name, "must be an integer")
            return False
        if value < 0:
            self.error(name, "must be >= 0")
            return False
        if maximum is not None and value > maximum:
            self.error(name, f"must be <= {maximum}")
            return False
        return True


def validate(body: Any, max_size: int = DEFAULT_MAX_SIZE, limits: Limits | None = None) -> dict:
    """Check a search request body and return it normalized.

    :param body: the decoded JSON body (must be an object; ``{}`` is
        ``match_all``).
    :param max_size: the largest ``size`` allowed.
    :param limits: the bounds of a search (default: :class:`Limits`' defaults).
    :returns: ``{"query": clause, "sort": [{field: order}], "size": int,
        "from": int}``.
    :raises InvalidQuery: listing the problems found (at most
        :data:`MAX_DETAILS`); a passed limit is the only one listed.
    """
    check = _Checker(limits or Limits())
    if not isinstance(body, dict):
        raise InvalidQuery([{"location": "body", "name": "body",
                             "description": "the search body must be a JSON object"}])
    try:
        check.options("", body, TOP_LEVEL)
        check.details = [dict(d, name=d["name"].lstrip(".")) for d in check.details]
        query = check.clause("query", body["query"]) if "query" in body else {"match_all": {}}
        sort = check.sort(body.get("sort", []))
        size = body.get("size", DEFAULT_SIZE)
        start = body.get("from", 0)
        if check.integer("size", size, max_size) and check.integer("from", start, MAX_WINDOW):
            if start + size > MAX_WINDOW:
                check.error("from", f"from + size must be <= {MAX_WINDOW}")
    except _TooLarge:
        pass
    check.raise_problems()
    return {"query": query, "sort": sort, "size": size, "from": start}


def check_bounds(body: Any, limits: Limits | None = None, path: str = "") -> None:
    """Bound any JSON body by shape, for a backend that passes a query
    language of its own through (the Elasticsearch DSL): at most ``3 ×
    max_depth + 10`` levels of nesting, ``4 × max_clauses`` objects,
    ``max_terms`` elements in any list, strings and numbers as in portable
    queries. Walks without recursion.

    :raises InvalidQuery: naming the first bound passed.
    """
    limits = limits or Limits()
    check = _Checker(limits)
    max_depth, max_objects = 3 * limits.max_depth + 10, 4 * limits.max_clauses
    objects = 0
    stack = [(path, body, 0)]
    try:
        while stack:
            where, value, depth = stack.pop()
            if isinstance(value, (dict, list)):
                if depth >= max_depth:
                    raise InvalidQuery([{"location": "body", "name": where or "body",
                                         "description": f"at most {max_depth} levels of nesting "
                                                        f"(3 × cliquet.{Limits.SETTINGS['max_depth']} + 10)"}])
                if isinstance(value, list):
                    if len(value) > limits.max_terms:
                        raise InvalidQuery([{"location": "body", "name": where or "body",
                                             "description": f"at most {limits.max_terms} elements in a list "
                                                            f"(cliquet.{Limits.SETTINGS['max_terms']})"}])
                    items = ((f"{where}.{i}" if where else str(i), child) for i, child in enumerate(value))
                else:
                    objects += 1
                    if objects > max_objects:
                        raise InvalidQuery([{"location": "body", "name": where or "body",
                                             "description": f"at most {max_objects} objects "
                                                            f"(4 × cliquet.{Limits.SETTINGS['max_clauses']})"}])
                    items = []
                    for key, child in value.items():
                        inner = f"{where}.{key}" if where else str(key)
                        check.string(inner, key)
                        items.append((inner, child))
                stack.extend((inner, child, depth + 1) for inner, child in items)
            elif isinstance(value, str):
                check.string(where, value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                check.number(where, value)
    except _TooLarge:
        pass
    check.raise_problems()


def simple_query(words: str) -> dict:
    """The body for ``GET /search/{resource}?q=words``: a ``multi_match`` on
    every field, all words required."""
    return {"query": {"multi_match": {"query": words, "fields": ["*"], "operator": "and"}}}
