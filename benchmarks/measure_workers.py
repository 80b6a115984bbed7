"""One batch in process against two batches on two Dask workers at once
(docs/performance.md, "Processes"). Usage: python benchmarks/measure_workers.py"""

import time


def main() -> None:
    import torch

    import gdbench
    from gdbench.engine import make_engines
    from gdbench.engine.schedule import make_batches
    from gdbench.executors import DaskExecutor, run_batch
    from gdbench.plan import build_plan
    from gdbench.plugins import get_plugins
    from gdbench.selection import select

    selection = select(get_plugins().registry, "adam")
    specs = build_plan(selection, list(range(1332)), ["cpu"], 500, gdbench.Task())
    batches = make_batches(specs, make_engines(), "auto", 666)
    torch.set_num_threads(1)
    engine, data = make_engines()["batched"], gdbench.Task().data("cpu")
    for round_ in range(2):
        start = time.perf_counter()
        engine.run(batches[0].specs, data)
        print(f"in process, round {round_}: {time.perf_counter() - start:.2f} s per batch")
    executor = DaskExecutor(None, 2)
    try:
        for round_ in range(2):  # the first round includes each worker's warm-up
            start = time.perf_counter()
            futures = [executor.client.submit(run_batch, b, False, 1, "no-stop", 1e-4,
                                              pure=False) for b in batches]  # fmt: skip
            executor.client.gather(futures)
            print(f"two workers, round {round_}: {time.perf_counter() - start:.2f} s for two")
    finally:
        executor.close()


if __name__ == "__main__":
    main()
