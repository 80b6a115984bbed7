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
    """``0.01,0.1`` → [0.01, 0.1]; errors name ``param`` (rendered as its flag)."""
    if not text:
        return []
    values = []
    for part in text.split(","):
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
    n_samples: Annotated[int, typer.Option(help="Number of samples.")] = 1000,
    w_true: Annotated[float, typer.Option(help="True slope.")] = 2.0,
    b_true: Annotated[float, typer.Option(help="True intercept.")] = 3.0,
    noise_std: Annotated[float, typer.Option(help="Standard deviation of the noise.")] = 1.0,
    x_low: Annotated[float, typer.Option(help="Lower end of x ~ U(x_low, x_high).")] = -10.0,
    x_high: Annotated[float, typer.Option(help="Upper end of x.")] = 10.0,
    dim: Annotated[int, typer.Option(help="Number of features (each with weight --w-true).")] = 1,
    condition: Annotated[
        float,
        typer.Option(help="Scale features so E[x xᵀ] has this condition number (0: unscaled)."),
    ] = 0.0,
    noise: Annotated[
        str, typer.Option(help="Noise distribution: normal, laplace or student-t.")
    ] = "normal",
    outliers: Annotated[
        float, typer.Option(help="Fraction of samples whose noise is 10 times larger.")
    ] = 0.0,
    out: Annotated[Path, typer.Option(help="Parent folder of this invocation's results.")] = Path(
        "results"
    ),
    plot: Annotated[bool, typer.Option(help="Write convergence.png.")] = True,
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
) -> None:
    """Run every combination of the selected components and compare them."""
    args = {k: v for k, v in locals().items() if k not in ("ctx", "config")}
    try:
        if config is not None:
            args = _with_config(ctx, args, config)
        _run_and_report(_options(args))
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


def _run_and_report(options: SweepOptions) -> None:
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
    _print_results(results)
    if results.interrupted:
        typer.echo(f"gdbench: {interruption(results)}", err=True)
        raise typer.Exit(SIGNAL_EXIT.get(results.interrupted, 130))


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


def _print_results(results: Results) -> None:
    from .report import render_summary

    console = _stdout_console()
    console.print(render_summary(results.summary(), title="gdbench run"))
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

    skip = {"ctx", "config"}
    return {
        name: p.default for name, p in inspect.signature(run).parameters.items() if name not in skip
    }


@app.command("plugins")
def plugins_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every plugin, where it came from, what it registered, and any that failed."""
    from .plugins_report import plugins_json, plugins_table

    plugin_set = _plugin_set()
    if as_json:
        typer.echo(plugins_json(plugin_set))
        return
    _stdout_console().print(plugins_table(plugin_set))
    for info in plugin_set.failures:
        typer.echo(
            f"failed to load plugin {info.name} ({info.dist or '?'}): {info.error}", err=True
        )


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

        sizes = [int(r) for r in parse_floats(runs, "runs")]
        config = BenchConfig(
            ",".join(plugins or ["sgd,adam"]), device, tuple(sizes), epochs, n_samples
        )
        check(config, list(ctx.args))
        out_dir = make_out_dir(out)
    except UsageError as exc:
        raise fail(exc) from None
    code = run_bench(config, out_dir, list(ctx.args))
    typer.echo(f"results: {out_dir}")
    raise typer.Exit(code)


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
) -> None:
    """A plugin-based gradient-descent testbed."""
    if disable_plugin:  # through the environment, so that subprocesses (bench) honour it too
        import os

        from .plugins import DISABLE_ENV

        os.environ[DISABLE_ENV] = ",".join([os.environ.get(DISABLE_ENV, ""), *disable_plugin])


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
