"""The ``gdbench`` command line.

Only typer is imported at module level: ``gdbench --help`` and ``gdbench plugins``
never import torch or pandas.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from .options import SweepOptions
    from .plugins import PluginSet
    from .results import Results

app = typer.Typer(
    name="gdbench",
    help="A plugin-based gradient-descent testbed: compare optimizers, losses and "
    "initializers on a regression task, across devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show the [key=value] grammar literally
)

USAGE_EXIT = 2

# The task's options, shared by run and tune (one help text each).
NSamples = Annotated[int, typer.Option(help="Number of samples.")]
WTrue = Annotated[float, typer.Option(help="True slope.")]
BTrue = Annotated[float, typer.Option(help="True intercept.")]
NoiseStd = Annotated[float, typer.Option(help="Standard deviation of the noise.")]
XLow = Annotated[float, typer.Option(help="Lower end of x ~ U(x_low, x_high).")]
XHigh = Annotated[float, typer.Option(help="Upper end of x.")]
Dim = Annotated[int, typer.Option(help="Number of features (each with weight --w-true).")]
Condition = Annotated[
    float, typer.Option(help="Scale features so E[x xᵀ] has this condition number (0: unscaled).")
]
Noise = Annotated[str, typer.Option(help="Noise distribution: normal, laplace or student-t.")]
Outliers = Annotated[
    float, typer.Option(help="Fraction of samples whose noise is 10 times larger.")
]


def _plugin_set() -> PluginSet:
    """The plugins the user wants; warnings about the choice go to stderr."""
    from .plugins import get_plugins

    plugin_set = get_plugins()
    for warning in plugin_set.warnings:
        typer.echo(f"gdbench: warning: {warning}", err=True)
    return plugin_set


def flag(param: str) -> str:
    """The command-line flag of a Python parameter: ``n_samples`` → ``--n-samples``."""
    return "--" + param.replace("_", "-")


def fail(error: UsageError | str) -> typer.Exit:
    """Print a one-line usage error (parameters named as flags); the caller raises the
    returned Exit(2)."""
    message = error.render(flag) if isinstance(error, UsageError) else error
    typer.echo(f"gdbench: error: {message}", err=True)
    return typer.Exit(USAGE_EXIT)


def parse_floats(text: str | None, param: str) -> list[float]:
    """``0.01,0.1`` → [0.01, 0.1]; errors name ``param`` (rendered as its flag). None
    (not given) is no values; an empty value is refused."""
    if text is None:
        return []
    values = []
    for part in text.split(","):
        if not part.strip():
            raise UsageError(f"has an empty value in {text!r}; write e.g. 0.01,0.1", param=param)
        try:
            values.append(float(part))
        except ValueError:
            raise UsageError(
                f"takes numbers: {part.strip()!r} is not one; write e.g. 0.01,0.1", param=param
            ) from None
    return values


@app.command()
def run(
    ctx: typer.Context,
    plugins: Annotated[
        list[str] | None,
        typer.Option(
            "--plugins",
            "-p",
            metavar="COMPONENTS",
            help="Components to compare, e.g. 'sgd,adam', 'adam[lr=0.001,0.01;betas=0.9:0.99]', "
            "'loss:huber[delta=0.5]'; repeated options add up. Kinds not named take the "
            "notebook's defaults (sgd, l1, default init).",
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Full-batch epochs per run.")] = 500,
    lr: Annotated[
        str | None, typer.Option(help="Learning rate(s) for every optimizer, e.g. 0.01,0.1.")
    ] = None,
    seeds: Annotated[int, typer.Option(help="Run seeds 0..N-1 for each configuration.")] = 1,
    data_seed: Annotated[int, typer.Option(help="Seed of the data (same for all runs).")] = 0,
    data_seeds: Annotated[
        int | None,
        typer.Option(help="Run every configuration on data seeds 0..N-1 (instead of --data-seed)."),
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto (cpu + every accelerator), or a list: cpu,cuda,cuda:1,mps.")
    ] = "auto",
    n_samples: NSamples = 1000,
    w_true: WTrue = 2.0,
    b_true: BTrue = 3.0,
    noise_std: NoiseStd = 1.0,
    x_low: XLow = -10.0,
    x_high: XHigh = 10.0,
    dim: Dim = 1,
    condition: Condition = 0.0,
    noise: Noise = "normal",
    outliers: Outliers = 0.0,
    out: Annotated[Path, typer.Option(help="Parent folder of this invocation's results.")] = Path(
        "results"
    ),
    plot: Annotated[
        bool, typer.Option(help="Write convergence.png (and profiles.png over several workloads).")
    ] = True,
    report: Annotated[
        bool, typer.Option(help="Write report.html, a self-contained page for a browser.")
    ] = True,
    engine: Annotated[
        str,
        typer.Option(help="auto (batch what is declared batchable), batched or sequential."),
    ] = "auto",
    compile: Annotated[
        bool, typer.Option("--compile", help="torch.compile the batched step (slow to start).")
    ] = False,
    max_batch: Annotated[
        int | None, typer.Option(help="Most runs in one batch (default: from free memory).")
    ] = None,
    target: Annotated[
        float,
        typer.Option(help="Relative gap to the optimum a run must reach and keep to be solved."),
    ] = 1e-4,
    diverge_factor: Annotated[
        float, typer.Option(help="A run diverges when its loss exceeds this times its start.")
    ] = 1e4,
    threads: Annotated[
        int | None,
        typer.Option(help="torch intra-op threads (default 1: measured fastest for sweeps)."),
    ] = None,
    history: Annotated[
        str,
        typer.Option(
            help="Epochs kept in history.parquet: full, every:K (plus first and last) or none."
        ),
    ] = "full",
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Complete this results folder of the same sweep: compute only the "
            "runs not saved there.",
            metavar="DIR",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --resume: accept changed plugin versions.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            help="One-thread worker processes of a local Dask cluster (default: "
            "the usable cores, when the sweep is long enough to pay them back)."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Send batches to this Dask scheduler, e.g. tcp://host:8786 "
            "(default: $GDBENCH_SCHEDULER).",
            metavar="ADDRESS",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="Take options from the [run] table of this TOML file (e.g. a results "
            "folder's sweep.toml); options on the command line win.",
            metavar="FILE",
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="Print the summary as a table (for a person), or as csv, json or markdown "
            "on stdout alone (for other tools; notes go to stderr).",
            metavar="FORMAT",
        ),
    ] = "table",
) -> None:
    """Run every combination of the selected components and compare them."""
    args = {k: v for k, v in locals().items() if k not in ("ctx", "config", "fmt")}
    try:
        _check_format(fmt)
        if config is not None:
            args = _with_config(ctx, args, config)
        _run_and_report(_options(args), fmt)
    except UsageError as exc:
        raise fail(exc) from None


def _with_config(ctx: typer.Context, args: dict[str, Any], path: Path) -> dict[str, Any]:
    """``args`` with every option the command line left at its default taken from the
    file (lists in the file become the command line's comma lists where needed)."""
    from .config import load_config

    merged = dict(args)
    for key, value in load_config(path).items():
        source = ctx.get_parameter_source(key)  # typer may bundle its own click: by name
        if source is None or source.name == "DEFAULT":
            merged[key] = value
    return merged


def _options(args: dict[str, Any]) -> SweepOptions:
    from .options import SweepOptions
    from .task import TASK_FIELDS, Task

    task = Task(**{name: args[name] for name, _ in TASK_FIELDS})
    plugins, lr = args["plugins"], args["lr"]
    if isinstance(lr, str) or lr is None:
        lr = parse_floats(lr, "lr")
    other = {k: v for k, v in args.items() if k not in {*dict(TASK_FIELDS), "plugins", "lr"}}
    return SweepOptions.from_arguments(plugins or "sgd", lr=lr, task=task, **other)


def _check_format(fmt: str) -> None:
    from .report import FORMATS

    if fmt not in FORMATS:
        raise UsageError(f"takes {', '.join(FORMATS)}, got {fmt!r}", param="format")


def _run_and_report(options: SweepOptions, fmt: str = "table") -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from .runner import run_sweep

    err = Console(stderr=True)
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    job = bar.add_task("runs", total=None)

    def on_plan(n_runs: int) -> None:
        """Show the bar once the input is valid, and only to a person at a terminal."""
        bar.update(job, total=n_runs)
        if err.is_terminal:
            bar.start()

    try:
        results = run_sweep(
            options,
            _plugin_set(),
            on_plan=on_plan,
            progress=lambda done, total: bar.update(job, completed=done),
            argv=["gdbench", *sys.argv[1:]],
            notify=lambda note: typer.echo(f"gdbench: {note}", err=True),
        )
    except OSError as exc:  # the results folder went away, filled up or turned read-only
        _stop(bar)
        what = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        typer.echo(f"gdbench: error: cannot write results ({' '.join(what.split())}); "
                   "every batch saved before is kept", err=True)  # fmt: skip
        raise typer.Exit(1) from None
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, saved batches kept
        _stop(bar)
        typer.echo("gdbench: interrupted twice; every batch saved before is kept", err=True)
        raise typer.Exit(130) from None
    finally:
        _stop(bar)
    _print_results(results, fmt)
    if results.interrupted:
        typer.echo(f"gdbench: {interruption(results)}", err=True)
        raise typer.Exit(SIGNAL_EXIT.get(results.interrupted, 130))
    _exit_on_failures(results)


def _exit_on_failures(results: Results) -> None:
    """Print the first error of each failing configuration; exit status 1 if any run
    ended in ``error`` (everything is written by now). Divergence is a result: 0."""
    from .failures import failures

    found = failures(results.runs)
    for failure in found:
        typer.echo(f"gdbench: error: {failure.line()}", err=True)
    if found:
        raise typer.Exit(1)


SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}
"""Exit statuses of a sweep stopped by a signal, as shells report them (128 + signal)."""


def interruption(results: Results) -> str:
    """What a stop saved: finished, interrupted and never-started runs, and where."""
    statuses = results.runs["status"]
    stopped = int((statuses == "interrupted").sum())
    finished = len(statuses) - stopped
    not_started = max(0, (results.planned or 0) - len(statuses))
    where = f"; resume with --resume {results.out_dir}" if results.out_dir else ""
    return (
        f"{results.interrupted}: stopped; {finished} runs finished, {stopped} interrupted "
        f"(saved with status interrupted), {not_started} not started{where}"
    )


def _stop(bar: Progress) -> None:
    """Stop the progress bar if it ever started (stopping an unstarted one prints a newline)."""
    if bar.live.is_started:
        bar.stop()


def _print_results(results: Results, fmt: str = "table") -> None:
    from rich.console import Console

    from .report import format_summary, render_summary
    from .tuning import untuned_title

    console = _stdout_console()
    title = untuned_title(results.runs)  # "gdbench run · lr fixed at 0.01 for all"
    if fmt == "table":
        console.print(render_summary(results.summary(), title, width=console.width))
    else:  # for other tools: stdout holds the summary alone, the rest goes to stderr
        typer.echo(format_summary(results.summary(), fmt, title=title), nl=False)
        console = Console(stderr=True)
    for note in sorted(set(results.runs["engine_note"]) - {""}):
        console.print(f"note: {note}")
    if results.out_dir is not None:
        console.print(f"results: {results.out_dir}")


def _stdout_console() -> Console:
    """A console for tables; unwrapped (wide) when stdout is a file or a pipe."""
    import os

    from rich.console import Console

    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=160 if wide else None)


@app.command("resume")
def resume_command(
    folder: Annotated[Path, typer.Argument(help="A results folder of an unfinished sweep.")],
    force: Annotated[
        bool, typer.Option("--force", help="Accept changed plugin versions (their runs rerun).")
    ] = False,
) -> None:
    """Finish a sweep from its results folder: its sweep.toml says what the sweep was,
    and only the runs not saved there are computed."""
    try:
        from .config import FILE, load_config

        if not (folder / FILE).is_file():
            raise UsageError(f"{str(folder)!r} holds no {FILE}; is it a results folder?",
                             param="folder")  # fmt: skip
        args = {**_defaults(), **load_config(folder / FILE), "resume": folder, "force": force}
        _run_and_report(_options(args))
    except UsageError as exc:
        raise fail(exc) from None


def _defaults() -> dict[str, Any]:
    """Every option of ``gdbench run`` at its default, by Python name."""
    import inspect

    skip = {"ctx", "config", "fmt"}
    return {
        name: p.default for name, p in inspect.signature(run).parameters.items() if name not in skip
    }


@app.command("tune")
def tune_command(
    plugins: Annotated[
        list[str] | None,
        typer.Option(
            "--plugins",
            "-p",
            metavar="COMPONENTS",
            help="As for run; an optimizer's lr is tuned over --lr-range unless given, any "
            "hyper-parameter over a range written log:LO:HI or lin:LO:HI "
            "('adam[lr=log:1e-3:1;betas=0.9:0.999]') or over a list of values.",
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="deepobs (36-point log grid of lr over 1e-5..1e2, best re-run on 10 "
            "held-out data seeds) or algoperf (3 studies x 5 quasi-random trials); "
            "options given win.",
        ),
    ] = None,
    lr_range: Annotated[
        str | None,
        typer.Option(help="Default lr search range LO:HI (log scale) or lin:LO:HI [1e-4:10]."),
    ] = None,
    search: Annotated[
        str | None, typer.Option(help="grid, quasirandom (scrambled Halton) or random [grid].")
    ] = None,
    trials: Annotated[
        int | None, typer.Option(help="Trial budget per optimizer and study [16].")
    ] = None,
    studies: Annotated[int | None, typer.Option(help="Independent studies [1].")] = None,
    tune_data_seeds: Annotated[
        str | None,
        typer.Option(help="Data seeds to choose on: a count N (0..N-1), A-B or A,B,C [0]."),
    ] = None,
    eval_data_seeds: Annotated[
        str | None,
        typer.Option(
            help="Held-out data seeds: a count N (the N seeds after the tuning ones), "
            "A-B or A,B,C [10]."
        ),
    ] = None,
    criterion: Annotated[
        str | None,
        typer.Option(help="Choose by epochs or seconds to target, or by final gap [epochs]."),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Full-batch epochs per run.")] = 500,
    seeds: Annotated[int, typer.Option(help="Run seeds 0..N-1 per trial and held-out run.")] = 1,
    device: Annotated[str, typer.Option(help="auto, or a list: cpu,cuda,cuda:1,mps.")] = "auto",
    n_samples: NSamples = 1000,
    w_true: WTrue = 2.0,
    b_true: BTrue = 3.0,
    noise_std: NoiseStd = 1.0,
    x_low: XLow = -10.0,
    x_high: XHigh = 10.0,
    dim: Dim = 1,
    condition: Condition = 0.0,
    noise: Noise = "normal",
    outliers: Outliers = 0.0,
    out: Annotated[Path, typer.Option(help="Parent folder of this invocation's results.")] = Path(
        "results"
    ),
    plot: Annotated[
        bool, typer.Option(help="Write sensitivity.png and convergence.png (held-out runs).")
    ] = True,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
    engine: Annotated[str, typer.Option(help="auto, batched or sequential.")] = "auto",
    compile: Annotated[
        bool, typer.Option("--compile", help="torch.compile the batched step.")
    ] = False,
    max_batch: Annotated[int | None, typer.Option(help="Most runs in one batch.")] = None,
    target: Annotated[
        float, typer.Option(help="Relative gap to the optimum a run must reach and keep.")
    ] = 1e-4,
    diverge_factor: Annotated[
        float, typer.Option(help="A run diverges when its loss exceeds this times its start.")
    ] = 1e4,
    threads: Annotated[int | None, typer.Option(help="torch intra-op threads.")] = None,
    history: Annotated[str, typer.Option(help="full, every:K or none.")] = "full",
    workers: Annotated[int | None, typer.Option(help="Local Dask worker processes.")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="A Dask scheduler's address.", metavar="ADDRESS")
    ] = None,
) -> None:
    """Tune each optimizer on some data seeds, re-run its best configuration on held-out
    ones, and compare the tuned optimizers (tuned.parquet, sensitivity.png)."""
    args = dict(locals())
    from .tuning import tune_and_print

    try:
        tune_and_print(args, _plugin_set(), argv=["gdbench", *sys.argv[1:]],
                       console=_stdout_console())  # fmt: skip
    except UsageError as exc:
        raise fail(exc) from None


@app.command("report")
def report_command(
    folder: Annotated[Path, typer.Argument(help="A results folder (of run or tune).")],
) -> None:
    """Write FOLDER/report.html: one self-contained page (no network needed) with the
    invocation, sortable summary tables, convergence curves, failures, tuning and
    performance profiles; open it in any browser."""
    try:
        if not (folder / "runs.parquet").is_file() and not (folder / "parts").is_dir():
            raise UsageError(f"{str(folder)!r} holds no runs.parquet; is it a results folder?")
        from .html_report import write_report

        path = write_report(folder)
    except UsageError as exc:
        raise fail(exc) from None
    typer.echo(f"report: {path}")


@app.command("plugins")
def plugins_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Also import every lazy target (factories, solvers)."),
    ] = False,
) -> None:
    """List every plugin, where it came from, what it registered, and any that failed.

    Exit status 1 when a plugin failed to load, or (with --check) a target cannot be
    imported."""
    from .lazy import target_error
    from .plugins_report import plugins_json, plugins_table

    plugin_set = _plugin_set()
    problems = [f"failed to load plugin {i.name} ({i.dist or '?'}): {i.error}"
                for i in plugin_set.failures]  # fmt: skip
    if check:
        problems += [p for c in plugin_set.registry.components() if (p := target_error(c))]
    if as_json:
        typer.echo(plugins_json(plugin_set, problems if check else None))
    else:
        _stdout_console().print(plugins_table(plugin_set))
    for problem in problems:
        typer.echo(f"gdbench: error: {problem}", err=True)
    if problems:
        raise typer.Exit(1)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def bench(
    ctx: typer.Context,
    plugins: Annotated[
        list[str] | None,
        typer.Option(
            "--plugins", "-p", metavar="COMPONENTS", help="Components to time (as for run)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, or a list such as cpu,cuda.")] = "auto",
    runs: Annotated[
        str, typer.Option(help="Batch sizes R: 1 is one run, more stack runs (batched).")
    ] = "1",
    epochs: Annotated[int, typer.Option(help="Epochs of the full-run benchmark.")] = 500,
    n_samples: Annotated[int, typer.Option(help="Number of samples.")] = 1000,
    out: Annotated[Path, typer.Option(help="Parent folder of this invocation's results.")] = Path(
        "results"
    ),
) -> None:
    """Time one step and one full run per combination with pytest-benchmark.

    Any other option goes to pytest unchanged: --benchmark-compare, --benchmark-autosave,
    --benchmark-histogram, --benchmark-sort, --benchmark-group-by, ...
    """
    try:
        from .bench.command import check, run_bench
        from .bench.config import BenchConfig
        from .store import make_out_dir

        sizes = [_batch_size(r, runs) for r in parse_floats(runs, "runs")]
        config = BenchConfig(
            ",".join(plugins or ["sgd,adam"]), device, tuple(sizes), epochs, n_samples
        )
        check(config, list(ctx.args))
        out_dir = make_out_dir(out)
    except UsageError as exc:
        raise fail(exc) from None
    code = run_bench(config, out_dir, list(ctx.args))
    if out_dir.exists():
        typer.echo(f"results: {out_dir}")
    raise typer.Exit(code)


def _batch_size(value: float, text: str) -> int:
    """A batch size: a whole number of runs, at least 1 (``1.5`` is not one)."""
    if not (value >= 1 and value < 2**31 and value == int(value)):
        raise UsageError(f"must list whole batch sizes, e.g. 1,100; got {text!r}", param="runs")
    return int(value)


def _show_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"gdbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
    disable_plugin: Annotated[
        list[str] | None,
        typer.Option(
            "--disable-plugin",
            metavar="NAME",
            help="Do not load this plugin (plugin or package name; repeatable). "
            "GDBENCH_DISABLE_PLUGINS=a,b does the same; GDBENCH_PLUGINS=a,b loads only "
            "those third-party plugins.",
        ),
    ] = None,
    raise_plugin_errors: Annotated[
        bool,
        typer.Option(
            "--raise-plugin-errors",
            help="Let a plugin's exception (in a hook or a run) propagate with its traceback, "
            "for debugging; GDBENCH_RAISE_PLUGIN_ERRORS=1 does the same.",
        ),
    ] = False,
) -> None:
    """A plugin-based gradient-descent testbed."""
    import os

    if disable_plugin:  # through the environment, so that subprocesses (bench) honour it too
        from .plugins import DISABLE_ENV

        os.environ[DISABLE_ENV] = ",".join([os.environ.get(DISABLE_ENV, ""), *disable_plugin])
    if raise_plugin_errors:
        from .errors import RAISE_ENV

        os.environ[RAISE_ENV] = "1"


def main() -> None:
    """Console-script entry point: click's own usage errors (``--epochs abc``, an unknown
    option, a missing argument) become the same one line as gdbench's, exit status 2."""
    try:  # typer bundles its own click in recent versions
        from typer._click import exceptions as click_errors
    except ImportError:  # pragma: no cover - older typer with the click package
        from click import exceptions as click_errors  # type: ignore[no-redef]

    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="gdbench", standalone_mode=False)
    except click_errors.UsageError as exc:
        where = f"; see '{exc.ctx.command_path} --help'" if exc.ctx is not None else ""
        message = " ".join(exc.format_message().split()).rstrip(".")
        typer.echo(f"gdbench: error: {message}{where}", err=True)
        sys.exit(USAGE_EXIT)
    sys.exit(code if isinstance(code, int) else 0)
