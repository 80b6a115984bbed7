"""Built-in optimizers: plain SGD (the notebook's), SGD with momentum, and Adam.

All three have elementwise updates, so the batched engine may stack many runs of them.
The learning rate 0.01 is the notebook's; Adam gets it too (PyTorch's own 0.001 would
leave Adam far from the optimum after 500 epochs on the default task).
"""

from gdbench import hookimpl, lazy

SGD = lazy("torch.optim:SGD")
ADAM = lazy("torch.optim:Adam")


@hookimpl
def gdbench_register_optimizers(register):
    register(
        "sgd",
        SGD,
        defaults={"lr": 0.01},
        batchable=True,
        description="Plain gradient descent, torch.optim.SGD (the notebook's optimizer).",
    )
    register(
        "momentum",
        SGD,
        defaults={"lr": 0.01, "momentum": 0.9, "nesterov": False},
        batchable=True,
        description="Heavy-ball SGD with momentum (set nesterov=true for Nesterov).",
    )
    register(
        "adam",
        ADAM,
        defaults={"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8},
        batchable=True,
        description="Adam, torch.optim.Adam.",
    )
