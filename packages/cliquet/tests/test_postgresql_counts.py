"""Filtered ``Total-Records`` on PostgreSQL, kept up to date from the changes
since the previous count (:mod:`cliquet.storage.postgresql_count`): exact
after every kind of write made by another server (another client, hence
another process's cache), corrected without counting again, and exact after
racing writers."""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest

from cliquet.testing.plugin import postgresql_schema, require_module

require_module("psycopg", reason="the `postgresql` extra is not installed")

from cliquet.permission.postgresql import PostgreSQLPermission  # noqa: E402
from cliquet.storage import COMPARISON, AccessibleIds, Filter  # noqa: E402
from cliquet.storage.postgresql import PostgreSQLStorage  # noqa: E402
from cliquet.storage.postgresql_client import PostgreSQLClient  # noqa: E402
from cliquet.storage.postgresql_count import MaintainedCounts  # noqa: E402
from cliquet.storage.postgresql_journal import Journals  # noqa: E402

PARENT = ""
READ = ("read", "write")


class Server:
    """Storage and permissions on one client of their own: what one app
    server process has (its own count cache)."""

    def __init__(self, url):
        self.client = PostgreSQLClient(url, pool_size=4)
        self.storage = PostgreSQLStorage(self.client)
        self.permission = PostgreSQLPermission(self.client)

    def readable(self, collection, principals, **filters):
        """A read-checked filter list, as a shareable resource builds it."""
        check = AccessibleIds(principals, READ, f"/{collection}/", source=self.permission)
        extra = [Filter(field, value, COMPARISON.EQ) for field, value in filters.items()]
        return [Filter("id", check, COMPARISON.IN)] + extra

    def total(self, collection, principals, **filters):
        return self.storage.get_all(collection, PARENT, self.readable(collection, principals, **filters), limit=1)[1]

    def exact(self, collection, principals, **filters):
        """The same count, straight from the tables."""
        wanted = " ".join(f"AND r.data->>'{k}' = %s" for k in filters)
        row = self.client.execute(
            "SELECT count(*) FROM cliquet_records AS r WHERE r.parent_id = %s AND r.collection_id = %s "
            "AND NOT r.deleted AND EXISTS (SELECT 1 FROM cliquet_access_control_entries AS a "
            "WHERE a.object_id = %s || r.id AND a.permission = ANY(%s) AND a.principal = ANY(%s)) " + wanted,
            [PARENT, collection, f"/{collection}/", list(READ), list(principals), *filters.values()], fetch="one")
        return row[0]

    def create(self, collection, readers=(), **data):
        record = self.storage.create(collection, PARENT, data)
        for reader in readers:
            self.permission.add_principal_to_ace(f"/{collection}/{record['id']}", "read", reader)
        return record["id"]

    def close(self):
        self.client.close()


@pytest.fixture
def servers(postgresql_url, cliquet_worker_prefix):
    with postgresql_schema(postgresql_url, f"{cliquet_worker_prefix}counts") as url:
        first, second = Server(url), Server(url)
        first.storage.initialize_schema()
        first.permission.initialize_schema()
        try:
            yield first, second
        finally:
            first.close()
            second.close()


@pytest.fixture
def full_counts(monkeypatch):
    """The counts made from scratch (the rest are corrections)."""
    made = []
    original = MaintainedCounts._full

    def counting(self, key, *args, **kwargs):
        made.append(key)
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(MaintainedCounts, "_full", counting)
    prepare = Journals.prepare

    def preparing(self, *args, full_where_of=None, **kwargs):
        if full_where_of is not None:
            made.append(("journal",) + args[:2])
        return prepare(self, *args, full_where_of=full_where_of, **kwargs)

    monkeypatch.setattr(Journals, "prepare", preparing)
    return made


@pytest.mark.services
def test_every_kind_of_write_by_another_server_is_counted(servers, full_counts):
    reader, writer = servers
    c, alice, bob = f"c{uuid.uuid4().hex[:8]}", "alice", "bob"
    ids = [writer.create(c, [alice] if n % 2 else [], kind="a" if n % 3 else "b") for n in range(12)]
    steps = [
        ("a shared record is created", lambda: writer.create(c, [alice], kind="a")),
        ("a private one is created", lambda: writer.create(c, [bob], kind="a")),
        ("a shared record is updated out of the filter", lambda: writer.storage.update(c, PARENT, ids[1], {"kind": "b"})),
        ("and back in", lambda: writer.storage.update(c, PARENT, ids[1], {"kind": "a"})),
        ("a shared record is deleted", lambda: writer.storage.delete(c, PARENT, ids[3])),
        ("read is revoked, the record untouched",
         lambda: writer.permission.remove_principal_from_ace(f"/{c}/{ids[5]}", "read", alice)),
        ("read is granted, the record untouched",
         lambda: writer.permission.add_principal_to_ace(f"/{c}/{ids[2]}", "read", alice)),
        ("write is granted (write reads too)",
         lambda: writer.permission.add_principal_to_ace(f"/{c}/{ids[4]}", "write", alice)),
        ("a group the reader is in gets read",
         lambda: writer.permission.add_principal_to_ace(f"/{c}/{ids[6]}", "read", "group")),
        ("a shared record is deleted without tombstone",
         lambda: writer.storage.delete(c, PARENT, ids[7], with_deleted=False)),
        ("a tombstone is recreated", lambda: writer.storage.update(c, PARENT, ids[3], {"kind": "a"})),
        ("tombstones are purged", lambda: (writer.storage.delete(c, PARENT, ids[9]),
                                           writer.storage.purge_deleted(c, PARENT))),
        ("every permission of a record goes", lambda: writer.permission.delete_object_permissions(f"/{c}/{ids[11]}")),
    ]
    for principals, filters in (((alice,), {}), ((alice, "group"), {"kind": "a"})):
        assert reader.total(c, principals, **filters) == reader.exact(c, principals, **filters)
    for what, step in steps:
        step()
        for principals, filters in (((alice,), {}), ((alice, "group"), {"kind": "a"})):
            assert reader.total(c, principals, **filters) == reader.exact(c, principals, **filters), what
    # Counted from scratch: the first time, and after what leaves no row
    # (the deletion without tombstone, the purge): never after the others.
    # The filtered count starts again at once; the read check alone (the
    # journal's) is counted once without being kept (the journal starts
    # again in that statement), then from scratch with the next fetch.
    filtered = [made for made in full_counts if made is not None and made[0] != "journal"]
    journal = [made for made in full_counts if made is None or made[0] == "journal"]
    assert len(filtered) == 1 + 2, "\n".join(map(str, full_counts))
    assert len(journal) == 1 + 2 * 2, "\n".join(map(str, full_counts))


@pytest.mark.services
def test_a_list_corrects_its_count_only_after_a_change_it_can_see(servers, full_counts, monkeypatch):
    """The probe sent with the page stops a quiet list there; the correction
    runs after a write in the collection or a change of the reader's access,
    not after another reader's or another collection's."""
    reader, writer = servers
    corrections = []
    delta = MaintainedCounts._delta
    monkeypatch.setattr(MaintainedCounts, "_delta", lambda self, key, *a: (corrections.append(key), delta(self, key, *a))[1])
    c, other, alice = f"c{uuid.uuid4().hex[:8]}", f"o{uuid.uuid4().hex[:8]}", "alice"
    ids = [writer.create(c, [alice], kind="a") for _ in range(3)]

    def listed():
        corrections.clear()
        total = reader.total(c, (alice,), kind="a")
        assert total == reader.exact(c, (alice,), kind="a")
        return total, len(corrections)

    assert listed() == (3, 0)  # counted from scratch
    assert listed() == (3, 0), "nothing changed: no correction"
    writer.permission.add_principal_to_ace(f"/{c}/{ids[0]}", "read", "carol")
    writer.create(other, [alice], kind="a")
    assert listed() == (3, 0), "another reader's access, another collection: no correction"
    writer.permission.remove_principal_from_ace(f"/{c}/{ids[1]}", "read", alice)
    assert listed() == (2, 1), "the reader's access changed: corrected"
    writer.create(c, [alice], kind="a")
    assert listed() == (3, 1), "a write in the collection: corrected"
    assert listed() == (3, 0)
    assert len([made for made in full_counts if made is not None and made[0] != "journal"]) == 1


@pytest.mark.services
def test_a_flush_elsewhere_starts_the_count_again(servers):
    reader, writer = servers
    c = f"c{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        writer.create(c, ["alice"])
    assert reader.total(c, ["alice"]) == 3
    writer.storage.flush()
    writer.permission.flush()
    assert reader.total(c, ["alice"]) == 0
    writer.create(c, ["alice"])
    assert reader.total(c, ["alice"]) == 1 == reader.exact(c, ["alice"])


@pytest.mark.services
def test_a_count_inside_a_transaction_that_wrote_is_not_kept(servers):
    reader, _ = servers
    c = f"c{uuid.uuid4().hex[:8]}"
    reader.create(c, ["alice"])
    assert reader.total(c, ["alice"]) == 1
    with pytest.raises(ZeroDivisionError):
        with reader.storage.transaction():
            reader.create(c, ["alice"])
            hidden = reader.create(c, [])
            reader.permission.add_principal_to_ace(f"/{c}/{hidden}", "read", "alice")
            assert reader.total(c, ["alice"]) == 3  # its own writes
            1 / 0
    assert reader.total(c, ["alice"]) == 1 == reader.exact(c, ["alice"])


@pytest.mark.services
def test_counts_stay_exact_while_writers_race(servers):
    reader, writer = servers
    c = f"c{uuid.uuid4().hex[:8]}"
    ids = [writer.create(c, ["alice"] if n % 2 else [], kind="a" if n % 3 else "b") for n in range(20)]
    stop = threading.Event()
    errors: list = []

    def write(seed):
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                target = rng.choice(ids)
                action = rng.randrange(4)
                with writer.storage.transaction():
                    if action == 0:
                        writer.create(c, ["alice"] if rng.random() < 0.5 else [], kind=rng.choice("ab"))
                    elif action == 1:
                        writer.permission.add_principal_to_ace(f"/{c}/{target}", "read", rng.choice(["alice", "bob"]))
                    elif action == 2:
                        writer.permission.remove_principal_from_ace(f"/{c}/{target}", "read", "alice")
                    else:
                        writer.storage.update(c, PARENT, target, {"n": rng.random(), "kind": rng.choice("ab")})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read(principals):
        # Readers of one process share the collection's journal; a
        # filtered count is probed, and corrected when the probe says so.
        try:
            for _ in range(40):
                reader.total(c, principals)
                reader.total(c, principals, kind="a")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    readers = [threading.Thread(target=read, args=(principals,))
               for principals in (["alice"], ["alice", "group"], ["bob"])]
    for thread in threads + readers:
        thread.start()
    for thread in readers:
        thread.join()
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for principals in (["alice"], ["alice", "group"], ["bob"]):
        assert reader.total(c, principals) == reader.exact(c, principals)
        assert reader.total(c, principals, kind="a") == reader.exact(c, principals, kind="a")


@pytest.mark.services
def test_a_token_older_than_the_pruned_log_gets_no_answer(servers):
    reader, writer = servers
    c = f"c{uuid.uuid4().hex[:8]}"
    first = writer.create(c, ["alice"])
    assert reader.total(c, ["alice"]) == 1
    token, _ = reader.permission.acl_changes(None)
    for _ in range(3):
        writer.create(c, ["alice"])
    writer.permission.remove_principal_from_ace(f"/{c}/{first}", "read", "alice")
    # What the triggers do now and then, keeping the latest 2 changes.
    assert writer.client.execute("SELECT cliquet_prune_ace_changes(2)", fetch="one")[0] > 0
    assert reader.permission.acl_changes(token)[1] is None
    # A token is covered once no transaction older than the pruning runs
    # (other tests' may, for a moment).
    deadline = time.monotonic() + 10
    while True:
        fresh, _ = reader.permission.acl_changes(None)
        if reader.permission.acl_changes(fresh)[1] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    writer.permission.add_principal_to_ace(f"/{c}/{first}", "read", "bob")
    assert f"/{c}/{first}" in reader.permission.acl_changes(fresh)[1]
    # The count whose token the log no longer covers counts again, exactly.
    assert reader.total(c, ["alice"]) == 3 == reader.exact(c, ["alice"])
