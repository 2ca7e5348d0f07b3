"""Versioned schema migrations for the PostgreSQL backends.

Each backend (``storage``, ``cache``, ``permission``) owns a list of
migrations; the version applied is recorded in the ``cliquet_schema`` table
of the connection's schema (the first one of its ``search_path``). Running
them again does nothing, and a database recorded at a *newer* version than
this code knows is refused with :class:`SchemaVersionError` rather than
touched. Concurrent migrations (several app servers starting at once) are
serialised by an advisory lock.

A migration is a list of SQL statements; version *n* is the *n*-th item, so
migrations are only ever appended.
"""

from __future__ import annotations

import logging
from typing import Sequence

from cliquet.storage.exceptions import BackendError

logger = logging.getLogger(__name__)


class SchemaVersionError(BackendError):
    """The database holds a newer schema than this version of Cliquet knows."""


def _count_records_function(update: str) -> str:
    """The trigger function keeping ``cliquet_timestamps.record_count``:
    ``delta`` is +1 when a live record appears, -1 when one goes, and
    ``update`` applies it."""
    return """
        CREATE OR REPLACE FUNCTION cliquet_count_records() RETURNS trigger AS $$
        DECLARE
            delta INTEGER := 0;
        BEGIN
            IF TG_OP = 'INSERT' THEN
                IF NOT NEW.deleted THEN delta := 1; END IF;
            ELSIF TG_OP = 'DELETE' THEN
                IF NOT OLD.deleted THEN delta := -1; END IF;
            ELSIF OLD.deleted AND NOT NEW.deleted THEN
                delta := 1;
            ELSIF NEW.deleted AND NOT OLD.deleted THEN
                delta := -1;
            END IF;""" + update + """
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """


STORAGE_MIGRATIONS: list[list[str]] = [
    # 1: records (live and tombstones) and the per-collection timestamp counter.
    [
        """
        CREATE TABLE IF NOT EXISTS cliquet_records (
            parent_id TEXT COLLATE "C" NOT NULL,
            collection_id TEXT COLLATE "C" NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            last_modified BIGINT NOT NULL,
            deleted BOOLEAN NOT NULL DEFAULT FALSE,
            data JSONB NOT NULL DEFAULT '{}'::jsonb,
            PRIMARY KEY (parent_id, collection_id, id)
        )
        """,
        # _since polling, the default sort (-last_modified) and keyset pages.
        # (Not with id: the planner would then pick it over the primary key
        # for lookups by id on tables not analyzed yet.)
        """
        CREATE INDEX IF NOT EXISTS cliquet_records_last_modified_idx
            ON cliquet_records (parent_id, collection_id, last_modified)
        """,
        # purge_deleted(before=...) across collections.
        """
        CREATE INDEX IF NOT EXISTS cliquet_records_tombstones_idx
            ON cliquet_records (last_modified) WHERE deleted
        """,
        """
        CREATE TABLE IF NOT EXISTS cliquet_timestamps (
            parent_id TEXT COLLATE "C" NOT NULL,
            collection_id TEXT COLLATE "C" NOT NULL,
            last_modified BIGINT NOT NULL,
            PRIMARY KEY (parent_id, collection_id)
        )
        """,
    ],
    # 2: the horizon of purged tombstones, so that a _since older than it is
    # refused instead of silently missing deletions.
    [
        """
        ALTER TABLE cliquet_timestamps
            ADD COLUMN IF NOT EXISTS purged_before BIGINT
        """,
    ],
    # 3: the number of live records per collection, kept by a trigger, so
    # that an unfiltered Total-Records costs one primary-key read.
    [
        """
        ALTER TABLE cliquet_timestamps
            ADD COLUMN IF NOT EXISTS record_count BIGINT NOT NULL DEFAULT 0
        """,
        """
        UPDATE cliquet_timestamps AS t SET record_count = (
            SELECT count(*) FROM cliquet_records AS r
             WHERE r.parent_id = t.parent_id AND r.collection_id = t.collection_id AND NOT r.deleted)
        """,
        _count_records_function("""
            IF delta <> 0 THEN
                UPDATE cliquet_timestamps SET record_count = record_count + delta
                 WHERE parent_id = COALESCE(NEW.parent_id, OLD.parent_id)
                   AND collection_id = COALESCE(NEW.collection_id, OLD.collection_id);
            END IF;
        """),
        "DROP TRIGGER IF EXISTS cliquet_records_count ON cliquet_records",
        """
        CREATE TRIGGER cliquet_records_count
            AFTER INSERT OR DELETE OR UPDATE OF deleted ON cliquet_records
            FOR EACH ROW EXECUTE FUNCTION cliquet_count_records()
        """,
    ],
    # 4: a collection's generation, which moves when a live record goes
    # without a tombstone (the same update as its count) or the counter row
    # is created again (after a TRUNCATE): counts kept up to date from the
    # records changed since a timestamp (PostgreSQLStorage's count cache)
    # cannot see a record that left no row, and start again from scratch
    # when the generation moved. (Purged tombstones move purged_before.)
    [
        "CREATE SEQUENCE IF NOT EXISTS cliquet_timestamps_generations",
        """
        ALTER TABLE cliquet_timestamps
            ADD COLUMN IF NOT EXISTS generation BIGINT NOT NULL DEFAULT nextval('cliquet_timestamps_generations')
        """,
        _count_records_function("""
            IF TG_OP = 'DELETE' AND delta <> 0 THEN
                UPDATE cliquet_timestamps
                   SET record_count = record_count + delta,
                       generation = nextval('cliquet_timestamps_generations')
                 WHERE parent_id = OLD.parent_id AND collection_id = OLD.collection_id;
            ELSIF delta <> 0 THEN
                UPDATE cliquet_timestamps SET record_count = record_count + delta
                 WHERE parent_id = NEW.parent_id AND collection_id = NEW.collection_id;
            END IF;
        """),
    ],
]

CACHE_MIGRATIONS: list[list[str]] = [
    [
        # Unlogged: a cache survives a clean restart but needs no WAL. Values
        # are JSON text: never queried, so no JSONB parsing on every write.
        """
        CREATE UNLOGGED TABLE IF NOT EXISTS cliquet_cache (
            key TEXT COLLATE "C" PRIMARY KEY,
            value TEXT NOT NULL,
            expires_at DOUBLE PRECISION
        )
        """,
        """
        CREATE INDEX IF NOT EXISTS cliquet_cache_expires_idx
            ON cliquet_cache (expires_at) WHERE expires_at IS NOT NULL
        """,
    ],
]

PERMISSION_MIGRATIONS: list[list[str]] = [
    [
        """
        CREATE TABLE IF NOT EXISTS cliquet_user_principals (
            user_id TEXT COLLATE "C" NOT NULL,
            principal TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (user_id, principal)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS cliquet_access_control_entries (
            object_id TEXT COLLATE "C" NOT NULL,
            permission TEXT COLLATE "C" NOT NULL,
            principal TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (object_id, permission, principal)
        )
        """,
        # get_accessible_objects: by permission and principal, then object prefix.
        """
        CREATE INDEX IF NOT EXISTS cliquet_aces_principal_idx
            ON cliquet_access_control_entries (permission, principal, object_id)
        """,
    ],
    # 2: the change feed of the ACEs (PostgreSQLPermission.acl_changes): every
    # statement that inserts, deletes or updates ACEs logs the (object,
    # principal) pairs it changed with its transaction id, so a reader can
    # ask "what changed that my snapshot did not see" exactly, whatever the
    # commit order. The log keeps the latest changes only (see
    # cliquet_log_ace_changes); the horizon says which tokens it still covers.
    [
        """
        CREATE TABLE IF NOT EXISTS cliquet_ace_changes (
            changed_by XID8 NOT NULL DEFAULT pg_current_xact_id(),
            object_id TEXT COLLATE "C" NOT NULL,
            principal TEXT COLLATE "C" NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS cliquet_ace_changes_by_idx ON cliquet_ace_changes (changed_by)",
        # The tokens the log still covers: changes by transactions up to
        # pruned_through may be gone (a token whose oldest running
        # transaction comes after it lacks none), and a token must have
        # seen reset_by (the migration, the latest TRUNCATE of the ACEs).
        """
        CREATE TABLE IF NOT EXISTS cliquet_ace_changes_horizon (
            only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
            pruned_through XID8 NOT NULL,
            reset_by XID8 NOT NULL
        )
        """,
        """
        INSERT INTO cliquet_ace_changes_horizon (pruned_through, reset_by) VALUES ('0', pg_current_xact_id())
        ON CONFLICT (only_row) DO UPDATE SET reset_by = EXCLUDED.reset_by
        """,
        # Forget all but the latest ``keep`` changes (never waiting for
        # another pruner); return how many went.
        """
        CREATE OR REPLACE FUNCTION cliquet_prune_ace_changes(keep BIGINT) RETURNS BIGINT AS $$
        DECLARE
            bound XID8;
            gone BIGINT := 0;
        BEGIN
            IF pg_try_advisory_xact_lock(hashtext('cliquet_ace_changes')) THEN
                SELECT changed_by INTO bound FROM cliquet_ace_changes
                 ORDER BY changed_by DESC OFFSET keep LIMIT 1;
                IF bound IS NOT NULL THEN
                    DELETE FROM cliquet_ace_changes WHERE changed_by <= bound;
                    GET DIAGNOSTICS gone = ROW_COUNT;
                    UPDATE cliquet_ace_changes_horizon SET pruned_through = greatest(pruned_through, bound);
                END IF;
            END IF;
            RETURN gone;
        END
        $$ LANGUAGE plpgsql
        """,
        # Log the changed pairs; now and then (one statement in 512) keep
        # the latest 100 000 only.
        """
        CREATE OR REPLACE FUNCTION cliquet_log_ace_changes() RETURNS trigger AS $$
        BEGIN
            INSERT INTO cliquet_ace_changes (object_id, principal)
                SELECT DISTINCT object_id, principal FROM changed_aces;
            IF random() < 1.0 / 512 THEN
                PERFORM cliquet_prune_ace_changes(100000);
            END IF;
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """,
        # After a TRUNCATE no token can be followed.
        """
        CREATE OR REPLACE FUNCTION cliquet_forget_ace_changes() RETURNS trigger AS $$
        BEGIN
            UPDATE cliquet_ace_changes_horizon SET reset_by = pg_current_xact_id();
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """,
    ] + [
        f"DROP TRIGGER IF EXISTS cliquet_aces_{name} ON cliquet_access_control_entries"
        for name in ("inserted", "deleted", "updated_from", "updated_to", "truncated")
    ] + [
        f"""
        CREATE TRIGGER cliquet_aces_{name} AFTER {event} ON cliquet_access_control_entries
            REFERENCING {table} TABLE AS changed_aces
            FOR EACH STATEMENT EXECUTE FUNCTION cliquet_log_ace_changes()
        """
        for name, event, table in (("inserted", "INSERT", "NEW"), ("deleted", "DELETE", "OLD"),
                                   ("updated_from", "UPDATE", "OLD"), ("updated_to", "UPDATE", "NEW"))
    ] + [
        """
        CREATE TRIGGER cliquet_aces_truncated AFTER TRUNCATE ON cliquet_access_control_entries
            FOR EACH STATEMENT EXECUTE FUNCTION cliquet_forget_ace_changes()
        """,
    ],
]

_SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS cliquet_schema (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def current_version(conn, component: str) -> int:
    """Return the schema version recorded for ``component`` (0 if none)."""
    exists = conn.execute("SELECT to_regclass('cliquet_schema') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT version FROM cliquet_schema WHERE component = %s", (component,)).fetchone()
    return row[0] if row else 0


def migrate(client, component: str, migrations: Sequence[Sequence[str]], dry_run: bool = False) -> list[int]:
    """Apply the migrations of ``component`` not applied yet, in one
    transaction; return the versions applied (or that would be, with
    ``dry_run``).

    :raises SchemaVersionError: the database is newer than ``migrations``.
    :raises BackendError: the server failed.
    """
    latest = len(migrations)

    def check(version):
        if version > latest:
            raise SchemaVersionError(
                None,
                f"the {component} schema is at version {version}, newer than the "
                f"{latest} this version of Cliquet knows: upgrade Cliquet instead",
            )

    if dry_run:
        version = client.run(lambda conn: current_version(conn, component), readonly=True)
        check(version)
        pending = list(range(version + 1, latest + 1))
        for number in pending:
            for statement in migrations[number - 1]:
                logger.info("[dry run] %s migration %s: %s", component, number, " ".join(statement.split()))
        return pending

    def apply(conn):
        # One lock per schema: app servers starting together take turns.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cliquet-migrate:' || current_schema()))")
        conn.execute(_SCHEMA_TABLE)
        version = current_version(conn, component)
        check(version)
        applied = []
        for number in range(version + 1, latest + 1):
            logger.info("applying %s schema migration %s", component, number)
            for statement in migrations[number - 1]:
                conn.execute(statement)
            applied.append(number)
        if applied:
            conn.execute(
                "INSERT INTO cliquet_schema (component, version) VALUES (%s, %s) "
                "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, applied_at = now()",
                (component, latest),
            )
        return applied

    return client.run(apply)


def field_index_statements(fields, column_of, sort_keys_of) -> list[str]:
    """Return the ``CREATE INDEX`` statements for record fields that a
    resource filters and sorts on.

    Each index is ``(parent_id, collection_id, <the field's sort keys>, id)``
    with exactly the expressions :mod:`~cliquet.storage.postgresql_query`
    puts in ``ORDER BY`` and ``WHERE``, so that a page sorted by the field
    (either direction) and a range filter on it read only what they return.
    Not partial: a partial index on one collection would not match the
    parametrised (prepared) queries.

    :param column_of: ``field -> Column``.
    :param sort_keys_of: ``Column -> [(Column, direction)]``.
    """
    statements = []
    for field in fields:
        col = column_of(field)
        if col.kind != "jsonb":
            continue  # id and last_modified have theirs
        keys = _index_keys(col, sort_keys_of)
        statements.append(
            f"CREATE INDEX IF NOT EXISTS {field_index_name(field, column_of, sort_keys_of)} "
            f"ON cliquet_records (parent_id, collection_id, {keys}, id)"
        )
    return statements


#: what the names of the indexes of :func:`field_index_statements` start with.
FIELD_INDEX_PREFIX = "cliquet_records_field_"


def field_index_name(field, column_of, sort_keys_of) -> str:
    """The name of the index :func:`field_index_statements` creates for
    ``field``: a digest of the field and of its key expressions, so that
    the storage can tell, from the catalog alone, which fields have theirs."""
    import hashlib

    keys = _index_keys(column_of(field), sort_keys_of)
    return FIELD_INDEX_PREFIX + hashlib.sha1(f"{field}|{keys}".encode()).hexdigest()[:16]


def _index_keys(col, sort_keys_of) -> str:
    return ", ".join(f"({key.sql})" for key, _ in sort_keys_of(col))


def pending_phrase(client, component: str, migrations: Sequence[Sequence[str]]) -> str | None:
    """Return why the schema of ``component`` is not ready — ``"missing"`` or
    ``"at version N of M"`` — or ``None`` when it is at the latest version.
    One read-only query; writes nothing (the backends' ``schema_pending``).

    :raises SchemaVersionError: the database is newer than ``migrations``.
    :raises BackendError: the server failed.
    """
    latest = len(migrations)
    version = client.run(lambda conn: current_version(conn, component), readonly=True)
    if version > latest:
        raise SchemaVersionError(
            None,
            f"the {component} schema is at version {version}, newer than the "
            f"{latest} this version of Cliquet knows: upgrade Cliquet instead",
        )
    if version == latest:
        return None
    return "missing" if version == 0 else f"at version {version} of {latest}"
