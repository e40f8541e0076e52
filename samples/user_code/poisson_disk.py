"""A Poisson residual on a disk: the manufactured solution is only defined inside it.

PDE:    u_xx + u_yy = 0 (the residual is the Laplacian; the solution need not solve it)
Domain: the disk x**2 + y**2 <= 0.9, cut from the box [-1, 1]^2 with --where.

The manufactured solution ``sqrt(1 - x**2 - y**2)*sin(x) + x*y**3`` is NaN outside the unit
disk, so on the plain box the check would see NaN; with ``--where`` only the disk is sampled.
Correct: expect pass.

    pinncheck verify samples/user_code/poisson_disk.py:residual --pde "u_xx + u_yy" \
        --solution "u = sqrt(1 - x**2 - y**2)*sin(x) + x*y**3" \
        -d "x = -1:1" -d "y = -1:1" --where "x**2 + y**2 <= 0.9"
"""

import torch


def laplacian(u, x):
    g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
    total = torch.zeros_like(u)
    for i in range(x.shape[1]):
        gi = g[:, i : i + 1]
        gg = torch.autograd.grad(gi, x, torch.ones_like(gi), create_graph=True)[0]
        total = total + gg[:, i : i + 1]
    return total


def residual(x, u):
    return laplacian(u, x)
