"""``pinncheck.residual``: PDE residuals of candidate solutions, autograd against SymPy."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy
import torch

from ._compare import ErrorStats, Tolerance, default_tolerance
from ._domain import Domain, DomainLike, parse_domain
from ._engine import Derived, Plan, Progress, Term, job_timings, run_plan, symbols_of
from ._errors import OptionError
from ._exact import exact_partials
from ._options import RunOptions, run_options
from ._pde import Assignments, PDESystem, parse_system
from ._region import region_notes
from ._results import (
    DerivativeResult,
    QuantityResult,
    _num,
    environment,
    overall_status,
)
from ._sample import DEFAULT_SEED
from ._singular import singularity_warnings
from ._symbolic import DEFAULT_TIMEOUT, prove_zero, simplified

# The exact residual of a true solution is rounding noise relative to the size of the PDE's
# terms; it must stay below this fraction of max sum(|term|) over the points.
SOLVE_RTOL = 1e-9


@dataclass
class EquationResult(QuantityResult):
    """One PDE: autograd residual against the exact one, and whether the candidate solves it."""

    equation: str = ""
    exact_residual: sympy.Expr = sympy.S.Zero
    term_scale: float = 0.0
    symbolic: str = "not proved"
    check_solution: bool = True
    forcing: str | None = None

    @property
    def agreement(self) -> str:
        return self.stats.status(self.tolerance, scale=self.term_scale)

    @property
    def solves(self) -> str:
        if self.symbolic == "proved":
            return "pass"
        if self.stats.nonfinite or self.stats.finite == 0:
            return "undefined"
        bound = SOLVE_RTOL * self.term_scale
        return "pass" if self.stats.max_abs_exact <= bound else "fail"

    @property
    def status(self) -> str:
        if self.agreement != "pass":
            return self.agreement
        if self.check_solution and self.solves != "pass":
            return "fail"
        return "pass"

    @property
    def status_detail(self) -> str:
        if self.agreement == "undefined":
            return "undefined (NaN or inf)"
        if self.agreement == "fail":
            return "autograd disagrees with exact"
        if self.check_solution and self.solves != "pass":
            return "not a solution"
        return "ok"

    @property
    def effective_atol(self) -> float:
        return self.tolerance.effective_atol(self.term_scale)

    def to_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "equation": self.equation,
            "name": self.name,
            "exact_residual": str(self.exact_residual),
            "max_abs_residual_autograd": _num(s.max_abs_autograd if s.finite else float("nan")),
            "max_abs_residual_exact": _num(s.max_abs_exact if s.finite else float("nan")),
            "term_scale": _num(self.term_scale),
            "symbolic_zero": self.symbolic == "proved",
            "symbolic": self.symbolic,
            "agreement": self.agreement,
            "solves": self.solves if self.check_solution else "not checked",
            **self.stats_dict(),
            "status": self.status,
            "status_detail": self.status_detail,
            **({"forcing": self.forcing} if self.forcing is not None else {}),
        }


@dataclass
class ResidualReport:
    """The outcome of :func:`residual`."""

    system: PDESystem
    options: RunOptions
    derivatives: list[DerivativeResult]
    equations: list[EquationResult]
    any_residual: bool
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    chunk_size: int = 0
    kind: str = "residual"

    @property
    def status(self) -> str:
        return overall_status(
            [d.status for d in self.derivatives] + [e.status for e in self.equations]
        )

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def domain(self) -> Domain:
        return self.system.domain

    def to_dict(self) -> dict[str, Any]:
        from ._check import run_header, tolerance_header

        sysm = self.system
        return {
            **environment(),
            "kind": self.kind,
            "status": self.status,
            "pdes": list(sysm.equations),
            "solutions": dict(sysm.solution_texts),
            "params": {k: _num(float(v)) for k, v in sysm.params.items()},
            "variables": list(sysm.domain.names),
            "domain": sysm.domain.as_dict(),
            **run_header(self.options),
            "any_residual": self.any_residual,
            "tolerances": {**tolerance_header(self.options), "solve_rtol": SOLVE_RTOL},
            "derivatives": [d.to_dict() for d in self.derivatives],
            "equations": [e.to_dict() for e in self.equations],
            "warnings": list(self.warnings),
            "timings": dict(self.timings),
            "chunk_size": self.chunk_size,
        }


def exact_terms(system: PDESystem) -> dict[Term, sympy.Expr]:
    """SymPy's exact value of every derivative term the PDEs use."""
    syms = symbols_of(system.domain)
    out: dict[Term, sympy.Expr] = {}
    for fname, sol in system.solutions.items():
        alphas = [t.alpha for t in system.terms if t.function == fname]
        for alpha, expr in exact_partials(sol, syms, alphas).items():
            out[Term(fname, alpha)] = expr
    return out


def substitute(expr: sympy.Expr, values: dict[Term, sympy.Expr]) -> sympy.Expr:
    return expr.xreplace({t.placeholder(): v for t, v in values.items()})


def system_warnings(system: PDESystem) -> list[str]:
    used = {t.function for t in system.terms}
    warnings = [
        f"The unknown {u} has a solution but no PDE uses it."
        for u in system.solutions
        if u not in used
    ]
    for fname, sol in system.solutions.items():
        warnings += [f"Solution {fname}: {w}" for w in singularity_warnings(sol, system.domain)]
    warnings += region_notes(system.domain)
    names = {s.name for sol in system.solutions.values() for s in sol.free_symbols}
    for v in system.domain.names:
        if v not in names:
            warnings.append(
                f"The domain variable {v} does not appear in any solution: its "
                "derivatives are exactly zero."
            )
    return warnings


def residual(
    pde: str | Sequence[str],
    solution: Assignments,
    domain: DomainLike,
    *,
    param: Assignments = None,
    n: int = 1000,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float64",
    seed: int = DEFAULT_SEED,
    rtol: float | None = None,
    atol: float | None = None,
    any_residual: bool = False,
    symbolic_timeout: float = DEFAULT_TIMEOUT,
    forcing: bool = False,
    chunk_size: int | None = None,
    where: str | Sequence[str] | None = None,
    progress: Progress | None = None,
) -> ResidualReport:
    """Check PDE residuals of a candidate solution: autograd against SymPy, and whether it solves.

    The solution is built as torch operations on the sampled inputs; the derivative terms the
    PDEs use come from the ones-vector method, exactly as a PINN computes them. The same
    residual is evaluated exactly with SymPy. The report says whether the two agree pointwise
    (each term and each residual) and, unless ``any_residual``, whether the candidate solves the
    PDEs: SymPy proves the residual zero within ``symbolic_timeout`` seconds, or it is
    numerically zero relative to the size of the PDE's terms at every point.

    Args:
        pde: one PDE or a list; ``"lhs = rhs"`` means ``lhs - rhs``. Derivatives are written
            ``u_t``, ``u_xx`` (single-letter variables) or ``diff(u, x, 2)``.
        solution: ``"u=EXPR"`` per unknown (a list, or a mapping ``{"u": "EXPR"}``).
        domain: the sampling box, as for :func:`pinncheck.check`.
        param: ``"NAME=VALUE"`` constants in order; a value may use earlier parameters.
        forcing: also compute the manufactured source term f = PDE(u), simplified within the
            time budget.
        where: inequalities that cut the box down to a region, as for :func:`pinncheck.check`.
        Other arguments: as for :func:`pinncheck.check`.

    Returns:
        A :class:`ResidualReport`.

    Example:
        >>> r = residual("u_t - nu*u_xx", ["u=exp(-nu*pi**2*t)*sin(pi*x)"],
        ...              ["x=0:1", "t=0:1"], param=["nu=0.1"], n=200)
        >>> r.status, r.equations[0].symbolic
        ('pass', 'proved')
    """
    job = prepare_residual(
        pde,
        solution,
        domain,
        param=param,
        n=n,
        device=device,
        dtype=dtype,
        seed=seed,
        rtol=rtol,
        atol=atol,
        any_residual=any_residual,
        symbolic_timeout=symbolic_timeout,
        forcing=forcing,
        chunk_size=chunk_size,
        where=where,
    )
    return job.run(progress)


@dataclass
class ResidualJob:
    """A validated ``residual``: everything parsed, nothing computed yet."""

    system: PDESystem
    options: RunOptions
    any_residual: bool
    symbolic_timeout: float
    forcing: bool

    def run(self, progress: Progress | None = None) -> ResidualReport:
        return run_system(
            self.system,
            self.options,
            any_residual=self.any_residual,
            symbolic_timeout=self.symbolic_timeout,
            forcing=self.forcing,
            progress=progress,
        )


def prepare_residual(
    pde: str | Sequence[str],
    solution: Assignments,
    domain: DomainLike,
    *,
    param: Assignments = None,
    n: int = 1000,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float64",
    seed: int = DEFAULT_SEED,
    rtol: float | None = None,
    atol: float | None = None,
    any_residual: bool = False,
    symbolic_timeout: float = DEFAULT_TIMEOUT,
    forcing: bool = False,
    chunk_size: int | None = None,
    where: str | Sequence[str] | None = None,
) -> ResidualJob:
    """Validate and parse the arguments of :func:`residual`; raises on bad input."""
    if not (isinstance(symbolic_timeout, (int, float)) and symbolic_timeout >= 0):
        raise OptionError(
            f"The symbolic timeout must be a number of seconds >= 0, got {symbolic_timeout!r}."
        )
    opts = run_options(
        n=n, seed=seed, device=device, dtype=dtype, rtol=rtol, atol=atol, chunk_size=chunk_size
    )
    dom = parse_domain(domain, where)
    system = parse_system(pde, solution, dom, param)
    return ResidualJob(system, opts, any_residual, float(symbolic_timeout), forcing)


def equation_tolerance(system: PDESystem, residual: sympy.Expr, opts: RunOptions) -> Tolerance:
    """The tolerance of one residual: the table's row for its highest derivative order."""
    order = max(
        (len(t.alpha) for t in system.terms if t.placeholder() in residual.free_symbols),
        default=1,
    )
    return default_tolerance(opts.dtype_name, order, rtol=opts.rtol, atol=opts.atol)


def run_system(
    system: PDESystem,
    opts: RunOptions,
    *,
    any_residual: bool,
    symbolic_timeout: float,
    forcing: bool,
    progress: Progress | None = None,
) -> ResidualReport:
    """Run a parsed system (the second half of :func:`residual`)."""
    started = time.perf_counter()
    dom = system.domain
    exact = exact_terms(system)
    derived = [
        Derived(name=f"eq{i + 1}", expr=r, parts=sympy.Add.make_args(r))
        for i, r in enumerate(system.residuals)
    ]
    plan = Plan(dom, dict(system.solutions), list(system.terms), exact, derived)
    tols: dict[Term | str, Tolerance] = {
        t: default_tolerance(opts.dtype_name, len(t.alpha), rtol=opts.rtol, atol=opts.atol)
        for t in system.terms
    }
    for d, r in zip(derived, system.residuals, strict=True):
        tols[d.name] = equation_tolerance(system, r, opts)
    outcome = run_plan(
        plan,
        n=opts.n,
        seed=opts.seed,
        dtype=opts.dtype,
        device=opts.device,
        rtol={k: v.rtol for k, v in tols.items()},
        chunk_size=opts.chunk_size,
        progress=progress,
    )
    derivatives = [
        DerivativeResult(
            name=system.term_label(t),
            stats=outcome.terms[t],
            tolerance=tols[t],
            variables=dom.names,
            function=t.function,
            wrt=tuple(dom.names[i] for i in t.alpha),
            exact=str(exact[t]),
        )
        for t in system.terms
    ]
    equations = []
    for d, eq in zip(derived, system.equations, strict=True):
        exact_r = substitute(d.expr, exact)
        symbolic = prove_zero(exact_r, symbolic_timeout) if not any_residual else "not checked"
        text = None
        if forcing:
            text = sympy.sstr(simplified(exact_r, symbolic_timeout))
        equations.append(
            EquationResult(
                name=d.name,
                stats=outcome.derived[d.name],
                tolerance=tols[d.name],
                variables=dom.names,
                equation=eq,
                exact_residual=exact_r,
                term_scale=outcome.derived_scale[d.name],
                symbolic=symbolic,
                check_solution=not any_residual,
                forcing=text,
            )
        )
    return ResidualReport(
        system,
        opts,
        derivatives,
        equations,
        any_residual,
        warnings=system_warnings(system),
        timings=job_timings(outcome, started),
        chunk_size=outcome.chunk_size,
    )


__all__ = ["ErrorStats", "EquationResult", "ResidualReport", "residual", "run_system"]
