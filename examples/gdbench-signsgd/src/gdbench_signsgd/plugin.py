"""The gdbench plugin: registers two optimizers, two losses and one initializer.

gdbench imports this module to list and select components (``gdbench plugins`` must stay
fast), so it imports nothing heavy: the optimizers are referred to with ``gdbench.lazy``
and the losses and initializer only use methods of the tensors they are given.
"""

from __future__ import annotations

import math

from gdbench import hookimpl, lazy


def cauchy(prediction, target, scale):
    """Cauchy (Lorentzian) loss (scale²/2)·log(1 + (r/scale)²): robust to outliers."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    r = (prediction - target) / scale
    return r.square().log1p() * (scale * scale / 2)


def quantile(prediction, target, q):
    """Pinball loss max(q·r, (q-1)·r) with r = target - prediction: fits the q-quantile."""
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q}")
    r = target - prediction
    return (r * q).maximum(r * (q - 1))


def lecun(weight, bias, generator):
    """LeCun normal: weight ~ N(0, 1/fan_in), zero bias."""
    weight.normal_(0.0, 1.0 / math.sqrt(weight.shape[-1]), generator=generator)
    bias.zero_()


@hookimpl
def gdbench_register_optimizers(register):
    register(
        "signsgd",
        lazy("gdbench_signsgd.optim:SignSGD"),
        defaults={"lr": 0.01, "momentum": 0.0},
        batchable=True,  # every entry moves by lr·sign of its own (momentum of) gradient
        description="signSGD (Bernstein et al. 2018); momentum>0 gives Signum.",
    )
    register(
        "lion",
        lazy("gdbench_signsgd.optim:Lion"),
        defaults={"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": 0.0},
        batchable=True,
        description="Lion, EvoLved Sign Momentum (Chen et al. 2023).",
    )


@hookimpl
def gdbench_register_losses(register):
    register("cauchy", cauchy, defaults={"scale": 1.0}, batchable=True)
    register("quantile", quantile, defaults={"q": 0.5}, batchable=True)


@hookimpl
def gdbench_register_initializers(register):
    register("lecun", lecun)
