"""The regression task of the notebook: y = w·x + b + noise, every number a parameter."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from .checks import finite_number, seed, whole_number
from .errors import UsageError

if TYPE_CHECKING:
    import torch


def _doc(text: str) -> Any:
    """A field's one-line meaning; it becomes the column's meaning in the runs table."""
    return field(metadata={"doc": text})


NOISES = ("normal", "laplace", "student-t")
"""Noise distributions, each scaled to standard deviation ``noise_std``."""
STUDENT_DF = 3
"""Degrees of freedom of the Student-t noise: heavy-tailed, finite variance."""
OUTLIER_SCALE = 10.0
"""An outlier's noise is drawn with this many times ``noise_std``."""


@dataclass(frozen=True)
class Task:
    """The data-generating process. ``data_seed`` is separate from the run seeds, so
    every optimizer in a sweep sees the same samples.

    ``y = x·w + b_true + noise``: ``x`` has ``dim`` features, each drawn from
    U(x_low, x_high) and, when ``condition`` is set, scaled per feature; every true weight
    is ``w_true``. The defaults are the notebook's task.
    """

    n_samples: int = _doc("number of samples")
    w_true: float = _doc("true weight of every feature")
    b_true: float = _doc("true intercept of the data")
    noise_std: float = _doc("standard deviation of the noise")
    x_low: float = _doc("lower end of each feature's x ~ U(x_low, x_high), before scaling")
    x_high: float = _doc("upper end of each feature's x ~ U(x_low, x_high), before scaling")
    data_seed: int = _doc("seed of the generator that draws the samples")
    dim: int = _doc("number of features")
    condition: float = _doc(
        "0: features unscaled; κ >= 1: features scaled so E[x xᵀ] (with the bias) has "
        "condition number κ"
    )
    noise: str = _doc("noise distribution: normal, laplace or student-t (3 degrees of freedom)")
    outliers: float = _doc("fraction of samples whose noise is 10 times larger")

    def __init__(
        self,
        n_samples: int = 1000,
        w_true: float = 2.0,
        b_true: float = 3.0,
        noise_std: float = 1.0,
        x_low: float = -10.0,
        x_high: float = 10.0,
        data_seed: int = 0,
        dim: int = 1,
        condition: float = 0.0,
        noise: str = "normal",
        outliers: float = 0.0,
    ) -> None:
        """Checked and normalised values (numpy integers become ``int``, and so on); a bad
        value raises a ``UsageError`` naming the field."""
        set_ = object.__setattr__
        set_(self, "n_samples", whole_number("n_samples", n_samples))
        set_(self, "w_true", finite_number("w_true", w_true))
        set_(self, "b_true", finite_number("b_true", b_true))
        set_(self, "noise_std", finite_number("noise_std", noise_std))
        set_(self, "x_low", finite_number("x_low", x_low))
        set_(self, "x_high", finite_number("x_high", x_high))
        set_(self, "data_seed", seed("data_seed", data_seed))
        set_(self, "dim", whole_number("dim", dim))
        set_(self, "condition", finite_number("condition", condition))
        set_(self, "noise", noise)
        set_(self, "outliers", finite_number("outliers", outliers))
        self._check()

    def _check(self) -> None:
        if self.n_samples < 1:
            raise UsageError(f"must be at least 1, got {self.n_samples}", param="n_samples")
        if self.noise_std < 0:
            raise UsageError(f"must be >= 0, got {self.noise_std}", param="noise_std")
        if not self.x_low < self.x_high:
            raise UsageError(
                f"must be below x_high, got {self.x_low} >= {self.x_high}", param="x_low"
            )
        if not 1 <= self.dim <= 1024:
            raise UsageError(f"must lie in 1..1024, got {self.dim}", param="dim")
        if not (self.condition == 0 or self.condition >= 1):
            raise UsageError(f"must be 0 (unscaled) or at least 1, got {self.condition}",
                             param="condition")  # fmt: skip
        if not isinstance(self.noise, str) or self.noise not in NOISES:
            raise UsageError(f"{self.noise!r} is unknown; use {', '.join(NOISES)}", param="noise")
        if not 0 <= self.outliers < 1:
            raise UsageError(f"must lie in [0, 1), got {self.outliers}", param="outliers")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def data64(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples in float64 on the CPU: x of shape (n, dim), y of shape (n, 1).

        They are drawn on the CPU from a seeded generator so that every device trains on
        bit-identical data (a CUDA generator would give other samples). The draws for the
        notebook's task come first and in the notebook's order, so options left at their
        defaults do not change the samples.
        """
        import torch

        g = torch.Generator().manual_seed(self.data_seed)
        x = torch.rand(self.n_samples, self.dim, generator=g, dtype=torch.float64)
        x = x * (self.x_high - self.x_low) + self.x_low
        noise = self._noise(g)
        if self.condition:
            x = x * self.feature_scales()
        y = self.w_true * x.sum(dim=1, keepdim=True) + self.b_true + self.noise_std * noise
        return x, y

    def _noise(self, g: torch.Generator) -> torch.Tensor:
        """Unit-variance noise of the chosen distribution, with outliers ×OUTLIER_SCALE."""
        import torch

        n = self.n_samples
        if self.noise == "normal":
            noise = torch.randn(n, 1, generator=g, dtype=torch.float64)
        elif self.noise == "laplace":  # inverse CDF; scale 1/√2 gives unit variance
            u = torch.rand(n, 1, generator=g, dtype=torch.float64) - 0.5
            noise = -torch.sign(u) * torch.log1p(-2 * u.abs()) / 2**0.5
        else:  # Student-t: z / sqrt(χ²_df / df), variance df / (df - 2)
            z = torch.randn(n, 1, generator=g, dtype=torch.float64)
            chi2 = torch.randn(n, STUDENT_DF, generator=g, dtype=torch.float64).square().sum(1)
            noise = (
                z / (chi2.view(n, 1) / STUDENT_DF).sqrt() / (STUDENT_DF / (STUDENT_DF - 2)) ** 0.5
            )
        if self.outliers:
            hit = torch.rand(n, 1, generator=g, dtype=torch.float64) < self.outliers
            noise = torch.where(hit, noise * OUTLIER_SCALE, noise)
        return noise

    def feature_scales(self) -> torch.Tensor:
        """Per-feature scales: feature j's second moment becomes κ^((j+1)/dim), the bias's
        is 1, so for a centred range the condition number of E[x xᵀ] is exactly κ."""
        import torch

        lo, hi = self.x_low, self.x_high
        second_moment = (lo * lo + lo * hi + hi * hi) / 3
        powers = torch.arange(1, self.dim + 1, dtype=torch.float64) / self.dim
        return (self.condition**powers / second_moment).sqrt()

    def data(
        self, device: str, dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples on ``device`` in the training dtype (float32 by default)."""
        import torch

        x, y = self.data64()
        dtype = dtype or torch.float32
        return x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)


TASK_FIELDS: tuple[tuple[str, str], ...] = tuple((f.name, f.metadata["doc"]) for f in fields(Task))
"""(name, meaning) of every task parameter, in order: each is a column of the runs table."""
