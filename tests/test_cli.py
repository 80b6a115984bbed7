"""The main journeys through the installed console script, run as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import matplotlib.image
import pandas as pd
import pytest
from conftest import BIN, gdbench_cli


def results_dir(parent):
    (out,) = [p for p in parent.iterdir() if p.is_dir()]
    return out


def test_run_sgd_adam_end_to_end(tmp_path):
    proc = gdbench_cli("run", "--plugins", "sgd,adam", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "final loss" in proc.stdout and "sgd" in proc.stdout and "adam" in proc.stdout
    out = results_dir(tmp_path / "results")  # the default output folder
    assert {p.name for p in out.iterdir()} >= {
        "runs.parquet", "runs.csv", "history.parquet", "meta.json", "convergence.png"
    }  # fmt: skip
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 1 * 2  # one device here (cpu) × two optimizers
    sgd = runs.set_index("optimizer").loc["sgd"]
    adam = runs.set_index("optimizer").loc["adam"]
    assert abs(sgd["w"] - 2) < 0.02 and 2.5 <= sgd["b"] <= 3.1
    assert abs(adam["b"] - 3) < 0.1 and adam["final_loss"] < sgd["final_loss"]
    assert runs["device_name"].str.len().min() > 0
    assert (runs["optimizer_dist"] == "gdbench").all()
    history = pd.read_parquet(out / "history.parquet")
    assert len(history) == 2 * 500
    csv = pd.read_csv(out / "runs.csv")
    assert list(csv["final_loss"]) == pytest.approx(list(runs["final_loss"]))
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] is True and meta["invocation"][1:] == ["run", "--plugins", "sgd,adam"]
    assert meta["versions"]["torch"] and "cpu" in meta["devices"]
    image = matplotlib.image.imread(out / "convergence.png")
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05  # something was drawn


def test_grid_and_task_options(tmp_path):
    proc = gdbench_cli(
        "run", "-p", "adam[lr=0.01,0.1],mse", "--seeds", "2", "--epochs", "40",
        "--n-samples", "64", "--noise-std", "0.5", "--data-seed", "4", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    runs = pd.read_parquet(results_dir(tmp_path) / "runs.parquet")
    assert sorted(runs["lr"]) == [0.01, 0.01, 0.1, 0.1]
    assert set(runs["n_samples"]) == {64} and set(runs["data_seed"]) == {4}
    assert set(runs["loss"]) == {"mse"} and sorted(runs["seed"]) == [0, 0, 1, 1]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-p", "adma"], "did you mean adam"),
        (["-p", "adam[betaz=0.9:0.99]"], "did you mean 'betas'"),
        (["-p", "adam[betas=2:0.9]"], "bad hyper-parameter value"),
        (["-p", "huber[delta=-1]"], "delta must be > 0"),
        (["--epochs", "0"], "--epochs must be a positive whole number"),
        (["--lr", "-0.1"], "learning rate must be a positive number"),
        (["--lr", "0"], "learning rate must be a positive number"),
        (["--lr", "fast"], "is not a number"),
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--device", "cuda"], "not available"),
        (["--device", "tpu9"], "unknown device"),
        (["--n-samples", "0"], "--n-samples must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, fragment):
    proc = gdbench_cli("run", *args, "--out", str(tmp_path / "r"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("gdbench: error:") and fragment in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_unwritable_out_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = gdbench_cli("run", "--out", str(blocker / "sub"))
    assert proc.returncode == 2 and "is not writable" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_ctrl_c_keeps_the_finished_runs(tmp_path):
    cmd = [str(BIN / "gdbench"), "run", "--seeds", "400", "--engine", "sequential"]
    cmd += ["--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    runs_file = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(tmp_path.glob("*/runs.parquet"))
        if found:
            runs_file = found[0]
            break
        time.sleep(0.1)
    assert runs_file is not None, "no run was saved while the sweep went on"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    runs = pd.read_parquet(runs_file)
    history = pd.read_parquet(runs_file.parent / "history.parquet")
    assert 0 < len(runs) < 400 and (runs["status"] == "ok").all()
    assert len(history) == 500 * len(runs)
    meta = json.loads((runs_file.parent / "meta.json").read_text())
    assert meta["complete"] is False and meta["n_runs_saved"] == len(runs)
    assert not list(runs_file.parent.glob(".*.tmp"))


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["plugins"], ["plugins", "--json"], ["run", "--help"], ["bench", "--help"]],
)
def test_startup_does_not_import_torch_or_pandas(argv):
    code = (
        "import sys\n"
        "from gdbench.cli import app\n"
        "try:\n"
        f"    app({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'pandas', 'numpy') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY=\n" in proc.stderr, proc.stderr
    assert proc.stdout.strip()


def test_version():
    from gdbench import __version__

    proc = gdbench_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"gdbench {__version__}"


def test_python_api_writes_the_same_tables(tmp_path):
    import gdbench

    res = gdbench.run("sgd,adam", epochs=30, out=tmp_path, device="cpu")
    on_disk = pd.read_parquet(res.out_dir / "runs.parquet")
    pd.testing.assert_frame_equal(on_disk, res.runs, check_dtype=False)
    assert os.path.exists(res.out_dir / "convergence.png")
    summary = res.summary()
    assert list(summary["optimizer_label"]) == ["sgd", "adam"]


def test_table_shows_hyperparameter_labels_literally(tmp_path):
    """``adam[eps=0.1]`` is a label, not rich markup to swallow."""
    proc = gdbench_cli(
        "run", "-p", "adam[eps=0.1,0.2],huber[delta=2]", "--epochs", "3", "--out", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr
    assert "adam[eps=0.1]" in proc.stdout and "adam[eps=0.2]" in proc.stdout
    assert "huber[delta=2]" in proc.stdout  # constant: moved into the caption
