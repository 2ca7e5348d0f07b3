"""Backend schemas at start-up: found missing or outdated before the first
request, not by it.

Every backend answers :meth:`~cliquet.storage.StorageBase.schema_pending`
(and the same method of the cache and permission bases): ``None`` when its
schema is ready or when it has none (memory, Redis, Riak), otherwise a short
phrase (``"missing"``, ``"at version 2 of 3"``). The setting
``cliquet.schema_check`` chooses what an application does at start-up:

* ``refuse`` (the default, for production): if any backend is not ready,
  the application does not start; :class:`SchemaNotReady` carries one line
  that names the backends and ``cliquet migrate``;
* ``migrate`` (development, ``./ci/serve``): run what ``cliquet migrate``
  runs (idempotent, serialised between processes) and start;
* ``ignore``: no check (``cliquet migrate`` itself starts the application
  this way, to migrate it).

A server that cannot be reached at start-up is logged and the application
starts anyway: ``/__heartbeat__`` reports it, and also reports a backend
whose schema is not ready (its check is false, and the log names the
backend and ``cliquet migrate``).

.. versionadded:: 0.1
"""

from __future__ import annotations

import logging
import os
import sys

from pyramid.exceptions import ConfigurationError

from cliquet.storage.exceptions import BackendError

logger = logging.getLogger("cliquet")

#: the values of ``cliquet.schema_check``
SCHEMA_CHECK_MODES = ("refuse", "migrate", "ignore")
#: the backends ``cliquet migrate`` initialises, in order
KINDS = ("storage", "cache", "permission")


class SchemaNotReady(ConfigurationError):
    """A backend's schema is missing or older than this code, and
    ``cliquet.schema_check`` is ``refuse``: ``str()`` is one line naming the
    backends and the command that fixes it."""


def as_schema_check(value):
    """Convert ``cliquet.schema_check``: ``refuse``, ``migrate`` or ``ignore``."""
    text = str(value if value is not None else "refuse").strip().lower()
    if text not in SCHEMA_CHECK_MODES:
        raise ValueError(f"expected one of {', '.join(SCHEMA_CHECK_MODES)}")
    return text


def migrate_command() -> str:
    """The ``cliquet migrate`` command line for this application (its INI
    file when ``cliquet serve`` or the WSGI entry point named it)."""
    ini = os.environ.get("CLIQUET_INI")
    return f"cliquet migrate --ini {ini}" if ini else "cliquet migrate --ini <your INI file>"


def pending_schemas(registry) -> dict[str, str]:
    """Return ``{kind: phrase}`` for the backends whose schema is not ready.

    :raises BackendError: a server could not be asked (or holds a newer
        schema than this code knows).
    """
    pending = {}
    for kind in KINDS:
        backend = getattr(registry, kind, None)
        phrase = backend.schema_pending() if backend is not None else None
        if phrase:
            pending[kind] = f"{kind} ({type(backend).__module__}) is {phrase}"
    return pending


def migrate_registry(registry, dry_run: bool = False, out=None) -> None:
    """Do what ``cliquet migrate`` does: initialise the three backends'
    schemas, create the field indexes resources declare, run the migrate
    hooks of packages (``registry.cliquet_migrate_hooks``), then refresh
    the planner's statistics of backends that have an ``analyze()``
    (PostgreSQL). Idempotent.

    :param out: where progress lines go (a file; ``None``: the log only).
    """

    def say(line):
        logger.info(line)
        if out is not None:
            print(line, file=out)

    for kind in KINDS:
        backend = getattr(registry, kind)
        say(f"{kind}: initializing {type(backend).__module__}{' (dry run)' if dry_run else ''}")
        backend.initialize_schema(dry_run=dry_run)
    storage = registry.storage
    if hasattr(storage, "create_field_indexes"):
        for name, resource_cls in sorted(getattr(registry, "cliquet_resources", {}).items()):
            if resource_cls.indexed_fields:
                created = storage.create_field_indexes(resource_cls.indexed_fields, dry_run=dry_run)
                say(f"storage: indexes for {name}: {', '.join(resource_cls.indexed_fields)}"
                    f"{' (' + str(len(created)) + ' created)' if created else ''}")
    for hook in getattr(registry, "cliquet_migrate_hooks", []):
        hook(registry, dry_run=dry_run)
    # Last, the planner's statistics (PostgreSQL): a database just migrated
    # or bulk loaded otherwise plans lists by guesses until autovacuum runs.
    for kind in KINDS:
        backend = getattr(registry, kind)
        if callable(getattr(backend, "analyze", None)):
            backend.analyze(dry_run=dry_run)
            say(f"{kind}: statistics refreshed (ANALYZE){' (dry run)' if dry_run else ''}")


def check_at_start(registry) -> None:
    """The start-up check (on :class:`~pyramid.events.ApplicationCreated`):
    migrate or refuse, as ``cliquet.schema_check`` says.

    :raises SchemaNotReady: ``refuse`` and a backend is not ready, or a
        database holds a newer schema than this code knows.
    """
    mode = registry.settings.get("cliquet.schema_check", "refuse")
    if mode == "ignore":
        return
    try:
        if mode == "migrate":
            migrate_registry(registry)
            return
        pending = pending_schemas(registry)
    except BackendError as exc:
        if "newer than" in str(exc):
            raise SchemaNotReady(f"Cliquet cannot start: {exc}") from exc
        logger.warning("Could not check the backends' schemas at start-up (%s); /__heartbeat__ will tell", exc)
        return
    if pending:
        raise SchemaNotReady(
            f"Cliquet cannot start: the schema of {'; '.join(pending.values())}: run `{migrate_command()}` "
            f"(or set cliquet.schema_check = migrate to migrate at start-up)")


def schema_ready(registry, kind: str) -> bool:
    """Whether the ``kind`` backend's schema is ready, for its heartbeat
    check; never raises. A backend that is not is logged with the command
    that fixes it."""
    backend = getattr(registry, kind)
    try:
        phrase = backend.schema_pending()
    except Exception as exc:  # a heartbeat never raises
        logger.error("Heartbeat: could not check the %s schema: %s", kind, exc)
        return False
    if phrase:
        logger.error("Heartbeat: the %s schema (%s) is %s: run `%s`", kind, type(backend).__module__, phrase,
                     migrate_command())
        return False
    return True


def exit_if_not_ready(exc: SchemaNotReady):  # pragma: no cover - exits the process
    """Print ``exc`` as one line on stderr and exit with status 1 (the WSGI
    and RSGI entry points: a server that cannot start says why, once)."""
    print(str(exc).replace("\n", " "), file=sys.stderr, flush=True)
    raise SystemExit(1)
