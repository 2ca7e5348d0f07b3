"""The generic endpoints of every Cliquet service."""
