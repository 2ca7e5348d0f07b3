"""The RSGI entry point of ``cliquet serve``: ``cliquet.rsgi:application``
loads the app of the INI file named by ``CLIQUET_INI`` and serves it with
:class:`cliquet.serving.BufferedWSGI` on ``CLIQUET_SERVE_THREADS`` threads
(1 by default): request bodies are read before a thread is taken."""

import os

from pyramid.paster import get_app, setup_logging

from cliquet.schema import SchemaNotReady, exit_if_not_ready
from cliquet.serving import BufferedWSGI

_ini = os.environ.get("CLIQUET_INI")
if not _ini:  # pragma: no cover
    raise RuntimeError("Set CLIQUET_INI to the path of the application's INI file")
setup_logging(_ini)
try:
    _app = get_app(_ini, "main")
except SchemaNotReady as exc:  # pragma: no cover - exits the process
    exit_if_not_ready(exc)  # one line naming `cliquet migrate`, status 1
application = BufferedWSGI.from_app(
    _app,
    threads=int(os.environ.get("CLIQUET_SERVE_THREADS") or 1),
    multiprocess=int(os.environ.get("CLIQUET_SERVE_WORKERS") or 1) > 1,
)
