"""Version of the ``cliquet-admin`` distribution (read by hatch)."""

__version__ = "0.1.0.dev0"
