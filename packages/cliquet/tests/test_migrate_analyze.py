"""`cliquet migrate` leaves PostgreSQL with planner statistics (issue 18):
a freshly migrated database otherwise plans shared lists by guesses."""

import psycopg
import pytest

from cliquet.schema import migrate_registry
from cliquet.testing.app import make_app
from cliquet.testing.plugin import postgresql_schema

pytestmark = pytest.mark.services


@pytest.fixture
def pg_url(postgresql_url, cliquet_worker_prefix):
    """A fresh, empty PostgreSQL schema of this test."""
    with postgresql_schema(postgresql_url, f"{cliquet_worker_prefix}anlz") as url:
        yield url


def analyzed(url):
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname LIKE 'cliquet_%'").fetchall()
    return dict(rows)


def test_postgresql_migrate_analyzes_the_tables_last(pg_url):
    settings = {"storage_backend": "cliquet.storage.postgresql", "storage_url": pg_url,
                "permission_backend": "cliquet.permission.postgresql", "permission_url": pg_url,
                "schema_check": "ignore"}
    registry = make_app(settings).app.registry
    migrate_registry(registry, dry_run=True)
    assert not any(analyzed(pg_url).values())  # a dry run changes nothing
    lines = []

    class Out:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    migrate_registry(registry, out=Out())
    stats = analyzed(pg_url)
    for table in ("cliquet_records", "cliquet_timestamps", "cliquet_access_control_entries",
                  "cliquet_user_principals"):
        assert stats.get(table) is True, table
    said = "".join(lines).splitlines()
    assert said[-2:] == ["storage: statistics refreshed (ANALYZE)", "permission: statistics refreshed (ANALYZE)"]
