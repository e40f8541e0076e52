"""Drawing pinncheck's figures with matplotlib (imported only here, only when drawing).

:mod:`pinncheck._plot` gathers what a figure shows (:class:`~pinncheck._plot.MapsData`,
:class:`~pinncheck._plot.ProbeData`); this module draws it on matplotlib's Agg canvas.

An error-map figure is drawn on one canvas: a single matplotlib ``Axes`` that fills the figure,
has no axis of its own and whose data coordinates are inches from the figure's lower left
corner. Each panel is a box on it; its images, markers, frame, ticks and labels are placed
there by :class:`_Box`, which maps the panel's variables (and a profile's log scale) to
inches. One ``Axes`` per panel, each with its tick machinery, cost about 0.1 s of building and
rendering a 9-panel figure (0.34 s; 0.24 s on one canvas); the plot is drawn after the run,
so that time adds to it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ._plot import MapsData, Panel, ProbeData

# Drawing ---------------------------------------------------------------------------------------

UNDEFINED = "#f2b701"
"""The colour of undefined values (NaN or inf) in every plot."""
EMPTY = "#d9d9d9"
"""The colour of bins without a sampled point (outside a --where region)."""
DIAGONAL = "#b2182b"
"""The colour of the probe matrix's diagonal."""
ERROR_CMAP = "RdBu_r"
"""Error maps: blue passes, white is the tolerance (ratio 1), red fails."""


def _figure(width: float, height: float, constrained: bool = True) -> Figure:
    """A figure on the Agg canvas (no display, no pyplot), with matplotlib's constrained
    layout or none (the caller places the axes)."""
    from ._plot import require_matplotlib

    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def _cmap(name: str, bad: Any, under: str | None = None) -> Any:
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad=bad, under=under)


def draw_probe(data: ProbeData) -> Figure:
    import numpy as np
    from matplotlib import colors

    b = len(data.relative)
    if b == 0:
        fig = _figure(7.0, 2.0)
        fig.suptitle(_wrapped(data.title, fig), fontsize=10)
        fig.supxlabel(_wrapped(data.caption, fig), fontsize=9)
        return fig
    fig = _figure(10.5, 4.6)
    left, right = fig.subplots(1, 2, width_ratios=[1.2, 1.0])
    off_mask = ~np.eye(b, dtype=bool)
    rel = np.where(off_mask, data.relative, np.nan)
    positive = rel[np.isfinite(rel) & (rel > 0)]
    hi = max(1.0, float(positive.max()) if positive.size else 1.0)
    lo = min(data.tolerance / 10, float(positive.min()) if positive.size else data.tolerance)
    norm = colors.LogNorm(vmin=lo, vmax=hi)
    cmap = _cmap("Blues", bad=UNDEFINED, under="white")
    # Exact zeros (a pointwise model's off-diagonal) fall below the scale: white.
    shown = np.where(off_mask & (data.relative == 0), lo / 10, np.where(off_mask, data.relative, 1))
    image = left.imshow(shown, cmap=cmap, norm=norm, interpolation="nearest")
    diagonal = np.ma.masked_where(off_mask, np.ones((b, b)))
    left.imshow(diagonal, cmap=colors.ListedColormap([DIAGONAL]), interpolation="nearest")
    left.set_xlabel("input point j")
    left.set_ylabel("output point i")
    left.set_title("|dy_i/dx_j| / |dy_i/dx_i|; diagonal in red, undefined in gold", fontsize=9)
    bar = fig.colorbar(image, ax=left, extend="min", shrink=0.9)
    bar.set_label("off-diagonal coupling (white: exactly 0)")
    bar.ax.axhline(data.tolerance, color="black", lw=1.5)
    rows = np.arange(b)
    ratio = np.where(np.isfinite(data.row_ratio), data.row_ratio, np.nan)
    floor = data.tolerance / 100
    right.semilogy(rows, np.maximum(ratio, floor), "o-", ms=3, color="#2166ac", lw=1)
    right.axhline(data.tolerance, color="black", ls="--", lw=1, label="coupling tolerance")
    top = float(np.nanmax(ratio)) if np.isfinite(ratio).any() else 0.0
    right.set_ylim(floor / 2, max(10 * data.tolerance, 2 * top))
    right.set_xlabel("output point i")
    right.set_ylabel("off-diagonal / diagonal")
    right.set_title("each point's coupling to the others (bottom: exactly 0)", fontsize=9)
    right.legend(loc="upper right", fontsize=8)
    fig.suptitle(_wrapped(data.title, fig), fontsize=10)
    fig.supxlabel(_wrapped(data.caption, fig), fontsize=9)
    return fig


# Error maps are laid out by hand (no layout engine): matplotlib's constrained layout measured
# every tick label of every panel, twice per save, which was most of a figure's cost. Sizes in
# inches.
PANEL_2D = (3.7, 3.2)
"""Width and height of a 2-D panel's cell (its plot, their labels and its title)."""
PANEL_1D = (4.6, 2.9)
"""...and of a 1-D panel's."""
BAR_WIDTH = 1.45
"""The colour bar's strip on the right: the bar, its tick labels and its label."""
LEGEND_HEIGHT = 0.42
"""The legend's strip at the bottom."""
TITLE_LINE, PANEL_TITLE_LINE = 0.19, 0.155
"""The height of a line of the figure's title (10 pt) and of a panel's (8.5 pt)."""
PAD_LEFT, PAD_RIGHT, PAD_BOTTOM = 0.62, 0.18, 0.5
"""A panel's plot inside its cell: room for the tick labels and the axis labels."""
PT = 1 / 72
"""A point, in inches."""
TICK, TICK_PAD, TICK_SIZE, LABEL_SIZE = 3 * PT, 2 * PT, 7.5, 9
"""Tick marks' length and the gap to their labels; tick labels' and axis labels' font sizes."""
CHAR = 0.6
"""A character's width, in font sizes (DejaVu Sans digits are 0.64 em; room to spare)."""


def _text_width(chars: int) -> float:
    """Inches taken by a tick label of ``chars`` characters (an estimate: no text is laid
    out to place the axis labels beside them)."""
    return chars * CHAR * TICK_SIZE * PT


class _Box:
    """A panel's plot on the canvas: its lower left corner ``(x0, y0)``, width ``w`` and height
    ``h`` in inches, and the map from the panel's variables to them (linear, or log10 for a
    ``log`` vertical axis)."""

    def __init__(
        self,
        corner: tuple[float, float],
        size: tuple[float, float],
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        log: bool = False,
    ) -> None:
        (self.x0, self.y0), (self.w, self.h) = corner, size
        self.log = log
        self.xlim = xlim
        self.ylim = (math.log10(ylim[0]), math.log10(ylim[1])) if log else ylim

    @property
    def extent(self) -> tuple[float, float, float, float]:
        return (self.x0, self.x0 + self.w, self.y0, self.y0 + self.h)

    def x(self, v: Any) -> Any:
        """Inches of horizontal position(s) ``v`` (in the panel's first variable)."""
        import numpy as np

        lo, hi = self.xlim
        return self.x0 + self.w * (np.asarray(v, dtype=float) - lo) / (hi - lo)

    def y(self, v: Any) -> Any:
        """Inches of vertical position(s) ``v`` (a variable, or a ratio on a log axis)."""
        import numpy as np

        v = np.asarray(v, dtype=float)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.log10(v)
        lo, hi = self.ylim
        return self.y0 + self.h * (v - lo) / (hi - lo)

    def inside(self, x: float, y: float) -> bool:
        x0, x1, y0, y1 = self.extent
        return x0 - 1e-9 <= x <= x1 + 1e-9 and y0 - 1e-9 <= y <= y1 + 1e-9


Cell = tuple[tuple[float, float], tuple[float, float]]
"""A panel's plot on the canvas: its lower left corner and its size, in inches."""


class _Canvas:
    """The figure's one ``Axes`` in inches, the colour scale its panels share (``norm``,
    ``cmap``), and the lines (frames and ticks) gathered to be drawn as one collection."""

    def __init__(self, fig: Figure, width: float, height: float, norm: Any, cmap: Any) -> None:
        self.norm, self.cmap = norm, cmap
        self.ax: Axes = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        self.ax.set_axis_off()
        self.ax.set_autoscale_on(False)
        self.ax.set_xlim(0.0, width)
        self.ax.set_ylim(0.0, height)
        self.lines: list[list[tuple[float, float]]] = []

    def text(self, x: float, y: float, s: str, size: float, **kw: Any) -> None:
        self.ax.text(x, y, s, fontsize=size, **kw)

    def frame(self, box: _Box) -> None:
        x0, x1, y0, y1 = box.extent
        self.lines.append([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)])

    def xticks(self, box: _Box, values: list[float], labels: list[str]) -> None:
        for v, label in zip(values, labels, strict=True):
            x = float(box.x(v))
            self.lines.append([(x, box.y0), (x, box.y0 - TICK)])
            self.text(x, box.y0 - TICK - TICK_PAD, label, TICK_SIZE, ha="center", va="top")

    def yticks(
        self, box: _Box, values: list[float], labels: list[str], right: bool = False
    ) -> None:
        side = box.x0 + box.w if right else box.x0
        out = TICK if right else -TICK
        for v, label in zip(values, labels, strict=True):
            y = float(box.y(v))
            self.lines.append([(side, y), (side + out, y)])
            gap = out + (TICK_PAD if right else -TICK_PAD)
            align = "left" if right else "right"
            self.text(side + gap, y, label, TICK_SIZE, ha=align, va="center")

    def labels(self, box: _Box, xlabel: str, ylabel: str, ywidth: int) -> None:
        """Axis labels outside the tick labels (``ywidth``: the longest y tick label's
        characters)."""
        below = box.y0 - TICK - TICK_PAD - 1.25 * TICK_SIZE * PT - PT
        self.text(box.x0 + box.w / 2, below, xlabel, LABEL_SIZE, ha="center", va="top")
        left = box.x0 - TICK - TICK_PAD - _text_width(ywidth) - 3 * PT
        self.text(
            left, box.y0 + box.h / 2, ylabel, LABEL_SIZE, ha="right", va="center", rotation=90
        )

    def finish(self) -> None:
        """Draw the gathered frames and ticks (one collection, above the images)."""
        from matplotlib.collections import LineCollection

        self.ax.add_collection(
            LineCollection(self.lines, colors="black", linewidths=0.8, zorder=2.5),
            autolim=False,
        )


def _nice_ticks(lo: float, hi: float) -> list[float]:
    """At most four round values in ``[lo, hi]`` (steps of 1, 2, 2.5 or 5 times a power of
    ten): fewer labels to lay out and draw; the domain's bounds are in the figure's title."""
    from matplotlib.ticker import MaxNLocator

    values = MaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    slack = 1e-9 * (hi - lo)
    return [float(v) for v in values if lo - slack <= v <= hi + slack]


def _tick_labels(values: list[float]) -> list[str]:
    """Labels of round tick values with the fewest digits that tell them apart exactly (all
    with the same number of decimals; scientific notation outside 10^-3 .. 10^5)."""
    if not values:
        return []
    top = max(abs(v) for v in values)
    if top == 0:
        return ["0" for _ in values]
    scientific = not 1e-3 <= top < 1e5
    scale = 10.0 ** math.floor(math.log10(top)) if scientific else 1.0
    for digits in range(13):
        if all(abs(round(v / scale, digits) - v / scale) <= 1e-9 * top / scale for v in values):
            break
    if scientific:
        power = math.floor(math.log10(top))
        return [f"{v / scale:.{digits}f}e{power}" if v else "0" for v in values]
    return [f"{abs(v) if v == 0 else v:.{digits}f}" for v in values]  # (no "-0.0")


def draw_maps(data: MapsData) -> Figure:
    from matplotlib import colors
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    one = data.dimensions == 1
    pw, ph = PANEL_1D if one else PANEL_2D
    width = max(6.5, pw * data.cols + BAR_WIDTH)
    pw = (width - BAR_WIDTH) / data.cols  # (a single panel takes the width the title needs)
    note = data.note()
    title = _wrap(data.title + (f"\n{note}" if note else ""), width, 10)
    title_h = TITLE_LINE * (title.count("\n") + 1) + 0.15
    heads = [_wrap(p.title, pw - PAD_RIGHT, 8.5) for p in data.panels]
    head_h = PANEL_TITLE_LINE * max((h.count("\n") + 1 for h in heads), default=1) + 0.12
    height = title_h + ph * data.rows + LEGEND_HEIGHT
    fig = _figure(width, height, constrained=False)
    fig.suptitle(title, y=1 - 0.08 / height, va="top", fontsize=10)
    low, high = math.log10(data.lo), math.log10(data.hi)
    norm = colors.TwoSlopeNorm(vmin=low, vcenter=0.0, vmax=high)
    canvas = _Canvas(fig, width, height, norm, _cmap(ERROR_CMAP, bad=(0.0, 0.0, 0.0, 0.0)))
    for k, (panel, head) in enumerate(zip(data.panels, heads, strict=True)):
        row, col = divmod(k, data.cols)
        cell = (
            (col * pw + PAD_LEFT, height - title_h - (row + 1) * ph + PAD_BOTTOM),
            (pw - PAD_LEFT - PAD_RIGHT, ph - PAD_BOTTOM - head_h),
        )
        box = (_draw_profile if one else _draw_grid)(canvas, cell, panel, data)
        canvas.frame(box)
        top = box.y0 + box.h + 4 * PT
        canvas.text(box.x0 + box.w / 2, top, head, 8.5, ha="center", va="bottom")
    bottom = LEGEND_HEIGHT + PAD_BOTTOM
    _draw_bar(canvas, data, (width - (BAR_WIDTH - 0.12), bottom), height - title_h - head_h)
    canvas.finish()
    handles = [
        Patch(color=UNDEFINED, label="undefined (NaN or inf)"),
        Line2D([], [], marker="*", ls="", mfc="white", mec="black", ms=9, label="worst points"),
    ]
    if not one:
        handles.insert(1, Patch(color=EMPTY, label="no sampled point"))
    if any(p.singular for p in data.panels):
        handles.append(Line2D([], [], color="black", ls=":", lw=1.5, label="singular set"))
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.02 / height),
        ncols=len(handles),
        fontsize=8,
        frameon=False,
    )
    return fig


def _draw_bar(canvas: _Canvas, data: MapsData, corner: tuple[float, float], top: float) -> None:
    """The colour bar: ratios on the shared scale, 1 (the tolerance) marked, an arrow at an
    end where some ratio lies beyond the scale."""
    import numpy as np
    from matplotlib.patches import Polygon

    norm, cmap = canvas.norm, canvas.cmap
    x0, y0 = corner
    box = _Box(corner, (0.16, top - y0), (0.0, 1.0), (0.0, 1.0))
    ramp = np.linspace(0.0, 1.0, 256)[:, None]
    canvas.ax.imshow(
        ramp,
        cmap=cmap,
        extent=box.extent,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        vmin=0.0,
        vmax=1.0,
    )
    canvas.frame(box)
    values = np.concatenate([p.ratio.ravel() for p in data.panels])
    tip = 0.05 * box.h
    x1, y1 = x0 + box.w, y0 + box.h
    if ((values > 0) & (values < data.lo)).any():  # (exact zeros are no clipping)
        corners = [(x0, y0), (x1, y0), (x0 + box.w / 2, y0 - tip)]
        canvas.ax.add_patch(Polygon(corners, closed=True, color=cmap(0.0), lw=0))
        canvas.lines.append([*corners, corners[0]])
    if (values > data.hi).any():
        corners = [(x0, y1), (x1, y1), (x0 + box.w / 2, y1 + tip)]
        canvas.ax.add_patch(Polygon(corners, closed=True, color=cmap(1.0), lw=0))
        canvas.lines.append([*corners, corners[0]])
    low, high = math.log10(data.lo), math.log10(data.hi)
    ticks = [0, *_decades(high), *(-t for t in _decades(-low))]
    labels = [_power(t) if t else "1 = tolerance" for t in ticks]
    canvas.yticks(box, [float(norm(t)) for t in ticks], labels, right=True)
    middle = float(box.y(float(norm(0.0))))
    canvas.ax.plot([x0, x1], [middle, middle], color="black", lw=2, zorder=2.6)
    longest = max(len(label) for label in labels)
    right = x1 + TICK + TICK_PAD + _text_width(longest) + 4 * PT
    canvas.text(
        right,
        y0 + box.h / 2,
        "|error| / tolerance (largest per bin)",
        LABEL_SIZE,
        ha="left",
        va="center",
        rotation=90,
    )


def _wrap(text: str, width: float, size: float) -> str:
    """``text`` with each line wrapped to ``width`` inches at a font of ``size`` points."""
    return _fill(text, max(20, int(width * 72 / (0.56 * size))))


def _wrapped(text: str, fig: Figure) -> str:
    """``text`` with each line wrapped to the figure's width (a title must not be cut off)."""
    return _fill(text, max(40, int(fig.get_figwidth() * 12)))


def _fill(text: str, chars: int) -> str:
    """Each line of ``text`` wrapped to ``chars`` characters."""
    import textwrap

    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


SUPERSCRIPTS = str.maketrans(
    "-0123456789", "".join(map(chr, (0x207B, 0x2070, 0xB9, 0xB2, 0xB3, *range(0x2074, 0x207A))))
)
"""Digits and minus sign as superscripts, for 10 to a power as plain text in figures (never
printed to a console, so no ASCII stand-in): matplotlib's mathtext parser, which
``$10^{k}$`` needs, cost a process's first figure about 0.15 s of CPU."""


def _power(k: int) -> str:
    """``10`` to the power ``k``, in superscript characters (e.g. ``10⁻³``)."""
    return "10" + str(k).translate(SUPERSCRIPTS)


def _decades(span: float, most: int = 4) -> list[int]:
    """Whole decades ``1 .. span`` to label on one side of the colour bar: at most ``most``,
    evenly spaced (each side of ratio 1 has half the bar, however many decades it spans)."""
    top = math.floor(span + 1e-9)
    step = max(1, math.ceil(top / most))
    return list(range(step, top + 1, step))


def _log_ratio(ratio: np.ndarray, data: MapsData) -> np.ndarray:
    """log10 of the ratio, clipped to the colour scale (0 and tiny ratios at its bottom)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.clip(ratio, data.lo, data.hi))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The runs of consecutive true entries of a 1-D mask, as (first, past the last)."""
    import numpy as np

    padded = np.concatenate([[False], mask.astype(bool), [False]])
    flips = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(flips[::2].tolist(), flips[1::2].tolist(), strict=True))


def _draw_profile(canvas: _Canvas, cell: Cell, panel: Panel, data: MapsData) -> _Box:
    import numpy as np
    from matplotlib.patches import Rectangle

    ax, norm, cmap = canvas.ax, canvas.norm, canvas.cmap
    (edges,) = panel.edges
    box = _Box(*cell, (float(edges[0]), float(edges[-1])), (data.lo / 2, data.hi * 2), log=True)
    x0, x1, y0, y1 = box.extent
    one = float(box.y(1.0))
    ax.add_patch(Rectangle((x0, one), box.w, y1 - one, color="#fddbc7", alpha=0.6, lw=0))
    for mask, colour in ((panel.undefined, UNDEFINED), (panel.empty, EMPTY)):
        for a, b in _runs(mask):  # one span per run of bins
            left, right = box.x(edges[a]), box.x(edges[b])
            ax.add_patch(Rectangle((left, y0), right - left, box.h, color=colour, lw=0, zorder=1))
    shown = np.clip(panel.ratio, data.lo, data.hi)
    ax.stairs(box.y(shown), box.x(edges), baseline=None, color="0.55", lw=0.8, zorder=2)
    centres = (edges[:-1] + edges[1:]) / 2
    shade = _log_ratio(panel.ratio, data)
    ax.scatter(box.x(centres), box.y(shown), c=shade, cmap=cmap, norm=norm, s=9, zorder=3)
    ax.plot([x0, x1], [one, one], color="black", ls="--", lw=1, zorder=2)
    canvas.text(x0, one, " tolerance", 7, va="bottom")
    for (x,), r in zip(panel.worst, panel.worst_ratio, strict=True):
        y = box.y(min(max(r, data.lo), data.hi))
        ax.plot(box.x(x), y, marker="*", mfc="white", mec="black", ms=10, zorder=4)
    for s in panel.singular:
        for (x,) in s.at:
            if box.inside(float(box.x(x)), y0):
                ax.plot([box.x(x)] * 2, [y0, y1], color="black", ls=":", lw=1.5, zorder=2)
    decades = range(math.ceil(math.log10(data.lo)), math.floor(math.log10(data.hi)) + 1)
    step = max(1, math.ceil(len(decades) / 6))
    shown_decades = list(decades[::step])
    ylabels = [_power(k) for k in shown_decades]
    canvas.yticks(box, [10.0**k for k in shown_decades], ylabels)
    xs = _nice_ticks(*box.xlim)
    canvas.xticks(box, xs, _tick_labels(xs))
    ylabel = "|error| / tolerance" if panel.measure == "error" else "|exact| / bound"
    canvas.labels(box, panel.variables[0], ylabel, max(map(len, ylabels), default=1))
    return box


def _draw_grid(canvas: _Canvas, cell: Cell, panel: Panel, data: MapsData) -> _Box:
    import numpy as np
    from matplotlib import colors
    from matplotlib.patches import Rectangle

    ax, norm, cmap = canvas.ax, canvas.norm, canvas.cmap
    ex, ey = panel.edges
    box = _Box(*cell, (float(ex[0]), float(ex[-1])), (float(ey[0]), float(ey[-1])))
    ax.add_patch(Rectangle((box.x0, box.y0), box.w, box.h, color=EMPTY, lw=0, zorder=0))
    # One image per panel (the bins are equal): SVG and PDF embed it at the bins' resolution.
    image: dict[str, Any] = dict(
        origin="lower", extent=box.extent, aspect="auto", interpolation="none"
    )
    ax.imshow(_log_ratio(panel.ratio, data).T, cmap=cmap, norm=norm, **image)
    if panel.undefined.any():
        undefined = np.ma.masked_where(~panel.undefined.T, np.ones(panel.undefined.T.shape))
        ax.imshow(undefined, cmap=colors.ListedColormap([UNDEFINED]), **image)
    clip = Rectangle((box.x0, box.y0), box.w, box.h, transform=ax.transData)
    for s in panel.singular:
        if s.g is not None and len(s.levels):
            g = np.ma.masked_invalid(s.g.T)
            if g.count() and g.min() < max(s.levels) and g.max() > min(s.levels):
                lines = ax.contour(
                    box.x(s.x),
                    box.y(s.y),
                    g,
                    levels=sorted(s.levels),
                    colors="black",
                    linestyles=":",
                    linewidths=1.5,
                )
                lines.set_clip_path(clip)
        for x, y in s.at:
            if box.inside(float(box.x(x)), float(box.y(y))):
                ax.plot(box.x(x), box.y(y), marker="+", color="black", ms=10, mew=1.5)
    for i, (x, y) in enumerate(panel.worst):
        size_ = 13 if i == 0 else 9
        ax.plot(box.x(x), box.y(y), marker="*", mfc="white", mec="black", ms=size_, mew=1, zorder=4)
    xs, ys = _nice_ticks(*box.xlim), _nice_ticks(*box.ylim)
    ylabels = _tick_labels(ys)
    canvas.xticks(box, xs, _tick_labels(xs))
    canvas.yticks(box, ys, ylabels)
    canvas.labels(box, panel.variables[0], panel.variables[1], max(map(len, ylabels), default=1))
    return box
