"""Event listeners configured by settings.

::

    cliquet.event_listeners = redis
    cliquet.event_listeners.redis.use = cliquet.listeners.redis
    cliquet.event_listeners.redis.url = redis://localhost:6379/0
    cliquet.event_listeners.redis.key = myproject:events
    cliquet.event_listeners.redis.actions = create delete
    cliquet.event_listeners.redis.resources = article

Each listener is a module with ``load_from_config(config, settings)``
(``settings`` holds its own ``event_listeners.<name>.*`` values without that
prefix) returning a :class:`ListenerBase`. It receives the
:class:`~cliquet.events.AfterResourceChanged` events — committed changes —
of the actions and resources it asked for (all by default).
"""

from __future__ import annotations

from pyramid.exceptions import ConfigurationError
from pyramid.settings import aslist

from cliquet.events import AfterResourceChanged
from cliquet.settings import Setting, as_list, declare_settings, declare_settings_namespace, namespace_settings


class ListenerBase:
    """Something that reacts to committed record changes."""

    def __call__(self, event) -> None:
        """Handle one :class:`~cliquet.events.AfterResourceChanged`."""
        raise NotImplementedError


def event_as_dict(event) -> dict:
    """A JSON-ready view of an event: payload and impacted records."""
    return {**event.payload, "impacted_records": event.impacted_records}


def _filtered(listener, actions, resources):
    def handle(event):
        payload = event.payload
        if actions and payload["action"] not in actions:
            return
        if resources and payload["resource_name"] not in resources:
            return
        listener(event)

    return handle


def includeme(config):
    """Load every listener named in ``cliquet.event_listeners``."""
    declare_settings(config, {"event_listeners": Setting("", as_list, doc="Names of the event listeners.")})
    declare_settings_namespace(config, "event_listeners.")
    settings = config.get_settings()
    for name in settings["cliquet.event_listeners"]:
        own = namespace_settings(settings, f"event_listeners.{name}.")
        dotted = own.get("use")
        if not dotted:
            raise ConfigurationError(f"Missing setting cliquet.event_listeners.{name}.use (the listener module)")
        module = config.maybe_dotted(dotted)
        if not hasattr(module, "load_from_config"):
            raise ConfigurationError(
                f"Invalid setting cliquet.event_listeners.{name}.use = {dotted!r}: no load_from_config() in it")
        listener = module.load_from_config(config, own)
        if not isinstance(listener, ListenerBase):
            raise ConfigurationError(
                f"Invalid setting cliquet.event_listeners.{name}.use = {dotted!r}: not a ListenerBase")
        handle = _filtered(listener, set(aslist(own.get("actions", ""))), set(aslist(own.get("resources", ""))))
        config.add_subscriber(handle, AfterResourceChanged)
