"""Environment of one server: backend URLs, a fresh database, its schema.

PostgreSQL and Redis come from ``ci/services`` (``CLIQUET_TEST_POSTGRESQL_URL``,
``CLIQUET_TEST_REDIS_URL``). Each server gets an empty database of its own
(``bench_<label>``, dropped and created again) or Redis db (15, 14, ...)
with an embedded index file of its own, emptied, so no figure depends on
what an earlier run left behind.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

SERVICE_VARS = {
    "postgresql": "CLIQUET_TEST_POSTGRESQL_URL",
    "redis": "CLIQUET_TEST_REDIS_URL",
}
#: Redis database numbers the bench flushes and uses, one per server label
#: (the first server gets 15, the next 14...).
REDIS_DBS = {}


def _slug(label):
    return "bench_" + "".join(c if c.isalnum() else "_" for c in label.lower())


def _postgresql_database(url, label):
    """Drop and create the database of ``label``; return its URL."""
    parts = urllib.parse.urlsplit(url)
    name = _slug(label)
    psql = shutil.which("psql")
    if psql is None:
        raise RuntimeError("psql not found: run ci/services first")
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run([psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       check=True, stdout=subprocess.DEVNULL)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


#: label → URL of the PostgreSQL database the bench made for that server.
DATABASES = {}


def analyze(label):
    """ANALYZE the server's PostgreSQL database after a preload (autovacuum
    would within a minute; the bench measures sooner). Kinto gets the same."""
    url = DATABASES.get(label)
    if url:
        subprocess.run([shutil.which("psql"), url, "-q", "-c", "ANALYZE"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _redis_database(url, label):
    """Flush the Redis db of ``label``; return its URL."""
    parts = urllib.parse.urlsplit(url)
    db = REDIS_DBS.setdefault(label, str(15 - len(REDIS_DBS)))
    url = urllib.parse.urlunsplit(parts._replace(path="/" + db))
    cli = shutil.which("redis-cli")
    if cli is None:
        raise RuntimeError("redis-cli not found: run ci/services first")
    subprocess.run([cli, "-u", url, "FLUSHDB"], check=True, stdout=subprocess.DEVNULL)
    return url


def _fresh_index(label):
    """An empty embedded index file of ``label``'s own; return its path."""
    path = os.path.join(tempfile.gettempdir(), f"cliquet-{_slug(label)}-index.db")
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return path


def environment(server):
    """The environment to start ``server`` with, or None to skip it.

    A server whose service is not configured is skipped with a message that
    names the variable to set.
    """
    env = dict(os.environ)
    urls = {}
    for need in server.needs:
        var = SERVICE_VARS[need]
        if not os.environ.get(var):
            print(f"SKIPPED {server.label}: {var} is not set "
                  f"(eval \"$(ci/services)\" first)", file=sys.stderr)
            return None
        if need == "postgresql" and server.shares:
            # the database of another server of the group, started before it
            urls[need] = DATABASES[server.label] = DATABASES[server.shares]
        elif need == "postgresql":
            urls[need] = DATABASES[server.label] = _postgresql_database(os.environ[var], server.label)
        else:
            urls[need] = _redis_database(os.environ[var], server.label)
    for key, value in server.env.items():
        env[key] = value.format(**urls)
    if (("redis" in server.needs or "postgresql" in server.needs and server.indexer == "embedded")
            and "CLIQUET_INDEXING_URL" not in env):
        # The embedded index's default file outlives the flushed db or the
        # re-created database (it is named after the storage URL): a fresh
        # one too, or the search would find what earlier runs indexed.
        env["CLIQUET_INDEXING_URL"] = "sqlite:///" + _fresh_index(server.label)
    if server.migrate:
        server.app.migrate(server, env)
    return env
