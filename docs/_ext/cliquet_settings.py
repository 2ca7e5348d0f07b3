"""A Sphinx directive that renders declared settings as a table.

::

    .. cliquet-settings::
       :module: cliquet.core_settings
       :attribute: CORE_SETTINGS

The table is built from the :class:`cliquet.settings.Setting` objects at
build time (name, environment variable, type, default, whether the hello
view shows it, and its one-line doc), so the reference cannot drift from the
code: a setting added to the dict appears in the docs on the next build.
"""

from __future__ import annotations

import importlib

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

TYPE_NAMES = {
    "as_str": "string",
    "as_int": "integer",
    "as_float": "number",
    "as_bool": "boolean",
    "as_list": "list (whitespace-separated)",
    "as_duration": "duration (``30``, ``30s``, ``15m``, ``12h``, ``7d``)",
}


def type_name(convert) -> str:
    """A reader's name for a setting's converter."""
    name = getattr(convert, "__name__", repr(convert))
    if name in TYPE_NAMES:
        return TYPE_NAMES[name]
    # A package's own converter (``_as_level``): its name says what it reads.
    words = name.lstrip("_")
    words = words[3:] if words.startswith("as_") else words
    return words.replace("_", " ") or "string"


def default_text(value) -> str:
    """The default as reST: a literal, or a dash when there is none."""
    if value is None or value == "":
        return "—"
    return f"``{value!r}``" if not isinstance(value, str) else f"``{value}``"


def render_rows(specs: dict, env_prefix: str) -> list[str]:
    """The settings as the lines of a ``list-table``."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 30 12 13 45",
        "",
        "   * - Setting / environment variable",
        "     - Type",
        "     - Default",
        "     - What it does",
    ]
    for name in sorted(specs):
        spec = specs[name]
        env = f"{env_prefix}_{name}".upper().replace(".", "_").replace("-", "_")
        doc = spec.doc or ""
        if spec.public:
            doc += " *Public: listed in the hello view's* ``settings``."
        lines += [
            f"   * - .. _setting-{name.replace('_', '-')}:",
            "",
            f"       ``{name}``",
            "",
            f"       ``{env}``",
            f"     - {type_name(spec.convert)}",
            f"     - {default_text(spec.default)}",
            f"     - {doc.strip() or '—'}",
        ]
    return lines


class CliquetSettingsDirective(SphinxDirective):
    """``.. cliquet-settings::`` — a table of the settings declared in a dict."""

    has_content = False
    option_spec = {
        "module": directives.unchanged,
        "attribute": directives.unchanged,
        "env-prefix": directives.unchanged,
    }

    def run(self):
        module_name = self.options.get("module", "cliquet.core_settings")
        attribute = self.options.get("attribute", "CORE_SETTINGS")
        try:
            specs = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise self.error(f"cannot read {module_name}.{attribute}: {exc}") from exc
        self.env.note_dependency(importlib.import_module(module_name).__file__)
        lines = render_rows(specs, self.options.get("env-prefix", "CLIQUET"))
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=f"<{module_name}.{attribute}>"),
                                self.content_offset, container)
        return container.children


def setup(app):
    """Register the directive."""
    app.add_directive("cliquet-settings", CliquetSettingsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
