"""What a plugin registers (optimizers, losses, initializers) and the registry of them.

Registration is checked where it happens, in ``register()``: a malformed component is
refused with a message naming the plugin and the component, instead of surfacing later
as the user's bad input. This module must stay cheap to import (no torch, no pandas):
``gdbench plugins`` lists the registry without ever touching torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .kinds import KIND_NAMES, KINDS, Kind

BUILTIN_DIST = "gdbench"
"""The distribution of the built-in plugins: their names win unqualified clashes."""

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Register(Protocol):
    """The ``register`` callable a registration hook receives (see ``hookspecs``)."""

    def __call__(
        self,
        name: str,
        fn: Callable[..., Any],
        defaults: Mapping[str, Any] | None = None,
        batchable: bool = False,
        description: str = "",
        optimum: Callable[..., Any] | None = None,
    ) -> None: ...


@dataclass(frozen=True, eq=False)
class Component:
    """One registered optimizer, loss or initializer.

    ``fn`` is the optimizer factory, the per-element loss function or the initializer;
    ``defaults`` are the hyper-parameters passed unless the user overrides them (hashable:
    lists were made tuples at registration); ``batchable`` tells the engine that runs may
    be stacked in one tensor; ``optimum`` (losses only) is an exact solver,
    ``optimum(x, y, **hyperparameters) -> (w, b)`` on float64 samples.
    """

    kind: str
    name: str
    fn: Callable[..., Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    batchable: bool = False
    description: str = ""
    optimum: Callable[..., Any] | None = None
    plugin: str = ""
    dist: str = ""
    version: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def builtin(self) -> bool:
        """Registered by gdbench's own plugins (which the defaults name)."""
        return self.dist == BUILTIN_DIST

    @property
    def kind_info(self) -> Kind:
        return KINDS[self.kind]


class RegistrationError(ValueError):
    """A plugin registered something malformed."""


class Registry:
    """Every component registered by the loaded plugins, indexed by kind and name."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, list[Component]]] = {k: {} for k in KIND_NAMES}
        self.unavailable: list[str] = []
        """Plugins that failed to load or were switched off, with why: an unknown name
        may be one of their components."""

    def add(self, component: Component) -> None:
        self._by_kind[component.kind].setdefault(component.name, []).append(component)

    def register_callable(self, kind: str, plugin: str, dist: str, version: str) -> Register:
        """The ``register`` function handed to one plugin's registration hook."""

        def register(
            name: str,
            fn: Callable[..., Any],
            defaults: Mapping[str, Any] | None = None,
            batchable: bool = False,
            description: str = "",
            optimum: Callable[..., Any] | None = None,
        ) -> None:
            where = f"plugin {plugin!r}: {kind} {name!r}"
            self.add(
                Component(
                    kind=kind,
                    name=_checked_name(kind, name, plugin),
                    fn=_checked_fn(fn, where),
                    defaults=_checked_defaults(KINDS[kind], defaults, where),
                    batchable=_checked_batchable(KINDS[kind], batchable, where),
                    description=_description(description, fn, where),
                    optimum=_checked_optimum(KINDS[kind], optimum, where),
                    plugin=plugin,
                    dist=dist,
                    version=version,
                )
            )

        return register

    def components(self, kind: str | None = None) -> list[Component]:
        kinds = [kind] if kind else list(KIND_NAMES)
        return [c for k in kinds for cs in self._by_kind[k].values() for c in cs]

    def candidates(self, name: str, kind: str | None = None) -> list[Component]:
        """All components called ``name`` (of ``kind`` if given)."""
        kinds = [kind] if kind else list(KIND_NAMES)
        return [c for k in kinds for c in self._by_kind[k].get(name, [])]

    def builtin_clashes(self) -> list[Component]:
        """Third-party components registered under the name of a built-in one."""
        builtin = {c.name for c in self.components() if c.builtin}
        return [c for c in self.components() if not c.builtin and c.name in builtin]

    def names(self, kind: str | None = None) -> list[str]:
        kinds = [kind] if kind else list(KIND_NAMES)
        return sorted({n for k in kinds for n in self._by_kind[k]})


def _checked_name(kind: str, name: Any, plugin: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RegistrationError(
            f"plugin {plugin!r}: {kind} name {name!r} is invalid: use lower-case letters, "
            "digits, '_' and '-', starting with a letter or digit"
        )
    return name


def _checked_fn(fn: Any, where: str) -> Callable[..., Any]:
    if not callable(fn):
        raise RegistrationError(f"{where}: {fn!r} is not callable; register a function or class")
    return fn


def _checked_defaults(kind: Kind, defaults: Any, where: str) -> dict[str, Any]:
    """Defaults as a dict of hashable values (lists become tuples), or an error."""
    if defaults is None:
        defaults = {}
    if not isinstance(defaults, Mapping):
        raise RegistrationError(f"{where}: defaults must be a dict, not {defaults!r}")
    checked = {}
    for key, value in defaults.items():
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise RegistrationError(f"{where}: default name {key!r} is not a valid keyword")
        if key in kind.reserved:
            raise RegistrationError(
                f"{where}: {key!r} is passed by gdbench itself ({kind.call}); remove it from "
                "defaults"
            )
        checked[key] = _hashable(value, key, where)
    for key in kind.required_defaults:
        if key not in checked:
            raise RegistrationError(f"{where}: defaults must include {key!r}")
    return checked


def _hashable(value: Any, key: str, where: str) -> Any:
    """Lists and tuples become tuples (recursively); anything unhashable is refused, since
    hyper-parameters identify runs and group them into batches."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v, key, where) for v in value)
    try:
        hash(value)
    except TypeError:
        raise RegistrationError(
            f"{where}: default {key}={value!r} is not hashable; use numbers, strings, "
            "booleans, None, or lists/tuples of them"
        ) from None
    return value


def _checked_batchable(kind: Kind, batchable: Any, where: str) -> bool:
    if not isinstance(batchable, bool):
        raise RegistrationError(f"{where}: batchable must be True or False, not {batchable!r}")
    if batchable and not kind.batchable:
        raise RegistrationError(
            f"{where}: batchable=True means nothing for an {kind.name} (only optimizers and "
            "losses are stacked); leave it out"
        )
    return batchable


def _checked_optimum(kind: Kind, optimum: Any, where: str) -> Callable[..., Any] | None:
    if optimum is None:
        return None
    if not kind.has_optimum:
        raise RegistrationError(f"{where}: optimum= applies to losses only; leave it out")
    if not callable(optimum):
        raise RegistrationError(
            f"{where}: optimum must be a solver, optimum(x, y, **hyperparameters) -> (w, b); "
            f"got {optimum!r}"
        )
    return optimum


def _description(description: Any, fn: Any, where: str) -> str:
    if description is not None and not isinstance(description, str):
        raise RegistrationError(f"{where}: description must be a string")
    doc = (getattr(fn, "__doc__", None) or "").strip()
    return ((description or doc).strip().split("\n") or [""])[0]
