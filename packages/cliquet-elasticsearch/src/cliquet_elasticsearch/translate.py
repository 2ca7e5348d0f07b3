"""From a search body to the Elasticsearch request.

Two kinds of bodies reach :meth:`ElasticsearchIndexer.search
<cliquet_elasticsearch.indexer.ElasticsearchIndexer.search>`:

Portable queries
    Bodies that use only the portable subset
    (:mod:`cliquet_indexing.query`) are validated exactly as every indexer
    validates them and translated so that Elasticsearch gives the answers the
    contract suite pins, whatever field types the index holds:

    * full text (``match``, ``match_phrase``, ``multi_match``) only looks at
      string fields (``text``); ``multi_match`` on ``*`` means every string
      field of the index, and its words may be spread across the fields
      (``cross_fields``);
    * exact clauses pick the sub-field by the *kind* of the value: a string
      is compared with ``field.keyword`` (exact, case-sensitive, by code
      point), a number with the ``double`` field, a boolean with the
      ``boolean`` field; a value of another kind than the field's matches
      nothing (``term {"views": "42"}`` does not find ``42``);
    * sorts use the same sub-fields, missing values last, ties by record id.

Elasticsearch DSL
    A body using anything outside the portable subset (another query clause,
    ``aggs``, ``highlight``, …) is passed through as it is, field names being
    the records' own (``title``, ``title.keyword``, ``author.age``). What
    could reach past the caller's read scope is refused with a 400: ``global``
    and ``significant_*`` aggregations, ``terms`` aggregations with
    ``min_doc_count: 0``, suggesters, queries that read other
    documents or indexes (``terms`` lookups, ``more_like_this`` on stored
    documents, ``percolate``) and the reserved ``_cliquet`` fields.

Either way the caller's scope is a ``terms`` filter *inside* the query
(:func:`scoped`), so totals, pages and aggregations only ever count what the
caller may read.

Limits
    Portable bodies are bounded by the portable validator itself
    (:class:`~cliquet_indexing.query.Limits`), other DSL by the shape of its
    JSON (:func:`~cliquet_indexing.query.check_bounds`) before it is walked,
    then by Elasticsearch's own limits (what it refuses is a 400). Every
    search carries the service's ``timeout`` (:func:`timeout`; a ``timeout``
    in the body is replaced by it) and a search that timed out is refused
    (:func:`check_response`) rather than answered with partial results.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from cliquet_indexing import query as portable
from cliquet_indexing.query import InvalidQuery

from cliquet_elasticsearch.mapping import KEYWORD, META

__all__ = ["RAW", "validate", "translate", "sort_clauses", "scoped", "is_portable", "timeout", "check_response"]

#: the key under which a validated pass-through body travels to ``search``.
RAW = "elasticsearch"
#: ``match_none`` — what a clause that can match nothing becomes.
NOTHING = {"match_none": {}}
#: top-level keys of the Elasticsearch search body that pass through.
RAW_TOP_LEVEL = frozenset({
    "query", "sort", "size", "from", "aggs", "aggregations", "post_filter", "highlight", "min_score",
    "search_after", "track_scores", "collapse", "rescore", "timeout", "terminate_after",
    "track_total_hits", "explain",
})
#: aggregation types that look past the query (the whole index).
FORBIDDEN_AGGREGATIONS = frozenset({"global", "significant_terms", "significant_text"})
#: query clauses that read other documents or indexes.
FORBIDDEN_CLAUSES = frozenset({"percolate"})
NUMBER_TYPES = frozenset({"double", "float", "half_float", "scaled_float", "long", "integer", "short",
                          "byte", "unsigned_long"})

#: ``field path -> mapping type`` (``None`` when the index has no such field).
FieldTypes = Callable[[str], Optional[str]]


# -- which body is which ---------------------------------------------------------------

def _portable_clause(clause: Any) -> bool:
    if not isinstance(clause, dict) or len(clause) != 1:
        return True  # malformed: let the portable validator say why
    name, body = next(iter(clause.items()))
    if name not in portable.CLAUSES:
        return False
    if name == "bool" and isinstance(body, dict):
        for key in portable.BOOL_KEYS:
            children = body.get(key, [])
            children = [children] if isinstance(children, dict) else children
            if isinstance(children, list) and not all(_portable_clause(c) for c in children):
                return False
    return True


def is_portable(body: Any) -> bool:
    """Tell whether ``body`` stays within the portable vocabulary (its
    top-level keys and clause names; not whether it is well-formed)."""
    if not isinstance(body, dict):
        return True
    if any(key not in portable.TOP_LEVEL for key in body):
        return False
    return "query" not in body or _portable_clause(body["query"])


def _error(name: str, description: str) -> InvalidQuery:
    return InvalidQuery([{"location": "body", "name": name, "description": description}])


def _walk(value: Any, path: str):
    """Yield ``(path, key, child)`` for every key of nested objects and lists."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield path, key, child
            yield from _walk(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _walk(child, f"{path}.{i}")


def _check_aggregations(aggs: Any, path: str) -> None:
    if not isinstance(aggs, dict):
        raise _error(path, "must be an object")
    for name, spec in aggs.items():
        if not isinstance(spec, dict):
            raise _error(f"{path}.{name}", "must be an object")
        for kind, body in spec.items():
            if kind in FORBIDDEN_AGGREGATIONS:
                raise _error(f"{path}.{name}.{kind}",
                             "this aggregation looks past the query and the read scope: not allowed")
            if kind == "terms" and isinstance(body, dict) and body.get("min_doc_count") == 0:
                raise _error(f"{path}.{name}.{kind}.min_doc_count",
                             "0 would list values of records outside the read scope: not allowed")
            if kind in ("aggs", "aggregations"):
                _check_aggregations(body, f"{path}.{name}.{kind}")


def _check_raw(body: dict, max_size: int, limits: Optional[portable.Limits] = None) -> dict:
    portable.check_bounds(body, limits)  # before any recursive walk
    for key in body:
        if key not in RAW_TOP_LEVEL:
            raise _error(key, f"unknown or not allowed here (expected one of {', '.join(sorted(RAW_TOP_LEVEL))})")
    size, start = body.get("size", portable.DEFAULT_SIZE), body.get("from", 0)
    for name, value, maximum in (("size", size, max_size), ("from", start, None)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _error(name, "must be an integer >= 0")
        if maximum is not None and value > maximum:
            raise _error(name, f"must be <= {maximum}")
    if start + size > portable.MAX_WINDOW:
        raise _error("from", f"from + size must be <= {portable.MAX_WINDOW}")
    if "query" in body and not isinstance(body["query"], dict):
        raise _error("query", "must be an object")
    for key in ("aggs", "aggregations"):
        if key in body:
            _check_aggregations(body[key], key)
    for path, key, child in _walk({k: v for k, v in body.items() if k not in ("size", "from")}, ""):
        where = f"{path}.{key}" if path else str(key)
        if _reserved(key) or _reserved(child):
            raise _error(where, f"the {META} fields are reserved")
        if key in FORBIDDEN_CLAUSES or key in ("suggest", "_index", "knn"):
            raise _error(where, "reads past the read scope: not allowed")
        if key == "terms" and isinstance(child, dict) and any(
                isinstance(v, dict) and ("index" in v or "id" in v) for v in child.values()):
            raise _error(where, "terms lookups read other documents: not allowed")
        if key == "more_like_this" and isinstance(child, dict):
            items = []
            for side in ("like", "unlike"):
                value = child.get(side, [])
                items += value if isinstance(value, list) else [value]
            if any(isinstance(item, dict) for item in items):
                raise _error(where, "more_like_this on stored documents reads past the read scope: not allowed")
    normalized = {k: v for k, v in body.items() if k not in ("size", "from", "timeout")}
    return {"query": body.get("query", {"match_all": {}}), "sort": [], "size": size, "from": start,
            RAW: normalized}


def validate(body: Any, max_size: int, limits: Optional[portable.Limits] = None) -> dict:
    """Validate a search body: portable bodies as every indexer does, other
    Elasticsearch DSL with the checks above.

    :param limits: the bounds of a search (default: the defaults).
    :raises InvalidQuery: with ``details``.
    """
    if is_portable(body):
        try:
            normalized = portable.validate(body, max_size=max_size, limits=limits)
        except InvalidQuery as exc:
            # Portable clauses with Elasticsearch's other options (``boost``,
            # ``fuzziness``…) are Elasticsearch DSL: let them through.
            if isinstance(body, dict) and all(d["description"].startswith("unknown option")
                                              for d in exc.details):
                return _check_raw(body, max_size, limits)
            raise
        _check_reserved(normalized)
        return normalized
    return _check_raw(body, max_size, limits)


def timeout(limits: portable.Limits) -> str:
    """The ``timeout`` of a search request: ``limits.timeout`` in milliseconds."""
    return f"{max(1, round(limits.timeout * 1000))}ms"


def check_response(response: Any, limits: portable.Limits) -> None:
    """Refuse a search Elasticsearch stopped at its ``timeout`` (its hits
    would be partial, its total wrong).

    :raises InvalidQuery: naming ``cliquet.search_timeout``.
    """
    if response.get("timed_out"):
        raise limits.timed_out()


def _reserved(name: Any) -> bool:
    return isinstance(name, str) and (name == META or name.startswith(META + "."))


def _check_reserved(normalized: dict) -> None:
    """Refuse the reserved fields in a portable query (field names are keys,
    or values of ``exists.field``, ``multi_match.fields`` and ``sort``)."""
    for path, key, child in _walk(normalized, ""):
        where = f"{path}.{key}" if path else str(key)
        values = child if isinstance(child, list) else [child]
        if _reserved(key) or (key in ("field", "fields") and any(_reserved(v) for v in values)):
            raise _error(where, f"the {META} fields are reserved")


# -- portable -> Elasticsearch ------------------------------------------------------------

def _exact_field(field: str, value: Any, types: FieldTypes) -> Optional[str]:
    """The field an exact comparison with ``value`` uses, or ``None`` when the
    kinds differ (the clause then matches nothing)."""
    kind = types(field)
    if isinstance(value, bool):
        return field if kind in (None, "boolean") else None
    if isinstance(value, (int, float)):
        return field if kind is None or kind in NUMBER_TYPES else None
    if kind in (None, "text"):
        return f"{field}.{KEYWORD}"
    if kind == "keyword":
        return field
    return None


def _full_text(field: str, types: FieldTypes) -> bool:
    return types(field) == "text"


def translate(clause: dict, types: FieldTypes, text_fields: Callable[[], list]) -> dict:
    """Translate a *normalized* portable clause to Elasticsearch DSL.

    :param types: the field types of the index (see :data:`FieldTypes`).
    :param text_fields: returns every string field of the index (for
        ``multi_match`` on ``*``).
    """
    name, body = next(iter(clause.items()))
    if name == "match_all":
        return {"match_all": {}}
    if name == "bool":
        out = {key: [translate(c, types, text_fields) for c in body.get(key, [])]
               for key in portable.BOOL_KEYS if body.get(key)}
        out["minimum_should_match"] = body.get("minimum_should_match", 0)
        return {"bool": out}
    if name == "exists":
        return {"exists": {"field": body["field"]}}
    if name == "multi_match":
        fields = body["fields"]
        if "*" in fields:
            fields = text_fields()
        else:
            fields = [f for f in fields if _full_text(f, types)]
        if not fields:
            return NOTHING
        return {"multi_match": {"query": body["query"], "fields": fields, "type": "cross_fields",
                                "operator": body["operator"]}}
    field, spec = next(iter(body.items()))
    if name == "match":
        if not _full_text(field, types):
            return NOTHING
        return {"match": {field: {"query": spec["query"], "operator": spec["operator"]}}}
    if name == "match_phrase":
        if not _full_text(field, types):
            return NOTHING
        return {"match_phrase": {field: {"query": spec["query"]}}}
    if name == "term":
        target = _exact_field(field, spec["value"], types)
        return {"term": {target: {"value": spec["value"]}}} if target else NOTHING
    if name == "prefix":
        target = _exact_field(field, spec["value"], types)
        return {"prefix": {target: {"value": spec["value"]}}} if target else NOTHING
    if name == "terms":
        groups: dict[str, list] = {}
        for value in spec:
            target = _exact_field(field, value, types)
            if target:
                groups.setdefault(target, []).append(value)
        if not groups:
            return NOTHING
        clauses = [{"terms": {target: values}} for target, values in groups.items()]
        return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}
    if name == "range":
        sample = next(iter(spec.values()))
        target = _exact_field(field, sample, types)
        return {"range": {target: dict(spec)}} if target else NOTHING
    raise ValueError(f"not a portable clause: {name}")  # validate() lets none through


def sort_clauses(sort: list, types: FieldTypes) -> list:
    """Translate a normalized portable ``sort``: strings by their keyword
    sub-field, missing values last, ties broken by record id."""
    if not sort:
        return []
    out = []
    for item in sort:
        field, order = next(iter(item.items()))
        kind = types(field)
        if kind == "text":
            target, unmapped = f"{field}.{KEYWORD}", "keyword"
        elif kind is None:
            target, unmapped = field, "keyword"
        else:
            target, unmapped = field, kind
        out.append({target: {"order": order, "missing": "_last", "unmapped_type": unmapped}})
    out.append({f"{META}.rid": {"order": "asc"}})
    return out


def scoped(query: dict, principals: list) -> dict:
    """Wrap ``query`` so that only documents readable by ``principals`` match:
    the scope is a filter inside the query, never a filter on its results."""
    return {"bool": {"must": [query], "filter": [{"terms": {f"{META}.s": list(principals)}}]}}
