"""The batched engine: the same runs as the sequential engine, stacked in one tensor.

Both engines compute a run's loss through the same function (``engine.run_losses``), so on
the CPU they agree bit for bit: the tolerance is zero. (On CUDA, reductions may be split
differently for different batch sizes; there the float32 rounding of a 1000-term mean,
~1e-7 relative per step, is the expected bound.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import gdbench_cli

import gdbench
from gdbench import hookimpl, lazy
from gdbench.plugins import load_plugins

INITS = "default,uniform,normal,zeros,xavier,kaiming"


def run(plugins, **kw):
    kw.setdefault("out", None)
    kw.setdefault("device", "cpu")
    return gdbench.run(plugins, **kw)


def assert_same_runs(a: gdbench.Results, b: gdbench.Results) -> None:
    cols = ["status", "epochs_run", "final_loss", "w", "b", "diverged_epoch"]
    pd.testing.assert_frame_equal(a.runs[cols], b.runs[cols])
    pd.testing.assert_frame_equal(a.history, b.history)


def test_every_builtin_combination_is_identical_in_both_engines():
    plugins = f"sgd,momentum,momentum[nesterov=true],adam,l1,mse,huber,{INITS}"
    kw = {"epochs": 100, "seeds": 3, "lr": [0.01, 0.03]}
    seq = run(plugins, engine="sequential", **kw)
    bat = run(plugins, engine="batched", **kw)
    assert len(seq.runs) == 4 * 3 * 6 * 3 * 2
    assert set(seq.runs["engine"]) == {"sequential"} and set(bat.runs["engine"]) == {"batched"}
    assert_same_runs(seq, bat)


def test_batch_size_does_not_change_a_run():
    kw = {"epochs": 200, "seeds": 12, "lr": [0.01, 0.02]}
    whole = run("momentum,adam,huber", **kw)
    split = run("momentum,adam,huber", max_batch=5, **kw)
    assert_same_runs(whole, split)


def test_a_diverging_run_leaves_the_others_untouched():
    """Divergence by learning rate (another parameter group) and by initialisation (the
    same parameter tensor as the healthy runs)."""
    blow_up = "uniform[low=1e20;high=2e20]"
    alone = run("sgd,mse,normal", lr=[0.01], seeds=3, epochs=300)
    mixed = run(f"sgd,mse,normal,{blow_up}", lr=[0.01, 0.05], seeds=3, epochs=300)
    runs = mixed.runs
    healthy = runs[(runs["lr"] == 0.01) & (runs["init"] == "normal")]
    assert len(healthy) == 3 and (healthy["status"] == "ok").all()
    pd.testing.assert_frame_equal(
        alone.history.drop(columns="run_id").reset_index(drop=True),
        mixed.history[mixed.history["run_id"].isin(healthy["run_id"])]
        .drop(columns="run_id")
        .reset_index(drop=True),
    )
    np.testing.assert_array_equal(alone.runs["w"], healthy["w"])
    bad = runs[runs["status"] == "diverged"]
    assert set(bad["lr"]) == {0.01, 0.05} and len(bad) == 3 * 3
    assert set(bad[bad["init"] == "uniform"]["diverged_epoch"]) == {1}
    sequential = run(f"sgd,mse,normal,{blow_up}", lr=[0.01, 0.05], seeds=3, epochs=300,
                     engine="sequential")  # fmt: skip
    assert_same_runs(sequential, mixed)


def test_diverged_runs_are_frozen_where_they_diverged():
    res = run("sgd,mse", lr=[0.05], seeds=2, epochs=200)
    for row in res.runs.itertuples():
        h = res.history[res.history["run_id"] == row.run_id]
        assert row.status == "diverged" and len(h) == row.diverged_epoch
        assert row.w == h["w"].iloc[-1] and row.b == h["b"].iloc[-1]


class Unbatchable:
    @hookimpl
    def gdbench_register_optimizers(self, register):
        register("adagrad", lazy("torch.optim:Adagrad"), defaults={"lr": 0.1}, batchable=False)


def test_auto_runs_undeclared_components_one_at_a_time():
    ps = load_plugins(extra=[("unbatchable", Unbatchable())])
    res = gdbench.run("adagrad,adam", seeds=2, epochs=20, out=None, plugin_set=ps, device="cpu")
    engines = res.runs.groupby("optimizer")["engine"].agg(set)
    assert engines["adagrad"] == {"sequential"} and engines["adam"] == {"batched"}
    with pytest.raises(gdbench.UsageError, match="not declared batchable"):
        gdbench.run("adagrad", engine="batched", out=None, plugin_set=ps, device="cpu")


def test_progress_counts_runs():
    seen = []
    run("sgd,adam", seeds=5, epochs=10, max_batch=2, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (10, 10)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 6


def test_compiled_step_gives_the_same_curves_within_float32_rounding():
    eager = run("adam,mse", seeds=300, epochs=40)
    compiled = run("adam,mse", seeds=300, epochs=40, compile=True)
    impl = compiled.runs["implementation"].iloc[0]
    assert "compiled" in impl  # "compiled", or "not compiled: <why>" with an eager fallback
    # inductor fuses the arithmetic differently: rounding, not bit-identity
    np.testing.assert_allclose(compiled.history["loss"], eager.history["loss"], rtol=1e-4)


def test_small_batches_stay_eager_under_compile(tmp_path):
    proc = gdbench_cli("run", "-p", "sgd", "--seeds", "3", "--epochs", "20", "--compile",
                       "--out", str(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "note: eager: batches under 256 runs gain nothing from compile" in proc.stdout


def test_engine_options_on_the_command_line(tmp_path):
    proc = gdbench_cli("run", "--engine", "warp", "--out", str(tmp_path))
    assert proc.returncode == 2 and "--engine 'warp' is unknown" in proc.stderr
    proc = gdbench_cli("run", "--max-batch", "0", "--out", str(tmp_path))
    assert proc.returncode == 2 and "--max-batch must be at least 1" in proc.stderr
    proc = gdbench_cli("run", "-p", "sgd,adam", "--seeds", "3", "--epochs", "50",
                       "--engine", "sequential", "--out", str(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (out,) = tmp_path.iterdir()
    assert set(pd.read_parquet(out / "runs.parquet")["engine"]) == {"sequential"}
