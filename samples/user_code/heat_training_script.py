"""A whole PINN training script: definitions at the top, training at module level.

Importing this file trains (here: it refuses loudly instead, so that a test notices if pinncheck
ever runs it). ``--definitions-only`` (``definitions_only = true`` in a check file) loads only its
imports, functions, classes and simple constants, so ``pde`` can be checked as it is.

    pinncheck verify samples/user_code/heat_training_script.py:pde --definitions-only \
        --pde "u_t - nu*u_xx" --solution "u = sin(2*x + 1)*exp(-t) + x**3*t" \
        --param "nu = 0.1" -d "x = 0:1" -d "t = 0:1"
"""

import math

import torch
from torch import nn

NU = 0.1
EPOCHS = 20_000
LAYERS = [2, 32, 32, 1]


def pde(x, u):
    g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
    u_x, u_t = g[:, 0:1], g[:, 1:2]
    u_xx = torch.autograd.grad(u_x, x, torch.ones_like(u_x), create_graph=True)[0][:, 0:1]
    return u_t - NU * u_xx


class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        pairs = zip(layers[:-1], layers[1:], strict=True)
        self.body = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)

    def forward(self, x):
        for layer in self.body[:-1]:
            x = torch.tanh(layer(x))
        return self.body[-1](x)


class Trainer:
    def __init__(self, net):
        self.net = net

    def train(self, iterations):
        raise RuntimeError(
            f"heat_training_script.py trains at import ({iterations} iterations); load it "
            "with --definitions-only"
        )


# Everything below runs on import: data, model, training.
points = torch.rand(10_000, 2)
model = Trainer(Net(LAYERS))
model.train(iterations=EPOCHS)
print("final loss", math.nan)
