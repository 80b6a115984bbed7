"""Helpers the test modules import (``from helpers import ...``); fixtures are in conftest.py.

Importing this module is cheap: torch and pandas load only inside the functions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [ROOT / "examples" / "gdbench-signsgd", ROOT / "examples" / "gdbench-metrics-log"]

BUILTIN_OPTIMIZERS = "sgd,momentum,momentum[nesterov=true],adam"
BUILTIN_LOSSES = "l1,mse,huber"
BUILTIN_INITS = "default,uniform,normal,zeros,xavier,kaiming"
EVERY_BUILTIN = f"{BUILTIN_OPTIMIZERS},{BUILTIN_LOSSES},{BUILTIN_INITS}"
EXPLODING_INIT = "uniform[low=1e20;high=2e20]"
"""Parameters so large that the MSE overflows at the first epoch: a run that diverges."""


def gdbench_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``gdbench`` console script in a subprocess, as a user would.

    Only for end-to-end journeys: everything else goes through the in-process ``cli``
    fixture, which saves the seconds a new interpreter spends importing torch.
    """
    return subprocess.run(
        [str(BIN / "gdbench"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def run_cpu(plugins: str, **kw: Any) -> Any:
    """``gdbench.run`` in memory on the CPU, without a plot (unless told otherwise)."""
    import gdbench

    kw.setdefault("out", None)
    kw.setdefault("device", "cpu")
    kw.setdefault("plot", False)
    return gdbench.run(plugins, **kw)


def results_dir(parent: Path) -> Path:
    """The one results folder an invocation made under ``parent``."""
    (out,) = [p for p in parent.iterdir() if p.is_dir()]
    return out


def make_specs(
    plugin_set: Any,
    plugins: str,
    *,
    seeds: Sequence[int] = (0,),
    epochs: int = 10,
    lrs: Sequence[float] = (),
    task: Any = None,
) -> list[Any]:
    """The run specs a sweep of ``plugins`` would plan on the CPU (no validation, no run)."""
    from gdbench import Task
    from gdbench.plan import build_plan
    from gdbench.selection import select

    selection = select(plugin_set.registry, plugins, list(lrs))
    return build_plan(selection, list(seeds), ["cpu"], epochs, task or Task())


def assert_usage_error(result: Any, fragment: str, folder: Path) -> None:
    """A CliRunner result is one ``gdbench: error:`` line with ``fragment``, exit 2,
    and nothing was made under ``folder``."""
    assert result.exit_code == 2, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("gdbench: error: ") and fragment in line
    assert not folder.exists() or not any(folder.iterdir())


def write_distribution(
    site: Path, dist: str, modules: dict[str, str], version: str = "1.2.3"
) -> None:
    """A real (unpackaged) distribution in folder ``site``, as pip would leave it: one
    ``gdbench`` entry point per module (named after it), each module's source dedented.
    Put ``site`` on ``sys.path`` (or ``PYTHONPATH``) and gdbench finds its plugins."""
    import textwrap

    info = site / f"{dist}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    points = "".join(f"{name} = {name}\n" for name in modules)
    (info / "entry_points.txt").write_text(f"[gdbench]\n{points}")
    for name, body in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(body))
