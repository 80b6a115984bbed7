"""Sweep options that shape how a sweep runs: threads, repeated -p, the help text."""

from __future__ import annotations

import json

import pandas as pd
import torch
from helpers import results_dir

import gdbench


def test_one_intra_op_thread_during_the_sweep_then_restored(tmp_path):
    before = torch.get_num_threads()
    res = gdbench.run("sgd", epochs=3, out=tmp_path, device="cpu", plot=False)
    machine = json.loads((res.out_dir / "meta.json").read_text())["machine"]
    assert machine["torch_threads"] == 1 and "auto" in machine["thread_policy"]
    assert torch.get_num_threads() == before
    res = gdbench.run("sgd", epochs=3, out=tmp_path, device="cpu", plot=False, threads=2)
    machine = json.loads((res.out_dir / "meta.json").read_text())["machine"]
    assert machine["torch_threads"] == 2 and "chosen" in machine["thread_policy"]


def test_repeated_plugins_options_add_up(cli, tmp_path):
    result = cli("run", "-p", "sgd", "-p", "adam", "-p", "mse", "--epochs", "5",
                 "--out", str(tmp_path), "--no-plot")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    runs = pd.read_parquet(results_dir(tmp_path) / "runs.parquet")
    assert list(runs["optimizer"]) == ["sgd", "adam"] and set(runs["loss"]) == {"mse"}


def test_help_shows_the_bracket_grammar_literally(cli):
    result = cli("run", "--help")
    text = " ".join(result.stdout.split())
    assert "'adam[lr=0.001,0.01;betas=0.9:0.99]'" in text
    assert "'loss:huber[delta=0.5]'" in text


HOW_IT_RAN = ["setup_s", "train_s", "epoch_us", "seconds_to_target"]


def test_config_round_trips_through_the_results_folder(cli, tmp_path):
    first = cli("run", "-p", "sgd,adam", "-p", "mse", "--seeds", "2", "--data-seeds", "2",
                "--epochs", "40", "--lr", "0.01,0.02", "--history", "every:5", "--no-plot",
                "--out", str(tmp_path / "a"))  # fmt: skip
    assert first.exit_code == 0, first.stderr
    folder = results_dir(tmp_path / "a")
    again = cli("run", "--config", str(folder / "sweep.toml"), "--out", str(tmp_path / "b"))
    assert again.exit_code == 0, again.stderr
    a = pd.read_parquet(folder / "runs.parquet").drop(columns=HOW_IT_RAN)
    b = pd.read_parquet(results_dir(tmp_path / "b") / "runs.parquet").drop(columns=HOW_IT_RAN)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 2 * 2 * 2 * 2  # optimizers x lrs x seeds x data seeds


def test_the_command_line_wins_over_the_config_file(cli, tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text('[run]\nplugins = ["sgd", "adam"]\nepochs = 30\nseeds = [3, 4]\n')
    result = cli("run", "--config", str(config), "--epochs", "7", "--out", str(tmp_path),
                 "--no-plot")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    runs = pd.read_parquet(results_dir(tmp_path) / "runs.parquet")
    assert set(runs["epochs"]) == {7} and sorted(set(runs["seed"])) == [3, 4]
    assert list(dict.fromkeys(runs["optimizer"])) == ["sgd", "adam"]


def test_a_bad_config_file_is_one_line(cli, tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text("[run]\nepoch = 5\n")
    result = cli("run", "--config", str(config), "--out", str(tmp_path / "r"))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert "unknown option 'epoch'; did you mean 'epochs'?" in line
    config.write_text("[run\n")
    assert "is not valid TOML" in cli("run", "--config", str(config)).stderr


def test_a_sweep_that_cannot_fit_is_refused_before_anything_starts(cli, tmp_path):
    """Ten million runs are judged from the selection alone, before any is planned."""
    result = cli("run", "-p", "sgd,adam", "--seeds", "10000000", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert "this sweep needs ~" in line and "--history every:K" in line
    assert not (tmp_path / "r").exists()


def test_the_estimate_of_a_long_sweep_comes_from_a_probe():
    from gdbench.estimate import estimate
    from gdbench.options import SweepOptions
    from gdbench.plugins import get_plugins
    from gdbench.selection import select

    options = SweepOptions.from_arguments("adam", seeds=20_000, history="every:10")
    plan = estimate(select(get_plugins().registry, "adam"), options, ["cpu"])
    assert plan.runs == 20_000 and plan.history_rows == 20_000 * 51
    assert plan.seconds is not None and plan.seconds > 0
    assert "20,000 runs × 500 epochs: about" in plan.describe()
    small = SweepOptions.from_arguments("adam", seeds=3)
    assert estimate(select(get_plugins().registry, "adam"), small, ["cpu"]).seconds is None
