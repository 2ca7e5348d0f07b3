"""Resources: declare a schema, get the whole protocol.

::

    from cliquet import resource

    class ArticleSchema(resource.ResourceSchema):
        title = colander.SchemaNode(colander.String())

    @resource.register()
    class Article(resource.UserResource):
        schema = ArticleSchema
"""

from cliquet.resource.base import UserResource, merge_patch
from cliquet.resource.ids import UUID4, IdGenerator, RelaxedUUID
from cliquet.resource.model import Model
from cliquet.resource.registration import add_resource, register
from cliquet.resource.schema import ResourceSchema
from cliquet.resource.shareable import ShareableResource

__all__ = [
    "UserResource",
    "ShareableResource",
    "ResourceSchema",
    "Model",
    "register",
    "add_resource",
    "IdGenerator",
    "UUID4",
    "RelaxedUUID",
    "merge_patch",
]
