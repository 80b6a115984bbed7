"""What failed in a sweep, said where a person looks: the first error of each failing
configuration, with the component and plugin it names (the runs' ``error`` column)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

ERROR = "error"


@dataclass(frozen=True)
class Failure:
    """One configuration with runs that ended in ``error``."""

    configuration: str
    failed: int
    runs: int
    first_error: str

    def line(self) -> str:
        return (
            f"{self.failed} of {self.runs} runs of {self.configuration} failed: {self.first_error}"
        )


def configuration(row: pd.Series, devices: int = 1) -> str:
    """A configuration's name as people read it: optimizer, lr, loss, init (and device)."""
    text = f"{row['optimizer_label']} lr={row['lr']:g} · {row['loss_label']} · {row['init_label']}"
    return f"{text} · {row['device']}" if devices > 1 else text


def failures(runs: pd.DataFrame) -> list[Failure]:
    """Per configuration with errors, in the order of the runs table: how many failed and
    the first error (runs of one configuration usually fail for one reason)."""
    if not len(runs) or not (runs["status"] == ERROR).any():
        return []
    keys = ["optimizer_label", "lr", "loss_label", "init_label", "device"]
    devices = runs["device"].nunique()
    found = []
    for _, group in runs.groupby(keys, sort=False, dropna=False):
        errors = group[group["status"] == ERROR]
        if len(errors):
            first = errors.sort_values("run_id").iloc[0]
            found.append(Failure(configuration(first, devices), len(errors), len(group),
                                 str(first["error"])))  # fmt: skip
    return found
