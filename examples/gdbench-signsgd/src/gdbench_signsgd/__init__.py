"""signSGD and Lion optimizers, Cauchy and quantile losses and LeCun init, for gdbench.

The plugin itself is ``gdbench_signsgd.plugin``; the optimizers (which need torch at
import time) live in ``gdbench_signsgd.optim`` and load only when a run uses them.
"""
