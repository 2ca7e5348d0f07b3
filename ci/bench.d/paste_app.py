"""Entry points used by ``ci/bench`` for every server it measures.

Granian is started with ``BENCH_INI`` naming the PasteDeploy file to load:
Kinto on ``paste_app:application`` (``--interface wsgi``, as Kinto advises),
the example app on ``paste_app:rsgi_application`` (``--interface rsgi``, the
WSGI app in :class:`cliquet.serving.BufferedWSGI` on ``BENCH_APP_THREADS``
threads), exactly as ``cliquet serve`` runs it. Logging is left unconfigured on purpose: only warnings
and errors reach stderr, no per-request log line is printed.
"""

import os

from pyramid.paster import get_app

application = get_app(os.environ["BENCH_INI"], "main")


def __getattr__(name):
    """``rsgi_application``: built on first use (Kinto's environment has no cliquet)."""
    if name != "rsgi_application":
        raise AttributeError(name)
    from cliquet.serving import BufferedWSGI

    return BufferedWSGI.from_app(application, threads=int(os.environ.get("BENCH_APP_THREADS", "1")),
                                 multiprocess=int(os.environ.get("BENCH_APP_WORKERS", "1")) > 1)
