"""What the harness measures: four cases, each turned into the pieces every method needs."""

from __future__ import annotations

from dataclasses import dataclass

import sympy
import torch

from pinncheck._autograd import multi_indices
from pinncheck._compare import Tolerance, default_tolerance
from pinncheck._engine import Derived, Plan, Term, symbols_of
from pinncheck._exact import exact_partials


@dataclass(frozen=True)
class Case:
    """A check of an expression (``pde`` empty) or of a PDE residual of a solution ``expr``."""

    name: str
    expr: str
    domain: tuple[str, ...]
    pde: str = ""
    params: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.pde}, u = {self.expr}" if self.pde else self.expr


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        # The tutorial's example (SEED.md).
        Case("seed", "x1**2*sin(x2)", ("x1=0:1", "x2=0:1")),
        # Three variables, the Taylor-Green-like separable solution.
        Case("3var", "exp(-t)*sin(pi*x)*cos(pi*y)", ("x=0:1", "y=0:1", "t=0:1")),
        # A steep front: tanh of width 0.02, transcendental-heavy.
        Case("steep", "-tanh((x-0.5*t)/0.02)*exp(-x**2) + log(1+x**2+t**2)", ("x=-1:1", "t=0:1")),
        # A residual from samples/burgers_viscous.toml.
        Case(
            "burgers",
            "c - A*tanh(A*(x - c*t)/(2*nu))",
            ("x=-1:1", "t=0:1"),
            pde="u_t + u*u_x = nu*u_xx",
            params=("nu = 0.05", "A = 0.5", "c = 0.25"),
        ),
    )
}


@dataclass
class Prepared:
    """A case parsed and differentiated: the plan pinncheck runs and what the others need."""

    case: Case
    plan: Plan
    symbols: list[sympy.Symbol]
    function: sympy.Expr  # the one function differentiated (the solution u for a residual)
    tolerance: dict[Term | str, Tolerance]

    @property
    def outputs(self) -> list[sympy.Expr]:
        """The exact quantities: every term, then every derived quantity with terms substituted."""
        exact = [self.plan.exact_terms[t] for t in self.plan.terms]
        subs = {t.placeholder(): self.plan.exact_terms[t] for t in self.plan.terms}
        return exact + [d.expr.xreplace(subs) for d in self.plan.derived]


def prepare(case: Case, dtype: torch.dtype) -> Prepared:
    """Parse, differentiate and plan ``case`` as ``pinncheck check``/``residual`` would."""
    from pinncheck._check import prepare_check, tolerances_for
    from pinncheck._residual import exact_terms, prepare_residual

    name = "float64" if dtype == torch.float64 else "float32"
    if not case.pde:
        job = prepare_check(case.expr, list(case.domain), dtype=name)
        syms = symbols_of(job.domain)
        alphas = multi_indices(len(job.domain), 2)
        exact = exact_partials(job.parsed, syms, alphas)
        terms = [Term("f", a) for a in alphas]
        plan = Plan(job.domain, {"f": job.parsed}, terms, {t: exact[t.alpha] for t in terms})
        tols = tolerances_for(job.options, terms)
        return Prepared(case, plan, syms, job.parsed, dict(tols))
    res = prepare_residual(case.pde, [f"u={case.expr}"], list(case.domain), param=case.params)
    system = res.system
    derived = [
        Derived(name=f"eq{i + 1}", expr=r, parts=sympy.Add.make_args(r))
        for i, r in enumerate(system.residuals)
    ]
    plan = Plan(
        system.domain, dict(system.solutions), list(system.terms), exact_terms(system), derived
    )
    tol = default_tolerance(name)
    tols: dict[Term | str, Tolerance] = {t: tol for t in plan.terms}
    tols.update({d.name: tol for d in derived})
    return Prepared(case, plan, symbols_of(system.domain), system.solutions["u"], tols)
