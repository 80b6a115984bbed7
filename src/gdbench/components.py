"""What a plugin registers: optimizers, losses and initializers, and the registry of them.

This module must stay cheap to import (no torch, no pandas): ``gdbench plugins`` lists
the registry without ever touching torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("optimizer", "loss", "init")
"""Component kinds, in the order they appear in a run's name."""

KIND_ALIASES = {
    "optimizer": "optimizer",
    "optim": "optimizer",
    "opt": "optimizer",
    "loss": "loss",
    "init": "init",
    "initializer": "init",
}

DEFAULT_NAMES = {"optimizer": "sgd", "loss": "l1", "init": "default"}
"""The notebook's choices, used for every kind the user does not name."""

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


@dataclass(frozen=True, eq=False)
class Component:
    """One registered optimizer, loss or initializer.

    ``fn`` is the optimizer factory, the per-element loss function or the initializer;
    ``defaults`` are the hyper-parameters passed unless the user overrides them;
    ``batchable`` tells the engine that runs may be stacked in one tensor.
    """

    kind: str
    name: str
    fn: Callable[..., Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    batchable: bool = False
    description: str = ""
    plugin: str = ""
    dist: str = ""
    version: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.kind}:{self.name}"


class RegistrationError(ValueError):
    """A plugin registered something malformed."""


class Registry:
    """Every component registered by the loaded plugins, indexed by kind and name."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, list[Component]]] = {k: {} for k in KINDS}

    def add(self, component: Component) -> None:
        self._by_kind[component.kind].setdefault(component.name, []).append(component)

    def register_callable(
        self, kind: str, plugin: str, dist: str, version: str
    ) -> Callable[..., None]:
        """The ``register`` function handed to one plugin's registration hook."""

        def register(
            name: str,
            fn: Callable[..., Any],
            defaults: Mapping[str, Any] | None = None,
            batchable: bool = False,
            description: str = "",
        ) -> None:
            _check_registration(kind, name, fn, defaults)
            self.add(
                Component(
                    kind=kind,
                    name=name,
                    fn=fn,
                    defaults=dict(defaults or {}),
                    batchable=bool(batchable),
                    description=description or (fn.__doc__ or "").strip().split("\n")[0],
                    plugin=plugin,
                    dist=dist,
                    version=version,
                )
            )

        return register

    def components(self, kind: str | None = None) -> list[Component]:
        kinds = [kind] if kind else list(KINDS)
        return [c for k in kinds for cs in self._by_kind[k].values() for c in cs]

    def candidates(self, name: str, kind: str | None = None) -> list[Component]:
        """All components called ``name`` (of ``kind`` if given)."""
        kinds = [kind] if kind else list(KINDS)
        return [c for k in kinds for c in self._by_kind[k].get(name, [])]

    def names(self, kind: str | None = None) -> list[str]:
        kinds = [kind] if kind else list(KINDS)
        return sorted({n for k in kinds for n in self._by_kind[k]})


def _check_registration(kind: str, name: str, fn: Any, defaults: Mapping[str, Any] | None) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RegistrationError(
            f"{kind} name {name!r} is invalid: use lower-case letters, digits, '_' and '-'"
        )
    if not callable(fn):
        raise RegistrationError(f"{kind} {name!r}: {fn!r} is not callable")
    if defaults is not None and not isinstance(defaults, Mapping):
        raise RegistrationError(f"{kind} {name!r}: defaults must be a dict, not {defaults!r}")
    if kind == "optimizer" and "lr" not in (defaults or {}):
        raise RegistrationError(f"optimizer {name!r}: defaults must include 'lr'")
