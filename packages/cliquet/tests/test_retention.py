"""Tombstone retention and the _since horizon."""

import time

from cliquet.retention import TombstonePurger
from cliquet.testing.app import basic_auth, make_app

URL = "/v1/articles"


def test_old_tombstones_are_purged_and_old_since_is_refused():
    app = make_app(tombstones_retention="0.05s")
    purger = app.app.registry.cliquet_tombstone_purger
    purger.interval = 0
    first = app.post_json(URL, {"data": {"title": "a"}}, headers=basic_auth()).json["data"]
    app.delete(f"{URL}/{first['id']}", headers=basic_auth())
    time.sleep(0.1)
    app.post_json(URL, {"data": {"title": "b"}}, headers=basic_auth())  # triggers the purge
    resp = app.get(f"{URL}?_since={first['last_modified']}", headers=basic_auth(), status=400)
    assert resp.json["errno"] == 107
    assert resp.json["details"][0]["name"] == "_since" and "resync" in resp.json["details"][0]["description"]
    latest = app.get(URL, headers=basic_auth()).headers["ETag"].strip('"')
    app.get(f"{URL}?_since={latest}", headers=basic_auth(), status=200)


def test_purger_runs_at_most_once_per_interval():
    class Storage:
        calls = 0

        def purge_deleted(self, collection_id, parent_id, before=None):
            Storage.calls += 1
            return 0

    purger = TombstonePurger(retention=3600, interval=60)
    assert purger.maybe_purge(Storage()) == 0
    assert purger.maybe_purge(Storage()) is None
    assert Storage.calls == 1
