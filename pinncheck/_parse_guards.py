"""The guards of the builder: refuse undefined, complex, huge or costly constant results.

Part of :mod:`pinncheck._parse`. :class:`Guards` holds the checks that every built node passes
(:meth:`Guards.checked`) and the checks on powers and on the work SymPy does with constants;
:class:`~pinncheck._parse_build.Builder` adds the walk over the syntax tree.
"""

from __future__ import annotations

import ast
import math
from typing import NoReturn

import sympy

from pinncheck._parse_names import (
    _MAX_CONSTANT_WORK,
    _MAX_DIGITS,
    _MAX_MAGNITUDE,
    _MAX_RATIONAL_BITS,
    _MAX_ROOT_BITS,
    MAX_EXPONENT,
    _show,
)
from pinncheck._parse_numbers import (
    _UNDEFINED,
    _Approximator,
    _is_finite,
    _number_problem,
    _rational_log10,
    _real_part,
    _smooth_free_bits,
)
from pinncheck._parse_source import _HINT_GENERIC, Source


class Guards:
    """Checks on what a builder builds from the text of ``source``."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.approximate = _Approximator()
        self.sizes: dict[sympy.Basic, int] = {}
        self.constant_work = 0

    def fail(self, node: ast.AST, problem: str, hint: str) -> NoReturn:
        self.source.fail(problem, hint, self.source.node_column(node))

    def checked(self, node: ast.AST, result: sympy.Expr) -> sympy.Expr:
        """Refuse undefined, complex or unmanageably large results of building ``node``."""
        if not isinstance(result, sympy.Expr):
            self.fail(node, "it does not build a number-valued expression", _HINT_GENERIC)
        if result.has(*_UNDEFINED):
            self.fail(
                node,
                f"{_show(self.source.node_text(node), 40)} is undefined (division by zero?)",
                "check divisions and function arguments such as log(0)",
            )
        if result.has(sympy.I):
            self.fail(
                node,
                f"{_show(self.source.node_text(node), 40)} is complex",
                "only real-valued expressions are supported",
            )
        for number in (result, result.as_coeff_Mul()[0], result.as_coeff_Add()[0]):
            problem = _number_problem(number)
            if problem is not None:
                self.fail(node, problem, "rescale the expression or use smaller constants")
        if not result.is_Rational and result.is_number:
            value = self.approximate(result)
            if not _is_finite(value) or abs(value) > _MAX_MAGNITUDE:
                self.fail(
                    node,
                    f"constant too large: {_show(self.source.node_text(node), 40)} exceeds "
                    f"{_MAX_MAGNITUDE:g} in magnitude (or cannot be evaluated)",
                    "rescale the expression or use smaller constants",
                )
            if _real_part(value) is None:
                # SymPy leaves asin(2), acosh(0), atanh(2)... unevaluated; they are complex.
                self.fail(
                    node,
                    f"{_show(self.source.node_text(node), 40)} is complex",
                    "only real-valued expressions are supported; check the function's domain",
                )
        return result

    def size(self, expr: sympy.Basic) -> int:
        """Number of nodes in a SymPy expression tree (memoised)."""
        size = self.sizes.get(expr)
        if size is None:
            size = 1 + sum(self.size(arg) for arg in expr.args)
            self.sizes[expr] = size
        return size

    def spend(self, node: ast.AST, constant: sympy.Expr) -> None:
        """Charge the work SymPy will do on a function or power of a constant expression."""
        if constant.is_Number or not constant.is_number:
            return
        self.constant_work += self.size(constant)
        if self.constant_work > _MAX_CONSTANT_WORK:
            self.fail(
                node,
                "its constant parts are too complex to simplify quickly (long constant "
                "expressions inside nested functions or powers)",
                "simplify the constants, or define them separately as parameters",
            )

    def constant_value(self, node: ast.AST, expr: sympy.Expr, role: str) -> float:
        """The approximate real value of a constant ``expr``; ``role`` names it in messages."""
        value = self.approximate(expr)
        real = _real_part(value) if _is_finite(value) else None
        if real is None:
            problem = "complex" if _is_finite(value) else "too large or cannot be evaluated"
            self.fail(
                node,
                f"{role} {_show(self.source.node_text(node), 40)} is {problem}",
                "only real-valued expressions of moderate size are supported",
            )
        return real

    def power(
        self,
        node: ast.AST,
        base_node: ast.AST,
        exponent_node: ast.AST,
        base: sympy.Expr,
        exponent: sympy.Expr,
    ) -> sympy.Expr:
        """Build ``base**exponent`` after checking that SymPy can build it quickly."""
        self.spend(node, base)
        self.spend(node, exponent)
        if exponent.is_number:
            self.check_power(node, base_node, exponent_node, base, exponent)
        return self.checked(node, sympy.Pow(base, exponent))

    def check_power(
        self,
        node: ast.AST,
        base_node: ast.AST,
        exponent_node: ast.AST,
        base: sympy.Expr,
        exponent: sympy.Expr,
    ) -> None:
        if exponent.is_Rational:
            exp_value = float(exponent)
        else:
            exp_value = self.constant_value(exponent_node, exponent, "the exponent")
        if exp_value == 0.0:
            return
        hint = "rescale the expression or use smaller constants"
        trivial_base = base.is_Number and base in (sympy.S.Zero, sympy.S.One, sympy.S.NegativeOne)
        if not trivial_base and not abs(exp_value) <= MAX_EXPONENT:
            self.fail(
                node,
                f"the exponent is too large (about {exp_value:.4g}; at most {MAX_EXPONENT} in "
                "magnitude)",
                hint,
            )
        if base.is_Pow and base.exp.is_Number:
            if not abs(float(base.exp) * exp_value) <= MAX_EXPONENT:
                self.fail(
                    node,
                    f"the combined exponent is too large (at most {MAX_EXPONENT} in magnitude)",
                    hint,
                )
        if not base.is_number:
            # SymPy distributes powers over a product, so check its numeric coefficient.
            coefficient = base.as_coeff_Mul()[0]
            if coefficient.is_Rational and coefficient not in (sympy.S.One, sympy.S.NegativeOne):
                self.check_constant_power(node, base_node, abs(coefficient), exponent, exp_value)
            return
        if trivial_base:
            if base == sympy.S.NegativeOne and exponent.is_integer is not True:
                self.fail(
                    node,
                    f"{_show(self.source.node_text(node), 40)} is complex",
                    "only real-valued expressions are supported",
                )
            return
        self.check_constant_power(node, base_node, base, exponent, exp_value)

    def check_constant_power(
        self,
        node: ast.AST,
        base_node: ast.AST,
        base: sympy.Expr,
        exponent: sympy.Expr,
        exp_value: float,
    ) -> None:
        """Refuse a constant ``base**exponent`` that is huge, tiny, complex or costly."""
        if base.is_Rational:
            if base.is_zero:  # 0**positive is 0; 0**negative is refused as undefined later
                return
            log_base = _rational_log10(base)
            negative = bool(base.p < 0)
        else:
            value = self.constant_value(base_node, base, "the base")
            if value == 0.0:
                log_base = -math.inf  # a non-zero constant below the float range
            else:
                log_base = math.log10(abs(value)) if math.isfinite(value) else math.inf
            negative = value < 0
        hint = "rescale the expression or use smaller constants"
        magnitude = exp_value * log_base
        if not abs(magnitude) <= _MAX_DIGITS:
            size = "large" if magnitude > 0 else "small"
            about = f"about 10^{magnitude:.0f}" if math.isfinite(magnitude) else f"far too {size}"
            self.fail(
                node,
                f"constant too {size}: {_show(self.source.node_text(node), 40)} is {about} "
                f"(at most 10^+-{_MAX_DIGITS})",
                hint,
            )
        if negative and exponent.is_integer is not True:
            self.fail(
                node,
                f"{_show(self.source.node_text(node), 40)} is a fractional power of a negative "
                "number, which is complex",
                "only real-valued expressions are supported",
            )
        if base.is_Rational:
            bits = max(int(base.p).bit_length(), int(base.q).bit_length())
            if abs(exp_value) * bits > _MAX_RATIONAL_BITS:
                self.fail(
                    node,
                    f"the exact value of {_show(self.source.node_text(node), 40)} has too many "
                    "digits (at most about 360)",
                    "use a float approximation or smaller numbers",
                )
            if exponent.is_integer is not True:
                root_bits = max(_smooth_free_bits(int(base.p)), _smooth_free_bits(int(base.q)))
                if root_bits > _MAX_ROOT_BITS:
                    self.fail(
                        node,
                        f"a fractional power of a number with about {int(bits * 0.30103)} "
                        "digits is too costly to simplify exactly",
                        "use a shorter number",
                    )
