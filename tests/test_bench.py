"""The shipped benchmark suite: plain pytest, and ``gdbench bench`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import gdbench_cli

FAST = ["--epochs", "20", "--benchmark-max-time=0.02", "--benchmark-min-rounds=2"]


def test_suite_runs_under_plain_pytest_with_benchmarks_disabled(tmp_path):
    env = {
        **os.environ,
        "GDBENCH_BENCH_PLUGINS": "sgd,momentum,adam,l1,mse",
        "GDBENCH_BENCH_RUNS": "1,3",
        "GDBENCH_BENCH_EPOCHS": "5",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "gdbench.bench", "--benchmark-disable",
         "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # step and run × 3 optimizers × 2 losses × R in (1, 3)
    assert "24 passed" in proc.stdout


def test_gdbench_bench_writes_json_table_and_parquet(tmp_path):
    proc = gdbench_cli("bench", "-p", "sgd,adam", "--runs", "1,4", "--out", str(tmp_path),
                       *FAST, f"--benchmark-histogram={tmp_path}/hist")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "case_id=cpu-sgd-l1-R4" in proc.stdout and "Name (time in" in proc.stdout
    (out,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    data = json.loads((out / "benchmark.json").read_text())
    assert len(data["benchmarks"]) == 2 * 2 * 2
    extra = data["benchmarks"][0]["extra_info"]
    assert extra["optimizer_dist"] == "gdbench" and extra["device"] == "cpu"
    assert extra["device_name"] and extra["torch_version"] and extra["n_samples"] == 1000
    table = pd.read_parquet(out / "bench.parquet")
    assert len(table) == 8 and (table["median"] > 0).all() and (table["rounds"] >= 2).all()
    assert set(table["what"]) == {"step", "run"} and set(table["runs"]) == {1, 4}
    run = table[(table["what"] == "run") & (table["runs"] == 4)]
    assert (run["us_per_run_epoch"] == 1e6 * run["median"] / 80).all()
    assert "Name (time in" in (out / "benchmark.txt").read_text()
    assert list(tmp_path.glob("hist*.svg"))


def test_compare_with_a_saved_run(tmp_path):
    storage = f"--benchmark-storage=file://{tmp_path}/store"
    first = gdbench_cli("bench", "-p", "sgd", "--out", str(tmp_path / "a"), *FAST,
                        "--benchmark-autosave", storage)  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    second = gdbench_cli("bench", "-p", "sgd", "--out", str(tmp_path / "b"), *FAST,
                         "--benchmark-compare", storage)  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    assert "(NOW)" in second.stdout and "(0001" in second.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["-p", "adma"], "did you mean adam"), (["--runs", "0"], "--runs must list positive")],
)
def test_bench_bad_input(tmp_path, args, fragment):
    proc = gdbench_cli("bench", *args, "--out", str(tmp_path))
    assert proc.returncode == 2 and fragment in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
