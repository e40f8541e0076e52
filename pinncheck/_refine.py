"""A second look, in high precision, at the points where the float64 reference is not good
enough: to settle a verdict, and to report autograd's true error.

After a run, each quantity's statistics hold a few :class:`~pinncheck._compare.Probe` s:

* the *undecided* points, where ``|autograd - reference|`` is within the reference's own error
  bound of the tolerance, so that the float64 reference cannot say pass or fail. Each gets its
  true value (mpmath, :mod:`pinncheck._highprec`) and is judged against it. One that cannot be
  settled (over the cap, past the time budget, or not resolved) makes the quantity
  *inconclusive*, never a pass.
* the worst point, the point of largest error and the point of the largest reference error,
  when the reference's error there is not small against the error reported: their true errors
  replace the reference's figures, so a reported error never includes the reference's own.

The work is bounded: at most :data:`~pinncheck._compare.UNDECIDED_CAP` undecided points per
quantity, and :data:`REFINE_SECONDS` of high-precision work per run for the reported figures.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import sympy

from . import _highprec
from ._compare import ErrorStats, Probe

REFINE_SECONDS = 3.0
"""High-precision work per run for the reported figures (verdicts are settled first, with
:data:`VERDICT_SECONDS`)."""
VERDICT_SECONDS = 30.0
"""High-precision work per run to settle undecided points."""
SIGNIFICANT = 0.01
"""A reported error is re-measured when the reference's error bound there exceeds this share
of it."""


class Quantity:
    """What the high-precision evaluator needs for one quantity: its expression (with the
    terms it uses, for a derived quantity)."""

    def __init__(
        self,
        expr: sympy.Expr,
        symbols: Sequence[sympy.Symbol],
        terms: Sequence[tuple[sympy.Symbol, sympy.Expr]] = (),
    ) -> None:
        self.expr = expr
        self.symbols = list(symbols)
        self.terms = list(terms)

    def truth(self, probe: Probe) -> float | None:
        env = dict(zip(self.symbols, probe.point, strict=True))
        # Enough accuracy: a small fraction of the tolerance (a zero residual agrees to it).
        floor = max(probe.tolerance, 0.0) * 1e-6
        if not self.terms:
            return _highprec.evaluate([self.expr], env, atol=[floor])[0]
        exprs = [e for _, e in self.terms]
        uses = {s: i for i, (s, _) in enumerate(self.terms)}
        values = _highprec.evaluate(
            exprs,
            env,
            derived=[(self.expr, uses)],
            atol=[0.0] * len(exprs) + [floor],
        )
        return values[-1]


def refine(quantities: Sequence[tuple[ErrorStats, Quantity]]) -> None:
    """Settle the undecided points and re-measure the reported errors, in place."""
    deadline = time.perf_counter() + VERDICT_SECONDS
    for stats, q in quantities:
        for probe in stats.undecided:
            if time.perf_counter() < deadline:
                _settle(probe, q)
            if probe.truth is None:
                stats.unresolved += 1
            elif probe.error > probe.tolerance:
                stats.refined_failures += 1
        stats.unresolved += stats.undecided_count - len(stats.undecided)
    deadline = time.perf_counter() + REFINE_SECONDS
    for stats, q in quantities:
        probes = [p for p in (stats.worst, stats.largest, stats.unsure) if p is not None]
        for probe in probes:
            if time.perf_counter() >= deadline:
                break
            if probe.reference_error > SIGNIFICANT * abs(probe.autograd - probe.exact):
                _settle(probe, q)
        _report_true_errors(stats, probes)


def _settle(probe: Probe, q: Quantity) -> None:
    if probe.truth is None:
        try:
            probe.truth = q.truth(probe)
        except _highprec.Unsupported:
            probe.truth = None


def _report_true_errors(stats: ErrorStats, probes: Sequence[Probe]) -> None:
    # The largest error reported: the true errors where known, the reference's elsewhere.
    if not probes or stats.largest is None:
        return
    known = [p.error for p in probes if p.truth is not None]
    if not known:
        return
    others = [] if stats.largest.truth is not None else [stats.max_abs_error]
    stats.max_abs_error = max(known + others)
    ratios = [p.ratio for p in probes if p.truth is not None]
    if stats.worst is not None and stats.worst.truth is None:
        ratios.append(stats.worst_ratio)
    stats.worst_ratio = max(ratios)
