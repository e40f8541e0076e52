"""PDEs written as SymPy objects, in the style of PhysicsNeMo-Sym's PDE catalogue.

Each class keeps its equations in an ``equations`` dict of SymPy expressions (residual = 0),
with the unknowns as applied functions u(x, y, t). pinncheck reads them with ``--pde-from``.
Plain SymPy only; nothing here needs PhysicsNeMo.
"""

from sympy import Derivative, Function, Number, Symbol


class PDE:
    """The catalogue's base: a name and a dict of equations."""

    name = "PDE"

    def __init__(self) -> None:
        self.equations: dict = {}


def _coefficient(value, inputs):
    """A number stays a number; a name becomes a field of the inputs (an unknown)."""
    if isinstance(value, str):
        return Function(value)(*inputs)
    return Number(value)


class NavierStokesVariableViscosity(PDE):
    """Incompressible Navier-Stokes with a viscosity that varies in space (mixing-length style).

    Momentum in the divergence form  u_t + (u.grad)u + grad(p)/rho - div(nu*grad(u)) = 0.
    """

    name = "NavierStokesVariableViscosity"

    def __init__(self, nu="nu", rho=1, dim=2, time=True):
        super().__init__()
        x, y, z, t = Symbol("x"), Symbol("y"), Symbol("z"), Symbol("t")
        space = [x, y, z][:dim]
        inputs = [*space, t] if time else space
        velocity = [Function(n)(*inputs) for n in ("u", "v", "w")[:dim]]
        p = Function("p")(*inputs)
        nu = _coefficient(nu, inputs)
        rho = Number(rho)
        self.equations["continuity"] = sum(c.diff(s) for c, s in zip(velocity, space, strict=True))
        for c, s, label in zip(velocity, space, ("x", "y", "z"), strict=False):
            transport = sum(w * c.diff(q) for w, q in zip(velocity, space, strict=True))
            # The viscous term kept unevaluated, as d/dq (nu * dc/dq), for pinncheck's chain rule.
            viscous = sum(Derivative(nu * c.diff(q), q) for q in space)
            unsteady = c.diff(t) if time else 0
            self.equations[f"momentum_{label}"] = unsteady + transport + p.diff(s) / rho - viscous


class LinearElasticityPlaneStress(PDE):
    """Plane-stress linear elasticity in mixed form: displacements u, v and stresses."""

    name = "LinearElasticityPlaneStress"

    def __init__(self):
        super().__init__()
        x, y = Symbol("x"), Symbol("y")
        E, nu = Symbol("E"), Symbol("nu")  # Young's modulus and Poisson's ratio: parameters
        u, v = Function("u")(x, y), Function("v")(x, y)
        sigma_xx = Function("sigma_xx")(x, y)
        sigma_yy = Function("sigma_yy")(x, y)
        sigma_xy = Function("sigma_xy")(x, y)
        w = E / (1 - nu**2)
        self.equations["stress_disp_xx"] = sigma_xx - w * (u.diff(x) + nu * v.diff(y))
        self.equations["stress_disp_yy"] = sigma_yy - w * (v.diff(y) + nu * u.diff(x))
        self.equations["stress_disp_xy"] = sigma_xy - E / (2 * (1 + nu)) * (u.diff(y) + v.diff(x))
        self.equations["equilibrium_x"] = sigma_xx.diff(x) + sigma_xy.diff(y)
        self.equations["equilibrium_y"] = sigma_xy.diff(x) + sigma_yy.diff(y)


class DiffusionMixed(PDE):
    """Diffusion in mixed (first-order) form: T and its fluxes T_x, T_y are all unknowns."""

    name = "DiffusionMixed"

    def __init__(self, D=1):
        super().__init__()
        x, y, t = Symbol("x"), Symbol("y"), Symbol("t")
        T = Function("T")(x, y, t)
        T_x = Function("T_x")(x, y, t)
        T_y = Function("T_y")(x, y, t)
        D = Number(D)
        self.equations["diffusion"] = T.diff(t) - D * (T_x.diff(x) + T_y.diff(y))
        self.equations["compatibility_x"] = T_x - T.diff(x)
        self.equations["compatibility_y"] = T_y - T.diff(y)


# A single expression and a list, the other forms --pde-from accepts.
_x, _t = Symbol("x"), Symbol("t")
_u = Function("u")(_x, _t)
burgers = _u.diff(_t) + Derivative(_u**2 / 2, _x) - Symbol("nu") * _u.diff(_x, 2)
heat_and_wave = [_u.diff(_t) - _u.diff(_x, 2), _u.diff(_t, 2) - _u.diff(_x, 2)]
