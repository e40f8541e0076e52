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
the way) and ``S_s`` is the sum of the magnitudes of s's summands. ``L <= B`` at every point
(where a factor is 0 the product is 0 and L is set to 0). Outputs with no such structure get
None: ``u*|v|`` is as good.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ._evaluate import Program, _Step

_DEPTH = 8
"""How deep products are followed into their factors."""


@dataclass(frozen=True)
class _SumFactor:
    slot: int  # the sum's value
    summands: tuple[int, ...]  # its summands' values
    const: float  # its constant summand
    weight: float  # the powers met between the term and the sum


@dataclass(frozen=True)
class _Term:
    slot: int
    sums: tuple[_SumFactor, ...]


@dataclass(frozen=True)
class _OutputFloor:
    terms: tuple[_Term, ...]
    const: float
    is_sum: bool  # a sum of the terms (else one product term)


class Floors:
    """The structural lower bounds of ``program``'s outputs (see the module's docstring).

    :attr:`slots` are the intermediate values the bounds read; :meth:`retaining` returns the
    program with those kept as extra outputs, and :meth:`lower` computes the bounds from them.
    """

    def __init__(self, program: Program) -> None:
        self.program = program
        self.outputs: list[_OutputFloor | None] = [self._output(r) for r in program.outputs]
        wanted: set[int] = set()
        for out in self.outputs:
            for term in out.terms if out is not None else ():
                wanted.add(term.slot)
                for s in term.sums:
                    wanted.add(s.slot)
                    wanted.update(s.summands)
        self.slots = sorted(wanted)

    def __bool__(self) -> bool:
        return any(o is not None for o in self.outputs)

    def retaining(self) -> Program:
        """A copy of the program that also returns the values :meth:`lower` reads, after its
        own outputs."""
        prog = copy.deepcopy(self.program)
        prog.outputs = [*prog.outputs, *self.slots]
        prog.reschedule()
        return prog

    def lower(
        self, inputs: Sequence[torch.Tensor], kept: Sequence[torch.Tensor], u: float
    ) -> list[torch.Tensor | None]:
        """Each output's lower bound (None: no better than ``u*|value|``), from the program's
        ``inputs`` and the ``kept`` values (the extra outputs of :meth:`retaining`)."""
        n_in = self.program.n_inputs
        vals = dict(zip(self.slots, kept, strict=True))
        vals.update(enumerate(inputs[:n_in]))
        mags: dict[int, torch.Tensor] = {}
        rel: dict[int, torch.Tensor] = {}  # a sum's S/|s|

        def mag(slot: int) -> torch.Tensor:
            if slot not in mags:
                mags[slot] = vals[slot].abs()
            return mags[slot]

        def spread(s: _SumFactor) -> torch.Tensor:  # S_s / |s|
            if s.slot not in rel:
                total = mag(s.summands[0]).clone()
                for x in s.summands[1:]:
                    total.add_(mag(x))
                if s.const:
                    total.add_(abs(s.const))
                rel[s.slot] = total.div_(mag(s.slot))
            return rel[s.slot]

        out: list[torch.Tensor | None] = []
        for floor in self.outputs:
            if floor is None:
                out.append(None)
                continue
            # u*(sum_j |T_j|*(1 + sum_s w_s*S_s/|s|) + |c|), or for a product u*|P|*sum_s ...
            acc: torch.Tensor | None = None
            for term in floor.terms:
                size = mag(term.slot)
                if floor.is_sum:
                    acc = size.clone() if acc is None else acc.add_(size)
                for s in term.sums:
                    if acc is None:
                        acc = size * spread(s)
                        if s.weight != 1.0:
                            acc.mul_(s.weight)
                    else:
                        acc.addcmul_(size, spread(s), value=s.weight)
            assert acc is not None
            if floor.const:
                acc.add_(abs(floor.const))
            # 0 * inf where a factor is 0 (the product is 0 too): 0 is a lower bound.
            out.append(acc.mul_(u).nan_to_num_(nan=0.0, posinf=0.0))
        return out

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
            terms = tuple(_Term(a, self._sums(a, 1.0, 0)) for a in step.args)
            return _OutputFloor(terms, float(step.param), True)
        sums = self._sums(ref, 1.0, 0)
        if sums and step.op != "add":
            return _OutputFloor((_Term(ref, sums),), 0.0, False)
        return None

    @staticmethod
    def _rounds(step: _Step) -> bool:
        """Whether a sum step rounds at least once (k >= 1 in its bound)."""
        return len(step.args) - 1 + (float(step.param) != 0.0) >= 1

    def _sums(self, slot: int, weight: float, depth: int) -> tuple[_SumFactor, ...]:
        """The sums reached from ``slot`` through products and powers, with their weights."""
        step = self._step(slot)
        if step is None or depth > _DEPTH or weight == 0.0:
            return ()
        if step.op == "add":
            if not self._rounds(step):
                return ()
            return (_SumFactor(slot, tuple(step.args), float(step.param), weight),)
        if step.op == "mul":
            found: tuple[_SumFactor, ...] = ()
            for a in step.args:
                found += self._sums(a, weight, depth + 1)
            return found
        if step.op == "square":
            return self._sums(step.args[0], 2.0 * weight, depth + 1)
        if step.op == "pow":
            return self._sums(step.args[0], abs(float(step.param)) * weight, depth + 1)
        if step.op == "reciprocal":
            return self._sums(step.args[0], weight, depth + 1)
        return ()
