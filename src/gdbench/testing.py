"""The conformance kit: does every component a plugin registers keep gdbench's contract?

In the spirit of scikit-learn's ``parametrize_with_checks``, a plugin author adds one test
to their own suite::

    import my_package.plugin
    from gdbench.testing import parametrize_with_checks


    @parametrize_with_checks(my_package.plugin)
    def test_gdbench_conformance(component, check):
        check(component)

and gets one pytest item per component and check, named like
``optimizer:signsgd-check_optimizer_respects_lr``. ``check_plugin(plugin)`` runs the same
checks outside pytest and raises one ``AssertionError`` listing every failure.

Checks come in two categories, as scikit-learn learned to split them:

* **api** checks: the component can be called the way gdbench calls it (an optimizer
  factory builds a ``torch.optim.Optimizer`` from ``params`` and its defaults, a loss
  returns one value per element, an initializer fills every entry in place);
* **behaviour** checks: it does what such a component should (a step changes the
  parameters and goes downhill, ``lr`` is used, a loss's gradient matches finite
  differences, an initializer is deterministic under a seed, a ``batchable`` component
  gives the same results stacked as one run at a time).

``api_only=True`` keeps only the first; ``expected_failures`` marks a check as a known
failure of one component (``{"signsgd": {"check_x": "why"}}``); it then must fail.
A failing check raises ``AssertionError`` with a message that says what to fix.

This module is also a pytest plugin (the ``pytest11`` entry point ``gdbench``), so it is
imported by every pytest session on a machine where gdbench is installed: it imports
torch and gdbench's internals only inside functions, and provides the fixture
``gdbench_plugin_set``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

API, BEHAVIOUR = "api", "behaviour"
RUNS = 4
"""Runs stacked by the batchability checks."""
STABILITY_STEPS = 300
"""float32 steps of the stability check on the default task."""

Check = Callable[[Any], None]

_CHECKS: dict[str, list[Check]] = {}
"""Every check, per component kind, in the order they are defined below."""


# ---------------------------------------------------------------- collecting checks


def plugin_components(plugin: Any, name: str | None = None) -> list:
    """Every component ``plugin`` registers, loaded exactly as gdbench loads it.

    ``plugin`` is a plugin module (or object), or the name of an installed plugin (its
    entry-point or distribution name). A plugin that fails to load is an AssertionError.
    """
    _, infos = _load(plugin, name)
    return [c for info in infos for c in info.components]


def plugin_checkables(plugin: Any, name: str | None = None) -> list:
    """What the kit checks in ``plugin``: its components, and its lifecycle hooks as one
    ``Hooks`` item when it implements any."""
    from .lifecycle import HOOKS

    plugin_set, infos = _load(plugin, name)
    found: list[Any] = []
    for info in infos:
        found += info.components
        hooks = [h for h in info.hooks if h in HOOKS]
        if hooks:
            found.append(Hooks(plugin_set.pm.get_plugin(info.name), info.name, hooks))
    return found


def _load(plugin: Any, name: str | None) -> tuple[Any, list[Any]]:
    """(plugin set, infos of ``plugin``), or an AssertionError if it failed to load."""
    from .plugins import load_plugins

    if isinstance(plugin, str):
        plugin_set = load_plugins()
        infos = [i for i in plugin_set.plugins if plugin in (i.name, i.dist)]
        if not infos:
            installed = ", ".join(sorted(i.name for i in plugin_set.plugins))
            raise AssertionError(f"no installed gdbench plugin {plugin!r}; installed: {installed}")
    else:
        label = name or str(getattr(plugin, "__name__", type(plugin).__name__))
        plugin_set = load_plugins(extra=[(label, plugin)], entry_points=False)
        infos = plugin_set.plugins
    for info in infos:
        if info.error:
            raise AssertionError(
                f"plugin {info.name} failed to load: {info.error} "
                "(set GDBENCH_RAISE_PLUGIN_ERRORS=1 for the traceback)"
            )
    return plugin_set, infos


def checks_for(component: Any, api_only: bool = False) -> list[Check]:
    """The checks that apply to ``component`` (a ``gdbench.components.Component``)."""
    checks = [
        check
        for check in _CHECKS.get(component.kind, [])
        if not (api_only and check.category != API)  # type: ignore[attr-defined]
        and not (check.needs_batchable and not component.batchable)  # type: ignore[attr-defined]
        and not (check.needs_optimum and component.optimum is None)  # type: ignore[attr-defined]
    ]
    return checks


def parametrize_with_checks(
    plugin: Any,
    *,
    api_only: bool = False,
    expected_failures: Mapping[str, Mapping[str, str]] | None = None,
):
    """A ``pytest.mark.parametrize`` over (component, check) for every registered component.

    ``expected_failures`` maps a component name (``"signsgd"`` or ``"optimizer:signsgd"``)
    to ``{check name: reason}``; such checks are strict xfails.
    """
    params = []
    for component in plugin_checkables(plugin):
        for check in checks_for(component, api_only):
            reason = _expected_failure(expected_failures, component, check)
            marks = (
                [pytest.mark.xfail(reason=reason, strict=True, raises=AssertionError)]
                if reason
                else []
            )
            params.append(
                pytest.param(
                    component, check, id=f"{component.qualified_name}-{check.__name__}", marks=marks
                )
            )
    return pytest.mark.parametrize("component, check", params)


def check_plugin(
    plugin: Any,
    *,
    api_only: bool = False,
    expected_failures: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Run every check on every component of ``plugin``; one AssertionError lists all
    failures (and any expected failure that passed)."""
    problems = []
    for component in plugin_checkables(plugin):
        for check in checks_for(component, api_only):
            expected = _expected_failure(expected_failures, component, check)
            try:
                check(component)
            except AssertionError as exc:
                if not expected:
                    problems.append(f"{component.qualified_name} {check.__name__}: {exc}")
            else:
                if expected:
                    problems.append(
                        f"{component.qualified_name} {check.__name__}: expected to fail "
                        f"({expected}) but passed; remove it from expected_failures"
                    )
    if problems:
        raise AssertionError("\n".join(problems))


def _expected_failure(expected, component, check) -> str | None:
    if not expected:
        return None
    for key in (component.name, component.qualified_name):
        reason = expected.get(key, {}).get(check.__name__)
        if reason:
            return reason
    return None


def _check(kind: str, category: str, needs_batchable: bool = False, needs_optimum: bool = False):
    """Register a check of components of ``kind``; any exception but AssertionError inside
    it becomes one, naming the component, so that a check always fails the same way."""

    def mark(fn):
        @functools.wraps(fn)
        def check(component) -> None:
            try:
                fn(component)
            except AssertionError:
                raise
            except Exception as exc:
                from .errors import one_line

                doc = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
                raise AssertionError(
                    f"{_who(component)}: raised {one_line(exc)} in {fn.__name__} ({doc})"
                ) from exc

        setattr(check, "category", category)  # noqa: B010 (attributes on a function)
        setattr(check, "needs_batchable", needs_batchable)  # noqa: B010
        setattr(check, "needs_optimum", needs_optimum)  # noqa: B010
        _CHECKS.setdefault(kind, []).append(check)
        return check

    return mark


def _who(component) -> str:
    origin = f" from plugin {component.plugin}" if component.plugin else ""
    return f"{component.kind} {component.name!r}{origin}"


def _fn(component):
    from .lazy import resolve

    return resolve(component.fn)


# ---------------------------------------------------------------- optimizers


def _build(component, params, **overrides):
    kwargs = {**component.defaults, **overrides}
    return _fn(component)(params, **kwargs)


def _steps(component, start, grads, **overrides):
    """``start`` after one optimizer step per gradient in ``grads``."""
    param = start.clone().requires_grad_()
    opt = _build(component, [param], **overrides)
    for grad in grads:
        opt.zero_grad()
        param.grad = grad.clone()
        opt.step()
    return param.detach()


def _sample(*shape, seed=0, scale=1.0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


@_check("optimizer", API)
def check_optimizer_builds(component) -> None:
    """factory([param], **defaults) returns a torch.optim.Optimizer over that param."""
    import torch

    from .errors import one_line

    param = torch.zeros(2, 1, requires_grad=True)
    try:
        opt = _build(component, [param])
    except Exception as exc:
        raise AssertionError(
            f"{_who(component)}: factory([param], **defaults) raised {one_line(exc)}; the "
            f"factory must accept a list of tensors and every key of defaults="
            f"{component.defaults}"
        ) from None
    if not isinstance(opt, torch.optim.Optimizer):
        raise AssertionError(
            f"{_who(component)}: the factory returned {type(opt).__name__}, not a "
            "torch.optim.Optimizer; register an Optimizer subclass or a function returning one"
        )
    if not any(p is param for group in opt.param_groups for p in group["params"]):
        raise AssertionError(
            f"{_who(component)}: the optimizer does not hold the parameters it was given; "
            "pass params on to torch.optim.Optimizer.__init__"
        )


@_check("optimizer", BEHAVIOUR)
def check_optimizer_step_changes_params(component) -> None:
    """One step with a non-zero gradient moves the parameters, to finite values."""
    start = _sample(3, 1)
    after = _steps(component, start, [_sample(3, 1, seed=1)])
    if not after.isfinite().all():
        raise AssertionError(f"{_who(component)}: one step made the parameters NaN or inf")
    if after.equal(start):
        raise AssertionError(
            f"{_who(component)}: a step with a non-zero gradient left the parameters "
            "unchanged; step() must update each param in place (param.add_(...) under "
            "torch.no_grad())"
        )


@_check("optimizer", BEHAVIOUR)
def check_optimizer_descends(component) -> None:
    """Twenty steps on f(p) = |p|²/2 from p = 1 lower f (the update points downhill)."""
    import torch

    param = torch.ones(3, 1, dtype=torch.float64, requires_grad=True)
    opt = _build(component, [param])
    for _ in range(20):
        opt.zero_grad()
        param.grad = param.detach().clone()  # the gradient of |p|²/2
        opt.step()
    before, after = 1.5, float(param.detach().square().sum()) / 2
    if not after < before:
        raise AssertionError(
            f"{_who(component)}: 20 steps on f(p) = |p|²/2 from p = 1 took f from {before} to "
            f"{after:g}; the update must move against the gradient (p -= lr * ...)"
        )


@_check("optimizer", BEHAVIOUR)
def check_optimizer_respects_lr(component) -> None:
    """With one parameter group per learning rate (lr, 2·lr, 4·lr), as the batched engine
    builds them, each group's first step follows its own lr (the update reads
    group['lr'], not self.defaults['lr'] or a value fixed elsewhere)."""
    import torch

    lr = float(component.defaults["lr"])
    start, grad = _sample(3, 1), _sample(3, 1, seed=1)
    params = [start.clone().requires_grad_() for _ in range(3)]
    groups = [{"params": [p], "lr": lr * 2**k} for k, p in enumerate(params)]
    opt = _fn(component)(groups, **component.defaults)
    opt.zero_grad()
    for p in params:
        p.grad = grad.clone()
    opt.step()
    steps = [(p.detach() - start) for p in params]
    for k in (1, 2):
        if steps[k].allclose(steps[0], rtol=1e-9, atol=0):
            raise AssertionError(
                f"{_who(component)}: in a parameter group with lr={lr * 2**k:g} the first step "
                f"equals the one of the group with lr={lr:g}; read the learning rate of each "
                "param group (for group in self.param_groups: group['lr']) in step(), not "
                "self.defaults['lr'] or a value fixed elsewhere (the batched engine gives "
                "each lr of a grid its own group)"
            )
    if torch.equal(steps[0], torch.zeros_like(steps[0])):
        raise AssertionError(f"{_who(component)}: the first step did not move the parameters")


@_check("optimizer", BEHAVIOUR, needs_batchable=True)
def check_optimizer_batchable(component) -> None:
    """R runs stacked in one (R, out, in) tensor per parameter group, with two groups of
    different learning rates as the batched engine builds them, evolve exactly as each
    run alone with its group's lr."""
    import torch

    lr = float(component.defaults["lr"])
    scales = torch.logspace(-3, 3, RUNS, dtype=torch.float64).view(RUNS, 1, 1)
    start = _sample(RUNS, 2, 3, seed=2)
    grads = [scales * _sample(RUNS, 2, 3, seed=10 + k) for k in range(5)]
    lrs = (lr, lr / 2)
    params = [start.clone().requires_grad_() for _ in lrs]
    opt = _fn(component)([{"params": [p], "lr": g_lr} for p, g_lr in zip(params, lrs, strict=True)],
                         **component.defaults)  # fmt: skip
    for grad in grads:
        opt.zero_grad()
        for p in params:
            p.grad = grad.clone()
        opt.step()
    for g, (param, g_lr) in enumerate(zip(params, lrs, strict=True)):
        for r in range(RUNS):
            alone = _steps(component, start[r], [grad[r] for grad in grads], lr=g_lr)
            stacked = param.detach()[r]
            if not stacked.allclose(alone, rtol=1e-6, atol=1e-9):
                diff = float((stacked - alone).abs().max())
                raise AssertionError(
                    f"{_who(component)} claims batchable=True, but run {r} of {RUNS} stacked "
                    f"in one tensor of shape {tuple(start.shape)} (parameter group {g}, "
                    f"lr={g_lr:g}) differs from the same run alone (max difference "
                    f"{diff:.3g} after 5 steps); make the update elementwise (no norms, "
                    "means or other reductions over a tensor) and read hyper-parameters from "
                    "group[...], or register it with batchable=False"
                )


@_check("optimizer", BEHAVIOUR)
def check_optimizer_float32_stable(component) -> None:
    """300 float32 steps at its default lr on gdbench's default task (the notebook's
    data, L1 loss) end with a finite loss no higher than at the start: catches updates
    that blow up only later (a bias correction gone wrong), which 20 steps would miss."""
    import torch

    from .task import Task

    x, y = Task().data("cpu")
    g = torch.Generator().manual_seed(0)
    weight = (torch.rand(1, 1, generator=g) * 2 - 1).requires_grad_()
    bias = (torch.rand(1, generator=g) * 2 - 1).requires_grad_()
    opt = _build(component, [weight, bias])
    losses = []
    for _ in range(STABILITY_STEPS):
        opt.zero_grad()
        loss = (x @ weight.T + bias - y).abs().mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        final = float((x @ weight.T + bias - y).abs().mean())
    worst = max(losses)
    if not (math.isfinite(final) and math.isfinite(worst)) or final > losses[0]:
        raise AssertionError(
            f"{_who(component)}: {STABILITY_STEPS} float32 steps at lr="
            f"{component.defaults['lr']:g} on the default task (L1) took the loss from "
            f"{losses[0]:.4g} to {final:.4g} (worst {worst:.4g}); the update grows without "
            "bound (check bias corrections, divisions by small numbers, state updates)"
        )


# ---------------------------------------------------------------- losses


def _loss(component, prediction, target):
    return _fn(component)(prediction, target, **component.defaults)


@_check("loss", API)
def check_loss_per_element(component) -> None:
    """fn(prediction, target, **defaults) returns one value per element of prediction."""
    import torch

    from .errors import one_line

    prediction, target = _sample(7, 1).float(), _sample(7, 1, seed=1).float()
    try:
        out = _loss(component, prediction, target)
    except Exception as exc:
        raise AssertionError(
            f"{_who(component)}: fn(prediction, target, **defaults) raised {one_line(exc)}"
        ) from None
    if not isinstance(out, torch.Tensor) or out.shape != prediction.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise AssertionError(
            f"{_who(component)}: returned {got} for a prediction of shape (7, 1); return the "
            "loss per element, with the prediction's shape (no .mean() or .sum(): gdbench "
            "averages over the samples itself)"
        )
    if not out.is_floating_point():
        raise AssertionError(f"{_who(component)}: returned {out.dtype}; return floats")


@_check("loss", BEHAVIOUR)
def check_loss_gradient(component) -> None:
    """Autograd's gradient of the loss matches finite differences (gradcheck, float64)."""
    import torch

    prediction = _sample(6, 1).requires_grad_()
    target = _sample(6, 1, seed=1)
    try:
        torch.autograd.gradcheck(
            lambda p: _loss(component, p, target), (prediction,), eps=1e-6, atol=1e-5, rtol=1e-3
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AssertionError(
            f"{_who(component)}: its gradient with respect to the prediction does not match "
            f"finite differences in float64 ({first}); build the loss from differentiable "
            "torch operations, or fix the backward of your autograd.Function"
        ) from None


@_check("loss", BEHAVIOUR, needs_batchable=True)
def check_loss_batchable(component) -> None:
    """On predictions of R runs stacked as rows (R, n), as the batched engine computes
    them, each run's loss equals its own computed alone on a (1, n) row."""
    prediction = _sample(RUNS, 5)
    target = _sample(RUNS, 5, seed=1)
    stacked = _loss(component, prediction, target)
    for r in range(RUNS):
        alone = _loss(component, prediction[r : r + 1], target[r : r + 1])[0]
        if tuple(stacked.shape) != tuple(prediction.shape) or not stacked[r].allclose(alone):
            raise AssertionError(
                f"{_who(component)} claims batchable=True, but on predictions of {RUNS} runs "
                f"stacked in shape {tuple(prediction.shape)} run {r} gets a different loss "
                "than alone; compute it elementwise or register it with batchable=False"
            )


@_check("loss", BEHAVIOUR, needs_optimum=True)
def check_loss_optimum(component) -> None:
    """The registered solver's point is no worse than nearby points, nor than a long
    float64 L-BFGS run from least squares (on 1 and 2 features, heavy-tailed noise)."""
    import numpy as np
    import torch

    from .lazy import resolve
    from .task import Task

    for dim in (1, 2):
        x, y = (t.double() for t in Task(n_samples=200, dim=dim, noise="laplace").data("cpu"))
        xs, ys = x.numpy(), y.numpy().reshape(-1)
        w, b = resolve(component.optimum)(xs, ys, **component.defaults)
        coef = torch.tensor(np.append(np.asarray(w, dtype=np.float64).reshape(-1), b))
        if coef.numel() != dim + 1:
            raise AssertionError(
                f"{_who(component)}: its optimum returned {coef.numel() - 1} weights for "
                f"{dim} features; return (w of length d, b)"
            )
        best = _mean_loss(component, x, y, coef)
        g = torch.Generator().manual_seed(0)
        for scale in (1e-4, 1e-2, 1.0):
            for _ in range(10):
                nearby = coef + scale * torch.randn(dim + 1, generator=g, dtype=torch.float64)
                if _mean_loss(component, x, y, nearby) < best - 1e-12 * max(1.0, abs(best)):
                    raise AssertionError(
                        f"{_who(component)}: its optimum ({best:.12g}) is beaten by a point "
                        f"{scale:g} away; the solver must return the exact minimiser"
                    )
        reference = _lbfgs(component, x, y)
        if best > reference + 1e-9 * max(1.0, abs(reference)):
            raise AssertionError(
                f"{_who(component)}: its optimum ({best:.12g}) is worse than float64 L-BFGS "
                f"({reference:.12g}) on {dim} feature(s)"
            )


def _mean_loss(component, x, y, coef) -> float:
    import torch

    with torch.no_grad():
        return float(_loss(component, x @ coef[:-1].view(-1, 1) + coef[-1], y).mean())


def _lbfgs(component, x, y) -> float:
    """The loss after a long float64 L-BFGS run from least squares."""
    import torch

    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    coef = torch.linalg.lstsq(design, y).solution.view(-1).clone().requires_grad_()
    opt = torch.optim.LBFGS([coef], lr=1, max_iter=2000, tolerance_grad=1e-14,
                            tolerance_change=1e-16, line_search_fn="strong_wolfe")  # fmt: skip

    def closure():
        opt.zero_grad()
        value = _loss(component, x @ coef[:-1].view(-1, 1) + coef[-1], y).mean()
        value.backward()
        return value

    for _ in range(5):
        opt.step(closure)
    return _mean_loss(component, x, y, coef.detach())


# ---------------------------------------------------------------- initializers


def _init(component, seed, global_seed=0):
    """Initial (weight, bias, generator state changed?, global RNG touched?) for a (3, 2)
    layer under ``seed``; the global RNG is reseeded with ``global_seed`` and restored."""
    weight, bias, drew, touched, _ = _init_call(component, seed, global_seed)
    return weight, bias, drew, touched


def _init_call(component, seed, global_seed=0):
    """As ``_init``, plus what the initializer returned, and after checking that it
    filled the very tensors it was given (same shape, same storage)."""
    import torch

    weight, bias = torch.full((3, 2), float("nan")), torch.full((3,), float("nan"))
    storage = (weight.data_ptr(), bias.data_ptr())
    g = torch.Generator().manual_seed(seed)
    state = g.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(global_seed)
        global_state = torch.random.get_rng_state()
        with torch.no_grad():
            returned = _fn(component)(weight, bias, g, **component.defaults)
        touched_global = not torch.random.get_rng_state().equal(global_state)
    if (tuple(weight.shape), tuple(bias.shape)) != ((3, 2), (3,)):
        raise AssertionError(
            f"{_who(component)}: changed the shapes of weight (3, 2) and bias (3,) to "
            f"{tuple(weight.shape)} and {tuple(bias.shape)}; fill them in place, never assign "
            "weight.data"
        )
    if (weight.data_ptr(), bias.data_ptr()) != storage:
        raise AssertionError(
            f"{_who(component)}: replaced the storage of weight or bias (weight.data = ...); "
            "fill the tensors you are given in place (weight.uniform_(...), weight.copy_(...))"
        )
    return weight, bias, not g.get_state().equal(state), touched_global, returned


@_check("init", API)
def check_init_fills_in_place(component) -> None:
    """fn(weight, bias, generator, **defaults) fills every entry of the given weight and
    bias in place (same shape, same storage) with finite values, and returns None."""
    from .errors import one_line

    try:
        weight, bias, _, _, returned = _init_call(component, seed=0)
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"{_who(component)}: fn(weight, bias, generator, **defaults) on a (3, 2) weight "
            f"raised {one_line(exc)}"
        ) from None
    if returned is not None:
        raise AssertionError(
            f"{_who(component)}: returned {type(returned).__name__}; gdbench ignores return "
            "values, so fill weight and bias in place and return None"
        )
    for name, tensor in (("weight", weight), ("bias", bias)):
        if not tensor.isfinite().all():
            raise AssertionError(
                f"{_who(component)}: left NaN or inf in {name} (shape {tuple(tensor.shape)}); "
                "fill every entry in place with finite values (e.g. weight.uniform_(..., "
                "generator=generator))"
            )


@_check("init", BEHAVIOUR)
def check_init_deterministic(component) -> None:
    """The same seed gives the same values, whatever the global RNG's state."""
    w1, b1, _, touched_global = _init(component, seed=0, global_seed=1)
    w2, b2, _, _ = _init(component, seed=0, global_seed=2)
    if touched_global or not (w1.equal(w2) and b1.equal(b2)):
        raise AssertionError(
            f"{_who(component)}: is not deterministic under a seed (it draws from torch's "
            "global random generator); draw every random number from the generator "
            "argument, e.g. weight.normal_(0, 1, generator=generator)"
        )


@_check("init", BEHAVIOUR)
def check_init_seed_matters(component) -> None:
    """Different seeds give different values, unless it never draws random numbers
    (a deterministic initializer such as zeros passes)."""
    w1, b1, drew, _ = _init(component, seed=0)
    w2, b2, _, _ = _init(component, seed=1)
    if drew and w1.equal(w2) and b1.equal(b2):
        raise AssertionError(
            f"{_who(component)}: draws from the generator but seeds 0 and 1 give the same "
            "values; use the generator you are given for every random draw"
        )


# ---------------------------------------------------------------- names


def _name_check(kind: str) -> Check:
    def check(component) -> None:
        builtin = _builtin_names().get((component.kind, component.name))
        if builtin is not None and builtin != _identity(component.fn):
            raise AssertionError(
                f"{_who(component)}: {component.name!r} is a built-in name, so users get the "
                f"built-in unless they write {component.plugin}/{component.name}; choose "
                "another name"
            )

    check.__name__ = check.__qualname__ = f"check_{kind}_name_is_free"
    check.__doc__ = "Its name is not one of gdbench's built-in components' names."
    return _check(kind, API)(check)


@functools.cache
def _builtin_names() -> dict[tuple[str, str], Any]:
    """(kind, name) → the built-in's function (its lazy path), to tell a clash from the
    built-in module itself being checked."""
    from .plugins import PluginFilter, load_plugins

    plugin_set = load_plugins(plugin_filter=PluginFilter(only=frozenset()))
    return {(c.kind, c.name): _identity(c.fn) for c in plugin_set.registry.components()
            if c.builtin}  # fmt: skip


def _identity(fn: Any) -> Any:
    return getattr(fn, "path", fn)


check_optimizer_name_is_free = _name_check("optimizer")
check_loss_name_is_free = _name_check("loss")
check_init_name_is_free = _name_check("init")


# ---------------------------------------------------------------- lifecycle hooks


class Hooks:
    """A plugin's lifecycle hooks, checked like a component: a plugin that registers no
    component (a logger, an exporter) still gets a smoke test instead of an empty
    parameter set."""

    kind = "hooks"
    batchable = False
    optimum = None

    def __init__(self, obj: Any, name: str, hooks: list[str]) -> None:
        self.obj, self.name, self.hooks = obj, name, hooks
        self.plugin = name

    @property
    def qualified_name(self) -> str:
        return f"hooks:{self.name}"

    def __repr__(self) -> str:
        return f"Hooks({self.name!r}: {', '.join(self.hooks)})"


@_check("hooks", BEHAVIOUR)
def check_hooks_run_in_a_sweep(hooks: Hooks) -> None:
    """Its lifecycle hooks run through a tiny sweep (sgd and adam, two seeds, 5 epochs,
    a results folder) without raising."""
    import tempfile
    import warnings

    import gdbench

    from .lifecycle import PluginWarning
    from .plugins import PluginFilter, load_plugins

    plugin_set = load_plugins(extra=[(hooks.name, hooks.obj)],
                              plugin_filter=PluginFilter(only=frozenset()))  # fmt: skip
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        gdbench.run("sgd,adam", seeds=2, epochs=5, device="cpu", out=out, plot=False,
                    plugin_set=plugin_set)  # fmt: skip
    faults = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    if faults:
        raise AssertionError(f"hooks of plugin {hooks.name!r}: {'; '.join(faults)}")


# ---------------------------------------------------------------- the pytest plugin


@pytest.fixture
def gdbench_plugin_set() -> Callable[..., Any]:
    """Factory: ``gdbench_plugin_set(my_plugin, ...)`` is a plugin set holding gdbench's
    built-ins and the given plugin modules (no other installed plugin), for
    ``gdbench.run(..., plugin_set=...)`` in a plugin's own end-to-end tests."""

    def make(*plugins: Any, names: Iterable[str] | None = None):
        from .plugins import PluginFilter, load_plugins

        names = list(names) if names else [getattr(p, "__name__", repr(p)) for p in plugins]
        plugin_set = load_plugins(
            extra=list(zip(names, plugins, strict=True)),
            plugin_filter=PluginFilter(only=frozenset()),
        )
        for info in plugin_set.failures:
            raise AssertionError(f"plugin {info.name} failed to load: {info.error}")
        return plugin_set

    return make
