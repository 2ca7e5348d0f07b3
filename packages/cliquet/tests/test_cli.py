"""The ``cliquet`` command."""

import subprocess
import sys

import pytest

from cliquet.scripts import cliquet as cli

INI = """
[app:main]
use = call:cliquet.testing.app:app_factory
cliquet.userid_hmac_secret = test
"""


@pytest.fixture
def ini(tmp_path):
    path = tmp_path / "app.ini"
    path.write_text(INI)
    return str(path)


def test_migrate(ini, capsys):
    assert cli.main(["migrate", "--ini", ini]) == 0
    out = capsys.readouterr().out
    assert "storage: initializing cliquet.storage.memory" in out
    assert "permission: initializing" in out


def test_migrate_dry_run(ini, capsys):
    assert cli.main(["migrate", "--ini", ini, "--dry-run"]) == 0
    assert "(dry run)" in capsys.readouterr().out


def test_purge_deleted(ini, capsys):
    assert cli.main(["purge-deleted", "--ini", ini, "--older-than", "1d"]) == 0
    assert "tombstones purged" in capsys.readouterr().out


def test_command_is_installed():
    result = subprocess.run([sys.executable, "-m", "cliquet.scripts.cliquet", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "migrate" in result.stdout


def test_serve_picks_one_worker_on_memory_backends(ini, monkeypatch):
    calls = []
    monkeypatch.setattr(cli.os, "execvp", lambda prog, argv: calls.append(argv))
    monkeypatch.delenv("CLIQUET_STORAGE_BACKEND", raising=False)
    for name in ("CLIQUET_INI", "CLIQUET_SERVE_THREADS", "CLIQUET_SERVE_WORKERS"):  # serve sets them
        monkeypatch.setenv(name, "")
    cli.main(["serve", "--ini", ini, "--port", "9999"])
    argv = calls[0]
    assert argv[argv.index("--workers") + 1] == "1" and argv[argv.index("--port") + 1] == "9999"
    monkeypatch.setenv("CLIQUET_STORAGE_BACKEND", "cliquet.storage.postgresql")
    cli.main(["serve", "--ini", ini])
    argv = calls[1]
    assert argv[argv.index("--workers") + 1] == "1"  # cache and permission are still in memory
    for kind in ("CACHE", "PERMISSION"):
        monkeypatch.setenv(f"CLIQUET_{kind}_BACKEND", f"cliquet.{kind.lower()}.redis")
    cli.main(["serve", "--ini", ini])
    argv = calls[2]
    assert int(argv[argv.index("--workers") + 1]) >= 1 and cli.os.environ["CLIQUET_SERVE_THREADS"] == "2"
    assert argv[argv.index("--interface") + 1] == "rsgi"  # bodies read before a thread is taken


def test_purge_deleted_needs_a_duration(ini, capsys):
    assert cli.main(["purge-deleted", "--ini", ini]) == 2
    assert "tombstones_retention" in capsys.readouterr().err


@pytest.mark.services
def test_migrate_creates_indexes_for_declared_fields(tmp_path, postgresql_url, cliquet_worker_prefix, capsys):
    import urllib.parse

    import psycopg

    schema = f"{cliquet_worker_prefix}cli"
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{postgresql_url}?options={urllib.parse.quote(f'-csearch_path={schema}')}"
    path = tmp_path / "pg.ini"
    path.write_text(INI.replace("app_factory", "indexed_app_factory")
                    + "cliquet.storage_backend = cliquet.storage.postgresql\n"
                    + f"cliquet.storage_url = {url.replace('%', '%%')}\n")  # INI interpolation
    try:
        assert cli.main(["migrate", "--ini", str(path)]) == 0
        assert "storage: indexes for article: score, published" in capsys.readouterr().out
        with psycopg.connect(url) as conn:
            indexes = [r[0] for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = %s", (schema,)).fetchall()]
        assert any("score" in i for i in indexes) and any("published" in i for i in indexes)
    finally:
        with psycopg.connect(postgresql_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
