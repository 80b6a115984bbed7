"""The result tables (``results.py``): the declared columns are the columns written, and
each function that fills the tables, on hand-made runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import make_specs, run_cpu

import gdbench
from gdbench import Task
from gdbench.engine.records import RunResult
from gdbench.results import (
    HISTORY_COLUMNS,
    HISTORY_SCHEMA,
    PER_EPOCH,
    RUNS_COLUMNS,
    RUNS_SCHEMA,
    history_batch,
    history_table,
    run_row,
    runs_table,
)

ENVIRONMENT = {"cpu": {"device_name": "A CPU", "torch_version": "9.9", "gdbench_version": "0.0"}}


def test_the_schemas_declare_each_column_once_with_its_meaning():
    for schema, columns in ((RUNS_SCHEMA, RUNS_COLUMNS), (HISTORY_SCHEMA, HISTORY_COLUMNS)):
        assert tuple(name for name, _ in schema) == columns
        assert len(set(columns)) == len(columns)
        assert all(isinstance(meaning, str) and meaning for _, meaning in schema)
    assert HISTORY_COLUMNS[:2] == ("run_id", "epoch") and set(PER_EPOCH) < set(HISTORY_COLUMNS)


def test_declared_columns_are_the_columns_of_a_fresh_results_folder(tmp_path):
    res = gdbench.run("sgd,adam", epochs=5, seeds=2, device="cpu", out=tmp_path, plot=False)
    runs = pd.read_parquet(res.out_dir / "runs.parquet")
    history = pd.read_parquet(res.out_dir / "history.parquet")
    assert tuple(runs.columns) == RUNS_COLUMNS
    assert tuple(history.columns) == HISTORY_COLUMNS
    assert tuple(pd.read_csv(res.out_dir / "runs.csv", nrows=0).columns) == RUNS_COLUMNS
    assert tuple(res.runs.columns) == RUNS_COLUMNS
    assert tuple(res.history.columns) == HISTORY_COLUMNS
    assert len(runs) == 4 and len(history) == 4 * 5
    assert runs["compiled"].dtype == bool and not runs["compiled"].any()
    assert runs["batch_size"].dtype.kind == "i" and set(runs["batch_size"]) == {2}
    assert list(runs["engine_note"]) == [""] * 4
    assert set(runs["implementation"]) == {"for-loop"}
    assert history["run_id"].dtype == np.int64 and history["epoch"].dtype == np.int64


class AlwaysFails:
    @gdbench.hookimpl
    def gdbench_register_initializers(self, register):
        def broken(weight, bias, generator):
            raise RuntimeError("no start")

        register("broken", broken)


def test_a_sweep_of_failed_runs_still_has_every_column():
    from gdbench.plugins import load_plugins

    ps = load_plugins(extra=[("always-fails", AlwaysFails())])
    # the probe would refuse the initializer's own defaults with a TypeError/ValueError;
    # a RuntimeError passes the probe and fails every run instead
    res = run_cpu("sgd,broken", epochs=5, seeds=2, plugin_set=ps)
    assert list(res.runs["status"]) == ["error", "error"]
    assert tuple(res.runs.columns) == RUNS_COLUMNS and tuple(res.history.columns) == HISTORY_COLUMNS
    assert res.history.empty


@pytest.fixture(scope="module")
def spec(plugin_set):
    (spec,) = make_specs(plugin_set, "adam[betas=0.8:0.9],huber[delta=2],normal", seeds=(5,),
                         epochs=3)  # fmt: skip
    return spec


def result(run_id=0, status="ok", losses=(2.0, 1.0, 0.75), final_loss=0.5, **kw):
    n = len(losses)
    history = {
        "loss": np.array(losses, dtype=float),
        "grad_norm": np.linspace(1.0, 0.5, n),
        "w": np.linspace(0.1, 1.9, n),
        "b": np.linspace(0.2, 2.8, n),
    }
    kw.setdefault("diverged_epoch", n if status == "diverged" else None)
    return RunResult(run_id, status, n, final_loss=final_loss, w=1.9, b=2.8, history=history,
                     setup_s=0.1, train_s=0.3, **kw)  # fmt: skip


def test_run_row(spec):
    r = result(engine="batched", implementation="foreach", batch_size=4, compiled=True,
               engine_note="a note")  # fmt: skip
    row = run_row(spec, r, ENVIRONMENT)
    assert set(row) <= set(RUNS_COLUMNS)
    assert row["run_id"] == 0
    assert (row["optimizer"], row["loss"], row["init"]) == ("adam", "huber", "normal")
    assert json.loads(row["optimizer_params"]) == {"betas": [0.8, 0.9], "eps": 1e-8}  # no lr
    assert json.loads(row["loss_params"]) == {"delta": 2}
    labels = row["optimizer_label"], row["loss_label"], row["init_label"]
    assert labels == ("adam[betas=0.8:0.9]", "huber[delta=2]", "normal")
    assert (row["optimizer_plugin"], row["optimizer_dist"]) == ("builtin_optimizers", "gdbench")
    assert row["init_version"] == gdbench.__version__
    assert (row["lr"], row["seed"], row["device"], row["epochs"]) == (0.01, 5, "cpu", 3)
    assert {k: row[k] for k in Task().as_dict()} == Task().as_dict()
    assert (row["status"], row["error"], row["diverged_epoch"], row["epochs_run"]) == (
        "ok", "", None, 3,
    )  # fmt: skip
    assert (row["final_loss"], row["best_loss"], row["w"], row["b"]) == (0.5, 0.5, 1.9, 2.8)
    assert (row["setup_s"], row["train_s"]) == (0.1, 0.3)
    assert row["epoch_us"] == pytest.approx(1e5)
    assert (row["engine"], row["implementation"], row["batch_size"]) == ("batched", "foreach", 4)
    assert row["compiled"] is True and row["engine_note"] == "a note"
    assert row["device_name"] == "A CPU" and row["torch_version"] == "9.9"
    assert "device_name" not in run_row(spec, r, {})  # no environment for that device


def test_best_loss_is_the_lowest_finite_loss_seen(spec):
    diverged = result(status="diverged", losses=(2.0, 1.0, np.inf), final_loss=np.inf)
    assert run_row(spec, diverged, {})["best_loss"] == 1.0
    assert run_row(spec, result(final_loss=1.5), {})["best_loss"] == 0.75
    failed = RunResult(0, "error", 0, error="RuntimeError: boom")
    row = run_row(spec, failed, {})
    assert np.isnan(row["best_loss"]) and np.isnan(row["epoch_us"]) and row["epochs_run"] == 0
    assert row["error"] == "RuntimeError: boom"


def history_frame(run_id, result, gap=None):
    return history_batch([run_id], [result], [gap])


def test_history_frame():
    frame = history_frame(7, result())
    assert tuple(frame.columns) == HISTORY_COLUMNS
    assert list(frame["run_id"]) == [7, 7, 7] and list(frame["epoch"]) == [1, 2, 3]
    assert frame["run_id"].dtype == np.int64 and frame["epoch"].dtype == np.int64
    for key in PER_EPOCH:
        np.testing.assert_array_equal(frame[key], result().history[key])
    partial = result()
    del partial.history["grad_norm"]
    assert history_frame(7, partial)["grad_norm"].isna().all()
    empty = history_frame(8, RunResult(8, "error", 0))
    assert empty.empty and tuple(empty.columns) == HISTORY_COLUMNS
    both = history_batch([4, 2], [result(), result(losses=(3.0, 2.0))],
                         [np.array([0.5, 0.25, 0.1]), None])  # fmt: skip
    assert list(both["run_id"]) == [4, 4, 4, 2, 2] and list(both["epoch"]) == [1, 2, 3, 1, 2]
    assert list(both["gap"][:3]) == [0.5, 0.25, 0.1] and both["gap"][3:].isna().all()


def test_runs_table_orders_runs_and_columns(spec):
    from dataclasses import replace

    results = [result(run_id=i) for i in (2, 0, 1)]
    rows = [run_row(replace(spec, run_id=r.run_id), r, ENVIRONMENT) for r in results]
    runs = runs_table(rows)
    assert tuple(runs.columns) == RUNS_COLUMNS
    assert list(runs["run_id"]) == [0, 1, 2] and list(runs.index) == [0, 1, 2]
    assert list(runs["final_loss"]) == [0.5] * 3 and list(runs["device_name"]) == ["A CPU"] * 3
    missing = [c for c in RUNS_COLUMNS if c not in rows[0]]  # e.g. without measures
    assert runs[missing].isna().all().all()


def test_runs_table_of_no_runs():
    runs = runs_table([])
    assert runs.empty and tuple(runs.columns) == RUNS_COLUMNS


def test_history_table_concatenates_in_run_order():
    frames = [
        history_frame(2, result(losses=(3.0, 2.0))),
        history_frame(9, RunResult(9, "error", 0)),
        history_frame(0, result()),
    ]
    history = history_table(frames)
    assert tuple(history.columns) == HISTORY_COLUMNS
    assert list(history["run_id"]) == [0, 0, 0, 2, 2] and list(history.index) == list(range(5))
    assert list(history["loss"]) == [2.0, 1.0, 0.75, 3.0, 2.0]


@pytest.mark.parametrize("frames", [[], [history_frame(3, RunResult(3, "error", 0))]])
def test_history_table_of_no_epochs(frames):
    history = history_table(frames)
    assert history.empty and tuple(history.columns) == HISTORY_COLUMNS
    assert history["run_id"].dtype == np.int64 and history["epoch"].dtype == np.int64
    assert all(history[c].dtype == np.float64 for c in HISTORY_COLUMNS[2:])
