"""The results folder (``store.py``): made once per invocation, never half written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import gdbench
from gdbench import store
from gdbench.store import atomic_write, make_out_dir, write_json


def test_atomic_write_replaces_the_file_or_leaves_it_alone(tmp_path):
    path = tmp_path / "table.txt"
    atomic_write(path, lambda p: p.write_text("first"))
    assert path.read_text() == "first"

    def half_then_fail(p):
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["table.txt"]  # no temporary left


def test_write_json_writes_what_json_cannot_as_text(tmp_path):
    write_json(tmp_path / "meta.json", {"out": tmp_path, "n": 3})
    assert json.loads((tmp_path / "meta.json").read_text()) == {"out": str(tmp_path), "n": 3}


def test_every_invocation_gets_a_new_folder(tmp_path):
    made = [make_out_dir(tmp_path / "parent") for _ in range(3)]
    assert len(set(made)) == 3 and all(p.is_dir() and not any(p.iterdir()) for p in made)
    assert {p.parent for p in made} == {tmp_path / "parent"}
    # within the same second, a suffix keeps them apart
    names = [store._new_folder(tmp_path, "20260101-000000").name for _ in range(3)]
    assert names == ["20260101-000000", "20260101-000000-1", "20260101-000000-2"]


def test_an_unwritable_parent_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(gdbench.UsageError, match="is not writable") as caught:
        make_out_dir(blocker / "sub")
    assert caught.value.param == "out"


def test_an_interrupt_while_a_run_is_stored_keeps_the_tables_consistent(monkeypatch, tmp_path):
    """Ctrl-C can arrive at any instant; wherever it lands, the folder must never list a
    run in runs.parquet without its history (nor the other way round). The instant is
    forced here: building the history of the second run is interrupted."""
    real_history_batch = store.history_batch
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_history_batch(*args, **kwargs)

    monkeypatch.setattr(store, "history_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gdbench.run("sgd", seeds=3, epochs=4, device="cpu", engine="sequential", plot=False,
                    out=tmp_path, max_batch=1)  # fmt: skip
    (out,) = tmp_path.iterdir()
    runs = pd.read_parquet(out / "runs.parquet")
    history = pd.read_parquet(out / "history.parquet")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] is False and meta["n_runs_saved"] == len(runs)
    assert sorted(set(history["run_id"])) == sorted(runs["run_id"])
    assert len(history) == 4 * len(runs)
