"""The pytest plugin of Cliquet (entry point ``pytest11: cliquet``).

Installed with ``cliquet``, it gives every package's tests, without import:

``cliquet_worker_prefix`` (session)
    a short string unique to this pytest-xdist worker *and* this run (e.g.
    ``t3f9a2c1d_gw0_``): lowercase letters, digits and ``_`` only, so it is
    usable as a key prefix, a schema or database name part, an Elasticsearch
    index prefix or a Riak bucket prefix.
``postgresql_url``, ``redis_url`` (session)
    the URLs in ``CLIQUET_TEST_POSTGRESQL_URL`` and ``CLIQUET_TEST_REDIS_URL``
    (``eval "$(./ci/services)"`` sets them); see :func:`service_url` for what
    happens when one is missing.

And around every test, ``cliquet_logging_restored`` (autouse): the logging
configuration as it was before the test — handlers, levels, disabled and
propagating loggers — so that a test that configures logging from an INI
file (``cliquet migrate`` run in process calls ``setup_logging``) leaves no
handler writing to its own captured, later closed, stream, and no logger
disabled for the tests after it.

Other packages define their service fixtures with :func:`service_url`::

    @pytest.fixture(scope="session")
    def elasticsearch_url():
        return service_url("CLIQUET_TEST_ELASTICSEARCH_URL")

Nothing test-only beyond pytest is imported at module level.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid

import pytest

CI_VARIABLE = "CI"
POSTGRESQL_URL_VARIABLE = "CLIQUET_TEST_POSTGRESQL_URL"
REDIS_URL_VARIABLE = "CLIQUET_TEST_REDIS_URL"


def running_in_ci(environ=None) -> bool:
    """Return whether ``CI=true`` (case-insensitive) is set."""
    environ = os.environ if environ is None else environ
    return environ.get(CI_VARIABLE, "").strip().lower() == "true"


def service_url(variable: str, environ=None) -> str:
    """Return the URL of a test service from the environment variable ``variable``.

    When the variable is unset or empty, the calling test is skipped with a
    reason naming the variable — or fails, when ``CI=true``: in CI a missing
    service is an error, never a silent skip.
    """
    environ = os.environ if environ is None else environ
    url = environ.get(variable, "").strip()
    if url:
        return url
    reason = f"{variable} is not set (start the services with: eval \"$(./ci/services)\")"
    if running_in_ci(environ):
        pytest.fail(f"{reason}; it is required when {CI_VARIABLE}=true", pytrace=False)
    pytest.skip(reason)


def require_module(name: str, reason: str = "", environ=None):
    """Import and return the module ``name`` a test needs (a driver, an extra).

    When it cannot be imported, the calling test — or the whole module, when
    called at module level — is skipped with ``reason``, or fails when
    ``CI=true``: in CI a missing driver is an error, like a missing service,
    never a silent skip (``pytest.importorskip`` would hide a whole backend
    suite).
    """
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        why = f"{reason or f'{name} is not installed'} ({exc})"
        if running_in_ci(environ):
            pytest.fail(f"{why}; it is required when {CI_VARIABLE}=true", pytrace=False)
        pytest.skip(why, allow_module_level=True)


@contextlib.contextmanager
def postgresql_schema(url: str, schema: str):
    """Create the schema ``schema`` on the server of ``url`` (dropping a
    leftover first), yield ``url`` with that schema as its ``search_path``,
    then drop it: one test's (or one worker's) own tables."""
    import urllib.parse

    psycopg = require_module("psycopg", reason="the `postgresql` extra is not installed")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}?options={urllib.parse.quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def worker_prefix(worker: str, run: str) -> str:
    """Return the prefix for an xdist ``worker`` id (``gw0``, ``master``) and a run id."""
    clean = re.sub(r"[^a-z0-9]", "", f"{run}".lower())[:8] or "run"
    worker = re.sub(r"[^a-z0-9]", "", worker.lower()) or "main"
    return f"t{clean}_{worker}_"


def _worker_and_run(config) -> tuple[str, str]:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return workerinput.get("workerid", "gw"), workerinput.get("testrunuid") or uuid.uuid4().hex
    run = getattr(config, "_cliquet_run_id", None)
    if run is None:
        run = config._cliquet_run_id = uuid.uuid4().hex
    return "main", run


@pytest.fixture(autouse=True)
def cliquet_logging_restored():
    """Restore the logging configuration after each test (see the module doc)."""
    import logging

    def state(logger):
        return logger, list(logger.handlers), logger.level, logger.disabled, logger.propagate

    root = logging.getLogger()
    before = [state(root)] + [state(logger) for logger in list(logging.Logger.manager.loggerDict.values())
                              if isinstance(logger, logging.Logger)]
    yield
    for logger, handlers, level, disabled, propagate in before:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.disabled, logger.propagate = disabled, propagate
    known = {id(logger) for logger, *_ in before}
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and id(logger) not in known:
            logger.handlers.clear()  # created by the test: nothing of it stays


@pytest.fixture(scope="session")
def cliquet_worker_prefix(request) -> str:
    """A prefix unique to this xdist worker and this run (see the module doc)."""
    worker, run = _worker_and_run(request.config)
    return worker_prefix(worker, run)


@pytest.fixture(scope="session")
def postgresql_url() -> str:
    """``CLIQUET_TEST_POSTGRESQL_URL`` (skip locally / fail in CI when unset)."""
    return service_url(POSTGRESQL_URL_VARIABLE)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """``CLIQUET_TEST_REDIS_URL`` (skip locally / fail in CI when unset)."""
    return service_url(REDIS_URL_VARIABLE)
