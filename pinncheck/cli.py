"""The ``pinncheck`` command: options in, tables/JSON and exit codes out.

The work happens in the library (``pinncheck.check`` and friends). This module only maps
options to that API and results to output. It imports torch and sympy lazily, inside the
commands, so that ``pinncheck --help`` and ``--version`` stay instant.
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextlib import suppress as suppress_errors
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperArgument, TyperCommand

from ._errors import ExitCode, OptionError, PinncheckError, UserCodeError
from ._output import (
    CLOSED_PIPE_EXIT,
    DEFAULT_DUMP_LIMIT,
    UNBOUNDED_WIDTH,
    UNWRITABLE_EXIT,
    StdoutClosed,
    StdoutUnwritable,
    emit_json,
    prepare_streams,
    print_table,
    section,
    silence_stdout,
    stderr_console,
    stdout_console,
)
from ._text import printable, printable_lines
from ._version import SCHEMA_VERSION, __version__

if TYPE_CHECKING:
    from rich.console import Console


class _Argument(TyperArgument):
    """An argument shown by its name alone (``EXPR``, ``FILES...``), with no type tag."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _Command(TyperCommand):
    """Usage lines as other command-line tools write them: ``[OPTIONS] EXPR``,
    ``[OPTIONS] FILES...``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for p in self.params:
            if isinstance(p, TyperArgument):
                p.__class__ = _Argument

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if isinstance(p, TyperArgument):
                name = p.display_name_raw.upper()
                pieces.append(name if p.required else f"[{name}]")
        return pieces


app = typer.Typer(
    name="pinncheck",
    help="Check autograd partial derivatives and PDE residuals against SymPy's exact ones.\n\n"
    "Exit codes: 0 everything passed; 1 a check failed or was undefined; 2 bad input or usage; "
    "3 internal error.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    # Plain help and usage errors: typer's rich formatting imports rich.markdown and
    # markdown_it, ~0.12 s of every `pinncheck --help` and usage error.
    rich_markup_mode=None,
)


class Format(str, Enum):
    table = "table"
    json = "json"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pinncheck {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """pinncheck: is your derivative code right?"""
    prepare_streams()


# Option values, read and refused in pinncheck's own words -----------------------------------
def _whole_number(value: Any) -> int:
    """An integer option: ``1000``, ``1e6`` or ``1_000_000`` (a whole number in any of the
    ways Python writes one)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if math.isfinite(x) and x == int(x):
        return int(x)
    raise typer.BadParameter(
        f"'{printable(text)}' is not a whole number; write it as 1000, 1e6 or 1_000_000."
    )


def _number(value: Any) -> float:
    """A real-number option: ``1e-6``, ``0.5``, ``2``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(
            f"'{printable(text)}' is not a number; write it as 0.5, 1e-6 or 10."
        ) from None


def _format(value: Any) -> Format:
    if isinstance(value, Format):
        return value
    text = str(value).strip().lower()
    try:
        return Format(text)
    except ValueError:
        raise typer.BadParameter(
            f"unknown format '{printable(value)}'; use "
            + " or ".join(f.value for f in Format)
            + "."
        ) from None


# Options shared by the commands -------------------------------------------------------------
DomainOpt = Annotated[
    list[str],
    typer.Option(
        "--domain",
        "-d",
        metavar="NAME=LO:HI",
        help="Sampling interval of a variable; repeat, or separate with commas. "
        "Bounds may be constant expressions (-pi:pi).",
    ),
]


def _points_option(help: str) -> Any:
    return typer.Option("--points", "-n", metavar="N", parser=_whole_number, help=help)


PointsOpt = Annotated[int, _points_option("Number of random points (1000, 1e6 or 1_000_000).")]
SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed",
        metavar="INTEGER",
        parser=_whole_number,
        help="Sampling seed (printed and recorded).",
    ),
]
DeviceOpt = Annotated[
    str, typer.Option("--device", metavar="DEVICE", help="cpu, cuda, cuda:N or auto.")
]
DtypeOpt = Annotated[
    str, typer.Option("--dtype", metavar="DTYPE", help="float64 or float32 (autograd side).")
]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        metavar="INEQUALITY",
        help="Keep only the part of the box where this holds (x**2 + y**2 <= 1); repeat, all "
        "must hold. Points are drawn by rejection.",
    ),
]
RtolOpt = Annotated[
    float | None,
    typer.Option(
        "--rtol",
        metavar="NUMBER",
        parser=_number,
        help="Relative tolerance (overrides the table).",
    ),
]
AtolOpt = Annotated[
    float | None,
    typer.Option(
        "--atol",
        metavar="NUMBER",
        parser=_number,
        help="Absolute tolerance (overrides the scale-aware default).",
    ),
]
ChunkOpt = Annotated[
    int | None,
    typer.Option(
        "--chunk-size",
        metavar="N",
        parser=_whole_number,
        help="Points per chunk (bounds memory; results do not depend on it).",
    ),
]
PdeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--pde",
        metavar="TEXT",
        help="A PDE; 'LHS = RHS' means LHS - RHS. Derivatives: u_t, u_xx (single-letter "
        "variables), diff(u, x, 2), diff(u**2/2, x), laplacian(u). Repeat for systems.",
    ),
]
PdeFromOpt = Annotated[
    str | None,
    typer.Option(
        "--pde-from",
        metavar="TARGET",
        help="Instead of --pde: file.py:NAME holding the PDE as SymPy objects (an expression, a "
        "list or dict of them, or an object with an .equations dict). Runs your code.",
    ),
]
PdeArgOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--pde-arg",
        metavar="KEY=VALUE",
        help="Keyword argument for a --pde-from class or function; repeat.",
    ),
]
SpaceOpt = Annotated[
    str | None,
    typer.Option(
        "--space",
        metavar="X,Y",
        help="The variables laplacian() sums over (default: all but t and time).",
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="NAME=VALUE",
        help="A constant; may use earlier ones (lam=10-sqrt(100+4*pi**2)).",
    ),
]
FormatOpt = Annotated[
    Format,
    typer.Option(
        "--format", "-f", metavar="FORMAT", parser=_format, help="table (default) or json."
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]
# --dump-points: the points as data (pinncheck/_dump.py, docs/dump.md).
DumpPointsOpt = Annotated[
    str | None,
    typer.Option(
        "--dump-points",
        metavar="PATH",
        help="Also write the points as data, CSV or NumPy .npz by the suffix: each point's "
        "coordinates, values, exact values, errors and tolerances, failing points first, then "
        "a uniform sample (docs/dump.md).",
    ),
]
DumpLimitOpt = Annotated[
    int,
    typer.Option(
        "--dump-limit",
        metavar="N",
        parser=_whole_number,
        help="At most N rows in the --dump-points file (1e5, 100_000).",
    ),
]


def _point_dump(path: str | None, limit: int, seed: int) -> list[Any]:
    """The --dump-points sink, its path and limit checked before any work (none without it)."""
    from ._dump import PointDump, check_limit

    check_limit(limit)
    return [] if path is None else [PointDump(path, limit, seed)]


def _write_dump(sinks: list[Any], report: Any) -> None:
    from rich.text import Text

    for dump in sinks:
        _stderr().print(Text(printable(dump.finish(report).describe()), style="dim"))


PlotOpt = Annotated[
    str | None,
    typer.Option(
        "--plot",
        metavar="PATH",
        help="Also draw where the error lives into PATH: .png, .svg or .pdf (needs matplotlib: "
        'pip install "pinncheck[plot]"). See docs/pictures.md.',
    ),
]
# The default of --timeout; equal to pinncheck._workers.DEFAULT_TIMEOUT (a test checks it),
# written out here so that --help does not import the worker machinery.
DEFAULT_TIMEOUT = 600.0
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Stop the user's code after this many seconds (an error, exit 2); 0 for no limit.",
    ),
]


def _stdout() -> Console:
    return stdout_console()


def _stderr() -> Console:
    return stderr_console()


def _emit_json(doc: Any) -> None:
    emit_json(doc)


OUT_OF_MEMORY = (
    "out of memory. Use a smaller --chunk-size (points evaluated at once), fewer points (-n), "
    "a lower --order or fewer variables."
)


def _out_of_memory(exc: BaseException) -> bool:
    """MemoryError, or torch's allocation failures (RuntimeError subclasses) on CPU and GPU."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc) if isinstance(exc, RuntimeError) else ""
    return "can't allocate memory" in text or "out of memory" in text.lower()


def _error_document(kind: str, message: str, code: int) -> dict[str, Any]:
    """The JSON document of a command that ended in an error (``status: "error"``)."""
    return {
        "pinncheck": __version__,
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "status": "error",
        "error": message,
        "exit_code": code,
    }


def _memory_exit(kind: str, fmt: Format) -> NoReturn:
    """Exit 2 with advice; plain writes only (no rich, no imports) since memory is short."""
    try:
        sys.stderr.write(f"error: {OUT_OF_MEMORY}\n")
        sys.stderr.flush()
        if fmt is Format.json:
            _emit_json(_error_document(kind, OUT_OF_MEMORY, int(ExitCode.USAGE)))
    except Exception:  # nothing more can be said; the exit code still is
        pass
    raise typer.Exit(int(ExitCode.USAGE)) from None


@contextmanager
def _errors(kind: str, fmt: Format, debug: bool) -> Iterator[None]:
    """Turn pinncheck's exceptions, and a stdout that cannot take the output, into one
    message and a documented exit code."""
    from rich.text import Text

    try:
        with _reported(kind, fmt, debug):
            yield
    except StdoutClosed:
        # The reader went away (``| head``): nothing to say, and no one to say it to.
        silence_stdout()
        raise typer.Exit(CLOSED_PIPE_EXIT) from None
    except StdoutUnwritable as exc:
        silence_stdout()
        _stderr().print(Text(f"error: cannot write to standard output: {exc}", style="bold red"))
        raise typer.Exit(UNWRITABLE_EXIT) from None


@contextmanager
def _reported(kind: str, fmt: Format, debug: bool) -> Iterator[None]:
    # Imported before the work starts: the handlers must not need memory or imports.
    from rich.console import Console  # noqa: F401
    from rich.text import Text

    try:
        yield
    except (typer.Exit, typer.Abort, StdoutClosed, StdoutUnwritable):
        raise
    except MemoryError:
        _memory_exit(kind, fmt)
    except PinncheckError as exc:
        err = _stderr()
        if isinstance(exc, UserCodeError) and exc.details:
            err.print(Text(printable_lines(exc.details.rstrip())))
        err.print(Text(f"error: {printable_lines(exc)}", style="bold red"))
        if fmt is Format.json:
            _emit_json(_error_document(kind, str(exc), int(exc.exit_code)))
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        _stderr().print(Text("interrupted", style="bold red"))
        raise typer.Exit(130) from None
    except Exception as exc:
        if _out_of_memory(exc):
            _memory_exit(kind, fmt)
        err = _stderr()
        if debug:
            err.print(Text(printable_lines(traceback.format_exc().rstrip())))
        err.print(
            Text(
                f"internal error: {type(exc).__name__}: {printable_lines(exc)}. This is a bug "
                "in pinncheck; rerun with --debug for the traceback and report it.",
                style="bold red",
            )
        )
        if fmt is Format.json:
            _emit_json(
                _error_document(
                    kind, f"internal error: {type(exc).__name__}: {exc}", int(ExitCode.INTERNAL)
                )
            )
        raise typer.Exit(int(ExitCode.INTERNAL)) from None


class _LazyProgress:
    """A progress bar that appears only on a terminal, and only for runs longer than ~1 s."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.label = label
        self.t0 = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if done >= total or time.perf_counter() - self.t0 < 1.0:
                return
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn(self.label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("points"),
                _rate_column(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=_stderr(),
                transient=True,
            )
            self.task = self.bar.add_task(self.label, total=total, completed=done)
            self.bar.start()
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _rate_column() -> Any:
    """A progress column: points per second."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            if not speed:
                return Text("")
            for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")):
                if speed >= scale:
                    return Text(f"{speed / scale:.1f}{unit} points/s", style="progress.data.speed")
            return Text(f"{speed:.2f} points/s", style="progress.data.speed")

    return Rate()


@contextmanager
def _progress(fmt: Format, label: str) -> Iterator[Callable[[int, int], None]]:
    """A command's run over points: progress on a terminal, memory kept between chunks."""
    from ._engine import tune_allocator

    tune_allocator()
    enabled = fmt is Format.table and sys.stderr.isatty() and not os.environ.get("CI")
    bar = _LazyProgress(enabled, label)
    try:
        yield bar
    finally:
        bar.close()


def _plot_request(path: str | None, streams: bool = True) -> Any:
    """``--plot PATH``, refused before the run when it cannot be honoured (pinncheck._plot)."""
    from ._plot import PlotRequest

    return PlotRequest(path, streams=streams)


def _save_plot(plot: Any, report: Any) -> None:
    from rich.text import Text

    written = plot.save(report)
    if written is not None:
        _stderr().print(Text(f"plot: {printable(str(written))}", style="dim"))


class _Extras:
    """What ``check``, ``residual`` and ``verify`` make besides their report: the --dump-points
    file, the --plot picture and the terminal failure map. Paths are checked on creation, before
    any work; :meth:`run` runs a job with their sinks, :meth:`write` writes the files."""

    def __init__(
        self,
        fmt: Format,
        dump_points: str | None,
        dump_limit: int,
        seed: int,
        plot: str | None,
    ) -> None:
        self.table = fmt is Format.table
        self.dumps = _point_dump(dump_points, dump_limit, seed)
        self.plot = _plot_request(plot)

    def run(self, job: Any, progress: Any, command: str, subject: str) -> Any:
        from ._pointwise import must_solve
        from ._termmap import run_with_maps

        for dump in self.dumps:  # (made before the job, to check its path before any work)
            dump.solves = must_solve(command, job)
        return run_with_maps(
            job, progress, self.table, command, subject, self.plot, extra=self.dumps
        )

    def write(self, report: Any) -> None:
        _write_dump(self.dumps, report)
        _save_plot(self.plot, report)


def _finish(status: str) -> NoReturn:
    """Exit 0 on pass, 2 when something could not run (``error``), else 1."""
    codes = {"pass": ExitCode.OK, "error": ExitCode.USAGE}
    raise typer.Exit(int(codes.get(status, ExitCode.FAILED)))


Warn = Callable[[list[str]], None]


# Notes about loading the user's code, printed as soon as they are known (before an import
# that may take long) and not again among the report's warnings.
_NOTICED: set[str] = set()


def _notice_to_stderr() -> None:
    from rich.text import Text

    from . import _usercode

    def notice(text: str) -> None:
        _NOTICED.add(text)
        _stderr().print(Text(f"note: {text}", style="yellow"))

    _usercode.NOTICE = notice


def _warn(warnings: list[str]) -> None:
    from rich.text import Text

    err = _stderr()
    for w in warnings:
        if w not in _NOTICED:
            err.print(Text(f"warning: {printable(w)}", style="yellow"))


@app.command(cls=_Command)
def check(
    expr: Annotated[
        str,
        typer.Argument(metavar="EXPR", help="Expression in SymPy syntax, e.g. 'x1**2*sin(x2)'."),
    ],
    domain: DomainOpt,
    points: PointsOpt = 1000,
    order: Annotated[
        int,
        typer.Option(
            "--order",
            metavar="K",
            parser=_whole_number,
            help="Check all partials up to this order.",
        ),
    ] = 2,
    seed: SeedOpt = 20240917,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float64",
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    chunk_size: ChunkOpt = None,
    where: WhereOpt = None,
    dump_points: DumpPointsOpt = None,
    dump_limit: DumpLimitOpt = DEFAULT_DUMP_LIMIT,
    plot: PlotOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Compare autograd's partial derivatives of EXPR with SymPy's, at random points."""
    with _errors("check", fmt, debug):
        from ._domain import parse_domain
        from ._parse import parse_expression

        # Refuse bad input before paying for the torch import (about 2 s).
        parse_expression(expr, shadowed=parse_domain(domain, shadow=True).names)
        extras = _Extras(fmt, dump_points, dump_limit, seed, plot)
        from ._check import prepare_check

        with _progress(fmt, "check") as progress:
            job = prepare_check(
                expr,
                domain,
                n=points,
                order=order,
                device=device,
                dtype=dtype,
                seed=seed,
                rtol=rtol,
                atol=atol,
                chunk_size=chunk_size,
                where=where,
            )
            report = extras.run(job, progress, "check", expr)
        extras.write(report)
        _output(fmt, report)
    _finish(report.status)


def _print_check(out: Console, report: Any, warn: Warn = _warn) -> None:
    from ._render import describe_failures, header, quantity_table, summary_line

    o = report.options
    header(
        out,
        f"pinncheck check  {report.expression}",
        {
            "domain": str(report.domain),
            "n": o.n,
            "seed": o.seed,
            "device": str(o.device),
            "dtype": o.dtype_name,
            "order": report.order,
        },
    )
    print_table(out, quantity_table("", [(d.name, d.exact, d) for d in report.derivatives]))
    _print_maps(out, report)
    warn(report.warnings)
    summary_line(out, report.status, describe_failures(report.derivatives))


def _print_residual(out: Console, report: Any, warn: Warn = _warn) -> None:
    from rich.text import Text

    from ._render import equation_table, header, quantity_table, residual_summary

    o = report.options
    sysm = report.system
    header(
        out,
        "pinncheck residual  " + "; ".join(sysm.equations),
        {
            "solution": "; ".join(f"{k}={v}" for k, v in sysm.solution_texts.items()),
            **(
                {"params": ", ".join(f"{k}={v}" for k, v in sysm.param_texts.items())}
                if sysm.params
                else {}
            ),
            "domain": str(sysm.domain),
            "n": o.n,
            "seed": o.seed,
            "device": str(o.device),
            "dtype": o.dtype_name,
        },
    )
    print_table(
        out,
        quantity_table("derivative terms", [(d.name, d.exact, d) for d in report.derivatives]),
    )
    print_table(out, equation_table(report.equations))
    _print_maps(out, report)
    for e in report.equations:
        if e.forcing is not None:
            out.print(Text(printable(f"forcing {e.name}: f = {e.forcing}")))
            if not e.forcing_simplified:
                out.print(
                    Text(
                        "  (not simplified: SymPy's simplification did not finish within the "
                        f"--symbolic-timeout budget of {report.symbolic_timeout:g} s, shared by "
                        "all equations; raise it for a simpler form)"
                    )
                )
    warn(report.warnings)
    residual_summary(out, report)


def _print_maps(out: Console, report: Any) -> None:
    """Under a report's tables, where its failing quantities fail (see docs/pictures.md)."""
    if getattr(report, "maps", None) is not None:
        from ._termmap import print_failure_maps

        print_failure_maps(out, report)


def _print_verify(out: Console, report: Any, warn: Warn = _warn) -> None:
    from ._render_user import print_verify

    print_verify(out, report, warn)


def _print_probe(out: Console, report: Any, warn: Warn = _warn) -> None:
    from ._render_user import print_probe

    print_probe(out, report, warn)


PRINTERS: dict[str, Callable[[Console, Any, Warn], None]] = {
    "check": _print_check,
    "residual": _print_residual,
    "verify": _print_verify,
    "probe": _print_probe,
}


def print_report(out: Console, report: Any, warn: Warn = _warn) -> None:
    """A report as tables on ``out``; its warnings through ``warn`` (stderr by default)."""
    PRINTERS[report.kind](out, report, warn)


def render_report(report: Any) -> str:
    """A report as the plain text ``pinncheck`` prints for it, warnings included."""
    from io import StringIO

    from rich.console import Console
    from rich.text import Text

    buffer = StringIO()
    console = Console(
        file=buffer, width=UNBOUNDED_WIDTH, soft_wrap=True, highlight=False, no_color=True
    )

    def warn(warnings: list[str]) -> None:
        for w in warnings:
            console.print(Text(f"warning: {printable(w)}"))

    print_report(console, report, warn)
    return buffer.getvalue()


def _output(fmt: Format, report: Any) -> None:
    """A report as JSON on stdout, or as tables."""
    if fmt is Format.json:
        _emit_json(report.to_dict())
    else:
        print_report(_stdout(), report)


@app.command(cls=_Command)
def residual(
    solution: Annotated[
        list[str],
        typer.Option(
            "--solution",
            "-s",
            metavar="NAME=EXPR",
            help="Candidate solution of one unknown; repeat per unknown.",
        ),
    ],
    domain: DomainOpt,
    pde: PdeOpt = None,
    pde_from: PdeFromOpt = None,
    pde_arg: PdeArgOpt = None,
    space: SpaceOpt = None,
    param: ParamOpt = None,
    any_residual: Annotated[
        bool,
        typer.Option(
            "--any-residual", help="Check agreement only; the candidate need not solve the PDE."
        ),
    ] = False,
    symbolic_timeout: Annotated[
        float,
        typer.Option(
            "--symbolic-timeout",
            metavar="SECONDS",
            parser=_number,
            help="Seconds SymPy may spend proving each residual zero.",
        ),
    ] = 5.0,
    forcing: Annotated[
        bool,
        typer.Option(
            "--forcing",
            help="Print the manufactured source term f = PDE(u), simplified within "
            "--symbolic-timeout (shared by all equations; unsimplified past it).",
        ),
    ] = False,
    points: PointsOpt = 1000,
    seed: SeedOpt = 20240917,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float64",
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    chunk_size: ChunkOpt = None,
    where: WhereOpt = None,
    dump_points: DumpPointsOpt = None,
    dump_limit: DumpLimitOpt = DEFAULT_DUMP_LIMIT,
    plot: PlotOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Check PDE residuals of a candidate solution: autograd against SymPy, and if it solves."""
    with _errors("residual", fmt, debug):
        extras = _Extras(fmt, dump_points, dump_limit, seed, plot)
        from ._residual import prepare_residual

        with _progress(fmt, "residual") as progress:
            job = prepare_residual(
                pde,
                solution,
                domain,
                pde_from=pde_from,
                pde_args=pde_arg,
                space=space,
                param=param,
                n=points,
                device=device,
                dtype=dtype,
                seed=seed,
                rtol=rtol,
                atol=atol,
                any_residual=any_residual,
                symbolic_timeout=symbolic_timeout,
                forcing=forcing,
                chunk_size=chunk_size,
                where=where,
            )
            report = extras.run(job, progress, "residual", "; ".join(job.system.equations))
        extras.write(report)
        _output(fmt, report)
    _finish(report.status)


class RunFormat(str, Enum):
    table = "table"
    json = "json"
    github = "github"


@app.command("run", cls=_Command)
def run_cmd(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="FILES...",
            help="Check files (TOML) or folders of them (searched for *.toml files with "
            "pinncheck tables). Default: paths = [...] under [tool.pinncheck] in pyproject.toml.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        RunFormat,
        typer.Option(
            "--format",
            "--output-format",
            "-f",
            help="table (default), json, or github (the table plus ::error annotations on the "
            "checks' lines in their files).",
        ),
    ] = RunFormat.table,
    keyword: Annotated[
        str | None,
        typer.Option(
            "-k",
            metavar="EXPR",
            help="Run only checks whose name, file name or kind matches EXPR, as pytest's -k: "
            "words (case-insensitive substrings) with and, or, not, parentheses.",
        ),
    ] = None,
    exitfirst: Annotated[
        bool,
        typer.Option("--exitfirst", "-x", help="Stop after the first missed expectation."),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="K/N",
            help="Run only the K-th of N parts of the suite (round-robin over its fixed order), "
            "for N parallel CI jobs.",
        ),
    ] = None,
    junit_xml: Annotated[
        str | None,
        typer.Option("--junit-xml", metavar="PATH", help="Also write the results as JUnit XML."),
    ] = None,
    html: Annotated[
        str | None,
        typer.Option(
            "--html",
            metavar="PATH",
            help="Also write a self-contained HTML report (summary, each check's details and "
            "plots) to PATH.",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only failures and the final line.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also say which files were collected or skipped."),
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            metavar="N",
            parser=_whole_number,
            help="Run the checks in N worker processes at once (same results, same order).",
        ),
    ] = 1,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            help="Stop a [[verify]]/[[probe]] entry after this many seconds, unless it sets "
            "timeout = ...; it then fails as an error (exit 2). 0 for no limit.",
        ),
    ] = DEFAULT_TIMEOUT,
    debug: DebugOpt = False,
) -> None:
    """Run every check of check files or folders; exit 0 only if each meets its expectation.

    Each [[verify]] and [[probe]] entry (your code) runs in its own worker process. Exit 0 all
    met; 1 an expectation missed; 2 an entry ended in an error (bad input, your code failing,
    crashing or timing out); 3 a bug in pinncheck. $GITHUB_STEP_SUMMARY, when set, gets a
    Markdown summary of the run appended.
    """
    json_fmt = Format.json if fmt is RunFormat.json else Format.table
    with _errors("run", json_fmt, debug):
        from ._checkfile import run_entries
        from ._errors import CheckFileError
        from ._suite import find_config, load_suite

        if jobs < 1:
            raise OptionError(f"-j/--jobs must be at least 1, got {jobs}.")
        _check_timeout(timeout)
        html_run = _html_run(html)
        if jobs > 1:  # the workers' template imports torch while this process reads the files
            from ._workers import prestart

            prestart()
        config = find_config()
        try:
            suite = load_suite(files, keyword=keyword, shard_spec=shard, config=config)
        except CheckFileError as exc:
            _report_problems(exc, fmt, junit_xml, html_run)
            raise
        if verbose:
            _say_collected(suite)
        report = run_entries(
            suite.entries,
            exitfirst=exitfirst,
            jobs=jobs,
            timeout=timeout,
            sinks=html_run.sinks if html_run else None,
        )
        if fmt is RunFormat.json:
            _emit_json(report.to_dict())
        else:
            _print_run(report, suite, quiet)
            if fmt is RunFormat.github:
                from ._ci import github_annotations

                for line in github_annotations(report):
                    sys.stdout.write(line + "\n")
                sys.stdout.flush()
        _write_ci_files(report, suite, junit_xml)
        if html_run:
            html_run.write(report, suite)
    raise typer.Exit(report.exit_code)


def _html_run(path: str | None) -> Any:
    """``--html PATH``: checked now, before the run (exit 2 if it cannot be written)."""
    if path is None:
        return None
    from ._html import HtmlRun

    return HtmlRun(path)


def _say_collected(suite: Any) -> None:
    from rich.text import Text

    err = _stderr()
    if suite.config is not None:
        err.print(Text(f"config: [tool.pinncheck] in {suite.config.source}"))
    for f in suite.collected.files:
        err.print(Text(f"collected {f}"))
    for f, why in suite.collected.skipped:
        err.print(Text(f"skipped {f}: {why}"))


def _report_problems(exc: Any, fmt: RunFormat, junit_xml: str | None, html_run: Any = None) -> None:
    """The problems of a suite's files, also as annotations, JUnit errors, an HTML page and a
    summary."""
    from ._ci import problem_annotations, problems_markdown

    problems = exc.problems
    if fmt is RunFormat.github and problems:
        sys.stdout.write("".join(line + "\n" for line in problem_annotations(problems)))
        sys.stdout.flush()
    if junit_xml and problems:
        try:
            _write_junit(junit_xml, None, problems=problems)
        except PinncheckError as write_error:  # the problems matter more: say both
            _warn([str(write_error)])
    messages = [q.message for q in problems] or [str(exc)]
    if html_run:
        try:
            html_run.write_problems(messages)
        except PinncheckError as write_error:
            _warn([str(write_error)])
    _append_summary(problems_markdown(messages))


def _write_ci_files(report: Any, suite: Any, junit_xml: str | None) -> None:
    from ._ci import markdown_summary

    shard = f"{suite.shard[0]}/{suite.shard[1]}" if suite.shard else None
    if junit_xml:
        _write_junit(junit_xml, report, properties={"shard": shard} if shard else None)
    _append_summary(
        markdown_summary(report, title="pinncheck run" + (f" (shard {shard})" if shard else ""))
    )


def _write_junit(path: str, report: Any, **kwargs: Any) -> None:
    from ._ci import write_junit
    from ._errors import OptionError

    try:
        write_junit(report, path, **kwargs)
    except OSError as exc:
        raise OptionError(
            f"Cannot write the JUnit XML file {path}: {exc.strerror or exc}."
        ) from None


def _append_summary(text: str) -> None:
    """Append to $GITHUB_STEP_SUMMARY when it is set; a failure to do so is only a warning."""
    from ._ci import append_step_summary

    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        try:
            append_step_summary(text, path)
        except OSError as exc:
            _warn([f"cannot append the summary to $GITHUB_STEP_SUMMARY ({path}): {exc}"])


def _print_run(report: Any, suite: Any, quiet: bool) -> None:
    """The table of a run, each missed expectation's report, and the summary line."""
    from rich.text import Text

    from ._checkfile import WORST_ERROR_MEANING
    from ._render import WORST_HEADER, run_table, summary_line

    out = _stdout()
    if not quiet and report.results:
        print_table(out, run_table(report))
        out.print(Text(f"{WORST_HEADER}: {WORST_ERROR_MEANING}.", style="dim"))
    for r in report.results:
        if r.met:
            continue
        section(out, printable(f"{r.entry.name} ({r.entry.file})"), style="red")
        if r.report is not None:
            print_report(out, r.report)
            if r.entry.expect_diagnosis and r.status == r.entry.expect:
                out.print(
                    Text(
                        "expected the diagnosis to mention "
                        + printable(repr(r.entry.expect_diagnosis))
                    )
                )
        else:
            out.print(Text(f"error: {printable_lines(r.error)}", style="bold red"))
    summary_line(out, report.status, report.verdict(printable(suite.describe())))


# verify and probe: the user's own code ------------------------------------------------------


def _check_timeout(seconds: float) -> None:
    if not (seconds >= 0 and seconds != float("inf")):
        raise OptionError(
            f"--timeout must be a number of seconds >= 0 (0 for no limit), got {seconds}."
        )


@contextmanager
def _user_code(kind: str, fmt: Format, timeout: float) -> Iterator[None]:
    """verify/probe run the user's code in this process: stdout is redirected at the
    file-descriptor level while it runs, and a watchdog ends the command after ``timeout``."""
    from ._workers import deadline, kill_children, user_output_to_stderr, write_real_stdout

    _check_timeout(timeout)
    pid = os.getpid()

    def expire() -> None:
        if os.getpid() != pid:  # never in a process the user's code forked
            return
        message = (
            f"The user's code did not finish within {timeout:g} s; pinncheck {kind} stopped it. "
            "Raise the limit with --timeout SECONDS (0 for none) if it needs longer."
        )
        kill_children()
        with suppress_errors(OSError):
            os.write(2, f"error: {message}\n".encode())
        if fmt is Format.json:
            import json

            doc = _error_document(kind, message, int(ExitCode.USAGE))
            write_real_stdout(json.dumps(doc, indent=2) + "\n")
        os._exit(int(ExitCode.USAGE))

    with deadline(timeout, expire), user_output_to_stderr():
        yield


RUNS_USER_CODE = (
    "This runs your code: TARGET's module is imported and its function called, the way pytest "
    "runs a test file (file.py:NAME is imported from its path with its folder first on "
    "sys.path; package.module:NAME is imported with the current folder on sys.path)."
)
TargetArg = Annotated[
    str,
    typer.Argument(metavar="TARGET", help="path/to/file.py:NAME or package.module:NAME."),
]
DefinitionsOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--definitions-only",
        help="Load only the file's imports, def/class definitions and simple constants, not the "
        "rest of its top level (for a training script).",
    ),
]
SolutionOpt = Annotated[
    list[str],
    typer.Option(
        "--solution",
        "-s",
        metavar="NAME=EXPR",
        help="Manufactured solution of one unknown (need not solve the PDE); repeat per unknown.",
    ),
]


@app.command(
    cls=_Command,
    help=(
        "Check YOUR PINN residual function against the exact residual of --pde.\n\n"
        "TARGET names f(x, u) (DeepXDE's convention): x is an (n, d) tensor with "
        "requires_grad=True, columns in the order of the -d options; u is (n, m), the "
        "manufactured --solution computed from x with torch operations, columns in the order of "
        "the --solution options. f returns an (n,) or (n, 1) tensor, an (n, k) tensor, or a list "
        "of k tensors for k PDEs. Split inputs f(x, t, u) (one (n, 1) tensor per variable) and "
        "f(model, x) are read from the signature (--convention to force one). The solution need "
        "not solve the PDE: a generic smooth u, with "
        "every derivative term non-zero, catches more bugs. When they disagree, pinncheck says "
        "where and fits your residual on the candidate terms to say what your code computed "
        "instead. When the values agree, the residual's gradient with respect to u is checked "
        "too (a detached term fails).\n\n" + RUNS_USER_CODE + " Errors in your code exit 2 "
        "with their traceback."
    ),
)
def verify(
    target: TargetArg,
    solution: SolutionOpt,
    domain: DomainOpt,
    pde: PdeOpt = None,
    pde_from: PdeFromOpt = None,
    pde_arg: PdeArgOpt = None,
    space: SpaceOpt = None,
    param: ParamOpt = None,
    points: PointsOpt = 1000,
    seed: SeedOpt = 20240917,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float64",
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    chunk_size: ChunkOpt = None,
    convention: Annotated[
        str | None,
        typer.Option(
            "--convention",
            metavar="NAME",
            help="How to call TARGET: x_u (f(x, u)), split (f(x, t, u)) or model (f(model, x)); "
            "default: read from its signature.",
        ),
    ] = None,
    definitions_only: DefinitionsOnlyOpt = False,
    where: WhereOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    dump_points: DumpPointsOpt = None,
    dump_limit: DumpLimitOpt = DEFAULT_DUMP_LIMIT,
    plot: PlotOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    with _errors("verify", fmt, debug):
        extras = _Extras(fmt, dump_points, dump_limit, seed, plot)
        from ._verify import prepare_verify

        _notice_to_stderr()

        with _user_code("verify", fmt, timeout), _progress(fmt, "verify") as progress:
            job = prepare_verify(
                target,
                pde,
                solution,
                domain,
                pde_from=pde_from,
                pde_args=pde_arg,
                space=space,
                param=param,
                n=points,
                device=device,
                dtype=dtype,
                seed=seed,
                rtol=rtol,
                atol=atol,
                chunk_size=chunk_size,
                convention=convention,
                definitions_only=definitions_only,
                where=where,
            )
            report = extras.run(job, progress, "verify", target)
        extras.write(report)
        _output(fmt, report)
    _finish(report.status)


@app.command(
    cls=_Command,
    help=(
        "Check that YOUR model is pointwise (output i depends on input i only) and "
        "deterministic.\n\n"
        "TARGET names an nn.Module, a callable mapping an (n, d) tensor to (n, m), or a "
        "zero-argument factory returning one (a class or factory with arguments takes them from "
        "--arg; a forward(x, t) gets one (n, 1) tensor per variable). pinncheck measures the "
        "Jacobian's off-diagonal mass on a small batch, confirms it by changing single points, "
        "calls the model twice, checks "
        "that second derivatives do not vanish (ReLU), and names the likely culprit submodules "
        "(BatchNorm or Dropout in training mode...). The model runs in its own dtype and on its "
        "own device. Exit 0 when pointwise and deterministic, 1 otherwise.\n\n" + RUNS_USER_CODE
    ),
)
def probe(
    target: TargetArg,
    domain: DomainOpt,
    points: Annotated[int, _points_option("Batch size of the probe (64, 1e3, 1_000).")] = 64,
    jacobian_points: Annotated[
        int,
        typer.Option(
            "--jacobian-points",
            metavar="N",
            parser=_whole_number,
            help="Points of the batch whose full Jacobian is measured (at least 2).",
        ),
    ] = 32,
    seed: SeedOpt = 20240917,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            metavar="DEVICE",
            help="cpu, cuda, cuda:N or auto (default: the model's own).",
        ),
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype",
            metavar="DTYPE",
            help="float32 or float64 (default: the model's own, or float32).",
        ),
    ] = None,
    arg: Annotated[
        list[str] | None,
        typer.Option(
            "--arg",
            metavar="KEY=VALUE",
            help="An argument for a class or factory TARGET (value read as TOML: 32, 1e-3, "
            'true, "tanh"); repeat.',
        ),
    ] = None,
    state_dict: Annotated[
        str | None,
        typer.Option(
            "--state-dict",
            metavar="PATH",
            help="Load these weights (torch.save of model.state_dict()) into the model first.",
        ),
    ] = None,
    definitions_only: DefinitionsOnlyOpt = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    plot: PlotOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    with _errors("probe", fmt, debug):
        plotting = _plot_request(plot, streams=False)
        from ._probe import probe as run_probe

        _notice_to_stderr()
        with _user_code("probe", fmt, timeout):
            report = run_probe(
                target,
                domain,
                n=points,
                seed=seed,
                device=device,
                dtype=dtype,
                jacobian_points=jacobian_points,
                args=arg,
                state_dict=state_dict,
                definitions_only=definitions_only,
            )
        _save_plot(plotting, report)
        _output(fmt, report)
    _finish(report.status)


def _leading_minus(argv: list[str], command: Any = None) -> str | None:
    """The expression of a ``check`` command line that starts with a minus sign, which the
    command-line parser would report as an unknown option; None if there is none.
    ``command`` is the app's click command, when the caller has built it."""
    if len(argv) < 2 or argv[1] != "check":
        return None
    command = command or typer.main.get_command(app)
    params = command.commands["check"].params
    takes_value = {o for p in params if not getattr(p, "is_flag", True) for o in p.opts}
    known = {o for p in params for o in (*p.opts, *getattr(p, "secondary_opts", ()))}
    known |= {"-h", "--help"}
    args = iter(argv[2:])
    for token in args:
        if token == "--":
            return None
        if token in takes_value:
            next(args, None)  # the option's value, whatever it starts with
        elif token.startswith("-") and len(token) > 1 and not token.startswith("--"):
            if token[:2] not in known:
                return token
    return None


def _on_sigterm(signum: int, frame: Any) -> None:
    from ._workers import on_sigterm

    on_sigterm(signum, frame)


def main() -> None:
    """Console-script entry point (``app()``, with the click command built once).

    SIGTERM stops every child process and exits 143 (SIGINT: 130)."""
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    if sys.stdout is None:  # started with stdout closed (``>&-``)
        if sys.stderr is not None:
            sys.stderr.write("error: cannot write to standard output: it is closed\n")
        raise SystemExit(UNWRITABLE_EXIT)
    prepare_streams()
    command = typer.main.get_command(app)
    token = _leading_minus(sys.argv, command)
    if token is not None:
        token = printable(token)
        typer.echo(
            f"Error: '{token}' is not an option of pinncheck check. If it is the expression, "
            f"which starts with a minus sign, put it in parentheses, '({token})', or last, "
            f"after '--': pinncheck check -d ... -- '{token}'.",
            err=True,
        )
        raise SystemExit(ExitCode.USAGE)
    command()
