"""How records are laid out in Elasticsearch: index names and mappings.

One index per resource (and per ``cliquet.indexing_prefix``), reached through
an alias:

* the alias is ``{prefix}{resource}`` (a resource name outside
  ``[a-z0-9_]`` becomes ``~`` and its UTF-8 in hex, since index names are
  lowercase);
* the index behind it is ``{alias}.v{SCHEMA_VERSION}``. Every write goes
  through the alias with ``require_alias``, so a write to a resource whose
  index was removed fails instead of letting Elasticsearch auto-create an
  index with default mappings; the indexer then creates the index and
  retries.

A document is the record itself, its fields at the top level — so the
Elasticsearch DSL that passes through the search endpoint names fields as
the records do — plus one reserved object, ``_cliquet``:

``_cliquet.p`` (keyword)
    the parent id (the record's storage scope).
``_cliquet.rid`` (keyword)
    the record id (the tie-breaker of sorts).
``_cliquet.s`` (keyword, many values)
    the read principals: the search's scope filter is a ``terms`` on it.
``_cliquet.raw`` (not indexed)
    the record, for the rare one Elasticsearch cannot index as fields (a
    value whose type conflicts with the field's mapping, an empty field
    name, too many fields): it is kept whole here, found by ``match_all``
    and the scope, returned as it was — but its fields are not searchable.

Explicit dynamic templates fix how record fields are mapped: strings as
``text`` (standard analyzer: Unicode words, lowercased) with a ``keyword``
sub-field (``title.keyword``: exact values, ``prefix``, ranges and sorts
by code point); every number as ``double`` (an integer field that later
sees ``4.5`` stays exact, integers are exact up to 2**53), without
coercion; no date or numeric detection in strings.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["SCHEMA_VERSION", "META", "KEYWORD", "alias_name", "index_name", "doc_id", "index_body",
           "mapping_body"]

#: bumped when the mapping changes in a way existing indexes can't follow.
SCHEMA_VERSION = 1
#: the reserved object holding the indexer's own fields.
META = "_cliquet"
#: the exact-value sub-field of every string field.
KEYWORD = "keyword"
#: longest string (in characters) kept in the ``keyword`` sub-field: Lucene
#: terms are limited to 32 766 bytes, 4 bytes per character at worst.
IGNORE_ABOVE = 8191

_PLAIN = re.compile(r"^[a-z0-9_]+$")
_NUMBER_TYPES = ("long", "double")


def alias_name(prefix: str, resource_name: str) -> str:
    """Return the alias through which ``resource_name`` is read and written."""
    if _PLAIN.match(resource_name):
        return f"{prefix}{resource_name}"
    return f"{prefix}~{resource_name.encode('utf-8').hex()}"


def index_name(alias: str) -> str:
    """Return the concrete index behind ``alias``."""
    return f"{alias}.v{SCHEMA_VERSION}"


def doc_id(parent_id: str, record_id: str) -> str:
    """Return the ``_id`` of a record: a digest of ``(parent_id, record_id)``,
    bounded in length whatever the ids are."""
    key = f"{parent_id}\x00{record_id}".encode("utf-8")
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def mapping_body(prefix: str, resource_name: str) -> dict:
    """Return the mappings of a resource's index (also sent by
    ``initialize_schema`` to bring existing indexes up to date)."""
    templates = [
        {"cliquet_strings": {
            "match_mapping_type": "string",
            "mapping": {"type": "text",
                        "fields": {KEYWORD: {"type": "keyword", "ignore_above": IGNORE_ABOVE}}},
        }},
    ]
    for kind in _NUMBER_TYPES:
        templates.append({f"cliquet_{kind}s": {
            "match_mapping_type": kind,
            "mapping": {"type": "double", "coerce": False},
        }})
    return {
        "dynamic": True,
        "date_detection": False,
        "numeric_detection": False,
        "_meta": {"cliquet": {"prefix": prefix, "resource": resource_name, "schema": SCHEMA_VERSION}},
        "dynamic_templates": templates,
        "properties": {
            META: {"properties": {
                "p": {"type": "keyword"},
                "rid": {"type": "keyword"},
                "s": {"type": "keyword"},
                "raw": {"type": "object", "enabled": False},
            }},
        },
    }


def index_body(prefix: str, resource_name: str, shards: int = 1, replicas: str = "0-1") -> dict:
    """Return the ``settings``, ``mappings`` and ``aliases`` to create a
    resource's index with.

    :param shards: primary shards (one keeps relevance scores exact and is
        plenty below tens of millions of records).
    :param replicas: ``auto_expand_replicas`` (``"0-1"``: a copy on a second
        node when there is one) or a number of replicas.
    """
    settings = {"number_of_shards": shards}
    if "-" in str(replicas) or str(replicas) == "false":
        settings["auto_expand_replicas"] = str(replicas)
    else:
        settings["number_of_replicas"] = int(replicas)
    alias = alias_name(prefix, resource_name)
    return {"settings": settings, "mappings": mapping_body(prefix, resource_name),
            "aliases": {alias: {"is_write_index": True}}}
