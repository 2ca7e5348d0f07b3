"""Test helpers shipped with Cliquet, for Cliquet itself and for any package
that provides a backend or a feature (the precedent is :mod:`pyramid.testing`).

* :func:`make_config` — a configurator with settings loaded as the app would.
* :mod:`cliquet.testing.cache`, :mod:`~cliquet.testing.storage`,
  :mod:`~cliquet.testing.permission` — the shared contract suites.
* :mod:`cliquet.testing.plugin` — the pytest plugin (fixtures for service
  URLs, per-worker prefixes, a WebTest app).
"""

from __future__ import annotations

from pyramid.config import Configurator

from cliquet.core_settings import CORE_SETTINGS
from cliquet.settings import declare_settings


def make_config(environ=None, **settings):
    """Return a :class:`~pyramid.config.Configurator` whose settings are loaded
    like an application's, for ``load_from_config(config)`` in tests.

    Keyword arguments are setting names without prefix::

        config = make_config(cache_url="redis://localhost/1", cache_prefix="t1:")
    """
    raw = {("cliquet." + k if not k.startswith("cliquet.") else k): v for k, v in settings.items()}
    config = Configurator(settings=raw)
    declare_settings(config, CORE_SETTINGS, environ={} if environ is None else environ)
    return config
