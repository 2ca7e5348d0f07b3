"""Entry points used by ``ci/bench`` for every server it measures.

Granian is started with ``BENCH_INI`` naming the PasteDeploy file to load:
Kinto on ``paste_app:application`` (``--interface wsgi``, as Kinto advises),
the example app on ``paste_app:rsgi_application`` (``--interface rsgi``, the
WSGI app in :class:`cliquet.serving.BufferedWSGI` on ``BENCH_APP_THREADS``
threads), exactly as ``cliquet serve`` runs it. Logging is left unconfigured (only warnings and
errors reach stderr, no per-request log line is printed) unless ``BENCH_LOGGING=1``:
then the INI file's logging sections are applied, as ``cliquet serve`` does.
"""

import os

from pyramid.paster import get_app, setup_logging

if os.environ.get("BENCH_LOGGING") == "1":
    # the request log, as `cliquet serve` configures it (into the server's log file)
    setup_logging(os.environ["BENCH_INI"])
application = get_app(os.environ["BENCH_INI"], "main")


def __getattr__(name):
    """``rsgi_application``: built on first use (Kinto's environment has no cliquet)."""
    if name != "rsgi_application":
        raise AttributeError(name)
    from cliquet.serving import BufferedWSGI

    return BufferedWSGI.from_app(application, threads=int(os.environ.get("BENCH_APP_THREADS", "1")),
                                 multiprocess=int(os.environ.get("BENCH_APP_WORKERS", "1")) > 1)
