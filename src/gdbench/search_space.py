"""Search spaces for tuning studies: which hyper-parameters of each optimizer are tuned,
over which range, and the trial points a study draws from them.

The ``--plugins`` grammar gains one value form, read only by ``gdbench tune``::

    adam[lr=log:1e-4:10;betas=0.9:0.999]      lr tuned log-uniformly over [1e-4, 10]
    momentum[momentum=lin:0.5:0.99]           momentum tuned uniformly over [0.5, 0.99]
    sgd[lr=0.01]                              lr fixed: a one-point "study" (a baseline)
    adam[betas=0.9:0.999,0.5:0.9]             several values: tuned over that set

A ``log:LO:HI`` / ``lin:LO:HI`` value is already valid grammar (a ``:``-tuple whose first
element is text); ``gdbench run`` passes it to the component unchanged, and ``tune`` reads
it as a range. An optimizer whose ``lr`` is not given is tuned over the study's default
lr range. Only optimizers are tuned: losses and initializers define the workload.

Trials: ``grid`` spreads k points over each range (log-spaced for ``log``, both ends
included), crossed with every value of a set, with k^d × sets at most the budget;
``quasirandom`` takes the first points of a scrambled Halton sequence (one scramble per
study), ``random`` independent uniform draws (one generator per study). Each point is
rounded to 4 significant digits, so that the chosen value can be typed back exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .components import Component, Registry
from .errors import UsageError
from .kinds import KINDS
from .selection import (
    check_param_names,
    format_value,
    parse_item,
    resolve_name,
    split_items,
)

Scale = Literal["log", "lin"]
SEARCHES = ("grid", "quasirandom", "random")
DIGITS = 4
"""Significant digits of a trial point."""


@dataclass(frozen=True)
class Range:
    """A continuous interval a hyper-parameter is tuned over."""

    scale: Scale
    low: float
    high: float

    def at(self, u: float) -> float:
        """The point at fraction ``u`` ∈ [0, 1] of the range (in log space for ``log``)."""
        if self.scale == "log":
            lo, hi = math.log10(self.low), math.log10(self.high)
            return _round(10 ** (lo + u * (hi - lo)))
        return _round(self.low + u * (self.high - self.low))

    def grid(self, k: int) -> list[float]:
        """k points, both ends included (one point: the middle)."""
        if k == 1:
            return [self.at(0.5)]
        return list(dict.fromkeys(self.at(i / (k - 1)) for i in range(k)))

    def __str__(self) -> str:
        return f"{self.scale}:{self.low:g}:{self.high:g}"


def _round(value: float) -> float:
    return float(f"{value:.{DIGITS}g}")


def parse_range(
    value: Any, *, where: str, positive: bool = False, text: str | None = None
) -> Range | None:
    """A ``log:LO:HI`` / ``lin:LO:HI`` value (already parsed into a tuple) as a Range;
    None for any other value. Malformed ranges are usage errors naming ``where`` and
    quoting ``text`` (the value as typed, when known)."""
    if not (isinstance(value, tuple) and value and isinstance(value[0], str)):
        return None
    scale = value[0].lower()
    if scale not in ("log", "lin"):
        return None
    text = text or ":".join(format_value(v) for v in value)
    prefix = f"{where}: range " if where else ""
    bounds = value[1:]
    if len(bounds) != 2 or not all(_is_number(b) for b in bounds):
        what = f"{where}: cannot read range" if where else "cannot read"
        raise UsageError(f"{what} {text!r}; write {scale}:LO:HI, e.g. {scale}:1e-4:10")
    low, high = float(bounds[0]), float(bounds[1])
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise UsageError(f"{prefix}{text!r} needs finite LO < HI")
    if (scale == "log" or positive) and low <= 0:
        need = "LO > 0 on a log scale" if scale == "log" else "LO > 0"
        raise UsageError(f"{prefix}{text!r} needs {need}")
    return Range(scale, low, high)  # type: ignore[arg-type]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_lr_range(text: str | Sequence[float] | Range) -> Range:
    """``LO:HI`` (log scale), ``log:LO:HI`` or ``lin:LO:HI``, or a (LO, HI) pair; errors
    name the ``lr_range`` parameter."""
    from .selection import parse_value

    if isinstance(text, Range):
        return text
    if not isinstance(text, (str, Sequence)):
        from .errors import ParameterTypeError

        raise ParameterTypeError(f"must be a string such as '1e-4:10' or a (low, high) pair, "
                                 f"got {text!r}", param="lr_range")  # fmt: skip
    value: Any = tuple(text) if not isinstance(text, str) else ()
    if isinstance(text, str) and text.strip():
        value = parse_value(text)
    if isinstance(value, tuple) and len(value) == 2 and all(_is_number(v) for v in value):
        value = ("log", *value)
    typed = text if isinstance(text, str) else None
    try:
        found = parse_range(value, where="", positive=True, text=typed)
    except UsageError as exc:
        raise UsageError(str(exc), param="lr_range") from None
    if found is None:
        raise UsageError(f"cannot read {text!r}; write LO:HI, e.g. 1e-4:10 (log scale), "
                         "or lin:LO:HI", param="lr_range")  # fmt: skip
    return found


@dataclass(frozen=True)
class Space:
    """One optimizer entry of ``--plugins`` and what is tuned in it."""

    index: int
    """Position among the optimizer entries."""
    head: str
    """The entry as typed, without its brackets (``adam``, ``optimizer:mypkg/adam``)."""
    component: Component
    fixed: dict[str, Any] = field(default_factory=dict)
    ranges: dict[str, Range] = field(default_factory=dict)
    sets: dict[str, list[Any]] = field(default_factory=dict)
    """Hyper-parameters tuned over a set of values."""

    @property
    def tuned(self) -> list[str]:
        """The tuned hyper-parameters, ranges first."""
        return [*self.ranges, *self.sets]

    @property
    def scales(self) -> dict[str, str]:
        """Each tuned hyper-parameter's scale: ``log``, ``lin`` or ``set``."""
        return {**{k: r.scale for k, r in self.ranges.items()}, **dict.fromkeys(self.sets, "set")}

    @property
    def label(self) -> str:
        """The entry as a person would read it: its name and what is fixed or tuned."""
        parts = [f"{k}={format_trial_value(v)}" for k, v in self.fixed.items()]
        parts += [f"{k}={r}" for k, r in self.ranges.items() if k != "lr"]
        parts += [f"{k}={','.join(format_trial_value(v) for v in vs)}"
                  for k, vs in self.sets.items()]  # fmt: skip
        return f"{self.component.name}[{';'.join(parts)}]" if parts else self.component.name

    def trials(self, budget: int, search: str, seed: int) -> list[dict[str, Any]]:
        """The trial points of one study: each a full assignment of the entry's
        hyper-parameters (fixed ones included)."""
        names = list(self.ranges)
        ranges = [self.ranges[n] for n in names]
        sets = list(self.sets.items())
        if search == "grid":
            combos = math.prod(len(v) for _, v in sets)
            k = max(1, int((budget / combos) ** (1 / len(ranges)) + 1e-9)) if ranges else 1
            axes = [r.grid(k) for r in ranges] + [v for _, v in sets]
            points = [list(p) for p in _product(axes)]
        else:
            dims = len(ranges) + len(sets)
            if dims == 0:
                points = [[]]
            else:
                units = _unit_points(budget, dims, search, seed)
                points = [
                    [r.at(u) for r, u in zip(ranges, row, strict=False)]
                    + [
                        v[min(int(u * len(v)), len(v) - 1)]
                        for (_, v), u in zip(sets, row[len(ranges) :], strict=True)
                    ]
                    for row in units
                ]
        keys = names + [n for n, _ in sets]
        out = []
        for point in points:
            params = {**self.fixed, **dict(zip(keys, point, strict=True))}
            if params not in out:
                out.append(params)
        return out

    def item(self, params: dict[str, Any]) -> str:
        """A trial as a ``--plugins`` item, values written so that they read back exactly."""
        body = ";".join(f"{k}={format_trial_value(v)}" for k, v in params.items())
        return f"{self.head}[{body}]" if body else self.head


def _product(axes: list[list[Any]]) -> list[tuple[Any, ...]]:
    import itertools

    return list(itertools.product(*axes))


def _unit_points(n: int, dims: int, search: str, seed: int) -> np.ndarray:
    """n points in [0, 1)^dims: scrambled Halton (quasi-random) or uniform draws."""
    if search == "quasirandom":
        from scipy.stats import qmc

        return np.asarray(qmc.Halton(d=dims, scramble=True, seed=seed).random(n))
    return np.random.default_rng(seed).random((n, dims))


def format_trial_value(value: Any) -> str:
    """Like ``selection.format_value`` but exact: floats by ``repr`` (``parse_value`` reads
    them back to the same float)."""
    if isinstance(value, tuple):
        return ":".join(format_trial_value(v) for v in value)
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def parse_spaces(
    registry: Registry, plugins: str, lr_range: Range
) -> tuple[list[Space], list[str]]:
    """The optimizer entries of ``plugins`` as search spaces, and the other items (losses,
    initializers) unchanged. Without an optimizer entry, the default optimizer is tuned."""
    spaces: list[Space] = []
    others: list[str] = []
    for item in split_items(plugins):
        component, grid = parse_item(registry, item)
        if component.kind != "optimizer":
            for key, values in grid.items():
                if any(parse_range(v, where=component.name) for v in values):
                    raise UsageError(
                        f"{component.name}[{key}=...]: only optimizer hyper-parameters are "
                        f"tuned; a {component.kind} defines the workload (give values)"
                    )
            others.append(item)
            continue
        head = item.split("[", 1)[0].strip()
        spaces.append(_space(len(spaces), head, component, grid, lr_range))
    if not spaces:
        default = resolve_name(registry, KINDS["optimizer"].default, "optimizer")
        spaces.append(_space(0, default.name, default, {}, lr_range))
    return spaces, others


def _space(
    index: int, head: str, component: Component, grid: dict[str, list[Any]], lr_range: Range
) -> Space:
    check_param_names(component, grid)
    fixed: dict[str, Any] = {}
    ranges: dict[str, Range] = {}
    sets: dict[str, list[Any]] = {}
    where = component.name
    for key, values in grid.items():
        found = [parse_range(v, where=where, positive=key == "lr") for v in values]
        if any(found):
            if len(values) > 1:
                raise UsageError(f"{where}: {key} takes one range or a list of values, not both")
            ranges[key] = found[0]  # type: ignore[assignment]
        elif len(values) > 1:
            sets[key] = list(dict.fromkeys(values))
        else:
            fixed[key] = values[0]
        if key == "lr" and key not in ranges:
            from .selection import check_lr

            check_lr(values, where=where)
    if "lr" not in grid:
        ranges = {"lr": lr_range, **ranges}
    return Space(index, head, component, fixed, ranges, sets)
