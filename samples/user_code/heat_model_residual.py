"""A heat residual that takes the network, ``residual(model, x)``, and calls it itself.

pinncheck hands it a torch.nn.Module whose forward returns the manufactured solution computed
from the x it is given, as a network's output would be. Correct: expect pass.

    pinncheck verify samples/user_code/heat_model_residual.py:residual \
        --pde "u_t - nu*u_xx" --solution "u = sin(2*x + 1)*exp(-t) + x**3*t" \
        --param "nu = 0.1" -d "x = 0:1" -d "t = 0:1"
"""

import torch

NU = 0.1


def residual(model, x):
    u = model(x)
    g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
    u_x, u_t = g[:, 0:1], g[:, 1:2]
    u_xx = torch.autograd.grad(u_x, x, torch.ones_like(u_x), create_graph=True)[0][:, 0:1]
    return u_t - NU * u_xx
