"""PINN networks for ``pinncheck probe`` (inputs (n, 2) = columns (x, t), output (n, 1)).

Each ``*_mlp`` / ``*_model`` function is a zero-argument factory that seeds
torch and returns a float32 ``nn.Module``.  ``scaled_sin`` is a plain callable.

    factory / callable    what it is                          expected probe result
    --------------------  ----------------------------------  ---------------------------------
    pointwise_mlp         tanh MLP 2-32-32-1                  pass
    batchnorm_mlp         MLP with BatchNorm1d, train mode    fail: batch-coupled ("BatchNorm")
    batch_mean_model      hidden layer minus its batch mean   fail: batch-coupled ("batch")
    dropout_mlp           MLP with Dropout(0.1), train mode   fail: nondeterministic ("nondetermin")
    relu_mlp              ReLU MLP 2-32-32-1                  pass, with a warning that ReLU
                                                              second derivatives vanish
    scaled_sin            sin(3 * x)                          pass
    TwoInputMLP           tanh MLP with forward(x, t)         pass
    make_mlp(width, ...)  factory with arguments (--arg)      pass
    Sized(width, depth)   class whose constructor needs args  pass (with --arg)

    pinncheck probe samples/user_code/models.py:batchnorm_mlp -d "x = 0:1" -d "t = 0:1"
"""

import torch
from torch import nn


def pointwise_mlp():
    """Correct: each output row depends only on its own input row, deterministically."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(2, 32),
        nn.Tanh(),
        nn.Linear(32, 32),
        nn.Tanh(),
        nn.Linear(32, 1),
    )
    return net.float()


def batchnorm_mlp():
    """BUG: BatchNorm1d in training mode normalises with the statistics of the
    whole batch, so output i depends on every input row (the PDE residual at a
    collocation point then depends on the other collocation points)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(2, 32),
        nn.BatchNorm1d(32),
        nn.Tanh(),
        nn.Linear(32, 32),
        nn.BatchNorm1d(32),
        nn.Tanh(),
        nn.Linear(32, 1),
    )
    return net.float()  # left in training mode (the default)


class CenteredMLP(nn.Module):
    """Tanh MLP that "centres" its hidden features over the batch."""

    def __init__(self, width=32):
        super().__init__()
        self.inp = nn.Linear(2, width)
        self.hidden = nn.Linear(width, width)
        self.out = nn.Linear(width, 1)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        h = h - h.mean(dim=0, keepdim=True)  # BUG: couples the rows of the batch
        h = torch.tanh(self.hidden(h))
        return self.out(h)


def batch_mean_model():
    """BUG: subtracting the batch mean of a hidden layer couples all rows."""
    torch.manual_seed(0)
    return CenteredMLP().float()


def dropout_mlp():
    """BUG: Dropout in training mode gives a different output on every call,
    so the residual (and its derivatives) are random."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(2, 32),
        nn.Tanh(),
        nn.Dropout(0.1),
        nn.Linear(32, 32),
        nn.Tanh(),
        nn.Dropout(0.1),
        nn.Linear(32, 1),
    )
    return net.float()  # left in training mode (the default)


def relu_mlp():
    """Pointwise and deterministic, but piecewise linear: every second
    derivative (u_xx, u_tt, ...) is zero almost everywhere, so it cannot
    represent a second-order PDE solution.  pinncheck should pass it with a
    warning about vanishing second derivatives."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(2, 32),
        nn.ReLU(),
        nn.Linear(32, 32),
        nn.ReLU(),
        nn.Linear(32, 1),
    )
    return net.float()


def scaled_sin(x):
    """A plain callable (not a module, not a factory): pointwise, deterministic."""
    return torch.sin(x[:, :1] * 3)


class TwoInputMLP(nn.Module):
    """Correct: a tanh MLP whose forward takes the coordinates separately, forward(x, t).

    pinncheck sees two inputs for the two domain variables and passes (n, 1) columns."""

    def __init__(self, width=16):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, x, t):
        return self.net(torch.cat([x, t], dim=1))


def make_mlp(width, depth, activation="tanh"):
    """Correct: a factory with arguments (probe it with --arg width=16 --arg depth=2)."""
    torch.manual_seed(0)
    act = {"tanh": nn.Tanh, "sin": Sine}[activation]
    layers = [nn.Linear(2, width), act()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, 1))


class Sine(nn.Module):
    def forward(self, x):
        return torch.sin(x)


class Sized(nn.Module):
    """Correct: a model class whose constructor needs arguments (--arg width=16 --arg depth=2)."""

    def __init__(self, width, depth):
        super().__init__()
        self.net = make_mlp(width, depth)

    def forward(self, x):
        return self.net(x)
