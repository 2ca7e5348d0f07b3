"""Version of the ``cliquet-oidc`` distribution (read by hatch)."""

__version__ = "0.1.0.dev0"
