"""Permissions on PostgreSQL, on psycopg 3 and psycopg_pool.

Enable with::

    cliquet.permission_backend = cliquet.permission.postgresql
    cliquet.permission_url = postgresql://user:password@host:5432/dbname

On the same database as the storage (any spelling of its URL, any pool
settings), both share one connection pool and one transaction per request
(:meth:`PostgreSQLPermission.join_transactions` says so at start-up): a
request that fails leaves neither records nor permissions behind. On another
database they cannot. ``cliquet migrate`` creates the tables.

Two tables: ``cliquet_user_principals (user_id, principal)`` and
``cliquet_access_control_entries (object_id, permission, principal)``, the
latter indexed both by object (its primary key) and by ``(permission,
principal, object_id)``, so :meth:`~PostgreSQLPermission.get_accessible_objects`
reads only the entries of the given principals instead of scanning them all.
Beside them, ``cliquet_ace_changes`` logs every ACE change with its
transaction id (statement triggers on the ACE table): the change feed of
:meth:`~PostgreSQLPermission.acl_changes`, which keeps the storage's list
counts up to date (see :mod:`cliquet.storage.postgresql_count`).
"""

from __future__ import annotations

from typing import Iterable

from cliquet.permission import PermissionBase
from cliquet.storage.postgresql_client import get_client
from cliquet.storage.postgresql_schema import PERMISSION_MIGRATIONS, migrate, pending_phrase

_ACES = "cliquet_access_control_entries"
#: SQL of a change feed token: the statement's snapshot (see :meth:`PostgreSQLPermission.acl_changes`).
ACL_TOKEN_SQL = "pg_current_snapshot()::text"
#: transaction marks (see :meth:`~cliquet.storage.postgresql_client.PostgreSQLClient.mark`):
#: a user's principals read in it, and that it changed user principals
_PRINCIPALS = "user-principals"
_PRINCIPALS_CHANGED = "user-principals-changed"


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class PostgreSQLPermission(PermissionBase):
    """A :class:`~cliquet.permission.PermissionBase` in two tables.

    :param client: a :class:`~cliquet.storage.postgresql_client.PostgreSQLClient`.
    """

    def __init__(self, client):
        self.client = client

    def join_transactions(self, storage) -> bool:
        """Return whether this backend's writes are part of ``storage``'s
        transactions: true exactly when ``storage`` works through this same
        client (a PostgreSQL storage on the same database), whose transaction
        is bound to the request's context. Nothing else can be joined (a
        transaction never spans two databases)."""
        return getattr(storage, "client", None) is self.client and callable(getattr(storage, "transaction", None))

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Create or upgrade the permission tables (idempotent)."""
        migrate(self.client, "permission", PERMISSION_MIGRATIONS, dry_run=dry_run)

    def schema_pending(self) -> str | None:
        """Return ``"missing"`` / ``"at version N of M"`` while ``cliquet
        migrate`` has work to do on the permission tables, else ``None``."""
        return pending_phrase(self.client, "permission", PERMISSION_MIGRATIONS)

    def analyze(self, dry_run: bool = False) -> None:
        """Refresh the planner's statistics of the permission tables
        (``cliquet migrate`` runs it last; see
        :meth:`cliquet.storage.postgresql.PostgreSQLStorage.analyze`)."""
        if not dry_run:
            self.client.execute(f"ANALYZE cliquet_user_principals, {_ACES}", fetch=None)

    def flush(self) -> None:
        """Remove every ACE and user principal."""
        self._principals_changed()
        self.client.execute(f"TRUNCATE cliquet_user_principals, {_ACES}, cliquet_ace_changes", fetch=None)

    def heartbeat(self) -> bool:
        """Return whether the server answers."""
        return self.client.heartbeat()

    # -- user principals ---------------------------------------------------------

    def add_user_principal(self, user_id: str, principal: str) -> None:
        """Give ``user_id`` the extra ``principal``."""
        self._principals_changed()
        self.client.execute(
            "INSERT INTO cliquet_user_principals (user_id, principal) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (user_id, principal),
            fetch=None,
        )

    def remove_user_principal(self, user_id: str, principal: str) -> None:
        """Take ``principal`` away from ``user_id``."""
        self._principals_changed()
        self.client.execute(
            "DELETE FROM cliquet_user_principals WHERE user_id = %s AND principal = %s",
            (user_id, principal),
            fetch=None,
        )

    def get_user_principals(self, user_id: str) -> set[str]:
        """Return the extra principals of ``user_id``.

        Read once per transaction (a batch's sub-requests, one user, read
        them once): the answer is remembered until the transaction ends, or
        until it changes user principals itself, after which every call
        reads them again (a savepoint rolled back could undo the change).
        """
        key = (_PRINCIPALS, user_id)
        known = self.client.recall(key)
        if known is not None:
            return set(known)
        rows = self.client.execute("SELECT principal FROM cliquet_user_principals WHERE user_id = %s", (user_id,),
                                   readonly=True)
        principals = {row[0] for row in rows}
        self._remember_principals(user_id, principals)
        return principals

    def _remember_principals(self, user_id: str, principals: set[str]) -> None:
        """Remember ``user_id``'s principals for the rest of the transaction
        (unless it changed user principals)."""
        if not self.client.is_marked((_PRINCIPALS_CHANGED,)):
            self.client.mark((_PRINCIPALS, user_id), frozenset(principals))

    def _principals_changed(self) -> None:
        """Forget the principals read in this transaction and read them
        from the table until it ends."""
        self.client.forget(_PRINCIPALS)
        self.client.mark((_PRINCIPALS_CHANGED,))

    # -- access control entries --------------------------------------------------

    def add_principal_to_ace(self, object_id: str, permission: str, principal: str) -> None:
        """Grant ``permission`` on ``object_id`` to ``principal``."""
        self.client.execute(
            f"INSERT INTO {_ACES} (object_id, permission, principal) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (object_id, permission, principal),
            fetch=None,
        )

    def remove_principal_from_ace(self, object_id: str, permission: str, principal: str) -> None:
        """Revoke ``permission`` on ``object_id`` from ``principal``."""
        self.client.execute(
            f"DELETE FROM {_ACES} WHERE object_id = %s AND permission = %s AND principal = %s",
            (object_id, permission, principal),
            fetch=None,
        )

    def get_object_permission_principals(self, object_id: str, permission: str) -> set[str]:
        """Return the principals holding ``permission`` on ``object_id``."""
        rows = self.client.execute(
            f"SELECT principal FROM {_ACES} WHERE object_id = %s AND permission = %s", (object_id, permission),
            readonly=True,
        )
        return {row[0] for row in rows}

    def get_object_permissions(self, object_id: str, permissions: Iterable[str] | None = None) -> dict[str, set[str]]:
        """Return ``{permission: principals}`` of ``object_id`` (only
        ``permissions`` if given)."""
        if permissions is None:
            rows = self.client.execute(f"SELECT permission, principal FROM {_ACES} WHERE object_id = %s",
                                       (object_id,), readonly=True)
        else:
            rows = self.client.execute(
                f"SELECT permission, principal FROM {_ACES} WHERE object_id = %s AND permission = ANY(%s)",
                (object_id, list(permissions)),
                readonly=True,
            )
        result: dict[str, set[str]] = {}
        for permission, principal in rows:
            result.setdefault(permission, set()).add(principal)
        return result

    def get_object_permissions_and_user_principals(self, object_id: str, permissions: Iterable[str],
                                                   user_id: str) -> tuple[dict[str, set[str]], set[str]]:
        """Return :meth:`get_object_permissions` of ``object_id`` and
        :meth:`get_user_principals` of ``user_id``, read in one statement
        (a GET of a shareable record needs both); the principals are
        remembered for the transaction as :meth:`get_user_principals` does."""
        known = self.client.recall((_PRINCIPALS, user_id))
        if known is not None:
            return self.get_object_permissions(object_id, permissions), set(known)
        rows = self.client.execute(
            f"SELECT permission, principal FROM {_ACES} WHERE object_id = %s AND permission = ANY(%s) "
            "UNION ALL SELECT NULL, principal FROM cliquet_user_principals WHERE user_id = %s",
            (object_id, list(permissions), user_id),
            readonly=True,
        )
        result: dict[str, set[str]] = {}
        principals: set[str] = set()
        for permission, principal in rows:
            if permission is None:
                principals.add(principal)
            else:
                result.setdefault(permission, set()).add(principal)
        self._remember_principals(user_id, principals)
        return result, principals

    def replace_object_permissions(self, object_id: str, permissions: dict[str, Iterable[str]]) -> dict[str, set[str]]:
        """Set the named ACEs to exactly the given principals; return the
        object's permissions afterwards.

        One statement, hence atomic and one round trip: the entries no longer
        wanted are deleted and the wanted ones inserted (those present stay
        untouched: the two sets of rows are disjoint, so the order in which
        PostgreSQL runs the two sub-statements does not matter); the answer
        is the other permissions' entries, as of the statement's snapshot,
        plus the wanted ones."""
        if not permissions:
            return self.get_object_permissions(object_id)
        wanted = {permission: sorted(set(principals)) for permission, principals in permissions.items()}
        perms = [p for p, principals in wanted.items() for _ in principals]
        principals = [x for ps in wanted.values() for x in ps]
        rows = self.client.execute(
            f"WITH wanted AS (SELECT p, q FROM unnest(%(perms)s::text[], %(principals)s::text[]) AS v(p, q)), "
            f"gone AS (DELETE FROM {_ACES} AS a WHERE a.object_id = %(id)s AND a.permission = ANY(%(names)s) "
            "AND NOT EXISTS (SELECT 1 FROM wanted WHERE p = a.permission AND q = a.principal)), "
            f"added AS (INSERT INTO {_ACES} (object_id, permission, principal) "
            "SELECT %(id)s, p, q FROM wanted ON CONFLICT DO NOTHING) "
            f"SELECT permission, principal FROM {_ACES} WHERE object_id = %(id)s "
            "AND NOT (permission = ANY(%(names)s)) UNION ALL SELECT p, q FROM wanted",
            {"id": object_id, "names": list(wanted), "perms": perms, "principals": principals},
        )
        result: dict[str, set[str]] = {}
        for permission, principal in rows:
            result.setdefault(permission, set()).add(principal)
        return result

    def delete_object_permissions(self, *object_ids: str) -> None:
        """Remove every ACE of the given objects."""
        if object_ids:
            self.client.execute(f"DELETE FROM {_ACES} WHERE object_id = ANY(%s)", (list(object_ids),), fetch=None)

    def check_permission(self, object_id: str, permission: str, principals: Iterable[str]) -> bool:
        """Return whether any of ``principals`` holds ``permission`` on ``object_id``."""
        principals = list(principals)
        if not principals:
            return False
        row = self.client.execute(
            f"SELECT EXISTS (SELECT 1 FROM {_ACES} WHERE object_id = %s AND permission = %s "
            "AND principal = ANY(%s))",
            (object_id, permission, principals),
            fetch="one",
            readonly=True,
        )
        return bool(row[0])

    # -- change feed ---------------------------------------------------------------

    def acl_changes(self, since, principals=None):
        """See :meth:`PermissionBase.acl_changes`. The token is a snapshot of
        the database (``pg_current_snapshot()``); the changes are the rows
        of the ``cliquet_ace_changes`` log (written by triggers on the ACE
        table) whose transaction that snapshot did not see — exact whatever
        the order in which concurrent transactions commit. The log keeps
        the latest 100 000 changes: an older token, or one from before a
        :meth:`flush`, gets ``None``."""
        if since is None:
            return self.client.execute(f"SELECT {ACL_TOKEN_SQL}", fetch="one", readonly=True)[0], None
        (covered, covered_params), (changed, changed_params) = self.acl_changes_sql(since, principals)
        token, ok, objects = self.client.execute(
            f"SELECT {ACL_TOKEN_SQL}, {covered}, ARRAY({changed})", covered_params + changed_params,
            fetch="one", readonly=True)
        return token, (set(objects) if ok else None)

    def acl_changes_sql(self, since, principals=None, prefix: str = "", strip_prefix: bool = False):
        """Return ``((covered, params), (changed, params))``: SQL of a
        boolean, whether the log still covers the token ``since``, and of a
        sub-query of the ids of the objects under ``prefix`` whose ACEs
        changed (for any of ``principals``, or anyone) since ``since``
        (without ``prefix`` with ``strip_prefix``), each with its
        parameters. A storage on the same database puts them inside its own
        query (:class:`~cliquet.storage.postgresql.PostgreSQLStorage` keeps
        the count of the records a caller may read that way)."""
        covered = ("(SELECT h.pruned_through < pg_snapshot_xmin(%s::pg_snapshot) "
                   "AND pg_visible_in_snapshot(h.reset_by, %s::pg_snapshot) FROM cliquet_ace_changes_horizon AS h)")
        params: list = [len(prefix) + 1] if strip_prefix else []
        column = "substr(object_id, %s)" if strip_prefix else "object_id"
        changed = (f"SELECT DISTINCT {column} FROM cliquet_ace_changes "
                   "WHERE changed_by >= pg_snapshot_xmin(%s::pg_snapshot) "
                   "AND NOT pg_visible_in_snapshot(changed_by, %s::pg_snapshot)")
        params.extend([since, since])
        if principals is not None:
            changed += " AND principal = ANY(%s)"
            params.append(list(principals))
        if prefix:
            changed += " AND object_id LIKE %s"
            params.append(_like_prefix(prefix))
        return (covered, [since, since]), (changed, params)

    def accessible_ids_sql(self, id_sql: str, principals, permissions, prefix: str, params: list) -> str:
        """A condition on the record id expression ``id_sql``: any of
        ``principals`` holds any of ``permissions`` on ``prefix + id``.
        Storage on the same database puts it inside the record query: a page
        sorted by an indexed field probes the ACE primary key for the rows it
        returns only (and the count, cached per collection timestamp, joins)."""
        params.extend([prefix, list(permissions), list(principals)])
        return (f"EXISTS (SELECT 1 FROM {_ACES} AS a WHERE a.object_id = %s || {id_sql} "
                "AND a.permission = ANY(%s) AND a.principal = ANY(%s))")

    def get_accessible_objects(self, principals: Iterable[str], permission: str, prefix: str = "") -> set[str]:
        """Return the ids of the objects (starting with ``prefix``) on which
        any of ``principals`` holds ``permission``."""
        principals = list(principals)
        if not principals:
            return set()
        if prefix:
            rows = self.client.execute(
                f"SELECT DISTINCT object_id FROM {_ACES} WHERE permission = %s AND principal = ANY(%s) "
                "AND object_id LIKE %s",
                (permission, principals, _like_prefix(prefix)),
                readonly=True,
            )
        else:
            rows = self.client.execute(
                f"SELECT DISTINCT object_id FROM {_ACES} WHERE permission = %s AND principal = ANY(%s)",
                (permission, principals),
                readonly=True,
            )
        return {row[0] for row in rows}


def load_from_config(config) -> PostgreSQLPermission:
    """Return a :class:`PostgreSQLPermission` for ``cliquet.permission_url``
    (pool from ``cliquet.permission_pool_size`` and
    ``cliquet.permission_pool_timeout``).

    Backends on one database share one client and pool, as large and patient
    as the largest of their ``*_pool_size`` and ``*_pool_timeout``: see
    :func:`~cliquet.storage.postgresql_client.get_client`.
    """
    settings = config.get_settings()
    url = settings.get("cliquet.permission_url")
    if not url:
        from pyramid.exceptions import ConfigurationError

        raise ConfigurationError("cliquet.permission_url is required by cliquet.permission.postgresql")
    client = get_client(
        url,
        pool_size=settings.get("cliquet.permission_pool_size") or 10,
        pool_timeout=settings.get("cliquet.permission_pool_timeout") or 30.0,
    )
    return PostgreSQLPermission(client)
