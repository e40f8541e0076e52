"""A heat residual with split inputs, ``residual(x, t, u)``: x and t are separate (n, 1) tensors.

Many plain-PyTorch PINNs keep each coordinate in its own tensor and differentiate with respect
to it directly. pinncheck reads the signature (three parameters for the two variables x, t)
and passes one (n, 1) tensor per variable, each with requires_grad=True. Correct: expect pass.

    pinncheck verify samples/user_code/heat_split_inputs.py:residual \
        --pde "u_t - nu*u_xx" --solution "u = sin(2*x + 1)*exp(-t) + x**3*t" \
        --param "nu = 0.1" -d "x = 0:1" -d "t = 0:1"
"""

import torch

NU = 0.1


def d(y, wrt):
    return torch.autograd.grad(y, wrt, torch.ones_like(y), create_graph=True)[0]


def residual(x, t, u):
    u_t = d(u, t)
    u_xx = d(d(u, x), x)
    return u_t - NU * u_xx
