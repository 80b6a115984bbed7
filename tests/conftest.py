"""Shared fixtures: the real plugin set, and the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [ROOT / "examples" / "gdbench-signsgd", ROOT / "examples" / "gdbench-metrics-log"]


@pytest.fixture(scope="session")
def plugin_set():
    from gdbench.plugins import get_plugins

    return get_plugins()


def gdbench_cli(*args: str, cwd: Path | None = None, timeout: float = 300, env=None):
    """Run the installed ``gdbench`` console script as a user would."""
    return subprocess.run(
        [str(BIN / "gdbench"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


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


@pytest.fixture(scope="session")
def examples_venv(wheel_venv):
    """``wheel_venv`` with the example plugin packages pip-installed into it too (torch is
    installed once, for both)."""
    py = wheel_venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"),
         *map(str, EXAMPLES)],
        check=True, timeout=600,
    )  # fmt: skip
    return wheel_venv
