"""The log written by a real sweep matches gdbench's own history table."""

import json

import gdbench
import pandas as pd
import pytest

import gdbench_metrics_log


def test_one_line_per_run_per_epoch_matching_history(gdbench_plugin_set, tmp_path):
    plugin_set = gdbench_plugin_set(gdbench_metrics_log)
    res = gdbench.run(
        "sgd,adam", epochs=12, seeds=2, out=tmp_path, plot=False, plugin_set=plugin_set
    )
    lines = (res.out_dir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4 * 12
    history = pd.read_parquet(res.out_dir / "history.parquet").set_index(["run_id", "epoch"])
    for rec in records:
        expected = history.loc[(rec["run_id"], rec["epoch"]), "loss"]
        assert rec["loss"] == pytest.approx(expected, rel=1e-13)  # 15 significant digits
    assert {(r["optimizer_label"], r["seed"]) for r in records} == {
        ("sgd", 0), ("sgd", 1), ("adam", 0), ("adam", 1)
    }  # fmt: skip


def test_nothing_is_written_for_an_in_memory_sweep(gdbench_plugin_set, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gdbench.run("sgd", epochs=3, out=None, plugin_set=gdbench_plugin_set(gdbench_metrics_log))
    assert list(tmp_path.iterdir()) == []
