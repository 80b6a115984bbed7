"""Batches as tasks of dask.distributed: an embedded LocalCluster and a real scheduler with
two worker processes started here; the tables equal the in-process run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import gdbench
from gdbench import hookimpl
from gdbench.plugins import load_plugins

BIN = Path(sys.executable).parent
HOW_IT_RAN = ["setup_s", "train_s", "epoch_us", "seconds_to_target", "batch_size"]
pytestmark = pytest.mark.slow  # worker processes import torch: ~10 s per cluster here

SWEEP = {"plugins": "sgd,adam,l1,mse,huber", "seeds": 8, "epochs": 600, "device": "cpu",
         "plot": False}  # fmt: skip


def same_tables(a: gdbench.Results, b: gdbench.Results) -> None:
    pd.testing.assert_frame_equal(a.runs.drop(columns=HOW_IT_RAN), b.runs.drop(columns=HOW_IT_RAN))
    pd.testing.assert_frame_equal(a.history, b.history)


@pytest.fixture(scope="module")
def local():
    return gdbench.run(**SWEEP, out=None, workers=1)


@pytest.fixture(scope="module")
def dask_pair(tmp_path_factory):
    """A `dask scheduler` and two `dask worker --nthreads 1` processes on localhost."""
    folder = tmp_path_factory.mktemp("dask")
    file = folder / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--scheduler-file", str(file),
                               "--port", "0", "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]  # fmt: skip
    deadline = time.monotonic() + 60
    while not file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                "worker",
                "--scheduler-file",
                str(file),
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    address = json.loads(file.read_text())["address"]
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
    yield address, workers
    for proc in [*workers, *procs]:
        proc.kill()
        proc.wait()


def test_a_local_cluster_gives_the_in_process_tables(local, tmp_path):
    res = gdbench.run(**SWEEP, out=tmp_path, workers=2)
    same_tables(local, res)
    meta = json.loads((res.out_dir / "meta.json").read_text())
    assert meta["executor"]["executor"] == "dask" and meta["executor"]["workers"] == 2
    assert meta["executor"]["embedded"] is True
    assert meta["executor"]["dashboard"].startswith("http://127.0.0.1:")


def test_workers_thin_the_history_as_the_coordinator_would(tmp_path):
    """Workers build the history rows under the sweep's policy and send only those (and
    each run's best loss): the tables equal the in-process ones."""
    sweep = {**SWEEP, "plugins": "adam,mse", "seeds": 6, "history": "every:7"}
    here = gdbench.run(**sweep, out=None, workers=1)
    there = gdbench.run(**sweep, out=tmp_path, workers=2)
    same_tables(here, there)
    assert set(there.history["epoch"]) == {1, *range(8, 601, 7), 600}
    assert there.runs["best_loss"].notna().all()


class KillsAWorker:
    """Kills one worker process when the first batch comes back: mid-sweep."""

    def __init__(self, worker):
        self.worker = worker

    @hookimpl
    def gdbench_run_end(self, run, result):
        if self.worker.poll() is None:
            self.worker.send_signal(signal.SIGKILL)


def test_a_scheduler_and_two_workers_give_the_same_tables_even_when_one_dies(local, dask_pair):
    address, workers = dask_pair
    res = gdbench.run(**SWEEP, out=None, scheduler=address)
    same_tables(local, res)

    plugin_set = load_plugins(extra=[("killer", KillsAWorker(workers[0]))])
    survived = gdbench.run(**SWEEP, out=None, scheduler=address, plugin_set=plugin_set)
    assert workers[0].poll() is not None, "the worker was not killed"
    same_tables(local, survived)  # nothing missing, nothing different


def test_workers_lacking_a_plugin_package_are_named(dask_pair):
    from gdbench.components import Registry
    from gdbench.executors import DaskExecutor
    from gdbench.plan import build_plan
    from gdbench.selection import select

    registry = Registry()
    register = registry.register_callable("optimizer", "fake", "gdbench-fake", "9.9")
    register("fakesgd", gdbench.lazy("torch.optim:SGD"), defaults={"lr": 0.1}, batchable=True)
    for kind in ("loss", "init"):
        for c in load_plugins().registry.components(kind):
            registry.add(c)
    specs = build_plan(select(registry, "fakesgd"), [0], ["cpu"], 5, gdbench.Task())
    executor = DaskExecutor(dask_pair[0], 0)
    try:
        with pytest.raises(gdbench.UsageError, match=r"lacks gdbench-fake 9\.9"):
            executor.check_workers(specs)
    finally:
        executor.close()


def test_an_unreachable_scheduler_is_a_usage_error():
    with pytest.raises(gdbench.UsageError, match="cannot reach"):
        gdbench.run("sgd", epochs=2, out=None, scheduler="tcp://127.0.0.1:9")


def test_ctrl_c_to_the_process_group_stops_a_cluster_sweep_cleanly(tmp_path):
    """A terminal's Ctrl-C reaches every process of its group, Dask workers included: the
    workers must not die under the sweep; it stops, saves and says what it saved."""
    cmd = [str(BIN / "gdbench"), "run", "--seeds", "2000", "--epochs", "100", "--device",
           "cpu", "--engine", "sequential", "--workers", "2", "--no-plot", "--out",
           str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("*/parts/runs-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("gdbench: SIGINT: stopped;"), err
    assert "Traceback" not in err
    (folder,) = tmp_path.iterdir()
    runs = gdbench.load(folder).runs
    assert set(runs["status"]) <= {"ok", "interrupted"} and 0 < len(runs) < 2000
