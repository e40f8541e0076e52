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

import torch

from ._evaluate import Program, _Step

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

Pair = tuple[torch.Tensor, torch.Tensor]


def _sum(xs: list[Pair], step: _Step, u: float) -> Pair:
    # (x0 + x1 + ... - y0 - y1 ...) + const, left to right: each addition rounds its partial sum.
    npos = len(xs) - step.n_neg
    acc, bound = xs[0]
    if npos == 0:
        acc = -acc
    rounding = None
    for i in range(1, len(xs)):
        x, b = xs[i]
        acc = acc + x if i < npos else acc - x
        bound = bound + b
        rounding = acc.abs() if rounding is None else rounding.add_(acc.abs())
    if step.param:
        c = float(step.param)
        acc = acc + c
        bound = bound + u * abs(c)  # the constant's own rounding
        rounding = acc.abs() if rounding is None else rounding.add_(acc.abs())
    if rounding is not None:
        bound = bound + u * rounding
    return acc, bound


def _product(xs: list[Pair], step: _Step, u: float) -> Pair:
    # (x0 * x1 * ... / y0 / y1 ...) * const, each operation rounding its result.
    npos = len(xs) - step.n_neg
    acc, bound = xs[0]
    if npos == 0:
        acc, bound = _reciprocal_pair(acc, bound, u)
    for i in range(1, len(xs)):
        x, b = xs[i]
        if i < npos:
            new = acc * x
            bound = bound * x.abs() + acc.abs() * b
        else:
            new = acc / x
            bound = (bound + new.abs() * b) / x.abs()
        acc = new
        bound = bound + u * acc.abs()
    c = float(step.param)
    if c != 1.0:
        acc = acc * c
        bound = bound * abs(c)
        if c != -1.0:
            bound = bound + 2 * u * acc.abs()  # the product's rounding and the constant's
    return acc, bound


def _reciprocal_pair(x: torch.Tensor, b: torch.Tensor, u: float) -> Pair:
    v = torch.reciprocal(x)
    return v, b * v * v + u * v.abs()


def _power(xs: list[Pair], step: _Step, u: float) -> Pair:
    (x, b) = xs[0]
    p = step.param
    v = torch.pow(x, p)
    slope = (p * torch.pow(x, p - 1)).abs() if p != 0 else torch.zeros_like(x)
    return v, slope * b + LIBM_UNITS * u * v.abs()


def _square(xs: list[Pair], step: _Step, u: float) -> Pair:
    (x, b) = xs[0]
    v = x * x
    return v, 2 * x.abs() * b + u * v


def _rpow(xs: list[Pair], step: _Step, u: float) -> Pair:
    # c**x: d/dx = log(c) c**x
    (x, b) = xs[0]
    c = float(step.param)
    v = torch.pow(c, x)
    log_c = abs(math.log(abs(c))) if c != 0 else math.inf
    return v, v.abs() * (log_c * b + LIBM_UNITS * u + u * log_c * x.abs())


def _powt(xs: list[Pair], step: _Step, u: float) -> Pair:
    (x, bx), (y, by) = xs
    v = torch.pow(x, y)
    dx = (y * torch.pow(x, y - 1)).abs()
    dy = (v * torch.log(x.abs())).abs()
    return v, dx * bx + dy * by + LIBM_UNITS * u * v.abs()


def _zero(xs: list[Pair], step: _Step, u: float) -> Pair:
    z = torch.zeros_like(xs[0][0])
    return z, z.clone()


def _heaviside(xs: list[Pair], step: _Step, u: float) -> Pair:
    (x, b) = xs[0]
    v = torch.heaviside(x, x.new_tensor(0.5))
    # Exact away from 0; where the input's error reaches 0 the step may be wrong by 1.
    return v, (x.abs() <= b).to(x.dtype)


def _sign(xs: list[Pair], step: _Step, u: float) -> Pair:
    (x, b) = xs[0]
    v = torch.sign(x)
    return v, 2 * (x.abs() <= b).to(x.dtype)


def _abs(xs: list[Pair], step: _Step, u: float) -> Pair:
    (x, b) = xs[0]
    return x.abs(), b


# |f'(x)| of each one-argument function, from its input and its value.
_SLOPES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "sin": lambda x, v: torch.cos(x).abs(),
    "cos": lambda x, v: torch.sin(x).abs(),
    "tan": lambda x, v: 1 + v * v,
    "exp": lambda x, v: v,
    "log": lambda x, v: torch.reciprocal(x.abs()),
    "tanh": lambda x, v: (1 - v * v).abs(),
    "sinh": lambda x, v: torch.cosh(x),
    "cosh": lambda x, v: torch.sinh(x).abs(),
    "asin": lambda x, v: torch.rsqrt((1 - x * x).abs()),
    "acos": lambda x, v: torch.rsqrt((1 - x * x).abs()),
    "atan": lambda x, v: torch.reciprocal(1 + x * x),
    "asinh": lambda x, v: torch.rsqrt(1 + x * x),
    "acosh": lambda x, v: torch.rsqrt((x * x - 1).abs()),
    "atanh": lambda x, v: torch.reciprocal((1 - x * x).abs()),
    "erf": lambda x, v: _TWO_OVER_SQRT_PI * torch.exp(-x * x),
    "erfc": lambda x, v: _TWO_OVER_SQRT_PI * torch.exp(-x * x),
    "sigmoid": lambda x, v: v * (1 - v),
    "sqrt": lambda x, v: 0.5 * torch.reciprocal(v),
    "rsqrt": lambda x, v: 0.5 * v * v * v,
    "reciprocal": lambda x, v: v * v,
}
# Correctly rounded (IEEE) operations: half an ulp, u.
_EXACTLY_ROUNDED = {"sqrt", "reciprocal"}


def _unary(name: str) -> Callable[[list[Pair], _Step, float], Pair]:
    fn = getattr(torch, name)
    slope = _SLOPES[name]
    units = 1.0 if name in _EXACTLY_ROUNDED else LIBM_UNITS

    def apply(xs: list[Pair], step: _Step, u: float) -> Pair:
        (x, b) = xs[0]
        v = fn(x)
        return v, slope(x, v) * b + units * u * v.abs()

    return apply


_OPS: dict[str, Callable[[list[Pair], _Step, float], Pair]] = {
    "add": _sum,
    "mul": _product,
    "square": _square,
    "pow": _power,
    "rpow": _rpow,
    "powt": _powt,
    "zero": _zero,
    "heaviside": _heaviside,
    "sign": _sign,
    "abs": _abs,
}
_OPS.update({name: _unary(name) for name in _SLOPES})


def supports(program: Program) -> bool:
    """Whether every step of ``program`` has a bound rule."""
    return all(step.op in _OPS for step in program.steps)


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
    vals: list[torch.Tensor | None] = [*inputs, *([None] * len(program.steps))]
    bnds: list[torch.Tensor | None] = [
        torch.zeros_like(x) if b is None else b for x, b in zip(inputs, bounds, strict=True)
    ]
    bnds += [None] * len(program.steps)
    for i, step in enumerate(program.steps):
        rule = _OPS.get(step.op)
        if rule is None:  # pragma: no cover - every op of _evaluate has a rule (tested)
            raise NotImplementedError(f"no error bound for the operation {step.op}")
        args = [(vals[a], bnds[a]) for a in step.args]
        v, b = rule(args, step, u)  # type: ignore[arg-type]
        vals[n_in + i], bnds[n_in + i] = v, b
        for s in step.release:
            if s >= n_in:
                vals[s] = bnds[s] = None
    out_v: list[torch.Tensor] = []
    out_b: list[torch.Tensor] = []
    for r in program.outputs:
        if isinstance(r, int):
            out_v.append(vals[r])  # type: ignore[arg-type]
            out_b.append(bnds[r])  # type: ignore[arg-type]
        else:
            out_v.append(torch.full_like(like, r))
            out_b.append(torch.full_like(like, u * abs(r) if math.isfinite(r) else 0.0))
    return out_v, out_b
