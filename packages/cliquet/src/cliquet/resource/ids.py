"""Record id generators: how new ids look, and which ids a URL may carry."""

from __future__ import annotations

import re
import uuid


class IdGenerator:
    """Base class: generates ids and recognises valid ones.

    Subclasses set :attr:`regexp` and implement :meth:`__call__`.
    """

    #: ids accepted in URLs and bodies.
    regexp = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$"

    def __init__(self):
        self._regexp = re.compile(self.regexp)

    def __call__(self) -> str:
        """Return a new id."""
        raise NotImplementedError

    def match(self, object_id) -> bool:
        """Return whether ``object_id`` is a valid id."""
        return isinstance(object_id, str) and self._regexp.match(object_id) is not None


class UUID4(IdGenerator):
    """Random UUIDs (the default), in their canonical lower-case form."""

    regexp = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"

    def __call__(self) -> str:
        """Return ``str(uuid.uuid4())``."""
        return str(uuid.uuid4())


class RelaxedUUID(UUID4):
    """UUID4 for new ids, but any UUID (or short slug) accepted from clients."""

    regexp = r"^([0-9a-fA-F-]{36}|[a-zA-Z0-9][a-zA-Z0-9_-]{0,63})$"
