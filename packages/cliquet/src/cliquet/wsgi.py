"""A WSGI entry point for servers that take ``module:attribute``:
``cliquet.wsgi:application`` loads the app of the INI file named by the
``CLIQUET_INI`` environment variable (``cliquet serve`` sets it)."""

import os

from pyramid.paster import get_app, setup_logging

_ini = os.environ.get("CLIQUET_INI")
if not _ini:  # pragma: no cover
    raise RuntimeError("Set CLIQUET_INI to the path of the application's INI file")
setup_logging(_ini)
application = get_app(_ini, "main")
