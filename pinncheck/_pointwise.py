"""Pointwise values leaving the pipeline: the seam that plots, maps and dumps are built on.

``check``, ``residual`` and ``verify`` compute, at every sampled point, each quantity's value
under test (autograd's, or the user's residual), its exact float64 value, the error between them,
the point's tolerance and the bound on the reference's own error. Those tensors live for one
chunk. A :class:`PointSink` sees each chunk once, while it streams past, and keeps what it needs
in bounded memory: a binned map, a sample of rows, a count.

The protocol has three steps, so that the engine's worker threads can share the work:

- :meth:`PointSink.start` is called once, before the first chunk, with the run's
  :class:`Layout` (the quantities' names, the variables, the box, ``n``).
- :meth:`PointSink.partial` is called for each chunk with a :class:`ChunkView`, possibly in a
  worker thread and for several chunks at once. It must not change the sink: it returns what
  the chunk contributes (any object).
- :meth:`PointSink.merge` is called with each partial on the calling thread, in the chunks'
  order, so that a sink's result equals that of one pass over the points and does not depend
  on the chunk size.

The values a sink sees are those of the float64 reference. The few points that the
high-precision stage settles afterwards (at most 32 per quantity; see :mod:`pinncheck._refine`)
keep their reference-based values here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    from ._domain import Domain


@dataclass(frozen=True)
class Layout:
    """What a run measures, in the order of :attr:`ChunkView.values`."""

    names: tuple[str, ...]
    """Each quantity's name, as in the report (``d2f/dx2``, ``u_xx``, ``eq1``)."""
    kinds: tuple[str, ...]
    """Per quantity: ``"derivative"`` or ``"equation"`` (a PDE residual)."""
    variables: tuple[str, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    n: int
    """The number of points the run samples (global indices are ``0 .. n-1``)."""
    resample: Resampler | None = field(default=None, compare=False)
    """The run's points again (their float64 coordinates, as the views carry them), for a
    sink that skipped chunks and finds that it needs them after all."""


@dataclass(frozen=True)
class Resampler:
    """Points ``start .. stop-1`` of a run's seeded sample: ``resampler(start, stop)`` returns
    one float64 tensor per variable, the coordinates the run's views carried (picklable)."""

    domain: Domain
    seed: int
    dtype: torch.dtype
    device: torch.device

    def __call__(self, start: int, stop: int) -> list[torch.Tensor]:
        from ._sample import sample_box

        cols = sample_box(self.domain, self.seed, start, stop, dtype=self.dtype, device=self.device)
        return [c.to(torch.float64) for c in cols]


@dataclass(frozen=True)
class ChunkView:
    """One chunk's pointwise values, all float64 tensors of the chunk's length ``m``.

    ``points[j]`` are the coordinates of variable ``j``; the point ``i`` of the chunk is the
    run's point ``start + i``. Per quantity ``q`` (in :attr:`Layout.names` order):
    ``values[q]`` is the value under test, ``exact[q]`` the float64 reference,
    ``error[q] = |values[q] - exact[q]|``, ``tolerance[q]`` the error allowed at each point (the
    point passes when ``error <= tolerance``) and ``reference[q]`` the bound on the reference's
    own error. For an equation, ``|exact| <= reference`` is the pointwise "solves" test of
    ``residual``. Non-finite values mean that the quantity is undefined at the point.

    ``ratio[q]`` is ``error / tolerance`` (0 where both are 0) at every point where the quantity
    is defined (elsewhere its value is unspecified: test ``values`` and ``exact``), and
    ``ratio_max[q]`` is at least its largest value over those points (equal when every point is
    defined): a chunk whose ``ratio_max`` is at most 1 has no failing point. ``undefined[q]``
    counts the points where the quantity is undefined. The pipeline has
    both at hand (it judged the chunk with them), so a sink reads them for free; a view built
    without them computes them.

    Sinks must not modify the tensors.
    """

    start: int
    points: Sequence[torch.Tensor]
    values: Sequence[torch.Tensor]
    exact: Sequence[torch.Tensor]
    error: Sequence[torch.Tensor]
    tolerance: Sequence[torch.Tensor]
    reference: Sequence[torch.Tensor]
    ratio: Sequence[torch.Tensor] = ()
    ratio_max: Sequence[float] = ()
    undefined: Sequence[int] = ()

    def __post_init__(self) -> None:
        if self.values and not (self.ratio and self.ratio_max):  # (a view built by hand)
            ratio, ratio_max = ratios_of(self.error, self.tolerance)
            object.__setattr__(self, "ratio", ratio)
            object.__setattr__(self, "ratio_max", ratio_max)
        if self.values and not self.undefined:
            object.__setattr__(self, "undefined", undefined_counts(self.values, self.exact))

    def __len__(self) -> int:
        return int(self.points[0].numel()) if self.points else 0


class PointSink(Protocol):
    """Something that sees every chunk's pointwise values once (see the module's docstring)."""

    def start(self, layout: Layout) -> None: ...

    def partial(self, view: ChunkView) -> Any: ...

    def merge(self, partial: Any) -> None: ...


def ratios_of(
    error: Sequence[torch.Tensor], tolerance: Sequence[torch.Tensor]
) -> tuple[list[torch.Tensor], list[float]]:
    """``ratio`` and ``ratio_max`` of a :class:`ChunkView`, for a pipeline that has not
    computed them."""
    # A tolerance that overflows allows nothing (as in the verdict); 0/0 is no error.
    ratio = [
        torch.div(e, torch.where(torch.isfinite(t), t, 0.0)).nan_to_num_(nan=0.0, posinf=math.inf)
        for e, t in zip(error, tolerance, strict=True)
    ]
    tops = torch.stack([r.amax() for r in ratio]).tolist() if ratio else []
    return ratio, tops


def undefined_counts(values: Sequence[torch.Tensor], exact: Sequence[torch.Tensor]) -> list[int]:
    """Per quantity, the points where its value or exact value is not finite."""
    counts = [
        torch.count_nonzero(~(torch.isfinite(v) & torch.isfinite(e)))
        for v, e in zip(values, exact, strict=True)
    ]
    return [int(c) for c in torch.stack(counts).tolist()] if counts else []


def must_solve(kind: str, job: Any) -> bool:
    """Whether a run of ``kind`` ("check", "residual", "verify"...) with ``job`` also tests
    that its candidate solves the PDEs (a residual without ``--any-residual``), so that its
    sinks map the "solves" measure too."""
    return kind == "residual" and not getattr(job, "any_residual", False)


def start_all(sinks: Sequence[PointSink], layout: Layout) -> None:
    for s in sinks:
        s.start(layout)


def feed(sinks: Sequence[PointSink], view: ChunkView) -> None:
    """Pass one chunk to each sink on the calling thread (serial pipelines such as verify)."""
    for s in sinks:
        s.merge(s.partial(view))


__all__ = [
    "ChunkView",
    "Layout",
    "PointSink",
    "Resampler",
    "feed",
    "must_solve",
    "ratios_of",
    "start_all",
    "undefined_counts",
]
