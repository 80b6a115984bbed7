"""The shipped benchmark suite: plain pytest, and ``gdbench bench`` end to end.

Every ``gdbench bench`` starts pytest in a subprocess (that is its design), so these tests
run it as few times as they can: once as the installed script (the smoke test, which also
saves a run to compare with), once in process to compare; bad input never reaches pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from helpers import assert_usage_error, gdbench_cli, results_dir

FAST = ["--epochs", "20", "--benchmark-max-time=0.02", "--benchmark-min-rounds=2"]


@pytest.fixture(scope="module")
def saved_bench(tmp_path_factory):
    """``gdbench bench`` as a user runs it, saving its run in a benchmark storage folder."""
    base = tmp_path_factory.mktemp("bench")
    proc = gdbench_cli(
        "bench", "-p", "sgd,adam", "--runs", "1,4", "--device", "cpu", "--out", str(base / "out"),
        *FAST, f"--benchmark-histogram={base}/hist", "--benchmark-autosave",
        f"--benchmark-storage=file://{base}/store",
    )  # fmt: skip
    return base, proc


def test_gdbench_bench_writes_json_table_and_parquet(saved_bench):
    base, proc = saved_bench
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "benchmark 'step, R=4, on cpu" in proc.stdout and "Name (time in" in proc.stdout
    out = results_dir(base / "out")
    assert f"results: {out}" in proc.stdout
    data = json.loads((out / "benchmark.json").read_text())
    assert len(data["benchmarks"]) == 2 * 2 * 2  # step and run × sgd, adam × R in (1, 4)
    extra = data["benchmarks"][0]["extra_info"]
    assert extra["optimizer_dist"] == "gdbench" and extra["device"] == "cpu"
    assert extra["device_name"] and extra["torch_version"] and extra["n_samples"] == 1000
    table = pd.read_parquet(out / "bench.parquet")
    assert len(table) == 8 and (table["median"] > 0).all() and (table["rounds"] >= 2).all()
    assert set(table["what"]) == {"step", "run"} and set(table["runs"]) == {1, 4}
    assert set(table["engine"]) == {"sequential", "batched"}
    run = table[(table["what"] == "run") & (table["runs"] == 4)]
    assert (run["us_per_run_epoch"] == 1e6 * run["median"] / 80).all()
    assert "Name (time in" in (out / "benchmark.txt").read_text()
    assert list(base.glob("hist*.svg"))
    assert sorted(p.name for p in out.iterdir()) == [
        "bench.parquet", "benchmark.json", "benchmark.txt"
    ]  # fmt: skip


@pytest.mark.slow  # several seconds: runs in CI with the other slow tests
def test_compare_with_a_saved_run(saved_bench, cli, tmp_path):
    base, _ = saved_bench
    result = cli("bench", "-p", "sgd", "--device", "cpu", "--out", str(tmp_path), *FAST,
                 "--benchmark-compare", f"--benchmark-storage=file://{base}/store")  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "(NOW)" in result.stdout and "(0001" in result.stdout


def test_suite_runs_under_plain_pytest_with_benchmarks_disabled(tmp_path):
    env = {
        **os.environ,
        "GDBENCH_BENCH_PLUGINS": "sgd,momentum,adam,l1,mse",
        "GDBENCH_BENCH_RUNS": "1,3",
        "GDBENCH_BENCH_EPOCHS": "5",
        "GDBENCH_BENCH_DEVICE": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "gdbench.bench", "--benchmark-disable",
         "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # step and run × 3 optimizers × 2 losses × R in (1, 3)
    assert "24 passed" in proc.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-p", "adma"], "did you mean adam"),
        (["--runs", "0"], "--runs must list whole batch sizes"),
        (["--runs", "1.5"], "--runs must list whole batch sizes, e.g. 1,100; got '1.5'"),
        (["--runs", ""], "--runs has an empty value"),
        (["--runs", "x"], "--runs takes numbers: 'x' is not one"),
        (["--epochs", "0"], "--epochs must be a positive whole number, got 0"),
        (["--n-samples", "0"], "--n-samples must be at least 1, got 0"),
        (["--device", "tpu9"], "unknown device"),
    ],
)
def test_bench_bad_input(cli, tmp_path, args, fragment):
    result = cli("bench", *args, "--out", str(tmp_path / "r"))
    assert_usage_error(result, fragment, tmp_path / "r")
    assert not (tmp_path / "r").exists()  # refused before any folder or pytest


def test_an_option_pytest_rejects_is_a_usage_error(cli, tmp_path):
    result = cli("bench", "-p", "sgd", "--device", "cpu", "--benchmark-sort=nonsense",
                 "--out", str(tmp_path / "out"))  # fmt: skip
    assert result.exit_code == 2
    assert "argument --benchmark-sort: Unacceptable value: 'nonsense'" in result.stdout
    assert list((tmp_path / "out").iterdir()) == []  # no half-made results folder
