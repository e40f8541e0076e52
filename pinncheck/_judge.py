"""Judging a chunk: each point's tolerance from rounding, its error's ratio to it, and where
the full running error bound is computed (docs/tolerances.md, "Where the bound is computed").

:func:`judge_chunk` is called by the engine (:mod:`pinncheck._engine`) once per chunk, after
both sides' values; :func:`judge_sample` once per run, after the last chunk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

import numpy as np
import torch

from ._bounds import UNIT_ROUNDOFF, run_bounded
from ._compare import VAGUE_FRACTION, ErrorStats, Probe, Tolerance, _abs_max, _argmax
from ._pointwise import ratios_of

if TYPE_CHECKING:
    from ._engine import Programs


REFERENCE_SAFETY = 2.0
"""The float64 reference's error is taken as this many times its first-order running bound."""
BOUND_STRIDE = 64
"""Runs of more than :data:`ALL_BOUNDS_UP_TO` points compute the full running error bound at
every point whose verdict could depend on it, and at a sample of the others: one point in this
many (fewer in long runs, see :func:`sample_stride`), the run's first ones by global index, so
chunking changes nothing (each point is drawn independently, so the first ones are as random a
sample as any); see :func:`judge_chunk` and :func:`judge_sample`."""
ALL_BOUNDS_UP_TO = 1 << 16
SAMPLE_CAP = 1 << 13
"""Long runs widen the sample's stride so that it holds at most about this many points."""
DENSE_SHARE = 8
"""Where more than 1/this of a chunk's points get the full bound, their ratios are computed
again over the whole chunk (cheaper than gathering and scattering them)."""


def sample_stride(n_total: int) -> int:
    """The bound sample takes one point in this many."""
    return max(BOUND_STRIDE, -(-n_total // SAMPLE_CAP))


def sample_size(n_total: int) -> int:
    """How many of the run's first points make up the bound sample."""
    return -(-n_total // sample_stride(n_total))


def sample_span(start: int, m: int, n_total: int) -> tuple[int, int] | None:
    """The global indices ``[lo, hi)`` of the bound sample among the points ``start ..
    start+m-1`` (None: none of them)."""
    hi = min(start + m, sample_size(n_total))
    return (start, hi) if hi > start else None


def every_point_bounded(n_total: int, u: float, tols: Sequence[Tolerance]) -> bool:
    """Whether a run computes the full bound at every point (see :func:`judge_chunk`)."""
    return (
        n_total <= ALL_BOUNDS_UP_TO or u > UNIT_ROUNDOFF["float32"] or any(t.override for t in tols)
    )


def floor_scales(
    progs: Programs, tols: Sequence[Tolerance], u: float, n_total: int
) -> list[float] | None:
    """What the exact program scales the structural lower bounds by, so that they come out as
    tolerances' lower bounds ``K*L`` (None: the run has no use for that, see
    :func:`judge_chunk`)."""
    if not progs.floors or every_point_bounded(n_total, u, tols):
        return None
    return progs.floors.scales(u, [t.factor for t in tols[: len(progs.terms)]])


def judge_chunk(
    progs: Programs,
    pts64: list[torch.Tensor],
    ex: list[torch.Tensor],
    ag: list[torch.Tensor],
    sizes: Sequence[torch.Tensor | None],
    tols: list[Tolerance],
    u: float,
    start: int,
    n_total: int,
    kept: Sequence[torch.Tensor] = (),
    prescaled: bool = False,
) -> tuple[list[Judged], BoundSample | None]:
    """Each quantity's tolerance, reference error bound and error ``|autograd - exact|`` at
    every point of the chunk, the ratio of the two and its largest value; and the chunk's part
    of the run's bound sample (None where every point has its full bound, or where the chunk
    holds none of the sample).

    The running bound B of a value v is at least ``u*|v|`` (its last rounding; for a residual,
    ``u*sum|term|``), so ``K*u*|v|`` is a lower bound of the model's tolerance ``K*B``; so is
    ``K*L`` for a term's structural lower bound L (:mod:`pinncheck._floors`, which sees
    cancellation inside the formula). A point whose error is below half of the larger passes
    for certain, whatever B is, and its verdict needs no bound. The full bound (several times
    the cost of the exact values) is computed only at the other points (at all points of small
    runs, coarse dtypes and tolerance overrides).
    Elsewhere the lower bounds stand in; the reference error and the ill-conditioning reported
    also come from a sample of them, judged once per run (:func:`judge_sample`). The model's
    reference bound is then ``REFERENCE_SAFETY*u64/(K*u)`` times the tolerance at every point,
    returned as that number rather than as a tensor.

    ``kept`` are the structural bounds' sums from the exact program; ``prescaled``: they are
    ``K*L`` already (the program was built with :func:`floor_scales`).
    """
    to_ref = REFERENCE_SAFETY * UNIT_ROUNDOFF["float64"] / u
    errs: list[torch.Tensor]
    ratios: list[torch.Tensor]
    full = every_point_bounded(n_total, u, tols)
    if full:
        errs = [torch.sub(a, e).abs_() for a, e in zip(ag, ex, strict=True)]
        bounds = _bounds_at(progs, pts64, ex[: len(progs.terms)], u)
        allowed_full: list[torch.Tensor] = []
        references = []
        floors: list[torch.Tensor | None] | None = None
        for i, (b, tol, size, e) in enumerate(zip(bounds, tols, sizes, ex, strict=True)):
            size = e.abs() if size is None else size
            b = torch.maximum(b, size * u)
            if not bool(torch.isfinite(b).all()):
                # A bound that overflows (or is undefined: inf*0 in a slope) where the value is
                # finite: the best finite lower bound stands in, as on the sampled path.
                low = size * u
                if i < len(progs.terms) and progs.floors:
                    floors = floors or progs.floors.lower(pts64, kept, u)
                    floor = floors[i]
                    low = low if floor is None else torch.maximum(low, floor)
                b = torch.where(torch.isfinite(b), b, low)
            if tol.override:
                allowed_full.append(size.mul(tol.rtol or 0.0).add_(tol.atol or 0.0))
            else:
                allowed_full.append(b * tol.factor)
            references.append(b.mul_(to_ref))
        ratios, tops = ratios_of(errs, allowed_full)
        judged = [
            Judged(*judged)
            for judged in zip(allowed_full, references, errs, ratios, tops, strict=True)
        ]
        for i in range(len(progs.terms), len(judged)):
            judged[i].over_reference = _top(ex[i].abs().div_(references[i]))
        return judged, None
    # The tolerances' lower bounds, and the errors' ratios to them, at every point; then the
    # full bound wherever a ratio to the lower bound exceeds 1/2 (the patched ratios are the
    # true ones and no larger: where none exceeds 1/2, no point needs more). The tolerances'
    # maxima follow from the values' (and the patched points').
    n_terms = len(progs.terms)
    # Where a term's formula cancels inside, its structural lower bound is the better one; where
    # it covers the value (a sum of terms each counted), it is the only one needed.
    factors = [t.factor for t in tols[:n_terms]]
    floors, floor_tops, covering = (
        progs.floors.lower_checked(pts64, kept, u, factors, prescaled)
        if progs.floors
        else ([], [], [])
    )
    errs = []
    allowed_all: list[torch.Tensor] = []
    ratios = []
    peaks: list[torch.Tensor] = []
    raised: list[torch.Tensor | None] = []
    # One quantity at a time, so that its values are still in the caches when they are read.
    for i, (a, e, size, tol) in enumerate(zip(ag, ex, sizes, tols, strict=True)):
        err = torch.sub(a, e).abs_()
        floor = floors[i] if i < len(floors) else None
        if floor is not None and covering[i]:
            peaks.append(_abs_max(e))
            allowed = floor
            raised.append(floor_tops[i])
        else:
            sized = e.abs() if size is None else size
            peaks.append(sized.amax())
            allowed = sized.mul_(u * tol.factor) if size is None else sized * (u * tol.factor)
            if floor is not None:
                torch.maximum(allowed, floor, out=allowed)
            raised.append(None if floor is None else allowed.amax())
        errs.append(err)
        allowed_all.append(allowed)
        ratios.append(torch.div(err, allowed))
    tops = _tops(ratios)
    extra: torch.Tensor | None = None
    # A residual's exact value against the lower bound of its reference bound (u*to_ref times
    # its size): a point above it needs the full bound to say whether the candidate solves.
    lowest_ref = u * to_ref
    over: dict[int, torch.Tensor] = {}  # (signed until a point needs it whole)
    for i, (ratio, top) in enumerate(zip(ratios, tops, strict=True)):
        if top > 0.5:
            extra = _above(ratio, 0.5, extra)
        if i >= n_terms:
            size = sizes[i]
            assert size is not None
            over[i] = torch.div(ex[i], size)
            if _abs_top(over[i]) > lowest_ref:
                extra = _above(over[i].abs_(), lowest_ref, extra)
    tol_max = [
        p * (u * tol.factor) if r is None else r
        for p, tol, r in zip(peaks, tols, raised, strict=True)
    ]
    if extra is not None:
        at_idx = _positions(extra)
        if at_idx.numel():
            patched = _patch(progs, pts64, ex, errs, sizes, tols, u, at_idx, allowed_all, ratios)
            tops = _tops(ratios)
            tol_max = [torch.maximum(a, b) for a, b in zip(tol_max, patched, strict=True)]
            for i, q in over.items():  # (there, against the full reference bound)
                q.abs_()
                ref = allowed_all[i].index_select(0, at_idx).mul_(to_ref / tols[i].factor)
                exact = ex[i].index_select(0, at_idx).abs_()
                q.index_copy_(0, at_idx, exact.div_(ref).mul_(lowest_ref))
    sample = _sample_of(progs, start, pts64, ag, ex, sizes, extra, n_total, u)
    judged = [
        Judged(allowed, to_ref / tol.factor, err, ratio, top, t_max, peak)
        for allowed, tol, err, ratio, top, t_max, peak in zip(
            allowed_all, tols, errs, ratios, tops, tol_max, peaks, strict=True
        )
    ]
    for i, q in over.items():
        judged[i].over_reference = _abs_top(q) / lowest_ref
        if extra is None and u * tols[i].factor <= VAGUE_FRACTION:
            judged[i].vague = 0  # (the tolerance is u*K times the size at every point)
    return judged, sample


def _sample_of(
    progs: Programs,
    start: int,
    pts64: list[torch.Tensor],
    ag: list[torch.Tensor],
    ex: list[torch.Tensor],
    sizes: Sequence[torch.Tensor | None],
    patched: torch.Tensor | None,
    n_total: int,
    u: float,
) -> BoundSample | None:
    """The chunk's points of the run's bound sample, with their values (copies: the chunk's
    tensors are let go) and their full bounds (computed here, on the chunk's worker thread);
    None where it has none."""
    span = sample_span(start, pts64[0].numel(), n_total)
    if span is None:
        return None
    hi = span[1] - start

    def pick(x: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return x[:hi].to(dtype, copy=True)

    pts = [pick(p) for p in pts64]
    exact = [pick(e) for e in ex]
    n_terms = len(progs.terms)
    bounds = _bounds_at(progs, pts, exact[:n_terms], u)
    return BoundSample(
        span,
        pts,
        [pick(a) for a in ag],
        exact,
        [None if s is None else pick(s) for s in sizes],
        None if patched is None else pick(patched, torch.bool),
        sample_stride(n_total),
        bounds,
    )


def _above(x: torch.Tensor, limit: torch.Tensor | float, mask: torch.Tensor | None) -> torch.Tensor:
    """``mask | (x > limit)`` (a new mask where ``mask`` is None). On the CPU NumPy's
    comparisons run several times faster than torch's."""
    if x.device.type != "cpu":
        above = x > limit
        return above if mask is None else mask.logical_or_(above)
    lim = limit.numpy() if isinstance(limit, torch.Tensor) else limit
    if mask is None:
        return torch.from_numpy(x.numpy() > lim)
    np_mask = mask.numpy()
    np_mask |= x.numpy() > lim
    return mask


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """The indices where ``mask`` is set (NumPy's search is faster on the CPU)."""
    if mask.device.type != "cpu":
        return torch.nonzero(mask).flatten()
    return torch.from_numpy(np.flatnonzero(mask.numpy()))


def _top(x: torch.Tensor) -> float:
    """The largest value of ``x``, NaN ignored (as 0)."""
    top = float(x.amax())
    return float(x.nan_to_num(nan=0.0, posinf=math.inf).amax()) if math.isnan(top) else top


def _abs_top(x: torch.Tensor) -> float:
    """The largest value of ``|x|``, NaN ignored (as 0)."""
    top = float(_abs_max(x))
    return _top(x.abs()) if math.isnan(top) else top


def _tops(ratios: list[torch.Tensor]) -> list[float]:
    """Each ratio's largest value; a ratio holding 0/0 (no error, no tolerance: a NaN) has
    those set to 0 first (rare: an exact value of 0 where autograd is exact too)."""
    tops = torch.stack([r.amax() for r in ratios]).tolist()
    for i, top in enumerate(tops):
        if math.isnan(top):
            tops[i] = float(ratios[i].nan_to_num_(nan=0.0, posinf=math.inf).amax())
    return tops


def _patch(
    progs: Programs,
    pts64: list[torch.Tensor],
    ex: list[torch.Tensor],
    errs: list[torch.Tensor],
    sizes: Sequence[torch.Tensor | None],
    tols: list[Tolerance],
    u: float,
    at: torch.Tensor,
    allowed: list[torch.Tensor],
    ratios: list[torch.Tensor],
) -> list[torch.Tensor]:
    """Replace the lower-bound tolerances (and ratios) at the points ``at`` by the model's,
    from the full running bound there; return each quantity's largest patched tolerance."""

    def pick(x: torch.Tensor) -> torch.Tensor:
        return x.index_select(0, at)  # (several times faster than x[at] on the CPU)

    in_pts = [pick(p) for p in pts64]
    # (the terms' values are inputs of the derived quantities' program only)
    sub_ex = [pick(e) for e in ex[: len(progs.terms)]] if progs.derived is not None else []
    bounds = _bounds_at(progs, in_pts, sub_ex, u)
    dense = at.numel() * DENSE_SHARE > pts64[0].numel()
    maxima = []
    for b, tol, size, e, err, allowed_i, ratio_i in zip(
        bounds, tols, sizes, ex, errs, allowed, ratios, strict=True
    ):
        low = pick(e).abs_() if size is None else pick(size)
        full = torch.maximum(b, low.mul_(u)).mul_(tol.factor)
        # Where the bound overflows (or is undefined: inf*0 in a slope), the lower bound that
        # was there stands in (as on the full path); where the value itself is not finite,
        # neither is it, and ErrorStats counts the point as undefined.
        full = torch.where(torch.isfinite(full), full, pick(allowed_i))
        maxima.append(full.amax())
        allowed_i.index_copy_(0, at, full)
        if dense:  # one pass beats a gather and a scatter (0/0 is seen to by _tops)
            torch.div(err, allowed_i, out=ratio_i)
        else:
            patched = torch.div(pick(err), full).nan_to_num_(nan=0.0, posinf=math.inf)
            ratio_i.index_copy_(0, at, patched)
    return maxima


@dataclass
class Judged:
    """One quantity's verdict inputs on a chunk (see :func:`judge_chunk`)."""

    allowed: torch.Tensor  # the tolerance at each point
    reference: torch.Tensor | float  # the reference's error bound, or that multiple of allowed
    error: torch.Tensor  # |autograd - exact|
    ratio: torch.Tensor  # error / allowed (0 where both are 0; inf where allowed is not finite)
    ratio_max: float  # its largest value
    allowed_max: torch.Tensor | None = None  # allowed's largest value, where known (0-dim)
    size_max: torch.Tensor | None = None  # max |exact| (a residual's: max of its size), or None
    over_reference: float | None = None  # a residual's largest |exact| / reference bound
    vague: int | None = None  # a residual's points whose tolerance is not small, where known

    def reference_tensor(self) -> torch.Tensor:
        ref = self.reference
        return self.allowed * ref if isinstance(ref, float) else ref


@dataclass
class BoundSample:
    """A chunk's points of the run's bound sample (the run's first ``1/stride`` of its points), with
    what judging them needs: their values on both sides, and which of them the chunk gave the
    full bound already (``patched``; None: none)."""

    span: tuple[int, int]  # the points' global indices, [lo, hi)
    points: list[torch.Tensor]
    values: list[torch.Tensor]  # autograd (or derived), as float64
    exact: list[torch.Tensor]
    sizes: list[torch.Tensor | None]
    patched: torch.Tensor | None
    stride: int
    bounds: list[torch.Tensor]  # the full running bounds there (the terms', the derived ones')


def judge_sample(
    progs: Programs,
    parts: Sequence[BoundSample | None],
    tols: list[Tolerance],
    u: float,
    totals: Sequence[ErrorStats],
) -> None:
    """From the full bounds at the run's sample points, fold in what the lower bounds left
    out: the largest reference error (and its point), and the share of a residual's points
    whose tolerance is not small against its size (the sample's unpatched points stand for
    ``stride`` points each)."""
    chunks = [p for p in parts if p is not None]
    if not chunks:
        return
    cat = torch.cat
    first = chunks[0].span[0]  # (the chunks' spans follow each other)
    pts = [cat(col) for col in zip(*(c.points for c in chunks), strict=True)]
    values = [cat(col) for col in zip(*(c.values for c in chunks), strict=True)]
    exact = [cat(col) for col in zip(*(c.exact for c in chunks), strict=True)]
    patched = cat(
        [
            torch.zeros_like(c.points[0], dtype=torch.bool) if c.patched is None else c.patched
            for c in chunks
        ]
    )
    stride = chunks[0].stride
    n_terms = len(progs.terms)
    bounds = [cat(col) for col in zip(*(c.bounds for c in chunks), strict=True)]
    to_ref = REFERENCE_SAFETY * UNIT_ROUNDOFF["float64"] / u
    for i, (st, b, tol, a, e) in enumerate(zip(totals, bounds, tols, values, exact, strict=True)):
        size = None if i < n_terms else cat([c.sizes[i] for c in chunks])  # type: ignore[misc]
        ok = torch.isfinite(a) & torch.isfinite(e)
        low = e.abs() if size is None else size
        allowed = torch.maximum(b, low * u).mul_(tol.factor)
        allowed = torch.where(ok & torch.isfinite(allowed), allowed, 0.0)
        ref = allowed * (to_ref / tol.factor)
        j = _argmax(ref)
        top = float(ref[j])
        if st.unsure is None or top > st.max_reference_error:
            st.max_reference_error = top
            st.unsure = Probe(
                first + j,
                [float(p[j]) for p in pts],
                float(a[j]),
                float(e[j]),
                float(allowed[j]),
                top,
            )
        if size is not None:
            vague = allowed > VAGUE_FRACTION * size
            found = int((vague & ok & ~patched).sum())
            st.vague = min(st.finite, st.vague + found * stride)
            st.vague_stride = stride


class References(Sequence[torch.Tensor]):
    """The reference bounds of a chunk's quantities, materialized only for the sinks that read
    them (most do not: the model's is a multiple of the tolerance)."""

    def __init__(self, judged: Sequence[Judged]) -> None:
        self._judged = judged
        self._made: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._judged)

    @overload
    def __getitem__(self, i: int) -> torch.Tensor: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[torch.Tensor]: ...

    def __getitem__(self, i: int | slice) -> torch.Tensor | Sequence[torch.Tensor]:
        if isinstance(i, slice):
            return [self[k] for k in range(len(self))[i]]
        k = range(len(self))[i]
        if k not in self._made:
            self._made[k] = self._judged[k].reference_tensor()
        return self._made[k]


def _bounds_at(
    progs: Programs, pts: list[torch.Tensor], term_values: list[torch.Tensor], u: float
) -> list[torch.Tensor]:
    """The running error bounds of the terms, then of the derived quantities, at ``pts``
    (each point's coordinates rounded to the run's dtype: ``u*|x|``)."""
    in_bounds: list[torch.Tensor | None] = [x.abs().mul_(u) for x in pts]
    _, bounds = run_bounded(progs.exact, pts, in_bounds, u)
    if progs.derived is None:
        return list(bounds)
    _, db = run_bounded(progs.derived, pts + term_values, in_bounds + list(bounds), u)
    return list(bounds) + list(db)
