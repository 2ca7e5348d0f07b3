"""Fast preloading for large sizes: our PostgreSQL storage, in SQL.

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
        with conn.cursor().copy(
                "COPY cliquet_records (parent_id, collection_id, id, last_modified, deleted, data) "
                "FROM STDIN") as copy:
            for i, rid in enumerate(ids):
                copy.write_row((parent, collection, rid, first + i, False,
                                json.dumps(article(start + i))))
        with conn.cursor().copy(
                "COPY cliquet_access_control_entries (object_id, permission, principal) "
                "FROM STDIN") as copy:
            for rid in ids:
                for object_id, permission, principal in aces:
                    copy.write_row((object_id.replace(template, rid), permission, principal))
        if index:
            _index_rows(conn, parent, template, ids, start, first)
        conn.execute(
            "UPDATE cliquet_timestamps SET last_modified = greatest(last_modified, %s) "
            "WHERE parent_id = %s AND collection_id = %s", (first + len(ids) - 1, parent, collection))
    return ids


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
