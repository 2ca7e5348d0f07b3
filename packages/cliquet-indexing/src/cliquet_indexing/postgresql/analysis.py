"""How a record becomes index columns for the PostgreSQL indexer, in Python,
so that every indexer cuts and folds text the same way.

Words come from :func:`cliquet_indexing.query.tokens` (the embedded
indexer's analysis: Unicode words, case-folded, no stemming, no accent
folding), not from PostgreSQL's text parser, whose rules (hyphenated words,
e-mail addresses, numbers with dots) differ. The indexer writes the
``tsvector`` and reads the ``tsquery`` as literals: PostgreSQL never
re-analyses them.

Lexemes
    ``<field path>:<word>`` for match, match_phrase and multi_match on named
    fields, with positions (a gap between two values of a field, so that a
    phrase never spans them); the bare ``<word>`` (no position) for
    ``multi_match`` on ``*``. Paths of the queries never hold ``:``, words
    never do: the two kinds never collide. A lexeme longer than PostgreSQL
    keeps (2 047 bytes) is replaced by a digest, on both sides.
Leaves
    ``{path: [scalar leaves, sorted]}``: lists are transparent and ``null``
    leaves absent (as in Elasticsearch and the embedded indexer), so
    ``term`` is a JSONB containment, ``exists`` a key test, and the sort
    key of a path is its first (ascending) or last (descending) leaf.
"""

from __future__ import annotations

import hashlib
import json

import orjson

from cliquet_indexing.embedded.indexer import flatten
from cliquet_indexing.query import tokens

#: positions PostgreSQL stores (larger ones are clamped to it).
MAX_POSITION = 16383
#: longest lexeme kept as it is (bytes); PostgreSQL refuses past 2 047.
MAX_LEXEME = 2000
#: bytes of lexemes and positions one record may use (PostgreSQL refuses a
#: ``tsvector`` past 1 MB): words past it are not indexed, the write goes on.
MAX_WORDS_BYTES = 600_000


def lexeme(field: str | None, word: str) -> str:
    """Return the lexeme of ``word`` in ``field`` (``None``: the record as a whole)."""
    text = word if field is None else f"{field}:{word}"
    if len(text) * 4 > MAX_LEXEME and len(text.encode()) > MAX_LEXEME:
        return "#" + hashlib.sha256(text.encode()).hexdigest()
    return text


def quote(text: str) -> str:
    """Quote a lexeme for a ``tsvector`` or ``tsquery`` literal."""
    if "'" in text or "\\" in text:
        text = text.replace("\\", "\\\\").replace("'", "''")
    return f"'{text}'"


def sort_rank(value) -> tuple:
    """The order of leaves of one path: numbers and booleans (as 0/1) by
    value, then strings by code point (as SQLite compares them)."""
    if isinstance(value, str):
        return (1, 0, value)
    return (0, float(value) if not isinstance(value, int) or isinstance(value, bool) else value, "")


def to_json(value) -> str:
    """``value`` as compact JSON text (orjson; the standard library for what
    orjson refuses, such as integers past 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def text_array(items) -> str:
    """A ``text[]`` literal of ``items`` (each element quoted): cheaper to
    send than a list the driver adapts element by element."""
    return "{" + ",".join('"' + (item.replace("\\", "\\\\").replace('"', '\\"')
                                 if '"' in item or "\\" in item else item) + '"' for item in items) + "}"


def _escape(text: str) -> str:
    """``text`` as it goes between the quotes of a ``tsvector`` literal."""
    if "'" in text or "\\" in text:
        return text.replace("\\", "\\\\").replace("'", "''")
    return text


def analyse(record: dict) -> tuple[str, str, list]:
    """Return ``(tsvector literal, leaves JSON, paths of the leaves)`` for ``record``.

    It runs while the write holds its collection's timestamp (before the
    commit), so the common case takes no detour: words (``\\w+``) hold no
    quote or backslash, a path is escaped once for all its words, and only
    a text longer than :data:`MAX_LEXEME` ÷ 4 characters may need a digest.
    """
    positions: dict = {}  # quoted lexeme -> its positions
    bare: dict = {}  # the words, in order (a dict as an ordered set)
    leaves: dict = {}
    position, budget = 1, MAX_WORDS_BYTES
    short = MAX_LEXEME // 4  # this many characters or fewer never need a digest
    for path, value in flatten(record):
        values = leaves.get(path)
        if values is None:
            leaves[path] = [value]
        else:
            values.append(value)
        if budget <= 0 or isinstance(value, (bool, int, float)):
            continue
        head = f"'{_escape(path)}:"
        path_bytes = (len(path) if path.isascii() else len(path.encode())) + 1
        for word in tokens(str(value)):
            if len(path) + len(word) < short:
                key, lex_bytes = f"{head}{word}'", 0
            else:
                lex = lexeme(path, word)
                key, lex_bytes = quote(lex), len(lex.encode())
            found = positions.get(key)
            if found is None:
                word_bytes = len(word) if word.isascii() else len(word.encode())
                budget -= (lex_bytes or path_bytes + word_bytes) + word_bytes + 20
                if budget <= 0:
                    break
                found = positions[key] = []
                bare[word if len(word) <= short else lexeme(None, word)] = None
            if len(found) < 256:
                budget -= 2
                found.append(position if position < MAX_POSITION else MAX_POSITION)
            position += 1
        position += 1  # a gap: phrases never span two values
    # positions only grow: a lexeme's list is sorted, repeated only where clamped
    parts = [f"{key}:{','.join(map(str, pos if pos[-1] != MAX_POSITION else dict.fromkeys(pos)))}"
             for key, pos in positions.items()]
    if bare:
        parts.append("'" + "' '".join(bare) + "'")
    for values in leaves.values():
        if len(values) > 1:
            values.sort(key=sort_rank)
    return " ".join(parts), to_json(leaves), sorted(leaves)
