"""Reading a list request's querystring: filters, sort, limit, fields.

Every parameter is checked against the resource's schema: an unknown field,
a value of the wrong type or a malformed parameter is a 400 errno 107 whose
``details`` name the parameter (``location: querystring``).

The work a list asks for is bounded: at most ``cliquet.list_max_clauses``
filters and ``_sort`` keys together (and distinct ``_fields``), and
``cliquet.list_max_values`` values
in all its ``in_``/``exclude_`` lists together (thousands of them made a
PostgreSQL list take seconds); past either, a 400 names the limit.

Numbers are read with JSON's grammar (leading zeros tolerated; no ``nan``,
``inf``, ``1_000`` or ``+1``), and must be stored and compared exactly by every backend: integers
within 64 bits, finite floats. Anything else is a 400 naming the parameter.
"""

from __future__ import annotations

import dataclasses
import math
import re

import colander

from cliquet.errors import raise_invalid
from cliquet.storage import COMPARISON, Filter, Sort
from cliquet.utils import strip_quotes

#: querystring prefixes, longest first so ``not_`` isn't read as a field.
_PREFIXES = sorted((op for op in COMPARISON if op.value), key=lambda op: -len(op.value))
_RESERVED = {"_limit", "_sort", "_token", "_since", "_before", "_to", "_fields"}
#: a JSON number, leading zeros tolerated (``007``); no ``nan``, ``inf``, ``1_000`` or ``+1``.
_JSON_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


@dataclasses.dataclass(frozen=True)
class QueryLimits:
    """How much one list may ask for (``cliquet.list_max_clauses`` and
    ``cliquet.list_max_values``)."""

    #: filters and ``_sort`` keys of one list, together.
    max_clauses: int = 64
    #: values of the ``in_``/``exclude_`` lists of one list, together.
    max_values: int = 1024

    @classmethod
    def from_settings(cls, settings) -> "QueryLimits":
        """The limits configured in ``settings`` (defaults for those unset)."""
        return cls(settings.get("cliquet.list_max_clauses") or cls.max_clauses,
                   settings.get("cliquet.list_max_values") or cls.max_values)


def _too_many(name, what, limit, setting):
    raise_invalid("querystring", name, f"At most {limit} {what} in one list (cliquet.{setting})")


def parse_fields(value: str, limits=None) -> list:
    """The distinct fields of a ``_fields`` value, at most
    ``limits.max_clauses`` of them (each is projected out of every record)."""
    limits = limits or QueryLimits()
    fields = list(dict.fromkeys(f for f in value.split(",") if f))
    if len(fields) > limits.max_clauses:
        _too_many("_fields", "fields in _fields", limits.max_clauses, "list_max_clauses")
    return fields


@dataclasses.dataclass
class ListQuery:
    """A parsed list request."""

    filters: list
    sorting: list
    limit: int | None
    token: str | None
    include_deleted: bool
    fields: list | None
    #: the filters and sort in a canonical text form (binds pagination tokens).
    canonical: str
    #: the ``_since`` timestamp, if any.
    since: int | None = None


def request_params(request):
    """The querystring as a multidict, split on ``&`` only.

    WebOb's ``request.GET`` also splits on ``;`` (the parameter cloaking of
    CVE-2021-23336): a proxy and this server would then disagree on what a
    URL asks for.
    """
    params = request.environ.get("cliquet.params")
    if params is None:
        from urllib.parse import parse_qsl

        from webob.multidict import MultiDict

        params = MultiDict(parse_qsl(request.environ.get("QUERY_STRING", ""), keep_blank_values=True))
        request.environ["cliquet.params"] = params
    return params


def parse_number(text: str):
    """Read a JSON number: an ``int`` or a ``float``, within the 64-bit signed range.

    :raises ValueError: for anything else, saying why.
    """
    match = _JSON_NUMBER.fullmatch(text)
    if match is None:
        raise ValueError("not a number")
    if match.group(1) is None and match.group(2) is None:
        value = int(text)
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError("integer outside the 64-bit range")
        return value
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    # One range for every number, as the OpenAPI description declares it:
    # 1e19 and 10000000000000000000 are the same JSON number.
    # (2 ** 63 itself is let through: it is what the float nearest to the
    # largest 64-bit integer reads as.)
    if not _INT64_MIN <= value <= 2 ** 63:
        raise ValueError("number outside the 64-bit range")
    return value


def parse_timestamp(text: str) -> int:
    """An integer timestamp, plain or quoted (as an ``ETag``), within 64 bits."""
    value = int(strip_quotes(text))
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError("integer outside the 64-bit range")
    return value


def native_value(text: str):
    """Guess the JSON value of a querystring value whose field type is
    unknown: ``true``, ``false``, ``null``, a JSON number, or else the text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if _JSON_NUMBER.fullmatch(text):
        return parse_number(text)
    return text


class FieldTypes:
    """How to read querystring values for each field of a resource.

    :param schema: the resource's :class:`~cliquet.resource.schema.ResourceSchema` instance.
    :param id_field: / :param modified_field: the record's own fields.
    """

    def __init__(self, schema, id_field="id", modified_field="last_modified"):
        self.nodes = {child.name: child for child in schema.children}
        self.preserve_unknown = getattr(schema.Options, "preserve_unknown", False)
        self.id_field = id_field
        self.modified_field = modified_field

    def is_known(self, field: str) -> bool:
        """Whether ``field`` (maybe dotted) may be filtered or sorted on."""
        root = field.split(".", 1)[0]
        if root in (self.id_field, self.modified_field):
            return root == field
        if root in self.nodes:
            return "." not in field or isinstance(self.nodes[root].typ, colander.Mapping)
        return self.preserve_unknown

    def convert(self, field: str, text: str):
        """Convert ``text`` to the field's JSON type; ``ValueError`` if it can't be."""
        if field == self.modified_field:
            return parse_timestamp(text)
        if field == self.id_field:
            return text
        node = self.nodes.get(field)
        typ = node.typ if node is not None else None
        if isinstance(typ, colander.String):
            return text
        if isinstance(typ, colander.Boolean):
            if text.lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return text.lower() == "true"
        if isinstance(typ, colander.Int):
            value = parse_number(text)
            if not isinstance(value, int):
                raise ValueError("expected an integer")
            return value
        if isinstance(typ, (colander.Float, colander.Number, colander.Decimal)):
            value = parse_number(text)
            if isinstance(value, float) and value.is_integer() and _INT64_MIN <= value <= _INT64_MAX:
                return int(value)
            return value
        return native_value(text)


def parse_list_query(params, types: FieldTypes, default_sort, max_limit, limits=None) -> ListQuery:
    """Parse ``params`` (a multidict) for a list or delete request.

    :param default_sort: list of :class:`Sort` when ``_sort`` is absent.
    :param max_limit: ``cliquet.paginate_by`` (``None``: no cap).
    :param limits: a :class:`QueryLimits` (default: its defaults).
    """
    limits = limits or QueryLimits()
    if len(params) > limits.max_clauses + len(_RESERVED):
        _too_many(None, "filters and sort keys", limits.max_clauses, "list_max_clauses")
    values = 0
    filters = []
    sorting = None
    limit = max_limit
    token = None
    include_deleted = False
    fields = None
    since = None
    canonical_parts = []
    for name, value in params.items():
        if name in _RESERVED:
            if name == "_limit":
                try:
                    limit = int(value)
                    if limit < 1:
                        raise ValueError
                except ValueError:
                    raise_invalid("querystring", "_limit", "Must be a positive integer")
                if max_limit is not None:
                    limit = min(limit, max_limit)
            elif name == "_sort":
                if value.count(",") + len(filters) >= limits.max_clauses:
                    _too_many("_sort", "filters and sort keys", limits.max_clauses, "list_max_clauses")
                sorting = _parse_sort(value, types)
                canonical_parts.append(f"_sort={value}")
            elif name == "_token":
                token = value
            elif name == "_fields":
                fields = parse_fields(value, limits)
                for field in fields:
                    if not types.is_known(field.split(".", 1)[0]):
                        raise_invalid("querystring", "_fields", f"Unknown field {field!r}")
            else:  # _since, _before, _to
                try:
                    timestamp = parse_timestamp(value)
                except ValueError:
                    raise_invalid("querystring", name, "Must be an integer timestamp (quoted or not)")
                operator = COMPARISON.GT if name == "_since" else COMPARISON.LT
                filters.append(Filter(types.modified_field, timestamp, operator))
                canonical_parts.append(f"{name}={timestamp}")
                if name == "_since":
                    include_deleted = True
                    since = timestamp
            continue
        operator = COMPARISON.EQ
        field = name
        for op in _PREFIXES:
            if name.startswith(op.value):
                operator = op
                field = name[len(op.value):]
                break
        if name.startswith("_") or not types.is_known(field):
            raise_invalid("querystring", name, f"Unknown filter field {field!r}")
        if len(filters) + len(sorting or ()) >= limits.max_clauses:
            _too_many(name, "filters and sort keys", limits.max_clauses, "list_max_clauses")
        if operator in (COMPARISON.IN, COMPARISON.EXCLUDE):
            values += value.count(",") + 1
            if values > limits.max_values:
                _too_many(name, "values in in_ and exclude_ filters", limits.max_values, "list_max_values")
        try:
            if operator in (COMPARISON.IN, COMPARISON.EXCLUDE):
                converted = [types.convert(field, part) for part in value.split(",")]
            else:
                converted = types.convert(field, value)
        except ValueError as exc:
            raise_invalid("querystring", name, f"Invalid value {value!r}: {exc}")
        filters.append(Filter(field, converted, operator))
        canonical_parts.append(f"{name}={value}")
    if sorting is None:
        sorting = list(default_sort)
    if not any(s.field in (types.id_field, types.modified_field) for s in sorting):
        # A total order for keyset pagination; the same direction as the last
        # key, so that an index on (field, id) serves the whole range.
        sorting.append(Sort(types.id_field, sorting[-1].direction if sorting else 1))
    canonical_parts.sort()
    return ListQuery(filters, sorting, limit, token, include_deleted, fields, "&".join(canonical_parts), since)


def _parse_sort(value: str, types: FieldTypes) -> list:
    sorting = []
    for part in value.split(","):
        part = part.strip()
        direction = 1
        if part.startswith("-"):
            direction, part = -1, part[1:]
        elif part.startswith("+"):
            part = part[1:]
        if not part or not types.is_known(part):
            raise_invalid("querystring", "_sort", f"Unknown sort field {part!r}")
        sorting.append(Sort(part, direction))
    return sorting


def project_fields(record: dict, fields: list, always=("id", "last_modified")) -> dict:
    """Return the part of ``record`` named by ``fields`` (dotted paths allowed)."""
    result = {key: record[key] for key in always if key in record}
    for path in fields:
        parts = path.split(".")
        source, target = record, result
        for i, part in enumerate(parts):
            if not isinstance(source, dict) or part not in source:
                break
            if i == len(parts) - 1:
                target[part] = source[part]
            else:
                source = source[part]
                target = target.setdefault(part, {})
    return result
