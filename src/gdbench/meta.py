"""What a results folder records about where and how it was made: ``meta.json`` and the
per-device environment columns of the runs table."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .options import SweepOptions
    from .plan import RunSpec
    from .plugins import PluginSet


def now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def environment(devices: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per-device columns every row carries: hardware name and software versions."""
    import torch

    from . import __version__
    from .devices import device_name

    common = {"torch_version": torch.__version__, "gdbench_version": __version__}
    return {d: {"device_name": device_name(d), **common} for d in devices}


def sweep_meta(
    options: SweepOptions,
    devices: Sequence[str],
    specs: Sequence[RunSpec],
    plugin_set: PluginSet,
    batches: int,
    argv: Sequence[str] | None,
) -> dict[str, Any]:
    """What meta.json records: the exact invocation, the options and the environment."""
    import torch

    from . import __version__
    from .devices import device_name

    return {
        "invocation": list(argv) if argv is not None else None,
        "cwd": os.getcwd(),
        "started": now(),
        "complete": False,
        "n_runs_planned": len(specs),
        "versions": {
            "gdbench": __version__,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
        },
        "machine": {
            "platform": platform.platform(),
            "hostname": platform.node(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "devices": {d: device_name(d) for d in devices},
        "task": asdict(options.task),
        "data_seeds": [t.data_seed for t in options.tasks],
        "target": options.target,
        "diverge_factor": options.diverge_factor,
        "plugins": [
            {
                "name": p.name,
                "dist": p.dist,
                "version": p.version,
                "error": p.error,
                "disabled": p.disabled,
            }
            for p in plugin_set.plugins
        ],
        "engine": options.engine,
        "compile": options.compile,
        "batches": batches,
    }
