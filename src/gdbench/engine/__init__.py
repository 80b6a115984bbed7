"""Engines advance runs. ``base`` holds the contract (``Engine``, ``Trainer``), ``records``
what every engine records and returns, ``schedule`` how a sweep is cut into batches.

This module stays light (no torch): it only names the engines, in the order ``auto``
tries them, and builds them on demand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Engine

AUTO = "auto"
ENGINE_NAMES = ("batched", "sequential")
"""In the order ``auto`` tries them: the first that accepts a run gets it."""
ENGINE_CHOICES = (AUTO, *ENGINE_NAMES)


def make_engines(**options: Any) -> dict[str, Engine]:
    """One instance of every engine, in ``ENGINE_NAMES`` order; ``options`` are the
    batched engine's (``compile``)."""
    from .batched import BatchedEngine
    from .sequential import SequentialEngine

    return {"batched": BatchedEngine(**options), "sequential": SequentialEngine()}
