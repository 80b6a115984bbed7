"""Sweeps as files: ``gdbench run --config sweep.toml``.

The file's ``[run]`` table takes any option of ``gdbench run`` by its Python name
(``epochs``, ``n_samples``, ``data_seeds``…); options given on the command line win. Lists
are TOML arrays (``plugins = ["sgd", "adam[lr=0.1]"]``, ``lr = [0.01, 0.1]``,
``seeds = [0, 3, 7]``). Every results folder holds the resolved configuration as
``sweep.toml``, so ``gdbench run --config DIR/sweep.toml`` runs the same sweep again.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .options import SweepOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILE = "sweep.toml"
KEYS = (
    "plugins", "epochs", "lr", "seeds", "data_seed", "data_seeds", "device", "n_samples",
    "w_true", "b_true", "noise_std", "x_low", "x_high", "dim", "condition", "noise",
    "outliers", "out", "plot", "report", "engine", "compile", "max_batch", "target",
    "diverge_factor", "threads", "history", "workers", "scheduler",
)  # fmt: skip
"""The options a configuration file may set (``resume`` and ``force`` are per call)."""


def load_config(path: Path) -> dict[str, Any]:
    """The ``[run]`` table of a TOML file, checked: unknown keys are refused by name."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc.strerror}", param="config") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{str(path)!r} is not valid TOML: {exc}", param="config") from None
    table = data.get("run")
    if not isinstance(table, dict):
        raise UsageError(f"{str(path)!r} has no [run] table", param="config")
    for key in table:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(KEYS)}"
            raise UsageError(f"{str(path)!r}: unknown option {key!r}{hint}", param="config")
    return dict(table)


def resolved(options: SweepOptions) -> dict[str, Any]:
    """The ``[run]`` table that describes ``options`` (None values left out: TOML has no
    null), for ``sweep.toml`` in the results folder."""
    run: dict[str, Any] = {
        "plugins": options.plugins,
        "epochs": options.epochs,
        "seeds": list(options.seeds),
        "device": list(options.device),
        "plot": options.plot,
        "report": options.report,
        "engine": options.engine,
        "compile": options.compile,
        "target": options.target,
        "diverge_factor": options.diverge_factor,
        "history": str(options.history),
    }
    if options.lrs:
        run["lr"] = list(options.lrs)
    task = asdict(options.task)
    if options.data_seeds is not None:
        task.pop("data_seed")
        run["data_seeds"] = list(options.data_seeds)
    run.update(task)
    optional = {
        "out": str(options.out) if options.out is not None else None,
        "max_batch": options.max_batch,
        "threads": options.threads,
        "workers": options.workers,
        "scheduler": options.scheduler,
    }
    run.update({k: v for k, v in optional.items() if v is not None})
    return {"run": run}


def dumps(options: SweepOptions) -> str:
    import tomli_w

    return "# gdbench run --config this-file reruns this sweep\n" + tomli_w.dumps(resolved(options))
