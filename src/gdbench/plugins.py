"""Finding, loading and isolating plugins.

Plugins are never loaded at import time: ``get_plugins()`` builds the plugin manager on
first use and caches it. Each entry point is imported and registered on its own inside a
``try`` so that one broken third-party plugin is reported by ``gdbench plugins`` and
skipped instead of breaking gdbench (set ``GDBENCH_RAISE_PLUGIN_ERRORS=1`` to get the
traceback while developing a plugin).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .components import Component, Registry
from .errors import one_line

ENTRY_POINT_GROUP = "gdbench"
RAISE_ENV = "GDBENCH_RAISE_PLUGIN_ERRORS"

REGISTRATION_HOOKS = {
    "optimizer": "gdbench_register_optimizers",
    "loss": "gdbench_register_losses",
    "init": "gdbench_register_initializers",
}


@dataclass
class PluginInfo:
    """One plugin as ``gdbench plugins`` shows it."""

    name: str
    dist: str = ""
    version: str = ""
    module: str = ""
    hooks: list[str] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)
    error: str | None = None


@dataclass
class PluginSet:
    """The plugin manager, the registry it filled, and a report on every plugin."""

    pm: pluggy.PluginManager
    registry: Registry
    plugins: list[PluginInfo]

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def implemented(self, hook_name: str) -> bool:
        """True if some plugin implements this lifecycle hook (else calling it is skipped)."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())


@functools.cache
def get_plugins() -> PluginSet:
    """The installed plugins, loaded once per process."""
    return load_plugins()


def load_plugins(extra: Iterable[tuple[str, Any]] = (), entry_points: bool = True) -> PluginSet:
    """Build a fresh plugin set from the entry points plus ``extra`` (name, plugin) pairs.

    Tests and notebooks use ``extra`` to add a plugin object without installing it.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    sources = list(_entry_point_sources()) if entry_points else []
    sources += [(name, lambda obj=obj: obj, "", "") for name, obj in extra]
    for name, load, dist, version in sources:
        infos.append(_register_one(pm, name, load, dist, version))
    registry = Registry()
    for info in infos:
        if not info.error:
            _collect_components(pm, info, registry)
    return PluginSet(pm=pm, registry=registry, plugins=infos)


def _entry_point_sources():
    """(name, load, dist, version) per entry point; gdbench's own first, so that a
    third-party plugin reusing a built-in's name is the one reported as a clash."""
    seen: set[tuple[str, str]] = set()
    eps = sorted(
        metadata.entry_points(group=ENTRY_POINT_GROUP),
        key=lambda ep: (_dist_name(ep) != "gdbench", _dist_name(ep), ep.name),
    )
    for ep in eps:
        dist = _dist_name(ep)
        version = ep.dist.version if ep.dist else ""
        if (ep.name, ep.value) in seen:  # the same distribution found twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        yield ep.name, ep.load, dist, version


def _dist_name(ep: metadata.EntryPoint) -> str:
    return ep.dist.metadata["Name"] if ep.dist else ""


def _register_one(pm: pluggy.PluginManager, name: str, load, dist: str, version: str):
    info = PluginInfo(name=name, dist=dist, version=version)
    try:
        if pm.has_plugin(name):
            owner = next(i for i in pm.list_name_plugin() if i[0] == name)[1]
            raise ValueError(
                f"plugin name {name!r} is already taken by {getattr(owner, '__name__', owner)}"
            )
        plugin = load()
        info.module = getattr(plugin, "__name__", type(plugin).__name__)
        pm.register(plugin, name=name)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError:
            pm.unregister(name=name)
            raise
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
    except Exception as exc:  # a broken plugin must not break gdbench
        _maybe_raise()
        info.error = one_line(exc)
    return info


def _collect_components(pm: pluggy.PluginManager, info: PluginInfo, registry: Registry) -> None:
    """Call this plugin's registration hooks; keep its components only if all succeed."""
    staged = Registry()
    plugin = pm.get_plugin(info.name)
    try:
        for kind, hook_name in REGISTRATION_HOOKS.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                if impl.plugin is plugin:
                    register = staged.register_callable(kind, info.name, info.dist, info.version)
                    impl.function(**{arg: register for arg in impl.argnames})
    except Exception as exc:
        _maybe_raise()
        info.error = one_line(exc)
        return
    info.components = staged.components()
    for component in info.components:
        registry.add(component)


def _maybe_raise() -> None:
    if os.environ.get(RAISE_ENV, "") not in ("", "0"):
        raise
