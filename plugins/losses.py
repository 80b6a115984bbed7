"""Built-in losses, per element (gdbench averages over samples): L1, MSE and Huber.

Each registers its exact minimiser (``optima.py``) as ``optimum``, so every run is
measured against the best possible loss on its own data.
"""

from gdbench import hookimpl, lazy


def l1(prediction, target):
    """Absolute error |p - y| (the notebook's nn.L1Loss, before averaging)."""
    return (prediction - target).abs()


def mse(prediction, target):
    """Squared error (p - y)²."""
    return (prediction - target).square()


def huber(prediction, target, delta):
    """Huber loss: quadratic within delta of the target, linear beyond."""
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    import torch.nn.functional as F

    return F.huber_loss(prediction, target, reduction="none", delta=delta)


@hookimpl
def gdbench_register_losses(register):
    register(
        "l1",
        l1,
        batchable=True,
        description="Mean absolute error (the notebook's loss).",
        optimum=lazy("gdbench_plugins.optima:least_absolute_deviations"),
    )
    register(
        "mse",
        mse,
        batchable=True,
        description="Mean squared error.",
        optimum=lazy("gdbench_plugins.optima:least_squares"),
    )
    register(
        "huber",
        huber,
        defaults={"delta": 1.0},
        batchable=True,
        description="Huber loss: MSE-like near the target, L1-like beyond delta.",
        optimum=lazy("gdbench_plugins.optima:huber"),
    )
