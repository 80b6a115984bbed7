import numpy as np
import pytest
import torch

from gdbench import ParameterTypeError, Task, UsageError


def test_defaults_are_the_notebooks():
    t = Task()
    assert (t.n_samples, t.w_true, t.b_true, t.noise_std) == (1000, 2.0, 3.0, 1.0)
    assert (t.x_low, t.x_high) == (-10.0, 10.0)


def test_data_follows_the_model_and_its_parameters():
    x, y = Task(n_samples=20000, w_true=-1.5, b_true=0.5, noise_std=0.3, data_seed=3).data64()
    assert x.shape == y.shape == (20000, 1) and x.dtype == torch.float64
    assert x.min() >= -10 and x.max() <= 10
    design = torch.cat([x, torch.ones_like(x)], dim=1)
    (w, b) = torch.linalg.lstsq(design, y).solution.flatten().tolist()
    assert w == pytest.approx(-1.5, abs=0.01) and b == pytest.approx(0.5, abs=0.01)
    residual = y - (w * x + b)
    assert residual.std().item() == pytest.approx(0.3, rel=0.03)


def test_data_seed_fixes_the_samples():
    a, _ = Task(data_seed=1).data64()
    b, _ = Task(data_seed=1).data64()
    c, _ = Task(data_seed=2).data64()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_training_data_is_float32_on_the_device():
    x, y = Task().data("cpu")
    assert x.dtype == y.dtype == torch.float32 and x.device.type == "cpu"
    x64, _ = Task().data64()
    assert torch.equal(x, x64.float())


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"n_samples": 0}, "n_samples", "must be at least 1, got 0"),
        ({"noise_std": -1.0}, "noise_std", "must be >= 0"),
        ({"x_low": 1.0, "x_high": 1.0}, "x_low", "must be below x_high"),
        ({"w_true": float("nan")}, "w_true", "must be finite"),
        ({"b_true": float("inf")}, "b_true", "must be finite"),
        ({"x_high": -float("inf")}, "x_high", "must be finite"),
        ({"noise_std": float("nan")}, "noise_std", "must be finite"),
        ({"data_seed": -1}, "data_seed", "must lie in 0..2**63-1, got -1"),
        ({"data_seed": 2**63}, "data_seed", "must lie in 0..2**63-1"),
    ],
)
def test_bad_task_parameters_are_usage_errors_naming_the_field(kwargs, param, fragment):
    with pytest.raises(UsageError) as caught:
        Task(**kwargs)
    assert caught.value.param == param and not isinstance(caught.value, TypeError)
    assert str(caught.value).startswith(f"{param} ") and fragment in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n_samples": 10.0}, "n_samples"),
        ({"n_samples": True}, "n_samples"),
        ({"w_true": "2"}, "w_true"),
        ({"noise_std": None}, "noise_std"),
        ({"data_seed": 1.5}, "data_seed"),
    ],
)
def test_task_parameters_of_the_wrong_type_are_type_errors(kwargs, param):
    with pytest.raises(ParameterTypeError) as caught:
        Task(**kwargs)
    assert isinstance(caught.value, TypeError) and caught.value.param == param


def test_task_parameters_are_normalised():
    t = Task(n_samples=np.int64(20), w_true=np.float32(1.5), b_true=1, data_seed=2**63 - 1)
    assert t == Task(n_samples=20, w_true=1.5, b_true=1.0, data_seed=2**63 - 1)
    assert type(t.n_samples) is int and type(t.w_true) is float and type(t.b_true) is float
    assert hash(t) == hash(Task(n_samples=20, w_true=1.5, b_true=1.0, data_seed=2**63 - 1))
    assert t.as_dict()["n_samples"] == 20


@pytest.mark.parametrize("noise", ["normal", "laplace", "student-t"])
def test_every_noise_has_the_asked_standard_deviation(noise):
    task = Task(n_samples=200_000, noise=noise, noise_std=2.0)
    x, y = task.data64()
    residual = (y - 2.0 * x - 3.0).view(-1)
    tolerance = 0.08 if noise == "student-t" else 0.02  # t(3): slow to settle
    assert residual.std().item() == pytest.approx(2.0, rel=tolerance)
    kurtosis = ((residual / residual.std()) ** 4).mean().item()
    assert (kurtosis > 4.5) == (noise != "normal")  # laplace 6, t(3) heavy, normal 3


def test_outliers_are_the_asked_fraction_at_ten_times_the_noise():
    clean = Task(n_samples=100_000).data64()
    dirty = Task(n_samples=100_000, outliers=0.1).data64()
    assert torch.equal(clean[0], dirty[0])  # same x
    noisy, plain = (d[1] - 2 * d[0] - 3 for d in (dirty, clean))
    hit = (noisy - 10 * plain).abs() < 1e-9
    kept = (noisy - plain).abs() < 1e-9
    assert (hit | kept).all()
    assert hit.float().mean().item() == pytest.approx(0.1, abs=0.005)


def test_the_defaults_draw_the_notebook_task_unchanged():
    """Options left at their defaults draw exactly what the notebook's task drew."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1000, 1, generator=g, dtype=torch.float64) * 20 - 10
    y = 2 * x + 3 + torch.randn(1000, 1, generator=g, dtype=torch.float64)
    got = Task().data64()
    assert torch.equal(got[0], x) and torch.equal(got[1], y)
