"""A listener that sends every committed change, as JSON, to Redis.

Settings (under ``cliquet.event_listeners.<name>.``): ``url``
(``redis://host:port/db``, or ``redis+cluster://host:port`` naming any node
of a Redis Cluster), ``key`` (default ``cliquet:events``), ``mode``
(``list`` — ``RPUSH`` on a list, the default — or ``stream`` — ``XADD`` on a
stream with a ``event`` field), ``maxlen`` (trim the stream or list to about
that many events), plus the common ``actions`` and ``resources`` filters.
"""

from __future__ import annotations

import logging

import orjson

from cliquet.listeners import ListenerBase, event_as_dict
from cliquet.storage.exceptions import BackendError

logger = logging.getLogger("cliquet.listeners")


class RedisListener(ListenerBase):
    """Push events to a Redis list or stream.

    :param client: a ``redis.Redis`` client.
    """

    def __init__(self, client, key="cliquet:events", mode="list", maxlen=None):
        if mode not in ("list", "stream"):
            raise ValueError("mode must be list or stream")
        self.client = client
        self.key = key
        self.mode = mode
        self.maxlen = maxlen

    def __call__(self, event):
        """Send ``event`` (errors are logged and raised as BackendError)."""
        message = orjson.dumps(event_as_dict(event))
        try:
            if self.mode == "stream":
                self.client.xadd(self.key, {"event": message}, maxlen=self.maxlen, approximate=True)
            else:
                pipe = self.client.pipeline()
                pipe.rpush(self.key, message)
                if self.maxlen:
                    pipe.ltrim(self.key, -self.maxlen, -1)
                pipe.execute()
        except Exception as exc:  # redis.RedisError and connection errors
            raise BackendError(exc) from exc


def load_from_config(config, settings):
    """Build the listener from its ``event_listeners.<name>.*`` settings."""
    from cliquet.storage.redis_client import get_client

    url = settings.get("url") or "redis://127.0.0.1:6379/0"
    client = get_client(url, pool_size=10, pool_timeout=5.0)
    maxlen = int(settings["maxlen"]) if settings.get("maxlen") else None
    return RedisListener(client, key=settings.get("key", "cliquet:events"), mode=settings.get("mode", "list"),
                         maxlen=maxlen)
