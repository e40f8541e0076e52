"""``pinncheck.check``: autograd partial derivatives of one expression against SymPy."""

from __future__ import annotations

import difflib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy
import torch

from ._autograd import multi_indices
from ._compare import Tolerance, default_tolerance
from ._domain import Domain, DomainLike, parse_domain
from ._engine import Plan, Progress, Term, job_timings, run_plan, symbols_of
from ._errors import DomainError
from ._exact import exact_partials
from ._options import RunOptions, check_order, run_options
from ._parse import parse_expression, shadow_warning
from ._pointwise import PointSink
from ._region import region_notes
from ._results import (
    DerivativeResult,
    conditioning_warnings,
    derivative_name,
    document,
    overall_status,
)
from ._sample import DEFAULT_SEED
from ._singular import singularity_warnings


@dataclass
class CheckReport:
    """The outcome of :func:`check`. ``status`` is ``"pass"`` or ``"fail"``."""

    expression: str
    parsed: sympy.Expr
    domain: Domain
    options: RunOptions
    order: int
    derivatives: list[DerivativeResult]
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    chunk_size: int = 0
    kind: str = "check"
    maps: Any = field(default=None, repr=False, compare=False)
    """The error maps the CLI gathered (an :class:`~pinncheck._maps.ErrorMapsResult`), or None."""

    @property
    def status(self) -> str:
        return overall_status([d.status for d in self.derivatives])

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``pinncheck check --format json`` (schema: docs/json.md)."""
        return document(
            {
                "kind": self.kind,
                "status": self.status,
                "expression": self.expression,
                "parsed": str(self.parsed),
                "variables": list(self.domain.names),
                "domain": self.domain.as_dict(),
                **run_header(self.options),
                "order": self.order,
                "tolerances": tolerance_header(self.options),
                "derivatives": [d.to_dict() for d in self.derivatives],
                "warnings": list(self.warnings),
                "timings": dict(self.timings),
                "chunk_size": self.chunk_size,
            }
        )


def run_header(opts: RunOptions) -> dict[str, Any]:
    return {
        "n": opts.n,
        "seed": opts.seed,
        "device": str(opts.device),
        "dtype": opts.dtype_name,
    }


def tolerance_header(opts: RunOptions) -> dict[str, Any]:
    from ._compare import SAFETY_FACTOR, default_tolerance

    tol = default_tolerance(opts.dtype_name, rtol=opts.rtol, atol=opts.atol)
    return {
        "rtol": opts.rtol,
        "atol": opts.atol,
        "model": "override" if tol.override else "rounding",
        "rule": "|autograd - truth| <= tolerance at every point; tolerance = "
        + (
            "atol + rtol*|exact|"
            if tol.override
            else "safety_factor * running error bound of the exact formula in the run's dtype"
        ),
        "safety_factor": SAFETY_FACTOR.get(opts.dtype_name),
        "unit_roundoff": tol.unit_roundoff,
    }


def _implicit_hint(name: str, known: Sequence[str]) -> str:
    # "x1x2" with x1 and x2 known: the user most likely meant x1*x2.
    for i in range(1, len(name)):
        if name[:i] in known and name[i:] in known:
            return (
                f" Did you mean {name[:i]}*{name[i:]}? pinncheck never guesses implicit "
                "multiplication."
            )
    close = difflib.get_close_matches(name, known, n=1)
    return f" Did you mean {close[0]}?" if close else ""


def bind_variables(expr: sympy.Expr, domain: Domain, *, what: str = "expression") -> list[str]:
    """Check that every free variable of ``expr`` has a domain; return warnings for unused ones."""
    used = {s.name for s in expr.free_symbols}
    missing = sorted(used - set(domain.names))
    if missing:
        name = missing[0]
        raise DomainError(
            f"The {what} uses {', '.join(missing)}, which {'has' if len(missing) == 1 else 'have'} "
            f"no domain: add -d {name}=LO:HI (domain given: {domain})."
            + _implicit_hint(name, domain.names)
        )
    return [
        f"The domain variable {v} does not appear in the {what}: its derivatives are exactly zero."
        for v in domain.names
        if v not in used
    ]


def tolerances_for(opts: RunOptions, terms: Sequence[Term]) -> dict[Term | str, Tolerance]:
    tol = default_tolerance(opts.dtype_name, rtol=opts.rtol, atol=opts.atol)
    return {t: tol for t in terms}


@dataclass
class CheckJob:
    """A validated ``check``: parsed, nothing computed yet (see :func:`prepare_check`)."""

    expression: str
    parsed: sympy.Expr
    domain: Domain
    options: RunOptions
    order: int

    def run(self, progress: Progress | None = None, sinks: Sequence[PointSink] = ()) -> CheckReport:
        """Run the check; ``sinks`` see every chunk's pointwise values (see
        :mod:`pinncheck._pointwise`)."""
        started = time.perf_counter()
        dom, opts = self.domain, self.options
        warnings = [w for w in (shadow_warning(v, "variable") for v in dom.names) if w]
        warnings += bind_variables(self.parsed, dom)
        warnings += singularity_warnings(self.parsed, dom) + region_notes(dom)
        syms = symbols_of(dom)
        alphas = multi_indices(len(dom), self.order)
        exact = exact_partials(self.parsed, syms, alphas)
        terms = [Term("f", a) for a in alphas]
        plan = Plan(dom, {"f": self.parsed}, terms, {t: exact[t.alpha] for t in terms})
        tols = tolerances_for(opts, terms)
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
            names=[derivative_name([dom.names[i] for i in t.alpha]) for t in terms],
        )
        results = []
        for t in terms:
            wrt = tuple(dom.names[i] for i in t.alpha)
            results.append(
                DerivativeResult(
                    name=derivative_name(wrt),
                    stats=outcome.terms[t],
                    tolerance=tols[t],
                    variables=dom.names,
                    function="f",
                    wrt=wrt,
                    exact=str(exact[t.alpha]),
                )
            )
        warnings += conditioning_warnings(results, opts.dtype_name)
        return CheckReport(
            expression=self.expression,
            parsed=self.parsed,
            domain=dom,
            options=opts,
            order=self.order,
            derivatives=results,
            warnings=warnings,
            timings=job_timings(outcome, started),
            chunk_size=outcome.chunk_size,
        )


def prepare_check(
    expr: str,
    domain: DomainLike,
    *,
    n: int = 1000,
    order: int = 2,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float64",
    seed: int = DEFAULT_SEED,
    rtol: float | None = None,
    atol: float | None = None,
    chunk_size: int | None = None,
    where: str | Sequence[str] | None = None,
) -> CheckJob:
    """Validate the arguments of :func:`check` and parse them; raises on bad input."""
    order = check_order(order)
    opts = run_options(
        n=n, seed=seed, device=device, dtype=dtype, rtol=rtol, atol=atol, chunk_size=chunk_size
    )
    dom = parse_domain(domain, where, shadow=True)  # a variable may be called E (warned)
    parsed = parse_expression(expr, shadowed=dom.names)
    bind_variables(parsed, dom)
    return CheckJob(expr, parsed, dom, opts, order)


def check(
    expr: str,
    domain: DomainLike,
    *,
    n: int = 1000,
    order: int = 2,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float64",
    seed: int = DEFAULT_SEED,
    rtol: float | None = None,
    atol: float | None = None,
    chunk_size: int | None = None,
    where: str | Sequence[str] | None = None,
    progress: Progress | None = None,
) -> CheckReport:
    """Check autograd's pointwise partial derivatives of ``expr`` against SymPy's exact ones.

    Args:
        expr: the expression in SymPy syntax (``x1**2*sin(x2)``); parsed by pinncheck's
            allowlist parser, never evaluated.
        domain: the sampling box, e.g. ``["x1=0:1", "x2=0:1"]`` or ``{"x1": (0, 1), ...}``.
        n: number of uniformly sampled points.
        order: all partials of orders 1..order, mixed ones included.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        dtype: ``"float64"`` or ``"float32"`` for the autograd side; exact values are float64.
        seed: the sampling seed; the same seed gives the same points on every device.
        rtol, atol: override the default tolerances (see docs/tolerances.md).
        chunk_size: points per chunk (memory bound); the result does not depend on it.
        where: inequalities in the variables (``"x**2 + y**2 <= 1"``) that cut the box down
            to a region, sampled by rejection (see docs/user-code.md).
        progress: called as ``progress(done, n)`` after each chunk.

    Returns:
        A :class:`CheckReport`; ``report.status`` is ``"pass"`` or ``"fail"``.

    Raises:
        ExpressionError, DomainError, OptionError, DeviceError: bad input.

    Example:
        >>> report = check("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"], n=100)
        >>> report.status, [d.name for d in report.derivatives][:2]
        ('pass', ['d/dx1', 'd/dx2'])
    """
    job = prepare_check(
        expr,
        domain,
        n=n,
        order=order,
        device=device,
        dtype=dtype,
        seed=seed,
        rtol=rtol,
        atol=atol,
        chunk_size=chunk_size,
        where=where,
    )
    return job.run(progress)
