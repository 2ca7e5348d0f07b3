"""The portable query language, checked clause by clause on
:data:`~cliquet_indexing.testing.dataset.ARTICLES` (a mixin of
:class:`~cliquet_indexing.testing.contract.IndexerContract`).

Every expected answer below was worked out by hand from the data set; the
semantics they pin are written in ``docs/indexing.rst``.
"""

from __future__ import annotations

import pytest

from cliquet_indexing.query import InvalidQuery, Limits
from cliquet_indexing.testing.dataset import ARTICLES, ids

ALL = set(ids(ARTICLES))

#: (query clause, ids of the matching articles)
CASES = {
    # match: case-insensitive words, on word boundaries, no stemming
    "match one word": ({"match": {"title": "cats"}}, {"a1", "a3"}),
    "match is case-insensitive": ({"match": {"title": "CaTs"}}, {"a1", "a3"}),
    "match needs whole words": ({"match": {"title": "cat"}}, set()),
    "match does not stem": ({"match": {"title": "dog"}}, {"a2"}),
    "match on another field": ({"match": {"body": "dog"}}, {"a4"}),
    "match or by default": ({"match": {"title": "fox summer"}}, {"a2", "a4", "a5"}),
    "match and": ({"match": {"title": {"query": "brown quick", "operator": "and"}}}, {"a5"}),
    "match nested field": ({"match": {"author.name": "ada"}}, {"a1", "a3"}),
    "match unicode": ({"match": {"title": "CAFÉ"}}, {"a6"}),
    "match unicode body": ({"match": {"body": "wörds"}}, {"a6"}),
    "match inside a list": ({"match": {"tags": "animals"}}, {"a1", "a5"}),
    "match unknown field": ({"match": {"nothing": "cats"}}, set()),
    # match_phrase: the words, in order, next to each other
    "phrase": ({"match_phrase": {"title": "brown fox"}}, {"a4"}),
    "phrase ignores case": ({"match_phrase": {"body": "THE LAZY dog"}}, {"a4"}),
    "phrase in the middle": ({"match_phrase": {"body": {"query": "quick brown"}}}, {"a1"}),
    # multi_match: any word (or every word) in any of the fields
    "multi_match all fields": ({"multi_match": {"query": "fox", "fields": ["*"]}}, {"a1", "a4", "a5"}),
    "multi_match listed fields": ({"multi_match": {"query": "cats summer", "fields": ["title"]}},
                                  {"a1", "a2", "a3"}),
    "multi_match and across fields": ({"multi_match": {"query": "ada cats", "fields": ["*"], "operator": "and"}},
                                      {"a1", "a3"}),
    "multi_match tags": ({"multi_match": {"query": "pets", "fields": ["*"]}}, {"a1", "a3"}),
    # term/terms: exact values, case-sensitive, any element of a list
    "term string": ({"term": {"status": "published"}}, {"a2", "a4", "a7"}),
    "term is exact": ({"term": {"status": "draft"}}, {"a1", "a6"}),
    "term is case-sensitive": ({"term": {"author.name": "ada"}}, set()),
    "term nested": ({"term": {"author.name": {"value": "Ada"}}}, {"a1", "a3"}),
    "term integer": ({"term": {"views": 42}}, {"a7"}),
    "term float": ({"term": {"rating": 4.5}}, {"a1", "a7"}),
    "term boolean": ({"term": {"published": False}}, {"a3", "a5", "a8"}),
    "term list element": ({"term": {"tags": "pets"}}, {"a1", "a3"}),
    "terms strings": ({"terms": {"status": ["draft", "archived"]}}, {"a1", "a5", "a6"}),
    "terms numbers": ({"terms": {"views": [0, 7, 1000]}}, {"a3", "a6"}),
    "terms list elements": ({"terms": {"tags": ["maths", "summer"]}}, {"a2", "a3"}),
    "terms empty": ({"terms": {"tags": []}}, set()),
    # range
    "range gt": ({"range": {"views": {"gt": 10}}}, {"a2", "a4", "a5", "a7"}),
    "range gte": ({"range": {"views": {"gte": 10}}}, {"a1", "a2", "a4", "a5", "a7"}),
    "range lt negative": ({"range": {"views": {"lt": 0}}}, {"a8"}),
    "range both": ({"range": {"views": {"gte": 42, "lte": 100}}}, {"a4", "a5", "a7"}),
    "range float, missing excluded": ({"range": {"rating": {"gt": 4}}}, {"a1", "a3", "a7"}),
    "range nested": ({"range": {"author.age": {"gte": 40}}}, {"a2", "a6", "a7"}),
    "range strings": ({"range": {"status": {"gte": "d", "lt": "p"}}}, {"a1", "a6", "a8"}),
    "range last_modified": ({"range": {"last_modified": {"gt": 1005}}}, {"a6", "a7", "a8"}),
    # exists: present, not null, not an empty list
    "exists": ({"exists": {"field": "rating"}}, ALL - {"a5"}),
    "exists ignores null": ({"exists": {"field": "note"}}, {"a5"}),
    "exists ignores empty lists": ({"exists": {"field": "tags"}}, {"a1", "a2", "a3", "a5", "a6", "a8"}),
    "exists nested": ({"exists": {"field": "author.age"}}, {"a1", "a2", "a3", "a6", "a7"}),
    # prefix: the start of the whole value, case-sensitive
    "prefix": ({"prefix": {"status": "draft"}}, {"a1", "a6", "a8"}),
    "prefix is case-sensitive": ({"prefix": {"status": {"value": "pub"}}}, {"a2", "a4", "a7"}),
    "prefix whole value": ({"prefix": {"title": "Cat"}}, {"a1"}),
    "prefix unicode": ({"prefix": {"author.name": "É"}}, {"a6"}),
    # match_all, bool
    "match_all": ({"match_all": {}}, ALL),
    "bool must": ({"bool": {"must": [{"match": {"title": "fox"}}, {"range": {"views": {"gte": 100}}}]}},
                  {"a5"}),
    "bool filter and must_not": ({"bool": {"filter": {"term": {"published": True}},
                                           "must_not": [{"term": {"status": "draft"}}]}}, {"a2", "a4", "a7"}),
    "bool should alone": ({"bool": {"should": [{"term": {"status": "archived"}}, {"term": {"views": 0}}]}},
                          {"a3", "a5"}),
    "bool should beside must is optional": ({"bool": {"must": {"match_all": {}},
                                                      "should": [{"term": {"status": "archived"}}]}}, ALL),
    "bool minimum_should_match": ({"bool": {"should": [{"match": {"title": "fox"}}, {"match": {"title": "brown"}},
                                                       {"match": {"title": "quick"}}],
                                            "minimum_should_match": 2}}, {"a4", "a5"}),
    "bool nested": ({"bool": {"must_not": {"bool": {"should": [{"term": {"tags": "pets"}},
                                                               {"term": {"tags": "summer"}}]}}}},
                    {"a4", "a5", "a6", "a7", "a8"}),
    "bool must_not only": ({"bool": {"must_not": [{"exists": {"field": "rating"}}]}}, {"a5"}),
    "bool empty": ({"bool": {}}, ALL),
}

#: (sort, ids in order)
SORTS = {
    "number asc": (["views"], ["a8", "a3", "a6", "a1", "a7", "a4", "a5", "a2"]),
    "number desc": ([{"views": "desc"}], ["a2", "a5", "a4", "a7", "a1", "a6", "a3", "a8"]),
    "ties by id, missing last (desc)": ([{"rating": {"order": "desc"}}],
                                        ["a3", "a1", "a7", "a2", "a4", "a6", "a8", "a5"]),
    "ties by id, missing last (asc)": (["rating"], ["a8", "a6", "a4", "a2", "a1", "a7", "a3", "a5"]),
    "nested field": (["author.age"], ["a1", "a3", "a6", "a7", "a2", "a4", "a5", "a8"]),
    "two keys": (["status", {"views": "desc"}], ["a3", "a5", "a1", "a6", "a8", "a2", "a4", "a7"]),
    "strings by code point": ([{"title": "asc"}], ["a3", "a4", "a1", "a2", "a5", "a7", "a6", "a8"]),
    "booleans": ([{"published": "desc"}], ["a1", "a2", "a4", "a6", "a7", "a3", "a5", "a8"]),
}


#: small limits, so that the cases below stay small
SMALL = Limits(max_clauses=4, max_depth=2, max_words=5, max_terms=3, max_string_length=40)

#: (body, the ``name`` of the one problem, the setting its description names), under :data:`SMALL`
PAST_A_LIMIT = {
    "clauses": ({"query": {"bool": {"must": [{"exists": {"field": "views"}}] * 4}}},
                "query.bool.must.3", "search_max_clauses"),
    "clauses in a long list": ({"query": {"bool": {"should": [{"match_all": {}}] * 100_000}}},
                               "query.bool.should", "search_max_clauses"),
    "multi_match fields": ({"query": {"multi_match": {"query": "fox", "fields": ["title", "body", "tags", "x"]}}},
                           "query.multi_match.fields", "search_max_clauses"),
    "sort keys": ({"sort": ["views", "rating", "title", "status", "published"]}, "sort", "search_max_clauses"),
    "words": ({"query": {"match": {"title": "one two three four five six"}}}, "query.match.title",
              "search_max_words"),
    "words of all clauses": ({"query": {"bool": {"should": [{"match_phrase": {"title": "a b c"}},
                                                           {"multi_match": {"query": "d e f"}}]}}},
                             "query.bool.should.1.multi_match.query", "search_max_words"),
    "terms values": ({"query": {"terms": {"views": [1, 2, 3, 4]}}}, "query.terms.views", "search_max_terms"),
    "long terms list": ({"query": {"terms": {"views": list(range(100_000))}}}, "query.terms.views",
                        "search_max_terms"),
    "string length": ({"query": {"term": {"status": "x" * 41}}}, "query.term.status",
                      "search_max_string_length"),
    "field name length": ({"query": {"exists": {"field": "f" * 41}}}, "query.exists.field",
                          "search_max_string_length"),
    "text length": ({"query": {"match": {"title": "ab " * 14}}}, "query.match.title", "search_max_string_length"),
    "depth": ({"query": {"bool": {"must": {"bool": {"must": {"bool": {"must": {"match_all": {}}}}}}}}},
              "query.bool.must.0.bool.must.0.bool.must.0", "search_max_depth"),
}

#: (body, ids) at the limits of :data:`SMALL`: served, with the right answer
AT_THE_LIMIT = {
    "clauses": ({"query": {"bool": {"must": [{"exists": {"field": "views"}}, {"term": {"published": True}},
                                             {"range": {"views": {"gte": 10}}}]}}}, {"a1", "a2", "a4", "a7"}),
    "words": ({"query": {"match": {"title": "fox summer cats numbers résumé"}}},
              {"a1", "a2", "a3", "a4", "a5", "a6", "a7"}),
    "terms values": ({"query": {"terms": {"views": [0, 7, 42]}}}, {"a3", "a6", "a7"}),
    "string length": ({"query": {"term": {"status": "draft-v2"}}}, {"a8"}),
    "depth": ({"query": {"bool": {"must_not": {"bool": {"must": {"term": {"published": True}}}}}}},
              {"a3", "a5", "a8"}),
}

#: values no engine holds exactly: (clause, the ``name`` of the problem)
BAD_NUMBERS = {
    "term past int64": ({"term": {"views": 2 ** 63}}, "query.term.views"),
    "term below int64": ({"term": {"views": {"value": -(2 ** 63) - 1}}}, "query.term.views.value"),
    "terms past int64": ({"terms": {"views": [1, 2 ** 64]}}, "query.terms.views.1"),
    "range past int64": ({"range": {"views": {"gte": 0, "lt": 10 ** 30}}}, "query.range.views.lt"),
    "nan": ({"term": {"rating": float("nan")}}, "query.term.rating"),
    "infinity": ({"range": {"rating": {"lt": float("inf")}}}, "query.range.rating.lt"),
    "lone surrogate": ({"match": {"title": "caf\ud800"}}, "query.match.title"),
    "lone surrogate in a term": ({"term": {"status": "\udfff"}}, "query.term.status"),
}

#: (query, ids) with many clauses (within the default limits): every engine runs them
MANY_CLAUSES = {
    "255 should terms": ({"bool": {"should": [{"term": {"views": i}} for i in range(255)]}},
                         {"a1", "a2", "a3", "a4", "a5", "a6", "a7"}),
    "255 must_not terms": ({"bool": {"must_not": [{"term": {"views": i}} for i in range(255)]}}, {"a8"}),
    "255 must": ({"bool": {"must": [{"exists": {"field": "views"}}] * 254 + [{"match": {"title": "fox"}}]}},
                 {"a4", "a5"}),
    "255 should, 2 of them": ({"bool": {"should": [{"term": {"views": i % 200}} for i in range(255)],
                                        "minimum_should_match": 2}}, {"a1", "a3", "a6", "a7"}),
    "256 words": ({"match": {"body": " ".join(["fox"] + [f"w{i}" for i in range(255)])}}, {"a1"}),
    "1024 terms": ({"terms": {"views": list(range(-1000, 24))}}, {"a1", "a3", "a6", "a8"}),
}


class QueryContract:
    """Clause-by-clause tests of the portable query language (a mixin)."""

    @pytest.mark.parametrize("case", sorted(CASES))
    def test_clause(self, backend, articles, case):
        query, expected = CASES[case]
        assert self.found(backend, articles, query) == expected

    @pytest.mark.parametrize("case", sorted(CASES))
    def test_clause_total_with_a_small_page(self, backend, articles, case):
        query, expected = CASES[case]
        result = self.run(backend, articles, {"query": query, "size": 1})
        assert result.total == len(expected)
        assert len(result.records) == min(1, len(expected))
        assert {r["id"] for r in result.records} <= expected

    @pytest.mark.parametrize("case", sorted(SORTS))
    def test_sort(self, backend, articles, case):
        sort, expected = SORTS[case]
        result = self.run(backend, articles, {"sort": sort, "size": 100})
        assert [r["id"] for r in result.records] == expected

    def test_sort_with_a_query_and_pages(self, backend, articles):
        body = {"query": {"range": {"views": {"gte": 0}}}, "sort": [{"views": "desc"}], "size": 3}
        first = self.run(backend, articles, body)
        second = self.run(backend, articles, dict(body, **{"from": 3}))
        last = self.run(backend, articles, dict(body, **{"from": 6}))
        assert (first.total, second.total, last.total) == (7, 7, 7)
        assert [r["id"] for r in first.records + second.records + last.records] == [
            "a2", "a5", "a4", "a7", "a1", "a6", "a3"]

    def test_size_zero_counts_only(self, backend, articles):
        result = self.run(backend, articles, {"query": {"term": {"published": True}}, "size": 0})
        assert (result.records, result.total) == ([], 5)

    def test_from_past_the_end(self, backend, articles):
        result = self.run(backend, articles, {"from": 50, "size": 5})
        assert (result.records, result.total) == ([], len(ARTICLES))

    def test_match_ranks_better_matches_first(self, backend, articles):
        result = self.run(backend, articles, {"query": {"match": {"title": "fox brown quick"}}})
        assert [r["id"] for r in result.records][0] == "a5"
        assert {r["id"] for r in result.records} == {"a4", "a5"}

    def test_simple_query(self, backend, articles):
        from cliquet_indexing.query import simple_query

        assert {r["id"] for r in self.run(backend, articles, simple_query("brown FOX")).records} == {
            "a1", "a4", "a5"}
        assert {r["id"] for r in self.run(backend, articles, simple_query("fox summer")).records} == set()

    # -- limits (the same answers from every engine) --------------------------------------

    @pytest.mark.parametrize("case", sorted(PAST_A_LIMIT))
    def test_past_a_limit(self, backend, case):
        body, name, setting = PAST_A_LIMIT[case]
        backend.limits = SMALL
        with pytest.raises(InvalidQuery) as caught:
            backend.validate_query(body)
        [detail] = caught.value.details
        assert detail["name"] == name
        assert f"cliquet.{setting}" in detail["description"]

    @pytest.mark.parametrize("case", sorted(AT_THE_LIMIT))
    def test_at_the_limit(self, backend, articles, case):
        body, expected = AT_THE_LIMIT[case]
        backend.limits = SMALL
        assert {r["id"] for r in self.run(backend, articles, dict(body, size=100)).records} == expected

    @pytest.mark.parametrize("case", sorted(BAD_NUMBERS))
    def test_values_no_engine_holds(self, backend, case):
        clause, name = BAD_NUMBERS[case]
        with pytest.raises(InvalidQuery) as caught:
            backend.validate_query({"query": clause})
        assert [d["name"] for d in caught.value.details] == [name]

    @pytest.mark.parametrize("case", sorted(MANY_CLAUSES))
    def test_many_clauses(self, backend, articles, case):
        query, expected = MANY_CLAUSES[case]
        assert self.found(backend, articles, query) == expected

    def test_a_huge_minimum_should_match(self, backend, articles):
        should = [{"term": {"views": 10}}, {"term": {"published": True}}]
        for minimum, expected in ((2, {"a1"}), (3, set()), (2 ** 63 - 1, set()), (10 ** 40, set())):
            body = {"bool": {"should": should, "minimum_should_match": minimum}}
            assert self.found(backend, articles, body) == expected

    def test_problems_listed_are_bounded(self, backend):
        with pytest.raises(InvalidQuery) as caught:
            backend.validate_query({"query": {"bool": {"must": [{"term": {"a b": 1}}] * 200}}})
        details = caught.value.details
        assert len(details) <= 21 and details[-1]["description"] == "and 180 more problems"


# -- hostile search bodies, for tests through the HTTP stack ----------------------------------

def _words(count: int) -> str:
    return " ".join(f"w{i}" for i in range(count))


def _json(body) -> bytes:
    import json

    return json.dumps(body).encode()


#: ``name -> (() -> raw request body, the setting the error names or None)``: what every
#: indexer behind ``/search/{resource}`` refuses with a 400 (errno 107, or 106 for what is not
#: JSON at all) in a bounded time. The records searched have ``title`` and ``score``.
HOSTILE_SEARCHES = {
    "20 000 words in match": (lambda: _json({"query": {"match": {"title": _words(20_000)}}}),
                              "search_max_string_length"),
    "20 000 words in match_phrase": (lambda: _json({"query": {"match_phrase": {"title": _words(20_000)}}}),
                                     "search_max_string_length"),
    "20 000 words in multi_match": (lambda: _json({"query": {"multi_match": {"query": _words(20_000)}}}),
                                    "search_max_string_length"),
    "a prefix of 20 000 characters": (lambda: _json({"query": {"prefix": {"title": "x" * 20_000}}}),
                                      "search_max_string_length"),
    "300 words in match": (lambda: _json({"query": {"match": {"title": _words(300)}}}), "search_max_words"),
    "300 words in multi_match": (lambda: _json({"query": {"multi_match": {"query": _words(300), "fields": ["*"]}}}),
                                 "search_max_words"),
    "1 200 term clauses": (lambda: _json({"query": {"bool": {"should": [{"term": {"score": i}}
                                                                      for i in range(1200)]}}}),
                           "search_max_clauses"),
    "100 000 should clauses": (lambda: _json({"query": {"bool": {"should": [{}] * 100_000}}}),
                               "search_max_clauses"),
    "100 000 terms values": (lambda: _json({"query": {"terms": {"score": list(range(100_000))}}}),
                             "search_max_terms"),
    "100 000 sort keys": (lambda: _json({"sort": ["score"] * 100_000}), "search_max_clauses"),
    "100 000 multi_match fields": (lambda: _json({"query": {"multi_match": {"query": "x",
                                                                            "fields": ["title"] * 100_000}}}),
                                   "search_max_clauses"),
    "bool nested 25 deep": (lambda: _json({"query": _nested(25)}), "search_max_depth"),
    "term past int64": (lambda: b'{"query": {"term": {"score": 9223372036854775808}}}', None),
    "terms past int64": (lambda: b'{"query": {"terms": {"score": [1, 18446744073709551615]}}}', None),
    "range past int64": (lambda: b'{"query": {"range": {"score": {"gt": 9223372036854775808}}}}', None),
    "size past int64": (lambda: b'{"size": 9223372036854775808}', None),
    "from past int64": (lambda: b'{"from": 99999999999999999999}', None),
    "an exponent past float": (lambda: b'{"query": {"term": {"score": 1e999}}}', None),
    "NaN": (lambda: b'{"query": {"range": {"score": {"gt": NaN}}}}', None),
    "depth 10 000": (lambda: b'{"query": ' + b'{"bool": {"must": ' * 5000 + b'{}' + b'}}' * 5000 + b'}', None),
    "arrays 10 000 deep": (lambda: b'{"query": {"terms": {"score": ' + b'[' * 10_000 + b']' * 10_000 + b'}}}', None),
    "a lone surrogate": (lambda: b'{"query": {"match": {"title": "caf\\ud800"}}}', None),
    "invalid UTF-8": (lambda: b'{"query": {"match": {"title": "caf\xff\xfe"}}}', None),
    "an unknown clause": (lambda: _json({"query": {"no_such_clause": {"title": "x"}}}), None),
}


def _nested(depth: int) -> dict:
    clause = {"match_all": {}}
    for _ in range(depth):
        clause = {"bool": {"must": clause}}
    return clause


def assert_refused(app, url: str, headers: dict, raw: bytes, setting=None, seconds: float = 3.0):
    """POST ``raw`` to ``url``; check a 400 JSON error (errno 107, or 106 for
    a body that is not JSON) within ``seconds``, naming ``cliquet.<setting>``
    when given, with a bounded list of problems. Returns the response."""
    import time

    start = time.monotonic()
    resp = app.post(url, params=raw, headers={**headers, "Content-Type": "application/json"}, status=400)
    elapsed = time.monotonic() - start
    assert elapsed < seconds, f"answered in {elapsed:.2f} s"
    assert resp.content_type == "application/json"
    assert resp.json["errno"] in (106, 107)
    details = resp.json.get("details") or []
    assert len(details) <= 21
    if setting is not None:
        assert resp.json["errno"] == 107
        assert any(f"cliquet.{setting}" in d["description"] for d in details), details
    return resp
