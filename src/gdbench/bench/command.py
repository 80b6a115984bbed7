"""``gdbench bench``: the shipped suite through pytest-benchmark, in a subprocess.

pytest runs in its own process (``python -m pytest --pyargs gdbench.bench``) rather than
through repeated in-process ``pytest.main()`` calls, which leak state between runs. Its
output is shown as it comes and kept in the results folder; every option gdbench does not
know is passed to pytest unchanged, so pytest-benchmark's ``--benchmark-compare``,
``--benchmark-autosave``, ``--benchmark-histogram``, ``--benchmark-sort`` and the rest
work as their documentation says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .config import BenchConfig

if TYPE_CHECKING:
    import pandas as pd

GROUP_BY = "group"
"""One table per thing timed × R × device (set by the suite); rows compare components."""
PYTEST_USAGE_ERROR = 4
COLUMNS = "min,median,mean,stddev,rounds"
TABLE_FILE = "benchmark.txt"
JSON_FILE = "benchmark.json"
PARQUET_FILE = "bench.parquet"


def check(config: BenchConfig, extra: list[str]) -> None:
    """Reject bad input before starting pytest, with the same errors as ``gdbench run``."""
    import importlib.util

    if any(a.startswith("--benchmark-histogram") for a in extra) and not (
        importlib.util.find_spec("pygal")
    ):
        raise UsageError("--benchmark-histogram needs pygal: pip install 'gdbench[histogram]'")
    from ..devices import resolve_devices
    from ..plugins import get_plugins
    from ..selection import select
    from ..task import Task

    if config.epochs < 1:
        raise UsageError(f"must be a positive whole number, got {config.epochs}", param="epochs")
    if not config.runs or min(config.runs) < 1:
        raise UsageError(
            f"must list positive batch sizes, e.g. 1,100; got {config.runs}", param="runs"
        )
    Task(n_samples=config.n_samples)
    select(get_plugins().registry, config.plugins)
    resolve_devices(config.device)


def pytest_command(out_dir: Path, extra: list[str], ini: Path) -> list[str]:
    """The pytest invocation; the user's options come last and win."""
    has = {a.split("=")[0] for a in extra}
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "gdbench.bench", "-p", "no:cacheprovider"]
    cmd += ["-c", str(ini), "--rootdir", str(out_dir)]
    cmd += ["--benchmark-json", str(out_dir / JSON_FILE)]
    if "--benchmark-group-by" not in has:
        cmd += ["--benchmark-group-by", GROUP_BY]
    if "--benchmark-columns" not in has:
        cmd += ["--benchmark-columns", COLUMNS]
    return [*cmd, *extra]


def run_bench(config: BenchConfig, out_dir: Path, extra: list[str]) -> int:
    """Run the suite, keep its table and JSON, write bench.parquet; pytest's exit code.

    An option pytest refuses is a usage error (2), and the results folder, which would
    hold only pytest's complaint, is removed."""
    import shutil
    import tempfile

    env = {**os.environ, **config.environ(), "PYTHONUNBUFFERED": "1"}
    # an empty config file, outside the results: the user's own pytest.ini / pyproject
    # options must not leak in, and the results folder holds only results
    with tempfile.TemporaryDirectory(prefix="gdbench-bench-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        code = _run_pytest(pytest_command(out_dir, extra, ini), env, out_dir / TABLE_FILE)
    if code == PYTEST_USAGE_ERROR:  # an option pytest did not accept: a usage error here too
        shutil.rmtree(out_dir, ignore_errors=True)
        return 2
    json_path = out_dir / JSON_FILE
    if json_path.exists():
        write_parquet(json_path, out_dir / PARQUET_FILE)
    return code


def _run_pytest(cmd: list[str], env: dict[str, str], table_path: Path) -> int:
    """Run pytest, showing its output as it comes and keeping it in ``table_path``."""
    with open(table_path, "w") as table:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            table.write(line)
        return proc.wait()


def write_parquet(json_path: Path, parquet_path: Path) -> None:
    from ..store import atomic_write

    frame = bench_table(json.loads(json_path.read_text()))
    atomic_write(parquet_path, lambda p: frame.to_parquet(p, index=False))


def bench_table(data: dict[str, Any]) -> pd.DataFrame:
    """One row per benchmark: name, group, timing statistics (seconds), extra_info."""
    import pandas as pd

    stats = ("min", "max", "mean", "stddev", "median", "iqr", "ops", "rounds", "iterations")
    rows = []
    for b in data.get("benchmarks", []):
        row = {"name": b["name"], "fullname": b["fullname"], "group": b.get("group")}
        row.update({k: b["stats"].get(k) for k in stats})
        row.update(b.get("extra_info", {}))
        run_epochs = row.get("runs", 1) * row.get("epochs", 1)
        row["us_per_run_epoch"] = 1e6 * row["median"] / run_epochs if run_epochs else None
        row["datetime"] = data.get("datetime")
        rows.append(row)
    return pd.DataFrame(rows)
