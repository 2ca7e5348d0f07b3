"""The ``cliquet-indexing`` command.

``cliquet-indexing reindex --ini FILE [--resource NAME]`` rebuilds the index
from storage: every record of every user of each indexed resource is indexed
again in bulk, then the entries storage no longer has are removed.

It is safe to interrupt and to run again: each batch is indexed in its own
call (an upsert that never replaces a newer version), and stale entries are
only removed once a whole resource has been read. The application may keep
serving meanwhile; what it writes during the run is indexed by its listener
as usual, and the run never undoes it: the entries it may remove are listed
*before* storage is read, and each is deleted at the version just above the
one it had — a record storage no longer has was deleted at that version or
later, and one created again since is newer still.

With the PostgreSQL indexer (:mod:`cliquet_indexing.postgresql`) the index
is written in the requests' own transactions and never drifts: ``reindex``
is only needed once, to fill it after switching an existing service to it
(``cliquet migrate`` creates its table; each batch here is one transaction).
"""

from __future__ import annotations

import argparse
import sys
import time

from cliquet_indexing.indexer import IndexEntry

#: records read from storage and indexed per call.
DEFAULT_BATCH_SIZE = 1000


def _resource_for(registry, request, resource_cls, parent_id):
    """An instance of ``resource_cls`` bound to ``parent_id``, without a user
    request: only its ``read_principals(record)`` is used."""
    from cliquet.resource.model import Model

    instance = resource_cls.__new__(resource_cls)
    instance.request = request
    instance.registry = registry
    instance.model = Model(registry.storage, None, resource_cls.name, parent_id)
    return instance


def reindex_resource(registry, request, name: str, batch_size: int = DEFAULT_BATCH_SIZE, progress=None) -> dict:
    """Re-index the resource ``name`` from storage; return counts.

    :param progress: an optional callable ``(advance: int, total: int | None)``.
    :returns: ``{"indexed": n, "removed": m, "parents": p}``.
    """
    from cliquet.storage import Sort

    storage = registry.storage
    indexer = registry.indexer
    # Listed before storage is read: an entry indexed later is never taken for a stale one.
    before = list(indexer.indexed_keys(name))
    resource_cls = registry.cliquet_resources[name]
    parents = storage.parent_ids(name)
    totals = {parent: storage.get_all(name, parent, limit=0)[1] for parent in parents}
    if progress:
        progress(0, sum(totals.values()))
    seen = set()
    indexed = 0
    sorting = [Sort("id", 1)]
    for parent in parents:
        resource = _resource_for(registry, request, resource_cls, parent)
        after = None
        while True:
            records, _ = storage.get_all(name, parent, sorting=sorting, after=after, limit=batch_size)
            if not records:
                break
            entries = [IndexEntry(parent, record, tuple(resource.read_principals(record))) for record in records]
            indexer.index_records(name, entries)
            seen.update((parent, record["id"]) for record in records)
            indexed += len(records)
            if progress:
                progress(len(records), None)
            after = [records[-1]["id"]]
    stale = [(parent, rid, version + 1) for parent, rid, version in before if (parent, rid) not in seen]
    for start in range(0, len(stale), batch_size):
        indexer.unindex_records(name, stale[start:start + batch_size])
    return {"indexed": indexed, "removed": len(stale), "parents": len(parents)}


def cmd_reindex(args, console) -> int:
    """Run ``reindex``."""
    from pyramid.paster import bootstrap, setup_logging
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cliquet_indexing.listeners import is_indexed

    setup_logging(args.ini)
    env = bootstrap(args.ini)
    try:
        registry = env["registry"]
        if getattr(registry, "indexer", None) is None:
            console.print("[red]The application does not include cliquet_indexing[/red] "
                          "(add it to pyramid.includes).")
            return 2
        resources = getattr(registry, "cliquet_resources", {})
        names = [n for n in sorted(resources) if is_indexed(registry, n)]
        if args.resource:
            from cliquet_indexing.listeners import resolve_resource

            wanted = resolve_resource(registry, args.resource)
            if wanted is None or wanted not in names:
                console.print(f"[red]No indexed resource named {args.resource!r}[/red] "
                              f"(indexed: {', '.join(names) or 'none'}).")
                return 2
            names = [wanted]
        registry.indexer.initialize_schema()
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*columns, console=console, disable=args.quiet) as bar:
            for name in names:
                task = bar.add_task(name, total=None)

                def advance(step, total, task=task):
                    if total is not None:
                        bar.update(task, total=total)
                    bar.advance(task, step)

                started = time.perf_counter()
                counts = reindex_resource(registry, env["request"], name, args.batch_size, advance)
                elapsed = time.perf_counter() - started
                rate = counts["indexed"] / elapsed if elapsed > 0 else 0
                console.print(f"{name}: {counts['indexed']} record(s) of {counts['parents']} parent(s) indexed, "
                              f"{counts['removed']} stale entr{'y' if counts['removed'] == 1 else 'ies'} removed "
                              f"in {elapsed:.1f}s ({rate:.0f} records/s)")
    finally:
        env["closer"]()
    return 0


def main(argv=None) -> int:
    """Entry point of ``cliquet-indexing``."""
    from rich.console import Console

    parser = argparse.ArgumentParser(prog="cliquet-indexing", description="Cliquet indexing tools")
    commands = parser.add_subparsers(dest="command", required=True)
    reindex = commands.add_parser("reindex", help="rebuild the index from storage (safe to interrupt and rerun)")
    reindex.add_argument("--ini", required=True, help="the application's INI file")
    reindex.add_argument("--resource", help="only this resource (name or collection path)")
    reindex.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="records per bulk call")
    reindex.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    console = Console(stderr=False, highlight=False)
    try:
        return cmd_reindex(args, console)
    except KeyboardInterrupt:
        console.print("Interrupted: run the same command again to finish (nothing is lost).")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
