"""Error statistics of autograd against exact values, exact across chunks, and tolerances.

What a pass means (docs/tolerances.md): at every sampled point, autograd's value is within the
tolerance of the true derivative or residual. The tolerance at a point is what a correct
computation of the same formula in the dtype under test can get wrong there (a running error
bound times a calibrated safety factor); the truth is the float64 reference wherever its own
error bound cannot change the verdict, and a high-precision (mpmath) value where it could.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

SAFETY_FACTOR: dict[str, float] = {"float64": 20.0, "float32": 8.0}
"""The tolerance model's safety factor K by dtype (see :class:`Tolerance`), calibrated with
``make calibrate`` on pinncheck's corpus (docs/tolerances.md has the measurements)."""
DEFAULT_SAFETY = 16.0
"""K for precisions outside the table (float16, bfloat16)."""
VAGUE_FRACTION = 0.1
"""At a point whose tolerance reaches this fraction of the quantity's size there (|exact|, or
the sum of a residual's terms), rounding could hide a missing term."""
INCONCLUSIVE_SHARE = 0.5
"""A quantity that is vague at more than this share of the points is inconclusive (and fails):
its check cannot tell a wrong formula from rounding. Vague points in a region only (near a
singularity or a zero crossing) are reported as ill-conditioning instead."""


@dataclass(frozen=True)
class Tolerance:
    """Pass criterion for one quantity, per point: ``|autograd - truth| <= tolerance``.

    By default the tolerance at a point is ``factor * bound``, where ``bound`` is the running
    error bound (:mod:`pinncheck._bounds`) of evaluating the exact formula at that point in
    ``dtype``: what a correct computation in that precision can get wrong there, from the
    rounding of its inputs, of each operation, and the conditioning of the formula as written.
    ``rtol``/``atol`` replace the model by ``atol + rtol*|exact|`` (each 0 when not given).
    """

    dtype: str = "float64"
    factor: float = DEFAULT_SAFETY
    rtol: float | None = None
    atol: float | None = None

    @property
    def override(self) -> bool:
        return self.rtol is not None or self.atol is not None

    @property
    def unit_roundoff(self) -> float:
        from ._bounds import UNIT_ROUNDOFF

        return UNIT_ROUNDOFF.get(self.dtype, 2.0**-8)

    def at(self, bound: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
        """The tolerance at each point, from the model's ``bound`` and the ``exact`` values."""
        if not self.override:
            return bound * self.factor
        tol = exact.abs().mul_(self.rtol or 0.0)
        return tol.add_(self.atol or 0.0)

    def describe(self) -> str:
        if self.override:
            return f"atol {self.atol or 0:g} + rtol {self.rtol or 0:g}*|exact|"
        return f"{self.factor:g} x the rounding bound of {self.dtype}"


def default_tolerance(
    dtype: str, *, rtol: float | None = None, atol: float | None = None
) -> Tolerance:
    """The rounding model's tolerance for ``dtype``, or the ``rtol``/``atol`` override."""
    factor = SAFETY_FACTOR.get(dtype, DEFAULT_SAFETY)
    return Tolerance(dtype=dtype, factor=factor, rtol=rtol, atol=atol)


TINY_ERROR = 1e-140
"""Errors all below this have squares near or below float64's smallest normal numbers."""


def needs_scaling(sum_sq: float, max_error: float) -> bool:
    """Whether a chunk's sum of squared errors must be taken relative to its largest error:
    the squares overflow (above ~1e154) or lose precision to underflow (below ~1e-154)."""
    return math.isfinite(max_error) and (math.isinf(sum_sq) or 0.0 < max_error < TINY_ERROR)


UNDECIDED_CAP = 32
"""Points per quantity whose verdict the float64 reference cannot settle (their error is within
the reference's own error bound of the tolerance) that are re-evaluated in high precision; more
than this many makes the quantity inconclusive."""


@dataclass
class Probe:
    """One sampled point kept for a closer look: its values, tolerance and reference bound.

    ``truth`` is the high-precision exact value, once pinncheck has computed it (see
    :mod:`pinncheck._refine`); then ``error`` is autograd's true error there.
    """

    index: int
    point: list[float]
    autograd: float
    exact: float
    tolerance: float
    reference_error: float
    truth: float | None = None

    @property
    def error(self) -> float:
        ref = self.exact if self.truth is None else self.truth
        return abs(self.autograd - ref)

    @property
    def ratio(self) -> float:
        return _ratio(self.error, self.tolerance)


def _ratio(err: float, tol: float) -> float:
    if err == 0.0:
        return 0.0
    return err / tol if tol > 0.0 else math.inf


@dataclass
class ErrorStats:
    """Running error statistics of one quantity; ``update`` once per chunk.

    The statistics do not depend on how the points were split into chunks.
    ``max_abs_autograd`` is kept only with ``track_autograd`` (NaN otherwise): reports show it
    for residuals, and skipping it saves two passes over every derivative's values.

    Per point, ``ratio = |a - e| / tolerance``; the quantity passes when no point's ratio
    exceeds 1 once the reference's own error is accounted for: a point fails for certain when
    ``|a - e| - reference_error > tolerance``; it is *undecided* when the reference's error
    could move it across the tolerance either way, and then judged again in high precision.
    """

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
    worst_ratio: float = -math.inf
    worst: Probe | None = None  # the largest |a - e| / tolerance
    largest: Probe | None = None  # the largest |a - e|
    unsure: Probe | None = None  # the largest bound on the reference's error
    max_reference_error: float = 0.0
    vague: int = 0  # points whose tolerance is not small against the quantity's size there
    vague_stride: int = 0  # where vague is partly estimated: from a sample of 1 point in this many
    certain_failures: int = 0
    undecided_count: int = 0
    undecided: list[Probe] = field(default_factory=list)
    refined_failures: int = 0  # undecided points that fail against the high-precision truth
    unresolved: int = 0  # undecided points not settled (over the cap, or no truth found)
    first_nonfinite_index: int | None = None
    first_nonfinite_point: list[float] | None = None
    first_nonfinite_values: tuple[float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    beat: tuple[float, float, float] = (-math.inf, -math.inf, -math.inf)
    """The worst ratio, largest error and largest reference error of earlier chunks (set by
    the engine): a chunk that cannot beat them does not look for its points (ties stay with
    the earlier chunk), which saves a pass each."""

    def __post_init__(self) -> None:
        if not self.track_autograd:
            self.max_abs_autograd = math.nan

    # Compatibility views of the worst point.
    @property
    def worst_index(self) -> int | None:
        return None if self.worst is None else self.worst.index

    @property
    def worst_point(self) -> list[float] | None:
        return None if self.worst is None else self.worst.point

    @property
    def worst_values(self) -> tuple[float, float] | None:
        w = self.worst
        return None if w is None else (w.autograd, w.exact if w.truth is None else w.truth)

    def update(
        self,
        autograd: torch.Tensor,
        exact: torch.Tensor,
        tolerance: torch.Tensor,
        reference: torch.Tensor | float,
        points: list[torch.Tensor],
        offset: int,
        *,
        override: bool = False,
        size: torch.Tensor | None = None,
        err: torch.Tensor | None = None,
        ratio: torch.Tensor | None = None,
        ratio_max: float | None = None,
        exact_max: torch.Tensor | None = None,
        tolerance_max: torch.Tensor | None = None,
        vague: int | None = None,
    ) -> None:
        """Fold in one chunk: values at the points ``offset .. offset+len-1``, with each
        point's ``tolerance`` and the bound on the ``reference`` (exact side)'s own error; a
        float ``reference`` means that bound is that multiple of the tolerance at every point
        (the rounding model's common case, which saves materializing it).
        ``override``: the tolerance does not come from the rounding model (undecided points
        must then be looked for at any ratio). ``size``: a residual's size at each point (the
        sum of its terms' magnitudes), against which its tolerance must be small for a pass
        to mean that no term is missing. ``err``, ``ratio``, ``ratio_max``, ``exact_max`` and
        ``tolerance_max``: ``|autograd - exact|``, ``err / tolerance`` (0 where both are 0) and
        its largest value, ``max |exact|`` and the tolerance's largest value (0-dim tensors),
        and ``vague``, how many points' tolerances are not small against ``size``, when the
        caller has them already."""
        e = exact
        if err is None:
            err = torch.sub(autograd, e).abs_()  # float64 (a float32 autograd widens exactly)
        n = e.numel()
        self.count += n
        abs_max = _abs_max(e) if exact_max is None else exact_max
        tol_max = tolerance.amax() if tolerance_max is None else tolerance_max
        row = [torch.dot(err, err), err.amax(), abs_max, tol_max]
        if not isinstance(reference, float):
            row.append(reference.amax())
        if size is not None:
            if vague is None:
                row.append(torch.count_nonzero(tolerance > VAGUE_FRACTION * size))
            else:
                row.append(err.new_full((), float(vague)))
        if self.track_autograd:
            row.append(_abs_max(autograd).to(torch.float64))
        flat = torch.stack([x.to(torch.float64) for x in row]).tolist()
        # The common case, every error and tolerance finite, costs no extra pass.
        if math.isfinite(flat[0] + flat[3]):
            # In place of the tolerances' maximum, the reference bound's.
            flat[3] = reference * flat[3] if isinstance(reference, float) else flat.pop(4)
            return self._update(
                autograd,
                e,
                err,
                tolerance,
                reference,
                points,
                offset,
                override,
                size,
                n,
                None,
                flat,
                ratio,
                ratio_max,
            )
        if isinstance(reference, float):
            reference = tolerance * reference
        ok = torch.isfinite(autograd) & torch.isfinite(e)
        n_ok = int(ok.sum())
        if n_ok < n:
            self.nonfinite += n - n_ok
            if self.first_nonfinite_index is None:
                i = int((~ok).nonzero()[0, 0])
                self.first_nonfinite_index = offset + i
                self.first_nonfinite_point = [float(p[i]) for p in points]
                self.first_nonfinite_values = (float(autograd[i]), float(e[i]))
        if n_ok == 0:
            return
        zero = torch.zeros((), dtype=err.dtype, device=err.device)
        err = torch.where(ok, err, zero)
        e = torch.where(ok, e, zero)
        # A tolerance that overflows allows nothing: such a point never passes silently.
        tolerance = torch.where(ok & torch.isfinite(tolerance), tolerance, zero)
        reference = torch.where(ok, reference, zero).nan_to_num_(posinf=0.0)
        autograd = torch.where(ok, autograd, zero.to(autograd.dtype))
        if size is not None:
            size = torch.where(ok, size, zero)
        return self._update(
            autograd, e, err, tolerance, reference, points, offset, override, size, n_ok, ok
        )

    def _update(
        self,
        autograd: torch.Tensor,
        e: torch.Tensor,
        err: torch.Tensor,
        tolerance: torch.Tensor,
        reference: torch.Tensor | float,
        points: list[torch.Tensor],
        offset: int,
        override: bool,
        size: torch.Tensor | None,
        n_ok: int,
        ok: torch.Tensor | None,
        flat: list[float] | None = None,
        ratio: torch.Tensor | None = None,
        ratio_max: float | None = None,
    ) -> None:
        self.finite += n_ok
        if flat is None:
            assert not isinstance(reference, float)
            row = [torch.dot(err, err), err.amax(), _abs_max(e), reference.amax()]
            if size is not None:
                row.append(torch.count_nonzero(tolerance > VAGUE_FRACTION * size))
            if self.track_autograd:
                row.append(autograd.abs().amax().to(torch.float64))
            flat = torch.stack([x.to(torch.float64) for x in row]).tolist()
        sum_sq, err_max, e_max, ref_max, *rest = flat
        if size is not None:
            self.vague += int(rest.pop(0))
        a_max = rest
        if ratio is None:
            # 0/0: no error, no tolerance; an error against a zero tolerance stays inf
            ratio = torch.div(err, tolerance).nan_to_num_(nan=0.0, posinf=math.inf)
            ratio_max = None
        if ratio_max is None:
            ratio_max = float(ratio.amax())
        if needs_scaling(sum_sq, err_max):  # squares overflow or underflow, the errors do not
            self.add_sum_sq(float(((err / err_max) ** 2).sum()), err_max)
        else:  # (an error that itself overflows makes the RMS infinite, as it is)
            self.add_sum_sq(sum_sq)
        self.max_abs_exact = max(self.max_abs_exact, e_max)
        if a_max:
            self.max_abs_autograd = max(self.max_abs_autograd, a_max[0])

        def probe(j: int) -> Probe:
            tol = float(tolerance[j])
            ref = reference * tol if isinstance(reference, float) else float(reference[j])
            return Probe(
                offset + j, [float(p[j]) for p in points], float(autograd[j]), float(e[j]), tol, ref
            )

        # A point is looked for only where it can beat the earlier chunks' (``beat``).
        b_ratio, b_err, b_ref = self.beat
        if ratio_max > max(self.worst_ratio, b_ratio):
            self.worst_ratio = ratio_max
            self.worst = probe(_argmax(ratio))
        if (err_max > self.max_abs_error or self.largest is None) and err_max > b_err:
            self.max_abs_error = err_max
            self.largest = probe(_argmax(err))
        if (ref_max > self.max_reference_error or self.unsure is None) and ref_max > b_ref:
            self.max_reference_error = ref_max
            self.unsure = probe(_argmax(tolerance if isinstance(reference, float) else reference))
        if ratio_max > 0.5 or override:
            # Points the reference's own error could move across the tolerance.
            if isinstance(reference, float):  # |a - e| -+ c*tol > tol
                low = ratio > 1.0 + reference
                high = ratio > 1.0 - reference
            else:
                low = err - reference > tolerance
                high = err + reference > tolerance
            certain = int(low.sum())
            self.certain_failures += certain
            undecided = high & ~low
            if ok is not None:
                undecided &= ok
            found = torch.nonzero(undecided).flatten()
            self.undecided_count += int(found.numel())
            room = UNDECIDED_CAP - len(self.undecided)
            for j in found[: max(0, room)].tolist():
                self.undecided.append(probe(j))

    def extra_max(self, key: str, values: torch.Tensor) -> None:
        """Keep the largest of ``values`` (NaN ignored) under ``extra[key]``."""
        top = float(values.nan_to_num(nan=0.0).amax())
        self.extra[key] = max(self.extra.get(key, -math.inf), top)

    def merge(self, part: ErrorStats) -> None:
        """Fold the statistics of a later chunk, ``part``: the result equals :meth:`update`
        over both chunks' points in order (an earlier point keeps a tie)."""
        self.count += part.count
        self.finite += part.finite
        self.nonfinite += part.nonfinite
        self.max_abs_exact = max(self.max_abs_exact, part.max_abs_exact)
        self.vague += part.vague
        self.vague_stride = max(self.vague_stride, part.vague_stride)
        if self.track_autograd:
            self.max_abs_autograd = max(self.max_abs_autograd, part.max_abs_autograd)
        self.add_sum_sq(part.sum_sq_error, part.sq_scale)
        if part.worst_ratio > self.worst_ratio:
            self.worst_ratio, self.worst = part.worst_ratio, part.worst
        if part.largest is not None and (
            self.largest is None or part.max_abs_error > self.max_abs_error
        ):
            self.max_abs_error, self.largest = part.max_abs_error, part.largest
        elif self.largest is None:  # (the part skipped its search: it cannot have been first)
            self.max_abs_error = max(self.max_abs_error, part.max_abs_error)
        if part.unsure is not None and (
            self.unsure is None or part.max_reference_error > self.max_reference_error
        ):
            self.max_reference_error, self.unsure = part.max_reference_error, part.unsure
        self.certain_failures += part.certain_failures
        self.undecided_count += part.undecided_count
        room = UNDECIDED_CAP - len(self.undecided)
        self.undecided.extend(part.undecided[: max(0, room)])
        for key, value in part.extra.items():
            self.extra[key] = max(self.extra.get(key, -math.inf), value)
        if self.first_nonfinite_index is None and part.first_nonfinite_index is not None:
            self.first_nonfinite_index = part.first_nonfinite_index
            self.first_nonfinite_point = part.first_nonfinite_point
            self.first_nonfinite_values = part.first_nonfinite_values

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

    def status(self) -> str:
        """ "pass", "fail", "inconclusive", or "undefined" (non-finite values on either side)."""
        if self.nonfinite or self.finite == 0:
            return "undefined"
        if self.certain_failures or self.refined_failures:
            return "fail"
        if self.unresolved:
            return "inconclusive"
        if self.vague > INCONCLUSIVE_SHARE * self.finite:
            return "inconclusive"
        return "pass"


def _abs_max(x: torch.Tensor) -> torch.Tensor:
    """max |x| without an |x| tensor (one pass, no allocation)."""
    lo, hi = torch.aminmax(x)
    return torch.maximum(hi, -lo)


def _argmax(x: torch.Tensor) -> int:
    """The first index of the largest value (NumPy's is ~10x faster than torch's on the CPU)."""
    if x.device.type == "cpu":
        return int(x.detach().numpy().argmax())
    return int(x.argmax())
