"""``report.html`` (``html_report.py``): written by every sweep, self-contained, escaped,
complete; and, in a real headless Chromium, loading with no console error and no network
request, every figure drawn, the tables sorting.

The browser tests are ``slow`` (CI runs them; ``.ci/run`` installs Debian's chromium when
missing). Without a browser they skip, except under CI (``CI`` set), where they fail:
there the browser must be there.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import results_dir

import gdbench
from gdbench.html_report import REPORT_FILE, first_errors, render_report, write_report
from gdbench.results import Results
from gdbench.store import load

INJECTED = "<script>alert('argv')</script>"
BROKEN_MESSAGE = "no start <b>&amp; here</b>"


class BrokenInit:
    """An initializer that fails every run, with markup in its message (to be escaped)."""

    @gdbench.hookimpl
    def gdbench_register_initializers(self, register):
        def broken(weight, bias, generator):
            raise RuntimeError(BROKEN_MESSAGE)

        register("broken", broken)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A small real sweep's folder: 2 optimizers × 2 losses × 2 lrs × 2 inits × 3 seeds;
    sgd on mse at lr 0.1 diverges, every run of the broken init ends in error."""
    from gdbench.plugins import load_plugins

    parent = tmp_path_factory.mktemp("sweep")
    plugin_set = load_plugins(extra=[("html-report-test", BrokenInit())])
    # one run at a time: in a batch, a failing initializer fails its batch-mates too
    gdbench.run("sgd,adam,l1,mse,default,broken", lr=[0.01, 0.1], seeds=3, epochs=40,
                device="cpu", out=parent, plugin_set=plugin_set, engine="sequential",
                plot=False, argv=["gdbench", "run", "-p", INJECTED])  # fmt: skip
    return results_dir(parent)


@pytest.fixture(scope="module")
def page(sweep) -> str:
    return (sweep / REPORT_FILE).read_text(encoding="utf-8")


# ---------------------------------------------------------------- the file itself


def test_a_sweep_writes_its_report_last(sweep):
    files = {p.name for p in sweep.iterdir()}
    assert {REPORT_FILE, "runs.parquet", "profiles.parquet"} <= files
    report = (sweep / REPORT_FILE).stat().st_mtime
    assert report >= (sweep / "runs.parquet").stat().st_mtime


def test_the_page_fetches_nothing(page):
    """Styles and the script inline, figures inline SVG: no address anywhere a browser
    would load from, and a policy that forbids loading anyway."""
    assert not re.search(r"""\b(src|href|srcset|action)\s*=\s*["']?\s*(https?:|//)""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:|//)", page, re.I)
    assert "@import" not in page and "<link" not in page.lower()
    assert not re.search(r"<script[^>]*\bsrc=", page, re.I)
    assert "default-src 'none'" in page  # the Content-Security-Policy
    assert len(page.encode()) < 1_000_000


def test_the_page_holds_what_a_reader_needs(sweep, page):
    runs = load(sweep).runs
    assert "Invocation and environment" in page and "gdbench run -p" in page
    assert gdbench.__version__ in page and "sweep.toml" in page
    for name in ("sgd", "adam", "l1", "mse", "broken"):
        assert name in page
    assert page.count('<table class="sortable" id="summary') == 1
    n_configs = runs.groupby(["optimizer_label", "loss_label", "init_label", "lr"]).ngroups
    summary = page[page.index('id="summary-') :]
    summary = summary[: summary.index("</table>")]
    assert summary.count("<tr>") == n_configs + 1  # and the header row
    assert page.count("<svg") == 2 + 1  # convergence for l1 and mse, the profiles
    assert "Performance profiles" in page
    assert "diverged at epoch" in page  # sgd on mse at lr 0.1
    assert "error 3" in page  # the broken init: 3 seeds per configuration


def test_every_user_string_is_escaped(page):
    assert INJECTED not in page and "&lt;script&gt;alert(" in page
    assert "<b>&amp; here</b>" not in page and "&lt;b&gt;&amp;amp; here&lt;/b&gt;" in page
    assert page.count("<script>") == 1  # the sorting script, ours


def test_element_ids_are_unique(page):
    """Several matplotlib figures share the page: their own ids are prefixed apart."""
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)) and len(ids) > 10
    refs = set(re.findall(r"url\(#([^)]+)\)", page)) | set(re.findall(r'href="#([^"]+)"', page))
    assert refs <= set(ids)


def test_first_errors_agree_with_the_command_line(sweep):
    from gdbench.failures import failures

    runs = load(sweep).runs
    table = first_errors(runs)
    errors = {f.first_error for f in failures(runs)}
    assert len(errors) == 1 and errors.pop().endswith(f"RuntimeError: {BROKEN_MESSAGE}")
    assert set(table["first_error"]) >= {f.first_error for f in failures(runs)}
    diverged = table[table["first_error"].str.startswith("diverged")]
    assert len(diverged) == 1 and diverged.iloc[0]["optimizer_label"] == "sgd"
    assert first_errors(runs[runs["status"] == "ok"]).empty


def test_gdbench_report_writes_the_page_again(sweep, cli, tmp_path):
    (sweep / REPORT_FILE).unlink()
    result = cli("report", str(sweep))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"report: {sweep / REPORT_FILE}"
    assert (sweep / REPORT_FILE).stat().st_size > 10_000
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("report", str(empty))
    assert result.exit_code == 2 and "holds no runs.parquet" in result.stderr


def test_no_report_when_asked(tmp_path, cli):
    res = gdbench.run("sgd", epochs=3, device="cpu", out=tmp_path / "py", report=False)
    assert res.out_dir is not None and not (res.out_dir / REPORT_FILE).exists()
    assert "report = false" in (res.out_dir / "sweep.toml").read_text()
    result = cli("run", "--epochs", "3", "--device", "cpu", "--no-report", "--no-plot",
                 "--out", str(tmp_path / "cli"))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert not (results_dir(tmp_path / "cli") / REPORT_FILE).exists()


def test_a_failing_report_is_a_warning_not_a_lost_sweep(sweep, monkeypatch):
    from gdbench import html_report

    def broken(folder, results):
        raise RuntimeError("template gone")

    monkeypatch.setattr(html_report, "render_report", broken)
    with pytest.warns(UserWarning, match="report.html not written: RuntimeError: template gone"):
        assert html_report.write_report_or_warn(sweep) is None


@pytest.mark.filterwarnings("error")
def test_a_sweep_with_no_ok_run_still_gets_its_page(tmp_path):
    res = gdbench.run("sgd[lr=5],mse", epochs=50, device="cpu", out=tmp_path, plot=False)
    assert list(res.runs["status"]) == ["diverged"] and res.out_dir is not None
    page = (res.out_dir / REPORT_FILE).read_text()
    assert "diverged 1" in page and "no ok run" in page and page.count("<svg") == 1


def test_a_tuning_folder_gets_its_tables_and_sensitivity(sweep, tmp_path):
    """A folder of ``gdbench tune``: trials and held-out runs told apart by ``phase``,
    ``tuned.parquet`` beside them (made by hand here, from the sweep's runs)."""
    results = load(sweep)
    runs = results.runs.copy()
    runs["phase"] = ["tune" if i % 2 else "eval" for i in runs["run_id"]]
    tuned = pd.DataFrame({"study": [0, 0], "optimizer": ["sgd", "adam"], "lr": [0.1, 0.01],
                          "solved": ["3/3", "2/3"]})  # fmt: skip
    folder = tmp_path / "tuned"
    folder.mkdir()
    tuned.to_parquet(folder / "tuned.parquet")
    page = render_report(folder, Results(runs, results.history, folder))
    assert "held-out evaluation" in page and "tuning trials" in page
    assert "Sensitivity to the learning rate" in page and 'id="tuned-' in page
    assert page.count("<svg") == 2 + 1  # convergence (eval runs) per loss, sensitivity


def test_labels_are_escaped_in_figures_too(sweep, tmp_path):
    """A label reaches the tables and the figures' text: markup is escaped in both, and
    ``$`` is not read as mathtext by matplotlib."""
    results = load(sweep)
    runs = results.runs.assign(optimizer_label=results.runs["optimizer_label"] + "$x$<i>")
    page = render_report(tmp_path, Results(runs, results.history, tmp_path))
    assert "<i>" not in page
    svg = page[page.index("<svg") :]
    assert "sgd$x$&lt;i&gt;" in svg[: svg.index("</svg>")]  # a panel title, as text


# ---------------------------------------------------------------- in a real browser


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str:
    """The system Chromium (``GDBENCH_CHROMIUM`` names another); skips without one, or
    fails under CI, which must test the page in a browser."""
    found = os.environ.get("GDBENCH_CHROMIUM") or next(
        (p for p in map(shutil.which, CHROMIUM_NAMES) if p), None
    )
    reason = None
    if not found:
        reason = "no Chromium on PATH (apt-get install chromium; .ci/run does)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install -e '.[test]')"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
    assert found is not None
    return found


def check_in_browser(path: Path) -> dict:
    """Open ``path`` in headless Chromium; check it loads with no console error and no
    request but the page itself, every figure has drawn, and a summary table sorts.
    Returns what was seen, for further checks."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    url = path.resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            console, requests = [], []
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: console.append(("requestfailed", r.url)))
            page.goto(url, wait_until="load")
            figures = page.evaluate(
                """() => Array.from(document.querySelectorAll("figure")).map(f => {
                    const svg = f.querySelector(":scope > svg"), img = f.querySelector("img");
                    const box = (svg || img).getBoundingClientRect();
                    return {id: f.id, width: box.width, height: box.height,
                            paths: svg ? svg.querySelectorAll("path").length : 0,
                            decoded: img ? img.complete && img.naturalWidth > 0 : null};
                })"""
            )
            table = page.locator("table.sortable[id^=summary]").first
            header = table.locator("thead th", has_text="gap").first
            column = int(header.evaluate("th => th.cellIndex"))

            def column_values() -> list[str]:
                return table.evaluate(
                    "(t, c) => Array.from(t.tBodies[0].rows, r => r.cells[c].dataset.v)",
                    column,
                )

            header.click()
            ascending = column_values()
            sort_state = header.get_attribute("aria-sort")
            header.click()
            descending = column_values()
        finally:
            browser.close()
    errors = [m for m in console if m[0] in ("error", "pageerror", "requestfailed")]
    assert not errors, errors
    assert [r for r in requests if r != url and not r.startswith("data:")] == []
    assert figures and all(f["width"] > 100 and f["height"] > 100 for f in figures), figures
    assert all(f["paths"] > 10 or f["decoded"] for f in figures), figures
    numbers = [float(v) for v in ascending if v != ""]
    assert sort_state == "ascending" and numbers == sorted(numbers) and len(numbers) > 1
    assert ascending[len(numbers) :] == [""] * (len(ascending) - len(numbers))  # blanks last
    assert [float(v) for v in descending if v != ""] == sorted(numbers, reverse=True)
    return {"figures": figures, "requests": requests}


@pytest.mark.slow
def test_the_page_in_chromium(sweep, page):
    seen = check_in_browser(sweep / REPORT_FILE)
    assert len(seen["figures"]) == page.count("<figure")


@pytest.mark.slow
def test_the_1350_run_sweep_report_in_chromium(tmp_path):
    """The sweep of docs/performance.md (3 optimizers × 3 losses × 3 inits × 5 lrs × 10
    seeds, 500 epochs): its page stays a few MB and opens cleanly."""
    res = gdbench.run("sgd,momentum,adam,l1,mse,huber,default,xavier,kaiming",
                      lr=[0.001, 0.003, 0.01, 0.02, 0.03], seeds=10, device="cpu",
                      out=tmp_path, plot=False)  # fmt: skip
    assert len(res.runs) == 1350 and res.out_dir is not None
    path = res.out_dir / REPORT_FILE
    assert path.stat().st_size < 4_000_000
    seen = check_in_browser(path)
    assert len(seen["figures"]) == 3 + 1  # one convergence figure per loss, the profiles
    write_report(res.out_dir)  # from the folder alone, as gdbench report does
    assert path.stat().st_size < 4_000_000
