"""WSGI entry point used by ``ci/bench`` for every server it measures.

Granian is started on ``paste_app:application`` with ``BENCH_INI`` naming the
PasteDeploy file to load, so the example app and Kinto are served by exactly
the same command line. Logging is left unconfigured on purpose: only warnings
and errors reach stderr, no per-request log line is printed.
"""

import os

from pyramid.paster import get_app

application = get_app(os.environ["BENCH_INI"], "main")
