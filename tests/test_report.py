"""What a person reads (``report.py``): the summary, its rendering, and the plot, on
hand-made tables."""

from __future__ import annotations

import io
import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from gdbench import report
from gdbench.report import (
    CONFIG,
    MAX_LEGEND,
    _legend,
    _plot_panel,
    median_interval,
    plot_convergence,
    render_summary,
    status_counts,
    summary,
)
from gdbench.results import Results

matplotlib.use("Agg")
NAN = float("nan")
TARGET = 1e-4


def runs_frame(rows, **constant):
    """A runs table holding the columns the report reads, one run per row of
    (optimizer_label, lr, status, gap, solved, epochs_to_target, seconds_to_target,
    epoch_us); the other configuration columns are constant."""
    fields = ("optimizer_label", "lr", "status", "gap", "solved", "epochs_to_target",
              "seconds_to_target", "epoch_us")  # fmt: skip
    base = {"loss_label": "l1", "init_label": "default", "device": "cpu", "target": TARGET}
    return pd.DataFrame(
        [
            {"run_id": i, **base, **constant, **dict(zip(fields, row, strict=True))}
            for i, row in enumerate(rows)
        ]
    )


MIXED = runs_frame(
    [
        ("sgd", 0.01, "ok", 1e-3, True, 10.0, 0.01, 5.0),
        ("adam[eps=0.1]", 0.01, "error", NAN, False, NAN, NAN, NAN),
        ("sgd", 0.01, "ok", 3e-3, False, NAN, NAN, 7.0),
        ("sgd", 0.01, "diverged", 1e9, False, NAN, NAN, 100.0),
    ]
)


def test_summary_of_mixed_statuses_counts_every_run_and_measures_the_ok_ones():
    table = summary(MIXED)
    assert list(table[CONFIG[0]]) == ["sgd", "adam[eps=0.1]"]  # in order of appearance
    sgd, adam = (row for _, row in table.iterrows())
    assert (sgd["runs"], sgd["ok"], sgd["solved"]) == (3, 2, 1)
    assert sgd["status"] == "ok 2 · diverged 1"
    assert sgd["gap_median"] == pytest.approx(2e-3)  # the diverged run's gap is left out
    assert (sgd["gap_low"], sgd["gap_high"], sgd["gap_interval_exact"]) == (1e-3, 3e-3, False)
    assert sgd["epoch_us"] == 6.0  # ok runs only: not the diverged run's 100
    assert (sgd["epochs_to_target"], sgd["seconds_to_target"]) == (10.0, 0.01)  # solved runs
    assert sgd["target"] == TARGET
    assert (adam["runs"], adam["ok"], adam["solved"], adam["status"]) == (1, 0, 0, "error 1")
    assert all(math.isnan(adam[c]) for c in ("gap_median", "gap_low", "epoch_us"))
    assert summary(MIXED.iloc[:0]).empty
    pd.testing.assert_frame_equal(Results(MIXED, pd.DataFrame(), None).summary(), table)


def test_status_counts_in_a_fixed_order():
    statuses = pd.Series(["error", "ok", "weird", "diverged", "ok"])
    assert status_counts(statuses) == "ok 2 · diverged 1 · error 1 · weird 1"


def _coverage(n, j):
    """P(x₍ⱼ₎ ≤ median ≤ x₍ₙ₋ⱼ₊₁₎) for n samples: 1 − 2·P(Bin(n, ½) < j)."""
    return 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2**n


def test_median_interval_is_the_narrowest_from_order_statistics_that_covers():
    for n in range(1, 41):
        values = np.arange(n, dtype=float)[::-1]  # any order
        lo, hi, exact = median_interval(np.append(values, [np.nan, np.inf]), 0.95)  # dropped
        if not exact:  # too few values for 95%: the range
            assert (lo, hi) == (0, n - 1) and _coverage(n, 1) < 0.95, n
            continue
        j = int(lo) + 1  # the interval is [x(j), x(n-j+1)]
        assert hi == n - j, n
        assert _coverage(n, j) >= 0.95 and (j + 1 > n // 2 or _coverage(n, j + 1) < 0.95), n
    assert median_interval(np.arange(20.0)) == (5.0, 14.0, True)  # the textbook 6th and 15th


def test_median_interval_of_nothing():
    lo, hi, exact = median_interval(np.array([np.nan]))
    assert math.isnan(lo) and math.isnan(hi) and exact is False


def rendered(table):
    from rich.console import Console

    t = render_summary(table, title="T")
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(t)
    return t, console.export_text()


def headers(t):
    return [c.header for c in t.columns]


METRICS = ["gap", "95% CI", "solved", "epochs", "time", "µs/epoch", "runs"]


def test_constant_configuration_columns_move_into_the_caption():
    t, text = rendered(summary(MIXED))
    assert headers(t) == ["optimizer", *METRICS]
    assert "loss l1 · init default · lr 0.01 · device cpu" in text
    assert "2.0e-03" in text and "1.0e-03–3.0e-03*" in text and "1/3" in text
    assert "10 ms" in text and "ok 2 · diverged 1" in text
    assert "adam[eps=0.1]" in text and "0/1" in text and "—" in text
    assert f"solved: rel. gap ≤ {TARGET:g} reached and kept" in text  # the footer


def test_columns_that_vary_stay_in_the_table():
    runs = pd.concat([MIXED, runs_frame([("sgd", 0.1, "ok", 1e-5, True, 3.0, 2.5, 5.0)])])
    t, text = rendered(summary(runs.assign(run_id=range(len(runs)))))
    assert headers(t) == ["optimizer", "lr", *METRICS]
    assert "loss l1 · init default · device cpu" in text and "lr 0.01 ·" not in text
    assert "2.50 s" in text


def test_without_two_ok_runs_in_any_configuration_there_is_no_interval():
    t, _ = rendered(summary(MIXED.drop(index=2)))
    assert "95% CI" not in headers(t)


def test_a_single_configuration_keeps_only_its_optimizer_in_the_table():
    one = MIXED[MIXED["optimizer_label"] == "sgd"].assign(loss_label="huber[delta=2]")
    t, text = rendered(summary(one))
    assert headers(t) == ["optimizer", *METRICS]
    assert "loss huber[delta=2] · init default · lr 0.01 · device cpu" in text  # not markup


@pytest.mark.parametrize("order", [CONFIG, CONFIG[::-1]], ids=["config", "reversed"])
def test_legend_reads_the_configuration_by_name(monkeypatch, order):
    """Whatever order ``CONFIG`` lists the columns in, the legend reads each by name."""
    monkeypatch.setattr(report, "CONFIG", order)
    config = {"optimizer_label": "adam", "loss_label": "l1", "init_label": "zeros", "lr": 0.1,
              "device": "cpu"}  # fmt: skip
    assert _legend(tuple(config[c] for c in order)) == "adam lr=0.1 · zeros · cpu"


def curves(n_configs, epochs=5):
    """``history`` merged with the configuration columns, as ``plot_convergence`` merges
    them: one run per configuration, a different optimizer each."""
    rows = [
        {"run_id": i, "epoch": e, "gap": 10.0 / (e + i), "optimum_loss": 1.0,
         "optimizer_label": f"opt{i}", "loss_label": "l1", "init_label": "default",
         "lr": 0.01 * (i + 1), "device": "cpu"}
        for i in range(n_configs)
        for e in range(1, epochs + 1)
    ]  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("order", [CONFIG, CONFIG[::-1]], ids=["config", "reversed"])
def test_plot_panel_labels_each_configuration_by_name(monkeypatch, order):
    monkeypatch.setattr(report, "CONFIG", order)
    merged = curves(2)
    fig, ax = plt.subplots()
    try:
        _plot_panel(ax, merged[list(merged.columns)[::-1]])  # the frame's order matters neither
        labels = ax.get_legend_handles_labels()[1]
    finally:
        plt.close(fig)
    assert labels == ["opt0 lr=0.01 · default · cpu", "opt1 lr=0.02 · default · cpu"]


def test_plot_panel_leaves_out_an_unreadable_legend():
    fig, ax = plt.subplots()
    try:
        _plot_panel(ax, curves(MAX_LEGEND + 1))
        texts = [t.get_text() for t in ax.texts]
        assert ax.get_legend() is None and f"{MAX_LEGEND + 1} configurations" in texts[0]
    finally:
        plt.close(fig)


def test_plot_convergence_draws_one_panel_per_loss_from_the_ok_runs(monkeypatch, tmp_path):
    merged = curves(3)
    history = merged[["run_id", "epoch", "gap"]]
    runs = merged.drop_duplicates("run_id").drop(columns=["epoch", "gap"])
    runs = runs.assign(loss_label=["l1", "mse", "mse"], status=["ok", "ok", "diverged"])
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to look at it
    plot_convergence(runs, history, tmp_path / "convergence.png")
    (fig,) = figures
    try:
        titles = [ax.get_title() for ax in fig.axes]
        lines = [len(ax.get_lines()) for ax in fig.axes]
    finally:
        monkeypatch.undo()
        plt.close(fig)
    assert titles == ["loss: l1", "loss: mse (1 runs not ok, left out)"]
    assert lines == [1, 1]
    assert (tmp_path / "convergence.png").stat().st_size > 0
