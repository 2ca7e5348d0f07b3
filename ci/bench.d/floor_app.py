"""The floor of ``ci/bench``: the least a GET of one record can cost.

A bare Pyramid view answering ``GET /v1/articles/{id}`` with one
primary-key ``SELECT`` through a psycopg connection pool and the row
serialised by orjson: no authentication, no permissions, no timestamps, no
tweens. It reads the rows the example app stored (``cliquet_records`` of the
database ``BENCH_FLOOR_URL``) and runs under the same Granian command line,
so our GET divided by its GET is the share of the floor we reach.
"""

import os

import orjson
from psycopg_pool import ConnectionPool
from pyramid.config import Configurator
from pyramid.response import Response

_SELECT = ("SELECT id, last_modified, data FROM cliquet_records "
           "WHERE parent_id = %s AND collection_id = %s AND id = %s AND NOT deleted")
_PARENT = ("SELECT parent_id, collection_id FROM cliquet_records "
           "WHERE collection_id = 'article' LIMIT 1")


def main(global_config, **settings):
    """The WSGI application (``use = call:floor_app:main``)."""
    threads = int(os.environ.get("BENCH_APP_THREADS", "1"))
    pool = ConnectionPool(os.environ["BENCH_FLOOR_URL"], min_size=threads,
                          max_size=threads, open=True)
    where = []  # (parent_id, collection_id) of the preloaded records, found once

    def get_record(request):
        """One row by primary key, as ``{"data": {...}}``."""
        with pool.connection() as conn:
            if not where:
                row = conn.execute(_PARENT).fetchone()
                if row is None:
                    return Response(status=404)
                where.append(row)
            row = conn.execute(_SELECT, (*where[0], request.matchdict["id"])).fetchone()
        if row is None:
            return Response(status=404)
        data = dict(row[2], id=row[0], last_modified=row[1])
        return Response(orjson.dumps({"data": data}), content_type="application/json")

    def hello(request):
        """``/v1/``: what the bench polls until the server is ready."""
        return Response(b"{}", content_type="application/json")

    config = Configurator(settings=settings)
    config.add_route("hello", "/v1/")
    config.add_route("record", "/v1/articles/{id}")
    config.add_view(hello, route_name="hello")
    config.add_view(get_record, route_name="record", request_method="GET")
    return config.make_wsgi_app()
