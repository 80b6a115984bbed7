"""Errors that gdbench reports to the user as one line, without a traceback."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input: the message names what was wrong and what would be right.

    The CLI prints it as one line and exits with status 2; the Python API lets it
    propagate so that notebooks see it as an ordinary exception.
    """


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for tables and reports."""
    import traceback

    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return " ".join(text.split())
