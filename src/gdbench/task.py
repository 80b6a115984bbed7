"""The regression task of the notebook: y = w·x + b + noise, every number a parameter."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Task:
    """The data-generating process. ``data_seed`` is separate from the run seeds, so
    every optimizer in a sweep sees the same samples."""

    n_samples: int = 1000
    w_true: float = 2.0
    b_true: float = 3.0
    noise_std: float = 1.0
    x_low: float = -10.0
    x_high: float = 10.0
    data_seed: int = 0

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise UsageError(f"--n-samples must be at least 1, got {self.n_samples}")
        if self.noise_std < 0:
            raise UsageError(f"--noise-std must be >= 0, got {self.noise_std}")
        if not self.x_low < self.x_high:
            raise UsageError(f"--x-low must be below --x-high, got {self.x_low} >= {self.x_high}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def data64(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples in float64 on the CPU, shape (n, 1) each.

        They are drawn on the CPU from a seeded generator so that every device trains on
        bit-identical data (a CUDA generator would give other samples), and kept in
        float64 for exact solvers of the optimum.
        """
        import torch

        g = torch.Generator().manual_seed(self.data_seed)
        x = torch.rand(self.n_samples, 1, generator=g, dtype=torch.float64)
        x = x * (self.x_high - self.x_low) + self.x_low
        noise = torch.randn(self.n_samples, 1, generator=g, dtype=torch.float64)
        y = self.w_true * x + self.b_true + self.noise_std * noise
        return x, y

    def data(self, device: str, dtype: torch.dtype | None = None):
        """The samples on ``device`` in the training dtype (float32 by default)."""
        import torch

        x, y = self.data64()
        dtype = dtype or torch.float32
        return x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
