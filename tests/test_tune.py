"""Tuning studies (``gdbench tune``): real runs on the default task, no mocks.

One module-scoped study (SGD, momentum and Adam on MSE and Huber, lr over a 16-point log
grid 1e-4…10, chosen on data seed 0, held out on data seeds 1–4, ~12 s: marked slow)
backs the checks of the issue's first done-when bullet, the tables and the folder. Its
target is the issue's "within 1e-6" (relative gap): at the default 1e-4, Adam at lr 0.01
on MSE just reaches the target by epoch ~480 with a gap of 8e-3, so "solved" would not
tell it apart. The smaller studies and the search-space tests are fast."""

from __future__ import annotations

import json
import math

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from helpers import assert_usage_error, results_dir, run_cpu

import gdbench
from gdbench.results import RUNS_COLUMNS
from gdbench.search_space import Range, format_trial_value, parse_lr_range, parse_spaces
from gdbench.selection import parse_value, select
from gdbench.tuned import render_tuned
from gdbench.tuning import parse_seed_spec, seed_list, untuned_title

HELD_OUT = [1, 2, 3, 4]
TARGET = 1e-6


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune")
    result = gdbench.tune(
        "sgd,momentum,adam,mse,huber", lr_range="1e-4:10", trials=16, eval_data_seeds=4,
        target=TARGET, device="cpu", out=out, plot=False, report=False,
    )  # fmt: skip
    return result


def _chosen(result, optimizer, loss):
    tuned = result.tuned
    (row,) = tuned[(tuned["optimizer"] == optimizer) & (tuned["loss_label"] == loss)].index
    return tuned.loc[row]


def _held_out(result, optimizer, loss):
    runs = result.runs
    return runs[(runs["phase"] == "eval") & (runs["optimizer"] == optimizer)
                & (runs["loss"] == loss)]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("optimizer", "loss"), [("adam", "mse"), ("sgd", "huber")])
def test_tuned_lr_solves_held_out_data_where_lr_001_does_not(study, optimizer, loss):
    """The issue's done-when: the tuned lr solves every held-out run with a median gap
    below 1e-8; the shared lr 0.01 solves none of the same runs."""
    chosen = _chosen(study, optimizer, loss)
    held_out = _held_out(study, optimizer, loss)
    assert sorted(held_out["data_seed"]) == HELD_OUT
    assert (held_out["lr"] == chosen["lr"]).all() and chosen["lr"] != 0.01
    assert held_out["solved"].all() and held_out["gap"].median() < 1e-8
    assert chosen["eval_solved"] == chosen["eval_runs"] == 4 and chosen["eval_gap"] < 1e-8
    fixed = run_cpu(f"{optimizer}[lr=0.01],{loss}", data_seeds=HELD_OUT, target=TARGET).runs
    assert not fixed["solved"].any() and fixed["gap"].min() > 1e-3


@pytest.mark.slow
def test_choices_match_the_known_tuned_learning_rates(study):
    """Cross-check with shared/task-facts.md: Adam on MSE is best near lr 0.1–0.5, SGD on
    Huber near 0.05, SGD on MSE near 0.02 (below the stability limit 0.030); every choice
    is the fastest trial on the tuning data."""
    assert 0.1 <= _chosen(study, "adam", "mse")["lr"] <= 0.5
    assert _chosen(study, "sgd", "huber")["lr"] == 0.04642
    assert _chosen(study, "sgd", "mse")["lr"] == 0.02154
    trials = study.trials
    for _, row in study.tuned.iterrows():
        mine = trials[(trials["entry_label"] == row["entry"])
                      & (trials["loss_label"] == row["loss_label"])]  # fmt: skip
        assert len(mine) == 16 and row["trials"] == 16
        assert row["tune_epochs_to_target"] == mine["epochs_to_target"].min()


@pytest.mark.slow
def test_runs_table_tells_phases_studies_and_trials_apart(study):
    runs = study.runs
    assert list(runs.columns) == list(RUNS_COLUMNS)
    assert list(runs["run_id"]) == list(range(len(runs)))
    tune, held_out = runs[runs["phase"] == "tune"], runs[runs["phase"] == "eval"]
    assert len(tune) == 16 * 3 * 2 and (tune["data_seed"] == 0).all()
    assert len(held_out) == 3 * 2 * 4 and set(held_out["data_seed"]) == set(HELD_OUT)
    assert set(runs["study"]) == {0} and set(tune["trial"]) == set(range(16))
    for _, row in study.tuned.iterrows():  # the held-out runs name the chosen trial
        mine = held_out[(held_out["optimizer"] == row["optimizer"])
                        & (held_out["loss_label"] == row["loss_label"])]  # fmt: skip
        assert set(mine["trial"]) == {row["trial"]}
    assert set(study.history["run_id"]) == set(runs["run_id"])


@pytest.mark.slow
def test_folder_holds_every_table(study):
    out = study.out_dir
    assert {p.name for p in out.iterdir()} >= {
        "runs.parquet", "runs.csv", "history.parquet", "data.parquet", "meta.json",
        "tuned.parquet", "trials.parquet",
    }  # fmt: skip
    tuned = pd.read_parquet(out / "tuned.parquet")
    pd.testing.assert_frame_equal(tuned, study.tuned, check_dtype=False)
    assert len(tuned) == 3 * 2  # one row per study × optimizer × loss
    assert json.loads(tuned["tuned"].iloc[0]) == {"lr": "log"}
    loaded = gdbench.load(out)
    assert list(loaded.runs["phase"]) == list(study.runs["phase"])
    assert list(loaded.runs["study"]) == [0] * len(study.runs)
    data = pd.read_parquet(out / "data.parquet")
    assert sorted(set(data["data_seed"])) == [0, *HELD_OUT]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["command"] == "tune" and meta["complete"] is True
    assert meta["tune"]["eval_data_seeds"] == HELD_OUT and meta["n_runs_saved"] == len(study.runs)


@pytest.mark.slow
def test_tuned_table_names_each_lr(study):
    from rich.console import Console

    summary = study.summary()
    assert len(summary) == 6 and (summary["solved"] == summary["runs"]).all()
    console = Console(width=160, record=True)
    console.print(render_tuned(summary, study.options))
    text = console.export_text()
    for _, row in study.tuned.iterrows():
        assert f"lr={row['lr']:.4g}" in text
    assert "held out: 1–4" in text and "4/4" in text


def test_plain_run_rows_and_untuned_caption():
    runs = run_cpu("sgd,adam", epochs=20).runs
    assert (runs["phase"] == "run").all() and runs["study"].isna().all()
    assert "lr fixed at 0.01 for all" in untuned_title(runs)
    assert "not tuned: 0.01, 0.1" in untuned_title(run_cpu("sgd", lr=[0.01, 0.1], epochs=5).runs)


def test_studies_draw_their_own_points_and_seeds():
    """Quasi-random search over lr and momentum: each study its own Halton scramble and
    initial parameters; one tuned row per study, sets of values tuned too."""
    result = gdbench.tune(
        "momentum[momentum=lin:0.5:0.95],sgd[nesterov=false,true;momentum=0.9],mse",
        search="quasirandom", trials=3, studies=2, epochs=60, eval_data_seeds=2,
        device="cpu", out=None,
    )  # fmt: skip
    tune = result.runs[result.runs["phase"] == "tune"]
    assert len(tune) == 2 * 2 * 3 and result.out_dir is None
    assert (tune.loc[tune["optimizer"] == "momentum", "batch_size"] == 3).all()  # one batch
    assert set(tune.loc[tune["study"] == 0, "seed"]) == {0}
    assert set(tune.loc[tune["study"] == 1, "seed"]) == {1}
    lrs = [set(tune.loc[tune["study"] == s, "lr"]) for s in (0, 1)]
    assert lrs[0] != lrs[1] and all(1e-4 <= lr <= 10 for lr in lrs[0] | lrs[1])
    momentum = result.trials[result.trials["entry_label"].str.startswith("momentum")]
    values = [json.loads(p)["momentum"] for p in momentum["params"]]
    assert len(set(values)) == 6 and all(0.5 <= v <= 0.95 for v in values)
    assert len(result.tuned) == 2 * 2 and set(result.tuned["study"]) == {0, 1}
    scales = json.loads(result.tuned.loc[result.tuned["optimizer"] == "sgd", "tuned"].iloc[0])
    assert scales == {"lr": "log", "nesterov": "set"}
    held_out = result.runs[result.runs["phase"] == "eval"]
    assert set(held_out["seed"]) == {0} and set(held_out["data_seed"]) == {1, 2}
    summary = result.summary()
    assert len(summary) == 2 and (summary["studies"] == 2).all()


def test_cli_tune_writes_the_plots(cli, tmp_path):
    result = cli(
        "tune", "-p", "sgd,adam,mse", "--trials", "4", "--epochs", "80", "--device", "cpu",
        "--eval-data-seeds", "2", "--out", str(tmp_path), "--no-report",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "gdbench tune" in result.stdout and result.stdout.count("lr=") >= 2
    out = results_dir(tmp_path)
    for name in ("sensitivity.png", "convergence.png"):
        image = matplotlib.image.imread(out / name)
        assert image.shape[1] > 500 and image[..., :3].std() > 0.05
    tuned = pd.read_parquet(out / "tuned.parquet")
    assert list(tuned["optimizer"]) == ["sgd", "adam"]
    assert json.loads((out / "meta.json").read_text())["command"] == "tune"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--lr-range", "10:1e-4"], "--lr-range '10:1e-4' needs finite LO < HI"),
        (["--lr-range", "0:1"], "--lr-range '0:1' needs LO > 0 on a log scale"),
        (["--lr-range", "fast"], "--lr-range cannot read 'fast'"),
        (["--lr-range", "lin:-1:1"], "--lr-range 'lin:-1:1' needs LO > 0"),
        (["-p", "adam[lr=log:1e-4]"], "adam: cannot read range 'log:0.0001'; write log:LO:HI"),
        (["-p", "adam[lr=log:1:1e-4]"], "adam: range 'log:1:0.0001' needs finite LO < HI"),
        (["-p", "adam[lr=log:1:2,0.1]"], "adam: lr takes one range or a list of values"),
        (["-p", "adam[beta=lin:0:1]"], "adam has no hyper-parameter 'beta'"),
        (["-p", "sgd,huber[delta=lin:0.5:2]"], "only optimizer hyper-parameters are tuned"),
        (["-p", "sgd,msee"], "unknown plugin component 'msee'; did you mean mse?"),
        (["--tune-data-seeds", "0-2", "--eval-data-seeds", "2-5"], "data seed 2 is also tuned on"),
        (["--eval-data-seeds", "1-x"], "--eval-data-seeds cannot read '1-x'"),
        (["--preset", "fast"], "--preset 'fast' is unknown; use deepobs or algoperf"),
        (["--search", "bayes"], "--search 'bayes' is unknown"),
        (["--trials", "0"], "--trials must be at least 1"),
        (["--criterion", "loss"], "--criterion 'loss' is unknown"),
    ],
)
def test_cli_errors_are_one_line(cli, tmp_path, args, fragment):
    result = cli("tune", *args, "--out", str(tmp_path / "r"))
    assert_usage_error(result, fragment, tmp_path / "r")


def test_search_space_points():
    """Grids are log-spaced with both ends, rounded to 4 digits and read back exactly;
    quasi-random points differ per study and repeat per study."""
    from gdbench.plugins import get_plugins

    registry = get_plugins().registry
    spaces, others = parse_spaces(registry, "adam,sgd[lr=0.01],loss:mse", parse_lr_range("1e-4:10"))
    assert others == ["loss:mse"] and [s.tuned for s in spaces] == [["lr"], []]
    grid = [p["lr"] for p in spaces[0].trials(16, "grid", 0)]
    assert grid[0] == 1e-4 and grid[-1] == 10.0 and grid[9] == 0.1 and len(grid) == 16
    assert np.allclose(np.diff(np.log10(grid)), 1 / 3, atol=1e-3)
    assert spaces[1].trials(16, "grid", 0) == [{"lr": 0.01}]  # lr given: a baseline
    for params in spaces[0].trials(5, "quasirandom", 1):
        choice = select(registry, spaces[0].item(params)).optimizers[0]
        assert choice.kwargs()["lr"] == params["lr"]  # exact round trip
    q0, q1 = (spaces[0].trials(5, "quasirandom", s) for s in (0, 1))
    assert q0 != q1 and q0 == spaces[0].trials(5, "quasirandom", 0)
    two = parse_spaces(registry, "adam[betas=lin:0.5:0.9]", Range("log", 1e-3, 1))[0][0]
    assert len(two.trials(16, "grid", 0)) == 16  # 4 × 4


def test_small_helpers():
    assert parse_lr_range("1e-4:10") == Range("log", 1e-4, 10.0)
    assert parse_lr_range("lin:0.1:1") == Range("lin", 0.1, 1.0)
    assert parse_lr_range((0.001, 1)) == Range("log", 0.001, 1.0)
    assert parse_seed_spec("4", "x") == 4 and parse_seed_spec("1-3,7", "x") == [1, 2, 3, 7]
    assert seed_list([1, 2, 3, 4, 7, 9, 10]) == "1–4, 7, 9, 10"
    for value in (0.1, 1e-05, 0.4642, (0.9, 0.999), True, 3):
        assert parse_value(format_trial_value(value)) == value
    assert math.isclose(Range("log", 1e-4, 10).at(0.5), 0.03162)


class StopsAfterTheFirstRun:
    """Sends this process SIGTERM when the first run ends, as ``kill`` would."""

    def __init__(self):
        self.sent = False

    @gdbench.hookimpl
    def gdbench_run_end(self, run, result):
        import os
        import signal

        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_stopped_study_keeps_what_ran(tmp_path):
    """SIGTERM during the first batch: that batch finishes (its runs were in flight at the
    end), no other starts, no held-out sweep runs, the folder says it is incomplete and
    the plots cope with a study that has no trial of some optimizer."""
    from gdbench.plugins import load_plugins

    plugin_set = load_plugins(extra=[("stopper", StopsAfterTheFirstRun())])
    result = gdbench.tune("sgd,adam,mse", trials=3, epochs=30, eval_data_seeds=2, device="cpu",
                          out=tmp_path, report=False, plugin_set=plugin_set)  # fmt: skip
    assert result.interrupted == "SIGTERM" and not result.complete
    assert set(result.runs["phase"]) == {"tune"} and len(result.runs) < result.planned
    assert list(result.tuned["optimizer"]) == ["sgd"] and result.tuned["eval_runs"].eq(0).all()
    meta = json.loads((result.out_dir / "meta.json").read_text())
    assert meta["complete"] is False and meta["interrupted"] == "SIGTERM"
    assert (result.out_dir / "sensitivity.png").is_file()


def test_presets_fill_what_is_not_given():
    from gdbench.tuning import TuneOptions

    deepobs = TuneOptions.from_arguments("sgd", preset="deepobs")
    assert (deepobs.search, deepobs.trials, deepobs.studies) == ("grid", 36, 1)
    assert deepobs.lr_range == Range("log", 1e-5, 100.0)
    assert deepobs.tune_data_seeds == (0,) and deepobs.eval_data_seeds == tuple(range(1, 11))
    algoperf = TuneOptions.from_arguments("sgd", preset="algoperf", trials=7)
    assert (algoperf.search, algoperf.trials, algoperf.studies) == ("quasirandom", 7, 3)
    assert algoperf.study_seeds(2) == (2,)
    default = TuneOptions.from_arguments("sgd", seeds=3, tune_data_seeds=2, eval_data_seeds=[7])
    assert (default.search, default.trials, default.criterion) == ("grid", 16, "epochs")
    assert default.tune_data_seeds == (0, 1) and default.eval_data_seeds == (7,)
    assert default.study_seeds(1) == (3, 4, 5)


def test_choice_ranks_time_then_gap_then_trial():
    """Unsolved trials are infinitely slow; ties go to the smaller gap, then the earlier
    trial; ``gap`` ranks by gap alone; trials with interrupted runs are not chosen."""
    from gdbench.tuned import choose

    inf = math.inf
    rows = [  # trial, epochs, gap, interrupted
        (0, inf, 1e-3, 0), (1, 90.0, 1e-9, 0), (2, 90.0, 1e-12, 0), (3, 80.0, 1e-6, 1),
        (4, inf, 1e-14, 0),
    ]  # fmt: skip
    trials = pd.DataFrame(
        [{"study": 0, "entry": 0, "trial": t, "loss_label": "mse", "init_label": "default",
          "device": "cpu", "_loss": "m", "_init": "d", "epochs_to_target": e,
          "seconds_to_target": e, "gap": g, "interrupted": i} for t, e, g, i in rows]
    )  # fmt: skip
    assert list(choose(trials, "epochs")["trial"]) == [2]
    assert list(choose(trials, "seconds")["trial"]) == [2]
    assert list(choose(trials, "gap")["trial"]) == [4]
    unsolved = trials.assign(epochs_to_target=inf)
    assert list(choose(unsolved, "epochs")["trial"]) == [4]  # still the closest one


@pytest.mark.slow
def test_deepobs_preset_end_to_end(cli, tmp_path):
    """The issue's second done-when, without asserting a wall time (measured with the
    CLI: 8–14 s for the default sgd on l1, 36–71 s for three optimizers × three losses,
    on a shared 2-core machine)."""
    result = cli("tune", "--preset", "deepobs", "--device", "cpu", "--out", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert "deepobs preset" in result.stdout and "10/10" in result.stdout
    out = results_dir(tmp_path)
    runs = pd.read_parquet(out / "runs.parquet")
    tune = runs[runs["phase"] == "tune"]
    assert len(tune) == 36 and tune["lr"].min() == 1e-5 and tune["lr"].max() == 100.0
    assert sorted(runs.loc[runs["phase"] == "eval", "data_seed"]) == list(range(1, 11))
    assert {"tuned.parquet", "sensitivity.png", "report.html"} <= {p.name for p in out.iterdir()}


def test_an_unwritable_out_is_refused_before_any_run(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("tune", "-p", "sgd,mse", "--out", str(blocker / "sub"))
    assert_usage_error(result, "--out", tmp_path / "nothing")


def test_a_folder_from_before_the_tuning_columns_still_loads(tmp_path):
    run = gdbench.run("sgd", epochs=5, device="cpu", out=tmp_path, plot=False, report=False)
    runs = pd.read_parquet(run.out_dir / "runs.parquet")
    runs.drop(columns=["phase", "study", "trial"]).to_parquet(run.out_dir / "runs.parquet")
    loaded = gdbench.load(run.out_dir).runs
    assert list(loaded.columns) == list(RUNS_COLUMNS) and loaded["phase"].isna().all()


def test_lifecycle_hooks_see_each_inner_sweep():
    """As docs/plugins.md says: one sweep_start/results_ready per inner sweep (the
    study's trials, then each held-out group), in memory (out_dir None)."""
    from gdbench import hookimpl
    from gdbench.plugins import load_plugins

    class Recorder:
        def __init__(self):
            self.calls = []

        @hookimpl
        def gdbench_sweep_start(self, plan, out_dir):
            self.calls.append(("start", len(plan), out_dir))

        @hookimpl
        def gdbench_results_ready(self, runs, history, out_dir):
            self.calls.append(("ready", len(runs), out_dir))

    rec = Recorder()
    ps = load_plugins(extra=[("rec", rec)])
    gdbench.tune("sgd", trials=3, eval_data_seeds=2, epochs=20, device="cpu", out=None,
                 plugin_set=ps)  # fmt: skip
    assert rec.calls == [("start", 3, None), ("ready", 3, None),
                         ("start", 2, None), ("ready", 2, None)]  # fmt: skip
