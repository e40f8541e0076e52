"""What :class:`~pinncheck._maps.ErrorMaps` returns: the binned maps of a run's ratios over its
domain (:class:`ErrorMapsResult`, one :class:`QuantityMap` per derivative or equation, of
:class:`Grid` bins and :class:`WorstPoint` points), and the ranking of the pairs of variables
that plots show first (:func:`ranked_pairs`).

Every field is a CPU tensor or a plain Python value, so a result pickles (worker processes
send it back). :mod:`pinncheck._maps` re-exports all of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


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
    defined point; ``inf`` where an error met a zero tolerance. Exact where it is above 1 (the
    bin fails); at or below 1, the largest over the bin's sampled points (see
    :attr:`ErrorMapsResult.stride`), so at most the exact one."""
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
    stride: int = 1
    """The bins' largest ratios at or below 1 are those of a sample of one block of the run's
    points in ``stride`` (whole blocks of consecutive points), and of each bin's first point
    (1: every point; see :class:`ErrorMaps`); 0 for counts-only maps, which keep no largest
    ratio per bin."""

    def quantity(self, name: str) -> QuantityMap:
        for q in self.quantities:
            if q.name == name:
                return q
        raise KeyError(f"no map of {name}")


def reduce_to(g: Grid, axis_var: int) -> Grid:
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
    """How much a map's largest bin stands out: log10(max / median) over its defined bins.

    (In NumPy: a few thousand bins, where torch's threads would cost more than the work.)"""
    import numpy as np

    values = max_ratio.detach().cpu().numpy().ravel()
    v = values[np.isfinite(values)]
    inf = bool(np.isinf(values).any())
    if v.size == 0:
        return math.inf if inf else 0.0
    tiny = 1e-300
    top = math.inf if inf else float(v.max())
    # torch's median of an even count is the lower middle value; keep that choice.
    middle = float(np.partition(v, (v.size - 1) // 2)[(v.size - 1) // 2])
    return math.log10(max(top, tiny)) - math.log10(max(middle, tiny))


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
