"""Built-in initializers for the linear model's weight (out, in) and bias (out,).

Each draws only from the generator it is given, so a run's seed fixes its start.
"""

import math

from gdbench import hookimpl


def default(weight, bias, generator):
    """PyTorch's own nn.Linear init (the notebook's)."""
    from torch import nn

    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    bound = 1 / math.sqrt(weight.shape[1])
    nn.init.uniform_(bias, -bound, bound, generator=generator)


def uniform(weight, bias, generator, low, high):
    """Weight and bias drawn from U(low, high)."""
    if not low < high:
        raise ValueError(f"low must be < high, got low={low}, high={high}")
    weight.uniform_(low, high, generator=generator)
    bias.uniform_(low, high, generator=generator)


def normal(weight, bias, generator, mean, std):
    """Weight and bias drawn from N(mean, std²)."""
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    weight.normal_(mean, std, generator=generator)
    bias.normal_(mean, std, generator=generator)


def zeros(weight, bias, generator):
    """Everything zero: a deterministic start."""
    weight.zero_()
    bias.zero_()


def xavier(weight, bias, generator, gain):
    """Glorot/Xavier uniform weight, zero bias."""
    from torch import nn

    nn.init.xavier_uniform_(weight, gain=gain, generator=generator)
    bias.zero_()


def kaiming(weight, bias, generator, mode, nonlinearity):
    """He/Kaiming normal weight, zero bias."""
    from torch import nn

    nn.init.kaiming_normal_(weight, mode=mode, nonlinearity=nonlinearity, generator=generator)
    bias.zero_()


@hookimpl
def gdbench_register_initializers(register):
    register("default", default, description=default.__doc__)
    register("uniform", uniform, defaults={"low": -1.0, "high": 1.0}, description=uniform.__doc__)
    register("normal", normal, defaults={"mean": 0.0, "std": 1.0}, description=normal.__doc__)
    register("zeros", zeros, description=zeros.__doc__)
    register("xavier", xavier, defaults={"gain": 1.0}, description=xavier.__doc__)
    register(
        "kaiming",
        kaiming,
        defaults={"mode": "fan_in", "nonlinearity": "relu"},
        description=kaiming.__doc__,
    )
