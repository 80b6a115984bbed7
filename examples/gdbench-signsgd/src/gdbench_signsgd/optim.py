"""signSGD/Signum and Lion as ``torch.optim.Optimizer`` subclasses, written from the papers.

Both updates are elementwise (each entry moves by ``lr`` times the sign of its own
gradient or momentum), which is why the plugin registers them with ``batchable=True``.
"""

from __future__ import annotations

import torch


class SignSGD(torch.optim.Optimizer):
    """signSGD (Bernstein et al., 2018, Algorithm 1): ``x ← x − lr·sign(g)``.

    With ``momentum = β > 0`` it is Signum (Algorithm 3): ``m ← β·m + (1 − β)·g`` and
    ``x ← x − lr·sign(m)``.
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            beta = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                direction = p.grad
                if beta > 0:
                    state = self.state[p]
                    if "momentum" not in state:
                        state["momentum"] = torch.zeros_like(p)
                    direction = state["momentum"].mul_(beta).add_(p.grad, alpha=1 - beta)
                p.add_(direction.sign(), alpha=-group["lr"])
        return loss


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al., 2023, Algorithm 2), with decoupled weight decay ``λ``::

    c ← β1·m + (1 − β1)·g
    x ← x − lr·(sign(c) + λ·x)
    m ← β2·m + (1 − β2)·g
    """

    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.99), weight_decay: float = 0.0):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                update = m.mul(beta1).add_(p.grad, alpha=1 - beta1).sign_()
                if wd:
                    update.add_(p, alpha=wd)
                p.add_(update, alpha=-lr)
                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)
        return loss


def _evaluate(closure):
    """The loss from ``closure`` (re-evaluated with gradients), as torch.optim does."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()
