"""Buggy PINN residual for the 1D heat equation: derivatives taken with
respect to column slices that are not on the graph of ``u``.

PDE:    u_t - nu * u_xx = 0,  nu = 0.1
Inputs: x[:, 0:1] is x, x[:, 1:2] is t.

BUG: the author splits the input into ``x_col = x[:, 0:1]`` and
``t_col = x[:, 1:2]`` and differentiates ``u`` with respect to those slices.
That only works when the network was fed ``torch.cat([x_col, t_col], 1)``;
here ``u`` was computed from the full input tensor, so the slices are new
tensors that ``u`` does not depend on.  ``torch.autograd.grad`` would raise
"One of the differentiated Tensors appears to not have been used in the
graph", but the helper passes ``allow_unused=True`` and replaces the ``None``
by zeros.  Every derivative is zero and the function computes

    0 (identically)         instead of        u_t - 0.1 * u_xx.

What pinncheck should say: the residual does not match; it is identically
zero, i.e. every derivative vanished, because the tensor being
differentiated with respect to is not on the graph of u (diagnosis contains
"not on the graph").
"""

import torch

NU = 0.1


def gradient(y, x):
    """dy/dx; returns zeros instead of failing when y does not depend on x."""
    if not y.requires_grad:
        return torch.zeros_like(x)
    g = torch.autograd.grad(
        y, x, grad_outputs=torch.ones_like(y), create_graph=True, allow_unused=True
    )[0]
    return g if g is not None else torch.zeros_like(x)


def residual(x, u):
    u = u[:, 0:1]
    x_col = x[:, 0:1]  # new tensors: u was not computed from these
    t_col = x[:, 1:2]

    u_x = gradient(u, x_col)
    u_t = gradient(u, t_col)
    u_xx = gradient(u_x, x_col)

    return u_t - NU * u_xx
