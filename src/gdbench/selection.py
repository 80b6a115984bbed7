"""From ``--plugins sgd,adam[lr=0.001,0.01],loss:huber`` to the components to run.

Grammar (parsed by hand, never ``eval``-ed)::

    plugins   := item ("," item)*             commas inside [...] belong to the item
    item      := [kind ":"] [plugin "/"] name ["[" params "]"]
    params    := param (";" param)*
    param     := key "=" value ("," value)*    several values make a grid
    value     := scalar (":" scalar)*          colons make a tuple, e.g. betas=0.9:0.99
    scalar    := int | float | true | false | none | text

A kind the user does not name takes the notebook's default (SGD, L1, PyTorch's init).
``plugin/`` picks one plugin's component when two plugins register the same name
(``builtin_losses/mse``); ``plugin`` is the plugin's entry-point name or its distribution
name. ``/`` appears nowhere else in the grammar and never in a component name.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .components import Component, Registry
from .errors import UsageError
from .kinds import KIND_NAMES, KINDS, kind_named
from .lazy import accepted_keywords, target_error

_ITEM_RE = re.compile(r"^(?:(?P<kind>[A-Za-z_]+):)?(?P<name>[^\[\]:]+?)(?:\[(?P<params>.*)\])?$")


@dataclass(frozen=True)
class Choice:
    """One component with one concrete set of hyper-parameters (defaults filled in)."""

    component: Component
    params: tuple[tuple[str, Any], ...]
    qualifier: str = ""
    """The plugin's name, when another component of this kind and name is in the same
    sweep: labels (table rows, plot curves) then read ``plugin/name``."""

    @property
    def kind(self) -> str:
        return self.component.kind

    @property
    def name(self) -> str:
        return self.component.name

    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def label(self, skip: tuple[str, ...] = ()) -> str:
        """``name`` plus the hyper-parameters that differ from the defaults."""
        changed = [
            (k, v)
            for k, v in self.params
            if k not in skip
            and (k not in self.component.defaults or self.component.defaults[k] != v)
        ]
        name = f"{self.qualifier}/{self.name}" if self.qualifier else self.name
        if not changed:
            return name
        return f"{name}[{';'.join(f'{k}={format_value(v)}' for k, v in changed)}]"


@dataclass(frozen=True)
class Selection:
    """Every choice per kind (keys in ``KIND_NAMES`` order); a sweep is their product."""

    choices: Mapping[str, tuple[Choice, ...]]

    def of(self, kind: str) -> tuple[Choice, ...]:
        return self.choices[kind]

    def all(self) -> list[Choice]:
        return [c for kind in KIND_NAMES for c in self.choices[kind]]

    @property
    def optimizers(self) -> tuple[Choice, ...]:
        return self.choices["optimizer"]

    @property
    def losses(self) -> tuple[Choice, ...]:
        return self.choices["loss"]

    @property
    def inits(self) -> tuple[Choice, ...]:
        return self.choices["init"]


def parse_value(text: str) -> Any:
    """A scalar or a ``:``-separated tuple of scalars."""
    text = text.strip()
    if ":" in text:
        return tuple(parse_scalar(part) for part in text.split(":"))
    return parse_scalar(text)


def parse_scalar(text: str) -> Any:
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if not text:
        raise UsageError("empty hyper-parameter value: write key=value, e.g. lr=0.01")
    return text


def format_value(value: Any) -> str:
    """The inverse of ``parse_value``, for labels."""
    if isinstance(value, tuple):
        return ":".join(format_value(v) for v in value)
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def split_items(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise UsageError(f"unbalanced ']' in --plugins {text!r}")
        if ch == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise UsageError(f"unbalanced '[' in --plugins {text!r}")
    items.append("".join(current))
    return [i.strip() for i in items if i.strip()]


def parse_params(text: str, where: str) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, values = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(
                f"{where}: bad hyper-parameter {part!r}: write key=value, e.g. lr=0.01"
            )
        if key in grid:
            raise UsageError(
                f"{where}: hyper-parameter {key!r} given twice; list several values in one, "
                f"e.g. {key}=0.1,0.2"
            )
        grid[key] = [parse_value(v) for v in values.split(",")]
    return grid


def resolve_name(registry: Registry, name: str, kind: str | None) -> Component:
    """The one component called ``name`` (or ``plugin/name``), or a usage error that
    suggests close names or the qualified names that would settle a clash."""
    plugin, _, name = name.rpartition("/")
    found = registry.candidates(name, kind)
    if plugin:
        found = _from_plugin(found, plugin, name)
    if len(found) == 1:
        return found[0]
    builtin = [c for c in found if c.builtin]
    if not plugin and len(builtin) == 1:  # unqualified names mean the built-ins
        return builtin[0]
    if not found:
        known = registry.names(kind)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known)}"
        what = f"{kind} " if kind else "plugin component "
        unavailable = "; ".join(registry.unavailable)
        note = f"; note: {unavailable}" if unavailable else ""
        raise UsageError(f"unknown {what}{name!r}; {hint} (see 'gdbench plugins'){note}")
    kinds = {c.kind for c in found}
    if len(kinds) > 1:
        options = ", ".join(sorted(c.qualified_name for c in found))
        raise UsageError(f"{name!r} is ambiguous; qualify it with its kind: {options}")
    owners = ", ".join(sorted(f"{c.plugin} ({c.dist or 'unpackaged'})" for c in found))
    qualified = " or ".join(sorted(f"{c.plugin}/{name}" for c in found))
    raise UsageError(
        f"{found[0].kind} {name!r} is registered by several plugins: {owners}; "
        f"choose one with plugin/name: {qualified}"
    )


def _from_plugin(found: list[Component], plugin: str, name: str) -> list[Component]:
    """The candidates registered by ``plugin`` (plugin or distribution name)."""
    mine = [c for c in found if plugin in (c.plugin, c.dist)]
    if found and not mine:
        owners = ", ".join(sorted(f"{c.plugin}/{name}" for c in found))
        raise UsageError(f"plugin {plugin!r} registers no {name!r}; registered as: {owners}")
    return mine


def expand(component: Component, grid: Mapping[str, Sequence[Any]]) -> list[Choice]:
    """All hyper-parameter combinations of one component, defaults filled in. A
    component whose ``lazy()`` target cannot be imported is refused here, before any run,
    naming plugin, component and target."""
    problem = target_error(component)
    if problem:
        raise UsageError(f"{problem}; fix the plugin, or see 'gdbench plugins --check'")
    check_param_names(component, grid)
    flags = boolean_keywords(component)
    for key, values in grid.items():
        if key == "lr":
            check_lr(values, where=component.name)
        if key in flags:
            check_bool(values, key, component.name)
    keys = list(grid)
    choices = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        params = {**component.defaults, **dict(zip(keys, combo, strict=True))}
        choices.append(Choice(component, tuple(sorted(params.items()))))
    return choices


def check_param_names(component: Component, grid: Mapping[str, Any]) -> None:
    accepted = accepted_keywords(component.fn)
    if accepted is None:
        return
    accepted = (accepted | set(component.defaults)) - component.kind_info.reserved
    for key in grid:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageError(
                f"{component.name} has no hyper-parameter {key!r}; {hint}"
                f"it accepts: {', '.join(sorted(accepted)) or 'none'}"
            )


def boolean_keywords(component: Component) -> set[str]:
    """Hyper-parameters that are flags: a boolean default, registered or in the
    signature (``nesterov``, ``amsgrad``)."""
    from .lazy import keyword_defaults

    defaults = {**keyword_defaults(component.fn), **component.defaults}
    return {k for k, v in defaults.items() if isinstance(v, bool)}


def check_bool(values: Iterable[Any], key: str, where: str) -> None:
    """A flag takes true or false only: any other text would be read as true."""
    for v in values:
        if not isinstance(v, bool):
            raise UsageError(f"{where}: {key} is true or false, got {format_value(v)!r}")


def check_lr(values: Iterable[Any], *, where: str | None = None) -> None:
    """Learning rates are positive finite numbers; ``where`` names a component, else the
    error is about the ``lr`` argument itself."""
    for v in values:
        if (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0
                or not math.isfinite(v)):  # fmt: skip
            detail = f"must be a positive finite number, got {v!r}"
            if where:
                raise UsageError(f"{where}: learning rate {detail}")
            raise UsageError(detail, param="lr")


def select(
    registry: Registry, plugins: str | Sequence[str] | None, lrs: Sequence[float] | None = None
) -> Selection:
    """Parse ``--plugins`` (and ``--lr``) into a Selection over the registry."""
    text = plugins if isinstance(plugins, str) else ",".join(plugins or ())
    per_kind: dict[str, list[Choice]] = {k: [] for k in KIND_NAMES}
    for item in split_items(text):
        component, grid = parse_item(registry, item)
        if component.kind == "optimizer" and lrs and "lr" not in grid:
            grid["lr"] = list(lrs)
        per_kind[component.kind].extend(expand(component, grid))
    for kind in KIND_NAMES:
        if not per_kind[kind]:
            component = resolve_name(registry, KINDS[kind].default, kind)
            grid = {"lr": list(lrs)} if kind == "optimizer" and lrs else {}
            per_kind[kind] = expand(component, grid)
    return Selection({kind: tuple(_qualified(_unique(per_kind[kind]))) for kind in KIND_NAMES})


def parse_item(registry: Registry, item: str) -> tuple[Component, dict[str, list[Any]]]:
    """One ``[kind:][plugin/]name[key=value,...]`` item: its component and its grid of
    hyper-parameter values as written."""
    match = _ITEM_RE.match(item)
    if not match:
        raise UsageError(f"cannot read {item!r}: write name, kind:name or name[key=value]")
    kind = _kind(match["kind"], item)
    component = resolve_name(registry, match["name"].strip(), kind)
    return component, parse_params(match["params"] or "", component.name)


def _kind(text: str | None, item: str) -> str | None:
    if text is None:
        return None
    kind = kind_named(text)
    if kind is None:
        options = ", ".join(f"{k}:" for k in KIND_NAMES)
        raise UsageError(f"unknown kind {text!r} in {item!r}; use {options}")
    return kind.name


def _unique(choices: list[Choice]) -> list[Choice]:
    return list(dict.fromkeys(choices))


def _qualified(choices: list[Choice]) -> list[Choice]:
    """Choices whose name another component of the sweep shares carry their plugin's
    name, so that two ``sgd``s never merge into one table row or plot curve."""
    owners: dict[str, set[int]] = {}
    for c in choices:
        owners.setdefault(c.name, set()).add(id(c.component))
    return [
        dataclasses.replace(c, qualifier=c.component.plugin) if len(owners[c.name]) > 1 else c
        for c in choices
    ]
