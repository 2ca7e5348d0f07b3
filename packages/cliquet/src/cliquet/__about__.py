"""Version of the ``cliquet`` distribution (read by hatch)."""

__version__ = "3.2.0.dev0"
