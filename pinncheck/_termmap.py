"""Terminal failure maps: under a failing table, where over the domain the failure lies.

For a run over one or two variables, ``check``, ``residual`` and ``verify`` print, under
their tables, a small map of block characters for each derivative or equation that fails:
40 cells along one variable, or 40 x 12 cells over two, each shaded by the share of its
points that fail (``|error| / tolerance > 1``; for an equation that agrees but is not a
solution, ``|exact residual| / reference error > 1``). Undefined points (NaN or inf) get their
own mark. Streams that cannot carry block characters get ASCII shades.

The data behind a map is the CLI's :class:`~pinncheck._maps.ErrorMaps` sink (built only for
table output over at most two variables); :func:`map_cells` gives any grid's cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ._maps import ErrorMaps, ErrorMapsResult, Grid, QuantityMap, RunInfo
from ._pointwise import must_solve
from ._results import quantities

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

COLUMNS = 40
ROWS = 12
PROFILE_BINS = 200
"""The sink's bins for a map of one variable: 5 per column."""
PAIR_BINS = (80, 48)
"""The sink's bins for a map of two variables: 2 x 4 per cell."""
MAX_VARIABLES = 2
SHOWN = ("fail", "undefined")
"""Statuses whose quantities get a map."""


@dataclass(frozen=True)
class Marks:
    """The characters of a map: for all passing, undefined and empty cells, the shades for a
    failing share of up to 1/4, 1/2, 3/4 and 1, and the frame."""

    passing: str
    undefined: str
    empty: str
    shades: tuple[str, str, str, str]
    vertical: str
    horizontal: str
    corners: tuple[str, str, str, str]  # top left, top right, bottom left, bottom right
    at_most: str


UNICODE = Marks("·", "?", " ", ("░", "▒", "▓", "█"), "│", "─", ("┌", "┐", "└", "┘"), "≤")
ASCII = Marks(".", "?", " ", (":", "=", "%", "#"), "|", "-", ("+", "+", "+", "+"), "<=")


def marks_for(encoding: str | None) -> Marks:
    """Block characters where ``encoding`` carries them, else ASCII."""
    sample = "".join(
        [UNICODE.passing, *UNICODE.shades, UNICODE.vertical, UNICODE.horizontal]
        + list(UNICODE.corners)
        + [UNICODE.at_most]
    )
    try:
        sample.encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return ASCII
    return UNICODE


def sinks_for(
    table_output: bool, variables: Sequence[str], plot: bool = False, solves: bool = True
) -> list[ErrorMaps]:
    """The CLI's sinks: an :class:`ErrorMaps` when a map could be shown, else none. It keeps
    the counts only (what the map needs, at a fraction of the cost), or, when ``--plot``
    reuses it (``plot``), the largest ratios too and the three worst points a plot marks.
    ``solves``: the run tests whether its candidate solves the PDEs (see ErrorMaps)."""
    if not table_output or not 1 <= len(variables) <= MAX_VARIABLES:
        return []
    return [
        ErrorMaps(
            profile_bins=PROFILE_BINS,
            pair_bins=PAIR_BINS,
            worst=3 if plot else 0,
            largest=plot,
            solves=solves,
            lazy_counts=plot,
        )
    ]


def attach(report: Any, sinks: Sequence[ErrorMaps], command: str, subject: str) -> None:
    """Store the sinks' maps on ``report.maps`` (with each quantity's status)."""
    if not sinks:
        return
    o = report.options
    info = RunInfo(command, subject, o.dtype_name, o.n, o.seed, report.status)
    statuses = {q.name: q.status for q in quantities(report)}
    shown = any(st in SHOWN for st in statuses.values())
    if not sinks[0].largest and not shown:
        return  # no map to show: the counts-only sink's skipped chunks stay uncounted
    # (A plot's sink counts the chunks it left out only for a map, which shows the counts.)
    report.maps = sinks[0].result(info, statuses, counts=shown)


def run_with_maps(
    job: Any,
    progress: Any,
    table_output: bool,
    command: str,
    subject: str,
    plot: Any = None,
    extra: Sequence[Any] = (),
) -> Any:
    """Run a check, residual or verify job, with the maps (on ``report.maps``) when a map
    could be shown: table output over one or two variables. ``plot`` is the command's
    :class:`~pinncheck._plot.PlotRequest` (``--plot``): it reuses the map's sink, or adds its
    own, so that the points stream through one ErrorMaps sink at most. ``extra`` sinks (a
    point dump) see the points too."""
    system = getattr(job, "system", None)
    domain = job.domain if system is None else system.domain
    solves = must_solve(command, job)
    wants = plot is not None and plot.wants_maps
    sinks = sinks_for(table_output, domain.names, plot=wants, solves=solves)
    every = plot.sinks_with(sinks, solves) if plot is not None else list(sinks)
    report = job.run(progress, sinks=[*every, *extra])
    attach(report, sinks, command, subject)
    return report


def map_cells(grid: Grid, columns: int = COLUMNS, rows: int = ROWS) -> dict[str, torch.Tensor]:
    """``grid``'s counts gathered into ``columns`` (x ``rows`` for a 2-D grid) cells: each bin
    goes to the cell holding its centre (exactly the cell's range when the bins divide it).
    Returns int64 tensors ``count``, ``failing``, ``undefined`` of shape ``(columns,)`` or
    ``(columns, rows)``, indexed like the grid (first axis along ``grid.variables[0]``)."""
    shape = (columns,) if len(grid.shape) == 1 else (columns, rows)
    index: torch.Tensor | None = None
    for bins, cells in zip(grid.shape, shape, strict=True):
        c = ((torch.arange(bins, dtype=torch.float64) + 0.5) * cells / bins).floor().long()
        index = c if index is None else (index[:, None] * cells + c[None, :])
    assert index is not None
    flat = index.flatten()
    size = math.prod(shape)
    return {
        key: torch.zeros(size, dtype=torch.int64)
        .index_add_(0, flat, getattr(grid, key).flatten())
        .view(shape)
        for key in ("count", "failing", "undefined")
    }


def chosen_map(qmap: QuantityMap) -> QuantityMap:
    """The map that shows why a quantity fails: its agreement's, or, for an equation whose
    values agree but that is not a solution, its "solves" map."""
    if qmap.failing or qmap.undefined or qmap.solves is None:
        return qmap
    return qmap.solves if qmap.solves.failing or qmap.solves.undefined else qmap


def _mark(marks: Marks, count: int, failing: int, undefined: int) -> tuple[str, str]:
    if count == 0:
        return marks.empty, ""
    if failing:
        share = failing / count
        level = min(3, max(0, math.ceil(share * 4) - 1))
        return marks.shades[level], "bold red"
    if undefined:
        return marks.undefined, "bold yellow"
    return marks.passing, "green"


def _num(x: float) -> str:
    return f"{x:.4g}"


def render_map(maps: ErrorMapsResult, qmap: QuantityMap, marks: Marks = UNICODE) -> Text:
    """The block of one quantity's map (see the module's docstring) as rich Text."""
    from rich.text import Text

    shown = chosen_map(qmap)
    what = (
        "is not a solution (|exact residual| > its reference error)"
        if shown.measure == "solves"
        else "fails"
    )
    ratio = "|exact|/reference" if shown.measure == "solves" else "|error|/tolerance"
    d = len(maps.variables)
    text = Text()
    if shown.failing or not shown.undefined:
        head = f"{qmap.name} {what} at {shown.failing} of {shown.count} points"
        if shown.undefined:
            head += f", undefined at {shown.undefined}"
    else:
        head = f"{qmap.name} is undefined (NaN or inf) at {shown.undefined} of {shown.count} points"
    if math.isfinite(shown.max_ratio) or shown.max_ratio == math.inf:
        head += f" (largest {ratio} {shown.max_ratio:.3g})"
    where = f"along {maps.variables[0]}" if d == 1 else f"over {', '.join(maps.variables)}"
    text.append(f"{head}; where, {where}:\n", style="bold")
    lo, hi = _num(maps.lows[0]), _num(maps.highs[0])
    if d == 1:
        cells = map_cells(shown.profiles[0])
        rows = [
            [
                _mark(
                    marks,
                    int(cells["count"][c]),
                    int(cells["failing"][c]),
                    int(cells["undefined"][c]),
                )
                for c in range(COLUMNS)
            ]
        ]
        margin = ""
        labels = [""]
    else:
        cells = map_cells(shown.pairs[0])
        rows = [
            [
                _mark(
                    marks,
                    int(cells["count"][c, r]),
                    int(cells["failing"][c, r]),
                    int(cells["undefined"][c, r]),
                )
                for c in range(COLUMNS)
            ]
            for r in reversed(range(ROWS))
        ]
        ylo, yhi = _num(maps.lows[1]), _num(maps.highs[1])
        width = max(len(ylo), len(yhi), len(maps.variables[1]))
        margin = " " * (width + 1)
        labels = [yhi.rjust(width) + " "] + [margin] * (ROWS - 2) + [ylo.rjust(width) + " "]
        text.append(f"{maps.variables[1].rjust(width)}\n")
    tl, tr, bl, br = marks.corners
    text.append(f"{margin}{tl}{marks.horizontal * COLUMNS}{tr}\n")
    for label, row in zip(labels, rows, strict=True):
        text.append(f"{label}{marks.vertical}")
        for char, style in row:
            text.append(char, style=style)
        text.append(f"{marks.vertical}\n")
    text.append(f"{margin}{bl}{marks.horizontal * COLUMNS}{br}\n")
    name = maps.variables[0]
    gap = COLUMNS + 2 - len(lo) - len(hi)
    left = (gap - len(name)) // 2
    axis = lo + " " * max(1, left) + name + " " * max(1, gap - left - len(name)) + hi
    text.append(f"{margin}{axis}\n")
    s = marks.shades
    legend = (
        f"{margin}{marks.passing} all pass  {s[0]} {marks.at_most}1/4 of the points fail  "
        f"{s[1]} {marks.at_most}1/2  {s[2]} {marks.at_most}3/4  {s[3]} more  "
        f"{marks.undefined} undefined  (blank: no points)"
    )
    text.append(legend)
    return text


def print_failure_maps(console: Console, report: Any) -> None:
    """Under a report's tables: the map of each failing derivative or equation, when the CLI
    gathered the maps (``report.maps``)."""
    maps: ErrorMapsResult | None = getattr(report, "maps", None)
    if maps is None:
        return
    marks = marks_for(getattr(console, "encoding", None))
    for q in quantities(report):
        if q.status not in SHOWN:
            continue
        try:
            qmap = maps.quantity(q.name)
        except KeyError:
            continue
        shown = chosen_map(qmap)
        if not (shown.failing or shown.undefined):
            continue
        console.print(render_map(maps, qmap, marks), soft_wrap=True)


__all__ = [
    "ASCII",
    "COLUMNS",
    "ROWS",
    "UNICODE",
    "Marks",
    "attach",
    "chosen_map",
    "map_cells",
    "marks_for",
    "print_failure_maps",
    "render_map",
    "run_with_maps",
    "sinks_for",
]
