"""Building the plugin manager: built-in plugins, then the ``kgqa_validator`` entry points.

Nothing is loaded at import time; each :class:`~kgqa_validator.validator.Validator` (and each
test) builds its own manager with :func:`get_plugin_manager`.

Environment variables (the API arguments win when given):

``KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD=1``
    load only the built-in plugins, no entry points.
``KGQA_VALIDATOR_BLOCK_PLUGINS=name,name``
    never register these plugins (built-in or installed), by name.
``KGQA_VALIDATOR_STRICT_PLUGINS=1``
    a plugin that fails to load raises :class:`~kgqa_validator.errors.PluginLoadError`
    instead of being reported and skipped.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata

import pluggy

from kgqa_validator import hookspecs
from kgqa_validator.errors import PluginLoadError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "kgqa_validator"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "kgqa_validator.builtin.parse",
    "kgqa_validator.builtin.lints",
    "kgqa_validator.builtin.properties",
    "kgqa_validator.builtin.labels",
    "kgqa_validator.builtin.endpoint_labels",
    "kgqa_validator.builtin.scoring",
    "kgqa_validator.builtin.consensus",
    "kgqa_validator.builtin.execute",
    "kgqa_validator.builtin.decide",
)


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin, as ``kgqa-validator plugins`` lists it."""

    name: str
    version: str
    origin: str  # "builtin" or the distribution that provides the entry point
    hooks: tuple[str, ...]


@dataclass(frozen=True)
class PluginFailure:
    name: str
    error: str


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus the record of what was loaded from where and what failed."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.origins: dict[str, tuple[str, str]] = {}
        self.failures: list[PluginFailure] = []

    def describe(self) -> list[PluginInfo]:
        """Registered plugins with their versions and the hooks they implement."""
        infos = []
        for name, plugin in self.list_name_plugin():
            if plugin is None:
                continue
            origin, version = self.origins.get(name, ("runtime", ""))
            hooks = tuple(sorted(c.name for c in self.get_hookcallers(plugin) or ()))
            infos.append(PluginInfo(name, version, origin, hooks))
        return sorted(infos, key=lambda i: (i.origin != "builtin", i.name))


def _short_name(module_name: str) -> str:
    return module_name.rsplit(".", 1)[-1]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def get_plugin_manager(
    *,
    autoload: bool | None = None,
    block: Iterable[str] = (),
    strict: bool | None = None,
    builtins: bool = True,
) -> PluginManager:
    """Build a fresh plugin manager.

    Args:
        autoload: load the ``kgqa_validator`` entry points (default: yes, unless
            ``KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD`` is set).
        block: plugin names never to register (added to ``KGQA_VALIDATOR_BLOCK_PLUGINS``).
            Built-in plugins are named by their module's last part (``scoring``).
        strict: raise :class:`PluginLoadError` when an entry point fails to load.
        builtins: register the built-in plugins (tests may build a bare manager).

    Example:
        >>> pm = get_plugin_manager(autoload=False, block=["scoring"])
        >>> pm.get_plugin("scoring") is None
        True
    """
    if autoload is None:
        autoload = not _env_flag("KGQA_VALIDATOR_DISABLE_PLUGIN_AUTOLOAD")
    if strict is None:
        strict = _env_flag("KGQA_VALIDATOR_STRICT_PLUGINS")
    blocked = {b.strip() for b in os.environ.get("KGQA_VALIDATOR_BLOCK_PLUGINS", "").split(",")}
    blocked |= set(block)
    blocked.discard("")

    pm = PluginManager()
    for name in blocked:
        pm.set_blocked(name)
    if builtins:
        from kgqa_validator import __version__

        for module_name in DEFAULT_PLUGINS:
            name = _short_name(module_name)
            if name in blocked:
                continue
            pm.register(importlib.import_module(module_name), name=name)
            pm.origins[name] = ("builtin", __version__)
    if autoload:
        _load_entry_points(pm, blocked, strict)
    return pm


def _load_entry_points(pm: PluginManager, blocked: set[str], strict: bool) -> None:
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in blocked:
            continue
        dist = entry_point.dist
        try:
            if pm.has_plugin(entry_point.name):
                # Never silently shadow (or be shadowed by) another plugin of the same name.
                origin = pm.origins.get(entry_point.name, ("runtime", ""))[0]
                raise ValueError(f"the name is already taken by the {origin} plugin "
                                 f"{entry_point.name!r}")
            plugin = entry_point.load()
            pm.register(plugin, name=entry_point.name)
        except Exception as exc:  # a broken plugin must not take the program down
            message = f"{type(exc).__name__}: {exc}"
            if strict:
                raise PluginLoadError(
                    f"plugin {entry_point.name!r} ({entry_point.value}) failed to load: {message}"
                ) from exc
            log.warning("plugin %r failed to load and was skipped: %s", entry_point.name, message)
            pm.failures.append(PluginFailure(entry_point.name, message))
            continue
        pm.origins[entry_point.name] = (dist.name if dist else "?", dist.version if dist else "")
