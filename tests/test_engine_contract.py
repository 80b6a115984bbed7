"""Both engines through the one contract (``engine/base.py``): ``make_engines()[name]``,
``run(specs, data)``, ``trainer(specs, data)`` with ``step``/``train``/``results``, and the
schedule that cuts a sweep into batches.

Both engines compute a run's loss through ``run_losses``, so on the CPU they agree bit for
bit: every comparison here is exact.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers import EVERY_BUILTIN, EXPLODING_INIT, make_specs, run_cpu

import gdbench
from gdbench import Task, hookimpl
from gdbench.engine import ENGINE_NAMES, make_engines
from gdbench.engine.records import RunResult
from gdbench.engine.schedule import Batch, make_batches
from gdbench.plugins import load_plugins
from gdbench.results import PER_EPOCH

DATA = Task().data("cpu")
EVERY_COMBINATION = f"{EVERY_BUILTIN},{EXPLODING_INIT}"
"""4 optimizers × 3 losses × 7 inits, one of which makes MSE runs diverge at once."""


def run_through(name, specs, data=DATA, engines=None, **kw):
    """Each spec's result from engine ``name``, batched as the schedule batches them."""
    engines = engines or make_engines()
    results = {}
    for batch in make_batches(specs, engines, name, None):
        assert batch.engine == name
        for spec, result in zip(batch.specs, engines[name].run(batch.specs, data, **kw),
                                strict=True):  # fmt: skip
            assert result.run_id == spec.run_id
            results[spec.run_id] = result
    return [results[s.run_id] for s in specs]


HOW_IT_RAN = {"setup_s", "train_s", "engine", "implementation", "batch_size", "compiled",
              "engine_note"}  # fmt: skip


def assert_same_result(a, b):
    """Bit-identical outcomes, field by field (NaN equal to NaN); how it ran aside."""
    for f in dataclasses.fields(RunResult):
        if f.name in HOW_IT_RAN:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, dict):
            assert x.keys() == y.keys(), f.name
            for key in x:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"history {key}")
        elif isinstance(x, (float, tuple, np.ndarray)):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name


@pytest.fixture(scope="module")
def every_combination(plugin_set):
    specs = make_specs(plugin_set, EVERY_COMBINATION, lrs=(0.01, 0.03), epochs=40)
    assert len(specs) == 4 * 3 * 7 * 2
    return specs


def test_every_builtin_combination_is_bit_identical_in_both_engines(every_combination):
    specs = every_combination
    sequential = run_through("sequential", specs)
    batched = run_through("batched", specs)
    for a, b in zip(sequential, batched, strict=True):
        assert_same_result(a, b)
    statuses = {r.status for r in sequential}
    assert statuses == {"ok", "diverged"}  # divergence is exercised, errors are not
    for r in sequential:
        assert set(r.history) == set(PER_EPOCH) and r.epochs_run == len(r.history["loss"])
        if r.status == "ok":
            assert r.epochs_run == 40 and r.diverged_epoch is None
        else:
            assert r.diverged_epoch == r.epochs_run and not math.isfinite(r.history["loss"][-1])
    assert {(r.engine, r.batch_size) for r in sequential} == {("sequential", 1)}
    assert {r.engine for r in batched} == {"batched"} and max(r.batch_size for r in batched) > 1
    assert {r.implementation for r in sequential + batched} == {"for-loop"}
    assert not any(r.compiled or r.engine_note for r in sequential + batched)


def test_every_builtin_combination_is_identical_through_gdbench_run():
    kw = {"epochs": 40, "lr": [0.01, 0.03]}
    seq = run_cpu(EVERY_COMBINATION, engine="sequential", **kw)
    bat = run_cpu(EVERY_COMBINATION, engine="batched", **kw)
    assert len(seq.runs) == 4 * 3 * 7 * 2
    assert set(seq.runs["engine"]) == {"sequential"} and set(bat.runs["engine"]) == {"batched"}
    cols = ["run_id", "status", "error", "diverged_epoch", "epochs_run", "final_loss",
            "best_loss", "w", "b"]  # fmt: skip
    pd.testing.assert_frame_equal(seq.runs[cols], bat.runs[cols])
    pd.testing.assert_frame_equal(seq.history, bat.history)
    assert set(seq.runs["status"]) == {"ok", "diverged"}


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_the_trainer_is_what_run_drives(plugin_set, name):
    """``run`` is ``trainer`` + ``train`` + ``results``; ``step`` by hand (as benchmarks
    time it) advances the runs exactly as ``train`` does."""
    specs = make_specs(plugin_set, "adam,mse,default,normal", seeds=(0, 1), epochs=12)
    engine = make_engines()[name]
    by_run = run_through(name, specs)
    size = 1 if name == "sequential" else len(specs)
    for start in range(0, len(specs), size):
        batch, expected = specs[start : start + size], by_run[start : start + size]
        trainer = engine.trainer(batch, DATA)
        assert trainer.train() == 12
        for a, b in zip(trainer.results(setup_s=1.0, train_s=2.0), expected, strict=True):
            assert_same_result(a, b)
            assert (a.setup_s, a.train_s) == (1.0 / len(batch), 2.0 / len(batch))
        stepped = engine.trainer(batch, DATA)
        for epoch in range(12):
            stepped.step(epoch)
        final_loss, w, b = (np.asarray(v).reshape(len(batch), -1)[:, 0]
                            for v in stepped.final_state())  # fmt: skip
        np.testing.assert_array_equal(final_loss, [r.final_loss for r in expected])
        np.testing.assert_array_equal(w, [r.w for r in expected])
        np.testing.assert_array_equal(b, [r.b for r in expected])


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_on_epoch_sees_every_live_run_and_epoch(plugin_set, name):
    specs = make_specs(plugin_set, f"sgd,mse,default,{EXPLODING_INIT}", epochs=6)
    calls = []
    results = run_through(name, specs, on_epoch=lambda s, e, m: calls.append((s.run_id, e, m)))
    ok, diverged = results
    assert (ok.status, diverged.status, diverged.diverged_epoch) == ("ok", "diverged", 1)
    assert [(r, e) for r, e, _ in calls if r == ok.run_id] == [(ok.run_id, e) for e in range(1, 7)]
    # "each live run": nothing after the epoch it diverged at, which the history ends with
    reported = [e for r, e, _ in calls if r == diverged.run_id]
    assert reported == [1], f"on_epoch saw epochs {reported} of a run that diverged at epoch 1"
    for run_id, epoch, metrics in calls:
        result = results[run_id]
        assert set(metrics) == set(PER_EPOCH)
        for key in PER_EPOCH:
            assert metrics[key] == pytest.approx(result.history[key][epoch - 1], rel=1e-12,
                                                 nan_ok=True)  # fmt: skip


class Failing:
    @hookimpl
    def gdbench_register_losses(self, register):
        def failing(prediction, target):
            raise RuntimeError("this loss always fails")

        register("failing", failing, batchable=True)


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_a_fault_inside_a_plugin_is_an_error_result_never_an_exception(name):
    ps = load_plugins(extra=[("failing", Failing())])
    specs = make_specs(ps, "sgd,failing", seeds=(0, 1, 2), epochs=5)
    results = run_through(name, specs)
    assert [r.status for r in results] == ["error"] * 3
    for r in results:
        assert "RuntimeError: this loss always fails" in r.error
        assert r.epochs_run == 0 and r.history == {} and math.isnan(r.final_loss)
        assert r.engine == name


def test_auto_gives_each_run_the_first_engine_that_accepts_it(plugin_set):
    class Unbatchable:
        @hookimpl
        def gdbench_register_optimizers(self, register):
            register("adagrad", gdbench.lazy("torch.optim:Adagrad"), defaults={"lr": 0.1})

    ps = load_plugins(extra=[("unbatchable", Unbatchable())])
    specs = make_specs(ps, "adagrad,adam,l1,mse", seeds=(0, 1, 2))
    engines = make_engines()
    batches = make_batches(specs, engines, "auto", None)
    assert all(isinstance(b, Batch) for b in batches)
    by_engine = {}
    for b in batches:
        by_engine.setdefault(b.engine, []).append(b)
        if b.engine == "batched":  # stacked runs share optimizer and loss
            assert len({(s.optimizer, s.loss) for s in b.specs}) == 1
    # the sequential engine's batch is its runs one after the other, same task and device
    assert [len(b.specs) for b in by_engine["sequential"]] == [6]
    assert {s.optimizer.name for b in by_engine["sequential"] for s in b.specs} == {"adagrad"}
    assert sorted(len(b.specs) for b in by_engine["batched"]) == [3, 3]  # adam × l1, mse
    assert sorted(s.run_id for b in batches for s in b.specs) == list(range(12))
    with pytest.raises(gdbench.UsageError, match="not declared batchable") as caught:
        make_batches(specs, engines, "batched", None)
    assert caught.value.param == "engine"


def test_max_batch_bounds_every_batch(plugin_set):
    specs = make_specs(plugin_set, "adam[lr=0.01,0.02],mse", seeds=range(6))
    engines = make_engines()
    assert [len(b.specs) for b in make_batches(specs, engines, "batched", None)] == [12]
    assert [len(b.specs) for b in make_batches(specs, engines, "batched", 5)] == [5, 5, 2]
    assert [len(b.specs) for b in make_batches(specs, engines, "sequential", 5)] == [5, 5, 2]
    caps = {"batched": 4, "sequential": 12}  # one cap per engine
    assert [len(b.specs) for b in make_batches(specs, engines, "batched", caps)] == [4, 4, 4]
    assert [len(b.specs) for b in make_batches(specs, engines, "sequential", caps)] == [12]
    with pytest.raises(gdbench.UsageError, match="'warp' is unknown") as caught:
        make_batches(specs, engines, "warp", None)
    assert caught.value.param == "engine"
    batches = make_batches(specs, engines, "batched", 5)
    again = pickle.loads(pickle.dumps(batches))  # plain values, for other executors
    assert [(b.engine, [s.run_id for s in b.specs]) for b in again] == [
        (b.engine, [s.run_id for s in b.specs]) for b in batches
    ]


def test_make_engines_names_them_in_the_order_auto_tries():
    engines = make_engines(compile=True)
    assert tuple(engines) == ENGINE_NAMES == ("batched", "sequential")
    assert {name: e.name for name, e in engines.items()} == {n: n for n in ENGINE_NAMES}
    assert engines["batched"].compile is True and make_engines()["batched"].compile is False


def test_implementation_names_the_optimizer_code_path():
    import torch

    from gdbench.engine.base import implementation_of

    params = [torch.zeros(2, requires_grad=True)]
    assert implementation_of(torch.optim.SGD(params, lr=0.1)) == "for-loop"
    assert implementation_of(torch.optim.SGD(params, lr=0.1, foreach=True)) == "foreach"
    assert implementation_of(torch.optim.Adam(params, lr=0.1, fused=True)) == "fused"
    # on CUDA torch takes the foreach path when foreach is left unset; no CUDA here, so a
    # stand-in for an optimizer whose parameters are on a CUDA device
    on_cuda = SimpleNamespace(
        defaults={"foreach": None, "fused": None},
        param_groups=[{"params": [SimpleNamespace(is_cuda=True)]}],
    )
    assert implementation_of(on_cuda) == "foreach"
