"""The shared pipeline: sample a chunk, differentiate with autograd, evaluate exactly, compare.

``check``, ``residual`` and ``verify`` all describe their work as a :class:`Plan` and hand it to
:func:`run_plan`, which streams the points through in chunks so that memory stays bounded and
the statistics equal those of one pass over all points.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sympy
import torch

from ._autograd import MultiIndex, partials
from ._compare import ErrorStats
from ._domain import Domain
from ._evaluate import Evaluator
from ._sample import sample_box

DEFAULT_CHUNK = 1 << 17
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Term:
    """Partial derivative ``alpha`` (sorted variable indices, ``()`` = value) of a function."""

    function: str
    alpha: MultiIndex

    def placeholder(self) -> sympy.Symbol:
        # A symbol standing for this term's values inside derived expressions (residuals).
        return sympy.Symbol(f"_{self.function}_" + "_".join(map(str, self.alpha)), real=True)


@dataclass
class Derived:
    """A quantity computed from terms, e.g. a PDE residual, compared like a term.

    ``expr`` uses :meth:`Term.placeholder` symbols and the domain's variables. ``parts`` are the
    additive pieces of ``expr``; the largest value of sum(|part|) over the points (exact side) is
    recorded as the quantity's scale.
    """

    name: str
    expr: sympy.Expr
    parts: Sequence[sympy.Expr] = ()


@dataclass
class Plan:
    """What to compute: functions of the domain's variables, their terms, derived quantities."""

    domain: Domain
    functions: dict[str, sympy.Expr]
    terms: list[Term]
    exact_terms: dict[Term, sympy.Expr]
    derived: list[Derived] = field(default_factory=list)


@dataclass
class Outcome:
    """Statistics for each term and derived quantity, and where the time went."""

    terms: dict[Term, ErrorStats]
    derived: dict[str, ErrorStats]
    derived_scale: dict[str, float]
    timings: dict[str, float]
    chunk_size: int


def symbols_of(domain: Domain) -> list[sympy.Symbol]:
    from ._parse import real_symbol

    return [real_symbol(name) for name in domain.names]


def run_plan(
    plan: Plan,
    *,
    n: int,
    seed: int,
    dtype: torch.dtype,
    device: torch.device,
    rtol: dict[Term | str, float],
    chunk_size: int | None = None,
    progress: Progress | None = None,
) -> Outcome:
    """Stream ``n`` seeded points through ``plan`` and collect error statistics."""
    syms = symbols_of(plan.domain)
    chunk = max(1, min(n, chunk_size or DEFAULT_CHUNK))
    term_stats = {t: ErrorStats(rtol=rtol[t]) for t in plan.terms}
    derived_stats = {d.name: ErrorStats(rtol=rtol[d.name]) for d in plan.derived}
    derived_scale = {d.name: 0.0 for d in plan.derived}
    by_function: dict[str, list[Term]] = {}
    for t in plan.terms:
        by_function.setdefault(t.function, []).append(t)
    exact_list = [plan.exact_terms[t] for t in plan.terms]
    timings = {"sample_s": 0.0, "autograd_s": 0.0, "exact_s": 0.0, "compare_s": 0.0}
    start_all = time.perf_counter()
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        t0 = time.perf_counter()
        xs = sample_box(plan.domain, seed, start, stop, dtype=dtype, device=device)
        leaves = [x.requires_grad_(True) for x in xs]
        t1 = time.perf_counter()
        # Autograd side, in the run's dtype, exactly as a PINN computes it.
        ev = Evaluator(dict(zip(syms, leaves, strict=True)))
        ag: dict[Term, torch.Tensor] = {}
        for fname, terms in by_function.items():
            y = ev.tensor(plan.functions[fname])
            ds = partials(y, leaves, [t.alpha for t in terms if t.alpha])
            # Where the function itself is undefined (log of a negative number...), so are its
            # derivatives, even when autograd's formula for them is finite there.
            undefined = ~torch.isfinite(y.detach())
            has_undefined = bool(undefined.any())
            for t in terms:
                value = y.detach() if not t.alpha else ds[t.alpha]
                if has_undefined:
                    value = torch.where(undefined, torch.full_like(value, float("nan")), value)
                ag[t] = value
        del ev
        pts = [x.detach() for x in leaves]
        ag_derived = _derived_values(plan, syms, pts, ag)
        _sync(device)
        t2 = time.perf_counter()
        # Exact side, always in float64, at the same (possibly float32-rounded) points.
        pts64 = [p.to(torch.float64) for p in pts]
        ex_ev = Evaluator(dict(zip(syms, pts64, strict=True)))
        ex_vals = ex_ev.tensors(exact_list)
        ex = dict(zip(plan.terms, ex_vals, strict=True))
        ex_derived = _derived_values(plan, syms, pts64, ex)
        for d in plan.derived:
            if d.parts:
                total = _derived_parts_abs(d, syms, pts64, ex)
                derived_scale[d.name] = max(derived_scale[d.name], float(total.max()))
        _sync(device)
        t3 = time.perf_counter()
        for t in plan.terms:
            term_stats[t].update(ag[t], ex[t], pts64, start)
        for d in plan.derived:
            derived_stats[d.name].update(ag_derived[d.name], ex_derived[d.name], pts64, start)
        t4 = time.perf_counter()
        timings["sample_s"] += t1 - t0
        timings["autograd_s"] += t2 - t1
        timings["exact_s"] += t3 - t2
        timings["compare_s"] += t4 - t3
        if progress is not None:
            progress(stop, n)
    timings["total_s"] = time.perf_counter() - start_all
    return Outcome(term_stats, derived_stats, derived_scale, timings, chunk)


def _inputs(
    plan: Plan, syms: list[sympy.Symbol], pts: list[torch.Tensor], terms: dict[Term, torch.Tensor]
) -> dict[sympy.Symbol, torch.Tensor]:
    inputs = dict(zip(syms, pts, strict=True))
    inputs.update({t.placeholder(): v for t, v in terms.items()})
    return inputs


def _derived_values(
    plan: Plan, syms: list[sympy.Symbol], pts: list[torch.Tensor], terms: dict[Term, torch.Tensor]
) -> dict[str, torch.Tensor]:
    if not plan.derived:
        return {}
    ev = Evaluator(_inputs(plan, syms, pts, terms))
    return {d.name: ev.tensor(d.expr, like=pts[0]) for d in plan.derived}


def _derived_parts_abs(
    d: Derived, syms: list[sympy.Symbol], pts: list[torch.Tensor], terms: dict[Term, torch.Tensor]
) -> torch.Tensor:
    inputs = dict(zip(syms, pts, strict=True))
    inputs.update({t.placeholder(): v for t, v in terms.items()})
    ev = Evaluator(inputs)
    total = torch.zeros_like(pts[0])
    for part in d.parts:
        total = total + ev.tensor(part, like=pts[0]).abs()
    return total


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
