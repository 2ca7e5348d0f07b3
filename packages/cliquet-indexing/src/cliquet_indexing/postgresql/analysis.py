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
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def sort_rank(value) -> tuple:
    """The order of leaves of one path: numbers and booleans (as 0/1) by
    value, then strings by code point (as SQLite compares them)."""
    if isinstance(value, str):
        return (1, 0, value)
    return (0, float(value) if not isinstance(value, int) or isinstance(value, bool) else value, "")


def analyse(record: dict) -> tuple[str, str, list]:
    """Return ``(tsvector literal, leaves JSON, paths of the leaves)`` for ``record``."""
    positions: dict = {}
    bare: set = set()
    leaves: dict = {}
    position, budget = 1, MAX_WORDS_BYTES
    for path, value in flatten(record):
        leaves.setdefault(path, []).append(value)
        if isinstance(value, (bool, int, float)) or budget <= 0:
            continue
        for word in tokens(str(value)):
            lex = lexeme(path, word)
            found = positions.get(lex)
            if found is None:
                budget -= len(lex.encode()) + len(word.encode()) + 20
                if budget <= 0:
                    break
                found = positions[lex] = []
                bare.add(lexeme(None, word))
            if len(found) < 256:
                budget -= 2
                found.append(min(position, MAX_POSITION))
            position += 1
        position += 1  # a gap: phrases never span two values
    parts = [f"{quote(lex)}:{','.join(map(str, sorted(set(pos))))}" for lex, pos in positions.items()]
    parts += [quote(word) for word in bare]
    for values in leaves.values():
        values.sort(key=sort_rank)
    return " ".join(parts), json.dumps(leaves, ensure_ascii=False, separators=(",", ":")), sorted(leaves)
