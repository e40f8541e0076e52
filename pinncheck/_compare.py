"""Error statistics of autograd against exact values, exact across chunks, and tolerances."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

# Default tolerances by dtype and derivative order (orders above the table use its last row).
# A point passes when |autograd - exact| <= atol + rtol*|exact|, where the default atol is
# scale-aware: scale * max|exact| over all points (never below `floor`). Measured on this
# project's reference expressions (README, "Tolerances"): float64 errors stay below ~1e-15 of a
# derivative's largest magnitude, float32 errors below ~4e-6, while pointwise relative errors
# near a derivative's zero crossings reach 2e-3 in float32. The table leaves a margin of 100x or
# more; a wrong derivative is off by O(1) of its scale and still fails.
TOLERANCES: dict[str, list[tuple[float, float, float]]] = {
    #             (rtol,  scale, floor)  for orders 1, 2, 3+
    "float64": [(1e-9, 1e-12, 1e-13), (1e-9, 1e-11, 1e-12), (1e-8, 1e-10, 1e-11)],
    "float32": [(1e-5, 1e-4, 1e-6), (1e-5, 3e-4, 1e-5), (1e-4, 1e-3, 1e-4)],
}


@dataclass(frozen=True)
class Tolerance:
    """Pass criterion for one quantity: ``|a - e| <= atol + rtol*|e|`` at every point.

    ``atol`` is either fixed (``atol`` given) or ``scale * max|e|`` with a lower ``floor``.
    """

    rtol: float
    atol: float | None = None
    scale: float = 0.0
    floor: float = 0.0

    def effective_atol(self, max_abs_exact: float) -> float:
        if self.atol is not None:
            return self.atol
        return max(self.scale * max_abs_exact, self.floor)


def default_tolerance(
    dtype: str, order: int, *, rtol: float | None = None, atol: float | None = None
) -> Tolerance:
    """The table's tolerance for ``dtype`` and derivative ``order``, with user overrides."""
    rows = TOLERANCES[dtype]
    r, s, f = rows[min(max(order, 1), len(rows)) - 1]
    return Tolerance(rtol=r if rtol is None else rtol, atol=atol, scale=s, floor=f)


TINY_ERROR = 1e-140
"""Errors all below this have squares near or below float64's smallest normal numbers."""


def needs_scaling(sum_sq: float, max_error: float) -> bool:
    """Whether a chunk's sum of squared errors must be taken relative to its largest error:
    the squares overflow (above ~1e154) or lose precision to underflow (below ~1e-154)."""
    return math.isfinite(max_error) and (math.isinf(sum_sq) or 0.0 < max_error < TINY_ERROR)


@dataclass
class ErrorStats:
    """Running error statistics of one quantity; ``update`` once per chunk.

    The statistics do not depend on how the points were split into chunks.
    ``max_abs_autograd`` is kept only with ``track_autograd`` (NaN otherwise): reports show it
    for residuals, and skipping it saves two passes over every derivative's values.
    """

    rtol: float
    track_autograd: bool = True
    count: int = 0
    finite: int = 0
    nonfinite: int = 0
    max_abs_error: float = 0.0
    max_abs_exact: float = 0.0
    max_abs_autograd: float = 0.0
    # The sum of squared errors is kept as sq_scale**2 * sum_sq_error (see add_sum_sq): squares
    # of errors above ~1e154 overflow and below ~1e-140 underflow, so such chunks are summed as
    # (err / max err)**2 instead (see needs_scaling).
    sum_sq_error: float = 0.0
    sq_scale: float = 1.0
    # Worst point: where |a - e| - rtol*|e| is largest, the margin compared with atol.
    worst_excess: float = -math.inf
    worst_index: int | None = None
    worst_point: list[float] | None = None
    worst_values: tuple[float, float] | None = None
    first_nonfinite_index: int | None = None
    first_nonfinite_point: list[float] | None = None
    first_nonfinite_values: tuple[float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.track_autograd:
            self.max_abs_autograd = math.nan

    def update(
        self,
        autograd: torch.Tensor,
        exact: torch.Tensor,
        points: list[torch.Tensor],
        offset: int,
    ) -> None:
        """Fold in one chunk: values at the points ``offset .. offset+len-1``."""
        a = autograd.to(torch.float64)
        e = exact.to(torch.float64)
        if a.shape != e.shape:
            a, e = torch.broadcast_tensors(a, e)
        n = e.numel()
        self.count += n
        ok = torch.isfinite(a) & torch.isfinite(e)
        n_ok = int(ok.sum())
        self.finite += n_ok
        if n_ok < n:
            self.nonfinite += n - n_ok
            if self.first_nonfinite_index is None:
                i = int((~ok).nonzero()[0, 0])
                self.first_nonfinite_index = offset + i
                self.first_nonfinite_point = [float(p[i]) for p in points]
                self.first_nonfinite_values = (float(a[i]), float(e[i]))
        if n_ok == 0:
            return
        zero = torch.zeros((), dtype=torch.float64, device=e.device)
        err = torch.where(ok, (a - e).abs(), zero)
        ae = torch.where(ok, e.abs(), zero)
        top = float(err.max())
        self.max_abs_error = max(self.max_abs_error, top)
        self.max_abs_exact = max(self.max_abs_exact, float(ae.max()))
        if self.track_autograd:
            self.max_abs_autograd = max(
                self.max_abs_autograd, float(torch.where(ok, a.abs(), zero).max())
            )
        sum_sq = float((err * err).sum())
        if needs_scaling(sum_sq, top):  # squares overflow or underflow, the errors do not
            self.add_sum_sq(float(((err / top) ** 2).sum()), top)
        else:  # (an error that itself overflows makes the RMS infinite, as it is)
            self.add_sum_sq(sum_sq)
        excess = torch.where(ok, err - self.rtol * ae, torch.full_like(err, -math.inf))
        i = int(excess.argmax())
        if float(excess[i]) > self.worst_excess:
            self.worst_excess = float(excess[i])
            self.worst_index = offset + i
            self.worst_point = [float(p[i]) for p in points]
            self.worst_values = (float(a[i]), float(e[i]))

    def add_sum_sq(self, value: float, scale: float = 1.0) -> None:
        """Add ``scale**2 * value`` to the sum of squared errors without overflowing: the
        total is kept as ``sq_scale**2 * sum_sq_error``, rescaled when a sum would overflow."""
        if math.isinf(value) or math.isinf(self.sum_sq_error):
            self.sum_sq_error = math.inf  # an infinite error: the RMS is infinite
            return
        if value == 0.0:  # nothing to add (its scale must not replace ours)
            return
        if self.sum_sq_error == 0.0:  # nothing yet: take the new part's scale as it is
            self.sum_sq_error, self.sq_scale = value, scale
            return
        big = max(scale, self.sq_scale)
        old = self.sum_sq_error * (self.sq_scale / big) ** 2
        new = value * (scale / big) ** 2
        total = old + new
        if math.isinf(total):  # both finite, their sum is not: scale both down by 2**512
            total = old * 2.0**-512 + new * 2.0**-512
            big *= 2.0**256
        self.sum_sq_error, self.sq_scale = total, big

    @property
    def rms_error(self) -> float:
        if not self.finite:
            return math.nan
        return self.sq_scale * math.sqrt(self.sum_sq_error / self.finite)

    @property
    def max_rel_error(self) -> float:
        """max |a - e| / max |e|: the error relative to the quantity's scale."""
        if self.finite == 0:
            return math.nan
        if self.max_abs_exact == 0.0:
            return 0.0 if self.max_abs_error == 0.0 else math.inf
        return self.max_abs_error / self.max_abs_exact

    def status(self, tol: Tolerance, scale: float | None = None) -> str:
        """ "pass", "fail", or "undefined" (non-finite values on either side).

        ``scale`` replaces max|exact| as the reference of a scale-aware atol (a residual is
        compared relative to the size of its PDE's terms, not to itself, which is ~0).
        """
        if self.nonfinite or self.finite == 0:
            return "undefined"
        ref = self.max_abs_exact if scale is None else scale
        return "pass" if self.worst_excess <= tol.effective_atol(ref) else "fail"
