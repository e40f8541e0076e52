"""Bounds checked *before* symbolic or numeric work starts (see docs/limits.md).

Every limit here is estimated from the inputs of a step, so a request that would take minutes or
gigabytes is refused at once, with exit 2 and a message that names the limit and how to stay
under it. The guards that run after the work (node counts in the parser, in ``exact_partials``)
remain as a second line.
"""

from __future__ import annotations

import math

import sympy

from ._errors import ExpressionError, OptionError

MAX_PARTIALS = 2_000
"""Most partial derivatives (all orders 1..order, mixed included) one check may compute."""

MAX_DERIVATIVE_NODES = 200_000
"""Most nodes one exact derivative may have (counted as a tree)."""

MAX_TOTAL_NODES = 2_000_000
"""Most nodes all exact derivatives of one expression may have together."""

SMALL_DERIVATIVE_NODES = 2_000
"""Derivatives up to this size are never refused by a prediction (of size or time)."""

MAX_SYMBOLIC_SECONDS = 5.0
"""Most seconds the exact derivatives of one expression may take (checked between orders)."""

MAX_FUNCTION_NESTING = 30
"""Most function calls nested inside each other in an expression that is differentiated."""

MAX_PARAMETER_NODES = 60
"""A parameter whose exact value is larger than this is kept as its numeric value."""

MAX_CHECK_FILE_BYTES = 1_000_000
"""Largest check file ``pinncheck run`` reads."""

MAX_CHECK_FILE_NESTING = 50
"""Deepest nesting of arrays and tables in a check file."""


def partial_count(dim: int, order: int) -> int:
    """How many partial derivatives of orders 1..order ``dim`` variables have.

    >>> partial_count(2, 2)
    5
    """
    return math.comb(dim + order, order) - 1


def check_partials(dim: int, order: int) -> None:
    """Refuse a request for more than :data:`MAX_PARTIALS` partial derivatives.

    Raises:
        OptionError: the count is over the limit (computed exactly, nothing is built).
    """
    count = partial_count(dim, order)
    if count > MAX_PARTIALS:
        fits = [o for o in range(1, order) if partial_count(dim, o) <= MAX_PARTIALS]
        hint = f"use --order {fits[-1]} or fewer variables" if fits else "use fewer variables"
        raise OptionError(
            f"{dim} variables at order {order} have {count:,} partial derivatives; pinncheck "
            f"computes at most {MAX_PARTIALS:,} per check (limit MAX_PARTIALS): {hint}."
        )


def tree_size(expr: sympy.Basic, limit: int) -> int:
    """The number of nodes of ``expr`` as a tree, counting stops just past ``limit``."""
    count = 0
    for _ in sympy.preorder_traversal(expr):
        count += 1
        if count > limit:
            break
    return count


def function_nesting(expr: sympy.Basic) -> int:
    """The most function calls (sin, sigmoid, ...) on one path from the root to a leaf."""
    memo: dict[sympy.Basic, int] = {}

    def depth(node: sympy.Basic) -> int:
        hit = memo.get(node)
        if hit is None:
            inner = max((depth(a) for a in node.args), default=0)
            hit = memo[node] = inner + isinstance(node, sympy.Function)
        return hit

    return depth(expr)


def check_nesting(expr: sympy.Expr) -> None:
    """Refuse to differentiate a deep chain of functions (SymPy's time grows as a high power
    of the depth: the first derivative of 98 nested sigmoids takes seconds, the second minutes).

    Raises:
        ExpressionError: more than :data:`MAX_FUNCTION_NESTING` nested calls.
    """
    nesting = function_nesting(expr)
    if nesting > MAX_FUNCTION_NESTING:
        raise ExpressionError(
            f"{_short(expr)} nests {nesting} function calls inside each other; pinncheck "
            f"differentiates at most {MAX_FUNCTION_NESTING} (limit MAX_FUNCTION_NESTING), "
            "because SymPy's time grows steeply with the depth. Check a shallower expression."
        )


def check_growth(expr: sympy.Expr, previous: int, current: int, order: int) -> float:
    """Refuse to differentiate again when the next derivative is predicted to be too large.

    The next size is predicted from the growth of the last step (``current / previous``); a
    product of many factors or deeply nested functions grow by a large factor per order.

    Returns:
        The growth ratio of the last step (at least 1).

    Raises:
        ExpressionError: the prediction exceeds :data:`MAX_DERIVATIVE_NODES`.
    """
    ratio = max(1.0, current / max(previous, 1))
    predicted = current * ratio
    if current > SMALL_DERIVATIVE_NODES and predicted > MAX_DERIVATIVE_NODES:
        raise ExpressionError(
            f"The order-{order} derivative of {_short(expr)} would be too large to compute: the "
            f"order-{order - 1} one has {current:,} nodes and grew {ratio:.0f}x in the last "
            f"order, so the next is predicted at about {predicted:,.0f} nodes (limit "
            f"{MAX_DERIVATIVE_NODES:,}). Lower --order, or split the expression (e.g. a long "
            "product) into smaller checks."
        )
    return ratio


def symbolic_time_exceeded(expr: sympy.Expr, order: int, elapsed: float) -> ExpressionError:
    return ExpressionError(
        f"The exact derivatives of {_short(expr)} would take over {MAX_SYMBOLIC_SECONDS:g} s "
        f"(limit MAX_SYMBOLIC_SECONDS; {elapsed:.1f} s spent before order {order}, and each "
        "order takes several times longer than the one before). Lower --order or simplify the "
        "expression."
    )


def derivative_too_large(expr: sympy.Expr, order: int, size: int, total: int) -> ExpressionError:
    what = (
        f"is too large to evaluate ({size:,}+ nodes, limit {MAX_DERIVATIVE_NODES:,})"
        if size > MAX_DERIVATIVE_NODES
        else f"brings all derivatives together over {MAX_TOTAL_NODES:,} nodes ({total:,})"
    )
    return ExpressionError(
        f"The order-{order} derivative of {_short(expr)} {what}; lower --order or simplify "
        "the expression."
    )


def _short(expr: sympy.Expr, limit: int = 80) -> str:
    text = str(expr) if tree_size(expr, 200) <= 200 else type(expr).__name__ + "(...)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_diff_count(count: int, already: int, max_order: int, equation: str) -> None:
    """Refuse ``diff(u, x, N)`` with too large an ``N`` before any list is built."""
    if already + count > max_order:
        raise ExpressionError(
            f"In the PDE {equation!r}, a derivative of order {already + count:,} is used; "
            f"pinncheck supports orders up to {max_order}."
        )
