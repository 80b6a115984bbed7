"""µs per run-epoch of a batched sweep with N intra-op threads (docs/performance.md).

Usage: python benchmarks/measure_threads.py THREADS RUNS
"""

import sys
import time

import torch

import gdbench

if __name__ == "__main__":
    threads, runs = int(sys.argv[1]), int(sys.argv[2])
    gdbench.run("adam", seeds=8, epochs=20, out=None, device="cpu", threads=threads)  # warm-up
    torch.set_num_threads(threads)
    start = time.perf_counter()
    gdbench.run("adam", seeds=runs, epochs=200, out=None, device="cpu", threads=threads)
    elapsed = time.perf_counter() - start
    print(f"threads={threads} R={runs}: {1e6 * elapsed / (runs * 200):.2f} µs per run-epoch")
