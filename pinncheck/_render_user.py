"""Rich output for ``verify`` and ``probe`` reports. Imported only when output is produced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._output import print_table
from ._render import cell, error_figures, fmt, header, number_column, status_text, summary_line
from ._text import printable

Warn = Callable[[list[str]], None]


def _diagnosis(console: Console, lines: list[str]) -> None:
    for line in lines:
        text = Text("diagnosis: ", style="bold red")
        text.append(printable(line))
        console.print(text)


def verify_table(report: Any) -> Table:
    """One row per PDE: the user's residual against the exact one."""
    table = Table(title="equations (your residual against the exact one)", title_justify="left")
    table.add_column("equation", overflow="fold")
    for column in ("max |R| yours", "max |R| exact", "max abs err", "term scale", "failing"):
        number_column(table, column)
    table.add_column("status", no_wrap=True)
    for e in report.equations:
        s = e.stats
        status = status_text(e.status)
        if e.status == "undefined":
            status.append(" (NaN or inf)")
        table.add_row(
            cell(e.equation),
            fmt(s.max_abs_autograd if s.finite else None),
            fmt(s.max_abs_exact if s.finite else None),
            error_figures(e)[0],
            fmt(e.term_scale),
            f"{e.failing_points}/{s.count}",
            status,
        )
    return table


def print_verify(console: Console, report: Any, warn: Warn) -> None:
    """The table, the diagnosis, the warnings (through ``warn``) and a one-line summary."""
    o, sysm = report.options, report.system
    fields: dict[str, Any] = {
        "pde": "; ".join(sysm.equations),
        "solution": "; ".join(f"{k}={v}" for k, v in sysm.solution_texts.items()),
    }
    if sysm.params:
        fields["params"] = ", ".join(f"{k}={v}" for k, v in sysm.param_texts.items())
    fields.update(
        {
            "domain": str(sysm.domain),
            "n": o.n,
            "seed": o.seed,
            "device": str(o.device),
            "dtype": o.dtype_name,
        }
    )
    header(console, f"pinncheck verify  {report.target}", fields)
    print_table(console, verify_table(report))
    if getattr(report, "maps", None) is not None:
        from ._termmap import print_failure_maps

        print_failure_maps(console, report)
    _diagnosis(console, report.diagnosis)
    warn(report.warnings)
    eqs = report.equations
    if report.status == "pass":
        worst = max(
            (e.stats.max_abs_error / e.term_scale if e.term_scale else 0.0 for e in eqs),
            default=0.0,
        )
        summary_line(
            console,
            "pass",
            f"your residual agrees with the exact residual of "
            f"{'the PDE' if len(eqs) == 1 else f'all {len(eqs)} PDEs'} at all {o.n} points "
            f"(largest error relative to the PDE's term scale {fmt(worst)})",
        )
        return
    bad = [e for e in eqs if e.status != "pass"]
    parts = [
        f"{e.name} ({e.equation}) "
        + (
            "undefined"
            if e.status == "undefined"
            else "in its gradient"
            if getattr(e, "gradient", "") == "fail" and e.failing_points == 0
            else f"at {e.failing_points} of {o.n} points"
        )
        for e in bad
    ]
    summary_line(
        console,
        "fail",
        f"{len(bad)} of {len(eqs)} equation(s) disagree: " + "; ".join(parts),
    )


def _pf(ok: bool) -> Text:
    return status_text("pass" if ok else "fail")


def probe_table(report: Any) -> Table:
    """The findings of a probe, one row each."""
    r = report
    table = Table(title="findings", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("detail", overflow="fold")
    note = getattr(r, "jacobian_note", None)
    if r.offdiag_ratio is None:
        table.add_row("pointwise (Jacobian)", Text("-"), note or "no gradient: not measured")
    else:
        table.add_row(
            "pointwise (Jacobian)",
            _pf(not r.jacobian_coupled),
            f"off-diagonal / diagonal mass {fmt(r.offdiag_ratio)} on {r.jacobian_points} points "
            f"(worst point {fmt(r.offdiag_max_row_ratio)})" + (f"; {note}" if note else ""),
        )
    p = r.perturbation
    if p.get("evaluated") is False:
        table.add_row(
            "pointwise (perturbation)",
            Text("-"),
            "not evaluated: the output is NaN or inf at every point",
        )
    elif p.get("reliable"):
        table.add_row(
            "pointwise (perturbation)",
            _pf(not p.get("coupled")),
            f"changing single points ({', '.join(map(str, p['points']))}) moved "
            f"{p['rows_changed']} other output rows by up to {fmt(float(p['max_rel_change']))}",
        )
    else:
        table.add_row("pointwise (perturbation)", Text("-"), "skipped: the model is random")
    table.add_row(
        "deterministic",
        _pf(r.deterministic),
        "two calls agree"
        if r.deterministic
        else f"two calls differ by up to {fmt(r.nondeterminism)} (relative)",
    )
    table.add_row(
        "finite outputs",
        _pf(r.finite),
        "all finite" if r.finite else f"NaN or inf at {r.nonfinite_points} of {r.n} points",
    )
    if not getattr(r, "second_derivatives_checked", True):
        why = (
            "the output is NaN or inf at every point"
            if r.nonfinite_points >= r.n
            else "the output has no usable gradient (detached, or NaN)"
        )
        table.add_row("second derivatives", Text("-"), f"not evaluated: {why}")
    else:
        table.add_row(
            "second derivatives",
            Text("vanish", style="bold yellow") if r.second_derivatives_vanish else Text("ok"),
            "zero at every sampled point" if r.second_derivatives_vanish else "non-zero",
        )
    culprits = ", ".join(f"{c.display} ({c.problem})" for c in r.culprits)
    table.add_row("culprits", Text("-"), cell(culprits or "none"))
    return table


def print_probe(console: Console, report: Any, warn: Warn) -> None:
    """The findings table, the diagnosis, the warnings (through ``warn``) and a summary."""
    r = report
    header(
        console,
        f"pinncheck probe  {r.target}",
        {
            "model": r.model_type,
            "domain": str(r.domain),
            "n": r.n,
            "seed": r.seed,
            "device": r.device,
            "dtype": r.dtype,
            "outputs": r.output_columns,
        },
    )
    print_table(console, probe_table(r))
    _diagnosis(console, r.diagnosis)
    warn(r.warnings)
    if r.status == "pass":
        summary_line(
            console,
            "pass",
            "the model is pointwise (output i depends on input i only) and deterministic",
        )
        return
    problems = []
    if not r.pointwise:
        problems.append("batch-coupled (output i depends on other points)")
    if not r.deterministic:
        problems.append("nondeterministic")
    parts = ["is " + ", ".join(problems)] if problems else []
    if not r.finite:
        parts.append(f"returns NaN or inf at {r.nonfinite_points} of {r.n} points")
    summary_line(console, "fail", "the model " + " and ".join(parts))


__all__ = ["print_probe", "print_verify", "probe_table", "verify_table"]
