"""The docs describe the code as it is: the tables' columns and the module map."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gdbench.results import HISTORY_SCHEMA, RUNS_SCHEMA, schema_markdown

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "gdbench"


def _between(text: str, marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n(.*?)\n<!-- /{marker} -->", text, re.S)
    assert match, f"docs/usage.md lacks the <!-- {marker} --> block"
    return match.group(1)


@pytest.mark.parametrize(
    ("marker", "schema"), [("runs-columns", RUNS_SCHEMA), ("history-columns", HISTORY_SCHEMA)]
)
def test_usage_lists_exactly_the_declared_columns(marker, schema):
    usage = (ROOT / "docs" / "usage.md").read_text()
    assert _between(usage, marker) == schema_markdown(schema), (
        "docs/usage.md is out of date; run: make docs-tables"
    )


def test_architecture_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"^\| `([\w/]+\.py|[\w]+/)` \|", text, re.M))
    modules = {
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if p.parent in (SRC, SRC / "engine")
    } - {"__init__.py"}
    modules |= {"bench/"}
    assert listed == modules, f"missing: {modules - listed}; stale: {listed - modules}"
