"""``--profile``: sample a server with py-spy under load and summarise it.

py-spy writes collapsed stacks (``--format raw``: ``frame;frame;... count``
per line, one frame ``function (file)`` with ``--nolineno``); the same file
opens in speedscope or inferno. :func:`summarise` turns it into the two lists
that answer "where does the time go": the functions the samples were in
(self) and the functions on the stack (inclusive).
"""

import collections
import os
import subprocess
import sys
import threading

RATE = 250


def record(running, out, duration, run_load):
    """Sample ``running`` (all Granian workers) while ``run_load()`` runs."""
    pyspy = os.path.join(os.environ["BENCH_CLIQUET_BIN"], "py-spy")
    cmd = [pyspy, "record", "--pid", str(running.proc.pid), "--subprocesses",
           "--nolineno", "--rate", str(RATE), "--duration", str(duration),
           "--format", "raw", "--output", out]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    load = threading.Thread(target=run_load, daemon=True)
    load.start()
    _, err = spy.communicate(timeout=duration + 120)
    load.join(duration + 120)
    if spy.returncode != 0 or not os.path.exists(out):
        print(f"WARNING: py-spy failed ({spy.returncode}): {err.strip()}", file=sys.stderr)
        return False
    return True


def _short(frame, root_marks=("site-packages/", "/packages/", "/lib/python3")):
    """``func (/long/path/pkg/mod.py)`` → ``func (pkg/mod.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for mark in root_marks:
        if mark in where:
            where = where.split(mark, 1)[1]
            if mark == "/packages/":
                where = where.split("/src/", 1)[-1]
            break
    return f"{name} ({where})" if where else name


def _frames(stack):
    for frame in stack.split(";"):
        if frame.startswith(("process ", "thread ")):
            continue
        yield _short(frame)


def _package(frame):
    """The distribution a frame belongs to: ``pyramid``, ``cliquet``, ``stdlib``…"""
    where = frame.rpartition(" (")[2].rstrip(")")
    if "/" not in where:
        return "stdlib" if where.endswith(".py") or where.startswith("<") else "?"
    head = where.split("/", 1)[0]
    return "stdlib" if head in ("json", "email", "urllib", "http", "multiprocessing",
                                "concurrent", "collections", "logging") else head


def summarise(path, top=20, entry=("(granian/wsgi.py)", "(cliquet/serving.py)")):
    """Markdown lists of the top functions by self and by inclusive time.

    Only samples inside a request (a stack through Granian's WSGI entry or
    cliquet's RSGI adapter) are
    counted; the share of the others (the supervisor, idle threads) is given.
    Self time of Granian's entry frame is time in native code under it
    (Granian's Rust side) or waiting for the GIL.
    """
    own, inclusive, packages = collections.Counter(), collections.Counter(), collections.Counter()
    total = outside = 0
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        return f"(no profile: {exc})\n"
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = list(_frames(stack))
        if not any(f.endswith(entry) for f in frames):
            outside += n
            continue
        total += n
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return "(no samples)\n"
    by_package = ", ".join(f"{name} {n / total:.0%}" for name, n in packages.most_common(8))
    out = [f"{total} samples in requests at {RATE} Hz ({outside} outside requests not "
           f"counted); raw stacks: `{os.path.basename(path)}`", "",
           f"Self time by package: {by_package}", "",
           "| self % | function | | inclusive % | function |", "|---:|---|---|---:|---|"]
    mine, cum = own.most_common(top), inclusive.most_common(top)
    for i in range(top):
        left = f"{mine[i][1] / total:6.1%} | `{mine[i][0]}`" if i < len(mine) else " | "
        right = f"{cum[i][1] / total:6.1%} | `{cum[i][0]}`" if i < len(cum) else " | "
        out.append(f"| {left} | | {right} |")
    return "\n".join(out) + "\n"
