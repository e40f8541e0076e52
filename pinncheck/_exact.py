"""Exact partial derivatives with SymPy: ``diff`` only, never an unbounded simplification."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sympy

from ._autograd import MultiIndex, closure
from ._errors import ExpressionError

MAX_DERIVATIVE_NODES = 200_000


def _size_at_most(expr: sympy.Expr, limit: int) -> bool:
    count = 0
    for _ in sympy.preorder_traversal(expr):
        count += 1
        if count > limit:
            return False
    return True


def exact_partials(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol], targets: Iterable[MultiIndex]
) -> dict[MultiIndex, sympy.Expr]:
    """SymPy's partial derivatives of ``expr`` for each multi-index in ``targets``.

    Each derivative is the ``diff`` of its parent (one order lower), so lower orders are shared.
    The empty multi-index ``()`` is ``expr`` itself.

    Raises:
        ExpressionError: a derivative grew beyond ``MAX_DERIVATIVE_NODES`` nodes.
    """
    wanted = [tuple(sorted(a)) for a in targets]
    have: dict[MultiIndex, sympy.Expr] = {(): expr}
    for alpha in closure(a for a in wanted if a):
        d = sympy.diff(have[alpha[:-1]], symbols[alpha[-1]])
        if not _size_at_most(d, MAX_DERIVATIVE_NODES):
            raise ExpressionError(
                f"The order-{len(alpha)} derivative of {expr} is too large to evaluate "
                f"(over {MAX_DERIVATIVE_NODES} nodes); lower --order or simplify the expression."
            )
        have[alpha] = d
    return {a: have[a] for a in wanted}
