"""Exact numbers and quick float approximations for the parser's size guards.

Part of :mod:`pinncheck._parse`.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Callable
from typing import Any

import sympy

from pinncheck._parse_names import (
    _MAX_DIGITS,
    _MAX_RATIONAL_BITS,
    sigmoid,
)

_UNDEFINED = (sympy.zoo, sympy.oo, -sympy.oo, sympy.nan)

# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def _rational_log10(value: sympy.Rational) -> float:
    """``log10(|value|)`` of a non-zero exact rational, without converting it to a float."""
    return math.log10(abs(int(value.p))) - math.log10(int(value.q))


def _smooth_free_bits(number: int) -> int:
    """Bit length of ``|number|`` after removing all factors 2, 3, 5 and 7."""
    number = abs(number)
    if number == 0:
        return 0
    number >>= (number & -number).bit_length() - 1
    for prime in (3, 5, 7):
        while number % prime == 0:
            number //= prime
    return number.bit_length()


def _number_problem(value: sympy.Expr) -> str | None:
    """Why an exact rational is too large, too small or too long to work with, or None."""
    if not value.is_Rational or value.is_zero:
        return None
    if max(int(value.p).bit_length(), int(value.q).bit_length()) > _MAX_RATIONAL_BITS:
        return f"an exact number has more than {_MAX_RATIONAL_BITS} bits (about 360 digits)"
    magnitude = _rational_log10(value)
    if abs(magnitude) > _MAX_DIGITS:
        size = "large" if magnitude > 0 else "small"
        return f"a constant is too {size} (about 10^{magnitude:.0f}; at most 10^+-{_MAX_DIGITS})"
    return None


def _is_finite(value: complex) -> bool:
    return cmath.isfinite(value)


def _real_part(value: complex) -> float | None:
    """The real part of ``value`` if its imaginary part is negligible, else None."""
    if abs(value.imag) > 1e-9 * max(1.0, abs(value.real)):
        return None
    return value.real


def _erf(value: complex) -> complex:
    if value.imag != 0.0:
        raise ValueError("complex argument")
    return complex(math.erf(value.real))


def _erfc(value: complex) -> complex:
    if value.imag != 0.0:
        raise ValueError("complex argument")
    return complex(math.erfc(value.real))


def _sigmoid(value: complex) -> complex:
    if value.imag == 0.0 and value.real < 0:  # avoids overflow of exp(-x) for very negative x
        return complex(math.exp(value.real) / (1 + math.exp(value.real)))
    return 1 / (1 + cmath.exp(-value))


_APPROXIMATIONS: dict[Any, Callable[[complex], complex]] = {
    sympy.sin: cmath.sin,
    sympy.cos: cmath.cos,
    sympy.tan: cmath.tan,
    sympy.cot: lambda value: 1 / cmath.tan(value),
    sympy.exp: cmath.exp,
    sympy.log: cmath.log,
    sympy.sinh: cmath.sinh,
    sympy.cosh: cmath.cosh,
    sympy.tanh: cmath.tanh,
    sympy.asin: cmath.asin,
    sympy.acos: cmath.acos,
    sympy.atan: cmath.atan,
    sympy.asinh: cmath.asinh,
    sympy.acosh: cmath.acosh,
    sympy.atanh: cmath.atanh,
    sympy.erf: _erf,
    sympy.erfc: _erfc,
    sympy.Abs: lambda value: complex(abs(value)),
    sigmoid: _sigmoid,
    sympy.sech: lambda value: 1 / cmath.cosh(value),
    sympy.csch: lambda value: 1 / cmath.sinh(value),
    sympy.coth: lambda value: 1 / cmath.tanh(value),
}


class _Approximator:
    """Approximate values of constant SymPy expressions in floating point, memoised.

    The guards against huge constants need rough values of the constant parts of an expression
    as it is built. Evaluating each part with SymPy's ``evalf`` would re-evaluate the same
    subexpressions again and again (and ``evalf`` can be slow on huge arguments); this walks
    each distinct subexpression once with Python floats. Overflow and undefined operations give
    a non-finite value, which the guards refuse.
    """

    def __init__(self) -> None:
        self.memo: dict[sympy.Basic, complex] = {}

    def __call__(self, expr: sympy.Basic) -> complex:
        value = self.memo.get(expr)
        if value is None:
            try:
                value = self.compute(expr)
            except Exception:  # overflow, a domain error, or SymPy unable to evaluate
                value = complex(math.nan, math.nan)
            self.memo[expr] = value
        return value

    def compute(self, expr: sympy.Basic) -> complex:
        if expr.is_Rational:
            return complex(int(expr.p) / int(expr.q))
        if expr.is_Float or isinstance(expr, sympy.NumberSymbol):
            return complex(float(expr))
        if expr.is_Add:
            return sum((self(arg) for arg in expr.args), complex(0.0))
        if expr.is_Mul:
            product = complex(1.0)
            for arg in expr.args:
                product *= self(arg)
            return product
        if expr.is_Pow:
            base, exponent = self(expr.base), self(expr.exp)
            if base.imag == 0.0 and exponent.imag == 0.0:
                if base.real >= 0.0 or float(exponent.real).is_integer():
                    return complex(math.pow(base.real, exponent.real))
            return complex(base**exponent)
        function = _APPROXIMATIONS.get(type(expr))
        if function is not None and len(expr.args) == 1:
            return complex(function(self(expr.args[0])))
        return complex(expr.evalf(15))  # rare: a function SymPy produced by simplification


def _final_value(expr: sympy.Expr) -> tuple[float | None, str]:
    """Evaluate a constant expression with ``evalf(30)``.

    Returns ``(value, "")`` for a real value (infinite when it overflows a float) or
    ``(None, reason)`` where ``reason`` is "undefined", "complex" or "not evaluable".
    """
    try:
        value = expr.evalf(30)
        if value.has(*_UNDEFINED):
            return None, "undefined"
        real, imag = value.as_real_imag()
        if not (real.is_Number and imag.is_Number):
            return None, "not evaluable"
        real_float, imag_float = float(real), float(imag)
    except OverflowError:
        return math.inf, ""
    except Exception:  # any failure of SymPy/mpmath means the value is not usable
        return None, "not evaluable"
    if math.isnan(real_float) or math.isnan(imag_float):
        return None, "undefined"
    if imag_float != 0.0 and abs(imag_float) > 1e-25 * max(1.0, abs(real_float)):
        return None, "complex"
    return real_float, ""
