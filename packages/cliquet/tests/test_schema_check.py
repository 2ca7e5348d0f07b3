"""A backend schema missing or older than the code is found at start-up
(cliquet.schema): refused with one line naming `cliquet migrate`, or
migrated; the heartbeat names the backend that is not migrated."""

import logging
import os
import subprocess
import sys

import pytest
from pyramid.exceptions import ConfigurationError

from cliquet.schema import SchemaNotReady
from cliquet.scripts import cliquet as cli
from cliquet.testing.app import make_app, make_wsgi_app
from cliquet.testing.plugin import postgresql_schema

pytestmark = pytest.mark.services


@pytest.fixture
def pg_url(request, postgresql_url, cliquet_worker_prefix):
    """A fresh, empty PostgreSQL schema of this test."""
    with postgresql_schema(postgresql_url, f"{cliquet_worker_prefix}schk") as url:
        yield url


def pg_settings(url, check):
    return {"storage_backend": "cliquet.storage.postgresql", "storage_url": url,
            "permission_backend": "cliquet.permission.postgresql", "permission_url": url,
            "schema_check": check}


def set_version(url, component, version):
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE cliquet_schema SET version = %s WHERE component = %s", (version, component))


def test_memory_and_redis_backends_have_no_schema(redis_url, cliquet_worker_prefix):
    from cliquet.testing.app import make_wsgi_app

    registry = make_app().app.registry
    assert [getattr(registry, kind).schema_pending() for kind in ("storage", "cache", "permission")] == \
        [None, None, None]
    app = make_app({"storage_backend": "cliquet.storage.redis", "storage_url": redis_url,
                    "storage_prefix": f"{cliquet_worker_prefix}schk:", "schema_check": "refuse"})
    assert app.app.registry.storage.schema_pending() is None
    assert make_wsgi_app  # imported for the refusing cases below


def test_refuse_names_each_backend_and_cliquet_migrate_on_one_line(pg_url):
    with pytest.raises(SchemaNotReady) as info:
        make_wsgi_app(pg_settings(pg_url, "refuse"))
    message = str(info.value)
    assert "\n" not in message
    assert "storage (cliquet.storage.postgresql) is missing" in message
    assert "permission (cliquet.permission.postgresql) is missing" in message
    assert "cache" not in message.split("cliquet migrate")[0]  # memory: no schema
    assert "cliquet migrate --ini" in message


def test_refuse_is_the_default(pg_url):
    settings = pg_settings(pg_url, "refuse")
    del settings["schema_check"]
    import cliquet
    from pyramid.config import Configurator

    config = Configurator(settings={f"cliquet.{k}": v for k, v in settings.items()}
                          | {"cliquet.userid_hmac_secret": "x"})
    cliquet.initialize(config, "1.0", project_name="schk")
    with pytest.raises(SchemaNotReady):
        config.make_wsgi_app()


def test_migrate_at_start_then_refuse_starts(pg_url):
    app = make_app(pg_settings(pg_url, "migrate"))
    assert app.app.registry.storage.schema_pending() is None
    assert app.app.registry.permission.schema_pending() is None
    headers = {"Authorization": "Basic YWxpY2U6c2VjcmV0"}
    app.post_json("/v1/articles", {"data": {"title": "a"}}, headers=headers, status=201)
    # migrated: a refusing app starts too
    make_wsgi_app(pg_settings(pg_url, "refuse"))


def test_an_older_schema_is_refused_with_its_version(pg_url):
    make_wsgi_app(pg_settings(pg_url, "migrate"))
    set_version(pg_url, "storage", 1)
    with pytest.raises(SchemaNotReady) as info:
        make_wsgi_app(pg_settings(pg_url, "refuse"))
    assert "storage (cliquet.storage.postgresql) is at version 1 of" in str(info.value)
    assert "permission" not in str(info.value).split("cliquet migrate")[0]
    make_wsgi_app(pg_settings(pg_url, "migrate"))  # migrates it
    make_wsgi_app(pg_settings(pg_url, "refuse"))


def test_a_newer_schema_is_refused_even_when_migrating(pg_url):
    make_wsgi_app(pg_settings(pg_url, "migrate"))
    set_version(pg_url, "permission", 99)
    for mode in ("refuse", "migrate"):
        with pytest.raises(ConfigurationError, match="newer than"):
            make_wsgi_app(pg_settings(pg_url, mode))


def test_an_unknown_mode_names_the_setting():
    with pytest.raises(ConfigurationError, match="cliquet.schema_check"):
        make_wsgi_app({"schema_check": "sometimes"})


def test_heartbeat_says_which_backend_is_not_migrated(pg_url, caplog):
    app = make_app(pg_settings(pg_url, "ignore"))
    app.app.registry.storage.initialize_schema()
    with caplog.at_level(logging.ERROR, logger="cliquet"):
        response = app.get("/__heartbeat__", status=503)
    assert response.json == {"storage": True, "cache": True, "permission": False}
    assert any("permission schema" in r.getMessage() and "cliquet migrate" in r.getMessage()
               for r in caplog.records)
    app.app.registry.permission.initialize_schema()
    assert app.get("/__heartbeat__").json == {"storage": True, "cache": True, "permission": True}


def write_ini(tmp_path, url, check=None):
    path = tmp_path / "pg.ini"
    lines = ["[app:main]", "use = call:cliquet.testing.app:app_factory", "cliquet.userid_hmac_secret = test",
             "cliquet.storage_backend = cliquet.storage.postgresql",
             f"cliquet.storage_url = {url.replace('%', '%%')}"]
    if check:
        lines.append(f"cliquet.schema_check = {check}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_cliquet_serve_refuses_with_one_line(tmp_path, pg_url, capsys, monkeypatch):
    monkeypatch.delenv("CLIQUET_SCHEMA_CHECK", raising=False)
    ini = write_ini(tmp_path, pg_url)
    monkeypatch.setenv("CLIQUET_INI", ini)  # cmd_serve sets it; restored after the test
    assert cli.main(["serve", "--ini", ini, "--port", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cliquet serve: Cliquet cannot start")
    assert f"cliquet migrate --ini {os.path.abspath(ini)}" in err[0]
    # `cliquet migrate` itself starts the app without the check, and fixes it
    assert cli.main(["migrate", "--ini", ini]) == 0
    assert "CLIQUET_SCHEMA_CHECK" not in os.environ


def test_the_wsgi_entry_point_refuses_with_one_line(tmp_path, pg_url):
    ini = write_ini(tmp_path, pg_url)
    env = {k: v for k, v in os.environ.items() if k != "CLIQUET_SCHEMA_CHECK"} | {"CLIQUET_INI": ini}
    result = subprocess.run([sys.executable, "-c", "import cliquet.wsgi"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Cliquet cannot start: the schema of storage")
    assert len([line for line in result.stderr.splitlines() if "cliquet migrate" in line]) == 1
    assert "Traceback" not in result.stderr
