"""Performance profiles (``profiles.py``): checked against a direct computation from the
runs table of a real sweep, and on hand-made tables for the edge cases."""

from __future__ import annotations

import inspect
import math
from statistics import median

import numpy as np
import pandas as pd
import pytest
from helpers import results_dir

from gdbench.profiles import (
    PROFILES_SCHEMA,
    TAU_SCORE,
    compute_profiles,
    n_workloads,
    plot_profiles,
    scores,
    write_profiles,
)

INF = math.inf


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """3 optimizers × 3 losses × 5 data seeds × 2 run seeds, short and with a loose target,
    so that some configurations reach it and some do not; written to a folder (~5 s)."""
    import gdbench

    parent = tmp_path_factory.mktemp("profiles")
    quiet = {"report": False} if "report" in inspect.signature(gdbench.run).parameters else {}
    gdbench.run("sgd,momentum,adam[lr=0.1],loss:l1,loss:mse,loss:huber", data_seeds=5, seeds=2,
                epochs=100, target=1e-2, device="cpu", out=parent, **quiet)  # fmt: skip
    return results_dir(parent)


def direct_profile(runs: pd.DataFrame, measure: str, tau: float) -> dict[tuple[str, str], float]:
    """rho(tau) per (device, optimizer) straight from the definition, in plain Python."""
    column = {"epochs": "epochs_to_target", "seconds": "seconds_to_target"}[measure]
    t: dict[tuple, list[float]] = {}
    for row in runs.itertuples():
        time = getattr(row, column) if row.solved else INF
        t.setdefault((row.device, row.optimizer_label, row.loss_label, row.data_seed), []).append(
            INF if time != time else time  # NaN: never
        )
    med = {key: median(values) for key, values in t.items()}
    rho = {}
    for device, opt in {(k[0], k[1]) for k in med}:
        workloads = {(k[2], k[3]) for k in med if k[0] == device}
        within = 0
        for loss, seed in workloads:
            best = min(v for k, v in med.items() if (k[0], k[2], k[3]) == (device, loss, seed))
            mine = med.get((device, opt, loss, seed), INF)
            within += math.isfinite(mine) and mine <= tau * best
        rho[device, opt] = within / len(workloads)
    return rho


def test_profiles_parquet_matches_a_direct_computation_from_the_runs(sweep):
    runs = pd.read_parquet(sweep / "runs.parquet")
    profiles = pd.read_parquet(sweep / "profiles.parquet")
    assert list(profiles.columns) == [name for name, _ in PROFILES_SCHEMA]
    assert (sweep / "profiles.png").stat().st_size > 10_000
    assert runs["solved"].any() and not runs["solved"].all()  # the profile says something
    taus = sorted(set(profiles["tau"]))
    assert taus[0] == 1.0 and TAU_SCORE in taus
    # one row per (configuration, tau) per device and measure
    key = ["configuration", "device", "measure", "tau"]
    assert not profiles.duplicated(key).any()
    assert len(profiles) == 3 * len(taus) * 1 * 2
    assert set(profiles["workloads"]) == {15}
    assert profiles["rho"].between(0, 1).all()
    for _, curve in profiles.groupby(["configuration", "device", "measure"]):
        assert curve["rho"].is_monotonic_increasing
    for measure in ("epochs", "seconds"):
        for tau in taus:
            expected = direct_profile(runs, measure, tau)
            got = profiles[(profiles["measure"] == measure) & (profiles["tau"] == tau)]
            got = {(r.device, r.optimizer_label): r.rho for r in got.itertuples()}
            assert got == pytest.approx(expected), (measure, tau)


def test_score_is_the_normalised_area_under_the_profile(sweep):
    profiles = pd.read_parquet(sweep / "profiles.parquet")
    fine = np.linspace(1, TAU_SCORE, 30_001)
    dense = compute_profiles(pd.read_parquet(sweep / "runs.parquet"), taus=fine)
    for (_, _, _), curve in dense.groupby(["configuration", "device", "measure"]):
        area = np.trapezoid(curve["rho"], curve["tau"]) / (TAU_SCORE - 1)
        assert curve["score"].iloc[0] == pytest.approx(area, abs=1e-3)
    table = scores(profiles)
    assert len(table) == 3 * 2 and table["score"].between(0, 1).all()


def runs_frame(rows, **constant):
    """A runs table of (optimizer_label, loss_label, data_seed, seed, solved, epochs)."""
    base = {"lr": 0.01, "init_label": "default", "device": "cpu", "n_samples": 1000}
    fields = ("optimizer_label", "loss_label", "data_seed", "seed", "solved", "epochs_to_target")
    frame = pd.DataFrame([{**base, **constant, **dict(zip(fields, r, strict=True))} for r in rows])
    return frame.assign(seconds_to_target=frame["epochs_to_target"] / 1000)


def rho_at(profiles, tau, measure="epochs"):
    got = profiles[(profiles["tau"] == tau) & (profiles["measure"] == measure)]
    return dict(zip(got["configuration"], got["rho"], strict=True))


def test_unsolved_runs_count_as_infinite_and_seeds_by_their_median():
    runs = runs_frame(
        [
            ("a", "l1", 0, 0, True, 10.0),
            ("a", "l1", 0, 1, False, np.nan),  # median of (10, ∞) is ∞: a fails l1
            ("b", "l1", 0, 0, True, 30.0),
            ("b", "l1", 0, 1, True, 50.0),  # median 40
            ("a", "mse", 0, 0, True, 20.0),
            ("a", "mse", 0, 1, True, 20.0),
            ("a", "mse", 0, 2, True, 90.0),  # median 20
            ("b", "mse", 0, 0, True, 25.0),
            ("c", "l1", 0, 0, False, 5.0),  # not solved: its time does not count
            ("c", "mse", 0, 0, False, np.nan),
        ]
    )
    profiles = compute_profiles(runs, taus=[1.0, 1.25, 2.0, 100.0])
    a, b, c = "a lr=0.01 · default", "b lr=0.01 · default", "c lr=0.01 · default"
    assert rho_at(profiles, 1.0) == {a: 0.5, b: 0.5, c: 0.0}  # a fastest on mse, b on l1
    assert rho_at(profiles, 1.25) == {a: 0.5, b: 1.0, c: 0.0}  # b within 25/20 on mse
    assert rho_at(profiles, 100.0) == {a: 0.5, b: 1.0, c: 0.0}
    table = scores(profiles)
    s = table[table["measure"] == "epochs"].set_index("configuration")["score"]
    assert s[b] == pytest.approx((3 + (4 - 1.25)) / 2 / 3)
    assert s[a] == pytest.approx(0.5) and s[c] == 0.0


def test_a_workload_nobody_solves_counts_against_everyone_and_devices_never_pool():
    runs = pd.concat(
        [
            runs_frame([("a", "l1", 0, 0, True, 10.0), ("b", "l1", 0, 0, True, 20.0),
                        ("a", "l1", 1, 0, False, np.nan), ("b", "l1", 1, 0, False, np.nan)]),
            runs_frame([("a", "l1", 0, 0, True, 40.0), ("b", "l1", 0, 0, True, 20.0)],
                       device="cuda"),
        ]
    )  # fmt: skip
    profiles = compute_profiles(runs, taus=[1.0, 2.0])
    cpu, cuda = profiles[profiles["device"] == "cpu"], profiles[profiles["device"] == "cuda"]
    assert rho_at(cpu, 2.0) == {"a lr=0.01 · default": 0.5, "b lr=0.01 · default": 0.5}
    assert rho_at(cpu, 1.0) == {"a lr=0.01 · default": 0.5, "b lr=0.01 · default": 0.0}
    assert rho_at(cuda, 1.0) == {"a lr=0.01 · default": 0.0, "b lr=0.01 · default": 1.0}
    assert set(cpu["workloads"]) == {2} and set(cuda["workloads"]) == {1}


def test_a_configuration_missing_on_a_workload_fails_it():
    runs = runs_frame([("a", "l1", 0, 0, True, 10.0), ("a", "mse", 0, 0, True, 10.0),
                       ("b", "l1", 0, 0, True, 10.0)])  # fmt: skip
    assert rho_at(compute_profiles(runs, taus=[8.0]), 8.0) == {
        "a lr=0.01 · default": 1.0,
        "b lr=0.01 · default": 0.5,
    }


def test_tuning_studies_are_profiled_on_their_held_out_runs():
    runs = runs_frame([("a", "l1", 0, 0, True, 10.0), ("a", "l1", 1, 0, True, 10.0),
                       ("b", "l1", 0, 0, True, 1.0), ("b", "l1", 1, 0, True, 20.0)])  # fmt: skip
    runs["phase"] = ["eval", "eval", "tune", "eval"]
    assert rho_at(compute_profiles(runs, taus=[1.0]), 1.0) == {
        "a lr=0.01 · default": 1.0,
        "b lr=0.01 · default": 0.0,  # its tuning trial on data seed 0 does not count
    }


def test_only_sweeps_over_several_workloads_write_profiles(tmp_path):
    one = runs_frame([("a", "l1", 0, 0, True, 10.0), ("b", "l1", 0, 1, True, 12.0)])
    assert n_workloads(one) == 1 and not write_profiles(one, tmp_path)
    assert not (tmp_path / "profiles.parquet").exists()
    two = runs_frame([("a", "l1", 0, 0, True, 10.0), ("a", "mse", 0, 0, True, 12.0)])
    assert n_workloads(two) == 2 and write_profiles(two, tmp_path, plot=False)
    assert (tmp_path / "profiles.parquet").exists() and not (tmp_path / "profiles.png").exists()


def test_plot_profiles_returns_a_figure_with_a_legend_per_panel(tmp_path):
    runs = runs_frame(
        [(f"opt{i}", loss, 0, 0, True, 10.0 + i) for i in range(12) for loss in ("l1", "mse")]
    )
    fig = plot_profiles(compute_profiles(runs))
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert len(ax.get_legend().get_texts()) == 12
    plot_profiles(compute_profiles(runs), tmp_path / "p.svg")
    assert (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml")


def test_usage_lists_exactly_the_profile_columns():
    import re
    from pathlib import Path

    from gdbench.results import schema_markdown

    usage = (Path(__file__).resolve().parents[1] / "docs" / "usage.md").read_text()
    match = re.search(r"<!-- profiles-columns -->\n(.*?)\n<!-- /profiles-columns -->", usage, re.S)
    assert match and match.group(1) == schema_markdown(PROFILES_SCHEMA), (
        "docs/usage.md is out of date; run: make docs-tables"
    )
