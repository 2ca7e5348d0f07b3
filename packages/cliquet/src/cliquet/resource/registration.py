"""Declaring resources: ``@register()`` + ``config.scan()``, or
``config.add_resource(cls)``.

Each resource gets two services (collection and record) whose views
instantiate the resource class per request and call the method named after
the HTTP verb.
"""

from __future__ import annotations

import venusian

from cliquet.services import add_service, make_service

_COLLECTION_METHODS = {"GET": "collection_get",  # Cornice adds HEAD to GET views
                       "POST": "collection_post", "DELETE": "collection_delete"}
_RECORD_METHODS = {"GET": "get", "PUT": "put", "PATCH": "patch", "DELETE": "delete"}


def _view(resource_cls, method_name):
    def view(request):
        return getattr(resource_cls(request), method_name)()

    view.__name__ = f"{resource_cls.__name__}.{method_name}"
    view.__doc__ = getattr(resource_cls, method_name).__doc__
    return view


def add_resource(config, resource_cls, name=None, collection_path=None, record_path=None):
    """Register ``resource_cls``'s endpoints (the ``config.add_resource`` directive).

    :param name: the resource name (default: the class name, lower-cased);
        also the storage collection id.
    :param collection_path: default ``/{name}s``.
    :param record_path: default ``{collection_path}/{{id}}``.
    """
    name = name or resource_cls.__dict__.get("name") or resource_cls.__name__.lower()
    collection_path = collection_path or f"/{name}s"
    record_path = record_path or collection_path + "/{id}"
    resource_cls.name = name
    resource_cls.collection_path = collection_path
    resource_cls.record_path = record_path
    resource_cls.schema_instance()
    resource_cls.on_register(config)

    collection = make_service(name=f"{name}-collection", path=collection_path,
                              description=f"Collection of {name}")
    record = make_service(name=f"{name}-record", path=record_path, description=f"One {name}")
    version = str(config.get_settings().get("cliquet.http_api_version") or "1.0")
    with config.route_prefix_context("v" + version.split(".")[0]):
        for service, methods in ((collection, _COLLECTION_METHODS), (record, _RECORD_METHODS)):
            for verb, method_name in methods.items():
                service.add_view(verb, _view(resource_cls, method_name), permission="__no_permission_required__")
            add_service(config, service)
    resources = config.registry.__dict__.setdefault("cliquet_resources", {})
    config.action(("cliquet-resource", name), lambda: resources.__setitem__(name, resource_cls))


def register(name=None, collection_path=None, record_path=None, depth=1):
    """Class decorator: register the resource when its module is scanned.

    ::

        @resource.register()
        class Article(resource.UserResource):
            schema = ArticleSchema
    """

    def wrapper(cls):
        def callback(context, _name, ob):
            config = context.config.with_package(info.module)
            config.add_resource(cls, name=name, collection_path=collection_path, record_path=record_path)

        info = venusian.attach(cls, callback, category="pyramid", depth=depth)
        return cls

    return wrapper
