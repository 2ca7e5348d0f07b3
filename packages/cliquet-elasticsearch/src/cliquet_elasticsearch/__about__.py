"""Version of the ``cliquet-elasticsearch`` distribution (read by hatch)."""

__version__ = "0.1.0.dev0"
