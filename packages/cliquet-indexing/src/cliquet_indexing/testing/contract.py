"""The contract suite of indexers: :class:`IndexerContract`.

Usage, in a backend's test module::

    from cliquet_indexing.testing import make_config
    from cliquet_indexing.testing.contract import IndexerContract

    class TestMyIndexer(IndexerContract):
        @pytest.fixture
        def backend(self, cliquet_worker_prefix):
            indexer = myindexer.load_from_config(make_config(indexing_prefix=cliquet_worker_prefix))
            indexer.initialize_schema()
            return indexer

        @pytest.fixture
        def make_backend(self, backend):
            # another indexer on the same server, with another prefix
            return lambda prefix: myindexer.Indexer(prefix=prefix, url=backend.url)

Fixtures (see :mod:`cliquet.testing.contract`): ``backend`` (required),
``capabilities`` (optional), ``backend_error`` (optional; inside it every
method raises :class:`~cliquet.storage.exceptions.BackendError` and
``heartbeat()`` is ``False``), and ``make_backend`` (optional: ``prefix ->
another indexer on the same server``; the prefix-isolation test is skipped
without it).

Each test uses resource names of its own, so one server may be shared by
several tests and pytest-xdist workers as long as each worker has its own
prefix. The expected answers are written out by hand for the data set
:data:`ARTICLES`; :mod:`cliquet_indexing.testing.dataset` holds it.
"""

from __future__ import annotations

import inspect
import itertools
import random
import uuid

import pytest

from cliquet.storage.exceptions import BackendError
from cliquet.testing.contract import BackendContract

from cliquet_indexing.indexer import IndexEntry, IndexerBase, SearchResult
from cliquet_indexing.query import InvalidQuery
from cliquet_indexing.testing.dataset import ARTICLES, OWNER, ids
from cliquet_indexing.testing.queries import QueryContract


class IndexerContract(QueryContract, BackendContract):
    """Tests every :class:`~cliquet_indexing.indexer.IndexerBase` must pass."""

    base_class = IndexerBase
    inherited_allowed = frozenset({"validate_query", "close"})

    @pytest.fixture
    def make_backend(self):
        """A callable ``prefix -> indexer on the same server`` (default: unknown)."""
        return None

    @pytest.fixture
    def resource(self):
        """A resource name no other test uses."""
        return f"res{uuid.uuid4().hex[:12]}"

    @pytest.fixture
    def articles(self, backend, resource):
        """:data:`ARTICLES` indexed for :data:`OWNER` in ``resource``."""
        backend.index_records(resource, [IndexEntry(OWNER, dict(r), (OWNER,)) for r in ARTICLES])
        return resource

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def run(backend, resource, body, principals=(OWNER,)) -> SearchResult:
        """Validate ``body`` with the backend and search."""
        return backend.search(resource, backend.validate_query(body), list(principals))

    def found(self, backend, resource, query, principals=(OWNER,), **extra):
        """Return the set of ids matching ``query`` (size large enough for all)."""
        result = self.run(backend, resource, {"query": query, "size": 100, **extra}, principals)
        assert result.total == len(result.records)
        return {r["id"] for r in result.records}

    def failing_calls(self):
        entry = IndexEntry("u", {"id": "a", "last_modified": 1}, ("u",))
        query = {"query": {"match_all": {}}, "sort": [], "size": 10, "from": 0}
        return [("initialize_schema", ()), ("flush", ()), ("index_records", ("r", [entry])),
                ("unindex_records", ("r", [("u", "a", 2)])), ("indexed_keys", ("r",)),
                ("search", ("r", query, ["u"]))]

    # -- the API --------------------------------------------------------------------------

    def test_every_method_raises_backend_error_when_down(self, backend, backend_error):
        calls = self.failing_calls()
        public = {name for name, member in vars(self.base_class).items()
                  if not name.startswith("_") and inspect.isfunction(member)}
        assert public - self.inherited_allowed - {"heartbeat"} <= {name for name, _ in calls}
        with self.failure(backend_error):
            assert backend.heartbeat() is False
            for name, args in calls:
                with pytest.raises(BackendError):
                    result = getattr(backend, name)(*args)
                    if inspect.isgenerator(result) or hasattr(result, "__next__"):
                        list(result)
        assert backend.heartbeat() is True

    def test_search_returns_a_search_result(self, backend, articles):
        result = self.run(backend, articles, {})
        assert isinstance(result, SearchResult)
        assert isinstance(result.records, list) and isinstance(result.total, int)

    def test_match_all_finds_everything_in_scope(self, backend, articles):
        result = self.run(backend, articles, {"size": 100})
        assert result.total == len(ARTICLES)
        assert sorted(r["id"] for r in result.records) == sorted(ids(ARTICLES))

    def test_records_come_back_as_indexed(self, backend, articles):
        result = self.run(backend, articles, {"size": 100})
        by_id = {r["id"]: r for r in result.records}
        for record in ARTICLES:
            assert by_id[record["id"]] == record
            assert type(by_id[record["id"]]["views"]) is type(record["views"])

    def test_default_size_is_ten(self, backend, resource):
        records = [{"id": f"r{i:03d}", "last_modified": i + 1, "n": i} for i in range(15)]
        backend.index_records(resource, [IndexEntry(OWNER, r, (OWNER,)) for r in records])
        result = self.run(backend, resource, {})
        assert result.total == 15
        assert len(result.records) == 10

    def test_unknown_resource_is_empty(self, backend):
        result = self.run(backend, f"nothing{uuid.uuid4().hex[:8]}", {"query": {"match": {"title": "x"}}})
        assert (result.records, result.total) == ([], 0)

    def test_resources_are_separate(self, backend, articles):
        other = f"other{uuid.uuid4().hex[:8]}"
        backend.index_records(other, [IndexEntry(OWNER, {"id": "x", "last_modified": 1, "title": "Cats"}, (OWNER,))])
        assert self.found(backend, other, {"match_all": {}}) == {"x"}
        assert "x" not in self.found(backend, articles, {"match_all": {}})

    # -- the read scope ----------------------------------------------------------------------

    def test_records_of_others_are_invisible(self, backend, articles):
        assert self.found(backend, articles, {"match_all": {}}, principals=["bob"]) == set()
        result = self.run(backend, articles, {"query": {"match": {"title": "cats"}}}, ["bob", "system.Everyone"])
        assert (result.records, result.total) == ([], 0)

    def test_no_principals_sees_nothing(self, backend, articles):
        assert self.run(backend, articles, {}, []).total == 0

    def test_any_shared_principal_gives_access(self, backend, resource):
        backend.index_records(resource, [
            IndexEntry("alice", {"id": "private", "last_modified": 1, "t": "x"}, ("alice",)),
            IndexEntry("alice", {"id": "team", "last_modified": 2, "t": "x"}, ("alice", "group:team")),
            IndexEntry("alice", {"id": "users", "last_modified": 3, "t": "x"}, ("alice", "system.Authenticated")),
            IndexEntry("alice", {"id": "public", "last_modified": 4, "t": "x"}, ("system.Everyone",)),
        ])
        everyone = ["system.Everyone"]
        bob = ["system.Everyone", "system.Authenticated", "bob"]
        teammate = bob + ["group:team"]
        assert self.found(backend, resource, {"match_all": {}}, everyone) == {"public"}
        assert self.found(backend, resource, {"match_all": {}}, bob) == {"public", "users"}
        assert self.found(backend, resource, {"match_all": {}}, teammate) == {"public", "users", "team"}
        assert self.found(backend, resource, {"match_all": {}}, bob + ["alice"]) == {
            "public", "users", "team", "private"}

    def test_totals_and_pages_are_exact_within_the_scope(self, backend, resource):
        mine = [IndexEntry("alice", {"id": f"a{i:02d}", "last_modified": i + 1, "n": i}, ("alice",))
                for i in range(30)]
        theirs = [IndexEntry("bob", {"id": f"b{i:02d}", "last_modified": i + 1, "n": i}, ("bob",))
                  for i in range(30)]
        backend.index_records(resource, mine + theirs)
        seen = []
        for start in range(0, 30, 7):
            result = self.run(backend, resource, {"sort": ["n"], "size": 7, "from": start}, ["alice"])
            assert result.total == 30
            seen += [r["id"] for r in result.records]
        assert seen == [f"a{i:02d}" for i in range(30)]
        result = self.run(backend, resource, {"query": {"range": {"n": {"gte": 10}}}, "size": 5}, ["bob"])
        assert result.total == 20 and len(result.records) == 5
        assert all(r["id"].startswith("b") for r in result.records)

    def test_read_principals_are_replaced_on_reindex(self, backend, resource):
        record = {"id": "doc", "last_modified": 1, "t": "x"}
        backend.index_records(resource, [IndexEntry("alice", record, ("alice", "bob"))])
        assert self.found(backend, resource, {"match_all": {}}, ["bob"]) == {"doc"}
        backend.index_records(resource, [IndexEntry("alice", dict(record, last_modified=2), ("alice",))])
        assert self.found(backend, resource, {"match_all": {}}, ["bob"]) == set()
        assert self.found(backend, resource, {"match_all": {}}, ["alice"]) == {"doc"}

    def test_same_id_under_two_parents(self, backend, resource):
        backend.index_records(resource, [
            IndexEntry("alice", {"id": "same", "last_modified": 1, "who": "alice"}, ("alice",)),
            IndexEntry("bob", {"id": "same", "last_modified": 1, "who": "bob"}, ("bob",)),
        ])
        alice = self.run(backend, resource, {}, ["alice"]).records
        bob = self.run(backend, resource, {}, ["bob"]).records
        assert [r["who"] for r in alice] == ["alice"] and [r["who"] for r in bob] == ["bob"]
        backend.unindex_records(resource, [("alice", "same", 2)])
        assert self.run(backend, resource, {}, ["alice"]).total == 0
        assert self.run(backend, resource, {}, ["bob"]).total == 1

    # -- writes ---------------------------------------------------------------------------

    def test_update_replaces_the_record(self, backend, articles):
        record = dict(ARTICLES[0], title="Completely different", last_modified=ARTICLES[0]["last_modified"] + 1000)
        backend.index_records(articles, [IndexEntry(OWNER, record, (OWNER,))])
        assert ARTICLES[0]["id"] not in self.found(backend, articles, {"match": {"title": "cats"}})
        assert self.found(backend, articles, {"match": {"title": "different"}}) == {ARTICLES[0]["id"]}
        assert self.run(backend, articles, {"size": 100}).total == len(ARTICLES)

    def test_an_older_version_is_ignored(self, backend, articles):
        old = dict(ARTICLES[0], title="Stale title", last_modified=ARTICLES[0]["last_modified"] - 1)
        backend.index_records(articles, [IndexEntry(OWNER, old, (OWNER,))])
        assert self.found(backend, articles, {"match": {"title": "stale"}}) == set()
        same = dict(ARTICLES[0], title="Same age")
        backend.index_records(articles, [IndexEntry(OWNER, same, (OWNER,))])
        assert self.found(backend, articles, {"match": {"title": "age"}}) == {ARTICLES[0]["id"]}

    def test_indexing_twice_is_harmless(self, backend, articles):
        backend.index_records(articles, [IndexEntry(OWNER, dict(r), (OWNER,)) for r in ARTICLES])
        assert self.run(backend, articles, {"size": 100}).total == len(ARTICLES)

    def test_empty_writes_are_fine(self, backend, resource):
        backend.index_records(resource, [])
        backend.unindex_records(resource, [])
        assert self.run(backend, resource, {}).total == 0

    def test_unindex_removes_and_ignores_missing(self, backend, articles):
        first, second = ARTICLES[0]["id"], ARTICLES[1]["id"]
        backend.unindex_records(articles, [(OWNER, first, 5000), (OWNER, second, 5000), (OWNER, "missing", 5000),
                                           ("x", first, 5000)])
        assert self.found(backend, articles, {"match_all": {}}) == set(ids(ARTICLES)) - {first, second}

    def test_indexed_keys(self, backend, articles):
        backend.index_records(articles, [IndexEntry("bob", {"id": "b1", "last_modified": 1}, ("bob",))])
        keys = set(backend.indexed_keys(articles))
        assert keys == {(OWNER, r["id"], r["last_modified"]) for r in ARTICLES} | {("bob", "b1", 1)}
        assert set(backend.indexed_keys(f"nothing{uuid.uuid4().hex[:8]}")) == set()

    def test_many_records_in_one_call(self, backend, resource):
        entries = [IndexEntry(OWNER, {"id": f"m{i:04d}", "last_modified": i + 1, "n": i % 10,
                                      "text": f"word{i % 7} common"}, (OWNER,)) for i in range(1500)]
        backend.index_records(resource, entries)
        assert self.run(backend, resource, {"size": 0}).total == 1500
        result = self.run(backend, resource, {"query": {"bool": {"must": [{"match": {"text": "word3"}}],
                                                                   "filter": [{"term": {"n": 4}}]}}})
        assert result.total == len([i for i in range(1500) if i % 7 == 3 and i % 10 == 4])

    def test_many_records_updated_in_one_call(self, backend, resource):
        """A reindex (or a grouped write) updating more records at once than
        one lookup of existing entries takes: each is updated in place."""
        def entries(version, word):
            return [IndexEntry(OWNER, {"id": f"m{i:04d}", "last_modified": version + i, "n": i,
                                       "text": f"{word} w{i}"}, (OWNER,)) for i in range(1200)]

        backend.index_records(resource, entries(1, "before"))
        backend.index_records(resource, entries(5000, "after"))
        assert self.run(backend, resource, {"size": 0}).total == 1200
        assert self.run(backend, resource, {"query": {"match": {"text": "before"}}, "size": 0}).total == 0
        result = self.run(backend, resource, {"query": {"match": {"text": "w1100"}}})
        assert [(r["id"], r["n"], r["last_modified"]) for r in result.records] == [("m1100", 1100, 6100)]
        assert sorted(backend.indexed_keys(resource))[1100] == (OWNER, "m1100", 6100)

    def test_many_records_deleted_in_one_call_after_earlier_deletions(self, backend, resource):
        backend.index_records(resource, [self.entry(f"d{i:04d}", 10) for i in range(1200)])
        backend.unindex_records(resource, [(OWNER, f"d{i:04d}", 20) for i in range(1200)])
        backend.unindex_records(resource, [(OWNER, f"d{i:04d}", 30) for i in range(1200)])
        backend.index_records(resource, [self.entry(f"d{i:04d}", 25) for i in range(1200)])
        assert self.run(backend, resource, {"size": 0}).total == 0
        backend.index_records(resource, [self.entry(f"d{i:04d}", 40) for i in range(1200)])
        assert self.run(backend, resource, {"size": 0}).total == 1200

    def test_flush_removes_everything(self, backend, articles):
        backend.unindex_records(articles, [(OWNER, ARTICLES[1]["id"], 9999)])
        backend.flush()
        assert self.run(backend, articles, {}).total == 0
        assert set(backend.indexed_keys(articles)) == set()
        backend.index_records(articles, [IndexEntry(OWNER, dict(r), (OWNER,)) for r in ARTICLES[:2]])
        # the deletion went with the rest
        assert self.found(backend, articles, {"match_all": {}}) == {ARTICLES[0]["id"], ARTICLES[1]["id"]}

    # -- versions and deletions -------------------------------------------------------

    @staticmethod
    def entry(record_id, version, parent=OWNER, **fields):
        """An entry of ``record_id`` at ``version`` readable by its parent."""
        return IndexEntry(parent, {"id": record_id, "last_modified": version, **fields}, (parent,))

    def test_a_late_index_after_unindex_does_not_resurrect(self, backend, resource):
        backend.index_records(resource, [self.entry("x", 10, t="first")])
        backend.unindex_records(resource, [(OWNER, "x", 20)])
        # another worker's event, a retry queue replaying after an outage:
        backend.index_records(resource, [self.entry("x", 10, t="first")])
        backend.index_records(resource, [self.entry("x", 15, t="between")])
        assert self.found(backend, resource, {"match_all": {}}) == set()
        assert set(backend.indexed_keys(resource)) == set()
        # at the deletion's own version the deletion wins
        backend.index_records(resource, [self.entry("x", 20, t="tie")])
        assert self.found(backend, resource, {"match_all": {}}) == set()

    def test_a_deletion_that_arrives_first_is_remembered(self, backend, resource):
        backend.unindex_records(resource, [(OWNER, "early", 7)])
        backend.index_records(resource, [self.entry("early", 6)])
        assert self.found(backend, resource, {"match_all": {}}) == set()

    def test_a_newer_record_after_a_deletion_is_indexed(self, backend, resource):
        backend.index_records(resource, [self.entry("x", 10, t="old")])
        backend.unindex_records(resource, [(OWNER, "x", 20)])
        backend.index_records(resource, [self.entry("x", 30, t="recreated")])
        result = self.run(backend, resource, {})
        assert [(r["id"], r["t"]) for r in result.records] == [("x", "recreated")]
        assert set(backend.indexed_keys(resource)) == {(OWNER, "x", 30)}

    def test_an_older_deletion_is_ignored(self, backend, resource):
        backend.index_records(resource, [self.entry("x", 30, t="kept")])
        backend.unindex_records(resource, [(OWNER, "x", 20)])
        assert self.found(backend, resource, {"match": {"t": "kept"}}) == {"x"}

    def test_an_older_index_never_replaces_a_newer_one(self, backend, resource):
        backend.index_records(resource, [self.entry("x", 30, t="newest")])
        backend.index_records(resource, [self.entry("x", 29, t="older")])
        backend.index_records(resource, [self.entry("x", 5, t="oldest"), self.entry("y", 5, t="other")])
        assert self.found(backend, resource, {"match": {"t": "newest"}}) == {"x"}
        assert self.found(backend, resource, {"match": {"t": "older oldest"}}) == set()
        assert set(backend.indexed_keys(resource)) == {(OWNER, "x", 30), (OWNER, "y", 5)}

    def test_deletions_are_per_key(self, backend, resource):
        backend.unindex_records(resource, [("alice", "same", 20)])
        backend.index_records(resource, [self.entry("same", 10, parent="bob"), self.entry("same", 10)])
        assert self.found(backend, resource, {"match_all": {}}, ["alice", "bob"]) == {"same"}
        assert self.run(backend, resource, {}, ["alice"]).total == 0

    @pytest.mark.parametrize("seed", range(6))
    def test_replays_in_any_order_converge_to_storage(self, backend, resource, seed):
        """The changes of a few records, sent in a random order and grouping
        (as workers and retry queues do), leave what storage's last change says."""
        history, expected = [], {}
        for n in range(6):
            record_id, version = f"r{n}", 100 * n
            for step in range(1 + n % 4):
                version += 1
                if step % 3 == 2:
                    history.append(("unindex", (OWNER, record_id, version)))
                    expected.pop(record_id, None)
                else:
                    history.append(("index", self.entry(record_id, version, t=f"v{version}")))
                    expected[record_id] = version
        rng = random.Random(seed)
        rng.shuffle(history)
        while history:
            size = rng.randint(1, 4)
            batch, history = history[:size], history[size:]
            while batch:  # a run of one kind in one call, as the retry queue sends them
                kind = batch[0][0]
                run = [item for k, item in itertools.takewhile(lambda op: op[0] == kind, batch)]
                batch = batch[len(run):]
                if kind == "index":
                    backend.index_records(resource, run)
                else:
                    backend.unindex_records(resource, run)
        result = self.run(backend, resource, {"size": 100})
        assert {r["id"]: r["last_modified"] for r in result.records} == expected
        assert all(r["t"] == f"v{r['last_modified']}" for r in result.records)
        assert set(backend.indexed_keys(resource)) == {(OWNER, k, v) for k, v in expected.items()}

    def test_prefixes_are_isolated(self, backend, make_backend, resource):
        if make_backend is None:
            pytest.skip("no `make_backend` fixture: provide `prefix -> indexer on the same server` "
                        "to run the prefix-isolation test")
        one = make_backend(f"t{uuid.uuid4().hex[:10]}a_")
        two = make_backend(f"t{uuid.uuid4().hex[:10]}b_")
        for indexer in (one, two):
            indexer.initialize_schema()
        try:
            one.index_records(resource, [IndexEntry(OWNER, {"id": "one", "last_modified": 1}, (OWNER,))])
            two.index_records(resource, [IndexEntry(OWNER, {"id": "two", "last_modified": 1}, (OWNER,))])
            assert self.found(one, resource, {"match_all": {}}) == {"one"}
            one.flush()
            assert self.found(one, resource, {"match_all": {}}) == set()
            assert self.found(two, resource, {"match_all": {}}) == {"two"}
        finally:
            one.flush()
            two.flush()
            one.close()
            two.close()

    # -- validation -----------------------------------------------------------------------

    @pytest.mark.parametrize("body", [
        [], "match_all", None, {"size": -1}, {"from": -3}, {"size": "10"}, {"size": 1.5},
        {"query": {"match": {"title": 3}}}, {"query": {"range": {"views": {"gt": [1]}}}},
        {"sort": [{"views": "up"}]}, {"query": {"term": {"title": {"value": None}}}},
    ], ids=repr)
    def test_malformed_portable_queries_are_refused(self, backend, body):
        with pytest.raises(InvalidQuery) as caught:
            backend.validate_query(body)
        assert caught.value.details and all(d["location"] == "body" for d in caught.value.details)

    def test_size_above_the_maximum_is_refused(self, backend):
        with pytest.raises(InvalidQuery):
            backend.validate_query({"size": backend.max_size + 1})
        assert backend.validate_query({"size": backend.max_size})["size"] == backend.max_size
