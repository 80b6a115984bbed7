"""The 1,350-run sweep of the performance target, end to end through the console script.

3 optimizers × 3 losses × 3 initializers × 5 learning rates × 10 seeds, 500 epochs. The
same configurations with seed 0 are then run with ``--engine sequential`` and compared:
the batched engine must give the very same numbers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

GDBENCH = str(Path(sys.executable).parent / "gdbench")
SWEEP = ["-p", "sgd,momentum,adam,l1,mse,huber,default,xavier,kaiming",
         "--lr", "0.001,0.003,0.01,0.02,0.03", "--epochs", "500"]  # fmt: skip


def gdbench_run(out: Path, *extra: str) -> pd.DataFrame:
    subprocess.run([GDBENCH, "run", *SWEEP, *extra, "--out", str(out)], check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    (folder,) = out.iterdir()
    return pd.read_parquet(folder / "runs.parquet")


def test_sweep_1350_runs(benchmark, tmp_path):
    outs = iter(range(100))
    runs = benchmark.pedantic(
        lambda: gdbench_run(tmp_path / f"batched{next(outs)}", "--seeds", "10"),
        rounds=1, iterations=1,
    )  # fmt: skip
    benchmark.extra_info.update(runs=len(runs), engine="auto (batched)", end_to_end=True)
    assert len(runs) == 1350 and set(runs["engine"]) == {"batched"}

    sample = gdbench_run(tmp_path / "sequential", "--seeds", "1", "--engine", "sequential")
    keys = ["optimizer", "loss", "init", "lr", "seed"]
    batched = runs.set_index(keys).loc[sample.set_index(keys).index]
    cols = ["status", "final_loss", "w", "b", "epochs_run"]
    pd.testing.assert_frame_equal(sample.set_index(keys)[cols], batched[cols])
