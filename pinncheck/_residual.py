"""``pinncheck.residual``: PDE residuals of candidate solutions, autograd against SymPy."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
from ._pointwise import PointSink
from ._region import region_notes
from ._results import (
    DerivativeResult,
    QuantityResult,
    _num,
    conditioning_warnings,
    document,
    overall_status,
)
from ._sample import DEFAULT_SEED
from ._singular import singularity_warnings
from ._symbolic import DEFAULT_TIMEOUT, prove_zero, simplified_all

SOLVE_FACTOR = 1.0
"""A candidate solves its PDE numerically when, at every point, the float64 residual of the
exact terms is within this many times the reference's own error bound there (which already
carries a safety factor): what rounding alone can produce."""


@dataclass
class EquationResult(QuantityResult):
    """One PDE: autograd residual against the exact one, and whether the candidate solves it."""

    equation: str = ""
    exact_residual: sympy.Expr = sympy.S.Zero
    term_scale: float = 0.0
    symbolic: str = "not proved"
    check_solution: bool = True
    forcing: str | None = None
    forcing_simplified: bool = True

    @property
    def agreement(self) -> str:
        return self.stats.status()

    def conditioning_scale(self) -> float:
        # A residual that solves is ~0 by design, rounding and all: its formula is judged
        # against the size of its terms, not against its own (tiny) value.
        return self.term_scale or self.stats.max_abs_exact

    @property
    def solves(self) -> str:
        if self.symbolic == "proved":
            return "pass"
        if self.stats.nonfinite or self.stats.finite == 0:
            return "undefined"
        # The exact residual of a solution is the float64 reference's rounding: at most its
        # own error bound at every point.
        ratio = self.stats.extra.get("exact_over_reference", math.inf)
        return "pass" if ratio <= SOLVE_FACTOR else "fail"

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
        if self.agreement == "inconclusive":
            return "inconclusive"
        if self.check_solution and self.solves != "pass":
            return "not a solution"
        return "ok"

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
            **(
                {"forcing": self.forcing, "forcing_simplified": self.forcing_simplified}
                if self.forcing is not None
                else {}
            ),
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
    maps: Any = field(default=None, repr=False, compare=False)
    """The error maps the CLI gathered (an :class:`~pinncheck._maps.ErrorMapsResult`), or None."""
    symbolic_timeout: float = DEFAULT_TIMEOUT

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
        return document(
            {
                "kind": self.kind,
                "status": self.status,
                "pdes": list(sysm.equations),
                "solutions": dict(sysm.solution_texts),
                "params": {k: _num(float(v)) for k, v in sysm.params.items()},
                "variables": list(sysm.domain.names),
                "domain": sysm.domain.as_dict(),
                **run_header(self.options),
                "any_residual": self.any_residual,
                "tolerances": {**tolerance_header(self.options), "solve_factor": SOLVE_FACTOR},
                "derivatives": [d.to_dict() for d in self.derivatives],
                "equations": [e.to_dict() for e in self.equations],
                "warnings": list(self.warnings),
                "timings": dict(self.timings),
                "chunk_size": self.chunk_size,
            }
        )


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
    warnings = list(system.warnings)
    warnings += [
        f"The unknown {u} has a solution but no PDE uses it."
        for u in system.solutions
        if u not in used
    ]
    for fname, sol in system.solutions.items():
        warnings += [f"Solution {fname}: {w}" for w in singularity_warnings(sol, system.domain)]
    warnings += [
        f"The parameter {p} is not used by any PDE, solution or used parameter: check its name."
        for p in system.unused_params
    ]
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
    pde: str | Sequence[str] | None,
    solution: Assignments,
    domain: DomainLike,
    *,
    pde_from: str | None = None,
    pde_args: Sequence[str] | Mapping[str, Any] | None = None,
    space: Sequence[str] | str | None = None,
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
    sinks: Sequence[PointSink] = (),
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
            ``u_t``, ``u_xx`` (single-letter variables), ``diff(u, x, 2)``, ``diff(u**2/2, x)``
            or ``laplacian(u)`` (see docs/pde-language.md). None when ``pde_from`` is given.
        pde_from: instead of ``pde``, a target ``file.py:NAME`` in the user's code that holds
            the PDE as SymPy objects (an expression, a list or dict of them, or an object with an
            ``.equations`` dict); a class or function is called with ``pde_args``.
        pde_args: keyword arguments for a ``pde_from`` class: ``"KEY=VALUE"`` strings or a
            mapping.
        space: the variables ``laplacian()`` sums over (default: all but ``t`` and ``time``).
        solution: ``"u=EXPR"`` per unknown (a list, or a mapping ``{"u": "EXPR"}``).
        domain: the sampling box, as for :func:`pinncheck.check`.
        param: ``"NAME=VALUE"`` constants in order; a value may use earlier parameters.
        forcing: also compute the manufactured source term f = PDE(u), simplified within
            ``symbolic_timeout`` seconds shared by all equations (unsimplified past that).
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
        pde_from=pde_from,
        pde_args=pde_args,
        space=space,
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
    return job.run(progress, sinks)


@dataclass
class ResidualJob:
    """A validated ``residual``: everything parsed, nothing computed yet."""

    system: PDESystem
    options: RunOptions
    any_residual: bool
    symbolic_timeout: float
    forcing: bool

    def run(
        self, progress: Progress | None = None, sinks: Sequence[PointSink] = ()
    ) -> ResidualReport:
        """Run the check; ``sinks`` see every chunk's pointwise values (see
        :mod:`pinncheck._pointwise`)."""
        return run_system(
            self.system,
            self.options,
            any_residual=self.any_residual,
            symbolic_timeout=self.symbolic_timeout,
            forcing=self.forcing,
            progress=progress,
            sinks=sinks,
        )


def prepare_residual(
    pde: str | Sequence[str] | None,
    solution: Assignments,
    domain: DomainLike,
    *,
    pde_from: str | None = None,
    pde_args: Sequence[str] | Mapping[str, Any] | None = None,
    space: Sequence[str] | str | None = None,
    base_dir: str | Path | None = None,
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
    dom = parse_domain(domain, where, shadow=True)
    system = build_system(pde, solution, dom, param, pde_from, pde_args, space, base_dir)
    return ResidualJob(system, opts, any_residual, float(symbolic_timeout), forcing)


def build_system(
    pde: str | Sequence[str] | None,
    solution: Assignments,
    domain: Domain,
    param: Assignments,
    pde_from: str | None,
    pde_args: Sequence[str] | Mapping[str, Any] | None,
    space: Sequence[str] | str | None,
    base_dir: str | Path | None = None,
) -> PDESystem:
    """The PDE system from ``--pde`` text or from ``--pde-from`` objects (exactly one)."""
    if pde_from is None:
        if pde_args:
            raise OptionError("--pde-arg is only used with --pde-from.")
        if pde is None or (not isinstance(pde, str) and not list(pde)):
            raise OptionError("No PDE given: add --pde 'EXPR' (or 'LHS = RHS'), or --pde-from.")
        return parse_system(pde, solution, domain, param, space=space)
    if pde is not None and (isinstance(pde, str) or list(pde)):
        raise OptionError("Give the PDE with --pde or with --pde-from, not both.")
    from ._pde_from import load_equations, object_system, parse_pde_args

    objects = load_equations(pde_from, parse_pde_args(pde_args), base_dir)
    return object_system(objects, solution, domain, param, space=space)


def forcing_texts(
    residuals: Sequence[sympy.Expr], symbolics: Sequence[str], budget: float
) -> list[tuple[str, bool]]:
    """The manufactured source term f = PDE(u) of each residual, and whether it is simplified.

    All residuals share one ``budget`` (seconds) of simplification; a forcing that SymPy did not
    simplify in time is given unsimplified rather than waiting longer."""
    todo = [r for r, s in zip(residuals, symbolics, strict=True) if s != "proved"]
    results = iter(simplified_all(todo, budget))
    texts = []
    for s in symbolics:
        if s == "proved":
            texts.append(("0", True))
            continue
        value, finished = next(results)
        texts.append((sympy.sstr(value), finished))
    return texts


def run_system(
    system: PDESystem,
    opts: RunOptions,
    *,
    any_residual: bool,
    symbolic_timeout: float,
    forcing: bool,
    progress: Progress | None = None,
    sinks: Sequence[PointSink] = (),
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
    tol = default_tolerance(opts.dtype_name, rtol=opts.rtol, atol=opts.atol)
    tols: dict[Term | str, Tolerance] = {t: tol for t in system.terms}
    tols.update({d.name: tol for d in derived})
    outcome = run_plan(
        plan,
        n=opts.n,
        seed=opts.seed,
        dtype=opts.dtype,
        device=opts.device,
        tolerance=tols,
        chunk_size=opts.chunk_size,
        progress=progress,
        sinks=sinks,
        names=[system.term_label(t) for t in system.terms] + [d.name for d in derived],
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
    exact_rs = [substitute(d.expr, exact) for d in derived]
    symbolics = [
        prove_zero(r, symbolic_timeout) if not any_residual else "not checked" for r in exact_rs
    ]
    texts = forcing_texts(exact_rs, symbolics, symbolic_timeout) if forcing else None
    for i, (d, eq) in enumerate(zip(derived, system.equations, strict=True)):
        exact_r, symbolic = exact_rs[i], symbolics[i]
        text, simple = texts[i] if texts is not None else (None, True)
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
                forcing_simplified=simple,
            )
        )
    return ResidualReport(
        system,
        opts,
        derivatives,
        equations,
        any_residual,
        warnings=system_warnings(system)
        + conditioning_warnings([*derivatives, *equations], opts.dtype_name),
        timings=job_timings(outcome, started),
        chunk_size=outcome.chunk_size,
        symbolic_timeout=symbolic_timeout,
    )


__all__ = ["ErrorStats", "EquationResult", "ResidualReport", "residual", "run_system"]
