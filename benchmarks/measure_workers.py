"""One batch in this process against the same batch on a one-thread Dask worker, four
times interleaved so that both see the same machine (docs/performance.md, "Processes").

Usage: python benchmarks/measure_workers.py

Prints (wall s, CPU s of the running thread) per batch: 666 Adam runs × 300 epochs, on a
worker started as ``gdbench run --workers`` starts them.
"""

import time

_STATE: dict = {}


def one_batch() -> tuple[float, float]:
    """Train the batch once (set up, and warmed up, on first call in each process)."""
    if "batch" not in _STATE:
        import torch

        import gdbench
        from gdbench.engine import make_engines
        from gdbench.plan import build_plan
        from gdbench.plugins import get_plugins
        from gdbench.selection import select

        torch.set_num_threads(1)
        selection = select(get_plugins().registry, "adam")
        specs = build_plan(selection, list(range(666)), ["cpu"], 300, gdbench.Task())
        engine, data = make_engines()["batched"], gdbench.Task().data("cpu")
        engine.run(specs, data)
        _STATE["batch"] = engine, specs, data
    engine, specs, data = _STATE["batch"]
    wall, cpu = time.perf_counter(), time.thread_time()
    engine.run(specs, data)
    return round(time.perf_counter() - wall, 3), round(time.thread_time() - cpu, 3)


def main() -> None:
    from gdbench.executors import DaskExecutor

    executor = DaskExecutor(None, 1)
    try:
        here, there = [], []
        for _ in range(4):
            here.append(one_batch())
            there.append(executor.client.submit(one_batch, pure=False).result())
        print(f"in process: {here}\non the worker: {there}")
    finally:
        executor.close()


if __name__ == "__main__":
    main()
