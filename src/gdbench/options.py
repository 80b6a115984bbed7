"""A sweep's options as one typed, checked value.

``gdbench.run(...)`` and the CLI both build a ``SweepOptions``; every check here names the
Python parameter (``epochs``), and the CLI renders that name as its flag (``--epochs``).
Values of the wrong type are refused with a ``ParameterTypeError`` (a ``TypeError``)
before anything deeper can misread them: a string is not a list of seeds.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checks import seed, whole_number
from .engine import ENGINE_CHOICES
from .errors import ParameterTypeError, UsageError
from .task import Task

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_TARGET = 1e-4
"""Default relative-gap target: a run has removed 99.99% of its starting gap."""
DEFAULT_DIVERGE_FACTOR = 1e4
"""Losses that grow 10,000-fold from their start are divergence, overflow or not."""


@dataclass(frozen=True)
class HistoryPolicy:
    """Which epochs the history table keeps: every one, every K-th (plus the first and
    the last of each run), or none. The runs table is always complete."""

    every: int | None = 1
    """1: every epoch; K: every K-th; None: no history."""

    @classmethod
    def parse(cls, text: str) -> HistoryPolicy:
        """``full``, ``every:K`` or ``none``."""
        if text == "full":
            return cls(1)
        if text == "none":
            return cls(None)
        kind, _, k = text.partition(":")
        if kind == "every" and k.isdigit() and int(k) >= 1:
            return cls(int(k))
        raise UsageError(f"{text!r} is not full, every:K (K >= 1) or none", param="history")

    def __str__(self) -> str:
        return (
            "none" if self.every is None else "full" if self.every == 1 else f"every:{self.every}"
        )

    def keep(self, history: pd.DataFrame) -> pd.DataFrame:
        """The rows of a batch's history this policy keeps."""
        if self.every == 1:
            return history
        if self.every is None:
            return history.iloc[:0]
        epoch = history["epoch"].to_numpy()
        last = history.groupby("run_id")["epoch"].transform("max").to_numpy()
        mask = ((epoch - 1) % self.every == 0) | (epoch == last)
        return history[mask].reset_index(drop=True)


@dataclass(frozen=True)
class SweepOptions:
    """Everything a sweep needs besides the plugins: checked and normalised."""

    plugins: str = "sgd"
    """Components in the ``--plugins`` grammar, e.g. ``"sgd,adam[lr=0.1],mse"``."""
    epochs: int = 500
    lrs: tuple[float, ...] = ()
    """Learning rates for every optimizer without an inline ``lr`` (empty: defaults)."""
    seeds: tuple[int, ...] = (0,)
    device: tuple[str, ...] = ("auto",)
    """As asked: ``auto``, ``cpu``, ``cuda:1``...; resolved when the sweep starts."""
    task: Task = field(default_factory=Task)
    out: Path | None = Path("results")
    plot: bool = True
    report: bool = True
    """Write ``report.html`` (``gdbench.html_report``) into the results folder."""
    engine: str = "auto"
    compile: bool = False
    max_batch: int | None = None
    data_seeds: tuple[int, ...] | None = None
    """Data seeds to run every configuration on (None: only ``task.data_seed``)."""
    target: float = DEFAULT_TARGET
    """Relative gap a run must reach and keep to count as solved."""
    diverge_factor: float = DEFAULT_DIVERGE_FACTOR
    """A run diverges when its loss exceeds this factor times its starting loss."""
    threads: int | None = None
    """torch intra-op threads during the sweep (None: ``threads.AUTO_THREADS``)."""
    history: HistoryPolicy = field(default_factory=HistoryPolicy)
    """Which epochs the history table keeps (``full``, ``every:K``, ``none``)."""
    resume: Path | None = None
    """A results folder to complete instead of starting a new one."""
    force: bool = False
    """Resume even though plugin versions changed (their runs are recomputed)."""
    workers: int | None = None
    """Worker processes of a local Dask cluster (None: decided by the sweep's size)."""
    scheduler: str | None = None
    """Address of an existing Dask scheduler (``tcp://host:port``)."""

    @property
    def tasks(self) -> tuple[Task, ...]:
        """One task per data seed, in order."""
        if self.data_seeds is None:
            return (self.task,)
        return tuple(replace(self.task, data_seed=s) for s in self.data_seeds)

    @classmethod
    def from_arguments(
        cls,
        plugins: Any = "sgd",
        *,
        epochs: Any = 500,
        lr: Any = None,
        seeds: Any = 1,
        device: Any = "auto",
        task: Any = None,
        out: Any = "results",
        plot: Any = True,
        report: Any = True,
        engine: Any = "auto",
        compile: Any = False,
        max_batch: Any = None,
        data_seeds: Any = None,
        target: Any = DEFAULT_TARGET,
        diverge_factor: Any = DEFAULT_DIVERGE_FACTOR,
        threads: Any = None,
        history: Any = "full",
        resume: Any = None,
        force: Any = False,
        workers: Any = None,
        scheduler: Any = None,
    ) -> SweepOptions:
        """Check and normalise ``gdbench.run``'s arguments (see its docstring)."""
        task = _task(task)
        if data_seeds is not None and task.data_seed != 0:
            raise UsageError(
                f"cannot be combined with a single data seed ({task.data_seed}); give one of them",
                param="data_seeds",
            )
        return cls(
            plugins=_plugins(plugins),
            epochs=_positive_int("epochs", epochs),
            lrs=_lrs(lr),
            seeds=_seeds(seeds),
            device=_devices(device),
            task=task,
            out=_out(out),
            plot=_flag("plot", plot),
            report=_flag("report", report),
            engine=_engine(engine),
            compile=_flag("compile", compile),
            max_batch=None if max_batch is None else _positive_int("max_batch", max_batch),
            data_seeds=None if data_seeds is None else _seeds(data_seeds, "data_seeds"),
            target=_in_range("target", target, low=0.0, high=1.0),
            diverge_factor=_in_range("diverge_factor", diverge_factor, low=1.0, high=math.inf),
            threads=None if threads is None else _positive_int("threads", threads),
            history=_history(history),
            resume=None if resume is None else _folder("resume", resume),
            force=_flag("force", force),
            workers=None if workers is None else _positive_int("workers", workers),
            scheduler=_scheduler(scheduler),
        )


def _plugins(value: Any) -> str:
    """The components as one string; None means the defaults, an empty text is refused
    (``--plugins ''`` silently running SGD would hide a broken script)."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif _is_sequence(value) and all(isinstance(v, str) for v in value):
        text = ",".join(value)
    else:
        raise ParameterTypeError(
            f"must be a string such as 'sgd,adam' or a list of such strings, got {value!r}",
            param="plugins",
        )
    if not text.replace(",", "").strip():
        raise UsageError(
            f"names no component ({text!r}); give e.g. 'sgd,adam', or leave it out for sgd",
            param="plugins",
        )
    return text


def _positive_int(name: str, value: Any) -> int:
    number = whole_number(name, value)
    if number < 1:
        raise UsageError(f"must be a positive whole number, got {number}", param=name)
    return number


def _lrs(value: Any) -> tuple[float, ...]:
    if value is None:
        return ()
    values = value if _is_sequence(value) else [value]
    lrs = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ParameterTypeError(
                f"must be a number or a list of numbers, got {value!r}", param="lr"
            )
        number = float(v)
        if not (math.isfinite(number) and number > 0):
            raise UsageError(f"must be a positive finite number, got {v!r}", param="lr")
        lrs.append(number)
    return tuple(lrs)


MAX_SEEDS = 10_000_000
"""More seeds than this per sweep is a typo, not a plan: a runs table of ten million rows
already takes ~20 GB in memory."""


def _seeds(value: Any, name: str = "seeds") -> tuple[int, ...]:
    """A count n (seeds 0..n-1) or an explicit list of distinct seeds."""
    if not _is_sequence(value):
        count = whole_number(name, value)
        if count < 1:
            raise UsageError(f"must be at least 1, got {count}", param=name)
        if count > MAX_SEEDS:
            raise UsageError(
                f"must be at most {MAX_SEEDS:,}, got {count:,}; split larger sweeps into "
                "several results folders",
                param=name,
            )
        return tuple(range(count))
    seeds = tuple(seed(name, s) for s in value)
    if not seeds:
        raise UsageError("needs at least one seed", param=name)
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"lists a seed twice: {list(seeds)}", param=name)
    return seeds


def _in_range(name: str, value: Any, low: float, high: float) -> float:
    """A number strictly above ``low`` and at most ``high`` (which may be inf)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(f"must be a number, got {value!r}", param=name)
    number = float(value)
    if not low < number <= high:
        upper = "" if math.isinf(high) else f" and at most {high:g}"
        raise UsageError(f"must be above {low:g}{upper}, got {value!r}", param=name)
    return number


def _devices(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not _is_sequence(items) or not all(isinstance(i, str) for i in items):
        raise ParameterTypeError(
            f"must be a string such as 'auto' or 'cpu,cuda', or a list of them, got {value!r}",
            param="device",
        )
    devices = tuple(i.strip() for i in items if i.strip())
    if not devices:
        raise UsageError("is empty; use auto, or a list such as cpu,cuda", param="device")
    return devices


def _history(value: Any) -> HistoryPolicy:
    if isinstance(value, HistoryPolicy):
        return value
    if not isinstance(value, str):
        raise ParameterTypeError(f"must be 'full', 'every:K' or 'none', got {value!r}",
                                 param="history")  # fmt: skip
    return HistoryPolicy.parse(value)


def _folder(name: str, value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise ParameterTypeError(f"must be a folder path, got {value!r}", param=name)
    path = Path(value)
    if not (path / "meta.json").is_file():
        raise UsageError(f"{str(path)!r} is not a gdbench results folder", param=name)
    return path


def _scheduler(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "://" not in value:
        raise UsageError(f"must be an address such as tcp://host:8786, got {value!r}",
                         param="scheduler")  # fmt: skip
    return value


def _task(value: Any) -> Task:
    if value is None:
        return Task()
    if not isinstance(value, Task):
        raise ParameterTypeError(f"must be a gdbench.Task, got {value!r}", param="task")
    return value


def _out(value: Any) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ParameterTypeError(
            f"must be a folder path or None (keep results in memory), got {value!r}", param="out"
        )
    return Path(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParameterTypeError(f"must be True or False, got {value!r}", param=name)
    return value


def _engine(value: Any) -> str:
    if not isinstance(value, str) or value not in ENGINE_CHOICES:
        raise UsageError(
            f"{value!r} is unknown; use one of {', '.join(ENGINE_CHOICES)}", param="engine"
        )
    return value


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))
