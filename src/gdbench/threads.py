"""How many intra-op threads torch uses while a sweep runs.

Measured on the 2-core development machine (docs/performance.md): the batched engine's
steps are small element-wise kernels over (R, N) tensors, and torch's default of one
thread per core makes them slower, not faster — 2.0–3× slower at R = 100…1000 and 1.3×
at R = 4000, idle or busy. One thread per process is the default; parallelism across
runs comes from running batches side by side instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

AUTO_THREADS = 1
"""Intra-op threads per process when the user does not choose (measured fastest)."""


@contextmanager
def thread_policy(threads: int | None) -> Iterator[str]:
    """Run the body with ``threads`` intra-op threads (None: AUTO_THREADS), restoring
    torch's setting afterwards; yields a description for meta.json."""
    import torch

    before = torch.get_num_threads()
    chosen = AUTO_THREADS if threads is None else threads
    torch.set_num_threads(chosen)
    how = "auto (measured fastest: docs/performance.md)" if threads is None else "chosen"
    try:
        yield f"{chosen} intra-op thread(s) per process, {how}; torch's default here: {before}"
    finally:
        torch.set_num_threads(before)
