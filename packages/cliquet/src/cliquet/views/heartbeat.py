"""Health endpoints for load balancers and monitoring.

* ``/__heartbeat__``: every registered check (storage, cache, permission, and
  whatever packages add with ``config.add_heartbeat_check``), run in parallel
  within ``cliquet.heartbeat_timeout_seconds``; 503 if any fails.
* ``/__lbheartbeat__``: always ``{}`` 200 while the process answers.
* ``/__version__``: the content of ``version.json`` (or what the settings know).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os

import orjson

from cliquet.services import make_service
from cliquet.utils import json_response

logger = logging.getLogger("cliquet")

heartbeat = make_service(name="heartbeat", path="/__heartbeat__", description="Server health")
lbheartbeat = make_service(name="lbheartbeat", path="/__lbheartbeat__", description="Process alive")
version = make_service(name="version", path="/__version__", description="Version information")

_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="cliquet-heartbeat")


def _run_check(name, check, request):
    try:
        return bool(check(request))
    except Exception:  # a check must never break the endpoint
        logger.exception("Heartbeat check %r failed", name)
        return False


@heartbeat.get(permission="__no_permission_required__")
def get_heartbeat(request):
    """Run every check; 200 if all are true, 503 otherwise."""
    checks = getattr(request.registry, "heartbeats", {})
    timeout = request.registry.settings["cliquet.heartbeat_timeout_seconds"]
    futures = {name: _POOL.submit(_run_check, name, check, request) for name, check in checks.items()}
    status = {}
    for name, future in futures.items():
        try:
            status[name] = future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            logger.error("Heartbeat check %r timed out", name)
            status[name] = False
    code = 200 if all(status.values()) else 503
    return json_response(request, status, status=code)


@lbheartbeat.get(permission="__no_permission_required__")
def get_lbheartbeat(request):
    """The process is alive."""
    return json_response(request, {})


@version.get(permission="__no_permission_required__")
def get_version(request):
    """Serve ``version.json`` (``cliquet.version_json_path``), else a summary."""
    settings = request.registry.settings
    path = settings["cliquet.version_json_path"]
    cached = getattr(request.registry, "cliquet_version_json", None)
    if cached is None:
        cached = {
            "name": settings["cliquet.project_name"],
            "version": settings["cliquet.project_version"],
            "source": settings["cliquet.project_docs"],
            "commit": "unknown",
        }
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                cached = orjson.loads(f.read())
        request.registry.cliquet_version_json = cached
    return json_response(request, cached)
