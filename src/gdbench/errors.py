"""Errors that gdbench reports to the user as one line, without a traceback."""

from __future__ import annotations

import os
from collections.abc import Callable

RAISE_ENV = "GDBENCH_RAISE_PLUGIN_ERRORS"
"""Set to 1 to let a plugin's exception propagate with its traceback (for debugging),
instead of being caught, attributed and reported in one line."""


def raise_plugin_errors() -> bool:
    """Whether the user asked for plugin faults to propagate (``RAISE_ENV``)."""
    return os.environ.get(RAISE_ENV, "") not in ("", "0")


class UsageError(ValueError):
    """Bad input: the message names what was wrong and what would be right.

    ``param`` is the Python name of the offending argument (``epochs``, ``n_samples``) when
    there is one: the message then starts with it, and the CLI swaps it for the flag the
    user typed (``--epochs``), so both front ends name what *their* user wrote. The CLI
    prints it as one line and exits with status 2; the Python API lets it propagate.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        self.param = param
        self.detail = message
        super().__init__(f"{param} {message}" if param else message)

    def render(self, name_of: Callable[[str], str]) -> str:
        """The message with the parameter named as ``name_of(param)`` (e.g. a CLI flag)."""
        return f"{name_of(self.param)} {self.detail}" if self.param else self.detail


class ParameterTypeError(UsageError, TypeError):
    """An argument of the wrong type (also a ``TypeError``, as Python code expects)."""


class ComponentError(Exception):
    """A fault inside one plugin component while a run used it: the message names the
    component and its plugin, so a run's ``error`` says whose code failed."""

    def __init__(self, kind: str, label: str, plugin: str, detail: str) -> None:
        self.kind, self.label, self.plugin = kind, label, plugin
        super().__init__(f"{kind} {label!r} (plugin {plugin!r}): {detail}")


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for tables and reports (just the message for a
    ``ComponentError``, which already says whose fault it was)."""
    import traceback

    if isinstance(exc, ComponentError):
        return " ".join(str(exc).split())

    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return " ".join(text.split())
