"""DeepXDE-shaped derivative helpers, written for these samples (not DeepXDE's code).

``jacobian(ys, xs, i, j)`` and ``hessian(ys, xs, component, i, j)`` have the call shape of
``deepxde.grad.jacobian`` / ``deepxde.grad.hessian``, and, like them, remember every
``(ys, xs)`` pair they have seen (with its derivatives and autograd graph) in module-level
caches until ``clear()`` is called. Called once per chunk of points without ``clear()``, those
caches grow with the number of points: the memory problem pinncheck avoids by clearing
DeepXDE's caches after each call (tests/test_usercode.py also installs this module as a stand-in
``deepxde.gradients``).
"""

import torch

# {(id(ys), id(xs)): (ys, xs, {i: d ys[:, i] / d xs})}: the tensors are kept alive on purpose.
_JACOBIANS = {}
_HESSIANS = {}


def _rows(ys, xs, i):
    key = (id(ys), id(xs))
    entry = _JACOBIANS.setdefault(key, (ys, xs, {}))
    rows = entry[2]
    if i not in rows:
        y = ys[:, i : i + 1]
        rows[i] = torch.autograd.grad(y, xs, torch.ones_like(y), create_graph=True)[0]
    return rows[i]


def jacobian(ys, xs, i=0, j=None):
    """d ys[:, i] / d xs[:, j] as an (n, 1) tensor (the whole gradient row when j is None)."""
    row = _rows(ys, xs, i)
    return row if j is None else row[:, j : j + 1]


def hessian(ys, xs, component=0, i=0, j=0):
    """d^2 ys[:, component] / d xs[:, i] d xs[:, j] as an (n, 1) tensor."""
    key = (id(ys), id(xs), component)
    if key not in _HESSIANS:
        _HESSIANS[key] = (ys, xs, jacobian(ys, xs, i=component))
    first = _HESSIANS[key][2]
    return jacobian(first, xs, i=i, j=j)


def clear():
    """Forget every cached derivative (DeepXDE's training loop does this after each step)."""
    _JACOBIANS.clear()
    _HESSIANS.clear()


def cached():
    """How many (ys, xs) pairs the caches hold."""
    return len(_JACOBIANS) + len(_HESSIANS)
