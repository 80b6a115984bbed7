"""Plugin loading: built-ins through entry points, broken plugins isolated, lifecycle hooks,
and ``gdbench plugins`` (one subprocess smoke test, the rest in process)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from helpers import gdbench_cli, run_cpu, write_distribution

import gdbench
from gdbench import hookimpl
from gdbench.engine.base import Trainer
from gdbench.lifecycle import HOOKS, Lifecycle
from gdbench.plugins import PluginFilter, load_plugins


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


class HalfBad:
    """One good component, then one that registration refuses: neither is kept."""

    @hookimpl
    def gdbench_register_losses(self, register):
        register("fine-loss", lambda p, t: (p - t).abs(), batchable=True)

    @hookimpl
    def gdbench_register_initializers(self, register):
        register("stacked-init", lambda w, b, g: None, batchable=True)


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
        extra=[("raising", Raising()), ("malformed", Malformed()), ("half-bad", HalfBad()),
               ("misspelt", Misspelt()), ("good", Good())]
    )  # fmt: skip
    errors = {p.name: p.error for p in ps.plugins}
    assert "boom in hook" in errors["raising"]
    assert "RegistrationError" in errors["malformed"] and "Bad Name!" in errors["malformed"]
    assert "'half-bad'" in errors["half-bad"] and "'stacked-init'" in errors["half-bad"]
    assert ps.registry.candidates("fine-loss") == []  # all of a plugin's components, or none
    assert "gdbench_register_optimiser" in errors["misspelt"]
    assert errors["good"] is None and errors["builtin_losses"] is None
    assert [c.name for c in ps.registry.candidates("test-cauchy")] == ["test-cauchy"]
    result = run_cpu("sgd,test-cauchy", epochs=20, plugin_set=ps)
    assert list(result.runs["status"]) == ["ok"]


def test_raise_env_reraises_for_plugin_authors(monkeypatch):
    monkeypatch.setenv("GDBENCH_RAISE_PLUGIN_ERRORS", "1")
    with pytest.raises(RuntimeError, match="boom in hook"):
        load_plugins(extra=[("raising", Raising())])


def test_builtin_names_win_unqualified_and_clashes_carry_the_plugin_in_labels():
    class Another:
        @hookimpl
        def gdbench_register_losses(self, register):
            register("mse", lambda p, t: (p - t) ** 2)

    ps = load_plugins(extra=[("another", Another())])
    (warning,) = [w for w in ps.warnings if "another" in w]
    assert "registers loss 'mse', a built-in name" in warning and "another/mse" in warning
    # unqualified names (and the defaults) mean the built-ins
    result = run_cpu("sgd,mse", epochs=3, plugin_set=ps)
    assert list(result.runs["loss_plugin"]) == ["builtin_losses"]
    assert list(result.runs["loss_label"]) == ["mse"]
    # both in one sweep: qualified by plugin (or distribution) name, and labelled apart
    result = run_cpu("sgd,another/mse,loss:gdbench/mse", epochs=3, plugin_set=ps)
    assert sorted(result.runs["loss_plugin"]) == ["another", "builtin_losses"]
    assert sorted(result.runs["loss_label"]) == ["another/mse", "builtin_losses/mse"]
    assert len(result.summary()) == 2
    with pytest.raises(gdbench.UsageError, match="registers no 'mse'"):
        gdbench.run("builtin_optimizers/mse", epochs=2, out=None, plugin_set=ps)


def test_one_name_from_two_third_party_plugins_must_be_qualified():
    def cauchy(p, t):
        return ((p - t) ** 2).log1p()

    class One:
        @hookimpl
        def gdbench_register_losses(self, register):
            register("cauchy", cauchy)

    class Two(One):
        pass

    ps = load_plugins(extra=[("one", One()), ("two", Two())])
    with pytest.raises(gdbench.UsageError, match=r"several plugins: one .*two") as e:
        gdbench.run("cauchy", epochs=2, out=None, plugin_set=ps)
    assert "one/cauchy or two/cauchy" in str(e.value)


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def gdbench_sweep_start(self, plan, out_dir):
        self.calls.append(("sweep", len(plan), out_dir))

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
    result = run_cpu("sgd,adam", epochs=7, plugin_set=ps)
    epochs = [c for c in rec.calls if c[0] == "epoch"]
    assert len(epochs) == 14
    history = result.history.set_index(["run_id", "epoch"])["loss"]
    for _, run_id, epoch, loss in epochs:
        assert loss == pytest.approx(history[(run_id, epoch)], rel=1e-6)
    assert rec.calls[:2] == [("sweep", 2, None), ("start", 0)] and ("end", 1, "ok") in rec.calls
    assert rec.calls[-1] == ("ready", 2, 14, None)


def _implementing(hook: str | None):
    """A plugin object implementing only ``hook`` (or nothing)."""

    class Only:
        pass

    if hook is not None:
        recorder = getattr(Recorder, hook)
        setattr(Only, hook, recorder)
        Only.calls = []
    return Only()


# calls a sweep of 2 optimizers × 2 seeds × 5 epochs makes to each lifecycle hook
EXPECTED_CALLS = {
    "gdbench_sweep_start": 1,
    "gdbench_run_start": 4,
    "gdbench_epoch_end": 4 * 5,
    "gdbench_run_end": 4,
    "gdbench_results_ready": 1,
}


@pytest.mark.parametrize("implemented", [None, *HOOKS])
def test_only_implemented_lifecycle_hooks_are_called(monkeypatch, implemented):
    """gdbench calls each plugin's implementation itself (to guard it): a hook that no
    plugin implements has nothing to call, and engines skip the per-epoch report (and its
    device synchronisation) unless ``gdbench_epoch_end`` is implemented."""
    plugin = _implementing(implemented)
    ps = load_plugins(extra=[("only", plugin)], plugin_filter=PluginFilter(only=frozenset()))
    assert [h for h in HOOKS if ps.implemented(h)] == ([implemented] if implemented else [])
    hooks = Lifecycle(ps)
    assert [h for h in HOOKS if hooks.impls[h]] == ([implemented] if implemented else [])
    reports = Counter()
    real_report = Trainer._report_epoch

    def counting_report(self, on_epoch, epoch):
        reports["epoch"] += 1
        real_report(self, on_epoch, epoch)

    monkeypatch.setattr(Trainer, "_report_epoch", counting_report)
    run_cpu("sgd,adam", seeds=2, epochs=5, plugin_set=ps)
    if implemented:
        assert len(plugin.calls) == EXPECTED_CALLS[implemented]
    assert (hooks.on_epoch is None) == (implemented != "gdbench_epoch_end")
    assert reports["epoch"] == (2 * 5 if implemented == "gdbench_epoch_end" else 0)  # 2 batches


@pytest.fixture
def fake_site(tmp_path, monkeypatch, fresh_plugins):
    """A folder, put on ``sys.path``, holding two real (unpackaged) distributions with
    gdbench entry points: one whose module fails to import, one that reuses a built-in
    plugin's name. ``PYTHONPATH`` set to it does the same for a subprocess."""
    site = tmp_path / "site"
    write_distribution(
        site, "broken_plugin", {"broken": "raise ImportError('missing dependency xyz')"}
    )
    write_distribution(site, "clashing_plugin", {"builtin_losses": ""})
    monkeypatch.syspath_prepend(str(site))
    return site


def test_gdbench_plugins_lists_failed_plugins(fake_site):
    """The smoke test of ``gdbench plugins``: the installed script, entry points found on
    PYTHONPATH."""
    table = gdbench_cli("plugins", env={"PYTHONPATH": str(fake_site)}, timeout=60)
    assert table.returncode == 1, table.stderr  # a plugin failed to load
    assert "gdbench: error: failed to load plugin broken (broken_plugin)" in table.stderr
    assert "missing dependency xyz" in table.stderr
    assert "optimizer:adam" in table.stdout and "builtin_losses" in table.stdout


def test_cli_lists_failed_plugins_and_still_runs(fake_site, cli, tmp_path):
    listing = cli("plugins", "--json")
    assert listing.exit_code == 1, listing.stderr
    plugins = {(p["name"], p["dist"]): p for p in json.loads(listing.stdout)}
    broken = plugins[("broken", "broken_plugin")]
    assert "missing dependency xyz" in broken["error"] and broken["version"] == "1.2.3"
    assert "already taken" in plugins[("builtin_losses", "clashing_plugin")]["error"]
    assert plugins[("builtin_optimizers", "gdbench")]["error"] is None

    table = cli("plugins")
    assert table.exit_code == 1 and "failed to load plugin broken" in table.stderr
    assert "optimizer:adam" in table.stdout

    run = cli("run", "--epochs", "3", "--device", "cpu", "--no-plot", "--out", str(tmp_path / "r"))
    assert run.exit_code == 0, run.stderr


def test_plugin_filter_switches_plugins_off_without_importing_them(fake_site, cli, tmp_path):
    # GDBENCH_PLUGINS set but empty: third-party plugins off, built-ins on
    listing = cli("plugins", "--json", env={"GDBENCH_PLUGINS": ""})
    assert listing.exit_code == 0 and listing.stderr == "", listing.stderr
    plugins = {(p["name"], p["dist"]): p for p in json.loads(listing.stdout)}
    broken = plugins[("broken", "broken_plugin")]
    assert broken["error"] is None and "GDBENCH_PLUGINS" in broken["disabled"]
    assert plugins[("builtin_losses", "gdbench")]["components"]

    # naming one by its distribution keeps it; a name that matches nothing is a warning
    listing = cli("plugins", "--json", env={"GDBENCH_PLUGINS": "broken_plugin,nosuch"})
    plugins = {(p["name"], p["dist"]): p for p in json.loads(listing.stdout)}
    assert "missing dependency xyz" in plugins[("broken", "broken_plugin")]["error"]
    assert "'nosuch' matches no installed plugin" in listing.stderr

    # --disable-plugin and GDBENCH_DISABLE_PLUGINS, built-ins included
    env = {"GDBENCH_DISABLE_PLUGINS": "clashing_plugin"}
    table = cli("--disable-plugin", "broken", "plugins", env=env)
    assert table.exit_code == 0, table.stderr
    assert "failed to load" not in table.stdout + table.stderr
    assert table.stdout.count("disabled") >= 2
    run = cli("--disable-plugin", "builtin_losses", "run", "--epochs", "2", "--out", str(tmp_path))
    assert run.exit_code == 2 and "unknown loss 'l1'" in run.stderr
    assert "Traceback" not in run.stderr
    # the in-process invocations above left nothing switched off
    again = cli("plugins", "--json")
    plugins = {(p["name"], p["dist"]): p for p in json.loads(again.stdout)}
    assert plugins[("builtin_losses", "gdbench")]["disabled"] is None
    assert plugins[("broken", "broken_plugin")]["disabled"] is None
