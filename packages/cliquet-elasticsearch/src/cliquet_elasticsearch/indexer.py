"""The Elasticsearch indexer: :class:`ElasticsearchIndexer`.

Writes go through the bulk API, pre-serialized with orjson, in requests of
``bulk_size`` records.

Versions. Every write carries the record's ``last_modified`` as an external
version (``version_type=external_gte``), so Elasticsearch itself refuses an
older write than the one it holds, atomically, whatever process sends it; a
refused write (409 ``version_conflict_engine_exception``) is a success that
changed nothing. A deletion is not a ``delete``: Elasticsearch forgets a
deleted document's version after ``index.gc_deletes`` (60 s by default),
after which a late write would bring the record back. It is written as a
*tombstone document* instead — no record fields, no read principal (so no
search ever sees it), ``_cliquet.d`` set — kept until the index is flushed.
The Elasticsearch version of an entry is ``2 × last_modified`` and of a
tombstone ``2 × last_modified + 1``: at equal ``last_modified`` the
deletion wins, entries replace entries. Reads are the search API with the scope filter inside the
query (:mod:`cliquet_elasticsearch.translate`). See
:mod:`cliquet_elasticsearch.mapping` for the index layout.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Iterable, Iterator

import orjson
from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError, TransportError
from elasticsearch import helpers

from cliquet.storage.exceptions import BackendError
from cliquet_indexing.indexer import IndexEntry, IndexerBase, SearchResult, version_of
from cliquet_indexing.query import DEFAULT_MAX_SIZE, InvalidQuery

from cliquet_elasticsearch import mapping, translate
from cliquet_elasticsearch.mapping import META

__all__ = ["ElasticsearchIndexer", "parse_hosts", "REFRESH_POLICIES"]

logger = logging.getLogger(__name__)

#: ``cliquet.elasticsearch_refresh`` values: refresh after each write (the
#: written records are searchable when the call returns), wait for the next
#: periodic refresh, or neither.
REFRESH_POLICIES = ("true", "wait_for", "false")
#: item errors that mean "this document does not fit the mapping".
MAPPING_ERRORS = frozenset({"document_parsing_exception", "mapper_parsing_exception",
                            "illegal_argument_exception", "strict_dynamic_mapping_exception"})
BUSY_RETRIES = 5
#: key of the load time in a cached field-type map (not a field name).
_LOADED_AT = " loaded at"


def parse_hosts(url: str | None) -> list[str]:
    """Split ``cliquet.indexing_url`` into node URLs (commas or spaces
    between them); empty means ``http://127.0.0.1:9200``."""
    hosts = [part for part in (url or "").replace(",", " ").split() if part]
    return hosts or ["http://127.0.0.1:9200"]


@contextlib.contextmanager
def _driver_errors(action: str):
    try:
        yield
    except (ApiError, TransportError) as exc:
        raise BackendError(exc, f"Elasticsearch failed to {action}: {exc}") from exc


def _error_type(error: Any) -> str:
    return error.get("type", "") if isinstance(error, dict) else str(error)


class ElasticsearchIndexer(IndexerBase):
    """An :class:`~cliquet_indexing.indexer.IndexerBase` on Elasticsearch.

    :param url: one node URL or several (``"http://es1:9200,http://es2:9200"``);
        the client spreads requests over them and fails over.
    :param prefix: prefixes every index and alias (must be lowercase).
    :param refresh: one of :data:`REFRESH_POLICIES`.
    :param timeout: seconds a request may take.
    :param bulk_size: records per bulk request.
    :param shards: primary shards of new indexes.
    :param replicas: replicas of new indexes (``"0-1"``: auto-expand).
    :param max_retries: retries of a request on another node after a
        connection error.
    :param client: an ``Elasticsearch`` client to use instead of building one.
    """

    #: seconds the list of string fields (``multi_match`` on ``*``) is cached.
    TEXT_FIELDS_MAX_AGE = 2.0

    def __init__(self, url: str | None = None, prefix: str = "cliquet_", max_size: int = DEFAULT_MAX_SIZE,
                 refresh: str = "true", timeout: float = 10.0, bulk_size: int = 1000, shards: int = 1,
                 replicas: str = "0-1", max_retries: int = 2, client: Elasticsearch | None = None):
        super().__init__(prefix=prefix.lower(), max_size=max_size)
        if refresh not in REFRESH_POLICIES:
            raise ValueError(f"refresh must be one of {', '.join(REFRESH_POLICIES)}, not {refresh!r}")
        self.hosts = parse_hosts(url)
        self.url = ",".join(self.hosts)
        self.refresh = refresh
        self.timeout = timeout
        self.bulk_size = bulk_size
        self.shards = shards
        self.replicas = replicas
        self.client = client or Elasticsearch(self.hosts, request_timeout=timeout, max_retries=max_retries,
                                              retry_on_timeout=False)
        self._types: dict[str, dict] = {}

    # -- names ----------------------------------------------------------------------------

    def alias(self, resource_name: str) -> str:
        """Return the alias of ``resource_name``'s index."""
        return mapping.alias_name(self.prefix, resource_name)

    def _own_indexes(self) -> dict[str, dict]:
        """``{index name: mapping _meta}`` of every index of this prefix."""
        found = self.client.indices.get(index=f"{self.prefix}*", filter_path="*.mappings._meta",
                                        allow_no_indices=True, ignore_unavailable=True)
        own = {}
        for name, body in dict(found).items():
            meta = (body.get("mappings") or {}).get("_meta", {}).get("cliquet", {})
            if meta.get("prefix") == self.prefix:
                own[name] = meta
        return own

    # -- schema ---------------------------------------------------------------------------

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Check the cluster answers and bring the mappings of this prefix's
        indexes up to date (new dynamic templates, new reserved fields).

        Indexes themselves are created on the first write to a resource.
        """
        with _driver_errors("initialize the schema"):
            self.client.cluster.health()
            for name, meta in sorted(self._own_indexes().items()):
                body = mapping.mapping_body(self.prefix, meta.get("resource", ""))
                if dry_run:
                    logger.info("Would update the mapping of Elasticsearch index %s", name)
                    continue
                self.client.indices.put_mapping(index=name, **body)
                logger.info("Updated the mapping of Elasticsearch index %s", name)

    def create_indexes(self, resource_names: Iterable[str], dry_run: bool = False) -> list:
        """Create the indexes of ``resource_names`` that do not exist yet (what
        ``cliquet migrate`` does for every indexed resource); return their names."""
        created = []
        with _driver_errors("create indexes"):
            for resource_name in resource_names:
                alias = self.alias(resource_name)
                if self.client.indices.exists_alias(name=alias):
                    continue
                created.append(mapping.index_name(alias))
                if dry_run:
                    logger.info("Would create Elasticsearch index %s", created[-1])
                else:
                    self._create_index(resource_name)
        return created

    def _create_index(self, resource_name: str) -> None:
        body = mapping.index_body(self.prefix, resource_name, self.shards, self.replicas)
        alias = self.alias(resource_name)
        try:
            self.client.indices.create(index=mapping.index_name(alias), **body)
            logger.info("Created Elasticsearch index %s", mapping.index_name(alias))
        except BadRequestError as exc:
            if _error_type(exc.body.get("error") if isinstance(exc.body, dict) else None) != \
                    "resource_already_exists_exception":
                raise
        self._types.pop(alias, None)

    def flush(self) -> None:
        """Delete every index of this prefix (and nothing else: indexes are
        told apart by the prefix recorded in their mapping)."""
        with _driver_errors("flush"):
            names = sorted(self._own_indexes())
            for start in range(0, len(names), 50):
                self.client.indices.delete(index=",".join(names[start:start + 50]))
        self._types.clear()

    def heartbeat(self) -> bool:
        """``True`` when the cluster answers and is not red."""
        try:
            health = self.client.options(request_timeout=min(self.timeout, 5.0)).cluster.health()
            return health.get("status") in ("green", "yellow")
        except Exception:
            return False

    def close(self) -> None:
        """Close the client's connections."""
        with contextlib.suppress(Exception):
            self.client.close()

    # -- writes -------------------------------------------------------------------------------

    @staticmethod
    def _source(entry: IndexEntry) -> bytes:
        record = entry.record
        meta = {"p": entry.parent_id, "rid": record["id"], "s": list(entry.read_principals)}
        if META in record:
            meta["raw"] = record
            return orjson.dumps({META: meta})
        # The record's own fields at the top level, the reserved object beside.
        return orjson.dumps(record)[:-1] + b',"' + META.encode() + b'":' + orjson.dumps(meta) + b"}"

    @staticmethod
    def _raw_source(entry: IndexEntry) -> bytes:
        meta = {"p": entry.parent_id, "rid": entry.record["id"], "s": list(entry.read_principals),
                "raw": entry.record}
        return orjson.dumps({META: meta})

    @staticmethod
    def _tombstone_source(parent_id: str, record_id: str, version: int) -> bytes:
        return orjson.dumps({META: {"p": parent_id, "rid": record_id, "s": [], "d": version}})

    @staticmethod
    def _action(alias: str, parent_id: str, record_id: str, es_version: int) -> bytes:
        return orjson.dumps({"index": {"_index": alias, "_id": mapping.doc_id(parent_id, record_id),
                                       "version": es_version, "version_type": "external_gte"}})

    def _lines(self, alias: str, item) -> tuple[bytes, bytes]:
        """The bulk action and source of ``item``: ``(entry, raw)`` or
        ``(None, (parent_id, record id, version))`` for a deletion."""
        entry, detail = item
        if entry is None:
            parent_id, record_id, version = detail
            return (self._action(alias, parent_id, record_id, 2 * version + 1),
                    self._tombstone_source(parent_id, record_id, version))
        source = self._raw_source(entry) if detail else self._source(entry)
        return self._action(alias, entry.parent_id, entry.record["id"], 2 * entry.version), source

    def _send(self, lines: list, refresh: bool) -> list:
        """Send one bulk request; return ``[(position, status, error)]`` of
        the failed items."""
        params = {"require_alias": True, "filter_path": "errors,items.*.error,items.*.status"}
        if refresh and self.refresh != "false":
            params["refresh"] = self.refresh
        response = self.client.bulk(operations=lines, **params)
        if not response.get("errors"):
            return []
        failed = []
        for position, item in enumerate(response.get("items", [])):
            result = next(iter(item.values()))
            if "error" in result:
                failed.append((position, result.get("status"), result["error"]))
        return failed

    def index_records(self, resource_name: str, entries: Iterable[IndexEntry]) -> None:
        """Index ``entries`` in bulk requests of :attr:`bulk_size`; a write
        older than the indexed entry or tombstone is refused by
        Elasticsearch and skipped."""
        self._write(resource_name, [(entry, False) for entry in entries], "index records")

    def unindex_records(self, resource_name: str, keys: Iterable[tuple[str, str, int]]) -> None:
        """Replace the entries of ``keys`` by tombstones, in bulk (a key
        indexed at a greater version is left as it is)."""
        items = [(None, (parent_id, record_id, max(int(version), 0))) for parent_id, record_id, version in keys]
        self._write(resource_name, items, "unindex records")

    def _write(self, resource_name: str, items: list, action: str) -> None:
        if not items:
            return
        alias = self.alias(resource_name)
        cached = self._types.get(alias)
        if cached is not None:
            cached[_LOADED_AT] = 0.0  # new fields may appear: reload the string fields
        with _driver_errors(action):
            for start in range(0, len(items), self.bulk_size):
                chunk = items[start:start + self.bulk_size]
                last = start + self.bulk_size >= len(items)
                self._write_chunk(resource_name, alias, chunk, refresh=last)

    def _write_chunk(self, resource_name: str, alias: str, chunk: list, refresh: bool) -> None:
        pending = chunk
        created = False
        for attempt in range(BUSY_RETRIES + 1):
            lines = []
            for item in pending:
                lines.extend(self._lines(alias, item))
            failed = self._send(lines, refresh)
            retry = []
            for position, status, error in failed:
                entry, detail = pending[position]
                kind = _error_type(error)
                record_id = entry.record.get("id") if entry is not None else detail[1]
                if status == 409 or kind == "version_conflict_engine_exception":
                    continue  # older than what the index holds: ignored
                if kind == "index_not_found_exception" and not created:
                    retry.append((entry, detail))
                elif kind in MAPPING_ERRORS and entry is not None and not detail:
                    logger.warning("Record %s of %s does not fit the index mapping (%s): kept, not searchable "
                                   "by field", record_id, resource_name, error.get("reason"))
                    retry.append((entry, True))
                elif status == 429 and attempt < BUSY_RETRIES:
                    retry.append((entry, detail))
                else:
                    raise BackendError(None, f"Elasticsearch refused record {record_id!r} "
                                             f"of {resource_name}: {error}")
            if not retry:
                return
            if any(_error_type(error) == "index_not_found_exception" for _, _, error in failed):
                self._create_index(resource_name)
                created = True
            elif any(status == 429 for _, status, _ in failed):
                time.sleep(0.2 * (attempt + 1))
            pending = retry
        raise BackendError(None, f"Elasticsearch kept refusing records of {resource_name}")

    def indexed_keys(self, resource_name: str) -> Iterator[tuple[str, str, int]]:
        """Yield ``(parent_id, record id, version)`` of every entry, tombstones
        excluded (a scroll)."""
        alias = self.alias(resource_name)
        query = {"query": {"bool": {"must_not": [{"exists": {"field": f"{META}.d"}}]}}}
        with _driver_errors("list indexed records"):
            hits = helpers.scan(self.client, index=alias, query=query, size=2000,
                                source_includes=[f"{META}.p", f"{META}.rid", "last_modified",
                                                 f"{META}.raw.last_modified"],
                                ignore_unavailable=True, allow_no_indices=True)
            for hit in hits:
                source = hit["_source"]
                meta = source[META]
                yield (meta["p"], meta["rid"], version_of(meta.get("raw") or source))

    # -- search -------------------------------------------------------------------------------

    def _load_types(self, alias: str) -> dict:
        try:
            found = self.client.indices.get_mapping(index=alias)
        except NotFoundError:
            return {}
        types: dict[str, str] = {}

        def walk(properties, path):
            for name, spec in properties.items():
                full = f"{path}{name}"
                if full == META:
                    continue
                types[full] = spec.get("type", "object")
                if "properties" in spec:
                    walk(spec["properties"], full + ".")
                for sub, subspec in spec.get("fields", {}).items():
                    types[f"{full}.{sub}"] = subspec.get("type", "object")

        for body in dict(found).values():
            walk(body.get("mappings", {}).get("properties", {}), "")
        types[_LOADED_AT] = time.monotonic()
        self._types[alias] = types
        return types

    def _field_types(self, alias: str):
        """Return ``(lookup, text_fields)`` for a search: the field types of
        the index, from a cache reloaded when a field is missing from it
        (once per search), and for ``text_fields`` when older than
        :attr:`TEXT_FIELDS_MAX_AGE` seconds or after a write of this indexer
        to the resource."""
        cached = self._types.get(alias)
        state = {"fresh": cached is None}
        if cached is None:
            cached = self._load_types(alias)

        def reload():
            state["fresh"] = True
            return self._load_types(alias)

        def lookup(field):
            nonlocal cached
            if field not in cached and not state["fresh"]:
                cached = reload()
            return cached.get(field)

        def text_fields():
            nonlocal cached
            if not state["fresh"] and time.monotonic() - cached.get(_LOADED_AT, 0) > self.TEXT_FIELDS_MAX_AGE:
                cached = reload()
            return sorted(f for f, kind in cached.items() if kind == "text")

        return lookup, text_fields

    def validate_query(self, body: Any) -> dict:
        """Portable bodies as every indexer validates them; any other
        Elasticsearch DSL (queries, ``aggs``, ``highlight``…) passes through,
        minus what could look past the read scope (see
        :mod:`cliquet_elasticsearch.translate`)."""
        return translate.validate(body, self.max_size, self.limits)

    def search(self, resource_name: str, query: dict, principals: Iterable[str]) -> SearchResult:
        """Run ``query`` in ``resource_name``'s index, the read scope a
        filter inside it; Elasticsearch ``aggregations`` come back in
        :attr:`SearchResult.extra`."""
        alias = self.alias(resource_name)
        principals = list(principals)
        with _driver_errors("search"):
            if translate.RAW in query:
                body = dict(query[translate.RAW])
                clause = body.pop("query", None) or {"match_all": {}}
            else:
                types, text_fields = self._field_types(alias)
                clause = translate.translate(query["query"], types, text_fields)
                body = {}
                sort = translate.sort_clauses(query["sort"], types)
                if sort:
                    body["sort"] = sort
            body["query"] = translate.scoped(clause, principals)
            body["timeout"] = translate.timeout(self.limits)
            try:
                response = self.client.search(
                    index=alias, size=query["size"], from_=query["from"], track_total_hits=True,
                    ignore_unavailable=True, allow_no_indices=True,
                    source_excludes=[f"{META}.p", f"{META}.rid", f"{META}.s"], **body)
            except BadRequestError as exc:
                reason = exc.message
                if isinstance(exc.body, dict):
                    error = exc.body.get("error", {})
                    causes = error.get("root_cause") or [error]
                    reason = "; ".join(str(c.get("reason")) for c in causes if isinstance(c, dict))
                raise InvalidQuery([{"location": "body", "name": "query",
                                     "description": f"Elasticsearch refused the query: {reason}"}]) from exc
        translate.check_response(response, self.limits)
        hits = response["hits"]
        records = []
        for hit in hits["hits"]:
            source = hit.get("_source", {})
            meta = source.pop(META, None) or {}
            records.append(meta["raw"] if "raw" in meta else source)
        extra = {}
        if "aggregations" in response:
            extra["aggregations"] = response["aggregations"]
        return SearchResult(records=records, total=hits["total"]["value"], extra=extra)
