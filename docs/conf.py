"""Sphinx configuration of the Cliquet documentation.

Built by ``hatch run docs:build`` (warnings are errors). The packages are
installed editable in hatch's ``docs`` environment, so autodoc imports them
as users do; nothing is fetched from the network (no intersphinx).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

from cliquet.__about__ import __version__  # noqa: E402

project = "Cliquet"
author = "Cliquet developers"
copyright = "Cliquet developers"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "cliquet_settings",
]

# Folders under docs/ that are not pages: the example app, the JS client demo,
# the tests of the snippets, the build output.
exclude_patterns = ["_build", "example", "client-demo", "tests", "**/node_modules", "README*"]
templates_path = []
html_static_path = []

html_theme = "furo"
html_title = f"Cliquet {release}"
pygments_style = "sphinx"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": False}
# Links to Python's or Pyramid's docs would need intersphinx, i.e. the
# network at build time: references to them stay plain text.
nitpicky = False
