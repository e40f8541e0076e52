"""Running error bounds: a lowered program evaluated together with a bound on its rounding error.

Every value ``v`` computed by a :class:`~pinncheck._evaluate.Program` is paired with a bound
``b`` on ``|v - v_true|``, propagated to first order through each step: the errors of the
step's inputs, weighted by the step's partial derivatives (in absolute value), plus the step's
own rounding, ``u*|v|`` for a correctly rounded operation and a few ``u`` for library functions.
``u`` is the unit roundoff of the precision being modelled (2^-53 for float64, 2^-24 for
float32), and the inputs may carry an error of their own (``u*|x|`` for coordinates rounded to
that precision).

This is the classical running error analysis (Wilkinson; Higham, *Accuracy and Stability of
Numerical Algorithms*, ch. 3). It is first order: products of two errors are dropped, which is
why pinncheck multiplies it by a safety factor calibrated on a corpus (``make calibrate``). It
follows the formula *as written*: a sum that cancels, ``1 - x**2`` near 1 or ``sin(x)/x``
differentiated near 0, gets the large bound it deserves, and a well-conditioned formula a bound
of a few dozen ``u`` of its magnitude.

The values are those of the plain program (same operations, float64), computed out of place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from ._evaluate import Program, _Step, _wsum, heaviside_of, sign_of

UNIT_ROUNDOFF: dict[str, float] = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}
LIBM_UNITS = 4.0
"""Rounding of a library function (sin, exp, ...) in units of u: 2 ulp, above the documented
accuracy of the vectorised implementations torch uses (at most 1 ulp in float64, 1-3.5 ulp for
a few float32 ones: the safety factor covers the rest)."""

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class _Value:
    """An intermediate value, its error bound, and its absolute value (computed once, when
    first needed)."""

    __slots__ = ("v", "b", "_abs")

    def __init__(self, v: torch.Tensor, b: torch.Tensor, magnitude: torch.Tensor | None = None):
        self.v, self.b, self._abs = v, b, magnitude

    @property
    def abs(self) -> torch.Tensor:
        if self._abs is None:
            self._abs = self.v.abs()
        return self._abs


Rule = Callable[[list[_Value], _Step, float], _Value]


def _sum(xs: list[_Value], step: _Step, u: float) -> _Value:
    # (x0 + x1 + ... - y0 - y1 ...) + const: k additions, each rounding its partial sum, which
    # is at most the sum of the magnitudes: error <= sum(b_i) + k*u*sum(|x_i|) (+ the constant).
    npos = len(xs) - step.n_neg
    c = float(step.param)
    k = len(xs) - 1 + (c != 0.0)
    first = xs[0]
    acc = first.v if npos > 0 else -first.v
    bound = first.b.add(first.abs, alpha=k * u)
    for i in range(1, len(xs)):
        x = xs[i]
        acc = acc + x.v if i < npos else acc - x.v
        bound.add_(x.b).add_(x.abs, alpha=k * u)
    if c:
        acc = acc + c
        bound.add_((k + 1) * u * abs(c))
    return _Value(acc, bound)


def _weighted_sum(xs: list[_Value], step: _Step, u: float) -> _Value:
    # w0*x0 + w1*x1 + ... + c: each weighted term rounds once, each of the k additions rounds
    # its partial sum: error <= sum(|w_i| b_i) + (k + 1)*u*sum(|w_i x_i|) (+ the constant's).
    c = float(step.param)
    k = len(xs) - 1 + (c != 0.0)
    acc = _wsum([x.v for x in xs], replace(step, inplace=False))
    bound: torch.Tensor | None = None
    for x, w in zip(xs, step.weights, strict=True):
        part = torch.add(x.b, x.abs, alpha=(k + 1) * u).mul_(abs(w))
        bound = part if bound is None else bound.add_(part)
    assert bound is not None
    if c:
        bound.add_((k + 1) * u * abs(c))
    return _Value(acc, bound)


def _product(xs: list[_Value], step: _Step, u: float) -> _Value:
    # (x0 * x1 * ... / y0 / y1 ...) * const, each operation rounding its result.
    npos = len(xs) - step.n_neg
    cur = xs[0]
    if npos == 0:
        cur = _reciprocal(cur, u)
    for i in range(1, len(xs)):
        x = xs[i]
        if i < npos:
            # |a|b_x + b_a|x| + u|ax| = (b_a + u|a|)|x| + |a|b_x
            bound = torch.add(cur.b, cur.abs, alpha=u).mul_(x.abs).addcmul_(cur.abs, x.b)
            cur = _Value(cur.v * x.v, bound, cur.abs * x.abs)
        else:
            # (b_a + |a/x| b_x)/|x| + u|a/x| = (b_a + |a/x|(b_x + u|x|))/|x|
            new = cur.v / x.v
            magnitude = new.abs()
            bound = torch.add(x.b, x.abs, alpha=u).mul_(magnitude).add_(cur.b).div_(x.abs)
            cur = _Value(new, bound, magnitude)
    c = float(step.param)
    if c != 1.0:
        a = abs(c)
        # the product's rounding and the constant's own
        bound = torch.add(cur.b, cur.abs, alpha=0.0 if c == -1.0 else 2 * u).mul_(a)
        cur = _Value(cur.v * c, bound, cur.abs * a)
    return cur


def _reciprocal(x: _Value, u: float) -> _Value:
    v = torch.reciprocal(x.v)
    magnitude = v.abs()
    # b_x/x^2 + u/|x| = |v|(|v| b_x + u)
    return _Value(v, torch.mul(magnitude, x.b).add_(u).mul_(magnitude), magnitude)


def _power(xs: list[_Value], step: _Step, u: float) -> _Value:
    (x,) = xs
    p = float(step.param)
    v = torch.pow(x.v, p)
    magnitude = v.abs()
    if p == 0:
        return _Value(v, torch.zeros_like(v), magnitude)
    # |p x^(p-1)| b_x + 4u|x^p| = |x^p| (|p| b_x/|x| + 4u)
    bound = torch.div(x.b, x.abs).mul_(abs(p)).add_(LIBM_UNITS * u).mul_(magnitude)
    return _Value(v, bound.nan_to_num_(nan=0.0), magnitude)


def _square(xs: list[_Value], step: _Step, u: float) -> _Value:
    (x,) = xs
    v = x.v * x.v
    # 2|x| b_x + u x^2 = |x| (2 b_x + u|x|)
    bound = torch.add(x.abs, x.b, alpha=2 / u).mul_(x.abs).mul_(u) if u else 2 * x.abs * x.b
    return _Value(v, bound, v)


def _rpow(xs: list[_Value], step: _Step, u: float) -> _Value:
    # c**x: d/dx = log(c) c**x; the constant's rounding moves the result by u*|x log c|
    (x,) = xs
    c = float(step.param)
    v = torch.pow(c, x.v)
    log_c = abs(math.log(abs(c))) if c != 0 else math.inf
    bound = torch.add(x.b, x.abs, alpha=u).mul_(log_c).add_(LIBM_UNITS * u).mul_(v.abs())
    return _Value(v, bound)


def _powt(xs: list[_Value], step: _Step, u: float) -> _Value:
    x, y = xs
    v = torch.pow(x.v, y.v)
    magnitude = v.abs()
    # |y x^(y-1)| b_x + |log|x|| |x^y| b_y + 4u|x^y|
    bound = torch.div(x.b, x.abs).mul_(y.abs)
    bound.addcmul_(torch.log(x.abs).abs_(), y.b).add_(LIBM_UNITS * u).mul_(magnitude)
    return _Value(v, bound.nan_to_num_(nan=0.0), magnitude)


def _zero(xs: list[_Value], step: _Step, u: float) -> _Value:
    z = torch.zeros_like(xs[0].v)
    return _Value(z, z.clone(), z)


def _delta(xs: list[_Value], step: _Step, u: float) -> _Value:
    # Zero off the kink, undefined (NaN) on it: exact.
    v = torch.zeros_like(xs[0].v).masked_fill(xs[0].v == 0, float("nan"))
    return _Value(v, torch.zeros_like(v), v.abs())


def _step_like(
    xs: list[_Value], height: float, fn: Callable[[torch.Tensor], torch.Tensor]
) -> _Value:
    # Exact away from 0; where the input's error reaches 0 the step may be off by its height.
    (x,) = xs
    return _Value(fn(x.v), (x.abs <= x.b).to(x.v.dtype).mul_(height))


def _heaviside(xs: list[_Value], step: _Step, u: float) -> _Value:
    return _step_like(xs, 1.0, heaviside_of)  # (the plain program's values, NaN included)


def _sign(xs: list[_Value], step: _Step, u: float) -> _Value:
    return _step_like(xs, 2.0, sign_of)


def _extremum(pair: Callable[..., torch.Tensor], upper: bool) -> Rule:
    # Min and Max are exact and 1-Lipschitz in each argument: the error is at most the
    # largest of the arguments' (a constant argument is rounded to u).
    def apply(xs: list[_Value], step: _Step, u: float) -> _Value:
        acc, bound = xs[0].v, xs[0].b
        for x in xs[1:]:
            acc, bound = pair(acc, x.v), torch.maximum(bound, x.b)
        if step.n_neg:
            c = float(step.param)
            acc = torch.clamp(acc, max=c) if upper else torch.clamp(acc, min=c)
            bound = torch.clamp(bound, min=u * abs(c))
        return _Value(acc, bound)

    return apply


def _abs(xs: list[_Value], step: _Step, u: float) -> _Value:
    (x,) = xs
    return _Value(x.abs, x.b, x.abs)


# |f'(x)| of each one-argument function, from its input and value; None: at most 1 (sin, cos).
_SLOPES: dict[str, Callable[[_Value, torch.Tensor], torch.Tensor] | None] = {
    "sin": None,
    "cos": None,
    "tan": lambda x, v: v * v + 1,
    "exp": lambda x, v: v.abs(),
    "log": lambda x, v: torch.reciprocal(x.abs),
    "tanh": lambda x, v: 1 - v * v,
    "sinh": lambda x, v: torch.sqrt(v * v + 1),
    "cosh": lambda x, v: v.abs(),  # |sinh x| <= cosh x
    "asin": lambda x, v: torch.rsqrt((1 - x.v * x.v).abs_()),
    "acos": lambda x, v: torch.rsqrt((1 - x.v * x.v).abs_()),
    "atan": lambda x, v: torch.reciprocal(x.v * x.v + 1),
    "asinh": lambda x, v: torch.rsqrt(x.v * x.v + 1),
    "acosh": lambda x, v: torch.rsqrt((x.v * x.v - 1).abs_()),
    "atanh": lambda x, v: torch.reciprocal((1 - x.v * x.v).abs_()),
    "erf": lambda x, v: torch.exp(-x.v * x.v).mul_(_TWO_OVER_SQRT_PI),
    "erfc": lambda x, v: torch.exp(-x.v * x.v).mul_(_TWO_OVER_SQRT_PI),
    "sigmoid": lambda x, v: v * (1 - v),
    "sqrt": lambda x, v: torch.reciprocal(v).mul_(0.5),
    "rsqrt": lambda x, v: v * v * v * 0.5,
}
# Correctly rounded (IEEE) operations: half an ulp, u.
_EXACTLY_ROUNDED = {"sqrt"}


def _unary(name: str) -> Rule:
    fn = getattr(torch, name)
    slope = _SLOPES[name]
    units = 1.0 if name in _EXACTLY_ROUNDED else LIBM_UNITS

    def apply(xs: list[_Value], step: _Step, u: float) -> _Value:
        (x,) = xs
        v = fn(x.v)
        magnitude = v.abs()
        if slope is None:
            bound = torch.add(x.b, magnitude, alpha=units * u)
        else:
            bound = slope(x, v).abs_().mul_(x.b).add_(magnitude, alpha=units * u)
        return _Value(v, bound, magnitude)

    return apply


def _reciprocal_rule(xs: list[_Value], step: _Step, u: float) -> _Value:
    return _reciprocal(xs[0], u)


_OPS: dict[str, Rule] = {
    "add": _sum,
    "wsum": _weighted_sum,
    "mul": _product,
    "square": _square,
    "pow": _power,
    "rpow": _rpow,
    "powt": _powt,
    "zero": _zero,
    "delta": _delta,
    "heaviside": _heaviside,
    "sign": _sign,
    "abs": _abs,
    "reciprocal": _reciprocal_rule,
    "minimum": _extremum(torch.minimum, upper=True),
    "maximum": _extremum(torch.maximum, upper=False),
}
_OPS.update({name: _unary(name) for name in _SLOPES})


def run_bounded(
    program: Program,
    inputs: Sequence[torch.Tensor],
    bounds: Sequence[torch.Tensor | None],
    u: float,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``program``'s outputs at ``inputs`` and a bound on each one's error, per point.

    ``bounds`` are the inputs' own errors (None: exact); ``u`` is the unit roundoff of every
    operation. Constants folded into the program are taken as rounded to ``u``.
    """
    like = inputs[0]
    n_in = program.n_inputs
    slots: list[_Value | None] = [
        _Value(x, torch.zeros_like(x) if b is None else b)
        for x, b in zip(inputs, bounds, strict=True)
    ]
    slots += [None] * len(program.steps)
    for i, step in enumerate(program.steps):
        rule = _OPS.get(step.op)
        if rule is None:  # pragma: no cover - every op of _evaluate has a rule (tested)
            raise NotImplementedError(f"no error bound for the operation {step.op}")
        slots[n_in + i] = rule([slots[a] for a in step.args], step, u)  # type: ignore[misc]
        for s in step.release:
            if s >= n_in:
                slots[s] = None
    out_v: list[torch.Tensor] = []
    out_b: list[torch.Tensor] = []
    for r in program.outputs:
        if isinstance(r, int):
            value = slots[r]
            assert value is not None
            out_v.append(value.v)
            out_b.append(value.b)
        else:
            out_v.append(torch.full_like(like, r))
            out_b.append(torch.full_like(like, u * abs(r) if math.isfinite(r) else 0.0))
    return out_v, out_b
