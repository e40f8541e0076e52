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

from dataclasses import dataclass, field

import torch

DEFAULT_PROFILE_BINS = 200
"""Bins of each variable's 1-D profile."""
DEFAULT_PAIR_BINS = (64, 64)
"""Bins (along the pair's first, second variable) of each pair's 2-D grid."""
DEFAULT_WORST = 16
"""How many of the worst points each map keeps."""


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


__all__ = [
    "DEFAULT_PAIR_BINS",
    "DEFAULT_PROFILE_BINS",
    "DEFAULT_WORST",
    "ErrorMapsResult",
    "Grid",
    "QuantityMap",
    "RunInfo",
    "WorstPoint",
]
