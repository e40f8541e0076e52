"""Correct PINN residual for the 1D heat equation (reference sample).

PDE:    u_t - nu * u_xx = 0,  nu = 0.1
Inputs: x[:, 0:1] is the space coordinate x, x[:, 1:2] is the time t
        (DeepXDE naming: the input tensor ``x`` holds both columns).

This is what the residual should look like.  pinncheck should report that
the residual matches ``u_t - nu*u_xx`` to rounding error (expect: pass).

    pinncheck verify samples/user_code/heat_correct.py:residual \
        --pde "u_t - nu*u_xx" --solution "u = sin(2*x + 1)*exp(-t) + x**3*t" \
        --param "nu = 0.1" -d "x = 0:1" -d "t = 0:1"
"""

import torch

NU = 0.1


def gradient(y, x):
    """dy/dx for every column of x, kept on the graph so it can be differentiated again."""
    return torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y), create_graph=True)[0]


def residual(x, u):
    u = u[:, 0:1]

    du_X = gradient(u, x)
    u_x = du_X[:, 0:1]
    u_t = du_X[:, 1:2]

    du_xX = gradient(u_x, x)
    u_xx = du_xX[:, 0:1]

    return u_t - NU * u_xx
