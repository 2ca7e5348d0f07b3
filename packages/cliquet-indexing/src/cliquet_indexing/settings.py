"""The settings of cliquet-indexing (declared by ``includeme`` and by the
embedded backend's ``load_from_config``)."""

from __future__ import annotations

from cliquet.settings import Setting, as_bool, as_duration, as_int, as_list, as_str

from cliquet_indexing.query import DEFAULT_MAX_SIZE, Limits

#: Dotted name of the default indexer.
DEFAULT_BACKEND = "cliquet_indexing.embedded"


def as_positive_int(value):
    """Convert to an ``int`` >= 1."""
    number = as_int(value)
    if number is None or number < 1:
        raise ValueError("expected an integer >= 1")
    return number


INDEXING_SETTINGS = {
    "indexing_backend": Setting(DEFAULT_BACKEND, as_str,
                                doc="Dotted name of the indexer module (a module with load_from_config). "
                                    "Not set, beside a PostgreSQL storage: cliquet_indexing.postgresql."),
    "indexing_url": Setting(None, as_str,
                            doc="Where the indexer keeps its data: for the embedded indexer sqlite:///path/to/file.db, "
                                "memory, or empty (see the indexing docs); for a server, its URL."),
    "indexing_prefix": Setting("", as_str, doc="Prefix of the indexer's tables or indexes."),
    "search_max_size": Setting(DEFAULT_MAX_SIZE, as_positive_int, public=True,
                               doc="Largest size a search may ask for."),
    # The bounds of a search (cliquet_indexing.query.Limits): past one, a 400 naming it.
    "search_max_clauses": Setting(Limits.max_clauses, as_positive_int,
                                  doc="Most query clauses in a search (with multi_match fields and sort keys)."),
    "search_max_depth": Setting(Limits.max_depth, as_positive_int, doc="Deepest nesting of bool clauses."),
    "search_max_words": Setting(Limits.max_words, as_positive_int,
                                doc="Most words in the full-text clauses of a search, together."),
    "search_max_terms": Setting(Limits.max_terms, as_positive_int,
                                doc="Most values in the terms clauses of a search, together."),
    "search_max_string_length": Setting(Limits.max_string_length, as_positive_int,
                                        doc="Longest string (characters) in a search."),
    "search_timeout": Setting(Limits.timeout, as_duration,
                              doc="Seconds an indexer may work on one search before it is stopped and refused."),
    "indexing_resources": Setting("*", as_list,
                                  doc="Resources whose records are indexed and searchable (* for all); "
                                      "an IndexedResource always is."),
    "indexing_listener_enabled": Setting(True, as_bool,
                                         doc="Index every record change (AfterResourceChanged listener)."),
    "indexing_retry_interval": Setting(10.0, as_duration,
                                       doc="Longest wait (seconds) between background attempts to replay the "
                                           "changes the indexer missed (from 1 s, doubling); 0: no background "
                                           "replay (tests)."),
    "indexing_write_timeout": Setting(5.0, as_duration,
                                      doc="Longest a write waits for the indexer (seconds) before it answers "
                                          "anyway, its changes queued for retry; 0: wait as long as the "
                                          "indexer's own timeout."),
    "indexing_retry_max_queued": Setting(100_000, as_positive_int,
                                         doc="Most records with changes pending for replay; past it changes "
                                             "are dropped, logged, and the index is stale until "
                                             "cliquet-indexing reindex runs."),
}
