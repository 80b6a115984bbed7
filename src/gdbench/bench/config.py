"""What the shipped suite measures, read from environment variables.

``gdbench bench`` sets them for its pytest subprocess; a user running ``pytest --pyargs
gdbench.bench`` sets them by hand (or takes the defaults).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV = {
    "plugins": "GDBENCH_BENCH_PLUGINS",
    "device": "GDBENCH_BENCH_DEVICE",
    "runs": "GDBENCH_BENCH_RUNS",
    "epochs": "GDBENCH_BENCH_EPOCHS",
    "n_samples": "GDBENCH_BENCH_N_SAMPLES",
}


@dataclass(frozen=True)
class BenchConfig:
    plugins: str = "sgd,adam"
    device: str = "auto"
    runs: tuple[int, ...] = (1,)
    epochs: int = 500
    n_samples: int = 1000

    def environ(self) -> dict[str, str]:
        """The variables that make a pytest subprocess measure this configuration."""
        return {
            ENV["plugins"]: self.plugins,
            ENV["device"]: self.device,
            ENV["runs"]: ",".join(str(r) for r in self.runs),
            ENV["epochs"]: str(self.epochs),
            ENV["n_samples"]: str(self.n_samples),
        }


def from_environ() -> BenchConfig:
    d = BenchConfig()
    get = os.environ.get
    return BenchConfig(
        plugins=get(ENV["plugins"], d.plugins),
        device=get(ENV["device"], d.device),
        runs=tuple(int(r) for r in get(ENV["runs"], "1").split(",") if r.strip()),
        epochs=int(get(ENV["epochs"], d.epochs)),
        n_samples=int(get(ENV["n_samples"], d.n_samples)),
    )
