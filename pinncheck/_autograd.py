"""Pointwise partial derivatives with the ones-vector method (see the project's SEED notes).

Each coordinate is its own ``(n,)`` leaf tensor. Because output ``i`` depends only on point
``i``, the Jacobian of a pointwise function is diagonal, and the vector-Jacobian product with a
vector of ones is exactly the vector of pointwise derivatives. Higher orders differentiate a
lower-order derivative again; the graph of each lower order is built once and shared.

The product with ones is taken as the gradient of ``y.sum()``: autograd's backward of a sum
*is* the ones vector (broadcast, never materialised), so the values are those of
``grad(y, x, grad_outputs=torch.ones_like(y))``. It also skips the shape check that a
``grad_outputs`` tensor triggers, which imports ``torch.fx`` (0.1 s) on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations_with_replacement

import torch

MultiIndex = tuple[int, ...]
"""A partial derivative as the sorted tuple of variable indices, e.g. (0, 1) = d²/dx0 dx1."""


def multi_indices(dim: int, order: int) -> list[MultiIndex]:
    """All partial derivatives of orders 1..order in ``dim`` variables, mixed ones included.

    >>> multi_indices(2, 2)
    [(0,), (1,), (0, 0), (0, 1), (1, 1)]

    Raises:
        OptionError: more than ``_limits.MAX_PARTIALS`` of them (checked before any is built).
    """
    from ._limits import check_partials

    check_partials(dim, order)
    out: list[MultiIndex] = []
    for k in range(1, order + 1):
        out.extend(combinations_with_replacement(range(dim), k))
    return out


def closure(targets: Iterable[MultiIndex]) -> list[MultiIndex]:
    """The targets plus every prefix they are computed from, shortest first."""
    need: set[MultiIndex] = set()
    for alpha in targets:
        alpha = tuple(sorted(alpha))
        for k in range(1, len(alpha) + 1):
            need.add(alpha[:k])
    return sorted(need, key=lambda a: (len(a), a))


def partials(
    y: torch.Tensor, xs: Sequence[torch.Tensor], targets: Iterable[MultiIndex]
) -> dict[MultiIndex, torch.Tensor]:
    """Pointwise partial derivatives of ``y`` with respect to the leaves ``xs``.

    Args:
        y: ``(n,)`` values computed pointwise from ``xs``.
        xs: one ``(n,)`` leaf per variable, each with ``requires_grad=True``.
        targets: the multi-indices wanted (any order, any repetition).

    Returns:
        ``{alpha: tensor}`` for each target, detached. A derivative that autograd finds
        disconnected (``None``, or a constant) is an exact zero tensor.

    Example:
        >>> x = torch.linspace(0, 1, 5, requires_grad=True)
        >>> partials(x**3, [x], [(0,), (0, 0)])[(0, 0)]  # 6x
        tensor([0.0000, 1.5000, 3.0000, 4.5000, 6.0000])
    """
    order_of_need = closure(targets)
    wanted = {tuple(sorted(a)) for a in targets}
    top = max((len(a) for a in order_of_need), default=0)
    have: dict[MultiIndex, torch.Tensor] = {(): y}
    by_parent: dict[MultiIndex, list[MultiIndex]] = {}
    for alpha in order_of_need:
        by_parent.setdefault(alpha[:-1], []).append(alpha)
    for parent in sorted(by_parent, key=lambda a: (len(a), a)):
        children = by_parent[parent]
        dy = have[parent]
        if dy.requires_grad:
            # Graphs are kept (create_graph) while a child will itself be differentiated.
            deeper = len(parent) + 1 < top
            grads: Sequence[torch.Tensor | None] = torch.autograd.grad(
                dy.sum(),
                [xs[c[-1]] for c in children],
                create_graph=deeper,
                retain_graph=True,
                allow_unused=True,
            )
        else:
            grads = [None] * len(children)
        for child, g in zip(children, grads, strict=True):
            have[child] = torch.zeros_like(dy) if g is None else g
    return {a: have[a].detach() for a in wanted}
