"""Warnings for expressions that are singular or undefined somewhere in the domain.

Sampled points rarely hit a singularity exactly, so a check could pass while the function (or
one of its derivatives) blows up inside the box. Each subexpression that can be singular (a
denominator, a log argument, a non-integer power, asin/acos/atanh/acosh arguments, tan, Abs)
is evaluated on a grid over the whole box, boundary included; a sign change or a zero on the
grid means the singular set meets the domain.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import sympy
import torch

from ._domain import Domain
from ._evaluate import Evaluator

GRID_POINTS = 20_000


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


def _grid(domain: Domain) -> list[torch.Tensor]:
    d = len(domain)
    per_axis = max(3, int(GRID_POINTS ** (1.0 / d)))
    axes = [
        torch.linspace(lo, hi, per_axis, dtype=torch.float64)
        for lo, hi in zip(domain.lows, domain.highs, strict=True)
    ]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return [m.reshape(-1) for m in mesh]


def singularity_warnings(expr: sympy.Expr, domain: Domain) -> list[str]:
    """Human-readable warnings, one per singular or undefined subexpression of ``expr``."""
    from ._parse import real_symbol

    hazards = list(_hazards(expr))
    if not hazards:
        return []
    pts = _grid(domain)
    if domain.where:  # only the region's part of the grid: singularities outside do not count
        from ._region import mask

        inside = mask(domain.where, domain.names, torch.stack(pts))
        pts = [p[inside] for p in pts]
        if pts[0].numel() == 0:
            return []
    ev = Evaluator({real_symbol(n): p for n, p in zip(domain.names, pts, strict=True)})
    out: list[str] = []
    seen: set[str] = set()
    for node, g, kind in hazards:
        try:
            vals = ev.tensor(g)
        except Exception:  # an unevaluable piece only loses its warning
            continue
        vals = vals[torch.isfinite(vals)]
        if vals.numel() == 0:
            continue
        lo, hi = float(vals.min()), float(vals.max())
        msg = _message(node, g, kind, lo, hi, float(vals.abs().min()))
        if msg and msg not in seen:
            seen.add(msg)
            out.append(f"{msg} (domain {domain}).")
    return out


def _message(
    node: sympy.Expr, g: sympy.Expr, kind: str, lo: float, hi: float, amin: float
) -> str | None:
    tiny = 1e-12 * max(1.0, abs(lo), abs(hi))
    touches = amin <= tiny
    crosses = lo < 0 < hi
    where = "inside the domain" if crosses else "on the domain's boundary"
    if kind == "zero" and (crosses or touches):
        return f"{node} is singular where {g} = 0, which happens {where}"
    if kind == "nonneg":
        if lo < -tiny:
            return (
                f"{node} is singular where {g} = 0 and undefined where {g} < 0, which "
                "happens inside the domain"
            )
        if touches:
            return (
                f"{node} is singular (its derivatives are) where {g} = 0, which happens on "
                "the domain's boundary"
            )
    if kind == "positive":
        if lo < -tiny or crosses:
            return (
                f"{node} is singular where {g} = 0 and undefined where {g} < 0, which "
                "happens inside the domain"
            )
        if touches:
            return f"{node} is singular where {g} = 0, which happens on the domain's boundary"
    if kind == "unit" and max(abs(lo), abs(hi)) >= 1 - 1e-12:
        state = "undefined where |{g}| > 1 and " if max(abs(lo), abs(hi)) > 1 + 1e-12 else ""
        return f"{node} is {state.format(g=g)}singular where |{g}| = 1, which happens in the domain"
    if kind == "kink" and (crosses or touches) and not math.isclose(lo, hi):
        return (
            f"{node} is not differentiable where {g} = 0 (a kink; derivatives are singular "
            f"there), which happens {where}"
        )
    return None
