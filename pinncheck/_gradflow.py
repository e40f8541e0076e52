"""Gradient flow: is the residual's gradient with respect to the solution right, not just its
values?

Training differentiates the residual with respect to the network's output (through its
parameters). A residual whose values are right can still cut that path: ``u.detach()*u_x``,
``u.item()``, ``u.data``, a term computed under ``torch.no_grad()``, or a constant built from
``u``. Its values pass ``verify``, but training through it follows a wrong gradient.

The check perturbs the manufactured solution along a second smooth function ``v`` per unknown,
``u + θ·v`` with one ``θ`` per point (all zero), so that ``dR_i/dθ_i`` at each point is the
residual's derivative in the direction ``v`` (one backward pass gives all of them, because the
residual is pointwise). The exact value is the PDE's linearisation at ``u`` applied to ``v``
(SymPy): ``Σ_P ∂R/∂P · P(v)`` over the PDE's terms ``P`` (``u``, ``u_x``, ...). When they
differ, the difference is fitted on the per-term contributions ``∂R/∂P · P(v)`` to name the
terms whose dependence does not reach autograd.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sympy
import torch

from ._engine import Term
from ._evaluate import Evaluator
from ._exact import exact_partials

# Points used (the first of the sample), and the relative tolerance of the comparison: a term
# cut off the graph is off by O(1) of the term scale, far above rounding.
GRAD_POINTS = 512
GRAD_RTOL = {"float64": 1e-7, "float32": 1e-2}
COARSE_RTOL = 5e-2


@dataclass(frozen=True)
class Linearisation:
    """One PDE's linearisation: the exact total and each term's contribution, as SymPy."""

    total: sympy.Expr
    parts: dict[Term, sympy.Expr]


def directions(symbols: Sequence[sympy.Symbol], m: int) -> list[sympy.Expr]:
    """A smooth, generic direction ``v`` per unknown (non-zero terms of every order)."""
    out = []
    for j in range(m):
        phase = sympy.Rational(1, 2) + sympy.Rational(j, 3)
        arg = sum((sympy.Rational(k + 4, k + 3) * s for k, s in enumerate(symbols)), sympy.S.Zero)
        poly = sympy.Mul(*[s + sympy.Rational(k + 2, 3) for k, s in enumerate(symbols)])
        out.append(sympy.cos(arg + phase) + sympy.Rational(1, 2) * poly**2)
    return out


def linearise(
    residual: sympy.Expr,
    terms: Sequence[Term],
    exact_u: dict[Term, sympy.Expr],
    exact_v: dict[Term, sympy.Expr],
) -> Linearisation:
    """``Σ_P ∂R/∂P · P(v)``, with ``∂R/∂P`` at the manufactured solution."""
    subs = {t.placeholder(): exact_u[t] for t in terms}
    parts: dict[Term, sympy.Expr] = {}
    for t in terms:
        p = t.placeholder()
        if p not in residual.free_symbols:
            continue
        slope = sympy.diff(residual, p).xreplace(subs)
        parts[t] = slope * exact_v[t]
    return Linearisation(sympy.Add(*parts.values()), parts)


def exact_directions(
    symbols: Sequence[sympy.Symbol], unknowns: Sequence[str], alphas: Sequence[tuple[int, ...]]
) -> tuple[list[sympy.Expr], dict[Term, sympy.Expr]]:
    """The directions and their exact derivatives, by term."""
    vs = directions(symbols, len(unknowns))
    exact: dict[Term, sympy.Expr] = {}
    for fname, v in zip(unknowns, vs, strict=True):
        for a, e in exact_partials(v, symbols, alphas).items():
            exact[Term(fname, a)] = e
    return vs, exact


def user_slopes(outputs: Sequence[torch.Tensor], theta: torch.Tensor) -> list[torch.Tensor]:
    """``dR_i/dθ_i`` per equation: zeros where the result is not on θ's graph at all."""
    slopes = []
    for r in outputs:
        if not r.requires_grad:
            slopes.append(torch.zeros_like(theta, dtype=torch.float64))
            continue
        (g,) = torch.autograd.grad(r.sum(), theta, retain_graph=True, allow_unused=True)
        slopes.append(
            torch.zeros_like(theta, dtype=torch.float64)
            if g is None
            else g.detach().to(torch.float64).cpu()
        )
    return slopes


@dataclass
class GradientFinding:
    """The outcome for one equation whose values agree."""

    ok: bool
    max_error: float
    scale: float
    missing: list[Term]


def compare(
    user: torch.Tensor,
    lin: Linearisation,
    ev: Evaluator,
    rtol: float,
) -> GradientFinding:
    """Compare the user's slopes with the exact linearisation; fit the difference on terms."""
    like = ev.tensor(sympy.S.Zero)
    exact = ev.tensor(lin.total, like=like)
    parts = {t: ev.tensor(e, like=like) for t, e in lin.parts.items()}
    scale_vals = sum((p.abs() for p in parts.values()), torch.zeros_like(exact))
    ok_rows = torch.isfinite(exact) & torch.isfinite(user) & torch.isfinite(scale_vals)
    if not bool(ok_rows.any()):
        return GradientFinding(True, 0.0, 0.0, [])
    scale = float(scale_vals[ok_rows].max())
    diff = (exact - user)[ok_rows]
    err = float(diff.abs().max())
    if err <= rtol * scale or scale == 0.0:
        return GradientFinding(True, err, scale, [])
    terms = list(parts)
    a = torch.stack([parts[t][ok_rows] for t in terms], dim=1)
    coef = torch.linalg.lstsq(a, diff[:, None]).solution[:, 0]
    fit_err = float((a @ coef - diff).abs().max())
    missing = []
    if fit_err <= max(0.05 * err, rtol * scale):
        missing = [t for t, c in zip(terms, coef.tolist(), strict=True) if abs(c - 1) < 0.05]
    return GradientFinding(False, err, scale, missing)


__all__ = [
    "GRAD_POINTS",
    "GradientFinding",
    "Linearisation",
    "compare",
    "directions",
    "exact_directions",
    "linearise",
    "user_slopes",
]
