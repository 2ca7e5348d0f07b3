"""Schemas: what a record may hold, validated strictly.

A resource's schema is a :class:`ResourceSchema` (a colander mapping). Before
colander runs, :func:`check_json_types` checks that each value already has
the JSON type its node expects — colander alone would turn ``42`` into
``"42"`` for a string field, or ``"3"`` into ``3.0`` for a number, which hides
client bugs.

An error names at most :data:`MAX_DETAILS` faults, each name at most
:data:`MAX_NAME_LENGTH` characters: a body of 100 000 wrong values (or one
900 kB key) is answered in a few kB, not tens of MB.
"""

from __future__ import annotations

import colander


class ResourceSchema(colander.MappingSchema):
    """Base schema of a resource's records.

    Set ``Options.preserve_unknown = True`` in a subclass to accept fields the
    schema doesn't name (they are stored as sent); by default unknown fields
    are a 400 error.
    """

    class Options:
        """Schema-wide options."""

        preserve_unknown = False

    def schema_type(self, **kw):
        """A mapping that raises on (or keeps) unknown fields."""
        return colander.Mapping(unknown="preserve" if self.Options.preserve_unknown else "raise")

    @classmethod
    def field_names(cls) -> set[str]:
        """Names of the fields declared by the schema."""
        return {node.name for node in cls().children}


_NUMBER = (int, float)
#: most faults listed in one validation error.
MAX_DETAILS = 10
#: longest field name echoed in an error (longer ones are cut, with "…").
MAX_NAME_LENGTH = 200


def _type_error(node, value):
    typ = node.typ
    if isinstance(typ, colander.String):
        return None if isinstance(value, str) else "Must be a string"
    if isinstance(typ, colander.Boolean):
        return None if isinstance(value, bool) else "Must be a boolean"
    if isinstance(typ, colander.Int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "Must be an integer"
    if isinstance(typ, (colander.Float, colander.Decimal, colander.Number)):
        return None if isinstance(value, _NUMBER) and not isinstance(value, bool) else "Must be a number"
    if isinstance(typ, (colander.Sequence, colander.List, colander.Set, colander.Tuple)):
        return None if isinstance(value, list) else "Must be a list"
    if isinstance(typ, colander.Mapping):
        return None if isinstance(value, dict) else "Must be an object"
    return None


def check_json_types(node, value, path="", errors=None) -> dict[str, str]:
    """Return ``{dotted path: message}`` for values of the wrong JSON type
    (the first :data:`MAX_DETAILS` of them: checking stops there)."""
    errors = {} if errors is None else errors
    if value is None or len(errors) >= MAX_DETAILS:
        return errors  # colander reports required/null values itself
    message = _type_error(node, value)
    if message:
        errors[path or node.name] = message
        return errors
    typ = node.typ
    if isinstance(typ, colander.Mapping) and isinstance(value, dict):
        if typ.unknown == "raise":
            known = {child.name for child in node.children}
            for key in value:
                if key not in known:
                    errors[f"{path}.{key}" if path else key] = "Unknown field"
                    if len(errors) >= MAX_DETAILS:
                        return errors
        for child in node.children:
            if child.name in value:
                check_json_types(child, value[child.name], f"{path}.{child.name}" if path else child.name, errors)
    elif isinstance(typ, (colander.Sequence, colander.List)) and isinstance(value, list) and node.children:
        child = node.children[0]
        for i, item in enumerate(value):
            check_json_types(child, item, f"{path}.{i}", errors)
            if len(errors) >= MAX_DETAILS:
                break
    return errors


def validate(schema_node, data: dict) -> dict:
    """Validate ``data`` against ``schema_node``; return the clean record.

    :raises colander.Invalid: with ``asdict()`` naming every field at fault.
    """
    errors = check_json_types(schema_node, data, "")
    if errors:
        exc = colander.Invalid(schema_node, "Invalid types")
        exc._cliquet_errors = errors
        raise exc
    clean = schema_node.deserialize(data)
    for child in schema_node.children:
        # Numbers keep the client's form (3 stays 3, not 3.0): types were checked above.
        if isinstance(child.typ, (colander.Float, colander.Int)) and child.name in clean:
            clean[child.name] = data[child.name]
    return clean


def invalid_details(exc: colander.Invalid, prefix: str = "data") -> list[dict]:
    """Turn a colander error into protocol ``details`` (location, name, description)."""
    errors = getattr(exc, "_cliquet_errors", None)
    if errors is None:
        errors = {}
        for key, message in exc.asdict().items():
            errors[key.lstrip(".")] = message  # colander may prefix the (empty) root name
    details = []
    for name, description in list(errors.items())[:MAX_DETAILS]:
        full = f"{prefix}.{name}" if name else prefix
        if len(full) > MAX_NAME_LENGTH:
            full = full[:MAX_NAME_LENGTH - 1] + "…"
        details.append({"location": "body", "name": full, "description": description})
    return details
