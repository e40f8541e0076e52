"""The ``pinncheck`` command: options in, tables/JSON and exit codes out.

The work happens in the library (``pinncheck.check`` and friends). This module only maps
options to that API and results to output. It imports torch and sympy lazily, inside the
commands, so that ``pinncheck --help`` and ``--version`` stay instant.
"""

from __future__ import annotations

import json
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

from ._errors import ExitCode, OptionError, PinncheckError, UserCodeError
from ._version import __version__

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="pinncheck",
    help="Check autograd partial derivatives and PDE residuals against SymPy's exact ones.\n\n"
    "Exit codes: 0 everything passed; 1 a check failed or was undefined; 2 bad input or usage; "
    "3 internal error.",
    no_args_is_help=True,
    add_completion=False,
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
PointsOpt = Annotated[int, typer.Option("--points", "-n", help="Number of random points.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Sampling seed (printed and recorded).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="float64 or float32 (autograd side).")]
RtolOpt = Annotated[
    float | None, typer.Option("--rtol", help="Relative tolerance (overrides the table).")
]
AtolOpt = Annotated[
    float | None,
    typer.Option("--atol", help="Absolute tolerance (overrides the scale-aware default)."),
]
ChunkOpt = Annotated[
    int | None,
    typer.Option(
        "--chunk-size", help="Points per chunk (bounds memory; results do not depend on it)."
    ),
]
PdeOpt = Annotated[
    list[str],
    typer.Option(
        "--pde",
        help="A PDE; 'LHS = RHS' means LHS - RHS. Derivatives: u_t, u_xx (single-letter "
        "variables) or diff(u, x, 2). Repeat for systems.",
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
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table (default) or json.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]
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
    from rich.console import Console

    return Console(highlight=False)


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


@contextmanager
def _errors(kind: str, fmt: Format, debug: bool) -> Iterator[None]:
    """Turn pinncheck's exceptions into one message and a documented exit code."""
    from rich.text import Text

    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except PinncheckError as exc:
        err = _stderr()
        if isinstance(exc, UserCodeError) and exc.details:
            err.print(Text(exc.details.rstrip()))
        err.print(Text(f"error: {exc}", style="bold red"))
        if fmt is Format.json:
            _emit_json(
                {
                    "pinncheck": __version__,
                    "kind": kind,
                    "status": "error",
                    "error": str(exc),
                    "exit_code": int(exc.exit_code),
                }
            )
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        _stderr().print(Text("interrupted", style="bold red"))
        raise typer.Exit(130) from None
    except Exception as exc:
        err = _stderr()
        if debug:
            err.print(Text(traceback.format_exc().rstrip()))
        err.print(
            Text(
                f"internal error: {type(exc).__name__}: {exc}. This is a bug in pinncheck; "
                "rerun with --debug for the traceback and report it.",
                style="bold red",
            )
        )
        if fmt is Format.json:
            _emit_json(
                {
                    "pinncheck": __version__,
                    "kind": kind,
                    "status": "error",
                    "error": f"internal error: {type(exc).__name__}: {exc}",
                    "exit_code": int(ExitCode.INTERNAL),
                }
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


def _finish(status: str) -> NoReturn:
    raise typer.Exit(int(ExitCode.OK if status == "pass" else ExitCode.FAILED))


def _warn(warnings: list[str]) -> None:
    from rich.text import Text

    err = _stderr()
    for w in warnings:
        err.print(Text(f"warning: {w}", style="yellow"))


@app.command()
def check(
    expr: Annotated[str, typer.Argument(help="Expression in SymPy syntax, e.g. 'x1**2*sin(x2)'.")],
    domain: DomainOpt,
    points: PointsOpt = 1000,
    order: Annotated[int, typer.Option("--order", help="Check all partials up to this order.")] = 2,
    seed: SeedOpt = 20240917,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float64",
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    chunk_size: ChunkOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Compare autograd's partial derivatives of EXPR with SymPy's, at random points."""
    with _errors("check", fmt, debug):
        from ._domain import parse_domain
        from ._parse import parse_expression

        # Refuse bad input before paying for the torch import (about 2 s).
        parse_domain(domain)
        parse_expression(expr)
        from ._check import check as run_check

        with _progress(fmt, "check") as progress:
            report = run_check(
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
                progress=progress,
            )
        _output(fmt, report)
    _finish(report.status)


def _print_check(out: Console, report: Any) -> None:
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
    out.print(quantity_table("", [(d.name, d.exact, d) for d in report.derivatives]))
    _warn(report.warnings)
    summary_line(out, report.status, describe_failures(report.derivatives))


def _print_residual(out: Console, report: Any) -> None:
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
    out.print(
        quantity_table("derivative terms", [(d.name, d.exact, d) for d in report.derivatives])
    )
    out.print(equation_table(report.equations))
    for e in report.equations:
        if e.forcing is not None:
            out.print(f"forcing {e.name}: f = {e.forcing}", markup=False)
    _warn(report.warnings)
    residual_summary(out, report)


def _print_verify(out: Console, report: Any) -> None:
    from ._render_user import print_verify

    print_verify(out, report, _warn)


def _print_probe(out: Console, report: Any) -> None:
    from ._render_user import print_probe

    print_probe(out, report, _warn)


PRINTERS: dict[str, Callable[[Console, Any], None]] = {
    "check": _print_check,
    "residual": _print_residual,
    "verify": _print_verify,
    "probe": _print_probe,
}


def print_report(out: Console, report: Any) -> None:
    PRINTERS[report.kind](out, report)


def _output(fmt: Format, report: Any) -> None:
    """A report as JSON on stdout, or as tables."""
    if fmt is Format.json:
        _emit_json(report.to_dict())
    else:
        print_report(_stdout(), report)


@app.command()
def residual(
    pde: PdeOpt,
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
            "--symbolic-timeout", help="Seconds SymPy may spend proving each residual zero."
        ),
    ] = 5.0,
    forcing: Annotated[
        bool,
        typer.Option(
            "--forcing", help="Print the manufactured source term f = PDE(u), simplified."
        ),
    ] = False,
    points: PointsOpt = 1000,
    seed: SeedOpt = 20240917,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float64",
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    chunk_size: ChunkOpt = None,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Check PDE residuals of a candidate solution: autograd against SymPy, and if it solves."""
    with _errors("residual", fmt, debug):
        from ._residual import residual as run_residual

        with _progress(fmt, "residual") as progress:
            report = run_residual(
                pde,
                solution,
                domain,
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
                progress=progress,
            )
        _output(fmt, report)
    _finish(report.status)


@app.command("run")
def run_cmd(
    files: Annotated[list[str], typer.Argument(help="Check files (TOML) to run.")],
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            metavar="N",
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
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Run every check in TOML check files; exit 0 only if each meets its expectation.

    Each [[verify]] and [[probe]] entry (your code) runs in its own worker process. Exit 0 all
    met; 1 an expectation missed; 2 an entry ended in an error (bad input, your code failing,
    crashing or timing out); 3 a bug in pinncheck."""
    with _errors("run", fmt, debug):
        from ._checkfile import load_files, run_entries

        if jobs < 1:
            raise OptionError(f"-j/--jobs must be at least 1, got {jobs}.")
        _check_timeout(timeout)
        if jobs > 1:  # the workers' template imports torch while this process reads the files
            from ._workers import prestart

            prestart()
        entries = load_files(files)
        report = run_entries(entries, jobs=jobs, timeout=timeout)
        if fmt is Format.json:
            _emit_json(report.to_dict())
        else:
            from rich.text import Text

            from ._render import run_table, summary_line

            out = _stdout()
            out.print(run_table(report))
            for r in report.results:
                if not r.met:
                    out.rule(Text(f"{r.entry.name} ({r.entry.file})"), style="red")
                    if r.report is not None:
                        print_report(out, r.report)
                        if r.entry.expect_diagnosis and r.status == r.entry.expect:
                            out.print(
                                f"expected the diagnosis to mention {r.entry.expect_diagnosis!r}",
                                markup=False,
                            )
                    else:
                        out.print(f"error: {r.error}", markup=False)
            met = sum(r.met for r in report.results)
            summary_line(
                out, report.status, f"{met} of {len(report.results)} checks met their expectation"
            )
    raise typer.Exit(report.exit_code)


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
            doc = {
                "pinncheck": __version__,
                "kind": kind,
                "status": "error",
                "error": message,
                "exit_code": int(ExitCode.USAGE),
            }
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
    help=(
        "Check YOUR PINN residual function against the exact residual of --pde.\n\n"
        "TARGET names f(x, u) (DeepXDE's convention): x is an (n, d) tensor with "
        "requires_grad=True, columns in the order of the -d options; u is (n, m), the "
        "manufactured --solution computed from x with torch operations, columns in the order of "
        "the --solution options. f returns an (n,) or (n, 1) tensor, an (n, k) tensor, or a list "
        "of k tensors for k PDEs. The solution need not solve the PDE: a generic smooth u, with "
        "every derivative term non-zero, catches more bugs. When they disagree, pinncheck says "
        "where and fits your residual on the candidate terms to say what your code computed "
        "instead.\n\n" + RUNS_USER_CODE + " Errors in your code exit 2 with their traceback."
    )
)
def verify(
    target: TargetArg,
    pde: PdeOpt,
    solution: SolutionOpt,
    domain: DomainOpt,
    param: ParamOpt = None,
    points: PointsOpt = 1000,
    seed: SeedOpt = 20240917,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float64",
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    chunk_size: ChunkOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    with _errors("verify", fmt, debug):
        from ._verify import verify as run_verify

        with _user_code("verify", fmt, timeout), _progress(fmt, "verify") as progress:
            report = run_verify(
                target,
                pde,
                solution,
                domain,
                param=param,
                n=points,
                device=device,
                dtype=dtype,
                seed=seed,
                rtol=rtol,
                atol=atol,
                chunk_size=chunk_size,
                progress=progress,
            )
        _output(fmt, report)
    _finish(report.status)


@app.command(
    help=(
        "Check that YOUR model is pointwise (output i depends on input i only) and "
        "deterministic.\n\n"
        "TARGET names an nn.Module, a callable mapping an (n, d) tensor to (n, m), or a "
        "zero-argument factory returning one. pinncheck measures the Jacobian's off-diagonal mass "
        "on a small batch, confirms it by changing single points, calls the model twice, checks "
        "that second derivatives do not vanish (ReLU), and names the likely culprit submodules "
        "(BatchNorm or Dropout in training mode...). The model runs in its own dtype and on its "
        "own device. Exit 0 when pointwise and deterministic, 1 otherwise.\n\n" + RUNS_USER_CODE
    )
)
def probe(
    target: TargetArg,
    domain: DomainOpt,
    points: Annotated[int, typer.Option("--points", "-n", help="Batch size of the probe.")] = 64,
    seed: SeedOpt = 20240917,
    device: Annotated[
        str | None,
        typer.Option("--device", help="cpu, cuda, cuda:N or auto (default: the model's own)."),
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option("--dtype", help="float32 or float64 (default: the model's own, or float32)."),
    ] = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    fmt: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    with _errors("probe", fmt, debug):
        from ._probe import probe as run_probe

        with _user_code("probe", fmt, timeout):
            report = run_probe(target, domain, n=points, seed=seed, device=device, dtype=dtype)
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
    command = typer.main.get_command(app)
    token = _leading_minus(sys.argv, command)
    if token is not None:
        typer.echo(
            f"Error: {token!r} is not an option of pinncheck check. If it is the expression, "
            f"which starts with a minus sign, put it in parentheses, '({token})', or last, "
            f"after '--': pinncheck check -d ... -- '{token}'.",
            err=True,
        )
        raise SystemExit(ExitCode.USAGE)
    command()
