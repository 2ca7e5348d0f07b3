"""Test helpers of cliquet-indexing, for any indexer backend.

* :class:`cliquet_indexing.testing.contract.IndexerContract` — the shared
  contract suite every :class:`~cliquet_indexing.indexer.IndexerBase` passes.
* :func:`make_config` — a configurator with the core's and this package's
  settings loaded, for ``load_from_config(config)`` in tests.
"""

from __future__ import annotations


def make_config(environ=None, **settings):
    """Return a configurator whose settings include the indexing ones.

    Keyword arguments are setting names without prefix::

        config = make_config(indexing_url="sqlite:///tmp/x.db", indexing_prefix="t1_")
    """
    from cliquet.testing import make_config as core_make_config

    from cliquet_indexing.settings import INDEXING_SETTINGS
    from cliquet.settings import declare_settings

    config = core_make_config(environ=environ, **settings)
    declare_settings(config, INDEXING_SETTINGS, environ={} if environ is None else environ)
    return config


def __getattr__(name):
    if name == "IndexerContract":
        from cliquet_indexing.testing.contract import IndexerContract

        return IndexerContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
