"""The batched engine: the same runs as the sequential engine, stacked in one tensor.

Both engines compute a run's loss through the same function (``engine.run_losses``), so on
the CPU they agree bit for bit: the tolerance is zero. (On CUDA, reductions may be split
differently for different batch sizes; there the float32 rounding of a 1000-term mean,
~1e-7 relative per step, is the expected bound.) Every built-in combination in both
engines: ``test_engine_contract.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import EXPLODING_INIT, run_cpu

import gdbench
from gdbench import hookimpl, lazy
from gdbench.engine.batched import COMPILE_MIN_RUNS
from gdbench.plugins import load_plugins


def assert_same_runs(a: gdbench.Results, b: gdbench.Results) -> None:
    cols = ["status", "epochs_run", "final_loss", "w", "b", "diverged_epoch"]
    pd.testing.assert_frame_equal(a.runs[cols], b.runs[cols])
    pd.testing.assert_frame_equal(a.history, b.history)


def test_batch_size_does_not_change_a_run():
    kw = {"epochs": 200, "seeds": 12, "lr": [0.01, 0.02]}
    whole = run_cpu("momentum,adam,huber", **kw)
    split = run_cpu("momentum,adam,huber", max_batch=5, **kw)
    assert set(whole.runs["batch_size"]) == {24} and set(split.runs["batch_size"]) == {5, 4}
    assert_same_runs(whole, split)


def test_runs_on_several_data_seeds_share_a_batch_and_stay_exact():
    """Each run gets its own draw of the data (rows of per-run samples), so data seeds
    stack like any other axis; every run is bit-identical to the sequential engine's and
    to its data seed run alone."""
    kw = {"epochs": 150, "seeds": 2, "lr": [0.01, 0.05], "data_seeds": [0, 3, 7]}
    stacked = run_cpu("sgd,adam,mse,l1", **kw)
    assert set(stacked.runs["batch_size"]) == {3 * 2 * 2}  # data seeds × seeds × lrs
    sequential = run_cpu("sgd,adam,mse,l1", engine="sequential", **kw)
    assert_same_runs(stacked, sequential)
    for seed in kw["data_seeds"]:
        alone = run_cpu("sgd,adam,mse,l1", **{**kw, "data_seeds": [seed]})
        mine = stacked.runs["data_seed"] == seed
        pd.testing.assert_frame_equal(
            stacked.runs.loc[mine, ["final_loss", "w", "b", "gap"]].reset_index(drop=True),
            alone.runs[["final_loss", "w", "b", "gap"]].reset_index(drop=True),
        )


def test_a_diverging_run_leaves_the_others_untouched():
    """Divergence by learning rate (another parameter group) and by initialisation (the
    same parameter tensor as the healthy runs)."""
    alone = run_cpu("sgd,mse,normal", lr=[0.01], seeds=3, epochs=300)
    mixed = run_cpu(f"sgd,mse,normal,{EXPLODING_INIT}", lr=[0.01, 0.05], seeds=3, epochs=300)
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
    sequential = run_cpu(f"sgd,mse,normal,{EXPLODING_INIT}", lr=[0.01, 0.05], seeds=3,
                         epochs=300, engine="sequential")  # fmt: skip
    assert_same_runs(sequential, mixed)


def test_diverged_runs_are_frozen_where_they_diverged():
    res = run_cpu("sgd,mse", lr=[0.05], seeds=2, epochs=200)
    for row in res.runs.itertuples():
        h = res.history[res.history["run_id"] == row.run_id]
        assert row.status == "diverged" and len(h) == row.diverged_epoch == row.epochs_run
        assert row.w == h["w"].iloc[-1] and row.b == h["b"].iloc[-1]


class Unbatchable:
    @hookimpl
    def gdbench_register_optimizers(self, register):
        register("adagrad", lazy("torch.optim:Adagrad"), defaults={"lr": 0.1}, batchable=False)


def test_auto_runs_undeclared_components_one_at_a_time():
    ps = load_plugins(extra=[("unbatchable", Unbatchable())])
    res = run_cpu("adagrad,adam", seeds=2, epochs=20, plugin_set=ps)
    engines = res.runs.groupby("optimizer")["engine"].agg(set)
    assert engines["adagrad"] == {"sequential"} and engines["adam"] == {"batched"}
    assert set(res.runs.groupby("optimizer")["batch_size"].max()) == {1, 2}
    with pytest.raises(gdbench.UsageError, match="not declared batchable") as caught:
        gdbench.run("adagrad", engine="batched", out=None, plugin_set=ps, device="cpu")
    assert caught.value.param == "engine"


def test_progress_counts_runs():
    seen = []
    run_cpu("sgd,adam", seeds=5, epochs=10, max_batch=2, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (10, 10)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 6


@pytest.mark.slow  # several seconds: runs in CI with the other slow tests
def test_compiled_step_gives_the_same_curves_within_float32_rounding():
    kw = {"seeds": COMPILE_MIN_RUNS, "epochs": 40}  # the smallest batch that compiles
    compiled = run_cpu("adam,mse", compile=True, **kw)
    runs = compiled.runs
    note = runs["engine_note"].iloc[0]
    if not runs["compiled"].any() and note.startswith("not compiled:"):
        pytest.skip(f"this platform cannot compile: {note}")
    assert runs["compiled"].dtype == bool and runs["compiled"].all(), note
    assert (runs["engine_note"] == "").all() and set(runs["batch_size"]) == {COMPILE_MIN_RUNS}
    eager = run_cpu("adam,mse", **kw)
    assert not eager.runs["compiled"].any()
    # inductor fuses the arithmetic differently: rounding, not bit-identity
    np.testing.assert_allclose(compiled.history["loss"], eager.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(compiled.runs["w"], eager.runs["w"], rtol=1e-4, atol=1e-5)
