"""The conformance kit passes gdbench's own plugins and catches deliberately broken ones."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace

import gdbench_plugins.initializers
import gdbench_plugins.losses
import gdbench_plugins.optimizers
import pytest
import torch

from gdbench import hookimpl
from gdbench.kinds import KIND_NAMES
from gdbench.testing import (
    API,
    BEHAVIOUR,
    check_plugin,
    checks_for,
    parametrize_with_checks,
    plugin_checkables,
    plugin_components,
)


def failing_checks(plugin) -> dict[str, str]:
    """{check name: message} for every check that fails on the plugin's components."""
    failed = {}
    for component in plugin_components(plugin):
        for check in checks_for(component):
            try:
                check(component)
            except AssertionError as exc:
                failed[check.__name__] = str(exc)
    return failed


BUILTIN_PLUGINS = [gdbench_plugins.optimizers, gdbench_plugins.losses, gdbench_plugins.initializers]


@pytest.mark.parametrize("plugin", BUILTIN_PLUGINS, ids=lambda m: m.__name__)
def test_builtin_plugins_pass_every_check(plugin):
    check_plugin(plugin)


def test_checks_are_registered_per_kind_and_category():
    by_kind = {}
    for plugin in BUILTIN_PLUGINS:
        for component in plugin_components(plugin):
            by_kind.setdefault(component.kind, component)  # sgd, l1, default
    assert set(by_kind) == set(KIND_NAMES)
    for kind, component in by_kind.items():
        checks = checks_for(component)
        assert checks and all(c.__name__.startswith(f"check_{kind}_") for c in checks)
        assert {c.category for c in checks} == {API, BEHAVIOUR}
        assert checks[0].category == API  # the call works before its behaviour is judged
        api = checks_for(component, api_only=True)
        assert api == [c for c in checks if c.category == API]
        unbatchable = [c for c in checks if not c.needs_batchable]
        assert checks_for(replace(component, batchable=False)) == unbatchable
        assert any(c.needs_batchable for c in checks) == (kind != "init")


class IgnoresLr(torch.optim.Optimizer):
    """A fixed step of 0.01 whatever lr says."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-0.01)


class NormalizedGD(torch.optim.Optimizer):
    """p -= lr * g / |g|: not elementwise, so stacking runs couples them."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad / p.grad.norm(), alpha=-group["lr"])


class ReadsDefaultsLr(torch.optim.Optimizer):
    """p -= lr * g with lr from self.defaults: every param group steps alike, so in the
    batched engine every lr of a grid gives the same result."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-self.defaults["lr"])


class LateBlowUp(torch.optim.Optimizer):
    """Momentum whose 'bias correction' divides by beta**t: fine for 20 steps, then the
    step grows as 0.9**-t and the loss explodes."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["t"] = state.get("t", 0) + 1
                m = state.setdefault("m", torch.zeros_like(p)).mul_(0.9).add_(p.grad, alpha=0.1)
                p.add_(m / 0.9 ** state["t"], alpha=-group["lr"])


def reshaping_init(weight, bias, generator):
    weight.data = torch.zeros(weight.shape[0] + 1, weight.shape[1])
    bias.zero_()


def returning_init(weight, bias, generator):
    return torch.zeros_like(weight), torch.zeros_like(bias)


class WrongGradL1(torch.autograd.Function):
    """|p - y| forward, but (p - y) instead of sign(p - y) backward."""

    @staticmethod
    def forward(ctx, p, y):
        ctx.save_for_backward(p, y)
        return (p - y).abs()

    @staticmethod
    def backward(ctx, grad):
        p, y = ctx.saved_tensors
        return grad * (p - y), None


def wrong_grad_l1(prediction, target):
    return WrongGradL1.apply(prediction, target)


def mean_l1(prediction, target):
    return (prediction - target).abs().mean()


def relative_l1(prediction, target):
    err = (prediction - target).abs()
    return err / err.mean()


def global_rng_init(weight, bias, generator):
    weight.normal_()
    bias.normal_()


def seed_ignoring_init(weight, bias, generator):
    torch.randn(1, generator=generator)  # draws, then ignores the draw
    weight.fill_(0.5)
    bias.fill_(0.5)


class Broken:
    def __init__(self, kind, name, fn, **kw):
        self.kind, self.name, self.fn, self.kw = kind, name, fn, kw

    @hookimpl
    def gdbench_register_optimizers(self, register):
        if self.kind == "optimizer":
            register(self.name, self.fn, defaults={"lr": 0.1}, **self.kw)

    @hookimpl
    def gdbench_register_losses(self, register):
        if self.kind == "loss":
            register(self.name, self.fn, **self.kw)

    @hookimpl
    def gdbench_register_initializers(self, register):
        if self.kind == "init":
            register(self.name, self.fn, **self.kw)


@pytest.mark.parametrize(
    "plugin, expected",
    [
        (Broken("optimizer", "ignores-lr", IgnoresLr), {"check_optimizer_respects_lr"}),
        (
            Broken("optimizer", "ngd", NormalizedGD, batchable=True),
            {"check_optimizer_batchable"},
        ),
        (Broken("optimizer", "ngd", NormalizedGD, batchable=False), set()),
        (Broken("optimizer", "not-an-optimizer", lambda params, lr: None), None),
        (Broken("loss", "wrong-grad", wrong_grad_l1, batchable=True), {"check_loss_gradient"}),
        (Broken("loss", "mean", mean_l1), {"check_loss_per_element"}),
        (Broken("loss", "relative", relative_l1, batchable=True), {"check_loss_batchable"}),
        (Broken("init", "global-rng", global_rng_init), {"check_init_deterministic"}),
        (Broken("init", "ignores-seed", seed_ignoring_init), {"check_init_seed_matters"}),
        (Broken("optimizer", "defaults-lr", ReadsDefaultsLr), {"check_optimizer_respects_lr"}),
        (
            Broken("optimizer", "defaults-lr", ReadsDefaultsLr, batchable=True),
            {"check_optimizer_respects_lr", "check_optimizer_batchable"},
        ),
        (Broken("optimizer", "late-blow-up", LateBlowUp), {"check_optimizer_float32_stable"}),
        (Broken("optimizer", "sgd", torch.optim.SGD), {"check_optimizer_name_is_free"}),
        (Broken("loss", "mse", lambda p, t: (p - t) ** 2), {"check_loss_name_is_free"}),
        (
            Broken("init", "reshape", reshaping_init),
            {"check_init_fills_in_place", "check_init_deterministic", "check_init_seed_matters"},
        ),
        (
            Broken("init", "returns", returning_init),  # fills nothing: NaN != NaN too
            {"check_init_fills_in_place", "check_init_deterministic"},
        ),
    ],
    ids=lambda v: v.name if isinstance(v, Broken) else None,
)
def test_kit_catches_broken_components(plugin, expected):
    failed = failing_checks(plugin)
    if expected is None:  # broken at the API level: every check fails (its name is fine)
        every = {c.__name__ for c in checks_for(plugin_components(plugin)[0])}
        assert set(failed) == every - {"check_optimizer_name_is_free"}
    else:
        assert set(failed) == expected
    for message in failed.values():
        assert plugin.name in message  # names the component; wording is the kit's own


def test_check_plugin_lists_every_failure_and_honours_expected_failures():
    plugin = Broken("optimizer", "ignores-lr", IgnoresLr)
    with pytest.raises(AssertionError, match="check_optimizer_respects_lr"):
        check_plugin(plugin)
    known = {"ignores-lr": {"check_optimizer_respects_lr": "fixed step by design"}}
    check_plugin(plugin, expected_failures=known)
    check_plugin(plugin, api_only=True)
    with pytest.raises(AssertionError, match="expected to fail"):
        check_plugin(gdbench_plugins.optimizers, expected_failures={"sgd": known["ignores-lr"]})


def test_a_plugin_that_fails_to_load_fails_the_kit():
    class Raising:
        @hookimpl
        def gdbench_register_losses(self, register):
            raise RuntimeError("boom")

    with pytest.raises(AssertionError, match="failed to load"):
        plugin_components(Raising())


AUTHOR_TESTS = """
import gdbench
from gdbench import hookimpl
from gdbench.testing import parametrize_with_checks


def cauchy(prediction, target):
    return (prediction - target).square().log1p()


def noisy(weight, bias, generator):
    weight.normal_()
    bias.normal_()


class Plugin:
    @hookimpl
    def gdbench_register_losses(self, register):
        register("cauchy", cauchy, batchable=True)

    @hookimpl
    def gdbench_register_initializers(self, register):
        register("noisy", noisy)


@parametrize_with_checks(
    Plugin(), expected_failures={"cauchy": {"check_loss_batchable": "to show a strict xfail"}}
)
def test_conformance(component, check):
    check(component)


def test_fixture_runs_the_plugin(gdbench_plugin_set):
    plugin_set = gdbench_plugin_set(Plugin(), names=["mine"])
    res = gdbench.run("sgd,cauchy", epochs=5, out=None, plugin_set=plugin_set, device="cpu")
    assert list(res.runs["status"]) == ["ok"] and list(res.runs["loss_plugin"]) == ["mine"]
"""


def test_author_suite_through_the_pytest11_plugin(tmp_path):
    """An author's test file, run by pytest in a subprocess: the fixture comes from the
    installed pytest11 entry point, and each (component, check) is its own item."""
    (tmp_path / "test_author.py").write_text(textwrap.dedent(AUTHOR_TESTS))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", "test_author.py"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "FAILED test_author.py::test_conformance[init:noisy-check_init_deterministic]" in out
    assert "PASSED test_author.py::test_conformance[init:noisy-check_init_fills_in_place]" in out
    assert "XFAIL test_author.py::test_conformance[loss:cauchy-check_loss_batchable]" not in out
    assert "XPASS" in out and "check_loss_batchable" in out  # strict: a passing xfail fails
    assert "PASSED test_author.py::test_conformance[loss:cauchy-check_loss_gradient]" in out
    assert "PASSED test_author.py::test_fixture_runs_the_plugin" in out
    assert "3 failed" not in out and "2 failed" in out


def test_the_pytest_plugin_module_imports_nothing_heavy():
    code = "import sys, gdbench.testing; print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_installed_plugins_are_checked_by_name():
    names = {c.name for c in plugin_components("builtin_losses")}
    assert names == {"l1", "mse", "huber"}
    check_plugin("builtin_losses")
    with pytest.raises(AssertionError, match="no installed gdbench plugin 'nosuch'"):
        plugin_components("nosuch")


class RaisingLogger:
    """A hook-only plugin whose run_end has a typo."""

    @hookimpl
    def gdbench_run_end(self, run, result):
        print(result.final_los)


class Logger:
    def __init__(self):
        self.ends = 0

    @hookimpl
    def gdbench_run_end(self, run, result):
        self.ends += 1


def test_hook_only_plugins_get_a_smoke_check_of_their_hooks():
    (hooks,) = plugin_checkables(Logger())
    assert hooks.qualified_name == "hooks:Logger" and hooks.hooks == ["gdbench_run_end"]
    assert [c.__name__ for c in checks_for(hooks)] == ["check_hooks_run_in_a_sweep"]
    check_plugin(Logger())
    with pytest.raises(AssertionError, match=r"failed in gdbench_run_end \(AttributeError"):
        check_plugin(RaisingLogger())
    marks = parametrize_with_checks(Logger()).args
    assert [p.id for p in marks[1]] == ["hooks:Logger-check_hooks_run_in_a_sweep"]
