"""myproject: the example Cliquet service of the documentation."""

from pyramid.config import Configurator

import cliquet

__version__ = "0.1.0"


def main(global_config, **settings):
    """Build the WSGI application (the ``paste.app_factory`` of myproject.ini)."""
    config = Configurator(settings=settings)
    cliquet.initialize(config, __version__, project_name="myproject")
    config.scan("myproject.views")
    return config.make_wsgi_app()
