"""Every hook a gdbench plugin can implement: this module is the plugin author's reference.

``docs/plugins.md`` is the guide that goes with it (a complete plugin package, an example
per hook, the conformance kit ``gdbench.testing``).

A plugin is a module (or any object) with functions decorated by ``gdbench.hookimpl``
whose names match the specifications below. It is found through an entry point in the
``gdbench`` group of its package's ``pyproject.toml``::

    [project.entry-points.gdbench]
    my_plugin = "my_package.plugin"

Hooks are called with keyword arguments, so an implementation may accept any subset of
the arguments a specification lists, by name. Do not give defaults to hook arguments.

Two kinds of hooks exist:

* **Registration hooks** (``gdbench_register_*``) are called once, when gdbench builds
  its registry of components, and receive a ``register`` callable.
* **Lifecycle hooks** (``gdbench_sweep_start``, ``gdbench_run_start``,
  ``gdbench_epoch_end``, ``gdbench_run_end``, ``gdbench_results_ready``) are called while
  a sweep runs. Each plugin's implementation is called on its own: if it raises, gdbench
  prints a one-line warning naming the plugin, the hook and the exception, switches that
  plugin's lifecycle hooks off for the rest of the sweep, and every run carries on
  (``GDBENCH_RAISE_PLUGIN_ERRORS=1`` re-raises instead, with the traceback). gdbench only
  calls a lifecycle hook if at least one plugin implements it, so unimplemented hooks cost
  nothing; ``gdbench_epoch_end`` in particular forces a device synchronisation each
  epoch, so implement it only when you need per-epoch values as they happen (the
  ``history`` table has them all at the end anyway).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import pandas as pd

    from .components import Register
    from .engine.records import RunResult
    from .plan import RunSpec

PROJECT = "gdbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gdbench_register_optimizers(register: Register) -> None:
    """Register optimizers.

    Call ``register(name, factory, defaults=..., batchable=..., description=...)`` once
    per optimizer:

    * ``name``: the short name used on the command line (``gdbench run --plugins name``);
      lower case letters, digits, ``_`` and ``-``.
    * ``factory``: a callable ``factory(params, **hyperparameters)`` returning a
      ``torch.optim.Optimizer`` (an optimizer class such as ``torch.optim.Adam`` is one).
    * ``defaults``: the hyper-parameters gdbench passes unless the user overrides them
      (``adam[lr=0.1]``, ``--lr 0.1``). Always include ``lr``. They are shown by
      ``gdbench plugins``. Any keyword the factory accepts may be overridden, not only
      those in ``defaults``.
    * ``batchable``: ``True`` only if the update is elementwise (each parameter entry is
      updated from its own gradient and state alone, as in SGD, momentum and Adam), so
      that many runs stacked in one tensor stay exactly independent.
    * ``description``: one line for ``gdbench plugins``.

    Example::

        @hookimpl
        def gdbench_register_optimizers(register):
            register("adamw", torch.optim.AdamW, defaults={"lr": 0.01}, batchable=True)
    """


@hookspec
def gdbench_register_losses(register: Register) -> None:
    """Register losses.

    Call ``register(name, fn, defaults=..., batchable=..., description=..., optimum=...)``:

    * ``fn(prediction, target, **hyperparameters)`` returns the loss **per element**,
      with the shape of ``prediction`` (like ``reduction="none"`` in ``torch.nn``);
      gdbench averages it over the samples, so a run's loss is the mean per-sample loss.
    * ``defaults``: hyper-parameters of the loss (e.g. Huber's ``delta``).
    * ``batchable``: ``True`` if ``fn`` is elementwise, so it works unchanged on stacked
      runs.
    * ``optimum``: optional exact solver ``optimum(x, y, **hyperparameters) -> (w, b)``
      for the linear model, on float64 numpy samples (``x`` (n, d), ``y`` (n,)); every run
      is measured against it. Without one gdbench computes a numerical reference.
    """


@hookspec
def gdbench_register_initializers(register: Register) -> None:
    """Register parameter initializers.

    Call ``register(name, fn, defaults=..., description=...)``:

    * ``fn(weight, bias, generator, **hyperparameters)`` fills ``weight`` (shape
      ``(out_features, in_features)``) and ``bias`` (shape ``(out_features,)``) in place,
      drawing all randomness from ``generator`` (a CPU ``torch.Generator`` seeded with the
      run's seed), so that the same seed gives the same initial parameters everywhere.
    """


@hookspec
def gdbench_sweep_start(plan: list[RunSpec], out_dir: Path | None) -> None:
    """Called once before a sweep's first run, with the runs it will compute.

    ``plan`` lists every ``gdbench.plan.RunSpec`` to run (on a resume: those not saved
    yet); ``out_dir`` is the results folder, or ``None`` when nothing is written to disk.
    Keep per-sweep state here (open a log file, reset counters) rather than in module
    globals, which would leak from one ``gdbench.run()`` call to the next.
    """


@hookspec
def gdbench_run_start(run: RunSpec) -> None:
    """Called before a run's first epoch.

    ``run`` is the ``gdbench.plan.RunSpec`` about to execute (run_id, components and their
    hyper-parameters, seed, device, epochs, task parameters).
    """


@hookspec
def gdbench_epoch_end(run: RunSpec, epoch: int, metrics: dict[str, float]) -> None:
    """Called after every epoch of every run, only if some plugin implements it.

    ``epoch`` counts from 1; ``metrics`` is a dict of floats (``loss``, ``grad_norm``,
    ``w``, ``b``) for that epoch. Implementing it costs a device synchronisation per
    epoch.
    """


@hookspec
def gdbench_run_end(run: RunSpec, result: RunResult) -> None:
    """Called when a run has finished, diverged or failed.

    ``result`` is the ``gdbench.engine.records.RunResult`` (status, error text, final loss
    and parameters, timings, engine).
    """


@hookspec
def gdbench_results_ready(runs: pd.DataFrame, history: pd.DataFrame, out_dir: Path | None) -> None:
    """Called once at the end of ``gdbench run`` with the two result tables.

    ``runs`` and ``history`` are pandas DataFrames whose columns are
    ``gdbench.results.RUNS_COLUMNS`` and ``HISTORY_COLUMNS`` (meanings in ``RUNS_SCHEMA``
    and ``HISTORY_SCHEMA``, and in docs/usage.md); ``out_dir`` is the results folder (a
    ``pathlib.Path``), or ``None`` when nothing is written to disk.
    """
