"""Version of the ``cliquet-riak`` distribution (read by hatch)."""

__version__ = "0.1.0.dev0"
