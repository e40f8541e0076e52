"""A viscous Burgers residual whose values are right but whose gradient is not.

PDE:    u_t + u*u_x - nu*u_xx = 0,  nu = 0.01
BUG:    ``u.detach() * u_x``: the advecting u is cut off the autograd graph. Every value of the
        residual is right, so a values-only check passes, but training through it follows a
        wrong gradient (the loss cannot see how u_t + u*u_x changes with u through that factor).

pinncheck perturbs the solution (u + θ·v) and compares the residual's derivative with the
PDE's exact linearisation: expect fail, with a diagnosis about the "gradient".

    pinncheck verify samples/user_code/burgers_detached.py:residual \
        --pde "u_t + u*u_x - nu*u_xx" --solution "u = sin(2*x + 1)*exp(-t) + x**3*t" \
        --param "nu = 0.01" -d "x = 0:1" -d "t = 0:1"
"""

import torch

NU = 0.01


def d(y, x):
    return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]


def residual(x, u):
    g = d(u, x)
    u_x, u_t = g[:, 0:1], g[:, 1:2]
    u_xx = d(u_x, x)[:, 0:1]
    return u_t + u.detach() * u_x - NU * u_xx
