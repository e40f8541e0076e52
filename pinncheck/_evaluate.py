"""Evaluate SymPy expressions as torch operations, without generated code.

Expressions are first *lowered* into a flat list of steps, each one torch call from a fixed
table. Identical subexpressions become one step, constants are folded to floats, ``a + (-b)``
becomes a subtraction and ``a * b**-1`` a division. No string is ever compiled or evaluated.

* :class:`Program` lowers a list of expressions once (optionally after ``sympy.cse``, which also
  shares common sub-sums and sub-products) and then runs on new inputs, chunk after chunk. It
  drops each intermediate after its last use and, where no gradient is needed, writes results
  into the memory of intermediates that die there.
* :class:`Evaluator` evaluates expressions on demand over fixed inputs, sharing every step
  across calls.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import sympy
import torch

from ._errors import ExpressionError
from ._parse import sigmoid

Value = torch.Tensor | float
Ref = int | float
"""A lowered value: an ``int`` is a slot (inputs, then one per step), a ``float`` a constant."""

# One-argument functions, by the name of the torch function that computes them.
_UNARY: dict[type, str] = {
    sympy.sin: "sin",
    sympy.cos: "cos",
    sympy.tan: "tan",
    sympy.exp: "exp",
    sympy.log: "log",
    sympy.tanh: "tanh",
    sympy.sinh: "sinh",
    sympy.cosh: "cosh",
    sympy.asin: "asin",
    sympy.acos: "acos",
    sympy.atan: "atan",
    sympy.asinh: "asinh",
    sympy.acosh: "acosh",
    sympy.atanh: "atanh",
    sympy.erf: "erf",
    sympy.erfc: "erfc",
    sympy.Abs: "abs",
    sympy.sign: "sign",
    sigmoid: "sigmoid",
}
# Functions SymPy produces when differentiating the allowlist: reciprocals of the above.
_RECIPROCAL: dict[type, type] = {
    sympy.sec: sympy.cos,
    sympy.csc: sympy.sin,
    sympy.cot: sympy.tan,
    sympy.sech: sympy.cosh,
    sympy.csch: sympy.sinh,
    sympy.coth: sympy.tanh,
}
# Zero almost everywhere, so at the sampled points (undefined, NaN, exactly on the kink where
# its argument is 0); and the step function, 1/2 at 0.
_SPECIAL: dict[type, str] = {sympy.DiracDelta: "delta", sympy.Heaviside: "heaviside"}
# Powers with these exponents have a cheaper, at least as accurate torch function.
_POWERS: dict[sympy.Expr, str] = {
    sympy.Integer(2): "square",
    sympy.Integer(-1): "reciprocal",
    sympy.Rational(1, 2): "sqrt",
    sympy.Rational(-1, 2): "rsqrt",
}


def _constant(expr: sympy.Expr) -> float:
    try:
        value = complex(sympy.N(expr, 20))
    except TypeError:  # zoo and other non-numbers
        return float("nan")
    return value.real if value.imag == 0 else float("nan")


@dataclass
class _Step:
    """One torch call. ``args`` are slots; ``param`` is the op's scalar (see :data:`_OPS`)."""

    op: str
    args: tuple[int, ...]
    param: float | int = 0.0
    n_neg: int = 0  # add: the last n_neg args are subtracted; mul: the last n_neg divide
    inplace: bool = False  # write into args[0] (set by Program where that is safe)
    chain: bool = False  # write into this step's own intermediates (no autograd)
    release: tuple[int, ...] = ()  # slots to drop after this step (set by Program)
    weights: tuple[float, ...] = ()  # wsum: each arg's weight


def _chain(
    xs: list[torch.Tensor],
    step: _Step,
    first: Callable[..., torch.Tensor],
    pos: Callable,
    neg: Callable,
) -> tuple[torch.Tensor, bool]:
    # ((x0 pos x1 pos ...) neg y0 neg y1 ...), e.g. sums minus terms or products over divisors.
    # Without x0, ``first`` (negation, reciprocal) starts from y0. Returns the result and
    # whether it may be written in place.
    npos = len(xs) - step.n_neg
    own = step.inplace
    acc = xs[0]
    if npos == 0:
        acc = first(acc, out=acc) if own else first(acc)
        own, npos = own or step.chain, 1
    for i in range(1, len(xs)):
        op = pos if i < npos else neg
        acc = op(acc, xs[i], out=acc) if own else op(acc, xs[i])
        own = own or step.chain
    return acc, own


def sign_of(x: torch.Tensor) -> torch.Tensor:
    """sign(x), NaN where x is NaN (torch.sign gives 0 there: an undefined argument would
    give a defined value)."""
    return torch.where(torch.isnan(x), x, torch.sign(x))


def heaviside_of(x: torch.Tensor) -> torch.Tensor:
    """SymPy's Heaviside: 0, 1/2 at 0, 1; NaN where x is NaN."""
    return torch.add(sign_of(x), 1.0).mul_(0.5)


def _add(xs: list[torch.Tensor], step: _Step) -> torch.Tensor:
    acc, own = _chain(xs, step, torch.neg, torch.add, torch.sub)
    if step.param:
        acc = torch.add(acc, step.param, out=acc) if own else acc + step.param
    return acc


def _mul(xs: list[torch.Tensor], step: _Step) -> torch.Tensor:
    acc, own = _chain(xs, step, torch.reciprocal, torch.mul, torch.div)
    if step.param == -1:
        acc = torch.neg(acc, out=acc) if own else torch.neg(acc)
    elif step.param != 1:
        acc = torch.mul(acc, step.param, out=acc) if own else acc * step.param
    return acc


def _wsum(xs: list[torch.Tensor], step: _Step) -> torch.Tensor:
    # w0*x0 + w1*x1 + ... + param (no lowered expression has it: pinncheck._floors emits it).
    w = step.weights
    if step.inplace:
        acc = xs[0] if w[0] == 1.0 else xs[0].mul_(w[0])
        rest = 1
    elif w[0] == 1.0 and len(xs) > 1:
        acc = torch.add(xs[0], xs[1], alpha=w[1])
        rest = 2
    else:
        acc = torch.mul(xs[0], w[0])
        rest = 1
    for x, wx in zip(xs[rest:], w[rest:], strict=True):
        acc.add_(x, alpha=wx)
    return acc.add_(step.param) if step.param else acc


def _unary(name: str) -> Callable[[list[torch.Tensor], _Step], torch.Tensor]:
    fn = getattr(torch, name)

    def apply(xs: list[torch.Tensor], step: _Step) -> torch.Tensor:
        return fn(xs[0], out=xs[0]) if step.inplace else fn(xs[0])

    return apply


def _square(xs: list[torch.Tensor], step: _Step) -> torch.Tensor:
    x = xs[0]
    return torch.mul(x, x, out=x) if step.inplace else x * x


def _pow(xs: list[torch.Tensor], step: _Step) -> torch.Tensor:
    # A tensor to a constant power.
    return torch.pow(xs[0], step.param, out=xs[0]) if step.inplace else torch.pow(xs[0], step.param)


_OPS: dict[str, Callable[[list[torch.Tensor], _Step], torch.Tensor]] = {
    "add": _add,
    "mul": _mul,
    "wsum": _wsum,
    "square": _square,
    "pow": _pow,
    # A constant to a tensor power, and a tensor to a tensor power.
    "rpow": lambda xs, step: torch.pow(step.param, xs[0]),
    "powt": lambda xs, step: torch.pow(xs[0], xs[1]),
    "zero": lambda xs, step: torch.zeros_like(xs[0]),
    "delta": lambda xs, step: torch.zeros_like(xs[0]).masked_fill(xs[0] == 0, float("nan")),
    # (sign(x) + 1)/2: 1/2 at 0 as SymPy's Heaviside, and differentiable (zero gradient).
    "heaviside": lambda xs, step: heaviside_of(xs[0]),
    "minimum": lambda xs, step: _extremum(xs, step, torch.minimum, upper=True),
    "maximum": lambda xs, step: _extremum(xs, step, torch.maximum, upper=False),
}


def _extremum(xs: list[torch.Tensor], step: _Step, pair: Callable, upper: bool) -> torch.Tensor:
    # Min/Max of tensors; ``n_neg`` = 1 when ``param`` is a constant argument as well (for Min
    # an upper bound, for Max a lower one).
    acc = xs[0]
    for x in xs[1:]:
        acc = pair(acc, x)
    if step.n_neg:
        acc = torch.clamp(acc, max=step.param) if upper else torch.clamp(acc, min=step.param)
    return acc


_OPS.update({name: _unary(name) for name in (*_UNARY.values(), "reciprocal", "sqrt", "rsqrt")})
_OPS["sign"] = lambda xs, step: sign_of(xs[0])
# Ops that may write into their first argument, and those whose first two args commute.
_INPLACE = set(_OPS) - {"rpow", "powt", "zero", "delta", "heaviside", "sign", "minimum", "maximum"}
_COMMUTE = {"add", "mul"}


def _apply(step: _Step, vals: list[torch.Tensor | None]) -> torch.Tensor:
    return _OPS[step.op]([vals[a] for a in step.args], step)  # type: ignore[misc]


class _Lowering:
    """Lowers expressions into steps over slots; the inputs are slots ``0..len(symbols)-1``."""

    def __init__(self, symbols: Sequence[sympy.Symbol]) -> None:
        self.n_inputs = len(symbols)
        self.steps: list[_Step] = []
        self.memo: dict[sympy.Basic, Ref] = {s: i for i, s in enumerate(symbols)}

    def ref(self, expr: sympy.Basic) -> Ref:
        hit = self.memo.get(expr)
        if hit is None:
            hit = self.memo[expr] = self._lower(expr)
        return hit

    def _emit(self, op: str, args: Sequence[int], param: float | int = 0.0, n_neg: int = 0) -> int:
        self.steps.append(_Step(op, tuple(args), param, n_neg))
        return self.n_inputs + len(self.steps) - 1

    def _lower(self, expr: sympy.Basic) -> Ref:
        if isinstance(expr, sympy.Symbol):
            raise ExpressionError(f"no values for the variable {expr}")
        if not expr.args:
            return _constant(expr)
        if isinstance(expr, sympy.Add):
            return self._sum(expr)
        if isinstance(expr, sympy.Mul):
            return self._product(expr)
        if isinstance(expr, sympy.Pow):
            return self._power(expr)
        kind = type(expr)
        if kind in (sympy.Min, sympy.Max):
            return self._extremum(expr)
        if kind is sympy.DiracDelta:  # and its derivatives DiracDelta(x, k): zero off x = 0,
            arg = self.ref(expr.args[0])  # undefined (NaN) on it
            return 0.0 if isinstance(arg, float) else self._emit("delta", [arg])
        if kind is sympy.Heaviside and expr.args[1:] == (sympy.S.Half,):  # H(0) = 1/2
            arg = self.ref(expr.args[0])
            return _constant(expr) if isinstance(arg, float) else self._emit("heaviside", [arg])
        if len(expr.args) == 1 and (kind in _UNARY or kind in _RECIPROCAL or kind in _SPECIAL):
            arg = self.ref(expr.args[0])
            if isinstance(arg, float):
                return _constant(expr)
            if kind in _RECIPROCAL:
                inner = self.ref(_RECIPROCAL[kind](expr.args[0]))
                assert isinstance(inner, int)
                return self._emit("reciprocal", [inner])
            return self._emit(_UNARY.get(kind) or _SPECIAL[kind], [arg])
        raise ExpressionError(f"pinncheck cannot evaluate {type(expr).__name__} in {expr}")

    def _sum(self, expr: sympy.Expr) -> Ref:
        pos: list[int] = []
        neg: list[int] = []
        consts: list[sympy.Expr] = []
        for a in expr.args:
            coeff, _ = a.as_coeff_Mul()
            r = self.ref(-a) if coeff.is_negative else self.ref(a)
            if isinstance(r, float):
                consts.append(a)
            else:
                (neg if coeff.is_negative else pos).append(r)
        if not pos and not neg:
            return _constant(expr)
        const = _constant(sympy.Add(*consts)) if consts else 0.0
        if len(pos) == 1 and not neg and const == 0.0:
            # (a constant that rounds to 0: no step that would alias its input, and that a
            # later in-place step could then write through)
            return pos[0]
        return self._emit("add", pos + neg, const, len(neg))

    def _product(self, expr: sympy.Expr) -> Ref:
        num: list[int] = []
        den: list[int] = []
        consts: list[sympy.Expr] = []
        for a in expr.args:
            divide = isinstance(a, sympy.Pow) and a.exp.is_Number and a.exp.is_negative
            r = self.ref(sympy.Pow(a.base, -a.exp) if divide else a)
            if isinstance(r, float):
                consts.append(a)
            else:
                (den if divide else num).append(r)
        if not num and not den:
            return _constant(expr)
        coeff = _constant(sympy.Mul(*consts)) if consts else 1.0
        if len(num) == 1 and not den and coeff == 1.0:
            # (cos(1e-9)*x: a factor that rounds to 1 gives no identity step, which would
            # alias x, so that a later in-place step would overwrite it)
            return num[0]
        return self._emit("mul", num + den, coeff, len(den))

    def _extremum(self, expr: sympy.Expr) -> Ref:
        refs = [self.ref(a) for a in expr.args]
        tensors = [r for r in refs if isinstance(r, int)]
        consts = [r for r in refs if isinstance(r, float)]
        if not tensors:
            return _constant(expr)
        op = "minimum" if isinstance(expr, sympy.Min) else "maximum"
        pick = min if op == "minimum" else max
        if consts:
            return self._emit(op, tensors, pick(consts), 1)
        return self._emit(op, tensors)

    def _power(self, expr: sympy.Pow) -> Ref:
        base_e, exp_e = expr.args
        base = self.ref(base_e)
        if exp_e.is_Number:
            if isinstance(base, float):
                return _constant(expr)
            special = _POWERS.get(exp_e)
            if special is not None:
                return self._emit(special, [base])
            return self._emit("pow", [base], int(exp_e) if exp_e.is_Integer else float(exp_e))
        ex = self.ref(exp_e)
        if isinstance(base, float) and isinstance(ex, float):
            return _constant(expr)
        if isinstance(base, float):
            assert isinstance(ex, int)
            return self._emit("rpow", [ex], base)
        if isinstance(ex, float):
            return self._emit("pow", [base], ex)
        return self._emit("powt", [base, ex])


def _fresh_symbols() -> Iterator[sympy.Symbol]:
    for i in itertools.count():
        yield sympy.Dummy(f"cse{i}")


CSE_MAX_NODES = 50_000
"""Above this many expression nodes in all, ``sympy.cse`` is skipped: it would take seconds, and
identical subexpressions are shared anyway."""


def _shared(exprs: list[sympy.Expr]) -> tuple[list[tuple[sympy.Symbol, sympy.Expr]], list]:
    """``sympy.cse`` of ``exprs``, with constant subexpressions put back in place."""
    replacements, reduced = sympy.cse(exprs, symbols=_fresh_symbols(), order="none")
    consts: dict[sympy.Basic, sympy.Expr] = {}
    kept = []
    for sym, e in replacements:
        e = e.xreplace(consts)
        if e.free_symbols:
            kept.append((sym, e))
        else:
            consts[sym] = e
    return kept, [r.xreplace(consts) for r in reduced]


def _node_count(exprs: Sequence[sympy.Expr], limit: int) -> int:
    count = 0
    for e in exprs:
        for _ in sympy.preorder_traversal(e):
            count += 1
            if count > limit:
                return count
    return count


class Program:
    """Expressions lowered once, then evaluated on new inputs (one chunk of points at a time).

    Args:
        exprs: the expressions to compute.
        symbols: their variables, in the order :meth:`run` receives the inputs.
        cse: share common subexpressions with ``sympy.cse`` (sums and products that appear in
            several places), not only identical subtrees.
        inplace: reuse the memory of intermediates for results. Only for inputs that need no
            gradient: autograd keeps intermediates alive.

    Example:
        >>> x = sympy.Symbol("x", real=True)
        >>> Program([sympy.sin(x) ** 2, 2 * sympy.sin(x)], [x]).run([torch.tensor([0.0, 1.0])])
        [tensor([0.0000, 0.7081]), tensor([0.0000, 1.6829])]
    """

    def __init__(
        self,
        exprs: Sequence[sympy.Expr],
        symbols: Sequence[sympy.Symbol],
        *,
        cse: bool = False,
        inplace: bool = False,
    ) -> None:
        exprs = list(exprs)
        low = _Lowering(symbols)
        if cse and _node_count(exprs, CSE_MAX_NODES) <= CSE_MAX_NODES:
            replacements, exprs = _shared(exprs)
            for sym, e in replacements:
                low.memo[sym] = low.ref(e)
        self.n_inputs = len(symbols)
        self.outputs: list[Ref] = [low.ref(e) for e in exprs]
        self.steps = low.steps
        self._inplace = inplace
        self._schedule(inplace)

    def reschedule(self) -> None:
        """Schedule the steps again (memory reuse and release) after :attr:`outputs` changed."""
        self._schedule(self._inplace)

    def _schedule(self, inplace: bool) -> None:
        # Drop each slot after its last use; write in place into a dying intermediate.
        n_in = self.n_inputs
        last: dict[int, int] = {}
        for i, step in enumerate(self.steps):
            for a in step.args:
                last[a] = i
        keep = {r for r in self.outputs if isinstance(r, int)}
        for i, step in enumerate(self.steps):

            def dies(s: int, i: int = i) -> bool:
                return s >= n_in and last.get(s) == i and s not in keep

            args = step.args
            if step.op in _COMMUTE and len(args) - step.n_neg >= 2 and not dies(args[0]):
                if dies(args[1]):
                    args = step.args = (args[1], args[0], *args[2:])
            step.chain = inplace
            step.inplace = (
                inplace and step.op in _INPLACE and dies(args[0]) and args[0] not in args[1:]
            )
            step.release = tuple(s for s in set(args) if dies(s))
        # The most intermediates alive at once (outputs included): the program's memory.
        live = peak = 0
        for step in self.steps:
            live += 1 - sum(s >= n_in for s in step.release)
            peak = max(peak, live + step.inplace)
        self.peak_live = peak

    def extended(self, steps: Sequence[_Step], outputs: Sequence[int]) -> Program:
        """A copy that also computes ``steps`` and returns ``outputs`` after its own.

        The new steps are numbered as if appended after this program's (their args name this
        program's slots or earlier new steps); each one runs as soon as its args exist, so the
        values it reads are still in the caches and die, or are overwritten, early.
        """
        n_in, n_old = self.n_inputs, len(self.steps)

        def ready(slot: int) -> int:  # the original step after which ``slot`` exists (-1: none)
            if slot < n_in:
                return -1
            return slot - n_in if slot < n_in + n_old else at[slot - n_in - n_old]

        at: list[int] = []
        for step in steps:
            at.append(max((ready(a) for a in step.args), default=-1))
        after: dict[int, list[int]] = {}  # original step (-1: none) -> the new steps after it
        for k, i in enumerate(at):
            after.setdefault(i, []).append(k)
        merged: list[_Step] = []
        new_slot: dict[int, int] = {}

        def place(step: _Step, old: int) -> None:
            new_slot[old] = n_in + len(merged)
            merged.append(step)

        for k in after.get(-1, []):
            place(steps[k], n_in + n_old + k)
        for i, step in enumerate(self.steps):
            place(step, n_in + i)
            for k in after.get(i, []):
                place(steps[k], n_in + n_old + k)

        def slot(s: int) -> int:
            return s if s < n_in else new_slot[s]

        prog = copy.copy(self)
        prog.steps = [replace(st, args=tuple(slot(a) for a in st.args)) for st in merged]
        prog.outputs = [slot(r) if isinstance(r, int) else r for r in self.outputs]
        prog.outputs += [slot(r) for r in outputs]
        prog.reschedule()
        return prog

    def run(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The expressions at ``inputs`` (one tensor per symbol, all of one shape)."""
        vals: list[torch.Tensor | None] = [*inputs, *([None] * len(self.steps))]
        n_in = self.n_inputs
        for i, step in enumerate(self.steps):
            vals[n_in + i] = _apply(step, vals)
            for s in step.release:
                vals[s] = None
        like = inputs[0]
        return [
            vals[r] if isinstance(r, int) else torch.full_like(like, r)  # type: ignore[misc]
            for r in self.outputs
        ]


class Evaluator:
    """Evaluates SymPy expressions on tensors, sharing identical subexpressions across calls.

    Args:
        inputs: the tensor for each free symbol; all of one shape, dtype and device.

    Example:
        >>> x = sympy.Symbol("x", real=True)
        >>> Evaluator({x: torch.tensor([0.0, 1.0])}).tensor(sympy.sin(x) ** 2)
        tensor([0.0000, 0.7081])
    """

    def __init__(self, inputs: Mapping[sympy.Symbol, torch.Tensor]) -> None:
        self.inputs = dict(inputs)
        self._lowering = _Lowering(list(self.inputs))
        self._vals: list[torch.Tensor | None] = list(self.inputs.values())
        self._like = next(iter(self.inputs.values()), None)

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
        """``expr`` as a tensor, or as a float when it is constant."""
        ref = self._lowering.ref(expr)
        steps = self._lowering.steps
        for step in steps[len(self._vals) - self._lowering.n_inputs :]:
            self._vals.append(_apply(step, self._vals))
        if isinstance(ref, float):
            return ref
        value = self._vals[ref]
        assert value is not None
        return value
