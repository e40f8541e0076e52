"""Buggy PINN residual for the 1D heat equation: first derivative taken
without ``create_graph=True``.

PDE:    u_t - nu * u_xx = 0,  nu = 0.1
Inputs: x[:, 0:1] is x, x[:, 1:2] is t.

BUG: ``gradient`` calls ``torch.autograd.grad`` without ``create_graph=True``,
so the first derivatives come back detached from the graph
(``requires_grad=False``).  Normally the second call would then raise an
error, but the helper was made "robust": it returns zeros when its input does
not require grad, and replaces a ``None`` gradient (``allow_unused=True``) by
zeros.  So u_xx is silently zero everywhere and the function computes

    u_t                     instead of        u_t - 0.1 * u_xx.

What pinncheck should say: the residual does not match; the fit gives
"your residual ~= 1.0*u_t" (the u_xx term is missing) and the hint that a
higher derivative is zero because the first derivative was taken without
create_graph=True (diagnosis contains "create_graph").
"""

import torch

NU = 0.1


def gradient(y, x):
    """dy/dx; returns zeros instead of failing when y does not depend on x."""
    if not y.requires_grad:
        return torch.zeros_like(x)
    # <-- missing create_graph=True
    g = torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y), allow_unused=True)[0]
    return g if g is not None else torch.zeros_like(x)


def residual(x, u):
    u = u[:, 0:1]

    du_X = gradient(u, x)
    u_x = du_X[:, 0:1]
    u_t = du_X[:, 1:2]

    du_xX = gradient(u_x, x)  # u_x is detached -> zeros
    u_xx = du_xX[:, 0:1]

    return u_t - NU * u_xx
