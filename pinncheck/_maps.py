"""Error maps: where over the domain a derivative or equation fails, aggregated while the
chunks stream.

:class:`ErrorMaps` is a :class:`~pinncheck._pointwise.PointSink`. Per quantity it bins each
point's ratio ``r = |value - exact| / tolerance`` (``r <= 1`` passes) over every variable (a
1-D *profile*) and every pair of variables (a 2-D *grid*). Each bin holds the largest ratio,
the number of points, the number of failing points (``r > 1``) and the number of undefined
points (a non-finite value or exact value; never counted as agreement). The few worst points
are kept with their coordinates. For an equation, the ratio ``|exact| / reference`` of the
pointwise "is it a solution" test of ``residual`` is binned too (its :attr:`QuantityMap.solves`).

The counts, the worst points and the largest ratio of every failing bin are exact; the largest
ratio of a passing bin comes from a sample of about :data:`DEFAULT_SAMPLE` points, chosen by
their index in the run (see :class:`ErrorMaps`), which keeps the sink's cost a few percent of
the run's. Memory is bounded by the number of bins, whatever ``n``; the result does not depend
on the chunk size. The result (:class:`ErrorMapsResult`, defined with its parts in
:mod:`pinncheck._mapresult` and re-exported here) holds CPU tensors and plain Python values
only, and pickles.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from ._mapresult import (
    ErrorMapsResult,
    Grid,
    QuantityMap,
    RunInfo,
    WorstPoint,
    ranked_pairs,
    reduce_to,
)
from ._pointwise import ChunkView, Layout
from ._sample import sampled_blocks

DEFAULT_PROFILE_BINS = 200
"""Bins of each variable's 1-D profile."""
DEFAULT_PAIR_BINS = (64, 64)
"""Bins (along the pair's first, second variable) of each pair's 2-D grid."""
DEFAULT_WORST = 16
"""How many of the worst points each map keeps."""
DEFAULT_SAMPLE = 1 << 17
"""How many of a run's points (at most, rounded up to whole :data:`SAMPLE_BLOCK` blocks) the
largest ratios of passing bins are taken from, with each bin's first defined point: every
``stride``-th block, ``stride = ceil(n / sample)`` (see :class:`ErrorMaps`)."""
MAX_PAIR_CELLS = 1 << 20
"""The most 2-D bins kept over all pairs and quantities together: with many variables or
quantities, the pairs' bins are halved until they fit (down to 8 x 8)."""


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


@dataclass(frozen=True)
class _Skipped:
    """A chunk without a failing or undefined point, left out by a counts-only sink: its
    points are counted only if a map is asked for (see :meth:`ErrorMaps.result`)."""

    start: int
    stop: int


@dataclass(frozen=True)
class _Snapshot:
    """What the chunks merged so far tell a new chunk's partial (read in worker threads)."""

    floors: tuple[float, ...]  # per series: the ratio a point must beat to be among the worst
    # Per grid, (series, cells): where a series has no ratio yet (None: it has one everywhere).
    lacking: tuple[torch.Tensor | None, ...]


@dataclass(frozen=True)
class _Row:
    """One series' ratio over a chunk."""

    ratio: torch.Tensor  # at each point; -inf where undefined when ``careful``
    top: float  # its largest value over the defined points (-inf when none is defined)
    careful: bool  # computed point by point with undefined points marked (some may be)


class ErrorMaps:
    """A :class:`~pinncheck._pointwise.PointSink` that bins each quantity's ratio over the
    domain (see the module's docstring); pass it to a job's ``run(progress, sinks=[maps])``,
    then read :meth:`result`.

    ``profile_bins``: bins of the 1-D profile of a run of one variable. ``pair_bins``: bins of
    each pair's 2-D grid along its first and second variable (halved while the grids of all
    pairs and quantities would exceed :data:`MAX_PAIR_CELLS`); with two variables or more,
    each variable's profile is its first pair's grid reduced along the other variable, so it
    has that pair's bins. ``worst``: how many of the points of largest ratio each map keeps.
    ``sample``: about how many points the largest ratios of passing bins are taken from (see
    below). ``largest=False`` keeps the counts only (points, failing and undefined points per
    bin) and, for a quantity with failing points, its largest ratio: no largest ratio per bin
    (NaN) and no worst points, at a fraction of the cost (what the terminal map needs); it
    skips chunks with nothing to show (no failing or undefined point, as the verdict's ratios
    say) and counts their points, sampled again, only when :meth:`result` is asked for.
    ``solves``: also map each equation's "solves" ratio ``|exact| / reference`` (what
    ``residual`` tests to say whether the candidate solves the PDE; not for ``verify`` or
    ``--any-residual``). ``lazy_counts`` (with ``largest``; what plots use): a chunk with no
    failing and no undefined point, none of whose points lies in a bin where a quantity has
    no ratio yet (a bin without points, or one whose points so far are all undefined for it),
    is binned only where it is sampled (its largest ratios) and searched for worst points as
    usual; its points are counted, sampled again, only when :meth:`result` asks for exact
    counts. Until then each bin's ``count`` is a lower bound that is 0 exactly where the bin
    has no point; everything else in the result is as without it. (While some bin has no
    ratio, telling costs such a chunk its points' bins, not their counts. A bin undefined at
    every point of the run holds no chunk back: a chunk with a point there has an undefined
    point, so it is binned anyway.)

    The sink streams, at a cost of a few passes over a chunk's coordinates: the counts come
    from each point's bin (one ``bincount`` per grid, shared by the quantities), the failing
    and undefined points are found from the maxima of the verdict's ratios (a chunk without
    any costs nothing more), and so are the chunks that hold one of the worst points so far.
    A bin's largest ratio is exact wherever it fails (above 1: every failing point is
    binned). Below, it is the largest over a sample (:attr:`stride`): the run's blocks of
    :data:`SAMPLE_BLOCK` consecutive points (by index) whose number is a multiple of ``stride
    = ceil(n / sample)`` (every point up to ``n = sample``; :func:`sampled_points` says how
    many), and each bin's first point where the quantity is defined, so that no bin with a
    defined point is left without a ratio. A passing bin's largest ratio is then at most the
    exact one. The choice depends on the points' indices only (the points are independent
    draws), so the result does not depend on the chunk size.
    """

    def __init__(
        self,
        profile_bins: int = DEFAULT_PROFILE_BINS,
        pair_bins: tuple[int, int] = DEFAULT_PAIR_BINS,
        worst: int = DEFAULT_WORST,
        largest: bool = True,
        solves: bool = True,
        sample: int = DEFAULT_SAMPLE,
        lazy_counts: bool = False,
    ) -> None:
        if profile_bins < 1 or min(pair_bins) < 1 or worst < 0 or sample < 1:
            raise ValueError("bins and sample must be positive and worst not negative")
        self.largest = largest
        self.lazy_counts = lazy_counts
        self._points = 0  # the points merged so far, whether binned or skipped
        self.solves = solves
        self.sample = sample
        self.stride = 1
        """Passing bins' largest ratios come from one block of points in ``stride`` (set by
        start; see the class docstring)."""
        # Per series, the largest ratio (without largest: the largest failing ratio).
        self._top: list[float] = []
        # Without largest: the chunks (start, stop) left out for having nothing to show.
        self._skipped: list[tuple[int, int]] = []
        self.profile_bins = profile_bins
        self.pair_bins = (int(pair_bins[0]), int(pair_bins[1]))
        self.worst = worst
        self.layout: Layout | None = None
        self._series: list[tuple[int, str]] = []  # (quantity, measure)
        self._grids: list[_Binned] = []
        self._bins: list[int] = []  # per variable
        self._worst: list[list[_Worst]] = []
        self._offsets: dict[int, torch.Tensor] = {}  # by cells: each series' in (series, cells)
        # What partials read (in worker threads): replaced, never changed, by merge.
        self._snapshot = _Snapshot((), ())

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
        self.stride = max(1, -(-layout.n // self.sample))
        self._worst = [[] for _ in series]
        self._top = [-math.inf] * s
        self._skipped = []
        self._points = 0
        self._offsets = {g.cells: torch.arange(s)[:, None] * g.cells for g in self._grids}
        self._snapshot = _Snapshot(
            tuple(-math.inf for _ in series),
            tuple(torch.ones((s, g.cells), dtype=torch.bool) for g in self._grids)
            if self.largest
            else (),
        )

    def partial(self, view: ChunkView) -> Any:
        layout = self._layout()
        if len(view) == 0 or not self._series:
            return None
        view = _on_cpu(view)
        if not self.largest:
            if layout.resample is not None and self._quiet(view):
                return _Skipped(view.start, view.start + len(view))
            return self._partial_counts(view)
        m, n_series = len(view), len(self._series)
        snap = self._snapshot
        rows = self._rows(view)
        cells: list[torch.Tensor] | None = None
        if (
            self.lazy_counts
            and layout.resample is not None
            and all(r.top <= 1 and not r.careful for r in rows)
        ):  # nothing fails or is undefined: the counts can wait, unless a point would give a
            # bin its first ratio (see _lacks)
            if any(lack is not None for lack in snap.lacking):
                cells = self._all_cells(view.points)
            if cells is None or not self._lacks(cells, snap.lacking):
                return self._sampled_only(view, rows, snap, cells)
        if cells is None:
            cells = self._all_cells(view.points)
        fails = [_nonzero(r.ratio > 1) if r.top > 1 else None for r in rows]
        undefined = [_nonzero(r.ratio == -math.inf) if r.careful else None for r in rows]
        failing, bad = _flat(fails, m), _flat(undefined, m)
        counts = [
            (
                torch.bincount(cell, minlength=g.cells),
                _per_bin(g, cell, failing, n_series),
                _per_bin(g, cell, bad, n_series),
            )
            for g, cell in zip(self._grids, cells, strict=True)
        ]
        pieces = self._sampled(view.start, m)
        largest = self._largest(pieces, [_take(c, pieces) for c in cells], cells, rows, fails)
        fresh = [
            None if lack is None else self._first_points(cell, count, undefined_here, rows, lack)
            for cell, (count, _, undefined_here), lack in zip(
                cells, counts, snap.lacking, strict=True
            )
        ]
        worst = self._chunk_worst(view, rows, snap.floors)
        return counts, (largest, fresh, worst, [r.top for r in rows])

    def merge(self, partial: Any) -> None:
        if partial is None:
            return
        if isinstance(partial, _Skipped):
            self._skip(partial)
            return
        counts, rest = partial
        if self.largest:
            largest, fresh, worst, tops = rest
            for g, local, first in zip(self._grids, largest, fresh, strict=True):
                if first is not None:  # (before the chunk's largest ratios: which bins have
                    # none from the chunks before; the first defined point of a series in a
                    # bin is in the first chunk that has one)
                    at, values_there = first
                    flat = g.max_ratio.view(-1)
                    new = torch.nonzero(flat.index_select(0, at) == -math.inf).squeeze(1)
                    flat.index_copy_(0, at.index_select(0, new), values_there.index_select(0, new))
                if local is not None:
                    torch.maximum(g.max_ratio, local, out=g.max_ratio)
        if isinstance(counts, _Skipped):
            self._skip(counts)
        else:
            self._points += int(counts[0][0].sum())  # (every point lies in one bin of a grid)
            for g, (count, failing, undefined) in zip(self._grids, counts, strict=True):
                g.count += count
                if failing is not None:
                    g.failing += failing
                if undefined is not None:
                    g.undefined += undefined
        if not self.largest:
            self._top = [max(a, b) for a, b in zip(self._top, rest, strict=True)]
            return
        self._top = [max(a, b) for a, b in zip(self._top, tops, strict=True)]
        for kept, new_worst in zip(self._worst, worst, strict=True):
            kept.extend(new_worst)
            kept.sort(key=lambda w: (-w[0], w[1]))
            del kept[self.worst :]
        self._snapshot = self._snap()

    # -- the result ------------------------------------------------------------------------

    def result(
        self,
        info: RunInfo | None = None,
        statuses: Mapping[str, str] | None = None,
        counts: bool = True,
    ) -> ErrorMapsResult:
        """The maps aggregated so far (CPU tensors; the sink can go on). ``info`` titles the
        run; ``statuses`` gives each quantity's status by name (shown in titles).
        ``counts=False``: do not count the points of the chunks a ``lazy_counts`` sink left
        out (each bin's ``count`` is then a lower bound, 0 exactly where the bin has no
        point; a plot needs no more); they stay to be counted by a later call."""
        layout = self._layout()
        if counts or not self.largest:
            self._count_skipped()
        d = len(layout.variables)
        statuses = statuses or {}
        maps: dict[tuple[int, str], QuantityMap] = {}
        for s, (q, measure) in enumerate(self._series):
            grids = [self._grid(g, s) for g in self._grids]
            if d >= 2:
                pairs = tuple(grids)
                profiles = tuple(
                    reduce_to(next(g for g in pairs if j in g.axes), j) for j in range(d)
                )
            else:
                pairs, profiles = (), tuple(grids)
            first = profiles[0]
            name = layout.names[q]
            maps[(q, measure)] = QuantityMap(
                name=name,
                kind=layout.kinds[q],
                measure=measure,
                profiles=profiles,
                pairs=pairs,
                worst=tuple(WorstPoint(i, p, r, v, e) for r, i, p, v, e in self._worst[s]),
                count=self._points,
                failing=int(first.failing.sum()),
                undefined=int(first.undefined.sum()),
                max_ratio=self._top[s] if self._top[s] > -math.inf else math.nan,
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
            stride=self.stride if self.largest else 0,
        )

    def nbytes(self) -> int:
        """The bytes of the tensors the sink keeps between chunks (they do not grow with n)."""
        tensors = [t for g in self._grids for t in (g.max_ratio, g.count, g.failing, g.undefined)]
        tensors += [t for t in self._snapshot.lacking if t is not None]
        return sum(t.element_size() * t.numel() for t in tensors)

    # -- internals -------------------------------------------------------------------------

    def _snap(self) -> _Snapshot:
        """What the next partials read: the worst points' floors and where a series has no
        ratio yet."""
        floors = tuple(
            kept[-1][0] if self.worst and len(kept) == self.worst else -math.inf
            for kept in self._worst
        )
        lacking = []
        for g, before in zip(self._grids, self._snapshot.lacking, strict=True):
            lack = None if before is None else g.max_ratio == -math.inf
            lacking.append(lack if lack is not None and bool(lack.any()) else None)
        return _Snapshot(floors, tuple(lacking))

    def _sampled_only(
        self,
        view: ChunkView,
        rows: Sequence[_Row],
        snap: _Snapshot,
        cells: Sequence[torch.Tensor] | None,
    ) -> Any:
        """A lazy_counts sink's partial of a chunk whose counts wait: the largest ratios of
        its sampled points and its worst points (``cells``: its points' bins, if known)."""
        m = len(view)
        pieces = self._sampled(view.start, m)
        if cells is not None:
            sampled = [_take(c, pieces) for c in cells]
        else:
            sampled = self._all_cells([_take(p, pieces) for p in view.points]) if pieces else []
        largest = self._largest(pieces, sampled, None, rows, [None] * len(rows))
        worst = self._chunk_worst(view, rows, snap.floors)
        none: list[Any] = [None] * len(self._grids)  # (no bin gets its first ratio)
        return _Skipped(view.start, view.start + m), (largest, none, worst, [r.top for r in rows])

    @staticmethod
    def _lacks(cells: Sequence[torch.Tensor], lacking: Sequence[torch.Tensor | None]) -> bool:
        """Whether a point (in bins ``cells``) lies in a bin where some series has no ratio.

        Every bin with a defined point has a ratio (:meth:`_first_points`), so a bin without
        one is empty or undefined at every point so far, for that series; a chunk without an
        undefined point with a point there would give it its first ratio, so a lazy_counts
        sink bins it. A chunk with points in bins undefined at every point of the run has an
        undefined point, so such bins never keep a sink binning every chunk."""
        return any(
            lack is not None and bool(lack.any(0).index_select(0, cell).any())
            for cell, lack in zip(cells, lacking, strict=True)
        )

    def _skip(self, chunk: _Skipped) -> None:
        """Keep a chunk left out of the counts (next to the one before it, in one range)."""
        self._points += chunk.stop - chunk.start
        if self._skipped and self._skipped[-1][1] == chunk.start:
            self._skipped[-1] = (self._skipped[-1][0], chunk.stop)
        else:
            self._skipped.append((chunk.start, chunk.stop))

    def _sampled(self, start: int, m: int) -> list[tuple[int, int]]:
        """The chunk's sampled points, as ranges of positions: the run's blocks of
        :data:`SAMPLE_BLOCK` points whose number is a multiple of :attr:`stride` (all points
        when it is 1)."""
        if self.stride == 1:
            return [(0, m)]
        return sampled_blocks(start, m, self.stride, SAMPLE_BLOCK)

    def _largest(
        self,
        pieces: Sequence[tuple[int, int]],
        sampled_cells: Sequence[torch.Tensor],
        cells: Sequence[torch.Tensor] | None,
        rows: Sequence[_Row],
        fails: Sequence[torch.Tensor | None],
    ) -> list[torch.Tensor | None]:
        """Per grid, the largest ratio in each bin (series, cells) over the chunk's sampled
        points (at ``pieces``, in bins ``sampled_cells``) and failing points (in bins
        ``cells``, every point's; None when none fails): -inf where none; None when the
        chunk has none at all."""
        if not pieces and all(f is None for f in fails):
            return [None] * len(self._grids)
        sampled = torch.stack([_take(r.ratio, pieces) for r in rows]).view(-1) if pieces else None
        out: list[torch.Tensor | None] = []
        for k, g in enumerate(self._grids):
            local = torch.full((len(rows), g.cells), -math.inf, dtype=torch.float64)
            if sampled is not None:
                at = sampled_cells[k].long()[None, :] + self._offsets[g.cells]
                local.view(-1).scatter_reduce_(0, at.view(-1), sampled, reduce="amax")
            for s, (row, fail) in enumerate(zip(rows, fails, strict=True)):
                if fail is not None and cells is not None:  # every failing point
                    at = cells[k].index_select(0, fail).long()
                    local[s].scatter_reduce_(0, at, row.ratio.index_select(0, fail), "amax")
            out.append(local)
        return out

    def _first_points(
        self,
        cell: torch.Tensor,
        count: torch.Tensor,
        undefined: torch.Tensor | None,
        rows: Sequence[_Row],
        lacking: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Each series' first defined point of the chunk in each bin (``count`` points there,
        ``undefined`` per series) where that series has no ratio yet (``lacking``, as far as
        the snapshot knows): their places in (series, cells), flattened, and the ratios
        there. :meth:`merge` keeps those still without a ratio then, so that every bin with a
        defined point has a ratio, whatever the chunks."""
        wanted = lacking & (count > 0 if undefined is None else count > undefined)
        bins = torch.nonzero(wanted.any(0)).squeeze(1)
        if bins.numel() == 0:
            return None
        m, cells = len(cell), lacking.shape[1]
        if bool(lacking.all()):  # (nothing has a ratio yet: any point's bin may be wanted)
            at, where = torch.arange(m), cell.long()
        else:
            in_wanted = torch.zeros(cells, dtype=torch.bool).index_fill_(0, bins, True)
            at = _nonzero(in_wanted.index_select(0, cell))
            where = cell.index_select(0, at).long()

        def first_of(keep: torch.Tensor | None) -> torch.Tensor:
            """The first of the points ``at`` (those where ``keep``) in each of ``bins``."""
            pos, place = (at, where) if keep is None else (at[keep], where[keep])
            first = torch.full((cells,), m - 1, dtype=torch.int64)  # (where none: unread)
            return first.scatter_reduce_(0, place, pos, "amin", include_self=False)[bins]

        shared = first_of(None)  # the first point, defined wherever no row is careful
        values = torch.stack(
            [
                r.ratio.index_select(0, first_of(r.ratio[at] > -math.inf) if r.careful else shared)
                for r in rows
            ]
        )
        keep = wanted.index_select(1, bins)
        places = bins[None, :] + self._offsets[cells]
        return places[keep], values[keep]

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
                for g, cell in zip(self._grids, self._all_cells(pts), strict=True):
                    g.count += torch.bincount(cell, minlength=g.cells)
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

    def _all_cells(self, points: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each point's cell in each grid (row-major over the grid's axes; int32)."""
        layout = self._layout()
        fine = [
            _bin_index(points[j], layout.lows[j], layout.highs[j], b)
            for j, b in enumerate(self._bins)
        ]
        cells = []
        for g in self._grids:
            idx = fine[g.axes[0]]
            if len(g.axes) == 2:
                idx = torch.add(fine[g.axes[1]], idx, alpha=g.shape[1])
            cells.append(idx)
        return cells

    def _partial_counts(self, view: ChunkView) -> Any:
        """A chunk's counts per bin, and each series' largest ratio where a point fails."""
        n_series, m = len(self._series), len(view)
        cells = self._all_cells(view.points)
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
        failing = torch.cat(fails) if fails else None  # (once, for every grid)
        undefined_at = torch.cat(undefined) if undefined else None
        counts = [
            (
                torch.bincount(cell, minlength=g.cells),
                _per_bin(g, cell, failing, n_series),
                _per_bin(g, cell, undefined_at, n_series),
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

    def _rows(self, view: ChunkView) -> list[_Row]:
        """Each series' ratio at each point and its largest value: the verdict's, read off
        the view, where every point is defined; else computed again, carefully."""
        rows: list[_Row] = []
        solves: list[int] = []
        for q, measure in self._series:
            if measure == "error":  # the verdict's own ratio and its maximum (see ChunkView)
                rows.append(_Row(view.ratio[q], float(view.ratio_max[q]), False))
            else:
                solves.append(len(rows))
                rows.append(_Row(torch.div(view.exact[q].abs(), view.reference[q]), 0.0, False))
        if solves:  # one synchronisation for the solves rows' maxima and their bounds'
            tops = torch.stack(
                [
                    torch.stack([rows[s].ratio.amax(), view.reference[self._series[s][0]].amax()])
                    for s in solves
                ]
            ).tolist()
            for s, (r, den) in zip(solves, tops, strict=True):
                rows[s] = replace(rows[s], top=r if math.isfinite(den) else math.nan)
        # Where a quantity is undefined (the view counts those points) or a bound overflows,
        # the ratios are computed again, carefully.
        for s, (q, measure) in enumerate(self._series):
            if math.isnan(rows[s].top) or view.undefined[q]:
                ratio = self._ratio_row(view, q, measure)
                rows[s] = _Row(ratio, float(ratio.amax()), True)
        return rows

    def _chunk_worst(
        self, view: ChunkView, rows: Sequence[_Row], floors: Sequence[float]
    ) -> list[list[_Worst]]:
        """Each series' points of the chunk that can be among the run's worst: at most
        ``worst`` of them, largest ratio first, ties to the lowest index, so that merging the
        chunks in order keeps the run's. A series whose largest ratio in the chunk does not
        beat the worst points kept (all of earlier chunks, so of lower index: a tie loses)
        is not searched."""
        k = min(self.worst, len(view))
        cs: list[torch.Tensor] = []
        cp: list[torch.Tensor] = []
        cr: list[torch.Tensor] = []
        for s, (row, bar) in enumerate(zip(rows, floors, strict=True)):
            if k == 0 or not row.top > bar:
                continue
            ratio = row.ratio
            at = _nonzero(ratio > bar) if bar > -math.inf else None
            if at is None or at.numel() > 4 * k:  # many: the row's k largest, ties by index
                t = float(torch.topk(ratio, k).values[-1])
                at = torch.nonzero(ratio > max(bar, t)).squeeze(1)
                if t > bar:
                    ties = torch.nonzero(ratio == t).squeeze(1)[: k - at.numel()]
                    at = torch.sort(torch.cat([at, ties])).values
            cs.append(torch.full_like(at, s))
            cp.append(at)
            cr.append(ratio.index_select(0, at))
        if not cs:
            return [[] for _ in self._series]
        return self._worst_rows(view, torch.cat(cs), torch.cat(cp), torch.cat(cr))

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
SAMPLE_BLOCK = 4096
"""Points are sampled in blocks of this many consecutive indices (read at the memory's speed,
where single points scattered over a chunk are read at its latency; the points are
independent draws, so a block is as good a sample as any)."""
RECOUNT_BLOCK = 1 << 17
"""Points sampled again at a time when skipped chunks are counted."""


def sampled_points(n: int, stride: int) -> int:
    """How many of a run's ``n`` points the sample of :class:`ErrorMaps` with ``stride``
    holds (the blocks of :data:`SAMPLE_BLOCK` points whose number is a multiple of it; 0 for
    a stride of 0, a counts-only sink's)."""
    if stride < 1:
        return 0
    whole, rest = divmod(n, stride * SAMPLE_BLOCK)
    return whole * SAMPLE_BLOCK + min(rest, SAMPLE_BLOCK)


def _bin_index(x: torch.Tensor, lo: float, hi: float, bins: int) -> torch.Tensor:
    """Each coordinate's bin of ``bins`` equal bins over ``[lo, hi]`` (the upper end and
    anything outside clamped into the end bins), as int32, which is cheaper to pass than int64.

    The scaled coordinate is truncated, then clamped: where it is not negative, truncating is
    its floor, and a negative one ends in bin 0 either way. (A coordinate more than 2^31 bins
    outside the box would not convert; a run's points lie in its box.)"""
    scale = bins / (hi - lo) if hi > lo else 0.0
    scaled = torch.mul(x, scale) if lo == 0 else torch.sub(x, lo).mul_(scale)
    return scaled.to(torch.int32).clamp_(0, bins - 1)


def _take(t: torch.Tensor, pieces: Sequence[tuple[int, int]]) -> torch.Tensor:
    """The entries of ``t`` at ``pieces`` (ranges of positions), in order."""
    if len(pieces) == 1:
        return t[pieces[0][0] : pieces[0][1]]
    if not pieces:
        return t[:0]
    return torch.cat([t[a:b] for a, b in pieces])


def _flat(positions: Sequence[torch.Tensor | None], m: int) -> torch.Tensor | None:
    """Per-series positions in a chunk of ``m`` points as one tensor of ``series * m + i``."""
    parts = [p + s * m for s, p in enumerate(positions) if p is not None and p.numel()]
    return torch.cat(parts) if parts else None


def _per_bin(g: _Binned, cell: torch.Tensor, at: torch.Tensor | None, n_series: int) -> Any:
    """How many of the points ``at`` (``series * m + i``, see :func:`_flat`) lie in each of
    ``g``'s bins, per series (None when there are none)."""
    if at is None or at.numel() == 0:
        return None
    m = cell.numel()
    series = torch.div(at, m, rounding_mode="floor")
    where = series * g.cells + cell.index_select(0, at - series * m)
    return torch.bincount(where, minlength=n_series * g.cells).view(n_series, g.cells)


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


def _nonzero(mask: torch.Tensor) -> torch.Tensor:
    """The positions where a 1-D mask is true, in order.

    A mask that is mostly false is searched block by block: one reduction finds the blocks
    that hold a true entry, and only those are searched."""
    whole = mask.numel() // POSITION_BLOCK * POSITION_BLOCK
    if whole and mask.is_contiguous():
        blocks = mask[:whole].view(-1, POSITION_BLOCK)
        # A block's bytes read as 64-bit words: 8 flags a word, so the test is cheap.
        hit = torch.nonzero(blocks.view(torch.int64).any(1)).squeeze(1)
        if hit.numel() <= blocks.shape[0] // 8:
            inner = torch.nonzero(blocks.index_select(0, hit))
            head = hit.index_select(0, inner[:, 0]) * POSITION_BLOCK + inner[:, 1]
            tail = torch.nonzero(mask[whole:]).squeeze(1) + whole
            return torch.cat([head, tail])
    return torch.nonzero(mask).squeeze(1)


__all__ = [
    "DEFAULT_PAIR_BINS",
    "MAX_PAIR_CELLS",
    "ErrorMaps",
    "DEFAULT_PROFILE_BINS",
    "DEFAULT_SAMPLE",
    "DEFAULT_WORST",
    "ErrorMapsResult",
    "Grid",
    "QuantityMap",
    "RunInfo",
    "WorstPoint",
    "ranked_pairs",
    "sampled_points",
]
