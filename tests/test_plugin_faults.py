"""A broken plugin never takes others down: lifecycle hooks guarded and attributed, broken
lazy targets refused up front, built-in names protected, component faults named in the
run's error, honest exit statuses. Plugins here are real distributions on ``sys.path``
(found through their entry points), run through the CLI in process."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
import torch
from helpers import gdbench_cli, results_dir, run_cpu, write_distribution

import gdbench
from gdbench import hookimpl
from gdbench.lifecycle import PluginWarning
from gdbench.plugins import load_plugins

RAISING_HOOKS = {
    "gdbench_epoch_end": "def gdbench_epoch_end(run, epoch, metrics):\n    metrics['los']",
    "gdbench_run_start": "def gdbench_run_start(run):\n    raise RuntimeError('no log dir')",
    "gdbench_results_ready": (
        "def gdbench_results_ready(runs, history, out_dir):\n    raise OSError('disk full')"
    ),
}


@pytest.fixture
def site(tmp_path, monkeypatch, fresh_plugins):
    """A folder on ``sys.path`` for real plugin distributions (see ``write_distribution``)."""
    folder = tmp_path / "site"
    monkeypatch.syspath_prepend(str(folder))
    return folder


def _hook_plugin(hook: str) -> str:
    return f"from gdbench import hookimpl\n\n@hookimpl\n{RAISING_HOOKS[hook]}\n"


@pytest.mark.parametrize("hook", sorted(RAISING_HOOKS))
def test_a_raising_lifecycle_hook_is_switched_off_and_runs_go_on(cli, site, tmp_path, hook):
    name = f"bad_{hook}"  # a module name per case: imported modules stay in sys.modules
    write_distribution(site, "bad_logger", {name: _hook_plugin(hook)})
    out = tmp_path / "r"
    result = cli("run", "-p", "sgd,adam", "--seeds", "2", "--epochs", "30", "--device", "cpu",
                 "--no-plot", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (warning,) = [line for line in result.stderr.splitlines() if "warning" in line]
    assert f"plugin '{name}' failed in {hook}" in warning and "the runs go on" in warning
    assert "sgd" in result.stdout and "adam" in result.stdout  # the table was printed
    runs = pd.read_parquet(results_dir(out) / "runs.parquet")
    assert list(runs["status"]) == ["ok"] * 4


class Counting:
    """Raises in its first run_start; counts what it is called with afterwards."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def gdbench_run_start(self, run):
        self.calls.append("start")
        raise KeyError("los")

    @hookimpl
    def gdbench_run_end(self, run, result):
        self.calls.append("end")


class Healthy:
    def __init__(self) -> None:
        self.ends = 0

    @hookimpl
    def gdbench_run_end(self, run, result):
        self.ends += 1


def test_a_faulty_plugin_is_off_for_the_sweep_while_others_keep_being_called():
    faulty, healthy = Counting(), Healthy()
    ps = load_plugins(extra=[("faulty", faulty), ("healthy", healthy)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_cpu("sgd,adam", seeds=3, epochs=10, plugin_set=ps)
    assert faulty.calls == ["start"]  # never called again, not even its other hooks
    assert healthy.ends == 6 and set(result.runs["status"]) == {"ok"}
    (warning,) = [w for w in caught if issubclass(w.category, PluginWarning)]
    assert "plugin 'faulty' failed in gdbench_run_start (KeyError: 'los')" in str(warning.message)


def test_raise_env_reraises_a_hook_fault_with_its_traceback(monkeypatch):
    monkeypatch.setenv("GDBENCH_RAISE_PLUGIN_ERRORS", "1")
    ps = load_plugins(extra=[("faulty", Counting())])
    with pytest.raises(KeyError, match="los"):
        run_cpu("sgd", epochs=5, plugin_set=ps)


class SweepState:
    """Per-sweep state without module globals: reset by gdbench_sweep_start."""

    def __init__(self) -> None:
        self.sweeps: list[tuple[int, object]] = []
        self.runs = 0

    @hookimpl
    def gdbench_sweep_start(self, plan, out_dir):
        self.sweeps.append((len(plan), out_dir))
        self.runs = 0

    @hookimpl
    def gdbench_run_end(self, run, result):
        self.runs += 1


def test_sweep_start_sees_the_plan_and_the_results_folder(tmp_path):
    state = SweepState()
    ps = load_plugins(extra=[("state", state)])
    result = gdbench.run("sgd,adam", seeds=2, epochs=5, device="cpu", out=tmp_path, plot=False,
                         plugin_set=ps)  # fmt: skip
    gdbench.run("sgd", epochs=5, device="cpu", out=None, plugin_set=ps)
    assert state.sweeps == [(4, result.out_dir), (1, None)] and state.runs == 1


BROKEN_TARGET = """
from gdbench import hookimpl, lazy

@hookimpl
def gdbench_register_optimizers(register):
    register("rmsprop2", lazy("torch.optim:RMSpropp"), defaults={"lr": 0.01}, batchable=True)
"""


def test_a_broken_lazy_target_is_one_line_exit_2_and_fails_plugins_check(cli, site, tmp_path):
    write_distribution(site, "typo_plugin", {"typo": BROKEN_TARGET})
    out = tmp_path / "r"
    result = cli("run", "-p", "rmsprop2", "--epochs", "5", "--out", str(out))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert "plugin 'typo': optimizer 'rmsprop2': cannot load lazy target" in line
    assert "'torch.optim:RMSpropp'" in line and "AttributeError" in line
    assert not out.exists()
    # other components of the environment are unaffected
    assert cli("run", "-p", "adam", "--epochs", "5", "--out", str(out)).exit_code == 0

    listing = cli("plugins")
    assert listing.exit_code == 0  # the plugin loaded; only its target is broken
    checked = cli("plugins", "--check")
    assert checked.exit_code == 1
    assert "cannot load lazy target 'torch.optim:RMSpropp'" in checked.stderr


def test_unknown_names_mention_plugins_that_failed_to_load(cli, site, tmp_path):
    write_distribution(site, "lion_plugin", {"lion": "import lion_pytorch_missing\n"})
    result = cli("run", "-p", "lion", "--epochs", "5", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2
    line = result.stderr.splitlines()[-1]
    assert "unknown plugin component 'lion'" in line
    assert "plugin 'lion' failed to load (ModuleNotFoundError" in line


SGD_CLASH = """
import torch
from gdbench import hookimpl

@hookimpl
def gdbench_register_optimizers(register):
    register("sgd", torch.optim.Adam, defaults={"lr": 0.1}, batchable=True)
"""


def test_a_plugin_reusing_sgd_leaves_the_builtin_as_default(cli, site, tmp_path):
    write_distribution(site, "shadow_plugin", {"shadow": SGD_CLASH})
    out = tmp_path / "r"
    result = cli("run", "--epochs", "20", "--device", "cpu", "--no-plot", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    warnings_ = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings_) == 1 and "'sgd' means the built-in" in warnings_[0]
    runs = pd.read_parquet(results_dir(out) / "runs.parquet")
    assert list(runs["optimizer_plugin"]) == ["builtin_optimizers"]
    # both in one sweep: two rows, each labelled with its plugin
    both = cli("run", "-p", "shadow/sgd,gdbench/sgd", "--epochs", "20", "--device", "cpu",
               "--no-plot", "--out", str(tmp_path / "both"))  # fmt: skip
    assert both.exit_code == 0, both.stderr
    assert "shadow/sgd" in both.stdout and "builtin_optimizers/sgd" in both.stdout


class FailingParts:
    """An optimizer whose step raises, a loss that raises, an initializer per contract
    breach; each run's error must name the component and the plugin."""

    @hookimpl
    def gdbench_register_optimizers(self, register):
        class Broken(torch.optim.SGD):
            def step(self, closure=None):
                raise ZeroDivisionError("bad state")

        register("broken-opt", Broken, defaults={"lr": 0.01}, batchable=True)

    @hookimpl
    def gdbench_register_losses(self, register):
        def broken_loss(p, t):
            raise RuntimeError("shape mismatch in my loss")

        register("broken-loss", broken_loss, batchable=True)

    @hookimpl
    def gdbench_register_initializers(self, register):
        def reshape(w, b, g):
            w.data = torch.zeros(2, 1)

        def new_tensor(w, b, g):
            return torch.zeros_like(w)

        def nothing(w, b, g):
            b.zero_()

        def infinite(w, b, g):
            w.fill_(float("inf"))
            b.zero_()

        for name, fn in [("reshape", reshape), ("new-tensor", new_tensor),
                         ("nothing", nothing), ("infinite", infinite)]:  # fmt: skip
            register(name, fn)


@pytest.mark.parametrize("engine", ["batched", "sequential"])
@pytest.mark.parametrize(
    ("plugins", "expected"),
    [
        ("broken-opt", "optimizer 'broken-opt' (plugin 'parts'): ZeroDivisionError: bad state"),
        ("broken-loss", "loss 'broken-loss' (plugin 'parts'): RuntimeError: shape mismatch"),
        ("reshape", "initializer 'reshape' (plugin 'parts'): changed the shapes to weight (2, 1)"),
        ("new-tensor", "initializer 'new-tensor' (plugin 'parts'): returned Tensor instead of"),
        ("nothing", "initializer 'nothing' (plugin 'parts'): left non-finite values (NaN"),
        ("infinite", "initializer 'infinite' (plugin 'parts'): left non-finite values"),
    ],
)
def test_a_component_fault_fails_its_runs_only_and_names_it(plugins, expected, engine):
    ps = load_plugins(extra=[("parts", FailingParts())])
    sweep = f"sgd,adam,{plugins},l1,default"  # the faulty component among healthy ones
    result = run_cpu(sweep, seeds=2, data_seeds=2, epochs=10, engine=engine, plugin_set=ps)
    runs = result.runs
    faulty = runs["optimizer"].eq(plugins) | runs["loss"].eq(plugins) | runs["init"].eq(plugins)
    assert 0 < faulty.sum() < len(runs)
    assert set(runs.loc[faulty, "status"]) == {"error"}
    assert all(e.startswith(expected) for e in runs.loc[faulty, "error"]), runs["error"].iloc[0]
    assert set(runs.loc[~faulty, "status"]) == {"ok"}


def test_every_run_failing_exits_1_and_prints_the_error(cli, site, tmp_path):
    write_distribution(site, "parts_plugin", {"parts": PARTS_MODULE})
    out = tmp_path / "r"
    result = cli("run", "-p", "broken-opt", "--seeds", "3", "--epochs", "5", "--device", "cpu",
                 "--no-plot", "--out", str(out))  # fmt: skip
    assert result.exit_code == 1
    (line,) = [x for x in result.stderr.splitlines() if "error" in x]
    assert line.startswith("gdbench: error: 3 of 3 runs of broken-opt lr=0.01 · l1 · default")
    assert "optimizer 'broken-opt' (plugin 'parts'): ZeroDivisionError: bad state" in line
    runs = pd.read_parquet(results_dir(out) / "runs.parquet")  # written before exiting
    assert list(runs["status"]) == ["error"] * 3


def test_divergence_is_a_result_not_a_failure(cli, tmp_path):
    result = cli("run", "-p", "sgd[lr=5],mse", "--epochs", "200", "--device", "cpu", "--no-plot",
                 "--out", str(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    runs = pd.read_parquet(results_dir(tmp_path) / "runs.parquet")
    assert list(runs["status"]) == ["diverged"]


@pytest.mark.slow  # two subprocesses, each importing torch
def test_raise_plugin_errors_shows_the_component_fault_with_its_traceback(site, tmp_path):
    """The installed script: ``--raise-plugin-errors`` turns a run's recorded error into
    the exception itself, traceback and all, for a plugin author's debugger."""
    write_distribution(site, "parts_plugin", {"parts_mod": PARTS_MODULE})
    env = {"PYTHONPATH": str(site)}
    args = ["run", "-p", "broken-opt", "--epochs", "5", "--no-plot", "--out", str(tmp_path)]
    recorded = gdbench_cli(*args, env=env, timeout=120)
    assert recorded.returncode == 1 and "Traceback" not in recorded.stderr
    raised = gdbench_cli("--raise-plugin-errors", *args, env=env, timeout=120)
    assert raised.returncode == 1 and "Traceback" in raised.stderr
    assert "ZeroDivisionError: bad state" in raised.stderr


PARTS_MODULE = """
import torch
from gdbench import hookimpl


class Broken(torch.optim.SGD):
    def step(self, closure=None):
        raise ZeroDivisionError("bad state")


@hookimpl
def gdbench_register_optimizers(register):
    register("broken-opt", Broken, defaults={"lr": 0.01}, batchable=True)
"""
