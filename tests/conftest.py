"""Fixtures shared by the test modules (plain helpers are in helpers.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv

import pytest
from helpers import EXAMPLES, ROOT


@pytest.fixture(scope="session")
def plugin_set():
    """The installed plugins, as ``gdbench.run`` finds them."""
    from gdbench.plugins import get_plugins

    return get_plugins()


@pytest.fixture
def fresh_plugins():
    """Forget the plugins ``get_plugins()`` cached, before and after the test: for tests
    that change what is installed (``sys.path``), which its cache key does not include."""
    from gdbench.plugins import _cached_plugins

    _cached_plugins.cache_clear()
    yield
    _cached_plugins.cache_clear()


@pytest.fixture
def cli(monkeypatch):
    """``cli(*args, env=None)`` runs the gdbench command line in this process with typer's
    CliRunner and returns its result (``exit_code``, ``stdout``, ``stderr`` apart).

    The plugin-choice variables start unset, and each invocation restores them afterwards:
    ``--disable-plugin`` sets one for the rest of the process, which must not reach the
    next invocation or test.
    """
    from typer.testing import CliRunner

    from gdbench.cli import app
    from gdbench.plugins import DISABLE_ENV, ONLY_ENV, RAISE_ENV

    for name in (ONLY_ENV, DISABLE_ENV, RAISE_ENV):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str | None] | None = None):
        restore = {name: os.environ.get(name) for name in (ONLY_ENV, DISABLE_ENV)}
        return runner.invoke(app, list(args), env={**restore, **(env or {})},
                             catch_exceptions=False)  # fmt: skip

    return invoke


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
