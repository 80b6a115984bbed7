"""The example plugin packages, pip-installed beside a gdbench wheel in a fresh venv:
listed with their version, selected on the command line, switched off, and their own
test suites (which use the conformance kit through its pytest11 entry point) pass."""

from __future__ import annotations

import json
import os
import subprocess

import pandas as pd
import pytest
from helpers import EXAMPLES


def cli(venv_dir, *args, cwd, env=None):
    return subprocess.run(
        [str(venv_dir / "bin" / "gdbench"), *args],
        capture_output=True, text=True, timeout=300, cwd=cwd, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.mark.slow
def test_installed_example_is_listed_with_its_version(examples_venv, tmp_path):
    listing = cli(examples_venv, "plugins", "--json", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    plugins = {p["name"]: p for p in json.loads(listing.stdout)}
    sign = plugins["signsgd"]
    assert (sign["dist"], sign["version"], sign["error"]) == ("gdbench-signsgd", "0.1.0", None)
    assert {(c["kind"], c["name"], c["batchable"]) for c in sign["components"]} == {
        ("optimizer", "signsgd", True), ("optimizer", "lion", True),
        ("loss", "cauchy", True), ("loss", "quantile", True), ("init", "lecun", False),
    }  # fmt: skip
    log = plugins["metrics_log"]
    assert (log["dist"], log["hooks"]) == ("gdbench-metrics-log", ["gdbench_results_ready"])
    checked = cli(examples_venv, "plugins", "--check", cwd=tmp_path)  # lazy targets import
    assert checked.returncode == 0, checked.stderr


@pytest.mark.slow
def test_run_compares_sgd_with_the_example_optimizer(examples_venv, tmp_path):
    run = cli(
        examples_venv, "run", "--plugins", "sgd,signsgd", "--epochs", "60", "--out", "res",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (out,) = (tmp_path / "res").iterdir()
    runs = pd.read_parquet(out / "runs.parquet").set_index("optimizer")
    assert list(runs.index) == ["sgd", "signsgd"] and (runs["status"] == "ok").all()
    assert runs.loc["signsgd", ["optimizer_dist", "optimizer_version"]].tolist() == [
        "gdbench-signsgd",
        "0.1.0",
    ]
    assert runs.loc["sgd", "optimizer_dist"] == "gdbench"
    assert "signsgd" in run.stdout  # the comparison table
    # the metrics logger, installed, wrote one line per run per epoch
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 * 60 and json.loads(lines[-1])["optimizer_label"] == "signsgd"

    off = cli(
        examples_venv, "--disable-plugin", "metrics_log", "run", "--epochs", "5", "--out", "off",
        cwd=tmp_path,
    )  # fmt: skip
    assert off.returncode == 0, off.stderr
    (out,) = (tmp_path / "off").iterdir()
    assert (out / "runs.parquet").exists() and not (out / "metrics.jsonl").exists()

    only = cli(
        examples_venv, "run", "-p", "signsgd", "--out", "x", cwd=tmp_path,
        env={"GDBENCH_PLUGINS": "metrics_log"},
    )  # fmt: skip
    assert only.returncode == 2 and "unknown plugin component 'signsgd'" in only.stderr


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_test_suite_passes_against_the_installed_packages(examples_venv, example):
    proc = subprocess.run(
        [str(examples_venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=300, cwd=example,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout and "failed" not in proc.stdout
