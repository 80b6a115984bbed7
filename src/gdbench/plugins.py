"""Finding, loading and isolating plugins.

Plugins are never loaded at import time: ``get_plugins()`` builds the plugin manager on
first use and caches it. Each entry point is imported and registered on its own inside a
``try`` so that one broken third-party plugin is reported by ``gdbench plugins`` and
skipped instead of breaking gdbench (set ``GDBENCH_RAISE_PLUGIN_ERRORS=1`` to get the
traceback while developing a plugin).

Which plugins load is the user's choice, in the spirit of llm's ``LLM_LOAD_PLUGINS``:

* ``GDBENCH_PLUGINS=a,b`` loads only the third-party plugins ``a`` and ``b`` (a plugin
  name or a distribution name); set but empty, it loads none. gdbench's own built-in
  plugins always load, because the defaults (``sgd``, ``l1``, ``default``) live there.
* ``GDBENCH_DISABLE_PLUGINS=a,b`` (or ``gdbench --disable-plugin a``) skips those plugins,
  built-ins included.

A plugin that is switched off is never imported, and ``gdbench plugins`` lists it as
disabled with the reason.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .components import BUILTIN_DIST, Component, Registry
from .errors import RAISE_ENV as RAISE_ENV  # re-exported: the documented home
from .errors import one_line, raise_plugin_errors
from .kinds import KINDS

ENTRY_POINT_GROUP = "gdbench"
ONLY_ENV = "GDBENCH_PLUGINS"
DISABLE_ENV = "GDBENCH_DISABLE_PLUGINS"


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
    disabled: str | None = None
    """Why the user switched this plugin off (it was not imported), or None."""


@dataclass(frozen=True)
class PluginFilter:
    """Which installed plugins the user wants: ``only`` (None: all) minus ``disabled``.

    Names match a plugin's entry-point name or its distribution name.
    """

    only: frozenset[str] | None = None
    disabled: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, disable: Iterable[str] = ()) -> PluginFilter:
        only = os.environ.get(ONLY_ENV)
        return cls(
            only=None if only is None else frozenset(_split_names(only)),
            disabled=frozenset(_split_names(os.environ.get(DISABLE_ENV, ""))) | set(disable),
        )

    def why_off(self, name: str, dist: str) -> str | None:
        """The reason this plugin stays unloaded, or None if it loads."""
        if {name, dist} & self.disabled:
            return f"disabled by {DISABLE_ENV} or --disable-plugin"
        if self.only is not None and dist != BUILTIN_DIST and not {name, dist} & self.only:
            return f"not listed in {ONLY_ENV}"
        return None

    def unknown(self, infos: Iterable[PluginInfo]) -> list[str]:
        """Names the user gave that match no installed plugin (probably typos)."""
        known = {n for i in infos for n in (i.name, i.dist) if n}
        return sorted((self.only or set()) - known) + sorted(self.disabled - known)


def _split_names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


@dataclass
class PluginSet:
    """The plugin manager, the registry it filled, and a report on every plugin."""

    pm: pluggy.PluginManager
    registry: Registry
    plugins: list[PluginInfo]
    warnings: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def implemented(self, hook_name: str) -> bool:
        """True if some plugin implements this lifecycle hook (else calling it is skipped)."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())


def get_plugins(disable: Iterable[str] = ()) -> PluginSet:
    """The installed plugins the user wants (see the module docstring), loaded once per
    process for each choice of plugins."""
    return _cached_plugins(PluginFilter.from_env(disable))


@functools.cache
def _cached_plugins(plugin_filter: PluginFilter) -> PluginSet:
    return load_plugins(plugin_filter=plugin_filter)


def load_plugins(
    extra: Iterable[tuple[str, Any]] = (),
    entry_points: bool = True,
    plugin_filter: PluginFilter | None = None,
) -> PluginSet:
    """Build a fresh plugin set from the entry points plus ``extra`` (name, plugin) pairs.

    Tests and notebooks use ``extra`` to add a plugin object without installing it.
    ``plugin_filter`` switches plugins off; unlike ``get_plugins`` this function never
    reads the environment.
    """
    plugin_filter = plugin_filter or PluginFilter()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    sources = list(_entry_point_sources()) if entry_points else []
    n_installed = len(sources)
    sources += [(name, functools.partial(_same, obj), "", "") for name, obj in extra]
    for i, (name, load, dist, version) in enumerate(sources):
        off = plugin_filter.why_off(name, dist) if i < n_installed else None  # extras: always
        if off:
            infos.append(PluginInfo(name=name, dist=dist, version=version, disabled=off))
        else:
            infos.append(_register_one(pm, name, load, dist, version))
    registry = Registry()
    for info in infos:
        if not info.error and not info.disabled:
            _collect_components(pm, info, registry)
    registry.unavailable = [
        f"plugin {i.name!r} {'failed to load' if i.error else 'is off'} ({i.error or i.disabled})"
        for i in infos
        if i.error or i.disabled
    ]
    warnings = [
        f"{ONLY_ENV}/{DISABLE_ENV} name {name!r} matches no installed plugin"
        for name in plugin_filter.unknown(infos)
    ]
    warnings += [clash_warning(c) for c in registry.builtin_clashes()]
    return PluginSet(pm=pm, registry=registry, plugins=infos, warnings=warnings)


def clash_warning(component: Component) -> str:
    """Why a third-party component named like a built-in is only reachable qualified."""
    c = component
    return (
        f"plugin {c.plugin!r} registers {c.kind} {c.name!r}, a built-in name: {c.name!r} "
        f"means the built-in; use {c.plugin}/{c.name} for the plugin's"
    )


def _same(obj: Any) -> Any:
    return obj


def _entry_point_sources() -> Iterator[tuple[str, Callable[[], Any], str, str]]:
    """(name, load, dist, version) per entry point; gdbench's own first, so that a
    third-party plugin reusing a built-in's name is the one reported as a clash."""
    seen: set[tuple[str, str]] = set()
    eps = sorted(
        metadata.entry_points(group=ENTRY_POINT_GROUP),
        key=lambda ep: (_dist_name(ep) != BUILTIN_DIST, _dist_name(ep), ep.name),
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


def _register_one(
    pm: pluggy.PluginManager, name: str, load: Callable[[], Any], dist: str, version: str
) -> PluginInfo:
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
        for kind in KINDS.values():
            for impl in getattr(pm.hook, kind.hook).get_hookimpls():
                if impl.plugin is plugin:
                    register = staged.register_callable(
                        kind.name, info.name, info.dist, info.version
                    )
                    impl.function(**{arg: register for arg in impl.argnames})
    except Exception as exc:
        _maybe_raise()
        info.error = one_line(exc)
        return
    info.components = staged.components()
    for component in info.components:
        registry.add(component)


def _maybe_raise() -> None:
    if raise_plugin_errors():
        raise
