"""Benchmarks report µs per run-epoch and the ratio to the notebook loop of the same session.

Each benchmark sets ``benchmark.extra_info["run_epochs"]`` (runs × epochs done per call);
the notebook loop's ``extra_info["baseline"] = True``. The summary below divides.
"""

from __future__ import annotations

import pytest


def pytest_configure(config):
    config._gdbench_rows = []


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config, benchmarks, output_json):
    for bench in output_json["benchmarks"]:
        extra = bench.get("extra_info", {})
        if "run_epochs" in extra:
            extra["us_per_run_epoch"] = 1e6 * bench["stats"]["median"] / extra["run_epochs"]


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    benches = [b for b in getattr(session, "benchmarks", []) if b.stats and b.stats.rounds]
    rows = []
    for b in benches:
        run_epochs = b.extra_info.get("run_epochs")
        if run_epochs:
            rows.append((b.name, 1e6 * b.stats.median / run_epochs, b.extra_info.get("baseline")))
    baseline = [us for _, us, is_base in rows if is_base]
    if not rows or not baseline:
        return
    base = baseline[0]
    tr = terminalreporter
    tr.write_sep("-", "µs per run-epoch (median) and speed-up over the notebook loop")
    for name, us, _ in sorted(rows, key=lambda r: -r[1]):
        tr.write_line(f"{name:<60} {us:10.2f} µs   {base / us:8.2f}×")
