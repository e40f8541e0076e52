"""Exact partial derivatives with SymPy: ``diff`` only, never an unbounded simplification."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import sympy

from . import _limits
from ._autograd import MultiIndex, closure
from ._kinks import from_real_calculus, to_real_calculus
from ._limits import (
    MAX_DERIVATIVE_NODES,
    check_growth,
    check_nesting,
    derivative_too_large,
    symbolic_time_exceeded,
    tree_size,
)

__all__ = ["MAX_DERIVATIVE_NODES", "exact_partials"]


def exact_partials(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol], targets: Iterable[MultiIndex]
) -> dict[MultiIndex, sympy.Expr]:
    """SymPy's partial derivatives of ``expr`` for each multi-index in ``targets``.

    Each derivative is the ``diff`` of its parent (one order lower), so lower orders are shared.
    The empty multi-index ``()`` is ``expr`` itself. ``Abs`` is differentiated as a function of
    a real argument (see ``_kinks``).

    Before each ``diff`` the size of the result is predicted from the growth of the order
    before (``_limits.check_growth``), so a derivative that would take minutes is refused at
    once rather than after it was built.

    Raises:
        ExpressionError: ``expr`` nests more than ``MAX_FUNCTION_NESTING`` calls, a
            derivative would grow, or grew, beyond ``MAX_DERIVATIVE_NODES``
            nodes, all of them together beyond ``MAX_TOTAL_NODES``, or the work took longer
            than ``MAX_SYMBOLIC_SECONDS`` (predicted from the time of the order before).
    """
    started = time.monotonic()
    check_nesting(expr)
    wanted = [tuple(sorted(a)) for a in targets]
    real = to_real_calculus(expr)
    have: dict[MultiIndex, sympy.Expr] = {(): real}
    sizes: dict[MultiIndex, int] = {(): tree_size(real, _limits.MAX_DERIVATIVE_NODES)}
    seconds: dict[MultiIndex, float] = {(): 0.0}
    total = 0
    for alpha in closure(a for a in wanted if a):
        parent = alpha[:-1]
        grand = sizes[parent[:-1]] if parent else sizes[()]
        ratio = check_growth(expr, grand, sizes[parent], len(alpha))
        # diff's time grows faster than the size of its result: twice the size ratio. Small
        # derivatives are never refused for time (a busy machine must not change a verdict).
        elapsed = time.monotonic() - started
        slow = elapsed + 2 * ratio * seconds[parent] > _limits.MAX_SYMBOLIC_SECONDS
        if slow and sizes[parent] > _limits.SMALL_DERIVATIVE_NODES:
            raise symbolic_time_exceeded(expr, len(alpha), elapsed)
        t0 = time.monotonic()
        d = sympy.diff(have[parent], symbols[alpha[-1]])
        seconds[alpha] = time.monotonic() - t0
        size = tree_size(d, _limits.MAX_DERIVATIVE_NODES)
        total += size
        if size > _limits.MAX_DERIVATIVE_NODES or total > _limits.MAX_TOTAL_NODES:
            raise derivative_too_large(expr, len(alpha), size, total)
        have[alpha], sizes[alpha] = d, size
    return {a: from_real_calculus(have[a]) for a in wanted}
