"""Calling the lifecycle hooks of the loaded plugins during a sweep, each call guarded.

A hook is called only when some plugin implements it, so unimplemented hooks cost
nothing; ``on_epoch`` is None unless a plugin implements ``gdbench_epoch_end``, which
lets engines skip the per-epoch device synchronisation entirely.

Each plugin's implementation is called on its own (not through pluggy's combined call),
so that one that raises is caught and named in a one-line warning (plugin, hook,
exception), and that plugin's lifecycle hooks are switched off for the rest of the sweep,
while every other plugin and every run carries on: a logger's bug must not turn the
runs of other people's optimizers into errors. ``GDBENCH_RAISE_PLUGIN_ERRORS=1`` lets
the exception propagate instead, with its traceback.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import one_line, raise_plugin_errors

if TYPE_CHECKING:
    import pandas as pd

    from .engine.base import OnEpoch
    from .engine.records import RunResult
    from .plan import RunSpec
    from .plugins import PluginSet

HOOKS = (
    "gdbench_sweep_start",
    "gdbench_run_start",
    "gdbench_epoch_end",
    "gdbench_run_end",
    "gdbench_results_ready",
)


class PluginWarning(UserWarning):
    """A plugin's lifecycle hook raised; the plugin was switched off for the sweep."""


def _warn(message: str) -> None:
    warnings.warn(message, PluginWarning, stacklevel=3)


def _plain_impls(plugin_set: PluginSet, hook: str) -> list[Any]:
    """A hook's implementations in pluggy's calling order (last registered first);
    wrappers, meaningless for these hooks, are left out."""
    impls = getattr(plugin_set.pm.hook, hook).get_hookimpls()
    return [i for i in reversed(impls) if not (i.hookwrapper or i.wrapper)]


class Lifecycle:
    """The sweep's calls into plugins: skipped when no plugin implements a hook, and
    isolated per plugin when one does.

    ``warn`` receives one line per fault (default: a ``PluginWarning``); ``faults``
    keeps them, for the results' metadata.
    """

    def __init__(self, plugin_set: PluginSet, warn: Callable[[str], None] | None = None) -> None:
        self.warn = warn or _warn
        self.impls = {name: _plain_impls(plugin_set, name) for name in HOOKS}
        self.off: set[str] = set()
        self.faults: list[str] = []
        self.on_epoch: OnEpoch | None = self._epoch_end if self.impls["gdbench_epoch_end"] else None

    def implements(self, hook: str) -> bool:
        """Whether some plugin implements ``hook`` (e.g. ``gdbench_run_end``)."""
        return bool(self.impls[hook])

    def _call(self, hook: str, **kwargs: Any) -> None:
        """Call every live implementation of ``hook`` (in pluggy's order: last registered
        first), each with the arguments it asks for."""
        for impl in self.impls[hook]:
            if impl.plugin_name in self.off:
                continue
            try:
                impl.function(*(kwargs[name] for name in impl.argnames))
            except Exception as exc:
                if raise_plugin_errors():
                    raise
                self._switch_off(impl.plugin_name, hook, exc)

    def _switch_off(self, plugin: str, hook: str, exc: BaseException) -> None:
        self.off.add(plugin)
        message = (
            f"plugin {plugin!r} failed in {hook} ({one_line(exc)}); its lifecycle hooks are "
            "off for the rest of this sweep, the runs go on"
        )
        self.faults.append(message)
        self.warn(message)

    def sweep_start(self, plan: Sequence[RunSpec], out_dir: Path | None) -> None:
        if self.impls["gdbench_sweep_start"]:
            self._call("gdbench_sweep_start", plan=list(plan), out_dir=out_dir)

    def run_start(self, spec: RunSpec) -> None:
        if self.impls["gdbench_run_start"]:
            self._call("gdbench_run_start", run=spec)

    def _epoch_end(self, spec: RunSpec, epoch: int, metrics: dict[str, float]) -> None:
        self._call("gdbench_epoch_end", run=spec, epoch=epoch, metrics=metrics)

    def run_end(self, spec: RunSpec, result: RunResult) -> None:
        if self.impls["gdbench_run_end"]:
            self._call("gdbench_run_end", run=spec, result=result)

    def results_ready(
        self, runs: pd.DataFrame, history: pd.DataFrame, out_dir: Path | None
    ) -> None:
        if self.impls["gdbench_results_ready"]:
            self._call("gdbench_results_ready", runs=runs, history=history, out_dir=out_dir)
