"""Fast preloading for large sizes, without HTTP: in SQL on PostgreSQL
(ours and Kinto's), through the library's backends on Redis.

Creating 100 000 records through HTTP takes minutes per server; here the
records past the first ones (preloaded through HTTP, as every other size)
are written straight into ``cliquet_records`` with ``COPY``: the same
articles (:func:`scenarios.article`), fresh UUID4 ids, strictly increasing
``last_modified`` after the collection's newest, the same permissions as the
first record (its ACL rows with the id swapped) and the collection's
timestamp moved to the newest. The index follows in bulk too: with the
PostgreSQL indexer its rows are computed by the indexer's own analysis
(:func:`cliquet_indexing.postgresql.analysis.analyse`, the principals of the
first record's index row) and copied into its table in the same transaction
(:func:`extend` with ``index=True``: no reindex pass through the
application, which took over five minutes for 100 000 records; 100 000
records and their index rows took 8.5 minutes on the 2-core machine at load
average 14, unloaded far less); another indexer (the embedded one) is filled
with ``cliquet-indexing reindex``. The caller ANALYZEs the database.

Kinto on PostgreSQL gets the same records the same way (:func:`extend_kinto`:
its ``objects`` table, ids, ``last_modified`` after the collection's newest
and the first record's ACEs), so that the 100 000-record stage compares both
servers on the same data. Our Redis servers get them through the library's
own backends (:func:`extend_backends`).
"""

import json
import os
import subprocess
import time
import uuid

import psycopg

from scenarios import article


def extend(url, start, stop, index=False):
    """Add records ``start``..``stop``-1 to the one collection of the database at ``url``.

    Return their ids, in order. The collection must hold at least one record.
    ``index``: write their rows of the PostgreSQL indexer's table too (the
    first record must be indexed there), in the same transaction.
    """
    ids = [str(uuid.uuid4()) for _ in range(start, stop)]
    with psycopg.connect(url) as conn:
        parent, collection, template = conn.execute(
            "SELECT parent_id, collection_id, id FROM cliquet_records WHERE NOT deleted "
            "ORDER BY last_modified LIMIT 1").fetchone()
        newest = conn.execute(
            "SELECT max(last_modified) FROM cliquet_records WHERE parent_id = %s AND collection_id = %s",
            (parent, collection)).fetchone()[0]
        first = max(newest + 1, int(time.time() * 1000))
        aces = conn.execute(
            "SELECT object_id, permission, principal FROM cliquet_access_control_entries "
            "WHERE object_id LIKE %s", (f"%/{template}",)).fetchall()
        # The row trigger that keeps the collection's record count updates
        # the one counter row once per record: in one transaction of 100 000
        # inserts each update walks the row's growing chain of versions (over
        # two minutes). Off for the copy, and the count moved once after it.
        conn.execute("ALTER TABLE cliquet_records DISABLE TRIGGER cliquet_records_count")
        with conn.cursor().copy(
                "COPY cliquet_records (parent_id, collection_id, id, last_modified, deleted, data) "
                "FROM STDIN") as copy:
            for i, rid in enumerate(ids):
                copy.write_row((parent, collection, rid, first + i, False,
                                json.dumps(article(start + i))))
        conn.execute("ALTER TABLE cliquet_records ENABLE TRIGGER cliquet_records_count")
        with conn.cursor().copy(
                "COPY cliquet_access_control_entries (object_id, permission, principal) "
                "FROM STDIN") as copy:
            for rid in ids:
                for object_id, permission, principal in aces:
                    copy.write_row((object_id.replace(template, rid), permission, principal))
        if index:
            _index_rows(conn, parent, template, ids, start, first)
        conn.execute(
            "UPDATE cliquet_timestamps SET last_modified = greatest(last_modified, %s), "
            "record_count = record_count + %s WHERE parent_id = %s AND collection_id = %s",
            (first + len(ids) - 1, len(ids), parent, collection))
    return ids


def extend_kinto(url, start, stop):
    """Add records ``start``..``stop``-1 to the one record collection of
    Kinto's database at ``url``, as :func:`extend` does for ours; return
    their ids.

    Kinto keeps records in ``objects`` (``resource_name`` ``record``, the
    data without ``id`` and ``last_modified``, a ``TIMESTAMP`` column). Its
    row trigger, which would keep the strictly increasing timestamps given
    here anyway, is disabled for the copy (and enabled again in the same
    transaction): its cached plan, made on a small table, reads the
    collection's newest timestamp with a sequential scan, so a copy of
    100 000 rows took quadratic time (145 rows/s at 45 000).
    """
    ids = [str(uuid.uuid4()) for _ in range(start, stop)]
    with psycopg.connect(url) as conn:
        parent, template = conn.execute(
            "SELECT parent_id, id FROM objects WHERE resource_name = 'record' AND NOT deleted "
            "ORDER BY last_modified LIMIT 1").fetchone()
        newest = conn.execute(
            "SELECT as_epoch(max(last_modified)) FROM objects WHERE parent_id = %s "
            "AND resource_name = 'record'", (parent,)).fetchone()[0]
        first = max(newest + 1, int(time.time() * 1000))
        aces = conn.execute(
            "SELECT object_id, permission, principal FROM access_control_entries WHERE object_id LIKE %s",
            (f"%/{template}",)).fetchall()
        conn.execute("ALTER TABLE objects DISABLE TRIGGER tgr_objects_last_modified")
        with conn.cursor().copy(
                "COPY objects (id, parent_id, resource_name, last_modified, data, deleted) "
                "FROM STDIN") as copy:
            for i, rid in enumerate(ids):
                copy.write_row((rid, parent, "record", _kinto_time(first + i),
                                json.dumps(article(start + i)), False))
        conn.execute("ALTER TABLE objects ENABLE TRIGGER tgr_objects_last_modified")
        with conn.cursor().copy(
                "COPY access_control_entries (object_id, permission, principal) FROM STDIN") as copy:
            for rid in ids:
                for object_id, permission, principal in aces:
                    copy.write_row((object_id.replace(template, rid), permission, principal))
        conn.execute(
            "UPDATE timestamps SET last_modified = greatest(last_modified, from_epoch(%s)) "
            "WHERE parent_id = %s AND resource_name = 'record'", (first + len(ids) - 1, parent))
    return ids


#: The example app's shareable articles: storage collection and URI prefix.
EXAMPLE_COLLECTION, EXAMPLE_PATH = "article", "/articles"


def extend_backends(env, template, start, stop):
    """Add records ``start``..``stop``-1 to the example's articles through
    the storage and permission backends the server's environment ``env``
    names (Redis: no SQL to copy into), in transactions of 500 as the
    resource writes them (permissions, then the record); each gets the
    permissions of the record ``template``. Return their ids."""
    from cliquet.testing import make_config

    config = make_config(environ=env)
    settings = config.get_settings()
    storage = config.maybe_dotted(settings["cliquet.storage_backend"]).load_from_config(config)
    permission = config.maybe_dotted(settings["cliquet.permission_backend"]).load_from_config(config)
    permission.join_transactions(storage)
    acl = {name: sorted(principals) for name, principals in
           permission.get_object_permissions(f"{EXAMPLE_PATH}/{template}").items()}
    if not acl:
        raise RuntimeError(f"the record {template} has no permissions to copy")
    ids = [str(uuid.uuid4()) for _ in range(start, stop)]
    for first in range(0, len(ids), 500):
        with storage.transaction():
            for i in range(first, min(len(ids), first + 500)):
                permission.replace_object_permissions(f"{EXAMPLE_PATH}/{ids[i]}", acl)
                storage.create(EXAMPLE_COLLECTION, "", dict(article(start + i), id=ids[i]))
    return ids


def _kinto_time(epoch_ms):
    """Kinto's ``TIMESTAMP`` value of ``epoch_ms`` (its ``from_epoch``: UTC, naive)."""
    import datetime

    return datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.UTC).replace(tzinfo=None)


def _index_rows(conn, parent, template, ids, start, first):
    """COPY the PostgreSQL indexer's rows of the new records (the same
    columns its upsert writes, computed by the same analysis)."""
    from cliquet_indexing.postgresql.analysis import analyse

    table = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_name LIKE '%%cliquet_index' ORDER BY length(table_name) LIMIT 1").fetchone()
    if table is None:
        raise RuntimeError("no PostgreSQL indexer table in this database")
    table = table[0]
    row = conn.execute(f"SELECT resource, principals FROM {table} WHERE record_id = %s AND parent_id = %s",
                       (template, parent)).fetchone()
    if row is None:
        raise RuntimeError(f"the first record {template} is not in {table}: nothing to copy principals from")
    resource, principals = row
    with conn.cursor().copy(
            f"COPY {table} (resource, parent_id, record_id, last_modified, deleted, principals, fields, "
            "leaves, words, data) FROM STDIN") as copy:
        for i, rid in enumerate(ids):
            record = dict(article(start + i), id=rid, last_modified=first + i)
            words, leaves, fields = analyse(record)
            copy.write_row((resource, parent, rid, first + i, False, principals, fields, leaves, words,
                            json.dumps(record, ensure_ascii=False)))


def reindex(server, env):
    """``cliquet-indexing reindex`` on ``server``'s INI file and environment."""
    binary = os.path.join(os.environ[server.app.bin_env], "cliquet-indexing")
    subprocess.run([binary, "reindex", "--ini", server.ini_path, "-q"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
