"""Exact minimisers of the built-in losses for a linear model ``x @ w + b``, in float64.

Each solver takes the samples ``x`` (n, d) and ``y`` (n,) as float64 numpy arrays (the
exact float32 samples the runs trained on, widened) and the loss's hyper-parameters, and
returns the optimal ``(w, b)``; gdbench evaluates the loss there itself. They are
registered with their losses (``register("l1", l1, optimum=...)``) through ``lazy``
references, so numpy and scipy load only when a sweep needs an optimum.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def least_squares(x: Array, y: Array) -> tuple[Array, float]:
    """Ordinary least squares, the exact minimiser of the mean squared error."""
    design = np.column_stack([x, np.ones(len(y))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return coef[:-1], float(coef[-1])


def least_absolute_deviations(x: Array, y: Array) -> tuple[Array, float]:
    """The exact minimiser of the mean absolute error, as a linear program.

    min Σ(uᵢ + vᵢ) s.t. xᵢ·w + b + uᵢ − vᵢ = yᵢ, u, v ≥ 0, solved by HiGHS' dual simplex,
    which ends on a vertex: d + 1 samples fitted exactly. The vertex is then recomputed
    by solving for those samples directly, which removes the solver's tolerance (~1e-9).
    """
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix as sparse
    from scipy.sparse import eye, hstack

    n, d = x.shape
    cost = np.concatenate([np.zeros(d + 1), np.ones(2 * n)])
    design = sparse(np.column_stack([x, np.ones(n)]))
    constraints = hstack([design, eye(n), -eye(n)]).tocsr()
    bounds = [(None, None)] * (d + 1) + [(0, None)] * (2 * n)
    lp = linprog(cost, A_eq=constraints, b_eq=y, bounds=bounds, method="highs-ds")
    if not lp.success:
        raise RuntimeError(f"linear program for least absolute deviations failed: {lp.message}")
    coef = lp.x[: d + 1]
    return _snap_to_vertex(x, y, coef)


def _snap_to_vertex(x: Array, y: Array, coef: Array) -> tuple[Array, float]:
    """The vertex through the d + 1 samples with the smallest residuals, if it is no worse."""
    n, d = x.shape
    design = np.column_stack([x, np.ones(n)])
    closest = np.argsort(np.abs(design @ coef - y))[: d + 1]
    try:
        vertex = np.linalg.solve(design[closest], y[closest])
    except np.linalg.LinAlgError:
        vertex = coef
    best = min((coef, vertex), key=lambda c: float(np.abs(design @ c - y).sum()))
    return best[:-1], float(best[-1])


def huber(x: Array, y: Array, delta: float) -> tuple[Array, float]:
    """The minimiser of the mean Huber loss, by Newton's method with backtracking.

    The loss is piecewise quadratic, so Newton's method on the quadratic pieces settles
    on the right one and then converges to machine precision; it starts from least squares
    and stops when the gradient is below 1e-13 (relative to the data's scale).
    """
    n, _ = x.shape
    design = np.column_stack([x, np.ones(n)])
    w0, b0 = least_squares(x, y)
    coef = np.append(w0, b0)
    scale = max(1.0, float(np.abs(design).max()))

    def objective(c: Array) -> float:
        r = np.abs(design @ c - y)
        return float(np.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta)).mean())

    for _ in range(200):
        r = design @ coef - y
        inside = np.abs(r) <= delta
        grad = design.T @ np.clip(r, -delta, delta) / n
        if np.abs(grad).max() < 1e-13 * scale:
            break
        hessian = design[inside].T @ design[inside] / n + 1e-12 * np.eye(len(coef))
        step = np.linalg.solve(hessian, grad)
        t, current = 1.0, objective(coef)
        while t > 1e-12 and objective(coef - t * step) > current - 1e-4 * t * (grad @ step):
            t /= 2
        if t <= 1e-12:
            break
        coef = coef - t * step
    return coef[:-1], float(coef[-1])
