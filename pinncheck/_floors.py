"""Cheap lower bounds of a program's running error bound, read off its structure.

The tolerance model (:mod:`pinncheck._bounds`) needs, at each point, the running error bound B
of every exact formula. Computing B costs several times the formula itself, so a long run first
judges each point against a *lower* bound of the tolerance: a point whose error is well below a
lower bound passes whatever B is. The plainest lower bound is the value's last rounding,
``u*|v|``. It fails where the formula cancels inside: ``1 - tanh(s)**2`` in the flat part of a
front is tiny, but carries the rounding of the 1 and of ``tanh**2``, about ``2u``, and every
derivative of a tanh front multiplies it on. There autograd's error (which has the same
cancellation) is far above ``u*|v|``, and B had to be computed at most points.

This module gives a better lower bound, with a few operations per point, from values the exact
program computes anyway. Written with ``rho(f) = B(f)/|f|`` (a relative bound), the running
bound's rules give, for every value (first-order terms dropped nowhere, so these hold for the
bound exactly as :func:`~pinncheck._bounds.run_bounded` computes it):

* a sum ``s = x1 + ... + xk + c`` (k >= 1 roundings): ``B(s) >= u*(|x1| + ... + |xk| + |c|)``;
* a product or quotient of factors (times a constant): ``rho >= sum of the factors' rho``;
* ``f**2``: ``rho >= 2*rho(f)``; ``f**p``: ``rho >= |p|*rho(f)``; ``1/f``: ``rho >= rho(f)``;
* a sum of terms T_j (+ c): ``B >= sum_j B(T_j) + u*(sum_j |T_j| + |c|)``.

Following products (and powers) down to the sums they contain, and stopping there, gives for
each output ``L = u*(sum_j |T_j|*(1 + sum_s w_s*S_s/|s|) + |c|)`` (a product output is one term
without the 1), where s runs over the sums found in term j with weights w_s (the powers met on
the way) and ``S_s`` is the sum of the magnitudes of s's summands. ``L <= B`` at every point.
Outputs with no such structure get None: ``u*|v|`` is as good.

Four refinements keep L cheap and useful:

* Where a sum is a plain multiplier of its term (``T = a*s/d``, products only), ``|T|/|s|`` is
  ``|a/d|``, the product of the term's other factors: ``B(T) >= |a/d|*B(s)`` holds where s is
  exactly 0 too. That is common: where a front saturates, tanh rounds to 1 and
  ``1 - tanh**2`` is 0, yet B carries the rounding of tanh (the reference is off by up to
  ~100u there), and ``|T|*S/|s|`` would be 0*inf.
* A sum of values that are never negative (squares, exponentials, variables sampled from a
  range that starts at 0 or above...) cannot cancel: its ``S_s/|s|`` is 1, so it adds
  ``w_s*|T_j|`` and nothing is divided; the magnitudes of such values need no ``abs``.
* Where the terms of an output contain such sums, L keeps only their parts: the terms' own
  ``u*|T_j|`` (which see a cancellation between the terms) then rarely add to them, and each
  costs a pass; the value's own rounding ``u*|v|`` still stands beside L. (Over the 42
  expressions of ``bench.calibrate`` at 200,000 points, the points that needed the full bound
  were the same to within 0.1%, in both dtypes.) An output that is itself the sum that
  cancels (``1 - tanh(s)**2``) keeps its terms.
* The exact program computes L's sums itself (:meth:`Floors.fused`), each step as soon as the
  values it reads exist, so that those values are read while still in the caches and are not
  kept past their use. Where a summand is not finite (an overflow, or 0*inf for a zero sum
  under a power), those points are done again term by term from the program's intermediate
  values, with that summand counted 0.

L is shaded down by a factor ``1 - 2**-40``, so that its own roundings cannot lift it above B.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ._evaluate import Program, _Step

_Cofactor = tuple[tuple[int, ...], tuple[int, ...], float]
"""A term's factors besides a sum: multipliers, divisors, and the constant."""

_SIGNLESS = frozenset(
    ["square", "exp", "abs", "sqrt", "rsqrt", "cosh", "erfc", "sigmoid", "acos", "heaviside"]
)
"""Operations whose values are never negative (or NaN): their magnitudes are themselves."""

_SHADE = 1.0 - 2.0**-40
"""The bounds are shaded down by this factor, so that their own roundings (a few units of
2^-53 apart from the running bound's) cannot lift them above it."""

_DEPTH = 8
"""How deep products are followed into their factors."""


@dataclass(frozen=True)
class _SumFactor:
    slot: int  # the sum's value
    summands: tuple[int, ...]  # its summands' values
    const: float  # its constant summand
    weight: float  # the powers met between the term and the sum
    # Where the term is the sum times other factors (products only, the sum a multiplier):
    # those factors (multipliers, divisors) and the product of the constants met; else None.
    cofactor: _Cofactor | None = None


@dataclass(frozen=True)
class _Term:
    slot: int
    sums: tuple[_SumFactor, ...]  # the sums in it that may cancel
    own: float  # |T| counts this many times (its rounding in the output, sums that cannot cancel)


@dataclass(frozen=True)
class _OutputFloor:
    terms: tuple[_Term, ...]
    const: float
    is_sum: bool  # a sum of the terms (else one product term)


class Floors:
    """The structural lower bounds of ``program``'s outputs (see the module's docstring).
    ``nonneg_inputs`` are the inputs that are never negative (a variable sampled from a range
    that starts at 0 or above): they save taking magnitudes, and show sums that cannot cancel.

    :meth:`fused` returns the program that also computes the bounds' sums; :meth:`lower` turns
    them into bounds. :attr:`slots` are the intermediate values the bounds read, which
    :meth:`retaining` keeps as extra outputs for the points where a sum is not finite.
    """

    def __init__(self, program: Program, nonneg_inputs: Sequence[int] = ()) -> None:
        self.program = program
        self.nonneg = self._signless(set(nonneg_inputs))
        self.outputs: list[_OutputFloor | None] = [self._output(r) for r in program.outputs]
        wanted: set[int] = set()
        for out in self.outputs:
            for term in out.terms if out is not None else ():
                wanted.add(term.slot)
                for s in term.sums:
                    wanted.add(s.slot)
                    wanted.update(s.summands)
                    if s.cofactor is not None:
                        wanted.update(s.cofactor[0] + s.cofactor[1])
        self.slots = sorted(wanted)
        self.signed = wanted - self.nonneg
        self._kept_program: Program | None = None
        # A sum whose every term counts at least once: sum_j |T_j| + |c| >= |value|.
        self.covers = [
            o is not None and o.is_sum and all(t.own >= 1 for t in o.terms) for o in self.outputs
        ]

    def __bool__(self) -> bool:
        return any(o is not None for o in self.outputs)

    def retaining(self) -> Program:
        """A copy of the program that also returns the values the bounds read (:attr:`slots`),
        after its own outputs: what :meth:`lower` falls back on where a bound is not finite."""
        prog = copy.deepcopy(self.program)
        prog.outputs = [*prog.outputs, *self.slots]
        prog.reschedule()
        return prog

    def scales(self, u: float, factors: Sequence[float]) -> list[float]:
        """What :meth:`fused` multiplies each output's bound sum by, for unit roundoff ``u``
        and the tolerance factors K: the tolerance's lower bound ``K*L`` itself."""
        return [u * _SHADE * k for k in factors]

    def fused(self, scales: Sequence[float] | None = None) -> Program:
        """A copy of the program that also returns, after its own outputs, each bound's sum
        (before the factor u), times ``scales[i]`` for output i, for the outputs that have
        one. Each step of a bound runs as soon as the values it reads exist
        (:meth:`Program.extended`)."""
        program = self.program
        base = program.n_inputs + len(program.steps)
        steps: list[_Step] = []
        memo: dict[tuple[object, ...], int] = {}

        def emit(
            op: str,
            args: Sequence[int],
            param: float = 0.0,
            n_neg: int = 0,
            weights: Sequence[float] = (),
            share: bool = True,
        ) -> int:
            key = (op, tuple(args), float(param), n_neg, tuple(weights))
            if key not in memo or not share:
                steps.append(_Step(op, tuple(args), param, n_neg, weights=tuple(weights)))
                if not share:
                    return base + len(steps) - 1
                memo[key] = base + len(steps) - 1
            return memo[key]

        def mag(k: int) -> int:
            return k if k in self.nonneg else emit("abs", [k])

        def size(sf: _SumFactor) -> int:  # S_s (a sum that rounds has 2 summands or a constant)
            return emit("add", [mag(x) for x in sf.summands], abs(sf.const))

        finals: list[int] = []
        for i, floor in enumerate(self.outputs):
            if floor is None:
                continue
            scale = 1.0 if scales is None else scales[i]
            parts: list[tuple[float, int]] = []  # (weight, value)
            for term in floor.terms:
                if term.own:
                    parts.append((term.own, mag(term.slot)))
                for sf in term.sums:
                    if sf.cofactor is None:  # |T| * S_s / |s|
                        args = [mag(term.slot), size(sf), mag(sf.slot)]
                        parts.append((sf.weight, emit("mul", args, 1.0, 1)))
                        continue
                    mult, div, const = sf.cofactor
                    args = [size(sf), *(mag(m) for m in mult), *(mag(d) for d in div)]
                    value = args[0] if len(args) == 1 else emit("mul", args, 1.0, len(div))
                    parts.append((abs(const) * sf.weight, value))
            parts.sort(key=lambda p: p[0] != 1.0)  # (a first weight of 1 saves an operation)
            weights, values = [w * scale for w, _ in parts], [v for _, v in parts]
            # (a step of its own for each output: callers scale the bounds in place)
            const = abs(floor.const) * scale
            finals.append(emit("wsum", values, const, 0, weights, share=False))
        return program.extended(steps, finals)

    def lower(
        self, inputs: Sequence[torch.Tensor], sums: Sequence[torch.Tensor], u: float
    ) -> list[torch.Tensor | None]:
        """Each output's lower bound (None: no better than ``u*|value|``), from the program's
        ``inputs`` and the bounds' ``sums`` (the extra outputs of :meth:`fused`, scaled in
        place)."""
        return self.lower_checked(inputs, sums, u)[0]

    def lower_checked(
        self,
        inputs: Sequence[torch.Tensor],
        sums: Sequence[torch.Tensor],
        u: float,
        scales: Sequence[float] | None = None,
        prescaled: bool = False,
    ) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None], list[bool]]:
        """:meth:`lower`, each bound times ``scales[i]`` as well (default 1), and for each
        output the bound's largest value (0-dim), and whether the bound is at least
        ``u*|value|`` (shaded) at every point: it :attr:`covers` the value, and no part of it
        overflowed. ``prescaled``: the sums come from ``fused(self.scales(u, scales))``, so
        they are the bounds already."""
        out: list[torch.Tensor | None] = []
        tops: list[torch.Tensor | None] = []
        whole = []
        given = iter(sums)
        for i, (floor, covers) in enumerate(zip(self.outputs, self.covers, strict=True)):
            if floor is None:
                out.append(None)
                tops.append(None)
                whole.append(False)
                continue
            factor = u * _SHADE * (1.0 if scales is None else scales[i])
            low = next(given) if prescaled else next(given).mul_(factor)
            top = low.amax()
            whole.append(covers)
            # Where a summand overflows or is 0*inf (a sum that is 0 under a power), those
            # points are done again from the values the bound reads, each summand on its own.
            if not math.isfinite(float(top)):
                whole[-1] = False
                at = _nonfinite(low)
                if at.numel():
                    low.index_copy_(0, at, self._careful(floor, inputs, at).mul_(factor))
                low.nan_to_num_(nan=0.0, posinf=0.0)
                top = low.amax()
            out.append(low)
            tops.append(top)
        return out, tops, whole

    def _careful(
        self, floor: _OutputFloor, inputs: Sequence[torch.Tensor], at: torch.Tensor
    ) -> torch.Tensor:
        """A bound's sum at the points ``at``, each summand that is not finite counted 0."""
        if self._kept_program is None:
            self._kept_program = self.retaining()
        picked = [x.index_select(0, at) for x in inputs[: self.program.n_inputs]]
        kept = self._kept_program.run(picked)[len(self.program.outputs) :]
        vals = dict(zip(self.slots, kept, strict=True))
        vals.update(enumerate(picked))
        return _accumulate(floor, _Reader(vals, self.signed))

    # -- the analysis ----------------------------------------------------------------------

    def _step(self, slot: int) -> _Step | None:
        n_in = self.program.n_inputs
        return None if slot < n_in else self.program.steps[slot - n_in]

    def _output(self, ref: int | float) -> _OutputFloor | None:
        if not isinstance(ref, int):
            return None
        step = self._step(ref)
        if step is None:
            return None
        if step.op == "add" and self._rounds(step):
            terms = tuple(self._term(a, 1.0) for a in step.args)
            if any(t.sums for t in terms):
                # The sums inside the terms are what the bound needs; the terms' own counts
                # (a sum's cancellation at the top) rarely add to them, and cost a pass each.
                lean = tuple(_Term(t.slot, t.sums, 0.0) for t in terms if t.sums)
                return _OutputFloor(lean, 0.0, True)
            return _OutputFloor(terms, float(step.param), True)
        if step.op != "add":
            term = self._term(ref, 0.0)
            if term.sums:  # (else no better than u*|value|)
                return _OutputFloor((term,), 0.0, False)
        return None

    def _term(self, slot: int, own: float) -> _Term:
        """A term and the sums in it. A sum of values that are never negative does not
        cancel: its S/|s| is 1, and it adds its weight to the term's own count."""
        found = self._sums(slot, 1.0, 0, ((), (), 1.0))
        cancelling = tuple(s for s in found if not self._plain(s.slot))
        own += sum(s.weight for s in found if self._plain(s.slot))
        return _Term(slot, cancelling, own)

    def _plain(self, slot: int) -> bool:
        """Whether a sum step adds values that are never negative (and a constant >= 0)."""
        step = self._step(slot)
        assert step is not None
        return step.n_neg == 0 and float(step.param) >= 0 and set(step.args) <= self.nonneg

    def _signless(self, nonneg: set[int]) -> set[int]:
        """The slots whose values are never negative (or are NaN), given such inputs."""
        n_in = self.program.n_inputs
        for k, step in enumerate(self.program.steps):
            args_ok = set(step.args) <= nonneg
            param = float(step.param)
            if (
                step.op in _SIGNLESS
                or (step.op == "add" and step.n_neg == 0 and param >= 0 and args_ok)
                or (step.op == "mul" and param >= 0 and args_ok)
                or (step.op in ("reciprocal", "pow") and args_ok)
            ):
                nonneg.add(n_in + k)
        return nonneg

    @staticmethod
    def _rounds(step: _Step) -> bool:
        """Whether a sum step rounds at least once (k >= 1 in its bound)."""
        return len(step.args) - 1 + (float(step.param) != 0.0) >= 1

    def _sums(
        self, slot: int, weight: float, depth: int, path: _Cofactor | None = None
    ) -> tuple[_SumFactor, ...]:
        """The sums reached from ``slot`` through products and powers, with their weights, and
        (``path``) the other factors met while the sum is a plain multiplier of the term."""
        step = self._step(slot)
        if step is None or depth > _DEPTH or weight == 0.0:
            return ()
        if step.op == "add":
            if not self._rounds(step):
                return ()
            return (_SumFactor(slot, tuple(step.args), float(step.param), weight, path),)
        if step.op == "mul":
            found: tuple[_SumFactor, ...] = ()
            npos = len(step.args) - step.n_neg
            for i, a in enumerate(step.args):
                sub = None
                if path is not None and i < npos:
                    mult, div, const = path
                    others = step.args[:i] + step.args[i + 1 : npos]
                    sub = (mult + others, div + step.args[npos:], const * float(step.param))
                found += self._sums(a, weight, depth + 1, sub)
            return found
        if step.op == "square":
            return self._sums(step.args[0], 2.0 * weight, depth + 1)
        if step.op == "pow":
            return self._sums(step.args[0], abs(float(step.param)) * weight, depth + 1)
        if step.op == "reciprocal":
            return self._sums(step.args[0], weight, depth + 1)
        return ()


class _Reader:
    """Values by slot, their magnitudes and sums' sizes ``S_s``, each computed once."""

    def __init__(self, vals: dict[int, torch.Tensor], signed: set[int]) -> None:
        self.vals = vals  # (the reader's own copies: their magnitudes are taken in place)
        self.signed = signed  # the slots whose values may be negative
        self.mags: dict[int, torch.Tensor] = {}
        self.sizes: dict[int, torch.Tensor] = {}

    def mag(self, slot: int) -> torch.Tensor:
        if slot not in self.mags:
            value = self.vals[slot]
            self.mags[slot] = value.abs_() if slot in self.signed else value
        return self.mags[slot]

    def size(self, s: _SumFactor) -> torch.Tensor:
        """S_s: the sum of the magnitudes of s's summands."""
        if s.slot not in self.sizes:
            first, *rest = s.summands
            if rest:
                total = torch.add(self.mag(first), self.mag(rest[0]))
                for x in rest[1:]:
                    total.add_(self.mag(x))
                if s.const:
                    total.add_(abs(s.const))
            else:  # (a sum that rounds has a constant then)
                total = torch.add(self.mag(first), abs(s.const))
            self.sizes[s.slot] = total
        return self.sizes[s.slot]


def _accumulate(floor: _OutputFloor, r: _Reader) -> torch.Tensor:
    """What :meth:`Floors.fused` computes for ``floor`` (before the factor u), each summand
    that is not finite (an overflow, or 0*inf where a sum is 0 under a power) counted 0."""
    acc: torch.Tensor | None = None

    def add(part: torch.Tensor, weight: float = 1.0) -> None:
        nonlocal acc
        part = part.nan_to_num(nan=0.0, posinf=0.0)
        acc = part.mul_(weight) if acc is None else acc.add_(part, alpha=weight)

    for term in floor.terms:
        size = r.mag(term.slot)
        if term.own:
            add(size, term.own)
        for s in term.sums:
            if s.cofactor is None:
                add(size * r.size(s) / r.mag(s.slot), s.weight)
                continue
            mult, div, const = s.cofactor
            part = r.size(s).clone()
            for m in mult:
                part.mul_(r.mag(m))
            for d in div:
                part.div_(r.mag(d))
            add(part, abs(const) * s.weight)
    assert acc is not None
    if floor.const:
        acc.add_(abs(floor.const))
    return acc


def _nonfinite(x: torch.Tensor) -> torch.Tensor:
    """The indices where ``x`` is NaN or infinite."""
    return torch.nonzero(~torch.isfinite(x)).flatten()
