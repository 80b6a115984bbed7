"""Stopping a sweep cleanly on SIGINT (Ctrl-C) or SIGTERM.

The first signal only sets a flag; the engine looks at it after every epoch and stops the
batch there, its live runs saved with status ``interrupted`` and their history so far, and
no further batch starts. A second Ctrl-C raises ``KeyboardInterrupt`` at once, for a sweep
stuck inside a plugin. Handlers are installed only in the main thread, only for the
sweep, and the previous ones restored afterwards.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class StopRequest:
    """Callable flag: ``stop()`` is True once a stop signal arrived (``stop.signal``)."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def __call__(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT.value, signal.SIGTERM.value):
            previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
