"""The sequential engine: the notebook's semantics, and the behaviour of each optimizer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import run_cpu as run
from notebook import notebook_run
from torch import nn

from gdbench import Task, hookimpl
from gdbench.plugins import load_plugins


def test_default_init_is_pytorchs_own_linear_init():
    res = run("sgd", epochs=1, seeds=[0, 7])
    for seed, w in zip(res.runs["seed"], res.history["w"], strict=True):
        torch.manual_seed(seed)
        assert w == nn.Linear(1, 1).weight.item()


@pytest.mark.parametrize("engine", ["sequential", "batched"])
@pytest.mark.parametrize(
    ("plugins", "loss", "optim"),
    [
        ("sgd", nn.L1Loss(), torch.optim.SGD),
        ("adam,mse", nn.MSELoss(), torch.optim.Adam),
    ],
)
def test_engine_matches_the_notebook_loop(plugins, loss, optim, engine):
    x, y = Task().data("cpu")
    res = run(plugins, epochs=200, seeds=[3], engine=engine)
    assert list(res.runs["engine"]) == [engine]
    losses, model = notebook_run(x, y, seed=3, epochs=200, loss=loss, optim=optim)
    np.testing.assert_allclose(res.history["loss"], losses, rtol=1e-6)
    row = res.runs.iloc[0]
    assert row["w"] == pytest.approx(model.weight.item(), rel=1e-6)
    assert row["b"] == pytest.approx(model.bias.item(), rel=1e-6)


def test_sgd_reproduces_the_notebook():
    row = run("sgd").runs.iloc[0]
    assert abs(row["w"] - 2) < 0.02
    assert 2.5 <= row["b"] <= 3.1  # subgradient steps: b climbs at most lr per epoch
    assert 0.75 < row["final_loss"] < 0.9


@pytest.mark.parametrize("data_seed", [0, 1, 2])
def test_momentum_and_adam_converge_where_sgd_is_still_climbing(data_seed):
    res = run("sgd,momentum,adam", seeds=3, task=Task(data_seed=data_seed))
    runs = res.runs
    assert (runs["status"] == "ok").all()
    sgd = runs[runs["optimizer"] == "sgd"].set_index("seed")
    for name in ("momentum", "adam"):
        other = runs[runs["optimizer"] == name].set_index("seed")
        assert (other["b"] - 3).abs().max() < 0.1, name
        assert (other["final_loss"] < sgd["final_loss"]).all(), name


def test_history_has_every_epoch_and_the_final_state_is_after_the_last_step():
    res = run("sgd,mse", epochs=50, seeds=2)  # gradient descent on MSE: monotone
    assert len(res.history) == 100
    assert list(res.history.groupby("run_id")["epoch"].max()) == [50, 50]
    h = res.history[res.history["run_id"] == 0]
    assert (h["grad_norm"] > 0).all()
    assert res.runs.iloc[0]["final_loss"] < h["loss"].iloc[-1]


@pytest.mark.parametrize("factor", [math.inf, 1e4])
def test_mse_with_sgd_diverges_above_two_over_the_largest_eigenvalue(factor):
    """A run diverges at its first epoch whose loss is non-finite or above ``factor``
    times its starting loss (with an infinite factor: at the overflow)."""
    res = run("sgd,mse", lr=[0.02, 0.05], epochs=300, diverge_factor=factor)
    by_lr = res.runs.set_index("lr")
    assert by_lr.loc[0.02, "status"] == "ok"
    assert by_lr.loc[0.05, "status"] == "diverged"
    epoch = by_lr.loc[0.05, "diverged_epoch"]
    assert 0 < epoch < 300 and by_lr.loc[0.05, "epochs_run"] == epoch
    diverged_history = res.history[res.history["run_id"] == by_lr.loc[0.05, "run_id"]]
    assert len(diverged_history) == epoch
    losses = diverged_history["loss"].to_numpy()
    within = np.isfinite(losses) & (losses <= factor * losses[0])
    assert within[:-1].all() and not within[-1]


class FlakyLoss:
    @hookimpl
    def gdbench_register_losses(self, register):
        def flaky(prediction, target):
            if prediction.abs().max() > 5:
                raise RuntimeError("flaky loss gave up")
            return (prediction - target).abs()

        register("flaky", flaky, batchable=True)


@pytest.mark.parametrize("engine", ["batched", "sequential"])
def test_an_exception_inside_a_plugin_marks_only_that_run(engine):
    ps = load_plugins(extra=[("flaky", FlakyLoss())])
    res = run("sgd,flaky,l1", epochs=300, plugin_set=ps, engine=engine)
    by_loss = res.runs.set_index("loss")
    assert by_loss.loc["flaky", "status"] == "error"
    assert "RuntimeError: flaky loss gave up" in by_loss.loc["flaky", "error"]
    assert by_loss.loc["l1", "status"] == "ok"
    flaky_id = by_loss.loc["flaky", "run_id"]
    assert flaky_id not in set(res.history["run_id"])  # an error run has no history
