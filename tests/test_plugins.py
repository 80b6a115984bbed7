"""Plugin loading: built-ins through entry points, broken plugins isolated, lifecycle hooks."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import gdbench_cli

import gdbench
from gdbench import hookimpl
from gdbench.plugins import load_plugins


def test_builtins_come_from_entry_points_of_the_gdbench_distribution(plugin_set):
    builtins = {p.name: p for p in plugin_set.plugins if p.name.startswith("builtin_")}
    assert set(builtins) == {"builtin_optimizers", "builtin_losses", "builtin_initializers"}
    for info in builtins.values():
        assert info.dist == "gdbench" and info.version == gdbench.__version__
        assert info.error is None
    names = {c.qualified_name for c in plugin_set.registry.components()}
    assert names >= {
        "optimizer:sgd", "optimizer:momentum", "optimizer:adam",
        "loss:l1", "loss:mse", "loss:huber",
        "init:default", "init:uniform", "init:normal", "init:zeros", "init:xavier",
        "init:kaiming",
    }  # fmt: skip


class Raising:
    @hookimpl
    def gdbench_register_losses(self, register):
        raise RuntimeError("boom in hook")


class Malformed:
    @hookimpl
    def gdbench_register_losses(self, register):
        register("Bad Name!", lambda p, t: (p - t).abs())


class Misspelt:
    @hookimpl
    def gdbench_register_optimiser(self, register):  # not a gdbench hook
        pass


class Good:
    @hookimpl
    def gdbench_register_losses(self, register):
        register("test-cauchy", lambda p, t: ((p - t) ** 2).log1p(), batchable=True)


def test_broken_plugins_are_reported_and_skipped():
    ps = load_plugins(
        extra=[("raising", Raising()), ("malformed", Malformed()), ("misspelt", Misspelt()),
               ("good", Good())]
    )  # fmt: skip
    errors = {p.name: p.error for p in ps.plugins}
    assert "boom in hook" in errors["raising"]
    assert "Bad Name!" in errors["malformed"]
    assert "gdbench_register_optimiser" in errors["misspelt"]
    assert errors["good"] is None and errors["builtin_losses"] is None
    assert [c.name for c in ps.registry.candidates("test-cauchy")] == ["test-cauchy"]
    result = gdbench.run("sgd,test-cauchy", epochs=20, out=None, plugin_set=ps, device="cpu")
    assert list(result.runs["status"]) == ["ok"]


def test_raise_env_reraises_for_plugin_authors(monkeypatch):
    monkeypatch.setenv("GDBENCH_RAISE_PLUGIN_ERRORS", "1")
    with pytest.raises(RuntimeError, match="boom in hook"):
        load_plugins(extra=[("raising", Raising())])


def test_same_component_from_two_plugins_is_a_clear_error():
    class Another:
        @hookimpl
        def gdbench_register_losses(self, register):
            register("mse", lambda p, t: (p - t) ** 2)

    ps = load_plugins(extra=[("another", Another())])
    with pytest.raises(gdbench.UsageError, match=r"several plugins: another .*builtin_losses") as e:
        gdbench.run("mse", epochs=2, out=None, plugin_set=ps)
    assert "another/mse" in str(e.value) and "builtin_losses/mse" in str(e.value)
    # qualifying by plugin name (or by distribution name) settles it
    result = gdbench.run(
        "sgd,another/mse,loss:gdbench/mse", epochs=3, out=None, plugin_set=ps, device="cpu"
    )
    assert sorted(result.runs["loss_plugin"]) == ["another", "builtin_losses"]
    with pytest.raises(gdbench.UsageError, match="registers no 'mse'"):
        gdbench.run("builtin_optimizers/mse", epochs=2, out=None, plugin_set=ps)


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def gdbench_run_start(self, run):
        self.calls.append(("start", run.run_id))

    @hookimpl
    def gdbench_epoch_end(self, run, epoch, metrics):
        self.calls.append(("epoch", run.run_id, epoch, metrics["loss"]))

    @hookimpl
    def gdbench_run_end(self, run, result):
        self.calls.append(("end", run.run_id, result.status))

    @hookimpl
    def gdbench_results_ready(self, runs, history, out_dir):
        self.calls.append(("ready", len(runs), len(history), out_dir))


def test_lifecycle_hooks_see_every_run_and_epoch():
    rec = Recorder()
    ps = load_plugins(extra=[("recorder", rec)])
    result = gdbench.run("sgd,adam", epochs=7, out=None, plugin_set=ps, device="cpu")
    epochs = [c for c in rec.calls if c[0] == "epoch"]
    assert len(epochs) == 14
    history = result.history.set_index(["run_id", "epoch"])["loss"]
    for _, run_id, epoch, loss in epochs:
        assert loss == pytest.approx(history[(run_id, epoch)], rel=1e-6)
    assert rec.calls[0] == ("start", 0) and ("end", 1, "ok") in rec.calls
    assert rec.calls[-1] == ("ready", 2, 14, None)


def test_unimplemented_lifecycle_hooks_are_not_called(plugin_set):
    assert not plugin_set.implemented("gdbench_epoch_end")


@pytest.fixture
def fake_site(tmp_path):
    """A folder holding two real (unpackaged) distributions with gdbench entry points:
    one whose module fails to import, one that reuses a built-in plugin's name."""
    site = tmp_path / "site"
    site.mkdir()
    for dist, ep_name, module, body in [
        ("broken_plugin", "broken", "broken_mod", "raise ImportError('missing dependency xyz')"),
        ("clashing_plugin", "builtin_losses", "clash_mod", ""),
    ]:
        info = site / f"{dist}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[gdbench]\n{ep_name} = {module}\n")
        (site / f"{module}.py").write_text(textwrap.dedent(body))
    return site


def test_cli_lists_failed_plugins_and_still_runs(fake_site, tmp_path):
    env = {"PYTHONPATH": str(fake_site)}
    listing = gdbench_cli("plugins", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    plugins = {(p["name"], p["dist"]): p for p in json.loads(listing.stdout)}
    broken = plugins[("broken", "broken_plugin")]
    assert "missing dependency xyz" in broken["error"] and broken["version"] == "1.2.3"
    assert "already taken" in plugins[("builtin_losses", "clashing_plugin")]["error"]
    assert plugins[("builtin_optimizers", "gdbench")]["error"] is None

    table = gdbench_cli("plugins", env=env)
    assert table.returncode == 0 and "failed to load plugin broken" in table.stderr
    assert "optimizer:adam" in table.stdout

    run = gdbench_cli("run", "--epochs", "3", "--out", str(tmp_path / "r"), env=env)
    assert run.returncode == 0, run.stderr


def test_plugin_filter_switches_plugins_off_without_importing_them(fake_site, tmp_path):
    # GDBENCH_PLUGINS set but empty: third-party plugins off, built-ins on
    env = {"PYTHONPATH": str(fake_site), "GDBENCH_PLUGINS": ""}
    listing = gdbench_cli("plugins", "--json", env=env)
    assert listing.returncode == 0 and listing.stderr == "", listing.stderr
    plugins = {(p["name"], p["dist"]): p for p in json.loads(listing.stdout)}
    broken = plugins[("broken", "broken_plugin")]
    assert broken["error"] is None and "GDBENCH_PLUGINS" in broken["disabled"]
    assert plugins[("builtin_losses", "gdbench")]["components"]

    # naming one by its distribution keeps it; a name that matches nothing is a warning
    env["GDBENCH_PLUGINS"] = "broken_plugin,nosuch"
    listing = gdbench_cli("plugins", "--json", env=env)
    plugins = {(p["name"], p["dist"]): p for p in json.loads(listing.stdout)}
    assert "missing dependency xyz" in plugins[("broken", "broken_plugin")]["error"]
    assert "'nosuch' matches no installed plugin" in listing.stderr

    # --disable-plugin and GDBENCH_DISABLE_PLUGINS, built-ins included
    env = {"PYTHONPATH": str(fake_site), "GDBENCH_DISABLE_PLUGINS": "clashing_plugin"}
    table = gdbench_cli("--disable-plugin", "broken", "plugins", env=env)
    assert table.returncode == 0, table.stderr
    assert "failed to load" not in table.stdout + table.stderr
    assert table.stdout.count("disabled") >= 2
    run = gdbench_cli(
        "--disable-plugin", "builtin_losses", "run", "--epochs", "2", "--out", str(tmp_path)
    )
    assert run.returncode == 2 and "unknown loss 'l1'" in run.stderr
    assert "Traceback" not in run.stderr
