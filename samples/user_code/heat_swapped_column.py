"""Buggy PINN residual for the 1D heat equation: the input columns are swapped.

PDE:    u_t - nu * u_xx = 0,  nu = 0.1
Inputs: x[:, 0:1] is x, x[:, 1:2] is t.

BUG: the author copied this from a code base whose inputs were ordered
(t, x), so the column indices are the wrong way round.  ``u_t`` is really
u_x, ``u_x`` is really u_t, and the "second derivative in x" is really the
second derivative in t.  The function therefore computes

    u_x - 0.1 * u_tt        instead of        u_t - 0.1 * u_xx.

What pinncheck should say: the residual does not match; a least-squares fit
of the user's output on the derivative terms gives
"your residual ~= 1.0*u_x - 0.1*u_tt" and the hint to check which input
column is differentiated (diagnosis contains "column").
"""

import torch

NU = 0.1


def gradient(y, x):
    return torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y), create_graph=True)[0]


def residual(x, u):
    u = u[:, 0:1]

    # inputs are (t, x)   <-- wrong: pinncheck / the data loader uses (x, t)
    du_X = gradient(u, x)
    u_t = du_X[:, 0:1]
    u_x = du_X[:, 1:2]

    du_xX = gradient(u_x, x)
    u_xx = du_xX[:, 1:2]

    return u_t - NU * u_xx
