"""The ``cliquet`` command.

* ``cliquet init NAME [--storage …] [--cache …] [--with …]`` — write a new
  service project (:mod:`cliquet.scaffold`); asks in a terminal.
* ``cliquet migrate --ini FILE [--dry-run]`` — create or upgrade the schema
  of every configured backend (storage, cache, permission).
* ``cliquet purge-deleted --ini FILE --older-than DURATION`` — remove old
  tombstones.
* ``cliquet serve --ini FILE [--port N] [--workers N] [--threads N]`` — serve
  the app with Granian: one worker on the in-process memory backends, one per
  core otherwise; request bodies are read before a thread is taken
  (:mod:`cliquet.serving`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

logger = logging.getLogger("cliquet")


def _bootstrap(ini):
    from pyramid.paster import bootstrap, setup_logging

    setup_logging(ini)
    return bootstrap(ini)


def cmd_migrate(args):
    """Initialise every backend's schema (the app starts without its
    start-up schema check, which would refuse it: :mod:`cliquet.schema`)."""
    from cliquet.schema import migrate_registry

    saved = os.environ.get("CLIQUET_SCHEMA_CHECK")
    os.environ["CLIQUET_SCHEMA_CHECK"] = "ignore"
    try:
        env = _bootstrap(args.ini)
    finally:
        if saved is None:
            del os.environ["CLIQUET_SCHEMA_CHECK"]
        else:
            os.environ["CLIQUET_SCHEMA_CHECK"] = saved
    try:
        migrate_registry(env["registry"], dry_run=args.dry_run, out=sys.stdout)
    finally:
        env["closer"]()
    return 0


def cmd_purge_deleted(args):
    """Purge tombstones older than ``--older-than``."""
    from cliquet.settings import as_duration
    from cliquet.utils import msec_time

    env = _bootstrap(args.ini)
    try:
        seconds = as_duration(args.older_than) if args.older_than else \
            env["registry"].settings.get("cliquet.tombstones_retention")
        if not seconds:
            print("Give --older-than or set cliquet.tombstones_retention", file=sys.stderr)
            return 2
        before = msec_time() - int(seconds * 1000)
        count = env["registry"].storage.purge_deleted(None, None, before=before)
        print(f"{count} tombstones purged")
    finally:
        env["closer"]()
    return 0


def _backend_names(app_settings, environ):
    """The dotted names of the three backends, the environment winning over the INI."""
    names = []
    for kind in ("storage", "cache", "permission"):
        name = environ.get(f"CLIQUET_{kind.upper()}_BACKEND") or app_settings.get(
            f"cliquet.{kind}_backend") or app_settings.get(f"{kind}_backend") or f"cliquet.{kind}.memory"
        names.append(name)
    return names


def _schemas_refused(ini) -> bool:
    """Start the app once here, before Granian: a schema that is missing or
    outdated (and ``cliquet.schema_check = refuse``) is one line on stderr
    naming ``cliquet migrate``, not a traceback in every worker. With
    ``migrate``, the schemas are migrated here, once."""
    from cliquet.schema import SchemaNotReady

    try:
        env = _bootstrap(ini)
    except SchemaNotReady as exc:
        print(f"cliquet serve: {exc}", file=sys.stderr, flush=True)
        return True
    except Exception:  # any other error: Granian's workers raise and report it
        return False
    env["closer"]()
    return False


def cmd_serve(args):
    """Exec Granian on the app of ``--ini``."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read(args.ini)
    server = dict(parser["server:main"]) if parser.has_section("server:main") else {}
    app = dict(parser["app:main"]) if parser.has_section("app:main") else {}
    host = os.environ.get("HOST") or args.host or server.get("host", "127.0.0.1")
    port = str(os.environ.get("PORT") or args.port or server.get("port", "8888"))
    # Memory backends live inside one process: any of them means one worker.
    names = _backend_names(app, os.environ)
    in_memory = any(name.endswith(".memory") for name in names)
    workers = args.workers or os.environ.get("WORKERS") or (1 if in_memory else os.cpu_count() or 2)
    threads = args.threads or os.environ.get("THREADS") or (1 if in_memory else 2)
    os.environ["CLIQUET_INI"] = os.path.abspath(args.ini)
    if not all(name.endswith(".memory") for name in names) and _schemas_refused(args.ini):
        return 1
    os.environ["CLIQUET_SERVE_THREADS"] = str(threads)
    os.environ["CLIQUET_SERVE_WORKERS"] = str(workers)
    # RSGI, not Granian's WSGI: request bodies are read on the event loop,
    # under cliquet.request_body_timeout, before one of the app's `threads`
    # is taken (cliquet.serving), so that a slow client holds no thread.
    command = [sys.executable, "-m", "granian", "--interface", "rsgi", "--host", host, "--port", port,
               "--workers", str(workers), "--no-ws", "cliquet.rsgi:application"]
    print(f"Serving {args.ini} on http://{host}:{port}/v1/ ({workers} worker(s) x {threads} thread(s))",
          file=sys.stderr, flush=True)
    os.execvp(command[0], command)


def _interactive(args) -> bool:
    if args.no_input:
        return False
    return sys.stdin.isatty() and sys.stdout.isatty()


def cmd_init(args):
    """Write a new project (:func:`cliquet.scaffold.create`)."""
    from cliquet.scaffold import Options, ScaffoldError, create, distributions

    answers = {"name": args.name, "storage": args.storage, "cache": args.cache,
               "features": None if args.with_ is None else [f for f in args.with_.split(",") if f.strip()]}
    if _interactive(args) and (None in answers.values()):
        from cliquet.scaffold.prompt import ask, load_questionary

        questionary = load_questionary()
        if questionary is None:
            print("cliquet init: for questions, install the `init` extra (pip install 'cliquet[init]'); "
                  "using the flags and their defaults", file=sys.stderr)
        else:
            try:
                answers = ask(questionary, answers)
            except KeyboardInterrupt:
                print("cliquet init: cancelled, nothing written", file=sys.stderr)
                return 1
    if not answers["name"]:
        print("cliquet init: a project name is required (cliquet init myservice)", file=sys.stderr)
        return 2
    try:
        options = Options(name=answers["name"], storage=answers["storage"] or "memory",
                          cache=answers["cache"] or "memory", permission=args.permission,
                          features=tuple(answers["features"] or ()))
        target = create(options, args.directory)
    except ScaffoldError as exc:
        print(f"cliquet init: {exc}", file=sys.stderr)
        return 2
    print(f"Created {target} (storage {options.storage}, permission {options.permission}, "
          f"cache {options.cache}; depends on {', '.join(distributions(options))}).")
    print("Next, in a virtual environment:")
    print(f"  cd {target}")
    print("  pip install -e '.[test]'")
    print("  pytest")
    print(f"  cliquet serve --ini {options.name}.ini")
    return 0


def main(argv=None):
    """Entry point of the ``cliquet`` command."""
    parser = argparse.ArgumentParser(prog="cliquet", description="Cliquet's command line: a new service, schemas, serving.")
    sub = parser.add_subparsers(dest="command", required=True)
    migrate = sub.add_parser("migrate", help="create or upgrade the backends' schemas")
    migrate.add_argument("--ini", required=True)
    migrate.add_argument("--dry-run", action="store_true")
    migrate.set_defaults(func=cmd_migrate)
    purge = sub.add_parser("purge-deleted", help="remove old tombstones")
    purge.add_argument("--ini", required=True)
    purge.add_argument("--older-than", help="a duration: 30d, 12h, 3600 (default: cliquet.tombstones_retention)")
    purge.set_defaults(func=cmd_purge_deleted)
    serve = sub.add_parser("serve", help="serve the application with Granian")
    serve.add_argument("--ini", required=True)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--threads", type=int)
    serve.set_defaults(func=cmd_serve)
    from cliquet.scaffold import CACHES, FEATURES, STORAGES

    init = sub.add_parser("init", help="write a new service project",
                          description="Write a new Cliquet service project. In a terminal, asks for what the "
                                      "flags leave open (with the `init` extra installed).")
    init.add_argument("name", nargs="?", help="the project and package name (a Python identifier)")
    init.add_argument("--storage", choices=STORAGES, help="storage backend (default: memory)")
    init.add_argument("--cache", choices=CACHES, help="cache backend (default: memory)")
    init.add_argument("--permission", choices=STORAGES, help="permission backend (default: the storage's)")
    init.add_argument("--with", dest="with_", metavar="PACKAGES",
                      help=f"comma-separated packages to include: {', '.join(FEATURES)}")
    init.add_argument("--directory", default=".", help="where to create the project's directory (default: .)")
    init.add_argument("--no-input", action="store_true", help="never ask, even in a terminal")
    init.set_defaults(func=cmd_init)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
