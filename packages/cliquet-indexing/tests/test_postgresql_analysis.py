"""The PostgreSQL indexer's analysis (the columns of an index row) as
PostgreSQL reads it: the tsvector literal, the leaves JSON and the text[]
literals the upsert sends."""

import json

import pytest

from cliquet.testing.plugin import require_module

psycopg = require_module("psycopg", reason="the `postgresql` extra is not installed")

from cliquet_indexing.postgresql.analysis import MAX_POSITION, analyse, text_array, to_json  # noqa: E402

TRICKY = ["", "NULL", "a,b", "{x}", 'q"uote', "back\\slash", '\\"', " sp ", "日本", "a'b", "tab\tnl\n"]


@pytest.fixture(scope="module")
def conn(postgresql_url):
    with psycopg.connect(postgresql_url, autocommit=True) as connection:
        yield connection


@pytest.mark.services
def test_text_array_literals_read_back_as_the_same_strings(conn):
    assert conn.execute("SELECT %s::text[]", (text_array(TRICKY),)).fetchone()[0] == TRICKY
    assert conn.execute("SELECT %s::text[]", (text_array([]),)).fetchone()[0] == []


@pytest.mark.services
def test_the_tsvector_of_a_record_with_quotes_in_its_paths(conn):
    record = {"it's": "Hello hello", "a\\b": ["Straße", None, 3], "n": 1.5, "ok": True}
    words, leaves, fields = analyse(record)
    expected = "'it''s:hello':1,2 'a\\\\b:strasse':4 'hello' 'strasse'"
    same = conn.execute("SELECT %s::tsvector = %s::tsvector, %s::tsvector::text", (words, expected, words)).fetchone()
    assert same[0], same[1]
    assert json.loads(leaves) == {"it's": ["Hello hello"], "a\\b": [3, "Straße"], "n": [1.5], "ok": [True]}
    assert fields == sorted(["it's", "a\\b", "n", "ok"])


@pytest.mark.services
def test_positions_past_the_largest_are_clamped_once_and_long_words_digested(conn):
    record = {"t": " ".join(["a"] * (MAX_POSITION + 5) + ["z", "z", "z"]), "long": "x" * 3000}
    words, _, _ = analyse(record)
    assert f"'t:z':{MAX_POSITION} " in words  # once, as the literal says it
    parsed = conn.execute("SELECT %s::tsvector::text", (words,)).fetchone()[0].split(" ")
    assert f"'t:z':{MAX_POSITION}" in parsed
    assert len(next(p for p in parsed if p.startswith("'t:a':")).split(",")) == 256
    assert any(p.startswith("'#") for p in parsed) and not any("x" * 600 in p for p in parsed)


def test_json_past_64_bit_integers_falls_back_to_the_standard_library():
    assert json.loads(to_json({"big": [2 ** 70], "s": ["é"]})) == {"big": [2 ** 70], "s": ["é"]}
    assert to_json({"s": ["é"]}) == '{"s":["é"]}'
