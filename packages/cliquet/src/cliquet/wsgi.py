"""A WSGI entry point for servers that take ``module:attribute``:
``cliquet.wsgi:application`` loads the app of the INI file named by the
``CLIQUET_INI`` environment variable (``cliquet serve`` sets it)."""

import os

from pyramid.paster import get_app, setup_logging

from cliquet.schema import SchemaNotReady, exit_if_not_ready

_ini = os.environ.get("CLIQUET_INI")
if not _ini:  # pragma: no cover
    raise RuntimeError("Set CLIQUET_INI to the path of the application's INI file")
setup_logging(_ini)
try:
    application = get_app(_ini, "main")
except SchemaNotReady as exc:  # pragma: no cover - exits the process
    exit_if_not_ready(exc)  # one line naming `cliquet migrate`, status 1
