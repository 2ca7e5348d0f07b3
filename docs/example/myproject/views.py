"""The ``articles`` resource of the example service."""

import colander

from cliquet import resource


class ArticleSchema(resource.ResourceSchema):
    """What an article holds; ``title`` is the only required field."""

    title = colander.SchemaNode(colander.String(), validator=colander.Length(min=1, max=512))
    url = colander.SchemaNode(colander.String(), validator=colander.url, missing=colander.drop)
    tags = colander.SchemaNode(
        colander.Sequence(), colander.SchemaNode(colander.String()), missing=colander.drop
    )
    score = colander.SchemaNode(colander.Float(), missing=colander.drop)
    published = colander.SchemaNode(colander.Boolean(), missing=colander.drop)


@resource.register()
class Article(resource.ShareableResource):
    """Articles belong to their creator, who may share them (``permissions``)."""

    schema = ArticleSchema
    #: Lists filter and sort on these: backends that can index them do
    #: (``cliquet migrate`` creates the indexes on PostgreSQL).
    indexed_fields = ("published", "score", "title")
