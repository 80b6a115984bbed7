"""A real wheel, installed with its dependencies into a fresh virtual environment
(the ``wheel_venv`` fixture in conftest.py)."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
from helpers import ROOT


@pytest.mark.slow
def test_wheel_has_the_console_script_and_every_builtin_plugin(wheel_venv, tmp_path):
    gdbench = wheel_venv / "bin" / "gdbench"
    listing = subprocess.run(
        [str(gdbench), "plugins", "--json"], capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    plugins = {p["name"]: p for p in json.loads(listing.stdout)}
    for name in ("builtin_optimizers", "builtin_losses", "builtin_initializers"):
        assert plugins[name]["dist"] == "gdbench" and plugins[name]["error"] is None
    # the code runs from the wheel's site-packages, not from this checkout
    code = "import gdbench_plugins; print(gdbench_plugins.__file__)"
    where = subprocess.run(
        [str(wheel_venv / "bin" / "python"), "-c", code],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    assert "site-packages" in where.stdout and str(ROOT) not in where.stdout
    run = subprocess.run(
        [str(gdbench), "run", "--plugins", "sgd,adam", "--epochs", "20", "--out", "res"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (out,) = (tmp_path / "res").iterdir()
    assert len(pd.read_parquet(out / "runs.parquet")) == 2
    assert (out / "report.html").is_file(), run.stderr  # its template is in the wheel
