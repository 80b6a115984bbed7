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


def first_error(group: pd.DataFrame) -> pd.Series | None:
    """The earliest run (by ``run_id``) of ``group`` that ended in ``error``, if any: the
    one the CLI and the report both show."""
    errors = group[group["status"] == ERROR]
    return errors.sort_values("run_id").iloc[0] if len(errors) else None


def failures(runs: pd.DataFrame) -> list[Failure]:
    """Per configuration with errors, in the order of the runs table: how many failed and
    the first error (runs of one configuration usually fail for one reason)."""
    from .report import CONFIG

    if not len(runs) or not (runs["status"] == ERROR).any():
        return []
    devices = runs["device"].nunique()
    found = []
    for _, group in runs.groupby(CONFIG, sort=False, dropna=False):
        first = first_error(group)
        if first is not None:
            failed = int((group["status"] == ERROR).sum())
            found.append(Failure(configuration(first, devices), failed, len(group),
                                 str(first["error"])))  # fmt: skip
    return found
