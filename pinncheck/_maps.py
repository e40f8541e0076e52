"""Error maps: where over the domain a derivative or equation fails, aggregated while the
chunks stream.

:class:`ErrorMaps` is a :class:`~pinncheck._pointwise.PointSink`. Per quantity it bins each
point's ratio ``r = |value - exact| / tolerance`` (``r <= 1`` passes) over every variable (a
1-D *profile*) and every pair of variables (a 2-D *grid*). Each bin holds the largest ratio,
the number of points, the number of failing points (``r > 1``) and the number of undefined
points (a non-finite value or exact value; never counted as agreement). The few worst points
are kept with their coordinates. For an equation, the ratio ``|exact| / reference`` of the
pointwise "is it a solution" test of ``residual`` is binned too (its :attr:`QuantityMap.solves`).

Memory is bounded by the number of bins, whatever ``n``; the result does not depend on the
chunk size. The result (:class:`ErrorMapsResult`) holds CPU tensors and plain Python values
only, and pickles.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ._pointwise import ChunkView, Layout

DEFAULT_PROFILE_BINS = 200
"""Bins of each variable's 1-D profile."""
DEFAULT_PAIR_BINS = (64, 64)
"""Bins (along the pair's first, second variable) of each pair's 2-D grid."""
DEFAULT_WORST = 16
"""How many of the worst points each map keeps."""
FILTER_CELLS = 4096
"""Cells of the coarse grid over three variables or more that tells a chunk's points that
cannot raise any bin's largest ratio (see :meth:`ErrorMaps.partial`)."""
MAX_PAIR_CELLS = 1 << 20
"""The most 2-D bins kept over all pairs and quantities together: with many variables or
quantities, the pairs' bins are halved until they fit (down to 8 x 8)."""


@dataclass(frozen=True)
class Grid:
    """Binned statistics of one ratio over one variable (a profile) or two (a grid).

    Axis ``a`` of every array runs along ``variables[a]``; bin ``i`` of that axis holds the
    points with ``edges[a][i] <= x < edges[a][i + 1]`` (the last bin includes the domain's
    upper end). For a 2-D grid, ``max_ratio[i, j]`` is the bin ``i`` of ``variables[0]`` and
    ``j`` of ``variables[1]`` (transpose it for ``imshow``, whose first axis is vertical).
    """

    variables: tuple[str, ...]
    """One name (a profile) or two (a grid), as in the run's domain."""
    axes: tuple[int, ...]
    """The variables' positions in :attr:`ErrorMapsResult.variables`."""
    edges: tuple[torch.Tensor, ...]
    """Per axis, the ``bins + 1`` float64 bin edges, from the domain's lower to upper end."""
    max_ratio: torch.Tensor
    """float64, the largest ratio over the bin's defined points; NaN where the bin has no
    defined point; ``inf`` where an error met a zero tolerance."""
    count: torch.Tensor
    """int64, the number of sampled points in the bin (defined or not)."""
    failing: torch.Tensor
    """int64, the number of defined points with ratio > 1."""
    undefined: torch.Tensor
    """int64, the number of points where the value or the exact value is NaN or inf."""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.max_ratio.shape)

    def centers(self, axis: int = 0) -> torch.Tensor:
        """The bins' centres along ``axis`` (float64)."""
        e = self.edges[axis]
        return (e[:-1] + e[1:]) / 2


@dataclass(frozen=True)
class WorstPoint:
    """One of the points of largest ratio."""

    index: int
    """The point's index in the run (``0 .. n-1``; the run's seed reproduces it)."""
    point: tuple[float, ...]
    """Its coordinates, in :attr:`ErrorMapsResult.variables` order."""
    ratio: float
    """The measure's ratio there (``error / tolerance``, or ``|exact| / reference``)."""
    value: float
    """The value under test (autograd's or the user's)."""
    exact: float
    """The float64 reference."""


@dataclass(frozen=True)
class QuantityMap:
    """The maps of one derivative or equation's ratio.

    ``measure`` says which ratio: ``"error"`` is ``|value - exact| / tolerance`` (the
    agreement test: a point fails when it is above 1); ``"solves"`` (equations only) is
    ``|exact| / reference``, the exact residual against the float64 reference's own error
    bound, above 1 where the candidate is not a solution.
    """

    name: str
    """As in the report (``d2f/dx2``, ``u[1, 0]``, ``eq1``)."""
    kind: str
    """``"derivative"`` or ``"equation"``."""
    measure: str
    """``"error"`` or ``"solves"``."""
    profiles: tuple[Grid, ...]
    """One 1-D profile per variable, in :attr:`ErrorMapsResult.variables` order."""
    pairs: tuple[Grid, ...]
    """One 2-D grid per pair of variables ``(i, j)``, ``i < j``, in the order of
    ``itertools.combinations(range(d), 2)``; empty for one variable."""
    worst: tuple[WorstPoint, ...]
    """The points of largest ratio, largest first (ties: lower index first); undefined points
    are not among them."""
    count: int
    """Points seen."""
    failing: int
    """Defined points with ratio > 1."""
    undefined: int
    """Points where the value or the exact value is NaN or inf."""
    max_ratio: float
    """The largest ratio over the defined points (NaN when none is defined)."""
    solves: QuantityMap | None = None
    """For an equation's ``"error"`` map: the map of its ``"solves"`` ratio; else None."""
    status: str = ""
    """The report's status of the quantity (``pass``, ``fail``...), when the caller gave it."""

    def pair(self, a: str, b: str) -> Grid:
        """The grid of variables ``a`` and ``b`` (in either order; the axes keep the domain's
        order)."""
        for g in self.pairs:
            if set(g.variables) == {a, b}:
                return g
        raise KeyError(f"no grid of {a} and {b}")

    def profile(self, variable: str) -> Grid:
        for g in self.profiles:
            if g.variables == (variable,):
                return g
        raise KeyError(f"no profile of {variable}")


@dataclass(frozen=True)
class RunInfo:
    """What the run was, for titles: every field is a plain string or number."""

    command: str = ""
    """``check``, ``residual`` or ``verify``."""
    subject: str = ""
    """The expression, the PDE, or the user's residual target."""
    dtype: str = ""
    n: int = 0
    seed: int = 0
    status: str = ""
    """The run's overall status."""


@dataclass(frozen=True)
class ErrorMapsResult:
    """Everything an :class:`ErrorMaps` sink aggregated over one run."""

    variables: tuple[str, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    n: int
    """The number of points the run sampled."""
    quantities: tuple[QuantityMap, ...]
    """One ``"error"`` map per derivative or equation, in the run's layout order (a residual:
    the derivatives, then the equations). An equation's ``"solves"`` map is its
    :attr:`QuantityMap.solves`."""
    info: RunInfo = field(default_factory=RunInfo)

    def quantity(self, name: str) -> QuantityMap:
        for q in self.quantities:
            if q.name == name:
                return q
        raise KeyError(f"no map of {name}")


_Worst = tuple[float, int, tuple[float, ...], float, float]  # ratio, index, point, value, exact


@dataclass
class _Binned:
    """One grid's running state over every series at once (the first axis of each tensor)."""

    axes: tuple[int, ...]
    shape: tuple[int, ...]
    max_ratio: torch.Tensor  # (series, cells) float64, -inf where no defined point yet
    count: torch.Tensor  # (cells,) int64: points, whatever the series
    failing: torch.Tensor  # (series, cells) int64
    undefined: torch.Tensor  # (series, cells) int64

    @property
    def cells(self) -> int:
        return math.prod(self.shape)


EMPTY_SHARE = 1 / 8
"""While more of the filter's cells than this share hold an empty bin, chunks are filtered at
their merge (with the bins as they are then) instead of in their worker."""


@dataclass(frozen=True)
class _Skipped:
    """A chunk without a failing or undefined point, left out by a counts-only sink: its
    points are counted only if a map is asked for (see :meth:`ErrorMaps.result`)."""

    start: int
    stop: int


@dataclass(frozen=True)
class _Snapshot:
    """What a chunk's points are filtered with (see :meth:`ErrorMaps.partial`)."""

    filter: torch.Tensor  # (series, coarse cells): a lower bound of the bins' largest ratios
    empty_share: float  # the share of the coarse cells with an empty bin (for some series)
    worst: torch.Tensor  # (series, 1): the ratio a point must beat to be among the worst

    @staticmethod
    def empty_for(series: int, cells: int) -> _Snapshot:
        return _Snapshot(
            torch.full((series, cells), -math.inf, dtype=torch.float64),
            1.0,
            torch.full((series, 1), -math.inf, dtype=torch.float64),
        )


class ErrorMaps:
    """A :class:`~pinncheck._pointwise.PointSink` that bins each quantity's ratio over the
    domain (see the module's docstring); pass it to a job's ``run(progress, sinks=[maps])``,
    then read :meth:`result`.

    ``profile_bins``: bins of the 1-D profile of a run of one variable. ``pair_bins``: bins of
    each pair's 2-D grid along its first and second variable (halved while the grids of all
    pairs and quantities would exceed :data:`MAX_PAIR_CELLS`); with two variables or more,
    each variable's profile is its first pair's grid reduced along the other variable, so it
    has that pair's bins. ``worst``: how many of the points of largest ratio each map keeps.
    ``largest=False`` keeps the counts only (points, failing and undefined points per bin)
    and, for a quantity with failing points, its largest ratio: no largest ratio per bin
    (NaN) and no worst points, at a fraction of the cost (what the terminal map needs); it
    skips chunks with nothing to show (no failing or undefined point, as the verdict's ratios
    say) and counts their points, sampled again, only when :meth:`result` is asked for.
    ``solves``: also map each equation's "solves" ratio ``|exact| / reference`` (what
    ``residual`` tests to say whether the candidate solves the PDE; not for ``verify`` or
    ``--any-residual``).

    The sink streams. Per chunk, each ratio is computed once; the counts come from one
    ``bincount`` per grid; a point reaches the grids' largest ratios only when it is above a
    lower bound of the largest ratios of the bins it lies in (kept per cell of a coarse grid
    over all the variables, from the chunks merged before): once the bins have filled, few
    points are. Chunks that start while many bins are still empty are filtered at their merge
    instead, with the bins as they are then; the first is binned whole.
    """

    def __init__(
        self,
        profile_bins: int = DEFAULT_PROFILE_BINS,
        pair_bins: tuple[int, int] = DEFAULT_PAIR_BINS,
        worst: int = DEFAULT_WORST,
        largest: bool = True,
        solves: bool = True,
    ) -> None:
        if profile_bins < 1 or min(pair_bins) < 1 or worst < 0:
            raise ValueError("bins must be positive and worst not negative")
        self.largest = largest
        self.solves = solves
        self._top: list[float] = []  # without largest: per series, the largest failing ratio
        # Without largest: the chunks (start, stop) left out for having nothing to show.
        self._skipped: list[tuple[int, int]] = []
        self.profile_bins = profile_bins
        self.pair_bins = (int(pair_bins[0]), int(pair_bins[1]))
        self.worst = worst
        self.layout: Layout | None = None
        self._series: list[tuple[int, str]] = []  # (quantity, measure)
        self._grids: list[_Binned] = []
        self._bins: list[int] = []  # per variable
        self._coarse: list[int] = []  # per variable, the filter's cells
        self._worst: list[list[_Worst]] = []
        # What partials read (in worker threads): replaced, never changed, by merge.
        self._snapshot = _Snapshot.empty_for(0, 0)

    # -- the PointSink protocol ------------------------------------------------------------

    def start(self, layout: Layout) -> None:
        self.layout = layout
        series = [(q, "error") for q in range(len(layout.names))]
        if self.solves:
            series += [(q, "solves") for q, k in enumerate(layout.kinds) if k == "equation"]
        self._series = series
        s, d = len(series), len(layout.variables)
        bx, by = self.pair_bins
        pairs = list(itertools.combinations(range(d), 2))
        while pairs and s * len(pairs) * bx * by > MAX_PAIR_CELLS and min(bx, by) > 8:
            bx, by = max(8, bx // 2), max(8, by // 2)
        self.pair_bins = (bx, by)
        # Each variable's bins: the first variable's along pair_bins[0], the others' [1].
        self._bins = [bx] + [by] * (d - 1) if pairs else [self.profile_bins] * d
        if d <= 2:  # the filter is the one grid itself
            self._coarse = list(self._bins)
        else:
            side = max(1, int(FILTER_CELLS ** (1 / d) + 1e-9))
            self._coarse = [min(side, b) for b in self._bins]
        shapes: list[tuple[int, ...]] = list(pairs) if pairs else [(j,) for j in range(d)]
        self._grids = []
        for axes in shapes:
            shape = tuple(self._bins[a] for a in axes)
            cells = math.prod(shape)
            self._grids.append(
                _Binned(
                    axes,
                    shape,
                    torch.full((s, cells), -math.inf, dtype=torch.float64),
                    torch.zeros(cells, dtype=torch.int64),
                    torch.zeros((s, cells), dtype=torch.int64),
                    torch.zeros((s, cells), dtype=torch.int64),
                )
            )
        self._worst = [[] for _ in series]
        self._top = [-math.inf] * s
        self._skipped = []
        self._snapshot = _Snapshot.empty_for(s, math.prod(self._coarse))

    def partial(self, view: ChunkView) -> Any:
        layout = self._layout()
        if len(view) == 0 or not self._series:
            return None
        view = _on_cpu(view)
        if not self.largest:
            if layout.resample is not None and self._quiet(view):
                return _Skipped(view.start, view.start + len(view))
            return self._partial_counts(view)
        ratios, undefined, top = self._ratios(view)
        n_series = len(self._series)
        fine = [
            self._bin_index(view.points[j], layout.lows[j], layout.highs[j], b)
            for j, b in enumerate(self._bins)
        ]
        cells = [self._cells(g, fine) for g in self._grids]
        fs, fp = _positions(ratios > 1) if max(top) > 1 else (None, None)
        us, up = _positions(undefined) if undefined is not None else (None, None)

        def per_bin(
            g: _Binned, cell: torch.Tensor, s: torch.Tensor | None, p: torch.Tensor | None
        ) -> torch.Tensor | None:
            if s is None or p is None or s.numel() == 0:
                return None
            flat = s * g.cells + cell.index_select(0, p)
            return torch.bincount(flat, minlength=n_series * g.cells).view(n_series, g.cells)

        counts = [
            (
                torch.bincount(cell, minlength=g.cells),
                per_bin(g, cell, fs, fp),
                per_bin(g, cell, us, up),
            )
            for g, cell in zip(self._grids, cells, strict=True)
        ]
        snap = self._snapshot
        if snap.empty_share > EMPTY_SHARE:
            # Early chunks: most bins are still empty here, and perhaps not when this chunk is
            # merged: the merge picks the points that raise a bin with the bins it finds then.
            return counts, (view, ratios, top, fine, cells)
        picked = self._candidates(snap, ratios, fine, cells)
        return counts, (picked, self._chunk_worst(view, ratios, top, snap.worst))

    def merge(self, partial: Any) -> None:
        if partial is None:
            return
        if isinstance(partial, _Skipped):
            self._skipped.append((partial.start, partial.stop))
            return
        counts, rest = partial
        for g, (count, failing, undefined) in zip(self._grids, counts, strict=True):
            g.count += count
            if failing is not None:
                g.failing += failing
            if undefined is not None:
                g.undefined += undefined
        if not self.largest:
            self._top = [max(a, b) for a, b in zip(self._top, rest, strict=True)]
            return
        if len(rest) == 2:
            (cs, cp, cr, *cell_of), worst = rest
            for g, cell in zip(self._grids, cell_of, strict=True):
                g.max_ratio.view(-1).scatter_reduce_(0, cs * g.cells + cell, cr, reduce="amax")
        else:
            view, ratios, top, fine, cells = rest
            snap = self._snapshot
            if snap.empty_share > EMPTY_SHARE:  # every point
                n_series = ratios.shape[0]
                for g, cell in zip(self._grids, cells, strict=True):
                    index = cell.expand(n_series, -1)
                    g.max_ratio.scatter_reduce_(1, index, ratios, reduce="amax")
            else:
                cs, cp, cr, *cell_of = self._candidates(snap, ratios, fine, cells)
                for g, cell in zip(self._grids, cell_of, strict=True):
                    flat = cs * g.cells + cell
                    g.max_ratio.view(-1).scatter_reduce_(0, flat, cr, reduce="amax")
            worst = self._chunk_worst(view, ratios, top, snap.worst)
        floors = []
        for kept, new in zip(self._worst, worst, strict=True):
            kept.extend(new)
            kept.sort(key=lambda w: (-w[0], w[1]))
            del kept[self.worst :]
            floors.append(kept[-1][0] if len(kept) == self.worst and kept else -math.inf)
        self._snapshot = self._snap(torch.tensor(floors, dtype=torch.float64)[:, None])

    # -- the result ------------------------------------------------------------------------

    def result(
        self, info: RunInfo | None = None, statuses: Mapping[str, str] | None = None
    ) -> ErrorMapsResult:
        """The maps aggregated so far (CPU tensors; the sink can go on). ``info`` titles the
        run; ``statuses`` gives each quantity's status by name (shown in titles)."""
        layout = self._layout()
        self._count_skipped()
        d = len(layout.variables)
        statuses = statuses or {}
        maps: dict[tuple[int, str], QuantityMap] = {}
        for s, (q, measure) in enumerate(self._series):
            grids = [self._grid(g, s) for g in self._grids]
            if d >= 2:
                pairs = tuple(grids)
                profiles = tuple(
                    _reduce_to(next(g for g in pairs if j in g.axes), j) for j in range(d)
                )
            else:
                pairs, profiles = (), tuple(grids)
            first = profiles[0]
            defined = first.max_ratio[~torch.isnan(first.max_ratio)]
            name = layout.names[q]
            maps[(q, measure)] = QuantityMap(
                name=name,
                kind=layout.kinds[q],
                measure=measure,
                profiles=profiles,
                pairs=pairs,
                worst=tuple(WorstPoint(i, p, r, v, e) for r, i, p, v, e in self._worst[s]),
                count=int(first.count.sum()),
                failing=int(first.failing.sum()),
                undefined=int(first.undefined.sum()),
                max_ratio=(
                    (float(defined.max()) if defined.numel() else math.nan)
                    if self.largest
                    else (self._top[s] if self._top[s] > -math.inf else math.nan)
                ),
                status=statuses.get(name, "") if measure == "error" else "",
            )
        quantities = []
        for q in range(len(layout.names)):
            qm = maps[(q, "error")]
            if (q, "solves") in maps:
                qm = replace(qm, solves=maps[(q, "solves")])
            quantities.append(qm)
        return ErrorMapsResult(
            variables=tuple(layout.variables),
            lows=tuple(layout.lows),
            highs=tuple(layout.highs),
            n=layout.n,
            quantities=tuple(quantities),
            info=info or RunInfo(),
        )

    def nbytes(self) -> int:
        """The bytes of the tensors the sink keeps between chunks (they do not grow with n)."""
        snap = self._snapshot
        tensors = [snap.filter, snap.worst]
        for g in self._grids:
            tensors += [g.max_ratio, g.count, g.failing, g.undefined]
        return sum(t.element_size() * t.numel() for t in tensors)

    # -- internals -------------------------------------------------------------------------

    def _quiet(self, view: ChunkView) -> bool:
        """Whether no series has a failing or undefined point in the chunk (so a counts-only
        sink need not bin it now): read off the ratios' maxima the verdict computed, and for
        the solves measure one comparison."""
        for q, measure in self._series:
            if view.undefined[q]:
                return False
            if measure == "error":
                if view.ratio_max[q] > 1:
                    return False
            else:
                ref = view.reference[q]
                if bool((view.exact[q].abs() > ref).any()) or not bool(torch.isfinite(ref).all()):
                    return False
        return True

    def _count_skipped(self) -> None:
        """Count the points of the chunks that were skipped, sampled again (only the counts
        are missing: their points neither fail nor are undefined)."""
        layout = self._layout()
        if not self._skipped or layout.resample is None:
            return
        for a, b in self._skipped:
            for lo in range(a, b, RECOUNT_BLOCK):
                hi = min(b, lo + RECOUNT_BLOCK)
                pts = [p.cpu() for p in layout.resample(lo, hi)]
                fine = [
                    self._bin_index(pts[j], layout.lows[j], layout.highs[j], bins)
                    for j, bins in enumerate(self._bins)
                ]
                for g in self._grids:
                    g.count += torch.bincount(self._cells(g, fine), minlength=g.cells)
        self._skipped = []

    def _layout(self) -> Layout:
        if self.layout is None:
            raise RuntimeError("ErrorMaps.start was not called")
        return self.layout

    def _grid(self, g: _Binned, s: int) -> Grid:
        layout = self._layout()
        mx = g.max_ratio[s].clone()
        mx[mx == -math.inf] = math.nan
        edges = tuple(
            torch.linspace(layout.lows[a], layout.highs[a], b + 1, dtype=torch.float64)
            for a, b in zip(g.axes, g.shape, strict=True)
        )
        return Grid(
            variables=tuple(layout.variables[a] for a in g.axes),
            axes=g.axes,
            edges=edges,
            max_ratio=mx.view(g.shape),
            count=g.count.clone().view(g.shape),
            failing=g.failing[s].clone().view(g.shape),
            undefined=g.undefined[s].clone().view(g.shape),
        )

    def _cells(self, g: _Binned, fine: Sequence[torch.Tensor]) -> torch.Tensor:
        """Each point's cell in ``g`` (row-major over its axes)."""
        idx = fine[g.axes[0]]
        if len(g.axes) == 2:
            idx = idx * g.shape[1] + fine[g.axes[1]]
        return idx

    def _coarse_index(self, fine: Sequence[torch.Tensor]) -> torch.Tensor:
        """Each point's cell of the filter's coarse grid, from its bins."""
        coarse: torch.Tensor | None = None
        for f, b, c in zip(fine, self._bins, self._coarse, strict=True):
            if c == b:
                ci = f
            elif b % c == 0 and (b // c).bit_count() == 1:  # a power of two: a shift
                ci = torch.bitwise_right_shift(f, (b // c).bit_length() - 1)
            else:
                ci = torch.div(f * c, b, rounding_mode="floor")
            coarse = ci.clone() if coarse is None else coarse.mul_(c).add_(ci)
        assert coarse is not None
        return coarse

    def _candidates(
        self,
        snap: _Snapshot,
        ratios: torch.Tensor,
        fine: Sequence[torch.Tensor],
        cells: Sequence[torch.Tensor],
    ) -> tuple[torch.Tensor, ...]:
        """The (series, point, ratio) of the points above their coarse cell's bound (so that
        may raise a bin's largest ratio), and their cell in each grid."""
        m, n_series = ratios.shape[1], ratios.shape[0]
        held = torch.gather(snap.filter, 1, self._coarse_index(fine).expand(n_series, -1))
        cs, cp = _positions(ratios > held)
        cr = ratios.view(-1).index_select(0, cs * m + cp)
        return (cs, cp, cr, *[c.index_select(0, cp) for c in cells])

    def _snap(self, worst: torch.Tensor) -> _Snapshot:
        """The filter of the grids as merged so far, and the worst points' floor."""
        bounds = self._lower_bounds()
        empty = (bounds == -math.inf).any(0)
        return _Snapshot(bounds, float(empty.sum()) / max(1, empty.numel()), worst)

    @staticmethod
    def _bin_index(x: torch.Tensor, lo: float, hi: float, bins: int) -> torch.Tensor:
        """Each coordinate's bin of ``bins`` equal bins over ``[lo, hi]`` (the upper end and
        anything outside clamped into the end bins)."""
        scale = bins / (hi - lo) if hi > lo else 0.0
        return torch.sub(x, lo).mul_(scale).floor_().clamp_(0, bins - 1).to(torch.int64)

    def _lower_bounds(self) -> torch.Tensor:
        """Per series and coarse cell, the smallest largest ratio of the bins a point of the
        cell lies in (the filter of :meth:`partial`)."""
        d, n_series = len(self._bins), len(self._series)
        if d <= 2:  # a copy: merge changes the grid in place
            return self._grids[0].max_ratio.clone()
        joint = torch.full((n_series, *self._coarse), math.inf, dtype=torch.float64)
        for g in self._grids:
            i, j = g.axes
            ci, cj = self._coarse[i], self._coarse[j]
            fi = torch.arange(g.shape[0]) * ci // g.shape[0]
            fj = torch.arange(g.shape[1]) * cj // g.shape[1]
            to_coarse = (fi[:, None] * cj + fj[None, :]).flatten().expand(n_series, -1)
            low = torch.full((n_series, ci * cj), math.inf, dtype=torch.float64)
            low.scatter_reduce_(1, to_coarse, g.max_ratio, reduce="amin")
            shape = [n_series] + [1] * d
            shape[1 + i], shape[1 + j] = ci, cj
            joint = torch.minimum(joint, low.view(shape))
        return joint.view(n_series, -1)

    def _partial_counts(self, view: ChunkView) -> Any:
        """A chunk's counts per bin, and each series' largest ratio where a point fails."""
        layout = self._layout()
        n_series, m = len(self._series), len(view)
        fine = [
            self._bin_index(view.points[j], layout.lows[j], layout.highs[j], b)
            for j, b in enumerate(self._bins)
        ]
        cells = [self._cells(g, fine) for g in self._grids]
        fails: list[torch.Tensor] = []
        undefined: list[torch.Tensor] = []
        top = [-math.inf] * n_series
        pairs = [
            (view.error[q], view.tolerance[q])
            if measure == "error"
            else (view.exact[q].abs(), view.reference[q])
            for q, measure in self._series
        ]
        # Finite maxima: every value and tolerance is finite, and the comparison is the test
        # (one synchronisation for all the quantities).
        summary = torch.stack(
            [torch.stack([num.amax() + den.amax(), (num > den).any()]) for num, den in pairs]
        ).tolist()
        for s, (num, den) in enumerate(pairs):
            edge, over = summary[s]
            if math.isfinite(edge):
                if over:
                    bad = torch.nonzero(num > den).squeeze(1)
                    top[s] = float((num.index_select(0, bad) / den.index_select(0, bad)).amax())
                    fails.append(bad + s * m)
                continue
            ratio = self._ratio_row(view, *self._series[s])
            ok = ratio > -math.inf
            bad = torch.nonzero(ratio > 1).squeeze(1)
            if bad.numel():
                top[s] = float(ratio.index_select(0, bad).amax())
            fails.append(bad + s * m)
            undefined.append(torch.nonzero(~ok).squeeze(1) + s * m)

        def per_bin(g: _Binned, cell: torch.Tensor, flat: list[torch.Tensor]) -> Any:
            at = torch.cat(flat) if flat else torch.empty(0, dtype=torch.int64)
            if at.numel() == 0:
                return None
            series = torch.div(at, m, rounding_mode="floor")
            where = series * g.cells + cell.index_select(0, at - series * m)
            return torch.bincount(where, minlength=n_series * g.cells).view(n_series, g.cells)

        counts = [
            (
                torch.bincount(cell, minlength=g.cells),
                per_bin(g, cell, fails),
                per_bin(g, cell, undefined),
            )
            for g, cell in zip(self._grids, cells, strict=True)
        ]
        return counts, top

    def _ratio_row(self, view: ChunkView, q: int, measure: str) -> torch.Tensor:
        """One series' ratio at each point, -inf where it is undefined (the careful way)."""
        e = view.exact[q]
        ok = torch.isfinite(e)
        if measure == "error":
            ok &= torch.isfinite(view.values[q])
            num, den = view.error[q], view.tolerance[q]
        else:
            num, den = e.abs(), view.reference[q]
        # A tolerance that overflows allows nothing (as in the verdict); 0/0 is no error.
        den = torch.where(torch.isfinite(den), den, torch.zeros_like(den))
        r = torch.div(num, den).nan_to_num_(nan=0.0, posinf=math.inf)
        return torch.where(ok, r, torch.full_like(r, -math.inf))

    def _ratios(self, view: ChunkView) -> tuple[torch.Tensor, torch.Tensor | None, list[float]]:
        """Each series' ratio at each point (-inf where undefined), where it is undefined
        (None when it is defined everywhere), and each series' largest ratio."""
        m = len(view)
        ratios = torch.empty((len(self._series), m), dtype=torch.float64)
        top: list[float] = []
        solves: list[int] = []
        for s, (q, measure) in enumerate(self._series):
            if measure == "error":  # the verdict's own ratio and its maximum (see ChunkView)
                ratios[s].copy_(view.ratio[q])
                top.append(float(view.ratio_max[q]))
            else:
                torch.div(view.exact[q].abs(), view.reference[q], out=ratios[s])
                solves.append(s)
                top.append(math.nan)
        if solves:  # one synchronisation for the solves rows' maxima and their bounds'
            rows = torch.stack(
                [
                    torch.stack([ratios[s].amax(), view.reference[self._series[s][0]].amax()])
                    for s in solves
                ]
            ).tolist()
            for s, (r, den) in zip(solves, rows, strict=True):
                top[s] = r if math.isfinite(den) else math.nan
        # Where a quantity is undefined (the view counts those points) or a bound overflows,
        # the ratios are computed again, carefully.
        bad = [s for s, r in enumerate(top) if math.isnan(r) or view.undefined[self._series[s][0]]]
        if not bad:
            return ratios, None, top
        undefined = torch.zeros((len(self._series), m), dtype=torch.bool)
        for s in bad:
            ratios[s] = self._ratio_row(view, *self._series[s])
            undefined[s] = ratios[s] == -math.inf
            top[s] = float(ratios[s].amax())
        return ratios, undefined, top

    def _chunk_worst(
        self,
        view: ChunkView,
        ratios: torch.Tensor,
        top: list[float],
        floor: torch.Tensor,
    ) -> list[list[_Worst]]:
        """Each series' points of the chunk that can be among the run's worst: at most
        ``worst`` of them, largest ratio first, ties to the lowest index, so that merging the
        chunks in order keeps the run's."""
        out: list[list[_Worst]] = [[] for _ in self._series]
        # Earlier chunks' points have lower indices: a tie with their k-th point loses.
        bars = floor.view(-1).tolist()
        k = min(self.worst, ratios.shape[1])
        if k == 0 or all(t <= b for t, b in zip(top, bars, strict=True)):
            return out
        m = ratios.shape[1]
        above = ratios > floor
        cs, cp = _positions(above)
        if cs.numel() > 4 * k * len(top) and m >= k * POSITION_BLOCK:
            # Early chunks: the k-th largest of the blocks' maxima is at most the k-th largest
            # ratio, so every point of the k largest is at least that.
            whole = m // POSITION_BLOCK * POSITION_BLOCK
            blocks = ratios[:, :whole].reshape(len(top), -1, POSITION_BLOCK).amax(2)
            above &= ratios >= torch.topk(blocks, k, dim=1).values[:, -1:]
            cs, cp = _positions(above)
        counts = torch.bincount(cs, minlength=len(top)).tolist()
        heavy = [s for s, c in enumerate(counts) if c > 4 * k]
        if heavy:  # many ties: the row's k largest, the first ties by index
            light = ~torch.isin(cs, torch.tensor(heavy))
            rows, points = [cs[light]], [cp[light]]
            for s in heavy:
                bar, row = bars[s], ratios[s]
                t = float(torch.topk(row, k).values[-1])
                first = torch.nonzero(row > max(bar, t)).squeeze(1)
                if t > bar:
                    ties = torch.nonzero(row == t).squeeze(1)[: k - first.numel()]
                    first = torch.sort(torch.cat([first, ties])).values
                rows.append(torch.full_like(first, s))
                points.append(first)
            cs, cp = torch.cat(rows), torch.cat(points)
        cr = ratios.view(-1).index_select(0, cs * m + cp)
        return self._worst_rows(view, cs, cp, cr)

    def _worst_rows(
        self, view: ChunkView, cs: torch.Tensor, cp: torch.Tensor, cr: torch.Tensor
    ) -> list[list[_Worst]]:
        """The worst ``worst`` of the candidates (series, point, ratio), per series."""
        out: list[list[_Worst]] = [[] for _ in self._series]
        # Order by series, then by ratio (largest first); a stable sort keeps ties by index.
        order = torch.sort(cr, descending=True, stable=True)[1]
        order = order[torch.sort(cs[order], stable=True)[1]]
        cs, cp, cr = cs[order], cp[order], cr[order]
        starts = torch.searchsorted(cs, torch.arange(len(self._series) + 1))
        for s, (q, measure) in enumerate(self._series):
            a, b = int(starts[s]), int(starts[s + 1])
            idx = cp[a : min(b, a + self.worst)]
            if idx.numel() == 0:
                continue
            pts = torch.stack([p[idx] for p in view.points], 1).tolist()
            values = (view.values[q] if measure == "error" else view.exact[q])[idx].tolist()
            exact = view.exact[q][idx].tolist()
            ratio = cr[a : a + idx.numel()].tolist()
            for r, i, p, v, e in zip(ratio, idx.tolist(), pts, values, exact, strict=True):
                out[s].append((r, view.start + i, tuple(p), v, e))
        return out


POSITION_BLOCK = 1024
RECOUNT_BLOCK = 1 << 17
"""Points sampled again at a time when skipped chunks are counted."""


def _on_cpu(view: ChunkView) -> ChunkView:
    """The view with its tensors on the CPU, where the sink keeps its bins."""
    if not view.points or view.points[0].device.type == "cpu":
        return view

    def cpu(ts: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [t.cpu() for t in ts]

    return replace(
        view,
        points=cpu(view.points),
        values=cpu(view.values),
        exact=cpu(view.exact),
        error=cpu(view.error),
        tolerance=cpu(view.tolerance),
        reference=cpu(view.reference),
        ratio=cpu(view.ratio),
    )


def _positions(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (series, point) positions where a (series, points) mask is true, in order.

    A mask that is mostly false is searched block by block: one reduction finds the blocks
    that hold a true entry, and only those are searched."""
    m = mask.shape[1]
    flat = mask.view(-1)
    whole = flat.numel() // POSITION_BLOCK * POSITION_BLOCK
    found = None
    if whole and flat.is_contiguous():
        blocks = flat[:whole].view(-1, POSITION_BLOCK)
        # A block's bytes read as 64-bit words: 8 flags a word, so the test is cheap.
        hit = torch.nonzero(blocks.view(torch.int64).any(1)).squeeze(1)
        if hit.numel() <= blocks.shape[0] // 8:
            inner = torch.nonzero(blocks.index_select(0, hit))
            head = hit.index_select(0, inner[:, 0]) * POSITION_BLOCK + inner[:, 1]
            tail = torch.nonzero(flat[whole:]).squeeze(1) + whole
            found = torch.cat([head, tail])
    if found is None:
        found = torch.nonzero(flat).squeeze(1)
    series = torch.div(found, m, rounding_mode="floor")
    return series, found - series * m


def _reduce_to(g: Grid, axis_var: int) -> Grid:
    """A pair's grid reduced to the profile of one of its variables (position ``axis_var``)."""
    a = g.axes.index(axis_var)
    other = 1 - a
    mx = g.max_ratio.nan_to_num(nan=-math.inf, posinf=math.inf).amax(other)
    mx[mx == -math.inf] = math.nan
    return Grid(
        variables=(g.variables[a],),
        axes=(axis_var,),
        edges=(g.edges[a],),
        max_ratio=mx,
        count=g.count.sum(other),
        failing=g.failing.sum(other),
        undefined=g.undefined.sum(other),
    )


def _contrast(max_ratio: torch.Tensor) -> float:
    """How much a map's largest bin stands out: log10(max / median) over its defined bins."""
    v = max_ratio[torch.isfinite(max_ratio)].flatten()
    inf = bool(torch.isinf(max_ratio).any())
    if v.numel() == 0:
        return math.inf if inf else 0.0
    tiny = 1e-300
    top = math.inf if inf else float(v.max())
    return math.log10(max(top, tiny)) - math.log10(max(float(v.median()), tiny))


def ranked_pairs(qmap: QuantityMap) -> list[tuple[int, int]]:
    """The pairs of variables (positions, ``i < j``) ordered from the most structure to the
    least, for showing a run of three or more variables in a few 2-D projections.

    First comes the pair of the two variables along which the worst point stands out most
    (the contrast of their 1-D profiles: the largest bin, where the worst point lies,
    against the median bin); the other pairs follow by the contrast of their 2-D grid of
    largest ratios (ties keep the domain's order).
    """
    d = len(qmap.profiles)
    if d < 2:
        return []
    local = sorted(range(d), key=lambda a: (-_contrast(qmap.profiles[a].max_ratio), a))
    first = (min(local[0], local[1]), max(local[0], local[1]))
    rest = [g.axes for g in qmap.pairs if g.axes != first]
    contrast = {g.axes: _contrast(g.max_ratio) for g in qmap.pairs}
    rest.sort(key=lambda p: -contrast[p])
    return [first, *[(p[0], p[1]) for p in rest]]


__all__ = [
    "DEFAULT_PAIR_BINS",
    "MAX_PAIR_CELLS",
    "ErrorMaps",
    "DEFAULT_PROFILE_BINS",
    "DEFAULT_WORST",
    "ErrorMapsResult",
    "Grid",
    "QuantityMap",
    "RunInfo",
    "WorstPoint",
    "ranked_pairs",
]
