"""The contract suite of storage backends: :class:`StorageContract`.

Usage, in a backend's test module::

    from cliquet.testing import make_config
    from cliquet.testing.storage import StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def backend(self, postgresql_url):
            storage = mystorage.load_from_config(make_config(storage_url=postgresql_url))
            storage.initialize_schema()
            return storage

Every test works in its own collection and parent ids (``uuid4``), so the
suite runs on a server shared with other tests; ``flush()`` is exercised, so
give each pytest-xdist worker its own database or schema.

Capabilities (the ``capabilities`` fixture): ``"transactions"`` — nested
:meth:`~cliquet.storage.StorageBase.transaction` blocks undo their writes on
an exception; ``"isolation"`` and ``"shared"`` — no lost update, one winner
per race, between threads and between processes (see
:mod:`cliquet.testing.storage_races`, which also lists the optional fixtures
of those tests).

Semantics encoded here, beyond the docstrings of
:class:`~cliquet.storage.StorageBase` (the query rules — filters, sorting,
``after`` — are in :mod:`cliquet.testing.storage_queries`):

* ``create``/``update`` copy their input; every returned record is a copy.
* A ``last_modified`` (an int) in the record given to ``create``/``update``,
  or the ``last_modified`` argument of ``delete``, is kept when it is newer
  than the collection timestamp; otherwise the write gets
  ``max(now, collection timestamp + 1)``.
* ``update`` forces ``id`` to ``object_id``; it creates a missing record and
  replaces a tombstone. ``create`` over a tombstone is allowed.
* ``delete_all`` returns one tombstone per deleted record, each with its own
  increasing timestamp, also when ``with_deleted=False`` (then nothing is
  kept). ``delete(with_deleted=False)`` likewise returns the tombstone.
* ``purge_deleted`` removes tombstones strictly older than ``before``, does
  not change the collection timestamp, and ``None`` as collection or parent id
  means every one.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from cliquet.storage import COMPARISON, Filter, StorageBase
from cliquet.storage.exceptions import RecordNotFoundError, UnicityError
from cliquet.testing.storage_queries import StorageQueryContract
from cliquet.testing.storage_races import StorageRaceContract


class _Rollback(Exception):
    """Raised inside transaction blocks by the tests."""


def _ids(records):
    return sorted(r["id"] for r in records)


class StorageContract(StorageQueryContract, StorageRaceContract):
    """Tests every :class:`~cliquet.storage.StorageBase` must pass."""

    base_class = StorageBase
    all_capabilities = frozenset({"transactions", "isolation", "shared"})
    inherited_allowed = frozenset({"transaction", "get_all_with_timestamp"})

    def failing_calls(self):
        c, p, o = (uuid.uuid4().hex for _ in range(3))
        return [("initialize_schema", ()), ("flush", ()), ("collection_timestamp", (c, p)),
                ("create", (c, p, {"a": 1})), ("get", (c, p, o)), ("update", (c, p, o, {"a": 1})),
                ("delete", (c, p, o)), ("delete_all", (c, p)), ("purge_deleted", (c, p)),
                ("get_all", (c, p)), ("get_all_with_timestamp", (c, p)), ("parent_ids", (c,)),
                ("purged_before", (c, p))]

    def test_purged_before_is_the_purge_horizon(self, backend, collection, parent):
        assert backend.purged_before(collection, parent) is None
        record = backend.create(collection, parent, {"a": 1})
        tombstone = backend.delete(collection, parent, record["id"])
        backend.purge_deleted(collection, parent, before=tombstone["last_modified"] + 1)
        assert backend.purged_before(collection, parent) >= tombstone["last_modified"] + 1
        assert backend.purged_before(collection, f"{parent}-other") is None
        backend.purge_deleted(collection, parent, before=5)  # never moves back
        assert backend.purged_before(collection, parent) >= tombstone["last_modified"] + 1

    def test_parent_ids(self, backend, collection):
        other = f"{collection}_other"
        backend.create(collection, "p1", {"a": 1})
        backend.create(collection, "p2", {"a": 2})
        backend.create(collection, "p2", {"a": 3})
        backend.create(other, "p3", {"a": 4})
        assert set(backend.parent_ids(collection)) >= {"p1", "p2"}
        assert "p3" not in backend.parent_ids(collection)
        assert backend.parent_ids(collection) == sorted(backend.parent_ids(collection))
        assert backend.parent_ids(f"{collection}_nothing") == []

    # -- create / get ---------------------------------------------------------------

    def test_create_assigns_id_and_timestamp(self, backend, collection, parent):
        record = backend.create(collection, parent, {"title": "hello"})
        assert isinstance(record["id"], str) and record["id"]
        assert type(record["last_modified"]) is int
        assert record["title"] == "hello"
        assert backend.get(collection, parent, record["id"]) == record

    def test_create_uses_the_id_generator(self, backend, collection, parent):
        record = backend.create(collection, parent, {"a": 1}, id_generator=lambda: "generated-1")
        assert record["id"] == "generated-1"
        assert backend.get(collection, parent, "generated-1")["a"] == 1

    def test_create_keeps_a_given_id(self, backend, collection, parent):
        record = backend.create(collection, parent, {"id": "mine", "a": 1}, id_generator=lambda: "nope")
        assert record["id"] == "mine"

    def test_create_with_an_existing_id_raises_unicity_error(self, backend, collection, parent):
        backend.create(collection, parent, {"id": "dup", "a": 1})
        with pytest.raises(UnicityError) as caught:
            backend.create(collection, parent, {"id": "dup", "a": 2})
        assert caught.value.field == "id"
        assert caught.value.record["id"] == "dup"
        assert backend.get(collection, parent, "dup")["a"] == 1

    def test_create_over_a_tombstone(self, backend, collection, parent):
        backend.create(collection, parent, {"id": "x", "v": 1})
        backend.delete(collection, parent, "x")
        backend.create(collection, parent, {"id": "x", "v": 2})
        records, total = backend.get_all(collection, parent, include_deleted=True)
        assert total == 1
        assert [(r["id"], r.get("v"), r.get("deleted")) for r in records] == [("x", 2, None)]

    def test_json_round_trip(self, backend, collection, parent):
        data = {"text": "ünïcødé ✓ 🎉", "n": 1, "f": 1.5, "t": True, "z": None, "empty": {},
                "nested": {"list": [1, "a", None, False, {"deep": []}]}}
        record = backend.create(collection, parent, data)
        got = backend.get(collection, parent, record["id"])
        for field, value in data.items():
            assert got[field] == value and type(got[field]) is type(value)
        assert type(got["nested"]["list"][3]) is bool

    def test_input_and_output_are_copies(self, backend, collection, parent):
        data = {"nested": {"a": [1]}}
        record = backend.create(collection, parent, data)
        data["nested"]["a"].append(2)
        record["nested"]["a"].append(3)
        got = backend.get(collection, parent, record["id"])
        assert got["nested"] == {"a": [1]}
        got["nested"]["a"].append(4)
        listed, _ = backend.get_all(collection, parent)
        listed[0]["nested"]["a"].append(5)
        assert backend.get(collection, parent, record["id"])["nested"] == {"a": [1]}

    def test_get_missing_raises(self, backend, collection, parent):
        with pytest.raises(RecordNotFoundError):
            backend.get(collection, parent, "missing")

    def test_records_are_scoped_by_collection_and_parent(self, backend, collection, parent):
        other_collection, other_parent = collection + "-b", parent + "-b"
        for c, p in [(collection, parent), (other_collection, parent), (collection, other_parent)]:
            backend.create(c, p, {"id": "same", "where": f"{c}/{p}"})
        backend.delete(collection, parent, "same")
        assert backend.get(other_collection, parent, "same")["where"] == f"{other_collection}/{parent}"
        assert backend.get(collection, other_parent, "same")["where"] == f"{collection}/{other_parent}"
        assert backend.get_all(other_collection, parent)[1] == 1
        assert backend.get_all(collection, other_parent)[1] == 1
        with pytest.raises(RecordNotFoundError):
            backend.get(collection, parent, "same")

    # -- update ---------------------------------------------------------------------

    def test_update_replaces_the_record(self, backend, collection, parent):
        record = backend.create(collection, parent, {"a": 1, "b": 2})
        updated = backend.update(collection, parent, record["id"], {"a": 3})
        assert updated["last_modified"] > record["last_modified"]
        assert backend.get(collection, parent, record["id"]) == {
            "id": record["id"], "last_modified": updated["last_modified"], "a": 3}

    def test_update_forces_the_id(self, backend, collection, parent):
        updated = backend.update(collection, parent, "target", {"id": "other", "a": 1})
        assert updated["id"] == "target"
        with pytest.raises(RecordNotFoundError):
            backend.get(collection, parent, "other")

    def test_update_creates_a_missing_record(self, backend, collection, parent):
        created = backend.update(collection, parent, "new", {"a": 1})
        assert backend.get(collection, parent, "new") == created

    def test_update_of_a_fetched_record_gets_a_new_timestamp(self, backend, collection, parent):
        record = backend.create(collection, parent, {"a": 1})
        backend.create(collection, parent, {"b": 1})
        fetched = backend.get(collection, parent, record["id"])
        fetched["a"] = 2
        updated = backend.update(collection, parent, record["id"], fetched)
        assert updated["last_modified"] == backend.collection_timestamp(collection, parent)
        assert updated["last_modified"] > fetched["last_modified"]

    def test_update_replaces_a_tombstone(self, backend, collection, parent):
        record = backend.create(collection, parent, {"a": 1})
        backend.delete(collection, parent, record["id"])
        backend.update(collection, parent, record["id"], {"a": 2})
        records, total = backend.get_all(collection, parent, include_deleted=True)
        assert total == 1 and [r.get("deleted") for r in records] == [None]

    # -- delete ---------------------------------------------------------------------

    def test_delete_returns_a_tombstone(self, backend, collection, parent):
        record = backend.create(collection, parent, {"a": 1})
        tombstone = backend.delete(collection, parent, record["id"])
        assert tombstone == {"id": record["id"], "last_modified": tombstone["last_modified"], "deleted": True}
        assert tombstone["last_modified"] > record["last_modified"]
        assert backend.collection_timestamp(collection, parent) == tombstone["last_modified"]
        with pytest.raises(RecordNotFoundError):
            backend.get(collection, parent, record["id"])

    def test_delete_missing_or_deleted_raises(self, backend, collection, parent):
        with pytest.raises(RecordNotFoundError):
            backend.delete(collection, parent, "missing")
        record = backend.create(collection, parent, {"a": 1})
        backend.delete(collection, parent, record["id"])
        with pytest.raises(RecordNotFoundError):
            backend.delete(collection, parent, record["id"])

    def test_delete_without_tombstone(self, backend, collection, parent):
        record = backend.create(collection, parent, {"a": 1})
        tombstone = backend.delete(collection, parent, record["id"], with_deleted=False)
        assert tombstone["deleted"] is True and tombstone["id"] == record["id"]
        assert backend.get_all(collection, parent, include_deleted=True) == ([], 0)

    def test_delete_with_a_newer_timestamp_keeps_it(self, backend, collection, parent):
        record = backend.create(collection, parent, {"a": 1})
        wanted = record["last_modified"] + 10_000
        tombstone = backend.delete(collection, parent, record["id"], last_modified=wanted)
        assert tombstone["last_modified"] == wanted
        assert backend.collection_timestamp(collection, parent) == wanted

    def test_delete_with_an_older_timestamp_gets_a_newer_one(self, backend, collection, parent):
        record = backend.create(collection, parent, {"a": 1})
        tombstone = backend.delete(collection, parent, record["id"], last_modified=record["last_modified"])
        assert tombstone["last_modified"] > record["last_modified"]

    def test_delete_all(self, backend, collection, parent):
        keep = backend.create(collection, parent, {"kind": "keep"})
        doomed = [backend.create(collection, parent, {"kind": "drop", "n": n}) for n in range(3)]
        other = backend.create(collection, parent + "-other", {"kind": "drop"})
        before = backend.collection_timestamp(collection, parent)
        tombstones = backend.delete_all(collection, parent, filters=[Filter("kind", "drop", COMPARISON.EQ)])
        assert _ids(tombstones) == _ids(doomed)
        assert all(t["deleted"] is True for t in tombstones)
        stamps = [t["last_modified"] for t in tombstones]
        assert len(set(stamps)) == 3 and min(stamps) > before
        assert backend.get_all(collection, parent) == ([keep], 1)
        records, _ = backend.get_all(collection, parent, include_deleted=True)
        assert _ids(records) == _ids(doomed + [keep])
        assert backend.get(collection, parent + "-other", other["id"]) == other

    def test_delete_all_without_filters_or_tombstones(self, backend, collection, parent):
        for n in range(3):
            backend.create(collection, parent, {"n": n})
        tombstones = backend.delete_all(collection, parent, with_deleted=False)
        assert len(tombstones) == 3
        assert backend.get_all(collection, parent, include_deleted=True) == ([], 0)
        assert backend.delete_all(collection, parent) == []

    # -- timestamps ----------------------------------------------------------------

    def test_timestamps_strictly_increase_on_fast_writes(self, backend, collection, parent):
        stamps = [backend.create(collection, parent, {"n": n})["last_modified"] for n in range(1000)]
        assert all(b > a for a, b in zip(stamps, stamps[1:]))
        assert backend.collection_timestamp(collection, parent) == stamps[-1]

    def test_timestamps_are_unique_with_concurrent_writers(self, backend, collection, parent):
        stamps, errors = [], []

        def work(n):
            try:
                for i in range(25):
                    stamps.append(backend.create(collection, parent, {"n": n, "i": i})["last_modified"])
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(stamps) == 200 and len(set(stamps)) == 200
        assert backend.get_all(collection, parent)[1] == 200
        assert backend.collection_timestamp(collection, parent) == max(stamps)

    def test_timestamp_of_an_empty_collection_is_stable(self, backend, collection, parent):
        first = backend.collection_timestamp(collection, parent)
        assert type(first) is int and abs(first - time.time() * 1000) < 3_600_000
        assert backend.collection_timestamp(collection, parent) == first
        record = backend.create(collection, parent, {"a": 1})
        assert record["last_modified"] > first

    def test_timestamp_follows_writes_only(self, backend, collection, parent):
        record = backend.create(collection, parent, {"a": 1})
        assert backend.collection_timestamp(collection, parent) == record["last_modified"]
        backend.get(collection, parent, record["id"])
        backend.get_all(collection, parent, include_deleted=True)
        backend.create(collection + "-b", parent, {"a": 1})
        backend.create(collection, parent + "-b", {"a": 1})
        assert backend.collection_timestamp(collection, parent) == record["last_modified"]
        updated = backend.update(collection, parent, record["id"], {"a": 2})
        assert backend.collection_timestamp(collection, parent) == updated["last_modified"]

    def test_a_newer_given_timestamp_is_kept(self, backend, collection, parent):
        first = backend.create(collection, parent, {"a": 1})
        wanted = first["last_modified"] + 50_000
        record = backend.create(collection, parent, {"a": 2, "last_modified": wanted})
        assert record["last_modified"] == wanted
        older = backend.update(collection, parent, first["id"], {"a": 3, "last_modified": 1})
        assert older["last_modified"] > wanted

    def test_get_all_with_timestamp_is_the_page_and_the_timestamp(self, backend, collection, parent):
        records, total, stamp = backend.get_all_with_timestamp(collection, parent)
        assert (records, total) == ([], 0)
        assert stamp == backend.collection_timestamp(collection, parent)
        created = [backend.create(collection, parent, {"n": n}) for n in range(5)]
        backend.delete(collection, parent, created[0]["id"])
        for query in ({}, {"filters": [Filter("n", 1, COMPARISON.GT)], "limit": 2}, {"include_deleted": True},
                      {"limit": 0}, {"filters": [Filter("n", 99, COMPARISON.EQ)]},
                      {"after": (created[3]["last_modified"],)}):
            records, total, stamp = backend.get_all_with_timestamp(collection, parent, **query)
            assert (records, total) == backend.get_all(collection, parent, **query)
            assert stamp == backend.collection_timestamp(collection, parent)

    def test_get_all_with_timestamp_misses_no_change_stamped_before_it(self, backend, collection, parent):
        """Lists race a writer: every record stamped at or before the
        timestamp of a list is in its page (a client polling ``_since``
        that timestamp misses nothing)."""
        written, errors = threading.Event(), []

        def write():
            try:
                for n in range(300):
                    backend.create(collection, parent, {"n": n})
                    time.sleep(0.0005)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                written.set()

        writer = threading.Thread(target=write)
        writer.start()
        lists = []
        while not written.is_set():
            records, _, stamp = backend.get_all_with_timestamp(collection, parent)
            lists.append(({r["id"] for r in records}, stamp))
        writer.join()
        assert errors == [] and len(lists) >= 5
        everything, _ = backend.get_all(collection, parent)
        for seen, stamp in lists:
            assert [r["id"] for r in everything if r["last_modified"] <= stamp and r["id"] not in seen] == []

    # -- purge ---------------------------------------------------------------------

    def test_purge_deleted(self, backend, collection, parent):
        records = [backend.create(collection, parent, {"n": n}) for n in range(3)]
        tombstones = [backend.delete(collection, parent, r["id"]) for r in records]
        alive = backend.create(collection, parent, {"alive": True})
        stamp = backend.collection_timestamp(collection, parent)
        assert backend.purge_deleted(collection, parent, before=tombstones[1]["last_modified"]) == 1
        listed, _ = backend.get_all(collection, parent, include_deleted=True)
        assert _ids(listed) == _ids(tombstones[1:] + [alive])
        assert backend.purge_deleted(collection, parent) == 2
        assert backend.get_all(collection, parent, include_deleted=True) == ([alive], 1)
        assert backend.collection_timestamp(collection, parent) == stamp

    def test_purge_deleted_is_scoped(self, backend, collection, parent):
        for p in (parent, parent + "-b"):
            backend.delete(collection, p, backend.create(collection, p, {"a": 1})["id"])
        assert backend.purge_deleted(collection, parent) == 1
        assert len(backend.get_all(collection, parent + "-b", include_deleted=True)[0]) == 1

    def test_purge_deleted_everywhere(self, backend, collection, parent):
        for c in (collection, collection + "-b"):
            backend.delete(c, parent, backend.create(c, parent, {"a": 1})["id"])
        assert backend.purge_deleted(None, None) >= 2
        for c in (collection, collection + "-b"):
            assert backend.get_all(c, parent, include_deleted=True) == ([], 0)

    # -- flush ---------------------------------------------------------------------

    def test_flush(self, backend, collection, parent):
        record = backend.create(collection, parent, {"a": 1})
        backend.delete(collection, parent, backend.create(collection, parent, {"a": 2})["id"])
        backend.flush()
        assert backend.get_all(collection, parent, include_deleted=True) == ([], 0)
        with pytest.raises(RecordNotFoundError):
            backend.get(collection, parent, record["id"])

    # -- transactions ------------------------------------------------------------------

    def test_transaction_commits(self, backend, collection, parent):
        with backend.transaction():
            record = backend.create(collection, parent, {"a": 1})
            with backend.transaction():
                backend.update(collection, parent, record["id"], {"a": 2})
        assert backend.get(collection, parent, record["id"])["a"] == 2

    def test_nested_transaction_rolls_back_only_its_writes(self, backend, collection, parent, capabilities):
        self.require(capabilities, "transactions")
        kept = backend.create(collection, parent, {"v": "before"})
        doomed = backend.create(collection, parent, {"v": "doomed"})
        with backend.transaction():
            outer = backend.create(collection, parent, {"v": "outer"})
            with pytest.raises(_Rollback):
                with backend.transaction():
                    backend.create(collection, parent, {"id": "inner", "v": "inner"})
                    backend.update(collection, parent, kept["id"], {"v": "changed"})
                    backend.delete(collection, parent, doomed["id"])
                    backend.update(collection, parent, outer["id"], {"v": "outer changed"})
                    raise _Rollback()
        assert backend.get(collection, parent, kept["id"]) == kept
        assert backend.get(collection, parent, doomed["id"]) == doomed
        assert backend.get(collection, parent, outer["id"]) == outer
        with pytest.raises(RecordNotFoundError):
            backend.get(collection, parent, "inner")
        records, total = backend.get_all(collection, parent, include_deleted=True)
        assert total == 3 and _ids(records) == _ids([kept, doomed, outer])
        after = backend.create(collection, parent, {"v": "after"})
        assert after["last_modified"] > outer["last_modified"]

    def test_outer_transaction_rolls_back_everything(self, backend, collection, parent, capabilities):
        self.require(capabilities, "transactions")
        kept = backend.create(collection, parent, {"v": 1})
        with pytest.raises(_Rollback):
            with backend.transaction():
                backend.create(collection, parent, {"id": "new"})
                with backend.transaction():
                    backend.delete(collection, parent, kept["id"])
                backend.delete_all(collection, parent)
                raise _Rollback()
        assert backend.get_all(collection, parent, include_deleted=True) == ([kept], 1)
