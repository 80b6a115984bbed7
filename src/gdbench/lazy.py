"""Lazy references, so that plugins can register torch callables without importing torch.

``gdbench plugins`` and ``gdbench --help`` must start fast, and importing torch costs
seconds; a plugin module that registers ``lazy("torch.optim:Adam")`` instead of
``torch.optim.Adam`` stays cheap to load until a run actually needs the optimizer.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .components import Component


class Lazy:
    """A callable standing for ``module:attribute``, imported on first call."""

    def __init__(self, path: str) -> None:
        module, sep, attr = path.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"lazy reference {path!r} must look like 'package.module:attribute'")
        self.path = path
        self._target: Any = None

    def resolve(self) -> Any:
        if self._target is None:
            module, _, attr = self.path.partition(":")
            target: Any = importlib.import_module(module)
            for part in attr.split("."):
                target = getattr(target, part)
            self._target = target
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.path!r})"

    def __reduce__(self):  # picklable for process and dask executors
        return (Lazy, (self.path,))


def lazy(path: str) -> Lazy:
    """Refer to ``package.module:attribute`` without importing it yet."""
    return Lazy(path)


def target_error(component: Component) -> str | None:
    """Why a component's lazy targets (its function, its solver) cannot be imported, in
    one line naming plugin, component and target; None when they all resolve."""
    from .errors import one_line

    for fn in (component.fn, component.optimum):
        if isinstance(fn, Lazy):
            try:
                fn.resolve()
            except Exception as exc:
                return (
                    f"plugin {component.plugin!r}: {component.kind} {component.name!r}: "
                    f"cannot load lazy target {fn.path!r} ({one_line(exc)})"
                )
    return None


def resolve(fn: Any) -> Any:
    """The real callable behind ``fn`` (itself unless it is a lazy reference)."""
    return fn.resolve() if isinstance(fn, Lazy) else fn


def keyword_defaults(fn: Any) -> dict[str, Any]:
    """The default of each keyword ``fn`` declares one for (empty if it has no signature)."""
    try:
        sig = inspect.signature(resolve(fn))
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.default is not p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def accepted_keywords(fn: Any) -> set[str] | None:
    """Keyword names ``fn`` accepts, or None if it takes ``**kwargs`` (anything goes)."""
    try:
        sig = inspect.signature(resolve(fn))
    except (TypeError, ValueError):
        return None
    names = set()
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
    return names
