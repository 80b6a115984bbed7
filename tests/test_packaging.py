"""A real wheel, installed with its dependencies into a fresh virtual environment."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory):
    """A new venv with gdbench installed from a freshly built wheel (not editable)."""
    base = tmp_path_factory.mktemp("wheel")
    wheels = base / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("gdbench-*.whl")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), str(wheel)],
        check=True,
        timeout=900,
    )
    return env_dir


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
