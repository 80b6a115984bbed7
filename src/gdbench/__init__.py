"""gdbench: a plugin-based gradient-descent testbed.

The public API is small and cheap to import (torch and pandas load only when a run
starts):

* ``gdbench.run(...)``: run a sweep, get a ``Results`` with the ``runs`` and ``history``
  tables (their columns: ``gdbench.results.RUNS_COLUMNS`` and ``HISTORY_COLUMNS``);
* ``gdbench.load(folder)``: a results folder's tables, whatever its state;
* ``gdbench.tune(...)``: tuning studies, then the tuned optimizers on held-out data;
* ``gdbench.Task``: the regression task's parameters;
* ``gdbench.UsageError``: bad input (a ``ValueError``; ``ParameterTypeError`` for a
  wrong type is also a ``TypeError``);
* ``gdbench.hookimpl``, ``gdbench.lazy`` and ``gdbench.Register``: for plugin authors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .components import Register
from .errors import ParameterTypeError, UsageError
from .hookspecs import hookimpl
from .lazy import lazy

__version__ = "0.1.0"
__all__ = [
    "ParameterTypeError",
    "Register",
    "Results",
    "Task",
    "UsageError",
    "__version__",
    "hookimpl",
    "lazy",
    "load",
    "run",
    "tune",
]

if TYPE_CHECKING:
    from .results import Results
    from .runner import run
    from .store import load
    from .task import Task
    from .tuning import tune


def __getattr__(name: str) -> Any:
    """Import the heavier parts on first use, keeping ``import gdbench`` light."""
    if name == "run":
        from .runner import run

        return run
    if name == "Results":
        from .results import Results

        return Results
    if name == "load":
        from .store import load

        return load
    if name == "tune":
        from .tuning import tune

        return tune
    if name == "Task":
        from .task import Task

        return Task
    raise AttributeError(f"module 'gdbench' has no attribute {name!r}")
