"""A lifecycle-hook plugin: every run's per-epoch metrics as JSON lines, in the results folder.

``metrics.jsonl`` holds one object per run per epoch: the run's configuration (the
optimizer, loss and initializer labels, lr, seed, device, status) and that epoch's
``loss``, ``grad_norm``, ``w`` and ``b``; ready for ``jq``, a log shipper, or any
language without a parquet reader.

It implements only ``gdbench_results_ready``, called once per sweep with the finished
tables, rather than ``gdbench_epoch_end``, which would cost a device synchronisation per
epoch. Not installed, it costs nothing; installed, ``--disable-plugin metrics_log``
switches it off.
"""

from __future__ import annotations

import os

from gdbench import hookimpl

FILENAME = "metrics.jsonl"
RUN_COLUMNS = [
    "run_id",
    "optimizer_label",
    "loss_label",
    "init_label",
    "lr",
    "seed",
    "device",
    "status",
]


@hookimpl
def gdbench_results_ready(runs, history, out_dir):
    if out_dir is None or runs.empty:  # an in-memory sweep: nothing to write
        return
    records = history.merge(runs[RUN_COLUMNS], on="run_id", how="left")
    path = out_dir / FILENAME
    tmp = path.with_name(f".{FILENAME}.{os.getpid()}.tmp")
    records.to_json(tmp, orient="records", lines=True, double_precision=15)
    os.replace(tmp, path)  # never a half-written file
