"""A small Cliquet application for functional tests (through the real WSGI
stack with WebTest), usable by any package::

    from cliquet.testing.app import make_app, basic_auth

    app = make_app(paginate_by=5)
    app.post_json("/v1/articles", {"data": {"title": "x"}}, headers=basic_auth("bob"))
"""

from __future__ import annotations

import base64
import contextlib

import colander
from pyramid.config import Configurator

import cliquet
from cliquet.resource import ResourceSchema, ShareableResource, UserResource

#: the HMAC secret of the test app.
TEST_SECRET = "this is not a secret, it is a test"


class ArticleSchema(ResourceSchema):
    """Same fields as the documentation's example app."""

    title = colander.SchemaNode(colander.String(), validator=colander.Length(min=1, max=512))
    url = colander.SchemaNode(colander.String(), validator=colander.url, missing=colander.drop)
    tags = colander.SchemaNode(colander.Sequence(), colander.SchemaNode(colander.String()),
                               missing=colander.drop)
    score = colander.SchemaNode(colander.Float(), missing=colander.drop)
    published = colander.SchemaNode(colander.Boolean(), missing=colander.drop)
    author = colander.SchemaNode(colander.Mapping(unknown="preserve"), missing=colander.drop)


class Article(UserResource):
    """Per-user articles."""

    schema = ArticleSchema


class SharedArticle(ShareableResource):
    """The same articles, shareable (served at the same ``/articles`` URL)."""

    name = "article"
    schema = ArticleSchema


def basic_auth(user="alice", password="secret") -> dict:
    """Return an ``Authorization`` header for HTTP Basic credentials."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def make_wsgi_app(settings=None, resources=(Article,), **extra):
    """Return the WSGI app; ``settings``/``extra`` are setting names without prefix."""
    # Test apps start on fresh schemas: migrated at start-up (cliquet.schema_check).
    raw = {"userid_hmac_secret": TEST_SECRET, "schema_check": "migrate"}
    raw.update(settings or {})
    raw.update(extra)
    config = Configurator(settings={f"cliquet.{k}": v for k, v in raw.items()})
    cliquet.initialize(config, "0.0.1", project_name="testapp")
    for resource_cls in resources:
        config.add_resource(resource_cls)
    return config.make_wsgi_app()


def make_app(settings=None, resources=(Article,), **extra):
    """Return a :class:`webtest.TestApp` on :func:`make_wsgi_app`."""
    import webtest

    return webtest.TestApp(make_wsgi_app(settings, resources, **extra))


def make_postgresql_app(url, resources=None, **extra):
    """Return a :func:`make_app` with storage and permissions on the
    PostgreSQL database at ``url`` (one client, one transaction per
    request), their tables migrated; ``resources`` default to
    :class:`SharedArticle`."""
    app = make_app(resources=resources or (SharedArticle,), storage_backend="cliquet.storage.postgresql",
                   storage_url=url, permission_backend="cliquet.permission.postgresql", permission_url=url, **extra)
    app.app.registry.storage.initialize_schema()
    app.app.registry.permission.initialize_schema()
    return app


#: the backends :func:`app_on_backends` knows, as pytest parameters.
BACKEND_NAMES = ("memory", "redis", "postgresql")


def app_on_backends(request, backend, prefix, resources=None):
    """Yield a :class:`webtest.TestApp` whose storage and permission backends
    are ``backend`` (``"memory"``, ``"redis"`` or ``"postgresql"``), then
    remove what it wrote: a generator for a pytest fixture.

    Redis and PostgreSQL are the real servers of the ``redis_url`` and
    ``postgresql_url`` fixtures (fetched through ``request``); the app keeps
    its keys under ``prefix`` (Redis) or its tables in a schema named after
    it (PostgreSQL, dropped at the end), so parallel tests never meet.
    ``resources`` defaults to :class:`SharedArticle`.
    """
    from cliquet.testing.plugin import postgresql_schema

    settings, schema = {}, contextlib.nullcontext()
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        settings = {"storage_backend": "cliquet.storage.redis", "storage_url": url,
                    "storage_prefix": f"{prefix}s:", "permission_backend": "cliquet.permission.redis",
                    "permission_url": url, "permission_prefix": f"{prefix}p:"}
    elif backend == "postgresql":
        schema = postgresql_schema(request.getfixturevalue("postgresql_url"), prefix.rstrip("_:"))
    elif backend != "memory":
        raise ValueError(f"unknown backend {backend!r}: expected one of {BACKEND_NAMES}")
    with schema as scoped:
        if scoped is not None:
            settings = {"storage_backend": "cliquet.storage.postgresql", "storage_url": scoped,
                        "permission_backend": "cliquet.permission.postgresql", "permission_url": scoped}
        app = make_app(settings, resources=resources or (SharedArticle,))
        registry = app.app.registry
        registry.storage.initialize_schema()
        registry.permission.initialize_schema()
        try:
            yield app
        finally:
            if backend == "redis":
                registry.storage.flush()
                registry.permission.flush()


def app_factory(global_config, **settings):
    """A PasteDeploy factory (``use = call:cliquet.testing.app:app_factory``)
    serving the test ``articles`` resource, for command-line tests."""
    config = Configurator(settings=settings)
    cliquet.initialize(config, "0.0.1", project_name="testapp")
    config.add_resource(Article)
    return config.make_wsgi_app()


def shared_app_factory(global_config, **settings):
    """A PasteDeploy factory (``use = call:cliquet.testing.app:shared_app_factory``)
    serving the shareable :class:`SharedArticle` at ``/articles``, as the
    example app does: the variant that exercises the permission backend on
    every write. Used by the served load and fault tests."""
    config = Configurator(settings=settings)
    cliquet.initialize(config, "0.0.1", project_name="testapp")
    config.add_resource(SharedArticle)
    return config.make_wsgi_app()


class IndexedArticle(Article):
    """Per-user articles whose lists filter and sort on ``score`` and ``published``."""

    name = "article"
    indexed_fields = ("score", "published")


def indexed_app_factory(global_config, **settings):
    """Like :func:`app_factory`, with :class:`IndexedArticle` (for ``cliquet migrate`` tests)."""
    config = Configurator(settings=settings)
    cliquet.initialize(config, "0.0.1", project_name="testapp")
    config.add_resource(IndexedArticle)
    return config.make_wsgi_app()
