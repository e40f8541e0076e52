"""A suite's results as one self-contained HTML page: ``pinncheck run ... --html PATH``.

The page is a CI artifact that opens in any browser, offline: a summary table (one row per
check: name, kind, file, status, expectation, n, dtype, worst error against tolerance, worst
error relative to scale, time), then each check's details as pinncheck prints them (its
derivative or equation table, warnings, diagnosis and summary line, as HTML tables and text), a
table of its worst points, and its plots, embedded as ``data:`` images.

Nothing on the page is fetched: no scripts, no external style sheets, fonts or images, and a
Content-Security-Policy that forbids them. Every piece of user-supplied text (names,
expressions, messages, file names) is HTML-escaped, with control characters shown as escapes,
so an expression holding ``<script>`` is shown as text.

The details reuse pinncheck's terminal output: the report is "printed" to a console that records
what it is given (rich tables and texts) instead of drawing it, and each recorded table becomes
an HTML ``<table>``, so the page always shows the same columns as the terminal.

This module imports neither torch nor SymPy; rich is imported when a page is made.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._errors import OptionError
from ._text import printable, printable_lines

PLOTS_HINT = 'plots need pip install "pinncheck[plot]"'
"""What the page says instead of its plots when matplotlib is not installed."""

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""The page's policy: inline style and ``data:`` images only; nothing fetched, no scripts."""

# Rich colours of pinncheck's output, as the page's CSS classes.
_COLOURS = {"red": "bad", "green": "good", "yellow": "warn"}

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  padding: 1.5em 2em 3em; color: #1d2125; background: #fff; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.2em; margin: 0 0 .3em; }
h3 { font-size: 1em; margin: 1em 0 .3em; }
p { margin: .3em 0; }
p.line { white-space: pre-wrap; }
.meta, .where, .note { color: #59636e; }
table { border-collapse: collapse; margin: .5em 0 1em; }
caption { text-align: left; font-weight: 600; padding: .2em 0; }
th, td { border: 1px solid #d1d9e0; padding: .25em .6em; vertical-align: top; text-align: left; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; }
td .mono { overflow-wrap: break-word; }
td .status { white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
tr.missed td { background: #fff1f0; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre { background: #f6f8fa; border: 1px solid #d1d9e0; padding: .6em .8em; overflow-x: auto;
  white-space: pre-wrap; line-height: 1.2; }
.status { font-weight: 700; padding: 0 .35em; border-radius: 3px; }
.status.pass, .status.met { color: #fff; background: #1a7f37; }
.status.fail, .status.missed, .status.error { color: #fff; background: #cf222e; }
.status.undefined, .status.skipped, .status.inconclusive { color: #1d2125; background: #f2cc60; }
.bad { color: #cf222e; } .good { color: #1a7f37; } .warn { color: #9a6700; }
.bold { font-weight: 700; } .dim { color: #59636e; }
section.check { border-top: 2px solid #d1d9e0; margin-top: 2em; padding-top: 1em; }
section.check.missed { border-top-color: #cf222e; }
ul.warnings { padding-left: 1.2em; color: #9a6700; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #d1d9e0; }
figcaption { color: #59636e; font-size: .9em; }
a { color: #0969da; }
"""


# Escaping -----------------------------------------------------------------------------------
def esc(text: object) -> str:
    """User-supplied text for HTML: control characters shown as escapes (one line), then
    ``&``, ``<``, ``>`` and quotes escaped."""
    return html.escape(printable(text), quote=True)


def esc_lines(text: object) -> str:
    """Like :func:`esc`, keeping line breaks (messages, tracebacks)."""
    return html.escape(printable_lines(text), quote=True)


# Figures ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """A picture for the page: PNG or SVG bytes, embedded as a ``data:`` image."""

    data: bytes
    mime: str
    """``image/png`` or ``image/svg+xml``."""
    caption: str = ""

    def to_html(self) -> str:
        uri = f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"
        caption = f"<figcaption>{esc(self.caption)}</figcaption>" if self.caption else ""
        return f'<figure><img src="{uri}" alt="{esc(self.caption or "plot")}">{caption}</figure>'


FigureMaker = Callable[[Any], "Sequence[Figure] | str"]
"""Makes a check's figures from its :class:`~pinncheck._checkfile.EntryResult`; a string
instead says why there are none (shown in place of the figures)."""


# The check's output, recorded ------------------------------------------------------------------
@dataclass
class _Warnings:
    lines: list[str] = field(default_factory=list)


def _recorded(report: Any) -> list[Any]:
    """What pinncheck prints for ``report``, as the rich objects (and warnings) it prints."""
    from rich.console import Console

    from ._output import UNBOUNDED_WIDTH
    from .cli import print_report

    class Recorder(Console):
        def __init__(self) -> None:
            super().__init__(
                file=io.StringIO(),
                width=UNBOUNDED_WIDTH,
                no_color=True,
                color_system=None,
                highlight=False,
                emoji=False,
            )
            self.items: list[Any] = []

        def print(self, *objects: Any, **kwargs: Any) -> None:
            self.items.extend(objects)

    recorder = Recorder()
    print_report(recorder, report, lambda lines: recorder.items.append(_Warnings(list(lines))))
    return recorder.items


def _style_classes(style: Any) -> str:
    if style is None:
        return ""
    classes = []
    color = getattr(style, "color", None)
    name = getattr(color, "name", "") or ""
    for key, css in _COLOURS.items():
        if key in name:
            classes.append(css)
    if style.bold:
        classes.append("bold")
    if style.dim:
        classes.append("dim")
    return " ".join(classes)


def _style(style: Any) -> Any:
    """A rich style (or its definition, such as ``"bold red"``) as a Style; a theme's named
    style (which needs a console to look up) as no style."""
    from rich.errors import StyleSyntaxError
    from rich.style import Style

    if not isinstance(style, str):
        return style
    try:
        return Style.parse(style)
    except StyleSyntaxError:
        return Style()


def _styled_runs(text: Any) -> list[tuple[str, str]]:
    """A rich Text as (escaped text, CSS classes) runs: its own style and its spans'."""
    from rich.style import Style

    plain = text.plain
    cuts = sorted({0, len(plain), *(s.start for s in text.spans), *(s.end for s in text.spans)})
    runs = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        if a >= b:
            continue
        styles = [text.style] + [s.style for s in text.spans if s.start <= a and b <= s.end]
        style = Style.combine(_style(s) for s in styles)
        runs.append((esc_lines(plain[a:b]), _style_classes(style)))
    return runs


def _plain_console() -> Any:
    from rich.console import Console

    return Console(file=io.StringIO(), width=120, no_color=True, color_system=None, highlight=False)


def _rich_html(item: Any, inline: bool = False) -> str:
    """A recorded rich object as HTML: a Text as text with its colours, a Table as a table,
    anything else as its plain-text rendering."""
    from rich.table import Table
    from rich.text import Text

    if isinstance(item, str):
        item = Text(item)
    if isinstance(item, Text):
        body = "".join(
            f'<span class="{classes}">{text}</span>' if classes else text
            for text, classes in _styled_runs(item)
        )
        if inline:
            return body
        return f"<pre>{body}</pre>" if "\n" in item.plain else f'<p class="line">{body}</p>'
    if isinstance(item, Table):
        return _table_html(item)
    if isinstance(item, _Warnings):
        lines = "".join(f"<li>warning: {esc(w)}</li>" for w in item.lines)
        return f'<ul class="warnings">{lines}</ul>' if item.lines else ""
    console = _plain_console()
    console.print(item)
    return f"<pre>{esc_lines(console.file.getvalue().rstrip())}</pre>"


def _table_html(table: Any) -> str:
    columns = list(table.columns)
    numeric = [c.justify == "right" for c in columns]
    head = "".join(
        f'<th{" class=num" if num else ""} scope="col">{_rich_html(c.header, inline=True)}</th>'
        for c, num in zip(columns, numeric, strict=True)
    )
    cells = [list(c.cells) for c in columns]
    rows = []
    for i in range(table.row_count):
        tds = "".join(
            f"<td{' class=num' if num else ''}>{_rich_html(col[i], inline=True)}</td>"
            for col, num in zip(cells, numeric, strict=True)
        )
        rows.append(f"<tr>{tds}</tr>")
    title = table.title
    caption = f"<caption>{_rich_html(title, inline=True)}</caption>" if title else ""
    return (
        f'<div class="scroll"><table class="details">{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


# Numbers ------------------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if math.isnan(x):
        return "nan"
    if x == 0:
        return "0"
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def worst_ratio(report: Any) -> float | None:
    """The largest error against its tolerance over a report's quantities (passes at <= 1):
    NaN when one is undefined, None when the report has none (a probe)."""
    from ._results import quantities

    qs = quantities(report)
    if not qs:
        return None
    if any(q.status == "undefined" for q in qs):
        return math.nan
    ratios = [q.stats.worst_ratio for q in qs if q.stats.worst is not None]
    return max(ratios) if ratios else 0.0


def n_and_dtype(report: Any) -> tuple[int | None, str | None]:
    """The number of points and the dtype a report was run with."""
    options = getattr(report, "options", None)
    if options is not None:
        return options.n, options.dtype_name
    return getattr(report, "n", None), getattr(report, "dtype", None)


# The page -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Row:
    index: int
    result: Any  # EntryResult, or None for a check not run
    entry: Any
    state: str  # passed, failed, error, skipped


def _rows(report: Any) -> list[_Row]:
    rows: list[_Row] = []
    for r in report.results:
        state = "passed" if r.met else ("error" if r.report is None else "failed")
        rows.append(_Row(len(rows) + 1, r, r.entry, state))
    for e in report.not_run:
        rows.append(_Row(len(rows) + 1, None, e, "skipped"))
    return rows


_RESULT_TEXT = {"passed": "met", "failed": "MISSED", "error": "ERROR", "skipped": "not run"}
_RESULT_CLASS = {"passed": "met", "failed": "missed", "error": "error", "skipped": "skipped"}


def _badge(status: str, text: str | None = None) -> str:
    shown = text if text is not None else status.upper()
    return f'<span class="status {esc(status)}">{esc(shown)}</span>'


def _where(entry: Any) -> str:
    from ._ci import _display_path

    return f"{_display_path(entry.file)}:{entry.line}"


def _path_html(path: str) -> str:
    """A path that may break after each ``/`` in a narrow column."""
    return esc(path).replace("/", "/<wbr>")


def _summary_table(rows: Sequence[_Row]) -> str:
    from ._render import WORST_HEADER, worst_text

    heads = [
        ("#", True),
        ("check", False),
        ("kind", False),
        ("file", False),
        ("status", False),
        ("expected", False),
        ("result", False),
        ("n", True),
        ("dtype", False),
        ("worst error / tolerance", True),
        (WORST_HEADER, True),
        ("time", True),
    ]
    head = "".join(f'<th{" class=num" if num else ""} scope="col">{h}</th>' for h, num in heads)
    body = []
    for row in rows:
        r, e = row.result, row.entry
        report = r.report if r is not None else None
        n, dtype = n_and_dtype(report) if report is not None else (None, None)
        ratio = worst_ratio(report) if report is not None else None
        ratio_text = "undefined" if ratio is not None and math.isnan(ratio) else _fmt(ratio)
        status = r.status if r is not None else "not run"
        cells = [
            (str(row.index), True),
            (f'<a href="#check-{row.index}">{esc(e.name)}</a>', False),
            (esc(e.kind), False),
            (f'<span class="mono">{_path_html(_where(e))}</span>', False),
            (_badge(status) if r is not None else esc(status), False),
            (esc(e.expect.upper()), False),
            (_badge(_RESULT_CLASS[row.state], _RESULT_TEXT[row.state]), False),
            ("-" if n is None else str(n), True),
            (esc(dtype or "-"), False),
            (ratio_text, True),
            (esc(worst_text(r)) if r is not None else "-", True),
            (f"{r.seconds:.2f} s" if r is not None else "-", True),
        ]
        tds = "".join(f"<td{' class=num' if num else ''}>{c}</td>" for c, num in cells)
        missed = ' class="missed"' if row.state != "passed" else ""
        body.append(f'<tr{missed} data-state="{row.state}">{tds}</tr>')
    return (
        '<div class="scroll"><table id="summary" class="summary"><caption>checks</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _worst_points(report: Any) -> str:
    """One row per quantity at its worst point (the largest error against tolerance), or at
    its first undefined point; verify adds its equations' other worst points."""
    from ._results import quantities

    rows = []
    for q in quantities(report):
        s = q.stats
        w = s.worst
        if s.nonfinite and s.first_nonfinite_point is not None:
            values = s.first_nonfinite_values or (math.nan, math.nan)
            point, index, tol, ratio = s.first_nonfinite_point, s.first_nonfinite_index, None, None
            note = "first undefined point"
        elif w is not None:
            values = s.worst_values or (w.autograd, w.exact)
            point, index, tol, ratio = w.point, w.index, w.tolerance, w.ratio
            note = ""
        else:
            continue
        rows.append((q, index, point, values, tol, ratio, note))
        for extra in getattr(q, "worst_points", [])[1:]:
            coords = extra.get("point") or {}
            pair = (extra.get("user"), extra.get("exact"))
            if extra.get("index") == index or None in pair:
                continue
            rows.append((q, extra.get("index"), list(coords.values()), pair, None, None, ""))
    if not rows:
        return ""
    trs = []
    for q, index, point, values, tol, ratio, note in rows:
        coords = ", ".join(f"{n}={v:.6g}" for n, v in zip(q.variables, point, strict=False))
        err = abs(values[0] - values[1])
        label = esc(q.name) + (f' <span class="dim">({esc(note)})</span>' if note else "")
        cells = [
            (label, False),
            ("-" if index is None else str(index), True),
            (f'<span class="mono">{esc(coords)}</span>', False),
            (_fmt(values[0]) if values[0] is not None else "-", True),
            (_fmt(values[1]) if values[1] is not None else "-", True),
            (_fmt(err), True),
            (_fmt(tol), True),
            (_fmt(ratio), True),
        ]
        trs.append(
            "<tr>" + "".join(f"<td{' class=num' if n else ''}>{c}</td>" for c, n in cells) + "</tr>"
        )
    heads = ["quantity", "index", "point", "under test", "exact", "|error|", "tolerance", "ratio"]
    head = "".join(
        f'<th{" class=num" if i not in (0, 2) else ""} scope="col">{h}</th>'
        for i, h in enumerate(heads)
    )
    return (
        '<div class="scroll"><table class="worst"><caption>worst points (ratio = |error| / '
        f"tolerance; above 1 fails)</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(trs)}</tbody></table></div>"
    )


def _figures_html(result: Any, figures: FigureMaker | None) -> str:
    if figures is None or result is None or result.report is None:
        return ""
    try:
        made = figures(result)
    except Exception as exc:  # a picture must never cost the report
        made = f"the plot could not be drawn ({type(exc).__name__}: {exc})"
    if isinstance(made, str):
        return f'<p class="note plots-note">{esc(made)}</p>' if made else ""
    return "".join(f.to_html() for f in made)


def _check_section(row: _Row, figures: FigureMaker | None) -> str:
    from ._ci import NOT_RUN, outcome

    r, e = row.result, row.entry
    state = _RESULT_CLASS[row.state]
    out = [
        f'<section class="check {state}" id="check-{row.index}">',
        f"<h2>{row.index}. {esc(e.name)} {_badge(state, _RESULT_TEXT[row.state])}</h2>",
    ]
    facts = [esc(e.kind), f'<span class="mono">{esc(_where(e))}</span>']
    facts.append(f"expected {esc(e.expect.upper())}")
    if e.expect_diagnosis:
        facts.append(f"expected diagnosis mentions {esc(repr(e.expect_diagnosis))}")
    if r is not None:
        facts.append(f"{r.seconds:.2f} s")
    out.append(f'<p class="where">{" · ".join(facts)}</p>')
    if r is None:
        out.append(f"<p>{esc(NOT_RUN)}</p>")
    elif r.report is None:
        out.append(f'<pre class="error">error: {esc_lines(r.error or "")}</pre>')
    else:
        if row.state == "failed":
            out.append(f'<p class="bad">{esc(outcome(r).message)}</p>')
        out.append('<div class="output">')
        out.extend(_rich_html(item) for item in _recorded(r.report))
        out.append("</div>")
        out.append(_worst_points(r.report))
        out.append(_figures_html(r, figures))
    out.append("</section>")
    return "\n".join(part for part in out if part)


def _page(title: str, status: str, body: Sequence[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="generator" content="pinncheck">',
            f"<title>{esc(title)}: {esc(status.upper())}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _meta_line() -> str:
    import platform

    from ._version import __version__

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"generated {when} by pinncheck {esc(__version__)}, Python {platform.python_version()}"


def html_report(
    report: Any,
    *,
    title: str = "pinncheck run",
    selection: str = "",
    figures: FigureMaker | None = None,
    figures_note: str = "",
) -> str:
    """A run (a :class:`~pinncheck._checkfile.RunReport`) as a self-contained HTML page.

    Args:
        report: the run's results.
        title: the page's heading (e.g. ``pinncheck run (shard 1/3)``).
        selection: what ``-k``/``--shard`` left out, as ``Suite.describe()`` says it.
        figures: makes each check's figures (see :data:`FigureMaker`); None for none.
        figures_note: a line said once under the summary (e.g. :data:`PLOTS_HINT`).
    """
    from ._checkfile import WORST_ERROR_MEANING
    from ._render import WORST_HEADER

    rows = _rows(report)
    line = report.verdict(selection)
    body = [
        "<header>",
        f"<h1>{esc(title)}: {_badge(report.status)}</h1>",
        f'<p id="verdict">{esc(line)}.</p>',
        f'<p class="meta">{_meta_line()}</p>',
        "</header>",
        "<main>",
        _summary_table(rows),
        '<p class="note">worst error / tolerance: the largest ratio of a point\'s error to the '
        f"error allowed there (a quantity passes when it is at most 1). {esc(WORST_HEADER)}: "
        f"{esc(WORST_ERROR_MEANING)}.</p>",
    ]
    if figures_note:
        body.append(f'<p class="note plots-note">{esc(figures_note)}</p>')
    body += [_check_section(row, figures) for row in rows]
    body.append("</main>")
    return _page(title, report.status, body)


def problems_html(messages: Sequence[str], *, title: str = "pinncheck run") -> str:
    """The page for a run that did not start: its check files did not validate."""
    items = "".join(f"<li><pre>{esc_lines(m)}</pre></li>" for m in messages)
    body = [
        "<header>",
        f"<h1>{esc(title)}: {_badge('error', 'ERROR')}</h1>",
        '<p id="verdict">The check files did not validate; nothing ran.</p>',
        f'<p class="meta">{_meta_line()}</p>',
        "</header>",
        f'<main><ul id="problems">{items}</ul></main>',
    ]
    return _page(title, "error", body)


# Files ----------------------------------------------------------------------------------------
def check_writable(path: str | Path) -> Path:
    """Make sure an HTML report can be written at ``path`` before a run starts; a file that
    was not there is not left behind.

    Raises:
        OptionError: ``path`` is a folder, or its folder is missing or not writable.
    """
    p = Path(path)
    if p.is_dir():
        raise OptionError(f"--html {path}: that is a folder; name a file, e.g. report.html.")
    existed = p.exists()
    try:
        with open(p, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise OptionError(
            f"Cannot write the HTML report {path}: {exc.strerror or exc}. Give --html a file "
            "in a folder that exists and is writable."
        ) from None
    if not existed:
        try:
            os.unlink(p)
        except OSError:
            pass
    return p


def write_text(text: str, path: str | Path) -> None:
    """Write a page to ``path`` as UTF-8 (characters UTF-8 cannot carry, such as lone
    surrogates, escaped).

    Raises:
        OptionError: the file cannot be written.
    """
    data = text.encode("utf-8", errors="backslashreplace")
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise OptionError(f"Cannot write the HTML report {path}: {exc.strerror or exc}.") from None


def write_html(report: Any, path: str | Path, **kwargs: Any) -> None:
    """Write :func:`html_report` of a run to ``path``: the Python form of ``pinncheck run
    ... --html PATH``.

    Example:
        >>> from pinncheck._checkfile import run_files
        >>> write_html(run_files(["samples/heat_1d.toml"]), "/tmp/pinncheck-heat.html")

    Raises:
        OptionError: the file cannot be written.
    """
    write_text(html_report(report, **kwargs), path)


MAPPED_KINDS = ("check", "residual", "verify")
"""Kinds whose plots are drawn from error maps that see the run's points stream past."""


def plots_available() -> bool:
    """Whether the page can have plots: matplotlib (the ``plot`` extra) is installed."""
    from importlib.util import find_spec

    return find_spec("matplotlib") is not None


def plot_figures(result: Any) -> Sequence[Figure] | str:
    """The figure of one check (a :class:`~pinncheck._checkfile.EntryResult`), drawn by
    :mod:`pinncheck._plot` from the error maps among its sinks (a probe's from its report),
    as PNG; or why there is none."""
    from ._maps import ErrorMaps
    from ._plot import plot_png

    report = result.report
    maps = next((s for s in result.sinks if isinstance(s, ErrorMaps)), None)
    if report.kind in MAPPED_KINDS and maps is None:
        return ""
    try:
        png = plot_png(report, maps)
    except OptionError as exc:  # nothing to draw (a probe without a Jacobian)
        return f"no plot: {exc}"
    if report.kind == "probe":
        caption = (
            f"{result.entry.name}: the Jacobian's coupling between the probe's points "
            "(off-diagonal against diagonal, log scale)"
        )
    else:
        caption = (
            f"{result.entry.name}: |error| / tolerance over the domain, per derivative or "
            "equation (at most 1 passes)"
        )
    return [Figure(png, "image/png", caption)]


class HtmlRun:
    """``pinncheck run ... --html PATH``: the path is checked when this is made, before the
    run starts; :meth:`sinks` gives each entry the error maps its plot is drawn from (only
    when matplotlib is installed); :meth:`write` writes the page after the run.

    Example:
        >>> from pinncheck._checkfile import load_files, run_entries
        >>> page = HtmlRun("/tmp/pinncheck-heat.html")
        >>> run = run_entries(load_files(["samples/heat_1d.toml"]), sinks=page.sinks)
        >>> page.write(run)

    Raises:
        OptionError: ``path`` cannot be written (see :func:`check_writable`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = check_writable(path)
        self.plots = plots_available()

    def sinks(self, entry: Any) -> list[Any]:
        """The point sinks an entry's run feeds for the page, when its kind streams points:
        the error maps its plot is drawn from; without matplotlib, those of the terminal's
        block-character map of where it fails (one or two variables only)."""
        if entry.kind not in MAPPED_KINDS:
            return []
        from ._pointwise import must_solve

        solves = must_solve(entry.kind, entry.job)
        if self.plots:
            from ._plot import error_maps

            return [error_maps(solves)]
        from ._termmap import sinks_for

        system = getattr(entry.job, "system", None)
        domain = entry.job.domain if system is None else system.domain
        return list(sinks_for(True, domain.names, solves=solves))

    def write(self, report: Any, suite: Any = None) -> None:
        """Write the page of a run (of ``suite``, a :class:`~pinncheck._suite.Suite`, whose
        shard and selection the page names)."""
        shard = f" (shard {suite.shard[0]}/{suite.shard[1]})" if suite and suite.shard else ""
        if not self.plots:  # the terminal's maps then show where each check fails
            from ._termmap import attach

            for r in report.results:
                if r.report is not None and r.sinks:
                    attach(r.report, r.sinks, r.entry.kind, r.entry.name)
        write_html(
            report,
            self.path,
            title="pinncheck run" + shard,
            selection=suite.describe() if suite else "",
            figures=plot_figures if self.plots else None,
            figures_note="" if self.plots else PLOTS_HINT,
        )

    def write_problems(self, messages: Sequence[str]) -> None:
        """Write the page of a run whose check files did not validate."""
        write_text(problems_html(messages), self.path)


__all__ = [
    "HtmlRun",
    "PLOTS_HINT",
    "Figure",
    "check_writable",
    "html_report",
    "problems_html",
    "write_html",
]
