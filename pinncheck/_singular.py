"""Warnings for expressions that are singular or undefined somewhere in the domain.

Sampled points rarely hit a singularity exactly, so a check could pass while the function (or
one of its derivatives) blows up inside the box. Each subexpression that can be singular (a
denominator, a log argument, a non-integer power, asin/acos/atanh/acosh arguments, tan, Abs,
Min/Max, Heaviside) is probed on a grid (or, in many variables, random points) over the box,
boundary included; a sign change, or a minimum of |g| that a local search drives to zero, means
the singular set meets the domain. Only the variables a subexpression uses are sampled, so the
work does not grow exponentially with the number of variables.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import sympy
import torch

from ._domain import Domain
from ._evaluate import Evaluator, Program

GRID_POINTS = 20_000
"""Points each subexpression is probed on (in the variables it uses)."""
REFINE_STARTS = 8
REFINE_BELOW = 0.05
"""A local search for a zero starts where min |g| on the grid is below this share of max |g|."""
REFINE_MAX = 16
"""The local search runs for at most this many subexpressions (the closest to zero first)."""
"""A local search for a zero starts where min |g| on the grid is below this share of max |g|."""
REFINE_STEPS = 80


def _hazards(expr: sympy.Expr) -> Iterator[tuple[sympy.Expr, sympy.Expr, str]]:
    """(subexpression, g, kind): the subexpression misbehaves where g hits the condition."""
    for node in sympy.preorder_traversal(expr):
        if not getattr(node, "free_symbols", None):
            continue
        if isinstance(node, sympy.Pow):
            base, ex = node.args
            if not base.free_symbols or not ex.is_Number:
                continue
            if ex.is_negative:
                yield node, base, "zero"
            elif not ex.is_Integer:
                yield node, base, "nonneg"
        elif isinstance(node, sympy.log):
            yield node, node.args[0], "positive"
        elif isinstance(node, (sympy.asin, sympy.acos, sympy.atanh)):
            yield node, node.args[0], "unit"
        elif isinstance(node, sympy.acosh):
            yield node, node.args[0] - 1, "nonneg"
        elif isinstance(node, sympy.tan):
            yield node, sympy.cos(node.args[0]), "zero"
        elif isinstance(node, sympy.Abs):
            yield node, node.args[0], "kink"
        elif isinstance(node, (sympy.Min, sympy.Max)):
            # A kink where two arguments are equal (pairs; three-way ties are rarer still).
            args = node.args
            for i, a in enumerate(args):
                for b in args[i + 1 :]:
                    yield node, a - b, "kink"
        elif isinstance(node, sympy.Heaviside):
            yield node, node.args[0], "jump"


def _points(lows: list[float], highs: list[float], seed: int = 0) -> torch.Tensor:
    """About GRID_POINTS points over the box, as ``(m, d)``; never exponential in ``d``.

    Up to the dimension where three points per axis fit, a full grid (boundary included);
    beyond it, uniform random points plus random corners of the box.
    """
    d = len(lows)
    lo = torch.tensor(lows, dtype=torch.float64)
    hi = torch.tensor(highs, dtype=torch.float64)
    per_axis = int(GRID_POINTS ** (1.0 / d) + 1e-9)
    if per_axis >= 3:
        pairs = zip(lows, highs, strict=True)
        axes = [torch.linspace(a, b, per_axis, dtype=torch.float64) for a, b in pairs]
        mesh = torch.meshgrid(*axes, indexing="ij")
        return torch.stack([m.reshape(-1) for m in mesh], dim=1)
    gen = torch.Generator().manual_seed(seed)
    inside = torch.rand(GRID_POINTS, d, generator=gen, dtype=torch.float64)
    corners = torch.randint(0, 2, (GRID_POINTS // 10, d), generator=gen).to(torch.float64)
    unit = torch.cat([inside, corners, torch.full((1, d), 0.5, dtype=torch.float64)])
    return lo + unit * (hi - lo)


class _Probe:
    """Values of one subexpression ``g`` over the box, in the variables ``g`` uses only."""

    def __init__(self, g: sympy.Expr, domain: Domain) -> None:
        from ._parse import real_symbol

        # With a region (--where), every variable: the region's test needs them all.
        names = [n for n in domain.names if domain.where or real_symbol(n) in g.free_symbols]
        index = [domain.names.index(n) for n in names]
        self.g = g
        self.symbols = [real_symbol(n) for n in names]
        self.lows = [domain.lows[i] for i in index]
        self.highs = [domain.highs[i] for i in index]
        self.box = (tuple(self.lows), tuple(self.highs), tuple(names))
        self.program: Program | None = None

    def __call__(self, pts: torch.Tensor) -> torch.Tensor:
        if self.program is None:
            self.program = Program([self.g], self.symbols)
        return self.program.run(list(pts.unbind(1)))[0]

    def closest_to_zero(self, pts: torch.Tensor, vals: torch.Tensor) -> float:
        """The smallest |g| found by a compass search from the best grid points."""
        mag = vals.abs().nan_to_num(nan=math.inf)
        best = pts[mag.argsort()[:REFINE_STARTS]]
        best_val = self(best).abs().nan_to_num(nan=math.inf)
        lo = torch.tensor(self.lows, dtype=torch.float64)
        hi = torch.tensor(self.highs, dtype=torch.float64)
        d = best.shape[1]
        step = ((hi - lo) / max(2.0, len(pts) ** (1.0 / d))).expand_as(best).clone()
        moves = torch.cat([torch.eye(d, dtype=torch.float64), -torch.eye(d, dtype=torch.float64)])
        for _ in range(REFINE_STEPS):
            trial = (best[:, None, :] + moves[None] * step[:, None, :]).clamp(lo, hi)
            tv = self(trial.reshape(-1, d)).abs().nan_to_num(nan=math.inf).reshape(len(best), -1)
            new_val, pick = tv.min(dim=1)
            better = new_val < best_val
            best = torch.where(better[:, None], trial[torch.arange(len(best)), pick], best)
            best_val = torch.where(better, new_val, best_val)
            step = torch.where(better[:, None], step, step / 2)
            if float(best_val.min()) == 0.0 or bool((step <= 1e-15 * (hi - lo)).all()):
                break
        return float(best_val.min())


def singularity_warnings(expr: sympy.Expr, domain: Domain) -> list[str]:
    """Human-readable warnings, one per singular or undefined subexpression of ``expr``.

    Each subexpression ``g`` is probed on about :data:`GRID_POINTS` points in the variables it
    uses (never a grid exponential in the number of variables); where |g| gets small without a
    sign change, a local search finds whether it touches zero.
    """
    out: list[str] = []
    for _, msg in _findings(expr, domain):
        if f"{msg} (domain {domain})." not in out:
            out.append(f"{msg} (domain {domain}).")
    return out


@dataclass(frozen=True)
class SingularSet:
    """Where a subexpression of an expression is singular, as pinncheck's warnings say: the
    points of the domain where ``g`` equals one of ``levels`` (``g = 0``; ``|g| = 1`` for
    asin, acos and atanh, whose levels are ``(-1, 1)``). For drawing (:mod:`pinncheck._plot`)."""

    node: sympy.Expr
    """The subexpression (``1/x``, ``log(x - 1)``...)."""
    g: sympy.Expr
    """The function of the variables whose level sets are singular."""
    levels: tuple[float, ...]
    variables: tuple[str, ...]
    """The variables ``g`` uses, in the domain's order."""
    warning: str
    """The warning pinncheck prints for it."""

    def values(self, points: dict[str, torch.Tensor]) -> torch.Tensor:
        """``g`` at points given per variable (float64 tensors of one shape)."""
        from ._parse import real_symbol

        names = list(self.variables)
        program = Program([self.g], [real_symbol(n) for n in names])
        shape = points[names[0]].shape
        flat = [points[n].reshape(-1).to(torch.float64) for n in names]
        return program.run(flat)[0].expand(flat[0].shape).reshape(shape)


def singular_sets(expr: sympy.Expr, domain: Domain) -> list[SingularSet]:
    """The singular sets of ``expr`` that meet ``domain``: one per warning of
    :func:`singularity_warnings` (same detection, same order)."""
    from ._parse import real_symbol

    out = []
    for f, msg in _findings(expr, domain):
        names = tuple(n for n in domain.names if real_symbol(n) in f.g.free_symbols)
        if names:
            levels = (-1.0, 1.0) if f.kind == "unit" else (0.0,)
            out.append(SingularSet(f.node, f.g, levels, names, msg))
    return out


def _findings(expr: sympy.Expr, domain: Domain) -> list[tuple[_Sampled, str]]:
    """Each hazard of ``expr`` that meets the domain, with its warning's text."""
    # One point set and one evaluator (sharing subexpressions) per set of variables used.
    grids: dict[tuple[tuple, ...], tuple[torch.Tensor, Evaluator]] = {}
    found: list[_Sampled] = []
    for node, g, kind in dict.fromkeys(_hazards(expr)):
        try:
            probe = _Probe(g, domain)
            if probe.box not in grids:
                pts = _points(probe.lows, probe.highs)
                if domain.where:  # only the region's points: singularities outside do not count
                    from ._region import mask

                    pts = pts[mask(domain.where, domain.names, pts.T.contiguous())]
                inputs = dict(zip(probe.symbols, pts.unbind(1), strict=True))
                grids[probe.box] = pts, Evaluator(inputs)
            pts, ev = grids[probe.box]
            vals = ev.tensor(g)
        except Exception:  # an unevaluable piece only loses its warning
            continue
        finite = vals[torch.isfinite(vals)]
        if finite.numel() and pts.shape[0]:
            lo, hi, amin = float(finite.min()), float(finite.max()), float(finite.abs().min())
            found.append(_Sampled(node, g, kind, lo, hi, amin, probe, pts, vals))
    # A local search where |g| comes close to 0 on the grid without a sign change; for the
    # REFINE_MAX closest subexpressions only, so the work stays bounded.
    near = sorted((f for f in found if f.closeness() <= REFINE_BELOW), key=_Sampled.closeness)
    for item in near[:REFINE_MAX]:
        try:
            item.amin = min(item.amin, item.probe.closest_to_zero(item.pts, item.vals))
        except Exception:  # the grid's value stands
            continue
    out = []
    for f in found:
        msg = _message(f.node, f.g, f.kind, f.lo, f.hi, f.amin)
        if msg:
            out.append((f, msg))
    return out


@dataclass
class _Sampled:
    """One hazard's values on the grid: ``g`` ranges over [lo, hi], |g| >= amin."""

    node: sympy.Expr
    g: sympy.Expr
    kind: str
    lo: float
    hi: float
    amin: float
    probe: _Probe
    pts: torch.Tensor
    vals: torch.Tensor

    def closeness(self) -> float:
        """min |g| relative to max |g| where that may hide a zero; inf where it cannot."""
        if self.kind == "unit" or self.lo < 0 < self.hi:
            return math.inf
        return self.amin / max(abs(self.lo), abs(self.hi), 1e-300)


def _message(
    node: sympy.Expr, g: sympy.Expr, kind: str, lo: float, hi: float, amin: float
) -> str | None:
    tiny = 1e-12 * max(1.0, abs(lo), abs(hi))
    touches = amin <= tiny
    crosses = lo < 0 < hi
    where = "inside the domain" if crosses else "in the domain (it reaches 0 without a sign change)"
    if kind == "zero" and (crosses or touches):
        return f"{node} is singular where {g} = 0, which happens {where}"
    if kind == "nonneg":
        if lo < -tiny:
            return (
                f"{node} is singular where {g} = 0 and undefined where {g} < 0, which "
                "happens inside the domain"
            )
        if touches:
            return f"{node} is singular (its derivatives are) where {g} = 0, which happens {where}"
    if kind == "positive":
        if lo < -tiny or crosses:
            return (
                f"{node} is singular where {g} = 0 and undefined where {g} < 0, which "
                "happens inside the domain"
            )
        if touches:
            return f"{node} is singular where {g} = 0, which happens {where}"
    if kind == "unit" and max(abs(lo), abs(hi)) >= 1 - 1e-12:
        state = "undefined where |{g}| > 1 and " if max(abs(lo), abs(hi)) > 1 + 1e-12 else ""
        return f"{node} is {state.format(g=g)}singular where |{g}| = 1, which happens in the domain"
    if kind == "jump" and (crosses or touches) and not math.isclose(lo, hi):
        return (
            f"{node} jumps where {g} = 0 (its derivatives there are infinite, not the zero "
            f"that autograd and SymPy give), which happens {where}"
        )
    if kind == "kink" and (crosses or touches) and not math.isclose(lo, hi):
        return (
            f"{node} is not differentiable where {g} = 0 (a kink; derivatives are singular "
            f"there), which happens {where}"
        )
    return None
