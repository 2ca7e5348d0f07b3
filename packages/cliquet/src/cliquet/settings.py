"""Settings: declared once, read from the INI file or the environment, typed
and checked at start-up.

Every setting has a *name* (``storage_backend``) and is stored, converted, in
``registry.settings`` under ``cliquet.<name>``. In the INI file it may be
written ``cliquet.storage_backend``, ``<project>.storage_backend`` or bare
``storage_backend``; the environment variable ``CLIQUET_STORAGE_BACKEND`` (or
``<PROJECT>_STORAGE_BACKEND``) overrides any of them.

Packages declare their own settings with :func:`declare_settings` (usually in
``includeme`` or ``load_from_config``). A ``cliquet.``- or project-prefixed
setting that nobody declared fails the start-up with a
:class:`~pyramid.exceptions.ConfigurationError` naming it, as does a value
that does not convert.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable

from pyramid.exceptions import ConfigurationError
from pyramid.settings import asbool, aslist

PREFIX = "cliquet."
#: config.action order for the check of unknown settings: after every include.
VALIDATION_ORDER = 10_000


def as_int(value):
    """Convert to ``int``; ``None`` and ``""`` stay ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    return int(value)


def as_float(value):
    """Convert to ``float``; ``None`` and ``""`` stay ``None``."""
    if value is None or value == "":
        return None
    return float(value)


def as_bool(value):
    """Convert with :func:`pyramid.settings.asbool`, refusing unknown words."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false", "yes", "no", "on", "off", "1", "0", "t", "f", "y", "n"):
        raise ValueError("expected a boolean (true/false)")
    return asbool(text)


def as_list(value):
    """Split on whitespace and newlines (a list stays a list)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return aslist(value, flatten=True)


def as_str(value):
    """Keep strings; ``None`` stays ``None``."""
    if value is None:
        return None
    return str(value)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def as_duration(value):
    """Convert ``"30"``, ``"30s"``, ``"15m"``, ``"12h"``, ``"7d"`` to seconds (float)."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError("expected a duration such as 30s, 15m, 12h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclasses.dataclass(frozen=True)
class Setting:
    """How one setting is read.

    :param default: the value when nothing sets it (converted like the others).
    :param convert: turns the raw string into the typed value; raises
        ``ValueError`` (or ``TypeError``) with a sentence when invalid.
    :param public: shown in the hello view's ``settings``.
    :param doc: one line for the settings reference.
    """

    default: Any = None
    convert: Callable[[Any], Any] = as_str
    public: bool = False
    doc: str = ""


def _specs(registry) -> dict[str, Setting]:
    specs = getattr(registry, "cliquet_setting_specs", None)
    if specs is None:
        specs = {}
        registry.cliquet_setting_specs = specs
    return specs


def _project_prefixes(settings) -> list[str]:
    prefixes = [PREFIX]
    project = settings.get("cliquet.project_name") or settings.get("project_name")
    if project and isinstance(project, str):
        prefixes.append(project.strip().lower().replace("-", "_") + ".")
    return prefixes


def _raw_value(settings, name, prefixes, environ):
    """Return ``(found, value)`` for ``name`` by precedence: env, prefixed, bare."""
    for prefix in prefixes:
        env_name = (prefix + name).upper().replace(".", "_").replace("-", "_")
        if env_name in environ:
            return True, environ[env_name]
    for prefix in reversed(prefixes):
        if prefix + name in settings:
            return True, settings[prefix + name]
    if name in settings:
        return True, settings[name]
    return False, None


def declare_settings(config, specs: dict[str, Setting], environ=None) -> None:
    """Declare settings and load them into ``registry.settings``.

    Safe to call several times (values already loaded are kept). Each value
    ends up typed under ``cliquet.<name>``.

    :raises ConfigurationError: a value does not convert; the message names
        the setting and the expected form.
    """
    environ = os.environ if environ is None else environ
    registry = config.registry
    settings = registry.settings
    if settings is None:
        registry.settings = settings = {}
    known = _specs(registry)
    prefixes = _project_prefixes(settings)
    loaded = getattr(registry, "cliquet_loaded_settings", set())
    registry.cliquet_loaded_settings = loaded
    for name, spec in specs.items():
        known[name] = spec
        if name in loaded:
            continue
        found, raw = _raw_value(settings, name, prefixes, environ)
        if found:
            registry.__dict__.setdefault("cliquet_explicit_settings", set()).add(name)
        value = raw if found else spec.default
        try:
            converted = spec.convert(value) if value is not None else None
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"Invalid setting {PREFIX}{name} = {raw!r}: {exc}") from exc
        settings[PREFIX + name] = converted
        loaded.add(name)
    _schedule_validation(config)


def _schedule_validation(config):
    registry = config.registry
    if getattr(registry, "cliquet_settings_validation_scheduled", False):
        return
    registry.cliquet_settings_validation_scheduled = True
    config.action(("cliquet", "validate-settings"), lambda: check_unknown_settings(registry),
                  order=VALIDATION_ORDER)


def explicit_setting(registry, name: str, environ=None):
    """Return the value the application itself gave to setting ``name`` (in
    its INI file, with any prefix, or in the environment), or ``None`` when it
    only has its default — whether or not the setting was declared yet.

    Plugins use it to take over a default (``cliquet_riak`` becomes the cache
    backend unless the application picked one).
    """
    settings = registry.settings or {}
    if name in getattr(registry, "cliquet_loaded_settings", ()):
        explicit = name in getattr(registry, "cliquet_explicit_settings", ())
        return settings.get(PREFIX + name) if explicit else None
    environ = os.environ if environ is None else environ
    found, raw = _raw_value(settings, name, _project_prefixes(settings), environ)
    return raw if found and raw not in (None, "") else None


def declare_settings_namespace(config, namespace: str) -> None:
    """Accept every setting under ``namespace`` (e.g. ``event_listeners.``):
    for settings whose names are chosen by the user, read by their package."""
    namespaces = config.registry.__dict__.setdefault("cliquet_setting_namespaces", set())
    namespaces.add(namespace)


def namespace_settings(settings, namespace: str) -> dict[str, str]:
    """Return ``{rest of the name: value}`` for settings under ``namespace``
    (``cliquet.`` prefix or bare)."""
    found = {}
    for key, value in settings.items():
        for prefix in (PREFIX + namespace, namespace):
            if key.startswith(prefix):
                found[key[len(prefix):]] = value
    return found


def check_unknown_settings(registry) -> None:
    """Fail on a prefixed setting that no package declared."""
    settings = registry.settings or {}
    known = _specs(registry)
    namespaces = tuple(getattr(registry, "cliquet_setting_namespaces", ()))
    prefixes = _project_prefixes(settings)
    for key in list(settings):
        for prefix in prefixes:
            name = key[len(prefix):]
            if key.startswith(prefix) and name not in known and not name.startswith(namespaces or ("\0",)):
                raise ConfigurationError(
                    f"Unknown setting {key!r}: no package declares it "
                    f"(check its spelling, or include the package that uses it)"
                )


def public_settings(registry) -> dict[str, Any]:
    """Return the settings marked public, for the hello view."""
    settings = registry.settings
    return {name: settings.get(PREFIX + name) for name, spec in _specs(registry).items() if spec.public}


def setting_specs(registry) -> dict[str, Setting]:
    """Return every declared setting (name → :class:`Setting`)."""
    return dict(_specs(registry))
