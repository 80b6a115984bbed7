"""The command line. ``gdbench run`` end to end, Ctrl-C and the import-free startup run as
real subprocesses; every other behaviour runs in process (the ``cli`` fixture), which
saves each test the seconds a new interpreter spends importing torch."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import matplotlib.image
import pandas as pd
import pytest
from helpers import BIN, assert_usage_error, gdbench_cli, results_dir

import gdbench


def test_run_sgd_adam_end_to_end(tmp_path):
    """The smoke test of ``gdbench run``: the installed script, default output folder."""
    proc = gdbench_cli("run", "--plugins", "sgd,adam", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = results_dir(tmp_path / "results")  # the default output folder
    assert "gdbench run" in proc.stdout and f"results: {out.relative_to(tmp_path)}" in proc.stdout
    assert "sgd" in proc.stdout and "adam" in proc.stdout  # the summary table
    assert {p.name for p in out.iterdir()} >= {
        "runs.parquet", "runs.csv", "history.parquet", "meta.json", "convergence.png"
    }  # fmt: skip
    runs = pd.read_parquet(out / "runs.parquet")
    devices = set(runs["device"])  # auto: the CPU and any accelerator
    assert "cpu" in devices and len(runs) == 2 * len(devices)
    cpu = runs[runs["device"] == "cpu"].set_index("optimizer")
    sgd, adam = cpu.loc["sgd"], cpu.loc["adam"]
    assert abs(sgd["w"] - 2) < 0.02 and 2.5 <= sgd["b"] <= 3.1
    assert abs(adam["b"] - 3) < 0.1 and adam["final_loss"] < sgd["final_loss"]
    assert runs["device_name"].str.len().min() > 0
    assert (runs["optimizer_dist"] == "gdbench").all()
    history = pd.read_parquet(out / "history.parquet")
    assert len(history) == 500 * len(runs)
    csv = pd.read_csv(out / "runs.csv")
    assert list(csv["final_loss"]) == pytest.approx(list(runs["final_loss"]))
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] is True and meta["invocation"][1:] == ["run", "--plugins", "sgd,adam"]
    assert meta["versions"]["torch"] and "cpu" in meta["devices"]
    image = matplotlib.image.imread(out / "convergence.png")
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05  # something was drawn


def test_grid_and_task_options(cli, tmp_path):
    result = cli(
        "run", "-p", "adam[lr=0.01,0.1],mse", "--seeds", "2", "--epochs", "40",
        "--n-samples", "64", "--noise-std", "0.5", "--data-seed", "4", "--device", "cpu",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    runs = pd.read_parquet(results_dir(tmp_path) / "runs.parquet")
    assert sorted(runs["lr"]) == [0.01, 0.01, 0.1, 0.1]
    assert set(runs["n_samples"]) == {64} and set(runs["data_seed"]) == {4}
    assert set(runs["noise_std"]) == {0.5}
    assert set(runs["loss"]) == {"mse"} and sorted(runs["seed"]) == [0, 0, 1, 1]


def test_engine_option(cli, tmp_path):
    result = cli("run", "-p", "sgd,adam", "--seeds", "3", "--epochs", "50", "--device", "cpu",
                 "--engine", "sequential", "--no-plot", "--out", str(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    runs = pd.read_parquet(results_dir(tmp_path) / "runs.parquet")
    assert len(runs) == 6 and set(runs["engine"]) == {"sequential"}
    assert set(runs["batch_size"]) == {1}


def test_small_batches_stay_eager_under_compile(cli, tmp_path):
    result = cli("run", "-p", "sgd", "--seeds", "3", "--epochs", "20", "--compile",
                 "--device", "cpu", "--no-plot", "--out", str(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "note: eager: batches under 256 runs gain nothing from compile" in result.stdout
    runs = pd.read_parquet(results_dir(tmp_path) / "runs.parquet")
    assert not runs["compiled"].any()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-p", "adma"], "did you mean adam"),
        (["-p", "adam[betaz=0.9:0.99]"], "did you mean 'betas'"),
        (["-p", "adam[betas=2:0.9]"], "bad hyper-parameter value"),
        (["-p", "huber[delta=-1]"], "delta must be > 0"),
        (["-p", "adam[lr=0]"], "adam: learning rate must be a positive finite number"),
        (["--epochs", "0"], "--epochs must be a positive whole number, got 0"),
        (["--lr", "-0.1"], "--lr must be a positive finite number"),
        (["--lr", "0"], "--lr must be a positive finite number"),
        (["--lr", "fast"], "--lr takes numbers: 'fast' is not one"),
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--device", "cuda:99"], "not available"),  # with or without CUDA
        (["--device", "tpu9"], "unknown device"),
        (["--n-samples", "0"], "--n-samples must be at least 1"),
        (["--noise-std", "-1"], "--noise-std must be >= 0"),
        (["--w-true", "nan"], "--w-true must be finite"),
        (["--data-seed", "-1"], "--data-seed must lie in 0..2**63-1"),
        (["--engine", "warp"], "--engine 'warp' is unknown"),
        (["--max-batch", "0"], "--max-batch must be a positive whole number"),
        # every value the robustness issue found accepted
        (["--noise-std", "nan"], "--noise-std must be finite, got nan"),
        (["--x-high", "inf"], "--x-high must be finite, got inf"),
        (["-p", "sgd[lr=inf]"], "sgd: learning rate must be a positive finite number, got inf"),
        (["--lr", "inf"], "--lr must be a positive finite number, got inf"),
        (["-p", "sgd[nesterov=maybe;momentum=0.9]"], "sgd: nesterov is true or false"),
        (["-p", "adam[amsgrad=1]"], "adam: amsgrad is true or false, got '1'"),
        (["-p", "sgd[lr=0.1;lr=0.2]"], "hyper-parameter 'lr' given twice"),
        (["-p", "sgd[lr=]"], "empty hyper-parameter value"),
        (["--lr", ""], "--lr has an empty value"),
        (["--lr", "0.1,,0.2"], "--lr has an empty value"),
        (["--plugins", ""], "--plugins names no component"),
        (["--plugins", ",,,"], "--plugins names no component"),
        (["--seeds", "100000000000"], "--seeds must be at most 10,000,000"),
        (["--data-seed", "99999999999999999999"], "--data-seed"),
        (["--epochs", "2000000000"], "--epochs needs ~"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, fragment):
    result = cli("run", *args, "--out", str(tmp_path / "r"))
    assert_usage_error(result, fragment, tmp_path / "r")
    assert result.stdout == ""


def test_a_usage_error_names_the_parameter_as_each_front_end_spells_it(cli, tmp_path):
    """Python names the argument (``epochs``), the command line its flag (``--epochs``)."""
    with pytest.raises(gdbench.UsageError) as caught:
        gdbench.run("sgd", epochs=0, out=None)
    assert caught.value.param == "epochs" and not isinstance(caught.value, TypeError)
    message = str(caught.value)
    assert message == "epochs must be a positive whole number, got 0"
    assert "--epochs" not in message

    result = cli("run", "--epochs", "0", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"gdbench: error: --{message}"]
    assert result.stdout == ""


def test_unwritable_out_is_a_usage_error(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("run", "--epochs", "2", "--device", "cpu", "--out", str(blocker / "sub"))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("gdbench: error: --out ") and "is not writable" in line
    with pytest.raises(gdbench.UsageError, match="is not writable") as caught:
        gdbench.run("sgd", epochs=2, device="cpu", out=blocker / "sub")
    assert caught.value.param == "out"


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout == f"gdbench {gdbench.__version__}\n"


def test_table_shows_hyperparameter_labels_literally(cli, tmp_path):
    """``adam[eps=0.1]`` is a label, not rich markup to swallow."""
    result = cli("run", "-p", "adam[eps=0.1,0.2],huber[delta=2]", "--epochs", "3",
                 "--device", "cpu", "--no-plot", "--out", str(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "adam[eps=0.1]" in result.stdout and "adam[eps=0.2]" in result.stdout
    assert "huber[delta=2]" in result.stdout  # constant: moved into the caption


def test_python_api_writes_the_same_tables(tmp_path):
    res = gdbench.run("sgd,adam", epochs=30, out=tmp_path, device="cpu")
    on_disk = pd.read_parquet(res.out_dir / "runs.parquet")
    pd.testing.assert_frame_equal(on_disk, res.runs, check_dtype=False)
    history = pd.read_parquet(res.out_dir / "history.parquet")
    pd.testing.assert_frame_equal(history, res.history, check_dtype=False)
    assert (res.out_dir / "convergence.png").exists()
    assert res.complete
    assert list(res.summary()["optimizer_label"]) == ["sgd", "adam"]


def test_ctrl_c_keeps_the_finished_runs(tmp_path):
    """A real SIGINT to a real sweep: the runs finished before it are saved, whole.

    The sweep is far longer than the test waits (2000 sequential runs), the signal goes
    only once the first runs are on disk, and the process writes to files rather than
    pipes, so nothing can block it; should it not stop, it is killed and the test fails
    with its output.
    """
    out = tmp_path / "results"
    cmd = [str(BIN / "gdbench"), "run", "--seeds", "2000", "--epochs", "100", "--device", "cpu",
           "--engine", "sequential", "--workers", "1", "--no-plot", "--out", str(out)]  # fmt: skip
    logs = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(logs[0], "w") as stdout, open(logs[1], "w") as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr)
        try:
            part = _wait_for_file(out, "*/parts/runs-*.parquet", proc, timeout=120)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"gdbench ignored SIGINT for 60 s; stderr:\n{logs[1].read_text()}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    err = logs[1].read_text()
    assert code == 130, err
    assert "SIGINT: stopped" in err and "not started" in err and "Traceback" not in err
    folder = part.parent.parent
    runs = pd.read_parquet(folder / "runs.parquet")  # compacted on the way out
    history = pd.read_parquet(folder / "history.parquet")
    statuses = runs["status"].value_counts().to_dict()
    assert 0 < len(runs) < 2000 and set(statuses) <= {"ok", "interrupted"}
    assert statuses.get("interrupted", 0) <= 1  # one run at a time: at most one in flight
    expected = runs["epochs_run"].sum()
    assert len(history) == expected and (runs.loc[runs.status == "ok", "epochs_run"] == 100).all()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["complete"] is False and meta["n_runs_saved"] == len(runs)
    assert meta["interrupted"] == "SIGINT"
    assert not list(folder.rglob(".*.tmp")) and not (folder / "parts").exists()


def _wait_for_file(folder, pattern, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"gdbench exited with {proc.returncode} before saving a run")
        time.sleep(0.05)
    pytest.fail(f"no run was saved within {timeout} s")


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


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--epochs", "abc"], "Invalid value for '--epochs'"),
        (["run", "--bogus"], "No such option: --bogus"),
        (["resume"], "Missing argument"),
    ],
)
def test_clicks_own_usage_errors_are_one_line_too(args, fragment):
    """Errors the command-line parser finds before gdbench sees the values: through the
    installed console script, they read like gdbench's own."""
    proc = gdbench_cli(*args)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("gdbench: error: ") and fragment in line and "--help" in line


def test_help_shows_the_bracket_grammar_literally(cli):
    """rich markup would eat ``[lr=0.001,0.01;...]``: the help exists to teach it."""
    result = cli("run", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "'adam[lr=0.001,0.01;betas=0.9:0.99]'" in result.stdout
    assert "'loss:huber[delta=0.5]'" in result.stdout
