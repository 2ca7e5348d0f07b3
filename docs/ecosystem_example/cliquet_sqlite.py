"""cliquet_sqlite: a Cliquet cache backend in an SQLite database.

The backend example of the documentation ("Writing an ecosystem package"),
run by docs/tests against Cliquet's cache contract suite. Use it with::

    cliquet.cache_backend = cliquet_sqlite
    cliquet.sqlite_cache_path = /var/lib/myproject/cache.sqlite
"""

import contextlib
import json
import sqlite3
import threading
import time

from cliquet.cache import CacheBase
from cliquet.settings import Setting, as_str, declare_settings
from cliquet.storage.exceptions import BackendError

#: The settings this package adds (``cliquet.sqlite_cache_path`` and its
#: environment variable ``CLIQUET_SQLITE_CACHE_PATH``).
SETTINGS = {
    "sqlite_cache_path": Setting(":memory:", as_str, doc="SQLite file of the cache."),
}


class Database:
    """One SQLite connection and the lock that serialises its use."""

    def __init__(self, path):
        self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.lock = threading.Lock()


class SQLiteCache(CacheBase):
    """A :class:`~cliquet.cache.CacheBase` in one SQLite table.

    :param database: a :class:`Database` (several caches may share one).
    :param prefix: prepended to every key.
    """

    def __init__(self, database, prefix=""):
        super().__init__(prefix=prefix)
        self.database = database

    @contextlib.contextmanager
    def _sql(self):
        """The connection, locked; SQLite errors become ``BackendError``."""
        try:
            with self.database.lock:
                yield self.database.connection
        except sqlite3.Error as exc:
            raise BackendError(exc) from exc

    _ALIVE = "(expires IS NULL OR expires > ?)"

    def initialize_schema(self, dry_run=False):
        """Create the table (nothing with ``dry_run``)."""
        with self._sql() as db:
            if not dry_run:
                db.execute("CREATE TABLE IF NOT EXISTS cache "
                           "(key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL)")

    def flush(self):
        """Remove the keys of this prefix only."""
        with self._sql() as db:
            db.execute("DELETE FROM cache WHERE substr(key, 1, ?) = ?", (len(self.prefix), self.prefix))

    def heartbeat(self):
        """True when a query succeeds."""
        try:
            with self._sql() as db:
                db.execute("SELECT 1").fetchone()
            return True
        except BackendError:
            return False

    def ttl(self, key):
        """Seconds left, -1 without expiry, -2 when missing or expired."""
        with self._sql() as db:
            row = db.execute(f"SELECT expires FROM cache WHERE key = ? AND {self._ALIVE}",
                             (self.prefix + key, time.time())).fetchone()
        if row is None:
            return -2
        return -1 if row[0] is None else max(row[0] - time.time(), 0.0)

    def expire(self, key, ttl):
        """Give a live key a new expiry; ``ttl <= 0`` removes it."""
        now = time.time()
        with self._sql() as db:
            if ttl <= 0:
                cursor = db.execute(f"DELETE FROM cache WHERE key = ? AND {self._ALIVE}", (self.prefix + key, now))
            else:
                cursor = db.execute(f"UPDATE cache SET expires = ? WHERE key = ? AND {self._ALIVE}",
                                    (now + ttl, self.prefix + key, now))
            return cursor.rowcount > 0

    def set(self, key, value, ttl=None):
        """Store the JSON text of ``value``; ``ttl <= 0`` leaves nothing."""
        with self._sql() as db:
            if ttl is not None and ttl <= 0:
                db.execute("DELETE FROM cache WHERE key = ?", (self.prefix + key,))
                return
            expires = None if ttl is None else time.time() + ttl
            db.execute("INSERT OR REPLACE INTO cache (key, value, expires) VALUES (?, ?, ?)",
                       (self.prefix + key, json.dumps(value), expires))

    def get(self, key):
        """The value, or ``None``."""
        with self._sql() as db:
            row = db.execute(f"SELECT value FROM cache WHERE key = ? AND {self._ALIVE}",
                             (self.prefix + key, time.time())).fetchone()
        return None if row is None else json.loads(row[0])

    def delete(self, key):
        """Remove the key; return its value if it was alive."""
        with self._sql() as db:
            row = db.execute(f"SELECT value FROM cache WHERE key = ? AND {self._ALIVE}",
                             (self.prefix + key, time.time())).fetchone()
            db.execute("DELETE FROM cache WHERE key = ?", (self.prefix + key,))
        return None if row is None else json.loads(row[0])


def load_from_config(config):
    """Declare this package's settings, then build the cache they describe."""
    declare_settings(config, SETTINGS)
    settings = config.get_settings()
    cache = SQLiteCache(Database(settings["cliquet.sqlite_cache_path"]),
                        prefix=settings["cliquet.cache_prefix"] or "")
    cache.initialize_schema()
    return cache
