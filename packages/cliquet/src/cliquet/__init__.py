"""Cliquet: a toolkit on Pyramid and Cornice for REST microservices.

An application calls :func:`initialize` (or ``config.include("cliquet")``)
and scans its resources; Cliquet brings up their endpoints with the whole
Cliquet 3.x protocol, the generic endpoints (hello, heartbeats, batch) and the
backends named in the settings.
"""

from __future__ import annotations

from cliquet.__about__ import __version__

__all__ = ["__version__", "initialize", "includeme"]


def initialize(config, version=None, project_name="", default_settings=None):
    """Set up ``config`` as a Cliquet application.

    :param config: the application's :class:`~pyramid.config.Configurator`.
    :param version: the application's version (hello view, ``/__version__``).
    :param project_name: the project name; its lower-cased form is also a
        settings prefix (``myproject.paginate_by``) and an environment
        variable prefix (``MYPROJECT_PAGINATE_BY``).
    :param default_settings: settings used when neither the INI file nor the
        environment sets them (names without prefix).
    """
    settings = config.registry.settings
    if project_name and not settings.get("cliquet.project_name"):
        settings["cliquet.project_name"] = project_name
    if version and not settings.get("cliquet.project_version"):
        settings["cliquet.project_version"] = version
    for name, value in (default_settings or {}).items():
        if not any(key in settings for key in ("cliquet." + name, name, f"{project_name}.{name}")):
            settings["cliquet." + name] = value
    config.include("cliquet")


def includeme(config):
    """Register everything Cliquet brings (see :mod:`cliquet.setup`)."""
    from cliquet.setup import setup_cliquet

    setup_cliquet(config)
