"""The records the indexer contract suite searches, with hand-checked answers
in :mod:`cliquet_indexing.testing.queries`."""

from __future__ import annotations

#: the parent id (and only read principal) the articles are indexed for.
OWNER = "alice"

#: ten articles exercising text, numbers, booleans, arrays, nested objects,
#: missing fields and ``null``.
ARTICLES = [
    {"id": "a1", "last_modified": 1001, "title": "Cats and dogs", "body": "The quick brown fox",
     "views": 10, "rating": 4.5, "published": True, "tags": ["pets", "animals"],
     "author": {"name": "Ada", "age": 36}, "status": "draft"},
    {"id": "a2", "last_modified": 1002, "title": "Dog days of summer", "body": "Hot and humid, the dogs sleep",
     "views": 250, "rating": 3.0, "published": True, "tags": ["summer"],
     "author": {"name": "Grace", "age": 85}, "status": "published"},
    {"id": "a3", "last_modified": 1003, "title": "A CATALOGUE of cats", "body": "Category theory for felines",
     "views": 0, "rating": 5.0, "published": False, "tags": ["pets", "maths"],
     "author": {"name": "Ada", "age": 36}, "status": "Published"},
    {"id": "a4", "last_modified": 1004, "title": "Brown fox jumps", "body": "over the lazy dog",
     "views": 99, "rating": 2.25, "published": True, "tags": [],
     "author": {"name": "Linus"}, "status": "published", "note": None},
    {"id": "a5", "last_modified": 1005, "title": "Fox, brown and quick", "body": "A story in three words",
     "views": 100, "published": False, "tags": ["animals"], "status": "archived", "note": "kept"},
    {"id": "a6", "last_modified": 1006, "title": "Résumé café", "body": "Ünïcødé wörds ✓ naïve",
     "views": 7, "rating": 1.0, "published": True, "tags": ["unicode"],
     "author": {"name": "Émile", "age": 40}, "status": "draft"},
    {"id": "a7", "last_modified": 1007, "title": "Numbers 42", "body": "forty-two is 42",
     "views": 42, "rating": 4.5, "published": True, "author": {"name": "Douglas", "age": 49},
     "status": "published"},
    {"id": "a8", "last_modified": 1008, "title": "Untitled", "body": "",
     "views": -5, "rating": 0.5, "published": False, "tags": ["misc"], "status": "draft-v2"},
]


def ids(records) -> list[str]:
    """Return the ids of ``records``."""
    return [r["id"] for r in records]
