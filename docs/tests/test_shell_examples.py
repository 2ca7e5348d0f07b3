"""Every shell example of the documentation runs, as written, from the
repository's root — what a newcomer types after cloning.

The examples are the ``.. code-block:: console`` blocks of ``docs/*.rst``:
each line starting with ``$ `` is a command (a trailing ``\\`` continues it
on the next line), the other lines are the output shown and are not
checked. (HTTP examples — ``curl`` in ``.. code-block:: shell`` blocks — are
run and their answers compared by ``test_quickstart.py``.)

A block's commands run one after the other in one ``bash`` (so an
``export`` holds for the commands after it), stopping at the first failure.
A command that starts the service (``./ci/serve``, with or without
environment assignments or a trailing ``&``) is started in the background on
a free port (``PORT``, as documented), must answer ``/v1/__heartbeat__`` with
200, and is stopped at the end of the block; the block's later commands
reach it at ``127.0.0.1:8888`` rewritten to that port.

A block that cannot run in a test says so in the page, on the line before
it, with its reason::

    .. shell-example: skip (publishes nothing: cliquet-riak is not on the public index)

(an reST comment: invisible in the built pages). Those blocks are listed by
:func:`test_the_skipped_examples_are_few_and_say_why`, and reported as
skipped with their reason.

The environment is this one's, minus Cliquet settings and the test
environment's own variables; ``CLIQUET_TEST_POSTGRESQL_URL`` points at a
schema of the test's own, so an example that sets the service's URLs from it
never touches the tables of other tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cliquet.testing.plugin import postgresql_schema
from cliquet.testing.servers import free_port

DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent
SKIP = re.compile(r"^\s*\.\. shell-example: skip \((?P<reason>[^)]+)\)\s*$")
DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. code-block:: *console\s*$")
#: a command that starts the service (possibly after VAR=value assignments)
SERVER = re.compile(r"^(?:\w+=\S+\s+)*\./ci/serve\b[^&|;]*&?\s*$")
#: the most blocks that may be skipped (each with its reason in the page)
MAX_SKIPPED = 6


def console_blocks():
    """Yield ``(page, line number, commands, skip reason or None)`` for each
    ``.. code-block:: console`` of ``docs/*.rst``."""
    for page in sorted(DOCS.glob("*.rst")):
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            match = DIRECTIVE.match(line)
            if not match:
                continue
            previous = next((lines[i] for i in range(number - 1, -1, -1) if lines[i].strip()), "")
            skip = SKIP.match(previous)
            indent = len(match["indent"])
            body = []
            for following in lines[number + 1:]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                body.append(following.strip())
            commands, continued = [], False
            for text in body:
                if continued:
                    commands[-1] = commands[-1][:-1].rstrip() + " " + text
                elif text.startswith("$ "):
                    commands.append(text[2:].strip())
                else:
                    continue
                continued = commands[-1].endswith("\\")
            yield page.name, number + 1, commands, skip["reason"] if skip else None


BLOCKS = list(console_blocks())


def test_the_examples_are_found():
    assert len(BLOCKS) >= 8
    assert all(commands for _, _, commands, _ in BLOCKS), [b for b in BLOCKS if not b[2]]


def test_the_skipped_examples_are_few_and_say_why():
    skipped = [(page, line, reason) for page, line, _, reason in BLOCKS if reason]
    report = "\n".join(f"{page}:{line}: {reason}" for page, line, reason in skipped)
    print("Shell examples not run:\n" + report)
    assert len(skipped) <= MAX_SKIPPED, report
    assert all(len(reason) > 10 for _, _, reason in skipped), report


def script(commands: list[str], port: int) -> str:
    """The bash script that runs a block's commands (see the module doc)."""
    python = shlex.quote(sys.executable)
    lines = [
        "set -eo pipefail",
        f"cd {shlex.quote(str(ROOT))}",
        "servers=()",
        'stop() { for pid in "${servers[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done; '
        'for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done; }',
        "trap stop EXIT",
    ]
    for command in commands:
        command = command.replace("127.0.0.1:8888", f"127.0.0.1:{port}")
        lines.append(f"echo {shlex.quote('$ ' + command)} >&2")
        if SERVER.match(command):
            command = command.rstrip("& ")
            log = f"/tmp/shell-example-{uuid.uuid4().hex}.log"
            lines += [
                f"PORT={port} setsid bash -c {shlex.quote(command)} > {log} 2>&1 &",
                'servers+=("$!")',
                f"{python} -c {shlex.quote(WAIT)} {port} \"$!\" {log}",
            ]
        else:
            lines.append(command)
    return "\n".join(lines) + "\n"


#: wait for the service to answer its heartbeat with 200 (arguments: port, pid, log)
WAIT = """
import os, sys, time, urllib.request, urllib.error
port, pid, log = sys.argv[1:]
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    try:
        os.kill(int(pid), 0)
    except OSError:
        sys.exit("the service exited:\\n" + open(log).read()[-3000:])
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/__heartbeat__", timeout=5) as r:
            sys.exit(0 if r.status == 200 else 1)
    except urllib.error.HTTPError as exc:
        sys.exit(f"__heartbeat__ answered {exc.code}: {exc.read()[:500]!r}\\n" + open(log).read()[-3000:])
    except OSError:
        time.sleep(0.5)
sys.exit("the service did not answer within 600 s:\\n" + open(log).read()[-3000:])
"""


def environment(postgresql_url: str | None) -> dict[str, str]:
    """This process's environment without Cliquet settings nor the test
    environment's variables (hatch, the virtual environment)."""
    test_bin = str(Path(sys.executable).parent)
    environ = {k: v for k, v in os.environ.items()
               if not (k.startswith("CLIQUET_") and not k.startswith("CLIQUET_TEST_"))
               and not k.startswith(("HATCH_ENV", "PYTEST_", "VIRTUAL_ENV", "COVERAGE_"))
               and k not in ("PYTHONPATH", "PORT")}
    environ["PATH"] = os.pathsep.join(p for p in environ.get("PATH", "").split(os.pathsep) if p != test_bin)
    if postgresql_url:
        environ["CLIQUET_TEST_POSTGRESQL_URL"] = postgresql_url
    return environ


@pytest.mark.services
@pytest.mark.xdist_group("shell-examples")
@pytest.mark.parametrize("page, line, commands, skip", BLOCKS, ids=[f"{b[0]}:{b[1]}" for b in BLOCKS])
def test_the_example_runs(page, line, commands, skip, cliquet_worker_prefix):
    if skip:
        pytest.skip(f"{page}:{line}: {skip}")
    text = "\n".join(commands)
    needs_postgresql = "CLIQUET_TEST_POSTGRESQL_URL" in text
    base = os.environ.get("CLIQUET_TEST_POSTGRESQL_URL", "").strip()
    if needs_postgresql and not base:
        from cliquet.testing.plugin import service_url

        service_url("CLIQUET_TEST_POSTGRESQL_URL")  # skip, or fail under CI=true
    schema = f"{cliquet_worker_prefix}doc{line}"
    with postgresql_schema(base, schema) if needs_postgresql else contextlib.nullcontext() as url:
        result = subprocess.run(["bash", "-c", script(commands, free_port())], env=environment(url),
                                capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (
        f"{page}:{line}: the example failed ({result.returncode})\n{result.stderr[-5000:]}\n{result.stdout[-3000:]}")

