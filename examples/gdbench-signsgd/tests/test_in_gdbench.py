"""The plugin inside real gdbench runs, beside the built-in SGD and Adam."""

import gdbench

from gdbench_signsgd import plugin


def test_sign_methods_reach_the_same_fit_as_adam(gdbench_plugin_set):
    plugin_set = gdbench_plugin_set(plugin)
    res = gdbench.run("sgd,adam,signsgd,lion", out=None, plugin_set=plugin_set, device="cpu")
    runs = res.runs.set_index("optimizer")
    assert (runs["status"] == "ok").all()
    assert runs.loc["signsgd", "optimizer_plugin"] == "gdbench_signsgd.plugin"
    for name in ("signsgd", "lion"):  # lr-sized steps: within a few lr of Adam's fit
        assert abs(runs.loc[name, "b"] - runs.loc["adam", "b"]) < 0.05
        assert abs(runs.loc[name, "w"] - runs.loc["adam", "w"]) < 0.05


def test_losses_and_init_run_with_hyperparameters(gdbench_plugin_set):
    plugin_set = gdbench_plugin_set(plugin)
    res = gdbench.run(
        "signsgd,cauchy[scale=0.5,2],quantile[q=0.9],lecun",
        epochs=50,
        out=None,
        plugin_set=plugin_set,
        device="cpu",
    )
    assert len(res.runs) == 3 and (res.runs["status"] == "ok").all()
    assert set(res.runs["init"]) == {"lecun"}


def test_batched_engine_matches_one_run_at_a_time(gdbench_plugin_set):
    """batchable=True, kept: stacked runs (seeds × learning rates) end exactly where the
    same runs end one by one."""
    plugin_set = gdbench_plugin_set(plugin)
    common = dict(epochs=40, seeds=3, lr=[0.01, 0.05], out=None, device="cpu")
    tables = {
        engine: gdbench.run(
            "signsgd[momentum=0,0.9],lion,loss:cauchy",
            engine=engine,
            plugin_set=plugin_set,
            **common,
        ).runs.set_index("run_id")
        for engine in ("sequential", "batched")
    }
    assert set(tables["batched"]["engine"]) == {"batched"}
    for column in ("final_loss", "w", "b"):
        assert (tables["batched"][column] == tables["sequential"][column]).all()
