"""A test application with cliquet-indexing, for functional tests of this
package and of indexer packages (through the real WSGI stack, with WebTest)::

    from cliquet_indexing.testing.app import make_search_app
    from cliquet.testing.app import basic_auth

    app = make_search_app(indexing_backend="cliquet_elasticsearch", indexing_url=url)
    app.post_json("/v1/search/articles", {"query": {"match_all": {}}}, headers=basic_auth("bob"))
"""

from __future__ import annotations

from pyramid.config import Configurator


def make_search_wsgi_app(resources=None, include="pyramid.includes", **settings):
    """Return a WSGI app on memory backends (unless ``settings`` say
    otherwise) with ``cliquet_indexing`` and the test ``articles``.

    :param resources: resource classes (default: the per-user ``Article`` of
        :mod:`cliquet.testing.app`).
    :param include: ``"pyramid.includes"`` (before ``cliquet.initialize``, as
        an INI file does) or ``"config.include"`` (after it).
    :param settings: setting names without prefix; the retry queue's
        background thread is off unless ``indexing_retry_interval`` is given.
    """
    import cliquet
    from cliquet.testing.app import TEST_SECRET, Article

    # Test apps start on fresh schemas: migrated at start-up (cliquet.schema_check).
    raw = {"userid_hmac_secret": TEST_SECRET, "indexing_retry_interval": "0", "schema_check": "migrate",
           **settings}
    app_settings = {f"cliquet.{k}": v for k, v in raw.items()}
    if include == "pyramid.includes":
        app_settings["pyramid.includes"] = "cliquet_indexing"
    config = Configurator(settings=app_settings)
    cliquet.initialize(config, "0.0.1", project_name="testapp")
    if include == "config.include":
        config.include("cliquet_indexing")
    for resource_cls in resources or (Article,):
        config.add_resource(resource_cls)
    return config.make_wsgi_app()


def make_search_app(resources=None, include="pyramid.includes", **settings):
    """Return a :class:`webtest.TestApp` on :func:`make_search_wsgi_app`."""
    import webtest

    return webtest.TestApp(make_search_wsgi_app(resources, include, **settings))


def app_factory(global_config, **settings):
    """A PasteDeploy factory serving the test ``articles`` (per-user), for
    command-line tests; add ``pyramid.includes = cliquet_indexing`` in the INI."""
    import cliquet
    from cliquet.testing.app import Article

    config = Configurator(settings=settings)
    cliquet.initialize(config, "0.0.1", project_name="testapp")
    config.add_resource(Article)
    return config.make_wsgi_app()
