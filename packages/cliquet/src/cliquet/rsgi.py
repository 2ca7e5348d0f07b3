"""The RSGI entry point of ``cliquet serve``: ``cliquet.rsgi:application``
loads the app of the INI file named by ``CLIQUET_INI`` and serves it with
:class:`cliquet.serving.BufferedWSGI` on ``CLIQUET_SERVE_THREADS`` threads
(1 by default): request bodies are read before a thread is taken."""

import os

from pyramid.paster import get_app, setup_logging

from cliquet.serving import BufferedWSGI

_ini = os.environ.get("CLIQUET_INI")
if not _ini:  # pragma: no cover
    raise RuntimeError("Set CLIQUET_INI to the path of the application's INI file")
setup_logging(_ini)
application = BufferedWSGI.from_app(
    get_app(_ini, "main"),
    threads=int(os.environ.get("CLIQUET_SERVE_THREADS") or 1),
    multiprocess=int(os.environ.get("CLIQUET_SERVE_WORKERS") or 1) > 1,
)
