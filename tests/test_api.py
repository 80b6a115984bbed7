"""``gdbench.run``'s arguments are checked before anything runs: a wrong type raises
``ParameterTypeError`` (a ``UsageError`` that is also a ``TypeError``), a bad value a
``UsageError``; both name the Python parameter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import run_cpu

import gdbench
from gdbench.options import SweepOptions


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("seeds", "10"),
        ("seeds", 2.0),
        ("seeds", [0, "1"]),
        ("lr", "0.01"),
        ("lr", [0.1, None]),
        ("lr", True),
        ("plugins", 123),
        ("plugins", ["sgd", 1]),
        ("device", 0),
        ("device", ["cpu", None]),
        ("task", "big"),
        ("out", 5),
        ("max_batch", "8"),
        ("epochs", 2.5),
        ("epochs", True),
        ("plot", "yes"),
        ("compile", 1),
    ],
)
def test_a_wrong_type_is_a_type_error_naming_the_parameter(tmp_path, param, value):
    kwargs = {"plugins": "sgd", "out": tmp_path, param: value}
    with pytest.raises(gdbench.ParameterTypeError) as caught:
        gdbench.run(**kwargs)
    error = caught.value
    assert isinstance(error, TypeError) and isinstance(error, gdbench.UsageError)
    assert error.param == param and str(error).startswith(f"{param} must be ")
    assert not any(tmp_path.iterdir())  # refused before anything was made


@pytest.mark.parametrize(
    ("param", "value", "fragment"),
    [
        ("epochs", 0, "must be a positive whole number, got 0"),
        ("epochs", -3, "must be a positive whole number, got -3"),
        ("seeds", 0, "must be at least 1, got 0"),
        ("seeds", [], "needs at least one seed"),
        ("seeds", [-1], "must lie in 0..2**63-1, got -1"),
        ("seeds", [2**63], "must lie in 0..2**63-1"),
        ("lr", 0, "must be a positive finite number, got 0"),
        ("lr", float("nan"), "must be a positive finite number, got nan"),
        ("lr", [0.1, -1], "must be a positive finite number, got -1"),
        ("device", "", "is empty"),
        ("device", " , ", "is empty"),
        ("engine", "warp", "'warp' is unknown; use one of auto, batched, sequential"),
        ("max_batch", 0, "must be a positive whole number, got 0"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_parameter(tmp_path, param, value, fragment):
    with pytest.raises(gdbench.UsageError) as caught:
        gdbench.run("sgd", **{"out": tmp_path, param: value})
    error = caught.value
    assert not isinstance(error, TypeError)
    assert error.param == param and str(error) == f"{param} {error.detail}"
    assert fragment in str(error)
    assert not any(tmp_path.iterdir())


def test_bad_components_are_refused_before_a_folder_is_made(tmp_path):
    with pytest.raises(gdbench.UsageError, match="did you mean adam"):
        gdbench.run("adma", epochs=5, device="cpu", out=tmp_path)
    with pytest.raises(gdbench.UsageError, match="unknown device"):
        gdbench.run("sgd", epochs=5, device="tpu9", out=tmp_path)
    assert not any(tmp_path.iterdir())


def test_numpy_numbers_are_accepted():
    res = run_cpu("sgd", epochs=np.int64(5), seeds=np.int64(2), max_batch=np.int64(1),
                  lr=np.float32(0.5))  # fmt: skip
    runs = res.runs
    assert list(runs["epochs"]) == [5, 5] and list(runs["lr"]) == [0.5, 0.5]
    assert set(runs["batch_size"]) == {1} and len(res.history) == 10
    options = SweepOptions.from_arguments(epochs=np.int64(5), seeds=[np.int64(3), 7])
    assert type(options.epochs) is int and options.epochs == 5
    assert options.seeds == (3, 7) and all(type(s) is int for s in options.seeds)


def test_options_are_normalised():
    options = SweepOptions.from_arguments(
        ["sgd", "adam[lr=0.1]"], seeds=3, lr=0.05, device="cpu, cuda", out="somewhere"
    )
    assert options.plugins == "sgd,adam[lr=0.1]" and options.seeds == (0, 1, 2)
    assert options.lrs == (0.05,) and options.device == ("cpu", "cuda")
    assert options.out == Path("somewhere")
    assert SweepOptions.from_arguments(lr=[0.1, 1]).lrs == (0.1, 1.0)
    assert SweepOptions.from_arguments(device=["cpu"]).device == ("cpu",)
    assert SweepOptions.from_arguments(None).plugins == ""
    assert SweepOptions.from_arguments(out=None).out is None
    assert SweepOptions.from_arguments(task=gdbench.Task(n_samples=9)).task.n_samples == 9


def test_the_public_names():
    assert issubclass(gdbench.UsageError, ValueError)
    assert issubclass(gdbench.ParameterTypeError, gdbench.UsageError)
    assert issubclass(gdbench.ParameterTypeError, TypeError)
    assert callable(gdbench.run) and gdbench.Results.__name__ == "Results"
    with pytest.raises(AttributeError):
        gdbench.nothing_here  # noqa: B018
