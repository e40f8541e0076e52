"""Derivatives of ``Abs`` for real-valued arguments, evaluable with the fixed torch table.

SymPy's ``Abs`` assumes its argument may be complex unless it can prove otherwise, so the
derivative of ``Abs(sqrt(x))`` or ``Abs(atanh(x))`` comes out in ``re``, ``im`` and ``atan2``,
and ``Abs(x)`` at order 3 in ``DiracDelta(x, 1)``. pinncheck works with real values (where an
argument is not real the value is undefined anyway), so before differentiating, ``Abs`` and
``sign`` are replaced by the real versions below, whose derivatives are

* d|g| = sign(g) g', written back as ``g/Abs(g)``: the same value where g != 0, and 0/0 (an
  undefined point, not a wrong one) on the kink g = 0;
* d sign(g) = 2 DiracDelta(g) g', and every derivative of DiracDelta(g) is again a multiple of
  DiracDelta(g): zero at every point off the kink, undefined on it (see ``_evaluate``).

A kink inside the domain is warned about separately (``_singular``).
"""

from __future__ import annotations

from typing import Any

import sympy


class _RealAbs(sympy.Function):
    """|g| for a real g."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        return _RealSign(self.args[0])


class _RealSign(sympy.Function):
    """sign(g) for a real g."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        return 2 * _Delta(self.args[0])


class _Delta(sympy.Function):
    """A derivative of DiracDelta(g): zero off g = 0, undefined on it."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        return _Delta(self.args[0])


def to_real_calculus(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with ``Abs``/``sign``/``DiracDelta`` replaced by their real versions."""
    if not expr.has(sympy.Abs, sympy.sign, sympy.DiracDelta):
        return expr
    return expr.replace(
        lambda e: isinstance(e, sympy.Abs | sympy.sign | sympy.DiracDelta),
        lambda e: {sympy.Abs: _RealAbs, sympy.sign: _RealSign}.get(type(e), _Delta)(e.args[0]),
    )


def from_real_calculus(expr: sympy.Expr) -> sympy.Expr:
    """Back to functions pinncheck evaluates: Abs, g/Abs(g) and DiracDelta(g)."""
    if not expr.has(_RealAbs, _RealSign, _Delta):
        return expr
    return expr.replace(
        lambda e: isinstance(e, _RealAbs | _RealSign | _Delta),
        lambda e: _back(type(e), e.args[0]),
    )


def _back(kind: type, g: sympy.Expr) -> sympy.Expr:
    if kind is _RealAbs:
        return sympy.Abs(g)
    if kind is _RealSign:
        return g / sympy.Abs(g)
    return sympy.DiracDelta(g)
