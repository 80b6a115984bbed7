"""Calling the lifecycle hooks of the loaded plugins during a sweep.

A hook is called only when some plugin implements it, so unimplemented hooks cost
nothing; ``on_epoch`` is None unless a plugin implements ``gdbench_epoch_end``, which
lets engines skip the per-epoch device synchronisation entirely.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from .engine.base import OnEpoch
    from .engine.records import RunResult
    from .plan import RunSpec
    from .plugins import PluginSet

HOOKS = ("gdbench_run_start", "gdbench_epoch_end", "gdbench_run_end", "gdbench_results_ready")


class Lifecycle:
    """The sweep's calls into plugins, each skipped when no plugin implements it."""

    def __init__(self, plugin_set: PluginSet) -> None:
        self.hook = plugin_set.pm.hook
        self.implemented = {name for name in HOOKS if plugin_set.implemented(name)}
        self.on_epoch: OnEpoch | None = (
            self._epoch_end if "gdbench_epoch_end" in self.implemented else None
        )

    def run_start(self, spec: RunSpec) -> None:
        if "gdbench_run_start" in self.implemented:
            self.hook.gdbench_run_start(run=spec)

    def _epoch_end(self, spec: RunSpec, epoch: int, metrics: dict[str, float]) -> None:
        self.hook.gdbench_epoch_end(run=spec, epoch=epoch, metrics=metrics)

    def run_end(self, spec: RunSpec, result: RunResult) -> None:
        if "gdbench_run_end" in self.implemented:
            self.hook.gdbench_run_end(run=spec, result=result)

    def results_ready(
        self, runs: pd.DataFrame, history: pd.DataFrame, out_dir: Path | None
    ) -> None:
        if "gdbench_results_ready" in self.implemented:
            self.hook.gdbench_results_ready(runs=runs, history=history, out_dir=out_dir)
