"""Request-level contracts: one atomic boundary per request, through the
whole stack (WSGI, tweens, resources, backends).

:class:`RequestAtomicityContract` builds the test application
(:func:`cliquet.testing.app.make_app`, shareable ``articles``) on the
backends its ``app_settings`` fixture names, and checks:

* **a request failing after each of its writes leaves no trace**: the
  storage, permission and cache backends are wrapped so that the *k*-th
  write of a request is made and then raises
  :class:`~cliquet.storage.exceptions.BackendError`, for every *k* the request
  makes (a create with permissions, a ``PATCH`` that shares, a ``DELETE``,
  a batch of several writes). Afterwards the records, their permissions,
  the collection timestamp, the cache entries the request wrote and what
  another user can read are exactly as before — or, in a batch, as if only
  the failed sub-request had never been sent;
* **revocation is visible to the very next read**: while another thread
  keeps writing, a reader whose access was just revoked gets ``403`` on the
  record and no longer sees it in lists, nor in ``_since`` lists;
* **racing ``If-Match`` requests have one winner**: threads on a barrier
  send the same ``PATCH`` with one ``ETag``: one ``200``, the rest ``412``.

Usage, in a test module::

    from cliquet.testing.atomicity import RequestAtomicityContract

    class TestMyBackendsRequests(RequestAtomicityContract):
        @pytest.fixture
        def app_settings(self, postgresql_url):
            return {"storage_backend": "cliquet.storage.postgresql", "storage_url": postgresql_url,
                    "permission_backend": "cliquet.permission.postgresql", "permission_url": postgresql_url}

Capabilities (the ``capabilities`` fixture; a test needing a missing one is
skipped with the reason):

``"atomicity"``
    a failed request leaves no trace. Declaring it also asserts that the
    permission backend joined the storage's transactions at start-up
    (``registry.cliquet_atomic_permissions``).
``"isolation"``
    concurrent ``If-Match`` requests never both win.
``"shared"``
    the same race between app servers: 3 processes, each with its own app
    on these backends (built from ``app_settings``, which must then be
    picklable).

``race_rounds`` and ``race_threads`` size the races (default
``CLIQUET_TEST_RACE_ROUNDS`` or 20 rounds, 6 threads). Tests use fresh
random record ids, so the backends may be shared with other tests (each
pytest-xdist worker still needs its own database, schema or prefix).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

import pytest

from cliquet.storage import COMPARISON, Filter
from cliquet.storage.exceptions import BackendError
from cliquet.testing.storage_races import RaceFixtures, race_processes

#: the writing methods of each backend kind, which the fault injector wraps.
WRITES = {
    "storage": ("create", "update", "delete", "delete_all", "purge_deleted"),
    "permission": ("add_user_principal", "remove_user_principal", "add_principal_to_ace",
                   "remove_principal_from_ace", "replace_object_permissions", "delete_object_permissions"),
    "cache": ("set", "delete", "expire", "flush"),
}
URL = "/v1/articles"
#: storage scope and permission object ids of the test app's shareable articles.
COLLECTION, PARENT, URI = "article", "", "/articles/{}"


class InjectedFailure(BackendError):
    """The failure the fault injector raises after a write."""


class FaultInjector:
    """Wraps the writing methods of a registry's backends (as instance
    attributes, so the objects stay what they are): each write is counted
    and, when it is the :attr:`fail_at`-th since :meth:`reset`, made and
    then followed by :class:`InjectedFailure`.

    Cache keys written are remembered with their value before the first
    write (:attr:`cache_before`), to check that a failed request left them so.
    """

    def __init__(self, registry):
        self.registry = registry
        self.writes: list[str] = []
        self.cache_before: dict = {}
        self.fail_at: int | None = None
        self._installed: list = []

    def install(self) -> "FaultInjector":
        """Wrap every write method of the storage, permission and cache backends."""
        for kind, names in WRITES.items():
            backend = getattr(self.registry, kind)
            for name in names:
                setattr(backend, name, self._wrap(kind, backend, name, getattr(backend, name)))
                self._installed.append((backend, name))
        return self

    def uninstall(self) -> None:
        """Give the backends their own methods back."""
        for backend, name in self._installed:
            vars(backend).pop(name, None)
        self._installed.clear()

    def reset(self, fail_at: int | None = None) -> None:
        """Start counting again; fail after the ``fail_at``-th write (never if ``None``)."""
        self.writes, self.cache_before, self.fail_at = [], {}, fail_at

    def _wrap(self, kind, backend, name, method):
        def write(*args, **kwargs):
            if kind == "cache" and args and args[0] not in self.cache_before:
                self.cache_before[args[0]] = type(backend).get(backend, args[0])
            result = method(*args, **kwargs)
            self.writes.append(f"{kind}.{name}")
            if len(self.writes) == self.fail_at:
                raise InjectedFailure(message=f"injected failure after write #{self.fail_at} ({kind}.{name})")
            return result

        return write


class Scenario:
    """One request (or batch) to break at each of its writes.

    :param name: shown in failures.
    :param names: the records it is about; each test run gives each name a
        fresh id (``ids``), and observes those records only.
    :param setup: ``(client, ids) -> None``: the state before, made through
        the app (``client`` has ``alice``, ``bob``, ``carol`` headers and ids).
    :param send: ``(client, ids) -> response``.
    :param parts: for a batch, the names of the records each sub-request
        writes; ``None`` for a single request.
    """

    def __init__(self, name, names, setup, send, parts=None):
        self.name, self.names, self.setup, self.send, self.parts = name, names, setup, send, parts

    def __repr__(self):
        return self.name


def _share(client, ids, name, readers):
    return client.app.put_json(f"{URL}/{ids[name]}", {"data": {"title": name}, "permissions": {"read": readers}},
                               headers=client.alice)


def _batch(client, ids):
    return client.app.post_json("/v1/batch", {"requests": [
        {"method": "PUT", "path": f"/articles/{ids['new']}",
         "body": {"data": {"title": "new"}, "permissions": {"read": [client.bob_id]}}},
        {"method": "PATCH", "path": f"/articles/{ids['shared']}",
         "body": {"data": {"title": "patched"}, "permissions": {"read": [client.bob_id]}}},
        {"method": "DELETE", "path": f"/articles/{ids['doomed']}"},
    ]}, headers=client.alice, expect_errors=True)


SCENARIOS = [
    Scenario("create with permissions", ["new"], lambda c, ids: None,
             lambda c, ids: c.app.post_json(URL, {"data": {"id": ids["new"], "title": "new"},
                                                  "permissions": {"read": [c.bob_id], "write": [c.carol_id]}},
                                            headers=c.alice, expect_errors=True)),
    Scenario("PATCH that shares", ["shared"], lambda c, ids: _share(c, ids, "shared", [c.carol_id]),
             lambda c, ids: c.app.patch_json(f"{URL}/{ids['shared']}",
                                             {"data": {"title": "patched"}, "permissions": {"read": [c.bob_id]}},
                                             headers=c.alice, expect_errors=True)),
    Scenario("DELETE", ["doomed"], lambda c, ids: _share(c, ids, "doomed", [c.bob_id]),
             lambda c, ids: c.app.delete(f"{URL}/{ids['doomed']}", headers=c.alice, expect_errors=True)),
    Scenario("batch of several writes", ["new", "shared", "doomed"],
             lambda c, ids: (_share(c, ids, "shared", [c.carol_id]), _share(c, ids, "doomed", [c.bob_id])),
             _batch, parts=[["new"], ["shared"], ["doomed"]]),
]


@contextlib.contextmanager
def slow_backends(registry, delay: float = 0.001):
    """Make every storage read and every storage or permission write take
    ``delay`` seconds longer (a slower network, as it were): racing requests
    then interleave between their reads and writes instead of running one
    after the other, and a race the backends do not guard shows at once."""
    names = {"storage": ("get", "get_all") + WRITES["storage"], "permission": WRITES["permission"]}
    installed = []
    for kind, methods in names.items():
        backend = getattr(registry, kind)
        for name in methods:
            setattr(backend, name, _slowed(getattr(backend, name), delay))
            installed.append((backend, name))
    try:
        yield
    finally:
        for backend, name in installed:
            vars(backend).pop(name, None)


def _slowed(method, delay):
    def slowed(*args, **kwargs):
        result = method(*args, **kwargs)
        time.sleep(delay)
        return result

    return slowed


class _Client:
    """The app and its three users."""

    def __init__(self, app):
        from cliquet.testing.app import basic_auth

        self.app = app
        self.alice, self.bob, self.carol = (basic_auth(u) for u in ("alice", "bob", "carol"))
        self.bob_id, self.carol_id = (app.get("/v1/", headers=h).json["user"]["id"] for h in (self.bob, self.carol))


def observe(client, ids) -> dict:
    """What can be seen of the records ``ids`` names: in the backends (data
    without timestamps, tombstones, permissions) and through the app (what
    bob gets for each, and which of them his list shows)."""
    registry = client.app.app.registry
    by_id = {object_id: name for name, object_id in ids.items()}
    records, _ = registry.storage.get_all(COLLECTION, PARENT, filters=[Filter("id", list(by_id), COMPARISON.IN)],
                                          include_deleted=True)
    seen: dict = {name: {"record": None} for name in ids}
    for record in records:
        data = {k: v for k, v in record.items() if k not in ("id", "last_modified")}
        seen[by_id[record["id"]]]["record"] = data
    for name, object_id in ids.items():
        acl = registry.permission.get_object_permissions(URI.format(object_id))
        seen[name]["permissions"] = {p: sorted(principals) for p, principals in acl.items() if principals}
        seen[name]["bob gets"] = client.app.get(f"{URL}/{object_id}", headers=client.bob, expect_errors=True).status_int
    listed = client.app.get(f"{URL}?in_id={','.join(by_id)}", headers=client.bob).json["data"]
    for record in listed:
        seen[by_id[record["id"]]]["bob lists"] = True
    return seen


def _timestamp(client) -> int:
    return client.app.app.registry.storage.collection_timestamp(COLLECTION, PARENT)


class RequestAtomicityContract(RaceFixtures):
    """Request-level contracts every set of backends must pass (not
    collected: no ``Test`` prefix). See the module documentation."""

    all_capabilities = frozenset({"atomicity", "isolation", "shared"})

    @pytest.fixture
    def app_settings(self):
        """Settings (without prefix) naming the backends: a subclass provides them."""
        raise NotImplementedError(
            f"{type(self).__name__} needs an `app_settings` fixture returning the settings that name the "
            "backends, e.g. {'storage_backend': 'cliquet.storage.redis', 'storage_url': ..., ...}")

    @pytest.fixture
    def capabilities(self):
        """What the backends promise (default: everything)."""
        return set(self.all_capabilities)

    @pytest.fixture
    def client(self, app_settings):
        """The test app on those backends, schemas initialized."""
        from cliquet.testing.app import SharedArticle, make_app

        app = make_app(resources=(SharedArticle,), **app_settings)
        for kind in ("storage", "permission", "cache"):
            getattr(app.app.registry, kind).initialize_schema()
        return _Client(app)

    @staticmethod
    def require(capabilities, name):
        """Skip unless ``name`` is declared."""
        if name not in capabilities:
            pytest.skip(f"the backends do not declare the {name!r} capability")

    # -- a failure after each write ----------------------------------------------------

    @pytest.mark.parametrize("scenario", SCENARIOS, ids=repr)
    def test_a_request_failing_after_any_of_its_writes_leaves_no_trace(self, client, capabilities, scenario):
        self.require(capabilities, "atomicity")
        assert client.app.app.registry.cliquet_atomic_permissions is True, (
            "'atomicity' is declared, yet the permission backend did not join the storage's transactions")
        injector = FaultInjector(client.app.app.registry).install()
        try:
            self._break_each_write(client, injector, scenario)
        finally:
            injector.uninstall()

    def _fresh(self, client, scenario):
        ids = {name: str(uuid.uuid4()) for name in scenario.names}
        scenario.setup(client, ids)
        return ids, observe(client, ids), _timestamp(client)

    def _break_each_write(self, client, injector, scenario):
        ids, before, _ = self._fresh(client, scenario)
        injector.reset()
        response = scenario.send(client, ids)
        writes = list(injector.writes)
        assert response.status_int < 400, f"{scenario}: the request itself fails: {response.status}"
        if scenario.parts:
            assert all(r["status"] < 400 for r in response.json["responses"]), response.json
        done = observe(client, ids)
        assert writes, f"{scenario}: no write seen"
        for name in scenario.names:
            assert done[name] != before[name], f"{scenario}: {name} looks the same after the request"

        for k in range(1, len(writes) + 1):
            ids, before, stamp = self._fresh(client, scenario)
            injector.reset(fail_at=k)
            response = scenario.send(client, ids)
            cache_before, made = dict(injector.cache_before), list(injector.writes)
            injector.reset()
            where = f"{scenario}, failing after write #{k} of {writes}"
            assert len(made) >= k, f"{where}: the request made only {made}"
            if scenario.parts is None:
                assert response.status_int == 503, f"{where}: answered {response.status}"
                expected, failed = before, scenario.names
                assert _timestamp(client) == stamp, f"{where}: the collection timestamp moved"
            else:
                statuses = [r["status"] for r in response.json["responses"]]
                assert statuses.count(503) == 1 and all(s < 400 or s == 503 for s in statuses), f"{where}: {statuses}"
                failed = scenario.parts[statuses.index(503)]
                expected = {name: before[name] if name in failed else done[name] for name in scenario.names}
                kept = [r["body"]["data"]["last_modified"] for r in response.json["responses"] if r["status"] < 400]
                assert _timestamp(client) == max([stamp] + kept), f"{where}: the collection timestamp moved"
            assert observe(client, ids) == expected, f"{where}: traces left of {failed}"
            cache = client.app.app.registry.cache
            for key, value in cache_before.items():
                assert cache.get(key) == value, f"{where}: cache entry {key!r} changed"

    # -- revocation under concurrent writes -----------------------------------------

    def test_revocation_is_visible_to_the_very_next_read_while_others_write(self, client, race_rounds):
        import webtest

        wsgi = client.app.app
        ids = {"shared": str(uuid.uuid4())}
        _share(client, ids, "shared", [client.bob_id])
        url = f"{URL}/{ids['shared']}"
        stop, errors = threading.Event(), []

        def writer():  # alice writes other records all along
            other, n = webtest.TestApp(wsgi), 0
            while not stop.is_set():
                n += 1
                body = {"data": {"title": f"noise {n}"}, "permissions": {"read": [client.bob_id]} if n % 2 else {}}
                response = other.post_json(URL, body, headers=client.alice, expect_errors=True)
                if response.status_int >= 400:
                    errors.append(f"writer: {response.status}")
                stop.wait(0.005)

        def reader():  # bob lists all along, also while a revocation is half done
            other = webtest.TestApp(wsgi)
            while not stop.is_set():
                response = other.get(f"{URL}?in_id={ids['shared']}", headers=client.bob, expect_errors=True)
                if response.status_int >= 400:
                    errors.append(f"reader: {response.status}")

        threads = [threading.Thread(target=fn, daemon=True) for fn in (writer, reader)]
        with slow_backends(client.app.app.registry):
            for thread in threads:
                thread.start()
            try:
                for round_number in range(race_rounds):
                    granted = client.app.patch_json(url, {"permissions": {"read": [client.bob_id]}},
                                                    headers=client.alice)
                    since = granted.json["data"]["last_modified"] - 1
                    assert client.app.get(url, headers=client.bob).status_int == 200
                    assert ids["shared"] in self._bob_lists(client, ids, since)
                    client.app.patch_json(url, {"permissions": {"read": []}}, headers=client.alice)
                    where = f"round {round_number}, right after the revocation"
                    assert client.app.get(url, headers=client.bob, expect_errors=True).status_int == 403, where
                    assert ids["shared"] not in self._bob_lists(client, ids, since), where
            finally:
                stop.set()
                for thread in threads:
                    thread.join(60)
        assert errors == [], f"concurrent requests failed: {errors[:5]}"

    @staticmethod
    def _bob_lists(client, ids, since) -> set:
        """The ids bob sees in a plain list, a filtered list and a ``_since`` list."""
        seen = set()
        one = ids["shared"]
        for query in (f"?in_id={one}", f"?_since={since}&in_id={one}", f"?_since={since}&_sort=last_modified&_limit=100",
                      "?_sort=-last_modified&_limit=100"):
            listed = client.app.get(URL + query, headers=client.bob).json["data"]
            seen |= {r["id"] for r in listed if not r.get("deleted")}
        return seen

    # -- racing If-Match requests -------------------------------------------------------

    def test_racing_if_match_requests_have_one_winner(self, client, capabilities, race_rounds, race_threads):
        self.require(capabilities, "isolation")
        record = client.app.post_json(URL, {"data": {"title": "contended"}}, headers=client.alice).json["data"]
        url = f"{URL}/{record['id']}"
        etag = f'"{record["last_modified"]}"'
        with slow_backends(client.app.app.registry):
            for round_number in range(race_rounds):
                etag = self._race_once(client, url, etag, round_number, race_threads)

    @staticmethod
    def _race_once(client, url, etag, round_number, race_threads):
        """One round: ``race_threads`` PATCHes with ``If-Match: etag``; return the new ETag."""
        import webtest

        wsgi = client.app.app
        barrier = threading.Barrier(race_threads)
        statuses: dict = {}

        def contender(me):
            app = webtest.TestApp(wsgi)
            barrier.wait(timeout=60)
            # A title of this round's own: a PATCH that changes nothing writes nothing.
            response = app.patch_json(url, {"data": {"title": f"round {round_number}: {me}"}},
                                      headers={**client.alice, "If-Match": etag}, expect_errors=True)
            statuses[me] = (response.status_int, response.headers.get("ETag"))

        threads = [threading.Thread(target=contender, args=(n,)) for n in range(race_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        codes = sorted(code for code, _ in statuses.values())
        assert codes == [200] + [412] * (race_threads - 1), f"round {round_number}: {codes}"
        winner = next(me for me, (code, _) in statuses.items() if code == 200)
        current = client.app.get(url, headers=client.alice)
        assert current.json["data"]["title"] == f"round {round_number}: {winner}", f"round {round_number}"
        assert current.headers["ETag"] == statuses[winner][1]
        return current.headers["ETag"]

    def test_racing_if_match_requests_between_app_servers_have_one_winner(self, client, app_settings, capabilities,
                                                                          race_rounds):
        self.require(capabilities, "shared")
        processes = 3
        record = client.app.post_json(URL, {"data": {"title": "contended"}}, headers=client.alice).json["data"]
        outcomes = race_processes(
            app_server_racing, lambda n, barrier, results: (
                app_settings, barrier, f"{URL}/{record['id']}", race_rounds, f"s{n}", results),
            outcomes_each=race_rounds, processes=processes, timeout=180)
        for round_number in range(race_rounds):
            statuses = sorted(status for n, _, status in outcomes if n == round_number)
            assert statuses == [200] + [412] * (processes - 1), f"round {round_number}: {statuses}"
        last = max(outcomes)[0]
        winner = next(me for n, me, status in outcomes if n == last and status == 200)
        current = client.app.get(f"{URL}/{record['id']}", headers=client.alice).json["data"]
        assert current["title"] == f"round {last}: {winner}"


def app_server_racing(app_settings, barrier, url, rounds, me, results) -> None:
    """An app server process of the ``"shared"`` race: its own app on the
    same backends; each round, read the record's ``ETag``, wait for the
    others, ``PATCH`` with ``If-Match``, wait for the others again; put
    ``(round, me, status)`` on ``results`` (599 for an exception)."""
    import webtest

    from cliquet.testing.app import SharedArticle, basic_auth, make_wsgi_app

    app = webtest.TestApp(make_wsgi_app(resources=(SharedArticle,), **app_settings))
    alice = basic_auth("alice")
    for round_number in range(rounds):
        try:
            etag = app.get(url, headers=alice).headers["ETag"]
            barrier.wait(timeout=60)
            status = app.patch_json(url, {"data": {"title": f"round {round_number}: {me}"}},
                                    headers={**alice, "If-Match": etag}, expect_errors=True).status_int
            barrier.wait(timeout=60)
        except Exception:  # reported to the parent as a status no request answers
            status = 599
        results.put((round_number, me, status))
