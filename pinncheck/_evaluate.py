"""Evaluate SymPy expressions as torch operations, without generated code.

The expressions are walked node by node and each node is mapped to one torch call from a fixed
table. Identical subexpressions (within one expression and across a list of them) are evaluated
once per call. No string is ever compiled or evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import sympy
import torch

from ._errors import ExpressionError
from ._parse import sigmoid

Value = torch.Tensor | float

_UNARY: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    sympy.sin: torch.sin,
    sympy.cos: torch.cos,
    sympy.tan: torch.tan,
    sympy.exp: torch.exp,
    sympy.log: torch.log,
    sympy.tanh: torch.tanh,
    sympy.sinh: torch.sinh,
    sympy.cosh: torch.cosh,
    sympy.asin: torch.asin,
    sympy.acos: torch.acos,
    sympy.atan: torch.atan,
    sympy.asinh: torch.asinh,
    sympy.acosh: torch.acosh,
    sympy.atanh: torch.atanh,
    sympy.erf: torch.erf,
    sympy.erfc: torch.erfc,
    sympy.Abs: torch.abs,
    sympy.sign: torch.sign,
    sigmoid: torch.sigmoid,
}
# Functions SymPy produces when differentiating the allowlist, mapped to torch as well.
_UNARY.update(
    {
        sympy.sec: lambda x: torch.reciprocal(torch.cos(x)),
        sympy.csc: lambda x: torch.reciprocal(torch.sin(x)),
        sympy.cot: lambda x: torch.reciprocal(torch.tan(x)),
        sympy.sech: lambda x: torch.reciprocal(torch.cosh(x)),
        sympy.csch: lambda x: torch.reciprocal(torch.sinh(x)),
        sympy.coth: lambda x: torch.reciprocal(torch.tanh(x)),
        sympy.DiracDelta: torch.zeros_like,  # zero almost everywhere: the sampled points
        sympy.Heaviside: lambda x: torch.heaviside(x, torch.tensor(0.5, dtype=x.dtype)),
    }
)


def _constant(expr: sympy.Expr) -> float:
    value = complex(sympy.N(expr, 20))
    return value.real if value.imag == 0 else float("nan")


def supported(expr: sympy.Expr) -> bool:
    """Whether every node of ``expr`` can be evaluated by :func:`evaluate`."""
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, (sympy.Symbol, sympy.Number, sympy.NumberSymbol)):
            continue
        if isinstance(node, (sympy.Add, sympy.Mul, sympy.Pow)):
            continue
        if isinstance(node, sympy.Function) and type(node) in _UNARY:
            continue
        return False
    return True


class Evaluator:
    """Evaluates SymPy expressions on tensors, sharing identical subexpressions.

    Args:
        inputs: the tensor for each free symbol; all of one shape, dtype and device.

    Example:
        >>> x = sympy.Symbol("x", real=True)
        >>> Evaluator({x: torch.tensor([0.0, 1.0])}).tensor(sympy.sin(x) ** 2)
        tensor([0.0000, 0.7081])
    """

    def __init__(self, inputs: Mapping[sympy.Symbol, torch.Tensor]) -> None:
        self.inputs = dict(inputs)
        self._cache: dict[sympy.Basic, Value] = {}
        first = next(iter(self.inputs.values()), None)
        self._like = first

    def tensor(self, expr: sympy.Expr, like: torch.Tensor | None = None) -> torch.Tensor:
        """``expr`` evaluated to a tensor of the inputs' shape (constants are broadcast)."""
        value = self.value(expr)
        if isinstance(value, torch.Tensor):
            return value
        ref = like if like is not None else self._like
        if ref is None:
            raise ExpressionError(f"cannot evaluate the constant {expr} without inputs")
        return torch.full_like(ref, value)

    def tensors(self, exprs: Sequence[sympy.Expr]) -> list[torch.Tensor]:
        return [self.tensor(e) for e in exprs]

    def value(self, expr: sympy.Basic) -> Value:
        cached = self._cache.get(expr)
        if cached is not None:
            return cached
        result = self._compute(expr)
        self._cache[expr] = result
        return result

    def _compute(self, expr: sympy.Basic) -> Value:
        if isinstance(expr, sympy.Symbol):
            try:
                return self.inputs[expr]
            except KeyError:
                raise ExpressionError(f"no values for the variable {expr}") from None
        if not expr.free_symbols:
            return _constant(expr)
        if isinstance(expr, sympy.Add):
            return _sum([self.value(a) for a in expr.args])
        if isinstance(expr, sympy.Mul):
            return _product([self.value(a) for a in expr.args])
        if isinstance(expr, sympy.Pow):
            return self._power(expr)
        fn = _UNARY.get(type(expr))
        if fn is not None and len(expr.args) == 1:
            arg = self.value(expr.args[0])
            assert isinstance(arg, torch.Tensor)  # constants were handled above
            return fn(arg)
        raise ExpressionError(f"pinncheck cannot evaluate {type(expr).__name__} in {expr}")

    def _power(self, expr: sympy.Pow) -> Value:
        base_e, exp_e = expr.args
        base = self.value(base_e)
        if exp_e.is_Number:
            if exp_e == 2:
                return base * base
            if exp_e == -1:
                return torch.reciprocal(base) if isinstance(base, torch.Tensor) else 1 / base
            if exp_e == sympy.Rational(1, 2) and isinstance(base, torch.Tensor):
                return torch.sqrt(base)
            if exp_e == sympy.Rational(-1, 2) and isinstance(base, torch.Tensor):
                return torch.rsqrt(base)
            ex: Value = int(exp_e) if exp_e.is_Integer else float(exp_e)
        else:
            ex = self.value(exp_e)
        if isinstance(base, torch.Tensor):
            return torch.pow(base, ex)
        assert isinstance(ex, torch.Tensor)
        return torch.pow(base, ex)


def _sum(values: list[Value]) -> Value:
    total: Value = 0.0
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    consts = sum(v for v in values if not isinstance(v, torch.Tensor))
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total + consts if consts != 0 else total


def _product(values: list[Value]) -> Value:
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    coeff = 1.0
    for v in values:
        if not isinstance(v, torch.Tensor):
            coeff *= v
    total: Value = tensors[0]
    for t in tensors[1:]:
        total = total * t
    return total * coeff if coeff != 1.0 else total
