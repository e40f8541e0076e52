"""Plots of pinncheck's reports (``--plot PATH``): where the error lives, as a picture.

matplotlib is an optional extra (``pip install "pinncheck[plot]"``). This module imports it
only inside the functions that draw, so importing the module is cheap and works without it.
Figures are drawn on matplotlib's Agg canvas (no display, no pyplot and no global state), so
plotting from a script, a notebook or a worker thread leaves the caller's matplotlib alone.

The Python API (stable; the HTML report and ``make pictures`` use it):

- :func:`save_plot` writes a report's figure to a ``.png``, ``.svg`` or ``.pdf`` file;
- :func:`plot_svg` returns the figure as SVG text and :func:`plot_png` as PNG bytes, for
  embedding (an HTML page, a notebook);
- :func:`plot_data` returns the arrays behind the figure (what is drawn, cell by cell), for
  tests and for users who draw their own;
- :func:`plot_format` and :func:`require_matplotlib` refuse a bad ``--plot`` before a run.

``check``, ``residual`` and ``verify`` reports are drawn from the :class:`~pinncheck._maps.
ErrorMaps` that saw the run's points stream past (see :func:`error_maps`); ``probe`` reports
carry their Jacobian's coupling matrix (:attr:`pinncheck._probe.ProbeReport.coupling`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import OptionError

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
"""The file formats of ``--plot``, by the path's suffix."""

INSTALL = 'pip install "pinncheck[plot]"'
"""The command that installs what plotting needs."""

DPI = 110
"""Resolution of PNG output (dots per inch of the figure's size)."""


def plot_format(path: str | Path) -> str:
    """``"png"``, ``"svg"`` or ``"pdf"`` from the suffix of ``path`` (case-insensitive).

    Raises:
        OptionError: any other suffix (exit code 2), before anything runs.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        got = f"'{suffix}'" if suffix else "no suffix"
        raise OptionError(
            f"--plot {path}: cannot tell the format from {got}; give the file a .png, .svg or "
            ".pdf suffix (the format follows the suffix)."
        )
    return FORMATS[suffix]


def require_matplotlib() -> None:
    """Raise :class:`OptionError` (exit code 2) with the install command unless matplotlib
    can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise OptionError(
            "--plot needs matplotlib, which is not installed in this environment (it is an "
            f"optional extra of pinncheck). Install it with: {INSTALL} (or pip install "
            "matplotlib), then run the command again; everything else works without it."
        ) from None


def check_target(path: str | Path) -> str:
    """Validate a ``--plot`` path before a run: its format, matplotlib, and a folder to write
    into. Returns the format."""
    fmt = plot_format(path)
    require_matplotlib()
    folder = Path(path).expanduser().parent
    if not folder.is_dir():
        raise OptionError(f"--plot {path}: the folder {folder} does not exist; create it first.")
    if Path(path).expanduser().is_dir():
        raise OptionError(
            f"--plot {path} is a folder; give a file name ending in .png, .svg or .pdf."
        )
    return fmt


# The figure's data ---------------------------------------------------------------------------


@dataclass
class ProbeData:
    """What :func:`plot_data` returns for a ``probe`` report.

    ``relative[i, j]`` is the coupling matrix divided by its row's diagonal entry:
    ``|d y_i / d x_j| / |d y_i / d x_i|`` (1 on the diagonal, 0 off it for a pointwise model,
    NaN where it is undefined). ``row_ratio[i]`` is the root of row ``i``'s summed squared
    off-diagonal entries over its diagonal one (the per-point figure behind
    ``offdiag_max_row_ratio``); ``tolerance`` is the level above which a ratio counts as
    coupling.
    """

    relative: np.ndarray
    row_ratio: np.ndarray
    tolerance: float
    title: str
    caption: str


MARKED_WORST = 3
"""How many of each map's worst points are marked on its panels."""
MAX_PROJECTIONS = 3
"""Panels per quantity for three or more variables, where it fails or is undefined: its most
structured pairs (a quantity that passes gets one: see :func:`_projections`)."""
PANEL_BUDGET = 12
"""The most panels of a figure of three or more variables (one per quantity at least)."""
LOWEST, HIGHEST = 1e-12, 1e20
"""The colour scale's widest range of ratios; ratios beyond it take its end colours (the
colour bar shows an arrow at the clipped end)."""
MIN_PER_CELL = 4
"""A 2-D panel merges blocks of bins until it has a cell per this many points or fewer."""
MIN_BINS = 8
"""...but keeps at least this many bins per axis."""
SINGULAR_GRID = 201
"""Points per axis on which a singular set's function is evaluated to draw it."""


@dataclass
class Singular:
    """A singular set as one panel draws it. On a 1-D panel, ``at`` holds the positions where
    it meets the variable's axis. On a 2-D panel, ``g[i, j]`` is its function at ``x[i]``,
    ``y[j]``, whose ``levels`` are drawn as contour lines, and ``at`` the points where it
    touches a level without crossing it."""

    label: str
    levels: tuple[float, ...] = ()
    at: list[tuple[float, ...]] = field(default_factory=list)
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    g: np.ndarray | None = None


@dataclass
class Panel:
    """One panel of an error-map figure: a 1-D profile or a 2-D grid of one ratio.

    ``ratio`` is exactly what is coloured: the largest ratio in each bin, ``ratio[i]`` or
    ``ratio[i, j]`` with ``i`` along ``variables[0]`` (the horizontal axis) and ``j`` along
    ``variables[1]``; NaN where the bin has no defined point. ``edges`` are the bins' edges
    per variable. ``undefined`` marks the bins with a NaN or inf value (drawn in their own
    colour, whatever their ratio), ``empty`` the bins without a sampled point. ``worst`` are
    the marked worst points (in the panel's variables) and ``worst_ratio`` their ratios.
    """

    quantity: str
    measure: str
    """``"error"`` (``|error| / tolerance``) or ``"solves"`` (``|exact residual|`` over the
    bound on its rounding: above 1 where the candidate is not a solution)."""
    title: str
    variables: tuple[str, ...]
    edges: tuple[np.ndarray, ...]
    ratio: np.ndarray
    undefined: np.ndarray
    empty: np.ndarray
    worst: list[tuple[float, ...]]
    worst_ratio: list[float]
    singular: list[Singular] = field(default_factory=list)

    def failing_cells(self) -> np.ndarray:
        """The centres of the bins that the panel shows failing (ratio above 1), one row per
        bin, one column per variable."""
        import numpy as np

        centres = [(e[:-1] + e[1:]) / 2 for e in self.edges]
        mesh = np.meshgrid(*centres, indexing="ij")
        mask = np.nan_to_num(self.ratio, nan=0.0) > 1
        return np.stack([m[mask] for m in mesh], axis=1)


@dataclass
class MapsData:
    """What :func:`plot_data` returns for a ``check``, ``residual`` or ``verify`` report.

    ``panels`` fill ``rows`` rows of ``cols`` panels, row by row (for three or more
    variables, each quantity's projections one after the other, see :func:`_projections`).
    All panels share one colour scale from ratio ``lo`` to
    ``hi``; the pass/fail line, ratio 1, always lies inside it.
    """

    title: str
    panels: list[Panel]
    rows: int
    cols: int
    lo: float
    hi: float
    dimensions: int
    stride: int = 1
    """Where a bin passes (ratio at most 1), its colour is the largest ratio of the run's
    points sampled for the maps: every point when 1; else the blocks of
    :data:`~pinncheck._maps.SAMPLE_BLOCK` points whose number is a multiple of ``stride``, and
    each bin's first point. A failing bin's ratio is exact (every failing point counts)."""
    sampled: int = 0
    """How many of the run's points that sample holds (``n`` when ``stride`` is 1)."""

    def note(self) -> str:
        """The figure's note on the sample (empty when every point was binned)."""
        from ._maps import SAMPLE_BLOCK

        if self.stride <= 1:
            return ""
        return (
            f"Bins at or below 1: the largest ratio of {self.sampled:,} sampled points "
            f"(one block of {SAMPLE_BLOCK:,} in {self.stride}); bins above 1: exact."
        )


def plot_data(report: Any, maps: Any = None) -> Any:
    """The data that :func:`save_plot` draws for ``report``.

    For a ``probe`` report, a :class:`ProbeData` (``maps`` is not used). For ``check``,
    ``residual`` and ``verify``, a :class:`MapsData` built from ``maps``: the
    :class:`~pinncheck._maps.ErrorMaps` sink that saw the run (or its
    :class:`~pinncheck._maps.ErrorMapsResult`); without them, :class:`OptionError`.
    """
    if report.kind == "probe":
        return _probe_data(report)
    if report.kind in ("check", "residual", "verify"):
        if maps is None:
            raise OptionError(
                f"Plotting a {report.kind} report needs the ErrorMaps sink that saw its run: "
                "pass pinncheck._plot.error_maps() to the job's run(sinks=[...])."
            )
        return _maps_data(report, _result(report, maps))
    raise OptionError(f"pinncheck cannot plot a {report.kind!r} report.")


def error_maps(solves: bool = True) -> Any:
    """A new :class:`~pinncheck._maps.ErrorMaps` sink with the bins plots use. Pass it to a
    job's ``run(progress, sinks=[...])``, then give it with the report to :func:`save_plot`.
    ``solves``: also map a residual's "solves" measure (see ErrorMaps; not for ``verify`` or
    ``--any-residual`` runs, which do not test it).

    Its bins are those of the terminal failure map (:mod:`pinncheck._termmap`), whose sink a
    plot reuses when the CLI prints one, so that a plot looks the same whatever the output
    format."""
    from ._maps import ErrorMaps
    from ._termmap import PAIR_BINS, PROFILE_BINS

    return ErrorMaps(
        profile_bins=PROFILE_BINS,
        pair_bins=PAIR_BINS,
        worst=MARKED_WORST,
        solves=solves,
        lazy_counts=True,  # a plot shows where bins have points, not how many
    )


def _result(report: Any, maps: Any) -> Any:
    """The :class:`ErrorMapsResult` of ``maps`` (a sink or a result), titled by ``report``."""
    from ._results import quantities

    if getattr(maps, "stride", 1) == 0 or not getattr(maps, "largest", True):
        raise OptionError(
            "These error maps keep counts only (ErrorMaps(largest=False), the terminal map's): "
            "a plot needs the largest ratios; use pinncheck._plot.error_maps()."
        )
    if hasattr(maps, "quantities"):  # (a result already)
        return maps
    from ._maps import RunInfo

    o = report.options
    info = RunInfo(report.kind, _subject(report), o.dtype_name, o.n, o.seed, report.status)
    return maps.result(info, {q.name: q.status for q in quantities(report)}, counts=False)


def _subject(report: Any) -> str:
    if report.kind == "check":
        return str(report.expression)
    pdes = "; ".join(report.system.equations)
    return f"{report.target}  ({pdes})" if report.kind == "verify" else pdes


def _domain(report: Any) -> Any:
    return report.domain if report.kind == "check" else report.system.domain


def _title(report: Any) -> str:
    o = report.options
    lines = [_shorten(f"pinncheck {report.kind}  {_subject(report)}: {report.status.upper()}")]
    if report.kind != "check":
        lines.append(
            _shorten(", ".join(f"{k} = {v}" for k, v in report.system.solution_texts.items()))
        )
    lines.append(f"{o.dtype_name}, n = {o.n:,}, seed = {o.seed}, domain {_domain(report)}")
    return "\n".join(lines)


def _shorten(text: str, width: int = 240) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _singular_sets(report: Any) -> list[Any]:
    """The singular sets pinncheck warns about for this report: of the checked expression, or
    of the candidate solutions."""
    from ._singular import singular_sets

    exprs = [report.parsed] if report.kind == "check" else list(report.system.solutions.values())
    found = []
    for expr in exprs:
        try:
            found += singular_sets(expr, _domain(report))
        except Exception:  # a set that cannot be evaluated is only not drawn
            continue
    return found


def _not_a_solution(report: Any, name: str) -> bool:
    for e in getattr(report, "equations", []):
        if e.name == name:
            return bool(e.check_solution) and e.agreement == "pass" and e.solves == "fail"
    return False


def _maps_data(report: Any, result: Any) -> MapsData:
    import numpy as np

    from ._results import quantities

    sets = _singular_sets(report)
    statuses = {q.name: q.status for q in quantities(report)}
    series = []
    for q in result.quantities:
        series.append(q)
        if q.solves is not None and _not_a_solution(report, q.name):
            series.append(q.solves)
    d = len(result.variables)
    panels: list[Panel] = []
    from ._maps import sampled_points

    if d <= 2:
        for q in series:
            grid = q.profiles[0] if d == 1 else q.pairs[0]
            panels.append(_panel(q, grid, statuses, sets, result.variables))
        cols = min(2 if d == 1 else 3, len(panels))
        rows = -(-len(panels) // max(cols, 1))
    else:
        chosen = _projections(series)
        for q, pairs in zip(series, chosen, strict=True):
            for k, (a, b) in enumerate(pairs):
                grid = q.pair(result.variables[a], result.variables[b])
                panel = _panel(q, grid, statuses, sets, result.variables)
                if k:  # the quantity's first panel has the full title
                    panel.title = f"{q.name}, projected on ({', '.join(grid.variables)})"
                panels.append(panel)
        cols = min(MAX_PROJECTIONS, len(panels))  # (rows of three, the quantities in order)
        rows = -(-len(panels) // max(cols, 1))
    values = np.concatenate([p.ratio.ravel() for p in panels]) if panels else np.zeros(0)
    positive = values[np.isfinite(values) & (values > 0)]
    lo = min(1e-2, float(positive.min())) if positive.size else 1e-2
    hi = max(1e2, float(positive.max())) if positive.size else 1e2
    return MapsData(
        _title(report),
        panels,
        rows,
        cols,
        max(lo, LOWEST),
        min(hi, HIGHEST),
        d,
        stride=max(1, result.stride),
        sampled=sampled_points(result.n, result.stride),
    )


def _projections(series: list[Any]) -> list[list[tuple[int, int]]]:
    """The pairs of variables each series is drawn over, for three variables or more.

    Each series gets its most structured pair (:func:`~pinncheck._maps.ranked_pairs`, which
    puts first the pair along which its worst point stands out). A series that shows a
    problem (failing or undefined points, or a "not a solution" map) gets its next pairs too,
    up to :data:`MAX_PROJECTIONS` in all, in the series' order while the figure has at most
    :data:`PANEL_BUDGET` panels (or one per series, if there are more series)."""
    from ._maps import ranked_pairs

    ranked = [ranked_pairs(q) for q in series]
    chosen = [r[:1] for r in ranked]
    room = max(PANEL_BUDGET, len(series)) - len(series)
    for q, pairs, more in zip(series, chosen, ranked, strict=True):
        if q.failing or q.undefined or q.measure == "solves":
            extra = more[1:MAX_PROJECTIONS][:room]
            pairs += extra
            room -= len(extra)
    return chosen


def _panel(
    q: Any, grid: Any, statuses: dict[str, str], sets: list[Any], variables: tuple[str, ...]
) -> Panel:
    axes = [variables.index(v) for v in grid.variables]
    marked = [w for w in q.worst[:MARKED_WORST] if w.ratio > 0]  # no "worst" of zero errors
    worst = [tuple(w.point[a] for a in axes) for w in marked]
    if q.measure == "solves":
        title = f"{q.name}: NOT A SOLUTION (exact residual / its rounding bound)"
    else:
        status = statuses.get(q.name, q.status)
        title = f"{q.name}: {status.upper()}" if status else q.name
        if q.failing:
            title += f", {q.failing:,} of {q.count:,} points fail"
        if q.undefined:
            title += f", {q.undefined:,} undefined"
    edges, ratio, count, undefined = _coarsened(grid, q.count)
    drawn = (_singular_on(s, tuple(grid.variables), edges) for s in sets)
    return Panel(
        quantity=q.name,
        measure=q.measure,
        title=title,
        variables=tuple(grid.variables),
        edges=edges,
        ratio=ratio,
        undefined=undefined > 0,
        empty=count == 0,
        worst=worst,
        worst_ratio=[w.ratio for w in marked],
        singular=[s for s in drawn if s is not None],
    )


def _coarsened(grid: Any, points: int) -> tuple[tuple[np.ndarray, ...], Any, Any, Any]:
    """A 2-D grid's edges, largest ratios, counts and undefined counts, with blocks of bins
    merged (2x2, 4x4...) while the grid has more cells than ``points / MIN_PER_CELL``: a
    small run then shows cells with points in them rather than specks in an empty grid."""
    import numpy as np

    edges = tuple(e.double().numpy() for e in grid.edges)
    ratio = grid.max_ratio.double().numpy()
    count, undefined = grid.count.numpy(), grid.undefined.numpy()
    while (
        ratio.ndim == 2
        and ratio.size > points / MIN_PER_CELL
        and all(k % 2 == 0 and k > MIN_BINS for k in ratio.shape)
    ):
        a, b = ratio.shape[0] // 2, ratio.shape[1] // 2
        with np.errstate(invalid="ignore"):  # a block of empty bins stays NaN
            ratio = np.fmax.reduce(np.fmax.reduce(ratio.reshape(a, 2, b, 2), axis=3), axis=1)
        count = count.reshape(a, 2, b, 2).sum(axis=(1, 3))
        undefined = undefined.reshape(a, 2, b, 2).sum(axis=(1, 3))
        edges = tuple(e[::2] for e in edges)
    return edges, ratio, count, undefined


def _singular_on(sset: Any, variables: tuple[str, ...], edges: tuple[Any, ...]) -> Singular | None:
    """What a panel over ``variables`` shows of a singular set: only sets whose function uses
    no other variable (a projection would smear the others); None when it misses the panel."""
    import numpy as np
    import torch

    if not set(sset.variables) <= set(variables):
        return None
    axes = [np.linspace(e[0], e[-1], SINGULAR_GRID) for e in edges]
    mesh = np.meshgrid(*axes, indexing="ij")
    points = {v: torch.from_numpy(m.copy()) for v, m in zip(variables, mesh, strict=True)}
    g = sset.values(points).numpy()
    finite = np.isfinite(g)
    scale = float(np.abs(g[finite]).max()) if finite.any() else 1.0
    touches = []
    for level in sset.levels:
        dist = np.where(finite, np.abs(g - level), np.inf)
        k = np.unravel_index(np.argmin(dist), dist.shape)
        if dist[k] <= 1e-9 * max(scale, 1.0):
            touches.append(tuple(float(m[k]) for m in mesh))
    label = f"singular: {sset.node}"
    if len(variables) == 2:
        return Singular(label, sset.levels, touches, axes[0], axes[1], g)
    at = list(touches)
    x = axes[0]
    for level in sset.levels:
        s = np.sign(g - level)
        flips = np.nonzero(finite[:-1] & finite[1:] & (s[:-1] * s[1:] < 0))[0]
        for i in flips:  # the crossing, interpolated linearly
            g0, g1 = g[i] - level, g[i + 1] - level
            at.append((float(x[i] - g0 * (x[i + 1] - x[i]) / (g1 - g0)),))
    return Singular(label, sset.levels, sorted(set(at))) if at else None


def _probe_data(report: Any) -> ProbeData:
    import numpy as np

    from ._probe import _tolerance

    if report.coupling is None:  # the figure says why there is no matrix
        c = np.zeros((0, 0))
    else:
        c = np.array(report.coupling, dtype=np.float64)
    diag = np.diag(c).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = c / diag[:, None]
        off = np.where(np.eye(len(c), dtype=bool), 0.0, c)
        row = np.sqrt((np.nan_to_num(off, nan=0.0) ** 2).sum(axis=1)) / diag
    return ProbeData(
        relative=relative,
        row_ratio=row,
        tolerance=_tolerance(report.dtype),
        title=_probe_title(report),
        caption=_probe_caption(report),
    )


def _probe_title(r: Any) -> str:
    measured = "no Jacobian" if r.coupling is None else f"Jacobian on {len(r.coupling)} points"
    return (
        f"pinncheck probe {r.target} ({r.model_type}): {r.status.upper()}\n"
        f"{r.dtype}, n = {r.n}, seed = {r.seed}, {measured}"
    )


def _probe_caption(r: Any) -> str:
    if r.coupling is None:
        why = r.jacobian_note or "the model's output has no gradient with respect to its input"
        return f"The Jacobian was not measured: {why}."
    if r.jacobian_coupled:
        found = f"batch-coupled: off-diagonal mass {r.offdiag_ratio:.3g} of the diagonal"
    elif r.perturbation_coupled:
        found = "Jacobian diagonal, but changing single points moves others (detached coupling)"
    else:
        found = "pointwise: the Jacobian is diagonal"
    culprits = [c for c in r.culprits if c.problem == "batch coupling"]
    if culprits:
        names = ", ".join(
            c.display.replace("`", "'") + (" (seen)" if c.observed else "") for c in culprits
        )
        found += f". Culprit layers: {names}"
    elif not r.pointwise:
        found += ". No culprit layer named"
    return found + "."


def figure(report: Any, maps: Any = None) -> Figure:
    """The matplotlib :class:`~matplotlib.figure.Figure` of ``report`` (on the Agg canvas),
    to adjust before saving; ``maps`` as for :func:`save_plot`.

    An error-map figure has one ``Axes`` (``fig.axes[0]``), without axes of its own, whose
    data coordinates are inches from the figure's lower left corner: each panel is a box on it
    (see :mod:`pinncheck._drawing`). A probe figure has an ``Axes`` per panel."""
    from ._drawing import draw_maps, draw_probe

    data = plot_data(report, maps)
    if isinstance(data, ProbeData):
        return draw_probe(data)
    return draw_maps(data)


def _render(fig: Figure, fmt: str) -> bytes:
    import matplotlib

    buffer = io.BytesIO()
    # No dates or random ids in the file: the same report gives the same bytes.
    metadata: dict[str, Any] = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
    with matplotlib.rc_context({"svg.hashsalt": "pinncheck"}):
        fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()


def plot_png(report: Any, maps: Any = None) -> bytes:
    """The figure of ``report`` as PNG bytes (``maps`` as for :func:`save_plot`)."""
    return _render(figure(report, maps), "png")


def plot_svg(report: Any, maps: Any = None) -> str:
    """The figure of ``report`` as SVG text, to inline in an HTML page (``maps`` as for
    :func:`save_plot`)."""
    return _render(figure(report, maps), "svg").decode("utf-8")


def save_plot(report: Any, path: str | Path, maps: Any = None) -> Path:
    """Draw ``report`` into ``path``; the format follows its suffix (.png, .svg, .pdf).

    ``maps`` is the :class:`~pinncheck._maps.ErrorMaps` sink that saw the run (see
    :func:`error_maps`); a ``probe`` report needs none. Returns the path written.

    Raises:
        OptionError: a bad suffix, no matplotlib, nothing to draw, or the file cannot be
            written.
    """
    fmt = plot_format(path)
    data = _render(figure(report, maps), fmt)
    target = Path(path).expanduser()
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise OptionError(f"--plot: cannot write {path}: {exc.strerror or exc}.") from None
    return target


class PlotRequest:
    """A command's ``--plot PATH``: checked before the run, a sink during it, a file after.

    ``PlotRequest(None)`` asks for nothing (no sinks, nothing saved, matplotlib not
    imported). ``streams=False`` (probe) needs no sink: the report carries its data.
    """

    def __init__(self, path: str | None, *, streams: bool = True) -> None:
        self.path = path
        self.streams = streams
        self._maps: Any = None
        if path is not None:
            check_target(path)

    @property
    def wants_maps(self) -> bool:
        """Whether the plot needs the run's points (an error map, not a probe)."""
        return self.path is not None and self.streams

    @property
    def sinks(self) -> list[Any]:
        """What the run must feed: the error maps, when a plot of them is asked for."""
        if not self.wants_maps:
            return []
        if self._maps is None:
            self._maps = error_maps()
        return [self._maps]

    def sinks_with(self, others: list[Any], solves: bool = True) -> list[Any]:
        """The run's sinks: ``others`` (such as the terminal map's), plus the plot's own
        ErrorMaps (``solves``: see :func:`error_maps`) unless ``others`` has one that keeps
        the largest ratios, which the plot then reuses (one pass of the binning serves
        both)."""
        from ._maps import ErrorMaps

        if not self.wants_maps:
            return list(others)
        shared = next((s for s in others if isinstance(s, ErrorMaps) and s.largest), None)
        if shared is None:
            if self._maps is None:
                self._maps = error_maps(solves)
            return [*others, self._maps]
        self._maps = shared
        return list(others)

    def save(self, report: Any) -> Path | None:
        """Write the plot of ``report`` (the run that fed :attr:`sinks`); None when none was
        asked for."""
        if self.path is None:
            return None
        return save_plot(report, self.path, self._maps)


__all__ = [
    "FORMATS",
    "INSTALL",
    "MapsData",
    "Panel",
    "PlotRequest",
    "ProbeData",
    "Singular",
    "check_target",
    "error_maps",
    "figure",
    "plot_data",
    "plot_format",
    "plot_png",
    "plot_svg",
    "require_matplotlib",
    "save_plot",
]
