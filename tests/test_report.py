"""What a person reads (``report.py``): the summary, its rendering, and the plot, on
hand-made tables."""

from __future__ import annotations

import io
import json
import math

import matplotlib
import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from gdbench.report import (
    CONFIG,
    _num,
    _seconds,
    convergence_figure,
    facets,
    format_summary,
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
    """The column headers of a rendered summary (a table, or a table and its caption)."""
    from rich.table import Table

    table = t if isinstance(t, Table) else next(r for r in t.renderables if isinstance(r, Table))
    return [c.header for c in table.columns]


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


def summary_of(optimizers, losses, lrs, **kw):
    """The summary of one ok run per optimizer × loss × lr (gaps and times made up)."""
    rows = [
        {"run_id": i, "optimizer_label": o, "loss_label": loss, "init_label": "default",
         "lr": lr, "device": "cpu", "target": TARGET, "status": "ok", "gap": 1.234e-3 * (i + 1),
         "solved": i % 2 == 0, "epochs_to_target": 100.0 + i if i % 2 == 0 else NAN,
         "seconds_to_target": 0.0123 * (i + 1) if i % 2 == 0 else NAN, "epoch_us": 123.0, **kw}
        for i, (o, loss, lr) in enumerate(
            (o, loss, lr) for o in optimizers for loss in losses for lr in lrs
        )
    ]  # fmt: skip
    return summary(pd.DataFrame(rows))


GRID = (["sgd", "momentum[nesterov=true]", "adam[betas=0.8:0.9]"], ["l1", "huber[delta=0.5]"],
        [0.001, 0.0316, 10.0])  # fmt: skip


def printed(renderable, width):
    from rich.console import Console

    console = Console(record=True, width=width, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_at_80_columns_every_distinguishing_value_shows_and_no_value_is_cut():
    table = summary_of(*GRID)
    t = render_summary(table, "gdbench run", width=80)
    text = printed(t, 80)
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    assert headers(t)[:3] == ["opt", "loss", "lr"]  # labels abbreviated, explained below
    assert "opt: optimizer" in text
    rows = [line.split() for line in text.splitlines()]
    for r in table.itertuples():
        assert [r.optimizer_label, r.loss_label, f"{r.lr:g}"] in [row[:3] for row in rows]
        assert _num(r.gap_median, ".1e") in text and _seconds(r.seconds_to_target) in text


def test_a_wide_terminal_keeps_the_full_headers():
    t = render_summary(summary_of(*GRID), "gdbench run", width=200)
    assert headers(t)[:3] == ["optimizer", "loss", "lr"]
    assert "optimizer: " not in printed(t, 200)


def test_too_narrow_for_a_table_one_block_per_configuration():
    table = summary_of(*GRID)
    blocks = render_summary(table, "gdbench run", width=50)
    assert not hasattr(blocks, "columns")
    text = printed(blocks, 50)
    assert "…" not in text and max(map(len, text.splitlines())) <= 50
    joined = " ".join(line.strip() for line in text.splitlines())  # a line going on ends in ·
    for r in table.itertuples():
        heading = f"{r.optimizer_label} · {r.loss_label} · lr {r.lr:g}"
        at = joined.index(heading + " gap ")
        block = joined[at : joined.index("µs/epoch 123", at)]
        assert f"gap {_num(r.gap_median, '.1e')}" in block and f"solved {r.solved}/1" in block
        assert f"time {_seconds(r.seconds_to_target)}" in block
    assert "momentum[nesterov=true] · huber[delta=0.5] ·" in text.splitlines()  # 53 wide
    assert "init default · device cpu · runs ok 1 each" in text


def test_machine_readable_formats_hold_the_summary():
    table = summary_of(*GRID)
    csv = pd.read_csv(io.StringIO(format_summary(table, "csv")))
    assert list(csv.columns) == list(table.columns) and len(csv) == 18
    assert np.allclose(csv["gap_median"], table["gap_median"])
    records = json.loads(format_summary(table, "json"))
    assert records[1]["epochs_to_target"] is None and records[0]["lr"] == 0.001
    assert records[0]["gap_median"] == table["gap_median"][0]  # every digit
    markdown = format_summary(table, "markdown", title="T").splitlines()
    assert "| optimizer | loss | lr | gap | solved | epochs | time | µs/epoch |" in markdown
    assert (
        "| adam[betas=0.8:0.9] | huber[delta=0.5] | 0.0316 | 2.1e-02 | 1/1 | 116 | 209 ms | 123 |"
        in markdown
    )
    with pytest.raises(ValueError, match="format must be one of"):
        format_summary(table, "xml")


def config_rows(optimizers, losses, lrs, inits=("default",), devices=("cpu",)):
    return pd.DataFrame(
        [
            {"optimizer_label": o, "loss_label": loss, "init_label": init, "lr": lr,
             "device": device}
            for loss in losses for o in optimizers for init in inits for device in devices
            for lr in lrs
        ]
    )  # fmt: skip


def test_facets_are_one_panel_per_loss_and_optimizer_labelled_by_lr():
    panels = facets(config_rows(["sgd", "adam"], ["l1", "mse", "huber"], [0.1, 0.01, 0.03]))
    assert [p.title for p in panels] == [f"{loss} · {o}" for loss in ("l1", "mse", "huber")
                                         for o in ("sgd", "adam")]  # fmt: skip
    assert all(p.labels == ["lr=0.01", "lr=0.03", "lr=0.1"] for p in panels)  # sorted by lr
    assert panels[0].keys[0] == ("sgd", "l1", "default", 0.01, "cpu")  # CONFIG order


def test_facets_split_by_device_then_init_then_lr_ranges():
    rows = config_rows(["sgd"], ["l1"], [0.1, 0.2, 0.3], inits=["default", "zeros", "xavier"],
                       devices=["cpu", "cuda"])  # fmt: skip
    assert len(rows) == 18
    panels = facets(rows, max_lines=8)  # by device (9 each), then by init (3 each)
    assert {p.title for p in panels} == {f"l1 · sgd · {d} · {i}" for d in ("cpu", "cuda")
                                         for i in ("default", "zeros", "xavier")}  # fmt: skip
    assert len(panels) == 6 and all(p.labels == ["lr=0.1", "lr=0.2", "lr=0.3"] for p in panels)
    by_device = facets(rows, max_lines=9)  # inits stay together, told apart in the legend
    assert len(by_device) == 2 and by_device[0].labels[:2] == ["lr=0.1 · default", "lr=0.1 · zeros"]
    many = facets(config_rows(["adam"], ["mse"], [10.0**k for k in range(-10, 10)]))
    assert [len(p.keys) for p in many] == [7, 7, 6]  # 20 learning rates, at most 8 a panel
    assert many[0].title == "mse · adam · lr 1e-10–0.0001" and many[2].labels[-1] == "lr=1e+09"


def sweep_tables(n_lrs=3, diverge=True):
    """A runs and a history table: adam and sgd on l1 and mse, n_lrs learning rates, two
    seeds; the last lr of sgd on mse diverges at epoch 4 with huge gaps (when told)."""
    runs, history = [], []
    i = 0
    for loss in ("l1", "mse"):
        for o in ("sgd", "adam"):
            for k in range(n_lrs):
                for seed in range(2):
                    bad = diverge and (loss, o, k) == ("mse", "sgd", n_lrs - 1)
                    runs.append({"run_id": i, "optimizer_label": o, "loss_label": loss,
                                 "init_label": "default", "lr": 0.01 * (k + 1), "device": "cpu",
                                 "status": "diverged" if bad else "ok", "optimum_loss": 1.0,
                                 "diverged_epoch": 4 if bad else NAN})  # fmt: skip
                    epochs = 4 if bad else 20
                    for e in range(1, epochs + 1):
                        gap = 1e30 * e if bad else 10.0 / (e + k + seed)
                        history.append({"run_id": i, "epoch": e, "gap": gap})
                    i += 1
    return pd.DataFrame(runs), pd.DataFrame(history)


def test_convergence_scales_to_ok_runs_marks_divergence_and_always_has_a_legend():
    runs, history = sweep_tables()
    fig = convergence_figure(runs, history)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["l1 · sgd", "l1 · adam", "mse · sgd", "mse · adam"]
    for ax in axes:
        assert ax.get_legend() is not None
        assert ax.get_ylim()[1] < 100  # the diverged run's 1e30 does not stretch the axis
    mse_sgd = axes[2]
    labels = [t.get_text() for t in mse_sgd.get_legend().get_texts()]
    assert labels == ["lr=0.01", "lr=0.02", "lr=0.03 (2 diverged)"]
    (crosses,) = [line for line in mse_sgd.get_lines() if line.get_marker() == "x"]
    assert list(crosses.get_xdata()) == [4, 4]
    assert axes[0].get_ylim() == axes[1].get_ylim()  # one loss, one scale


def test_a_crowded_sweep_still_labels_every_curve(tmp_path):
    runs, history = sweep_tables(n_lrs=13, diverge=False)
    plot_convergence(runs, history, tmp_path / "convergence.png")
    image = matplotlib.image.imread(tmp_path / "convergence.png")
    assert image.shape[0] > 600 and image.shape[1] > 1000 and image.std() > 0.05  # not blank
    fig = convergence_figure(runs, history)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 8  # 13 learning rates: two panels per loss × optimizer
    assert sum(len(ax.get_legend().get_texts()) for ax in axes) == 2 * 2 * 13


SWEEP = ["run", "-p", "sgd,momentum,adam,l1,mse", "--lr", "0.001,0.01,0.1", "--epochs", "30",
         "--device", "cpu", "--no-plot"]  # fmt: skip
"""3 optimizers × 2 losses × 3 learning rates (SGD and momentum diverge on MSE at 0.1)."""


@pytest.mark.parametrize("columns", [80, 50])
def test_the_cli_summary_shows_every_distinguishing_value(cli, tmp_path, columns):
    result = cli(*SWEEP, "--out", str(tmp_path), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "…" not in text
    assert max(len(line) for line in text.splitlines() if "results:" not in line) <= columns
    lines = text.splitlines()
    for o in ("sgd", "momentum", "adam"):
        for loss in ("l1", "mse"):
            for lr in ("0.001", "0.01", "0.1"):
                if columns == 80:  # a table row
                    assert any(line.split()[:3] == [o, loss, lr] for line in lines if line.strip())
                else:  # a block's heading
                    assert f"{o} · {loss} · lr {lr}" in lines
    assert "diverged 1" in text and "init default · device cpu" in text


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown"])
def test_format_prints_the_summary_alone_on_stdout(cli, tmp_path, fmt):
    result = cli(*SWEEP, "--out", str(tmp_path), "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert "results: " in result.stderr and "results: " not in result.stdout
    if fmt == "csv":
        table = pd.read_csv(io.StringIO(result.stdout))
    elif fmt == "json":
        table = pd.DataFrame(json.loads(result.stdout))
    else:
        rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
        assert rows[0].startswith("| optimizer | loss | lr | gap |") and len(rows) == 1 + 18
        return
    assert len(table) == 18 and {"optimizer_label", "loss_label", "lr"} <= set(table.columns)
    assert table.groupby(["optimizer_label", "loss_label", "lr"]).ngroups == 18


def test_an_unknown_format_is_a_usage_error(cli, tmp_path):
    result = cli(*SWEEP, "--out", str(tmp_path), "--format", "xml")
    assert result.exit_code == 2 and "--format takes table, csv, json, markdown" in result.stderr
    assert not list(tmp_path.iterdir())  # refused before anything ran


def test_an_empty_sweep_prints_a_line_not_a_crash():
    assert printed(render_summary(summary(MIXED.iloc[:0]), "T", width=80), 80).splitlines() == [
        "T",
        "no runs finished",
    ]
    assert format_summary(summary(MIXED.iloc[:0]), "json") == "[]\n"
