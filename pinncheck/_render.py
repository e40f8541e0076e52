"""Rich tables and one-line summaries for reports. Imported only when output is produced."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._results import QuantityResult, inconclusive_reason
from ._text import printable

STATUS_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "undefined": "bold yellow",
    "error": "bold red",
    "not proved": "yellow",
}


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x != x:
        return "nan"
    if x == 0:
        return "0"
    return f"{x:.2e}"


def cell(text: object, style: str = "") -> Text:
    """A table cell holding user-supplied text (a name, an expression): control characters
    escaped, never cut."""
    return Text(printable(text), style=style)


def number_column(table: Table, header: str) -> None:
    """A right-aligned column of numbers, never wrapped: a number is read whole or not at all
    (a table too wide for the terminal is printed wider than it instead)."""
    table.add_column(header, justify="right", no_wrap=True)


def status_text(status: str) -> Text:
    return Text(
        status.upper() if status in ("pass", "fail") else status, style=STATUS_STYLE.get(status, "")
    )


def point_text(q: QuantityResult) -> str:
    s = q.stats
    point, values = s.worst_point, s.worst_values
    if s.nonfinite and s.first_nonfinite_point is not None:
        point, values = s.first_nonfinite_point, s.first_nonfinite_values
    elif s.max_abs_error == 0:
        return "- (exact agreement)"
    if point is None or values is None:
        return "-"
    coords = ", ".join(f"{n}={v:.4g}" for n, v in zip(q.variables, point, strict=True))
    return f"{coords} (autograd {values[0]:.6g}, exact {values[1]:.6g})"


def error_figures(q: QuantityResult) -> tuple[str, str, str]:
    """max abs, max rel and RMS error as shown; ``nan`` where some point is undefined, as in
    the JSON document (an undefined quantity never shows an error of 0)."""
    s = q.stats
    if s.nonfinite or not s.finite:
        return ("nan", "nan", "nan")
    return fmt(s.max_abs_error), fmt(s.max_rel_error), fmt(s.rms_error)


def quantity_table(title: str, rows: Sequence[tuple[str, str, QuantityResult]]) -> Table:
    """One row per quantity: label, exact expression, error figures, worst point, status."""
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("derivative", no_wrap=True)
    table.add_column("exact", overflow="fold")
    for header in ("max abs err", "max rel err", "rms err", "non-finite"):
        number_column(table, header)
    table.add_column("worst point", overflow="fold")
    table.add_column("status", no_wrap=True)
    for label, exact, q in rows:
        table.add_row(
            cell(label),
            cell(exact),
            *error_figures(q),
            str(q.stats.nonfinite),
            cell(point_text(q)),
            status_text(q.status),
        )
    return table


def header(console: Console, title: str, fields: dict[str, Any]) -> None:
    console.print(Text(printable(title), style="bold"))
    console.print(Text("  ".join(f"{k}: {printable(v)}" for k, v in fields.items()), style="dim"))


def summary_line(console: Console, status: str, text: str) -> None:
    line = Text()
    line.append(status.upper(), style=STATUS_STYLE.get(status, "bold"))
    line.append(f": {printable(text)}")
    console.print(line)


def describe_failures(results: Sequence[QuantityResult]) -> str:
    bad = [r for r in results if r.status != "pass"]
    if not bad:
        worst = max((r.stats.max_rel_error for r in results), default=0.0)
        return f"all {len(results)} agree (largest error relative to scale {fmt(worst)})"
    parts = []
    for r in bad:
        if r.status == "undefined":
            parts.append(f"{r.name} undefined at {r.stats.nonfinite} point(s) (NaN or inf)")
        else:
            parts.append(failure_text(r))
    return f"{len(bad)} of {len(results)} disagree: " + "; ".join(parts)


def failure_text(r: QuantityResult) -> str:
    """Why a quantity did not pass, in one clause."""
    s = r.stats
    if r.status == "inconclusive":
        return f"{r.name} inconclusive: {inconclusive_reason(s)}"
    return (
        f"{r.name} off by {fmt(s.max_abs_error)} (tolerance at the worst point "
        f"{fmt(r.worst_tolerance)}, exceeded {fmt(s.worst_ratio)}x)"
    )


def equation_table(equations: Sequence[Any]) -> Table:
    """One row per PDE: residual sizes, agreement, symbolic proof, status."""
    table = Table(title="equations", title_justify="left")
    table.add_column("equation", overflow="fold")
    for header in ("max |R| autograd", "max |R| exact", "max abs err", "term scale"):
        number_column(table, header)
    table.add_column("symbolic zero", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for e in equations:
        s = e.stats
        status = status_text(e.status)
        if e.status_detail not in ("ok", e.status):
            status.append(f" ({e.status_detail})")
        table.add_row(
            cell(e.equation),
            fmt(s.max_abs_autograd if s.finite else None),
            fmt(s.max_abs_exact if s.finite else None),
            error_figures(e)[0],
            fmt(e.term_scale),
            e.symbolic,
            status,
        )
    return table


def residual_summary(console: Console, report: Any) -> None:
    eqs = report.equations
    bad_terms = [d for d in report.derivatives if d.status != "pass"]
    if report.status == "pass":
        what = "autograd agrees with SymPy on every term and residual"
        if not report.any_residual:
            what += "; the candidate solves " + ("the PDE" if len(eqs) == 1 else "every PDE")
        summary_line(console, "pass", what)
        return
    parts = []
    if bad_terms:
        parts.append(describe_failures(report.derivatives))
    for e in eqs:
        if e.agreement == "inconclusive":
            parts.append(f"{e.name} ({e.equation}) inconclusive: {inconclusive_reason(e.stats)}")
        elif e.status != "pass":
            parts.append(f"{e.name} ({e.equation}): {e.status_detail}")
    summary_line(console, "fail", "; ".join(parts))


WORST_HEADER = "worst rel. error"


def worst_text(result: Any) -> str:
    """The ``worst rel. error`` cell of a ``pinncheck run`` row."""
    if result.report is None:
        return "-"
    value = result.worst_error
    if value != value:
        return "undefined" if result.status == "undefined" else "-"
    return fmt(value)


def run_table(report: Any) -> Table:
    """``pinncheck run``: one row per check."""
    table = Table(title="pinncheck run", title_justify="left")
    table.add_column("name", overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("file", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("expected", no_wrap=True)
    number_column(table, WORST_HEADER)
    number_column(table, "time")
    table.add_column("result", no_wrap=True)
    for r in report.results:
        table.add_row(
            cell(r.entry.name),
            r.entry.kind,
            cell(r.entry.file.name),
            status_text(r.status),
            r.entry.expect,
            worst_text(r),
            f"{r.seconds:.2f}s",
            Text("ok", style="green") if r.met else Text("MISSED", style="bold red"),
        )
    return table
