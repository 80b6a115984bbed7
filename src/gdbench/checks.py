"""Argument checks shared by the Python API's entry points; each names the parameter."""

from __future__ import annotations

import math
import numbers
from typing import Any

from .errors import ParameterTypeError, UsageError

MAX_SEED = 2**63 - 1
"""The largest seed every torch generator accepts."""


def whole_number(name: str, value: Any) -> int:
    """An integer (numpy integers too, booleans not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError(f"must be a whole number, got {value!r}", param=name)
    return int(value)


def seed(name: str, value: Any) -> int:
    number = whole_number(name, value)
    if not 0 <= number <= MAX_SEED:
        raise UsageError(f"must lie in 0..2**63-1, got {number}", param=name)
    return number


def finite_number(name: str, value: Any) -> float:
    """A finite real number (numpy floats too, booleans not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(f"must be a number, got {value!r}", param=name)
    if not math.isfinite(value):
        raise UsageError(f"must be finite, got {value!r}", param=name)
    return float(value)
