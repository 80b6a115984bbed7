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
