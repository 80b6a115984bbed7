"""gdbench: a plugin-based gradient-descent testbed.

The public API is small and cheap to import (torch and pandas load only when a run
starts):

* ``gdbench.run(...)``: run a sweep, get the ``runs`` and ``history`` tables;
* ``gdbench.Task``: the regression task's parameters;
* ``gdbench.hookimpl`` and ``gdbench.lazy``: for plugin authors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .hookspecs import hookimpl
from .lazy import lazy

__version__ = "0.1.0"
__all__ = ["Results", "Task", "UsageError", "__version__", "hookimpl", "lazy", "run"]

if TYPE_CHECKING:
    from .runner import Results, run
    from .task import Task


def __getattr__(name: str) -> Any:
    """Import the heavier parts on first use, keeping ``import gdbench`` light."""
    if name in ("run", "Results"):
        from . import runner

        return getattr(runner, name)
    if name == "Task":
        from .task import Task

        return Task
    raise AttributeError(f"module 'gdbench' has no attribute {name!r}")
