"""A DeepXDE-style heat residual, ``pde(x, y)``, using DeepXDE-shaped cached helpers.

DeepXDE calls the network's output ``y`` and takes derivatives with ``dde.grad.jacobian`` and
``dde.grad.hessian``; ``ddelike.grad`` has the same call shape (and the same caching), so this file
reads like a DeepXDE example without needing DeepXDE. Correct: expect pass.

    pinncheck verify samples/user_code/heat_deepxde_style.py:pde \
        --pde "u_t - nu*u_xx" --solution "u = sin(2*x + 1)*exp(-t) + x**3*t" \
        --param "nu = 0.1" -d "x = 0:1" -d "t = 0:1"
"""

from ddelike import grad

NU = 0.1


def pde(x, y):
    dy_t = grad.jacobian(y, x, i=0, j=1)
    dy_xx = grad.hessian(y, x, component=0, i=0, j=0)
    return dy_t - NU * dy_xx
