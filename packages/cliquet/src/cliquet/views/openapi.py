"""``GET /v1/__api__``: the OpenAPI 3.1 description of the service."""


def includeme(config):
    """Register the ``__api__`` endpoint (filled in by cliquet.openapi)."""
