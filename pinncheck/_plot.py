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
import math
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
        raise OptionError(f"--plot {path} is a folder; give a file name ending in .png, .svg or .pdf.")
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


def plot_data(report: Any, maps: Any = None) -> Any:
    """The arrays that :func:`save_plot` draws for ``report``.

    For a ``probe`` report, a :class:`ProbeData` (``maps`` is not used). Raises
    :class:`OptionError` when there is nothing to draw (a probe whose Jacobian could not be
    measured).
    """
    if report.kind == "probe":
        return _probe_data(report)
    raise OptionError(f"pinncheck cannot plot a {report.kind!r} report.")


def _probe_data(report: Any) -> ProbeData:
    import numpy as np

    from ._probe import _tolerance

    if report.coupling is None:
        why = report.jacobian_note or "the model's output has no gradient with respect to its input"
        raise OptionError(f"--plot: the probe measured no Jacobian to draw ({why}).")
    c = report.coupling.to("cpu").double().numpy()
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
    return (
        f"pinncheck probe {r.target} ({r.model_type}): {r.status.upper()}\n"
        f"{r.dtype}, n = {r.n}, seed = {r.seed}, Jacobian on {len(r.coupling)} points"
    )


def _probe_caption(r: Any) -> str:
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


# Drawing -------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (no display, no pyplot)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _draw_probe(data: ProbeData) -> Figure:
    import numpy as np
    from matplotlib import colors

    b = len(data.relative)
    fig = _figure(10.5, 4.6)
    grid = fig.add_gridspec(1, 2, width_ratios=[1.15, 1.0])
    ax = fig.add_subplot(grid[0])
    off_mask = ~np.eye(b, dtype=bool)
    rel = np.where(off_mask, data.relative, np.nan)
    positive = rel[np.isfinite(rel) & (rel > 0)]
    hi = max(1.0, float(positive.max()) if positive.size else 1.0)
    lo = min(data.tolerance / 10, float(positive.min()) if positive.size else data.tolerance)
    norm = colors.LogNorm(vmin=lo, vmax=hi)
    cmap = _cmap("magma_r", under="white", bad=UNDEFINED)
    shown = np.where(np.isfinite(rel) & (rel == 0), lo / 10, rel)  # exact zeros: "under"
    image = ax.imshow(shown, cmap=cmap, norm=norm, interpolation="nearest")
    diag = np.ma.masked_where(off_mask, np.ones((b, b)))
    ax.imshow(diag, cmap=colors.ListedColormap([DIAGONAL]), interpolation="nearest")
    ax.set_xlabel("input point j")
    ax.set_ylabel("output point i")
    ax.set_title("|dy_i/dx_j| / |dy_i/dx_i| (diagonal in green)", fontsize=9)
    bar = fig.colorbar(image, ax=ax, extend="min", shrink=0.9)
    bar.set_label("off-diagonal coupling (white: exactly 0)")
    bar.ax.axhline(data.tolerance, color="black", lw=1.2)
    right = fig.add_subplot(grid[1])
    rows = np.arange(b)
    ratio = np.where(np.isfinite(data.row_ratio), data.row_ratio, np.nan)
    floor = data.tolerance / 100
    right.semilogy(rows, np.maximum(ratio, floor), "o-", ms=3, color="#7b2d8e", lw=1)
    right.axhline(data.tolerance, color="black", ls="--", lw=1, label="coupling tolerance")
    right.set_ylim(floor / 2, max(10 * data.tolerance, float(np.nanmax(ratio)) * 2 if np.isfinite(ratio).any() else 1))
    right.set_xlabel("output point i")
    right.set_ylabel("off-diagonal / diagonal (per point)")
    right.set_title("each point's coupling to the others (floor: exactly 0)", fontsize=9)
    right.legend(loc="upper right", fontsize=8)
    fig.suptitle(data.title, fontsize=10)
    fig.text(0.5, -0.02, data.caption, ha="center", va="top", fontsize=9, wrap=True)
    return fig


UNDEFINED = "#3cc8e6"
"""The colour of undefined (NaN or inf) values in every plot."""
DIAGONAL = "#2e8b57"
"""The colour of the probe matrix's diagonal."""


def _cmap(name: str, *, under: str | None = None, over: str | None = None, bad: str = UNDEFINED) -> Any:
    import matplotlib

    cmap = matplotlib.colormaps[name].copy()
    cmap.set_bad(bad)
    if under:
        cmap.set_under(under)
    if over:
        cmap.set_over(over)
    return cmap


def figure(report: Any, maps: Any = None) -> Figure:
    """The matplotlib :class:`~matplotlib.figure.Figure` of ``report`` (on the Agg canvas)."""
    data = plot_data(report, maps)
    if isinstance(data, ProbeData):
        return _draw_probe(data)
    raise OptionError(f"pinncheck cannot plot a {report.kind!r} report.")


def _render(fig: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    # No dates or random ids in the file: the same report gives the same bytes.
    metadata: dict[str, Any] = {"png": {}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "pinncheck", "pdf.compression": 6}):
        fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata, bbox_inches="tight")
    return buffer.getvalue()


def plot_png(report: Any, maps: Any = None) -> bytes:
    """The figure of ``report`` as PNG bytes (see :func:`save_plot`)."""
    return _render(figure(report, maps), "png")


def plot_svg(report: Any, maps: Any = None) -> str:
    """The figure of ``report`` as SVG text, ready to inline in an HTML page."""
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


__all__ = [
    "FORMATS",
    "INSTALL",
    "ProbeData",
    "check_target",
    "figure",
    "plot_data",
    "plot_format",
    "plot_png",
    "plot_svg",
    "require_matplotlib",
    "save_plot",
]
