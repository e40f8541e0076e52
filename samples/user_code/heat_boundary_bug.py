"""A PINN residual for the 1D heat equation with a bug near one boundary only.

PDE:    u_t - nu * u_xx = 0,  nu = 0.1
Inputs: x[:, 0:1] is the space coordinate x, x[:, 1:2] is the time t.

The diffusion coefficient is switched off where x > 0.9 (as a mask meant for a boundary
layer, applied the wrong way round). pinncheck fails it at about a tenth of the points, and
the map under its table shows that they all lie at x > 0.9 (expect: fail).

    pinncheck verify samples/user_code/heat_boundary_bug.py:residual \
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
    u_xx = gradient(u_x, x)[:, 0:1]

    near_wall = x[:, 0:1] > 0.9
    nu = torch.where(near_wall, torch.zeros_like(u_xx), torch.full_like(u_xx, NU))
    return u_t - nu * u_xx
