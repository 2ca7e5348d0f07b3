"""Fast preloading for large sizes: our PostgreSQL storage, in SQL.

Creating 100 000 records through HTTP takes minutes per server; here the
records past the first ones (preloaded through HTTP, as every other size)
are written straight into ``cliquet_records`` with ``COPY``: the same
articles (:func:`scenarios.article`), fresh UUID4 ids, strictly increasing
``last_modified`` after the collection's newest, the same permissions as the
first record (its ACL rows with the id swapped) and the collection's
timestamp moved to the newest. A server with an indexer reading storage
(the as-shipped one) is then reindexed with ``cliquet-indexing reindex``,
and the database ANALYZEd by the caller.
"""

import json
import os
import subprocess
import time
import uuid

import psycopg

from scenarios import article


def extend(url, start, stop):
    """Add records ``start``..``stop``-1 to the one collection of the database at ``url``.

    Return their ids, in order. The collection must hold at least one record.
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
        conn.execute(
            "UPDATE cliquet_timestamps SET last_modified = greatest(last_modified, %s) "
            "WHERE parent_id = %s AND collection_id = %s", (first + len(ids) - 1, parent, collection))
    return ids


def reindex(server, env):
    """``cliquet-indexing reindex`` on ``server``'s INI file and environment."""
    binary = os.path.join(os.environ[server.app.bin_env], "cliquet-indexing")
    subprocess.run([binary, "reindex", "--ini", server.ini_path, "-q"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
