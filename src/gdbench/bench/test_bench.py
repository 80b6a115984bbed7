"""Timing one training step and one full run for every selected combination.

Parametrized over optimizers × losses × devices × batch sizes R (R = 1 is a single run
on the sequential engine; R > 1 stacks R runs on the batched engine when the components
are batchable). ``benchmark.extra_info`` carries what is needed to join these numbers
with convergence results: component names, plugin package and version, device name,
torch version, task size.
"""

from __future__ import annotations

import itertools

import pytest

from gdbench.bench.config import from_environ

CONFIG = from_environ()


_CASES: dict[str, dict] = {}


def pytest_generate_tests(metafunc):
    """One case per device × optimizer × loss × R; the parameter is the case's id, so that
    pytest-benchmark can group by it (``--benchmark-group-by param:case``)."""
    if "case_id" in metafunc.fixturenames:
        if not _CASES:
            _CASES.update((c["id"], c) for c in _cases())
        metafunc.parametrize("case_id", list(_CASES), scope="module")


@pytest.fixture(scope="module")
def case(case_id):
    return _CASES[case_id]


def _cases() -> list[dict]:
    from gdbench.devices import resolve_devices
    from gdbench.plugins import get_plugins
    from gdbench.selection import select

    sel = select(get_plugins().registry, CONFIG.plugins)
    devices = resolve_devices(CONFIG.device)
    cases = []
    for device, opt, loss, init, runs in itertools.product(
        devices, sel.optimizers, sel.losses, sel.inits[:1], CONFIG.runs
    ):
        batched = runs > 1
        if batched and not (opt.component.batchable and loss.component.batchable):
            continue
        label = f"{opt.label()}-{loss.label()}"
        cases.append({
            "id": f"{device}-{label}-R{runs}",
            "device": device, "optimizer": opt, "loss": loss, "init": init, "runs": runs,
        })  # fmt: skip
    return cases


@pytest.fixture(scope="module")
def prepared(case):
    """Specs, data and a warmed-up engine state for one case (not timed)."""
    import torch

    from gdbench import Task
    from gdbench.engine import make_engines
    from gdbench.plan import RunSpec

    task = Task(n_samples=CONFIG.n_samples)
    choices = (case["optimizer"], case["loss"], case["init"])
    device = case["device"]
    specs = [RunSpec(i, choices, i, device, CONFIG.epochs, task) for i in range(case["runs"])]
    data = task.data(device)
    engine = make_engines()["sequential" if len(specs) == 1 else "batched"]
    trainer = engine.trainer(specs, data)
    for epoch in range(3):  # the first optimizer step pays one-off costs (~2 s here)
        trainer.step(epoch)
    _sync(torch, device)
    return specs, data, engine, trainer


def _sync(torch, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _describe(benchmark, case, what: str) -> None:
    import torch

    from gdbench.devices import device_name

    opt, loss = case["optimizer"], case["loss"]
    name = device_name(case["device"])
    # one table per thing timed × R × device: its rows compare the components
    benchmark.group = f"{what}, R={case['runs']}, on {case['device']} ({name})"
    benchmark.extra_info.update(
        what=what,
        optimizer=opt.label(), optimizer_plugin=opt.component.plugin,
        optimizer_dist=opt.component.dist, optimizer_version=opt.component.version,
        loss=loss.label(), loss_plugin=loss.component.plugin,
        loss_dist=loss.component.dist, loss_version=loss.component.version,
        device=case["device"], device_name=device_name(case["device"]),
        runs=case["runs"], engine="sequential" if case["runs"] == 1 else "batched",
        epochs=CONFIG.epochs if what == "run" else 1, n_samples=CONFIG.n_samples,
        torch_version=torch.__version__,
    )  # fmt: skip


def test_step(benchmark, case, prepared):
    """One zero_grad → forward → loss → backward → step, for all R runs at once."""
    import torch

    _, _, _, trainer = prepared
    _describe(benchmark, case, "step")
    device = case["device"]
    epochs = CONFIG.epochs
    counter = itertools.count()

    def step():
        trainer.step(next(counter) % epochs)
        _sync(torch, device)

    benchmark(step)


def test_run(benchmark, case, prepared):
    """A complete run of CONFIG.epochs epochs (R runs for R > 1), results included."""
    import torch

    specs, data, engine, _ = prepared
    _describe(benchmark, case, "run")
    device = case["device"]

    def full_run():
        results = engine.run(specs, data)
        _sync(torch, device)
        return results

    results = benchmark(full_run)
    assert all(r.status != "error" for r in results), results[0].error
