"""Durable results: parts per batch, signals, kills, resume, thinned history."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pandas as pd
import pytest
from helpers import BIN

import gdbench
from gdbench.store import ResultsStore

SWEEP = {"plugins": "sgd,adam,mse", "seeds": 12, "epochs": 150, "device": "cpu",
         "engine": "sequential", "plot": False}  # fmt: skip
HOW_IT_RAN = ["setup_s", "train_s", "epoch_us", "seconds_to_target", "batch_size"]


def _cli(out, *extra):
    return [str(BIN / "gdbench"), "run", "-p", "sgd,adam,mse", "--seeds", "12", "--epochs",
            "150", "--device", "cpu", "--engine", "sequential", "--no-plot", "--out",
            str(out), *extra]  # fmt: skip


def _wait_for_parts(out, proc, count, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        parts = list(out.glob("*/parts/runs-*.parquet"))
        if len(parts) >= count:
            return parts[0].parent.parent
        time.sleep(0.02)
    pytest.fail("the sweep saved no batch in time")


def _same_tables(a: gdbench.Results, b: gdbench.Results) -> None:
    pd.testing.assert_frame_equal(a.runs.drop(columns=HOW_IT_RAN), b.runs.drop(columns=HOW_IT_RAN))
    pd.testing.assert_frame_equal(a.history, b.history)


@pytest.mark.slow  # several seconds: runs in CI with the other slow tests
def test_sigkill_then_resume_gives_the_uninterrupted_tables(tmp_path):
    whole = gdbench.run(**SWEEP, out=tmp_path / "whole")
    proc = subprocess.Popen(_cli(tmp_path / "killed", "--max-batch", "2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    folder = _wait_for_parts(tmp_path / "killed", proc, count=3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (folder / ".runs-00099.parquet.1234.tmp").write_text("left by a kill")
    saved = gdbench.load(folder)  # a folder in any state reads as its saved batches
    assert 3 <= len(saved.runs) < len(whole.runs) and saved.complete is False
    assert len(saved.history) == saved.runs["epochs_run"].sum()

    resumed = gdbench.run(**SWEEP, out=None, resume=folder)
    assert resumed.out_dir == folder and resumed.complete
    _same_tables(whole, resumed)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["complete"] and meta["resumes"][0]["runs_to_compute"] < len(whole.runs)
    assert not list(folder.rglob(".*.tmp")) and not (folder / "parts").exists()
    _same_tables(whole, gdbench.load(folder))


@pytest.mark.slow  # several seconds: runs in CI with the other slow tests
def test_sigterm_saves_the_runs_in_flight_as_interrupted(tmp_path):
    cmd = _cli(tmp_path, "--engine", "batched", "--seeds", "200", "--epochs", "3000")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    while not list(tmp_path.glob("*/data.parquet")) and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # inside the first batch's epochs
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "SIGTERM: stopped" in err and "Traceback" not in err
    (folder,) = tmp_path.iterdir()
    res = gdbench.load(folder)
    interrupted = res.runs[res.runs["status"] == "interrupted"]
    # the whole batch in flight (batches are cut to ~2 s of compute), stopped at one epoch
    assert len(interrupted) == interrupted["batch_size"].iloc[0] and len(interrupted) > 1
    assert interrupted["epochs_run"].nunique() == 1 and interrupted["epochs_run"].max() < 3000
    assert not interrupted["solved"].any()
    assert len(res.history) == res.runs["epochs_run"].sum()
    assert json.loads((folder / "meta.json").read_text())["interrupted"] == "SIGTERM"


def test_resume_refuses_changed_plugin_versions_unless_forced(tmp_path):
    first = gdbench.run(**{**SWEEP, "seeds": 2, "epochs": 10}, out=tmp_path)
    meta_path = first.out_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    for plugin in meta["plugins"]:
        plugin["version"] = "0.0.1"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(gdbench.UsageError, match=r"other plugin versions.*--force") as caught:
        gdbench.run(**{**SWEEP, "seeds": 2, "epochs": 10}, out=None, resume=first.out_dir)
    assert caught.value.param == "resume"
    again = gdbench.run(**{**SWEEP, "seeds": 2, "epochs": 10}, out=None, resume=first.out_dir,
                        force=True)  # fmt: skip
    assert len(again.runs) == len(first.runs)


def test_history_every_k_keeps_the_first_last_and_every_kth_epoch(tmp_path):
    full = gdbench.run("sgd,adam", seeds=2, epochs=25, device="cpu", out=None)
    thin = gdbench.run("sgd,adam", seeds=2, epochs=25, device="cpu", out=tmp_path,
                       history="every:10", plot=False)  # fmt: skip
    assert sorted(set(thin.history["epoch"])) == [1, 11, 21, 25]
    merged = thin.history.merge(full.history, on=["run_id", "epoch"], suffixes=("", "_full"))
    assert (merged["loss"] == merged["loss_full"]).all()
    cols = ["gap", "solved", "epochs_to_target"]  # computed from the full curve
    pd.testing.assert_frame_equal(thin.runs[cols], full.runs[cols])
    none = gdbench.run("sgd", epochs=5, device="cpu", out=tmp_path, history="none", plot=False)
    assert len(none.history) == 0 and len(none.runs) == 1
    with pytest.raises(gdbench.UsageError, match="every:K"):
        gdbench.run("sgd", out=None, history="every:0")


def test_runs_csv_is_readable_before_any_run_finishes(tmp_path):
    ResultsStore(tmp_path, {}, {})
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert runs.empty and list(runs.columns)[:2] == ["run_id", "run_key"]


class RemovesTheFolder:
    """Deletes the results folder after the first run, as a user might by mistake."""

    def __init__(self, parent):
        self.parent = parent

    @gdbench.hookimpl
    def gdbench_run_end(self, run, result):
        import shutil

        for child in self.parent.iterdir():
            shutil.rmtree(child)


def test_a_vanished_results_folder_is_one_line_and_exit_1(cli, tmp_path, monkeypatch):
    from gdbench import plugins

    plugin_set = plugins.load_plugins(extra=[("remover", RemovesTheFolder(tmp_path))])
    monkeypatch.setattr(plugins, "get_plugins", lambda disable=(): plugin_set)
    result = cli("run", "--seeds", "3", "--engine", "sequential", "--epochs", "5",
                 "--out", str(tmp_path))  # fmt: skip
    assert result.exit_code == 1, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("gdbench: error: cannot write results (") and str(tmp_path) in line


def test_gdbench_resume_reads_the_sweep_from_its_folder(cli, tmp_path):
    """`gdbench resume DIR` needs nothing but the folder (its sweep.toml)."""
    first = gdbench.run("sgd,adam", seeds=3, epochs=20, device="cpu", out=tmp_path, plot=False)
    runs = pd.read_parquet(first.out_dir / "runs.parquet")
    kept = runs[runs["optimizer"] == "sgd"]  # as if the sweep had stopped after sgd
    kept.to_parquet(first.out_dir / "runs.parquet", index=False)
    result = cli("resume", str(first.out_dir))
    assert result.exit_code == 0, result.stderr
    meta = json.loads((first.out_dir / "meta.json").read_text())
    assert meta["resumes"][-1]["runs_to_compute"] == 3 and meta["n_runs_saved"] == 6
    again = pd.read_parquet(first.out_dir / "runs.parquet").drop(columns=HOW_IT_RAN)
    pd.testing.assert_frame_equal(again, runs.drop(columns=HOW_IT_RAN))
    assert cli("resume", str(tmp_path / "nowhere")).exit_code == 2
