"""The optimum each run is measured against: the best possible loss on its own data.

A loss may register an exact solver with itself (``register("l1", fn, optimum=solver)``):
``solver(x, y, **hyperparameters) -> (w, b)`` on the run's samples in float64. Without
one, gdbench computes a numerical reference: a quasi-Newton method (L-BFGS-B, float64,
gradients by autograd) from least squares and from the true parameters, to tight
tolerance, keeping the better end. The starts are fixed, not taken from the runs, so the
reference does not depend on which batch finished first: it is the same in process and
on every worker of a cluster. Either way gdbench evaluates the loss at the optimum
itself, in float64, with the loss's own function, so ``gap = loss - optimum`` compares like
with like. One optimum per (data, loss, hyper-parameters), cached for the sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import one_line

if TYPE_CHECKING:
    from .selection import Choice
    from .task import Task

EXACT, NUMERICAL = "exact", "numerical"


@dataclass(frozen=True)
class Optimum:
    """The optimal parameters and loss of one (data, loss) pair, and how they were found."""

    w: tuple[float, ...]
    b: float
    loss: float
    method: str


def samples64(task: Task) -> tuple[np.ndarray, np.ndarray]:
    """The exact float32 samples the runs train on, widened to float64: x (n, d), y (n,)."""
    x, y = task.data("cpu")
    return x.double().numpy(), y.double().numpy().reshape(-1)


def mean_loss(choice: Choice, x: np.ndarray, y: np.ndarray, w: Any, b: Any) -> np.ndarray:
    """The loss in float64 for parameters ``w`` (R, d) and ``b`` (R,); returns (R,)."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64).view(1, -1)
    wt = torch.as_tensor(np.asarray(w, dtype=np.float64)).view(-1, xt.shape[1])
    bt = torch.as_tensor(np.asarray(b, dtype=np.float64)).view(-1, 1)
    with torch.no_grad():
        pred = bt + wt @ xt.T  # (R, n)
        return _loss_fn(choice)(pred, yt.expand_as(pred), **choice.kwargs()).mean(dim=1).numpy()


def _loss_fn(choice: Choice) -> Callable[..., torch.Tensor]:
    return choice.component.fn


class OptimumError(Exception):
    """The optimum could not be computed: the loss or its solver raised."""


class Optima:
    """Optima computed on demand and cached for the sweep, keyed by (task, loss choice);
    a failure is cached too (as ``OptimumError``), so it is reported once per pair."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, Any], Optimum | OptimumError] = {}

    def get(self, task: Task, loss: Choice) -> Optimum:
        key = (task, loss)
        if key not in self._cache:
            try:
                self._cache[key] = compute_optimum(task, loss)
            except Exception as exc:  # a fault of the loss plugin: its runs say so
                how = "solver" if loss.component.optimum is not None else "numerical optimum"
                self._cache[key] = OptimumError(
                    f"{how} of {loss.component.qualified_name} from plugin "
                    f"{loss.component.plugin!r} failed: {one_line(exc)}"
                )
        found = self._cache[key]
        if isinstance(found, OptimumError):
            raise found
        return found


def compute_optimum(task: Task, loss: Choice) -> Optimum:
    """The exact optimum when the loss registered a solver, else a numerical reference."""
    x, y = samples64(task)
    solver = loss.component.optimum
    if solver is not None:
        w, b = solver(x, y, **loss.kwargs())
        w = np.asarray(w, dtype=np.float64).reshape(-1)
        method = EXACT
    else:
        truth = ([task.w_true] * task.dim, task.b_true)
        w, b = numerical_optimum(loss, x, y, [truth])
        method = NUMERICAL
    value = float(mean_loss(loss, x, y, w[None, :], [b])[0])
    return Optimum(tuple(float(v) for v in w), float(b), value, method)


def numerical_optimum(
    loss: Choice, x: np.ndarray, y: np.ndarray, starts: Sequence[tuple[Any, float]] = ()
) -> tuple[np.ndarray, float]:
    """L-BFGS-B in float64 from least squares and each of ``starts`` ((w, b) pairs); the
    best end point."""
    from scipy.optimize import minimize

    design = np.column_stack([x, np.ones(len(y))])
    ols = np.linalg.lstsq(design, y, rcond=None)[0]
    candidates = [ols, *(np.append(np.asarray(w, dtype=np.float64), b) for w, b in starts)]
    d = x.shape[1]

    def value_and_grad(coef: np.ndarray) -> tuple[float, np.ndarray]:
        c = torch.tensor(coef, dtype=torch.float64, requires_grad=True)
        xt = torch.as_tensor(x)
        pred = (xt @ c[:d] + c[d]).view(1, -1)
        yt = torch.as_tensor(y).view(1, -1)
        value = _loss_fn(loss)(pred, yt, **loss.kwargs()).mean()
        value.backward()
        assert c.grad is not None
        return float(value.detach()), c.grad.numpy().copy()

    best, best_value = ols, np.inf
    for start in candidates:
        fit = minimize(
            value_and_grad, start, jac=True, method="L-BFGS-B",
            options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20},
        )  # fmt: skip
        if fit.fun < best_value:
            best, best_value = fit.x, float(fit.fun)
    return best[:d], float(best[d])
