"""High-precision values of SymPy expressions with mpmath: the reference where float64 is not
accurate enough.

The expressions are pinncheck's own (parsed by its allowlist, then differentiated), and this
module walks their trees itself: numbers stay exact (``Rational`` is divided at the working
precision, ``pi`` and ``E`` come from mpmath), so no float64 rounding enters. Each value is
computed at two working precisions; when they disagree in the digits that matter, both are
raised, up to :data:`MAX_DPS`. Nothing is compiled and no string is evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import mpmath
import sympy

from ._parse import sigmoid

START_DPS = 40
"""First working precision, in decimal digits (float64 carries about 16)."""
MAX_DPS = 640
"""Highest working precision; beyond it a value is reported as not resolved (None)."""
AGREE_DIGITS = 24
"""Digits two evaluations must share for a value to be taken as exact."""


def _sigmoid(x: mpmath.mpf) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-x))


_FUNCTIONS: dict[type, Callable[[mpmath.mpf], mpmath.mpf]] = {
    sympy.sin: mpmath.sin,
    sympy.cos: mpmath.cos,
    sympy.tan: mpmath.tan,
    sympy.sec: mpmath.sec,
    sympy.csc: mpmath.csc,
    sympy.cot: mpmath.cot,
    sympy.exp: mpmath.exp,
    sympy.log: mpmath.log,
    sympy.sinh: mpmath.sinh,
    sympy.cosh: mpmath.cosh,
    sympy.tanh: mpmath.tanh,
    sympy.sech: mpmath.sech,
    sympy.csch: mpmath.csch,
    sympy.coth: mpmath.coth,
    sympy.asin: mpmath.asin,
    sympy.acos: mpmath.acos,
    sympy.atan: mpmath.atan,
    sympy.asinh: mpmath.asinh,
    sympy.acosh: mpmath.acosh,
    sympy.atanh: mpmath.atanh,
    sympy.erf: mpmath.erf,
    sympy.erfc: mpmath.erfc,
    sympy.Abs: abs,
    sympy.sign: mpmath.sign,
    sigmoid: _sigmoid,
    sympy.DiracDelta: lambda x: mpmath.mpf(0),
    sympy.Heaviside: lambda x: mpmath.mpf(0.5) if x == 0 else mpmath.mpf(x > 0),
}


class Unsupported(Exception):
    """An expression node this evaluator does not know."""


def _walk(expr: sympy.Basic, env: Mapping[sympy.Basic, Any], memo: dict) -> Any:
    hit = memo.get(expr)
    if hit is not None:
        return hit
    if expr in env:
        value = env[expr]
    elif isinstance(expr, sympy.Integer):
        value = mpmath.mpf(int(expr))
    elif isinstance(expr, sympy.Rational):
        value = mpmath.mpf(int(expr.p)) / int(expr.q)
    elif isinstance(expr, sympy.Float):
        value = mpmath.mpf(expr._mpf_)
    elif expr is sympy.pi:
        value = +mpmath.pi
    elif expr is sympy.E:
        value = +mpmath.e
    elif isinstance(expr, sympy.Add):
        value = mpmath.fsum(_walk(a, env, memo) for a in expr.args)
    elif isinstance(expr, sympy.Mul):
        value = mpmath.fprod(_walk(a, env, memo) for a in expr.args)
    elif isinstance(expr, sympy.Pow):
        base, ex = expr.args
        b = _walk(base, env, memo)
        if isinstance(ex, sympy.Integer):
            value = b ** int(ex)
        elif ex == sympy.Rational(1, 2):
            value = mpmath.sqrt(b)
        else:
            value = mpmath.power(b, _walk(ex, env, memo))
    elif isinstance(expr, (sympy.Min, sympy.Max)):
        pick = min if isinstance(expr, sympy.Min) else max
        value = pick(_walk(a, env, memo) for a in expr.args)
    elif type(expr) in _FUNCTIONS and len(expr.args) == 1:
        value = _FUNCTIONS[type(expr)](_walk(expr.args[0], env, memo))
    else:
        raise Unsupported(type(expr).__name__)
    if isinstance(value, mpmath.mpc):
        value = value.real if value.imag == 0 else mpmath.nan
    memo[expr] = value
    return value


def evaluate(
    exprs: Sequence[sympy.Expr],
    env: Mapping[sympy.Basic, float],
    *,
    derived: Sequence[tuple[sympy.Expr, Mapping[sympy.Basic, int]]] = (),
    atol: Sequence[float] | None = None,
) -> list[float | None]:
    """The values of ``exprs`` at the point ``env`` (symbol -> float), correctly rounded to
    float64 where resolved (None where not, or where undefined).

    ``derived`` are further expressions whose symbols stand for values of ``exprs``:
    ``(expr, {symbol: index into exprs})``; their values follow those of ``exprs``.
    ``atol`` (one per value) is an absolute accuracy that suffices for each value: a value
    that is zero in truth (a residual that cancels) agrees to it, where relative agreement
    would never come.
    """
    floors = list(atol) if atol is not None else [0.0] * (len(exprs) + len(derived))
    results: list[list] = []
    dps = START_DPS
    while dps <= MAX_DPS:
        with mpmath.workdps(dps):
            point = {s: mpmath.mpf(v) for s, v in env.items()}
            memo: dict = {}
            try:
                vals = [_walk(e, point, memo) for e in exprs]
                for expr, uses in derived:
                    inner = dict(point)
                    inner.update({s: vals[i] for s, i in uses.items()})
                    vals.append(_walk(expr, inner, {}))
            except (ZeroDivisionError, ValueError, OverflowError):
                return [None] * (len(exprs) + len(derived))
        results.append(vals)
        if len(results) >= 2 and all(map(_agree, results[-2], results[-1], floors)):
            return [_to_float(v) for v in results[-1]]
        dps *= 2
    return [None] * (len(exprs) + len(derived))


def _agree(a: object, b: object, floor: float) -> bool:
    if not (isinstance(a, mpmath.mpf) and isinstance(b, mpmath.mpf)):
        return False
    if mpmath.isnan(a) or mpmath.isnan(b) or mpmath.isinf(a) or mpmath.isinf(b):
        return a == b or (mpmath.isnan(a) and mpmath.isnan(b))
    scale = max(abs(a), abs(b))
    diff = abs(a - b)
    return diff <= scale * mpmath.mpf(10) ** -AGREE_DIGITS or diff <= floor


def _to_float(v: object) -> float | None:
    if not isinstance(v, mpmath.mpf) or mpmath.isnan(v):
        return None
    return float(v)
