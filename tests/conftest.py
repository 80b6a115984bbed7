"""Shared fixtures: the real plugin set, and the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


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
