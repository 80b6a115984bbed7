"""Errors that gdbench reports to the user as one line, without a traceback."""

from __future__ import annotations

from collections.abc import Callable


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


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for tables and reports."""
    import traceback

    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return " ".join(text.split())
