"""``pinncheck.verify``: check the user's own PINN residual code with a manufactured solution.

The user's function is called DeepXDE-style, ``f(x, u)``: ``x`` is an ``(n, d)`` tensor with
``requires_grad=True`` (columns in the domain's order) and ``u`` an ``(n, m)`` tensor computed
from ``x`` as torch operations (the manufactured solution, one column per unknown), so that
``u`` sits on the autograd graph exactly as a network's output would. The result is compared
pointwise with the exact residual of the PDEs (SymPy). The manufactured solution need not solve
the PDE: any smooth ``u`` works, and a generic one catches more bugs.

Other calling conventions (split inputs ``f(x, t, u)``, ``f(model, x)``) are in
:mod:`pinncheck._callconv`. When the values agree, the residual's gradient with respect to the
solution is checked too (:mod:`pinncheck._gradflow`): a term cut off the graph fails.

When they disagree, the user's residual is fitted against the exact values of candidate terms
(:mod:`pinncheck._explain`) to say what the code computed instead, and the user's
``torch.autograd.grad`` calls are inspected for the usual causes.

The result must be floating point. A result in a lower precision than the run's (float32 values
in a float64 run: the code casts somewhere, e.g. a float32 model or constant) is compared with
that precision's tolerances, with a warning, so that a correct residual computed in float32 is
not reported as wrong.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy
import torch

from ._autograd import multi_indices
from ._bounds import UNIT_ROUNDOFF, run_bounded
from ._callconv import build_call, check_convention_name, choose_convention
from ._compare import ErrorStats, Tolerance, default_tolerance
from ._domain import DomainLike, parse_domain
from ._engine import DEFAULT_CHUNK, Progress, Term, symbols_of
from ._errors import UserCodeError
from ._evaluate import Program
from ._exact import exact_partials
from ._explain import (
    max_order,
)
from ._judge import REFERENCE_SAFETY
from ._options import RunOptions, run_options
from ._pde import Assignments, PDESystem
from ._pointwise import ChunkView, Layout, PointSink, Resampler, feed, start_all
from ._residual import (
    EquationResult,
    build_system,
    substitute,
    system_warnings,
)
from ._results import _num, document, overall_status
from ._sample import DEFAULT_SEED, sample_box
from ._usercode import (
    GradCall,
    Target,
    call_user,
    parse_target,
    resolve,
    take_notes,
    target_scope,
    trace_grad,
)
from ._usermemory import ChunkMemory, clear_framework_caches
from ._verify_columns import coarser, equation_columns, none_evidence, torch_dtype_name
from ._verify_diagnosis import Diagnosis, ResidualFunction


@dataclass
class VerifyEquation(EquationResult):
    """One PDE: the user's residual against the exact one, and what went wrong."""

    failing_points: int = 0
    worst_points: list[dict[str, Any]] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    fit: dict[str, Any] | None = None
    result_dtype: str = ""
    # "pass" or "fail" once the residual's gradient with respect to the solution was checked.
    gradient: str = "not checked"

    @property
    def status(self) -> str:
        values = super().status
        return "fail" if values == "pass" and self.gradient == "fail" else values

    @property
    def status_detail(self) -> str:
        if super().status == "pass" and self.gradient == "fail":
            return "values agree, gradient wrong"
        return super().status_detail

    def to_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "equation": self.equation,
            "name": self.name,
            "result_dtype": self.result_dtype,
            "exact_residual": str(self.exact_residual),
            "max_abs_residual_user": _num(s.max_abs_autograd if s.finite else math.nan),
            "max_abs_residual_exact": _num(s.max_abs_exact if s.finite else math.nan),
            "term_scale": _num(self.term_scale),
            **self.stats_dict(),
            "failing_points": self.failing_points,
            "worst_points": self.worst_points,
            "diagnosis": list(self.diagnosis),
            "fit": self.fit,
            "gradient": self.gradient,
            "status": self.status,
        }


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`. ``status`` is ``"pass"`` or ``"fail"``.

    ``diagnosis`` says, for each equation that disagrees, where and (when pinncheck can tell)
    what the code computed instead and why; ``warnings`` flag weak manufactured solutions.
    """

    target: str
    system: PDESystem
    options: RunOptions
    equations: list[VerifyEquation]
    diagnosis: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    grad_calls: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    kind: str = "verify"
    maps: Any = field(default=None, repr=False, compare=False)
    """The error maps the CLI gathered (an :class:`~pinncheck._maps.ErrorMapsResult`), or None."""

    @property
    def status(self) -> str:
        return overall_status([e.status for e in self.equations])

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``pinncheck verify --format json`` (schema: docs/json.md)."""
        from ._check import run_header, tolerance_header

        sysm = self.system
        return document(
            {
                "kind": self.kind,
                "status": self.status,
                "target": self.target,
                "pdes": list(sysm.equations),
                "solutions": dict(sysm.solution_texts),
                "params": {k: _num(float(v)) for k, v in sysm.params.items()},
                "variables": list(sysm.domain.names),
                "domain": sysm.domain.as_dict(),
                **run_header(self.options),
                "tolerances": tolerance_header(self.options),
                "equations": [e.to_dict() for e in self.equations],
                "diagnosis": list(self.diagnosis),
                "warnings": list(self.warnings),
                "grad_calls": self.grad_calls,
                "timings": dict(self.timings),
            }
        )


@dataclass
class VerifyJob:
    """A validated ``verify``: everything parsed, the user's code not yet imported."""

    target: Target | ResidualFunction
    system: PDESystem
    options: RunOptions
    convention: str | None = None
    definitions_only: bool = False

    def run(
        self, progress: Progress | None = None, sinks: Sequence[PointSink] = ()
    ) -> VerifyReport:
        """Run the check; ``sinks`` see every chunk's pointwise values (see
        :mod:`pinncheck._pointwise`)."""
        return _Run(self, sinks).run(progress)


def prepare_verify(
    target: str | ResidualFunction,
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
    chunk_size: int | None = None,
    base_dir: str | Path | None = None,
    convention: str | None = None,
    definitions_only: bool = False,
    where: str | Sequence[str] | None = None,
) -> VerifyJob:
    """Validate and parse the arguments of :func:`verify` without running the user's code."""
    opts = run_options(
        n=n, seed=seed, device=device, dtype=dtype, rtol=rtol, atol=atol, chunk_size=chunk_size
    )
    system = build_system(
        pde,
        solution,
        parse_domain(domain, where, shadow=True),
        param,
        pde_from,
        pde_args,
        space,
        base_dir,
    )
    tgt = parse_target(target, base_dir) if isinstance(target, str) else target
    return VerifyJob(tgt, system, opts, check_convention_name(convention), bool(definitions_only))


def verify(
    target: str | ResidualFunction,
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
    chunk_size: int | None = None,
    base_dir: str | Path | None = None,
    convention: str | None = None,
    definitions_only: bool = False,
    where: str | Sequence[str] | None = None,
    progress: Progress | None = None,
    sinks: Sequence[PointSink] = (),
) -> VerifyReport:
    """Check a user's PINN residual function against the exact residual of ``pde``.

    The function is called as ``f(x, u)`` (DeepXDE's convention): ``x`` is an ``(n, d)``
    tensor with ``requires_grad=True``, columns in the order of ``domain``; ``u`` is ``(n, m)``,
    the manufactured ``solution`` computed from ``x`` with torch operations, columns in the
    order of ``solution``. It must return an ``(n,)`` or ``(n, 1)`` tensor, an ``(n, k)``
    tensor, or a list/tuple of ``k`` such tensors for ``k`` PDEs. Importing a target module and
    calling the function runs the user's code, as pytest does with a test file.

    Args:
        target: the function, or ``"path/to/file.py:function"`` / ``"package.module:function"``.
        pde, solution, domain, param: as for :func:`pinncheck.residual`. The solution need not
            solve the PDE; a generic one (every derivative term non-zero) catches more bugs.
        pde_from, pde_args, space: as for :func:`pinncheck.residual` (the PDE as SymPy
            objects from the user's code, and the Laplacian's variables).
        n, device, dtype, seed, rtol, atol, chunk_size: as for :func:`pinncheck.residual`; the
            function is called once per chunk of points.
        base_dir: the folder a relative target path is resolved against (default: the current
            folder).
        convention: how to call the function: ``"x_u"`` (``f(x, u)``), ``"split"``
            (``f(x, t, u)``, one ``(n, 1)`` tensor per variable) or ``"model"``
            (``f(model, x)``); by default it is read from the function's signature (see
            :mod:`pinncheck._callconv` and docs/user-code.md).
        definitions_only: load only the file's imports, definitions and simple constants,
            not the rest of its top level (a training script; see docs/user-code.md).
        where: inequalities that cut the box down to a region, as for :func:`pinncheck.check`.
        progress: called as ``progress(done, n)`` after each chunk.
        sinks: as for :func:`pinncheck.check`.

    Returns:
        A :class:`VerifyReport`; when an equation disagrees, ``report.diagnosis`` explains it,
        e.g. ``"your residual ≈ 1.0·u_x − 0.1·u_tt; expected 1.0·u_t − 0.1·u_xx: ..."``.

    Raises:
        UserCodeError: importing or calling the user's code failed, or it returned the wrong
            shape (the message holds the user's traceback in ``details``).
        ExpressionError, DomainError, OptionError, DeviceError: bad input.

    Example:
        >>> def f(x, u):
        ...     g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
        ...     return g[:, 1:2] + u * g[:, 0:1]
        >>> verify(f, "u_t + u*u_x", "u=sin(x)*exp(-t)+x*t**2", ["x=0:1", "t=0:1"]).status
        'pass'
    """
    job = prepare_verify(
        target,
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
        chunk_size=chunk_size,
        base_dir=base_dir,
        convention=convention,
        definitions_only=definitions_only,
        where=where,
    )
    return job.run(progress, sinks)


class _Run(Diagnosis):
    """One run of a :class:`VerifyJob` (keeps the arrays the diagnosis needs)."""

    def __init__(self, job: VerifyJob, sinks: Sequence[PointSink] = ()) -> None:
        self.job = job
        self.sinks = sinks
        self.system = job.system
        self.opts = job.options
        self.dom = job.system.domain
        self.syms = symbols_of(self.dom)
        self.k = len(job.system.residuals)

    # The user's side ---------------------------------------------------------------------

    def call(
        self, fn: ResidualFunction, cols: Sequence[torch.Tensor], watch: bool = True
    ) -> list[torch.Tensor]:
        """Build the arguments from the sampled columns (:mod:`pinncheck._callconv`), call the
        user, check the result.

        Returns the result's columns, detached, in the dtype the user's code returned.
        """
        what = f"Your residual function {self.label}"
        with torch.enable_grad():
            prepared = build_call(self.conv, self.syms, self.solutions, cols)
            if watch:
                self.memory.watch(prepared.leaf, len(cols[0]))
            with trace_grad() as calls:
                try:
                    out = call_user(fn, *prepared.args, what=what)
                except UserCodeError as exc:
                    evidence = none_evidence(calls, self.batch_size())
                    if evidence is None:
                        raise
                    raise UserCodeError(f"{exc} ({evidence}.)", exc.details) from None
                finally:
                    clear_framework_caches()
        self.calls.append(calls)
        n, device = prepared.leaf.shape[0], prepared.leaf.device
        del prepared
        return equation_columns(out, n, self.k, what, device)

    # The run -----------------------------------------------------------------------------

    def run(self, progress: Progress | None) -> VerifyReport:
        # The target's folder is the import scope while the function is loaded and called.
        with target_scope(self.job.target):
            return self.measure(progress)

    def measure(self, progress: Progress | None) -> VerifyReport:
        t_start = time.perf_counter()
        fn, self.label = resolve(self.job.target, definitions_only=self.job.definitions_only)
        if not callable(fn):
            raise UserCodeError(
                f"{self.label} is a {type(fn).__name__}, not a function f(x, u) returning the "
                "PDE residual."
            )
        self.notes = take_notes()
        self.solutions = list(self.system.solutions.values())
        self.conv = choose_convention(
            fn, self.label, self.dom.names, list(self.system.solutions), self.job.convention
        )
        self.memory = ChunkMemory(self.opts.device, (len(self.dom) + 2 * self.k) * 8)
        self.calls: list[list[GradCall]] = []
        system, opts, dom = self.system, self.opts, self.dom
        order = max_order(system)
        alphas = [(), *multi_indices(len(dom), order)]
        self.alphas = alphas
        self.exact: dict[Term, sympy.Expr] = {}
        for fname, sol in system.solutions.items():
            for a, e in exact_partials(sol, self.syms, alphas).items():
                self.exact[Term(fname, a)] = e
        exact_res = [substitute(r, self.exact) for r in system.residuals]
        # The exact side as in the engine: the terms, then each residual from them, each with
        # its running error bound in units of roundoff (the bound is linear in the unit
        # roundoff, which depends on the dtype the user's code returns, known only later).
        terms = list(self.exact)
        term_prog = Program([self.exact[t] for t in terms], self.syms, cse=True)
        holders = [*self.syms, *(t.placeholder() for t in terms)]
        res_prog = Program(system.residuals, holders, cse=True)
        parts = [list(sympy.Add.make_args(r)) for r in system.residuals]
        part_prog = Program([p for ps in parts for p in ps], holders, cse=True)
        scale = [0.0] * self.k
        # The values the diagnosis needs, filled chunk by chunk (no second copy at the end:
        # 8*(d + 5k) bytes per point in all).
        user = torch.empty((self.k, opts.n), dtype=torch.float64)
        exact = torch.empty((self.k, opts.n), dtype=torch.float64)
        points = torch.empty((opts.n, len(dom)), dtype=torch.float64)
        spans: list[tuple[int, int]] = []
        units = torch.empty((self.k, opts.n), dtype=torch.float64)
        sizes = torch.empty((self.k, opts.n), dtype=torch.float64)
        # The least precise dtype the user's code returned, per equation.
        self.result_dtypes: list[torch.dtype] = [opts.dtype] * self.k
        returned: list[torch.dtype | None] = [None] * self.k
        n = opts.n
        chunk = max(1, min(n, opts.chunk_size or DEFAULT_CHUNK))
        t_user = t_exact = 0.0
        # Shapes are checked on at least k + 2 points, so that a tiny first chunk cannot hide
        # a broadcast (an (n, n) result looks like (n, 1) for n = 1): the chunk size never
        # changes the outcome.
        probe = min(n, self.k + 2)
        if chunk < probe:
            cols = sample_box(dom, opts.seed, 0, probe, dtype=opts.dtype, device=opts.device)
            self.call(fn, cols, watch=False)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            cols = sample_box(dom, opts.seed, start, stop, dtype=opts.dtype, device=opts.device)
            t0 = time.perf_counter()
            raw = self.call(fn, cols)
            self.memory.settle()
            t1 = time.perf_counter()
            for i, c in enumerate(raw):
                prev = returned[i]
                returned[i] = c.dtype if prev is None else coarser(prev, c.dtype)
            got = [c.to(torch.float64) for c in raw]
            pts64 = [p.to(torch.float64) for p in cols]
            in_units: list[torch.Tensor | None] = [p.abs() for p in pts64]
            tv, tb = run_bounded(term_prog, pts64, in_units, 1.0)
            rv, rb = run_bounded(res_prog, pts64 + tv, in_units + list(tb), 1.0)
            pv = iter(part_prog.run(pts64 + tv))
            for i in range(self.k):
                total = torch.zeros_like(pts64[0])
                for _ in parts[i]:
                    total = total + next(pv).abs()
                finite = torch.nan_to_num(total, nan=0.0, posinf=0.0)
                scale[i] = max(scale[i], float(finite.max()))
                user[i, start:stop] = got[i]
                exact[i, start:stop] = rv[i]
                units[i, start:stop] = rb[i]
                sizes[i, start:stop] = total
            points[start:stop] = torch.stack(pts64, dim=1)
            spans.append((start, stop))
            t_exact += time.perf_counter() - t1
            t_user += t1 - t0
            if progress is not None:
                progress(stop, n)
        # The tolerances depend on the dtype the user's code returned, known only now: the
        # statistics are gathered from the kept values, chunk by chunk as they were computed.
        t1 = time.perf_counter()
        self.result_dtypes = [d if d is not None else opts.dtype for d in returned]
        tols = [self.tolerance(d) for d in self.result_dtypes]
        stats = [ErrorStats() for _ in tols]
        to_ref = REFERENCE_SAFETY * UNIT_ROUNDOFF["float64"]
        allowed_all = torch.empty((self.k, opts.n), dtype=torch.float64)
        names = tuple(f"eq{i + 1}" for i in range(self.k))
        start_all(
            self.sinks,
            Layout(
                names,
                ("equation",) * self.k,
                dom.names,
                dom.lows,
                dom.highs,
                opts.n,
                Resampler(dom, opts.seed, opts.dtype, opts.device),
            ),
        )
        for start, stop in spans:
            pts = [points[start:stop, j] for j in range(len(dom))]
            refs = []
            for i in range(self.k):
                tol, b, e = tols[i], units[i, start:stop], exact[i, start:stop]
                size = sizes[i, start:stop]
                if tol.override:
                    allowed = size * (tol.rtol or 0.0) + (tol.atol or 0.0)
                else:
                    allowed = b * (tol.factor * tol.unit_roundoff)
                ref = b * to_ref
                stats[i].update(
                    user[i, start:stop],
                    e,
                    allowed,
                    ref,
                    pts,
                    start,
                    override=tol.override,
                    size=size,
                )
                stats[i].extra_max("exact_over_reference", e.abs() / ref)
                allowed_all[i, start:stop] = allowed
                refs.append(ref)
            if self.sinks:
                vals = [user[i, start:stop] for i in range(self.k)]
                ex = [exact[i, start:stop] for i in range(self.k)]
                errors = [torch.sub(v, e).abs_() for v, e in zip(vals, ex, strict=True)]
                allowed_view = [allowed_all[i, start:stop] for i in range(self.k)]
                # (the view computes the ratios and undefined counts)
                view = ChunkView(start, pts, vals, ex, errors, allowed_view, refs)
                feed(self.sinks, view)
        del units, sizes
        self.refine(stats, exact_res)
        t_exact += time.perf_counter() - t1
        self.points = points
        self.user = list(user.unbind(0))
        self.exact_values = list(exact.unbind(0))
        self.allowed_values = list(allowed_all.unbind(0))
        equations = [
            VerifyEquation(
                name=f"eq{i + 1}",
                stats=stats[i],
                tolerance=tols[i],
                variables=dom.names,
                equation=system.equations[i],
                exact_residual=exact_res[i],
                term_scale=scale[i],
                symbolic="not checked",
                check_solution=False,
                result_dtype=torch_dtype_name(self.result_dtypes[i]),
            )
            for i in range(self.k)
        ]
        t_diag = time.perf_counter()
        report = VerifyReport(
            self.label,
            system,
            opts,
            equations,
            warnings=self.notes
            + self.dtype_warnings(tols)
            + system_warnings(system)
            + self.memory.warnings(),
            grad_calls=len(self.calls[0]) if self.calls else 0,
        )
        self.diagnose(report, fn)
        t_end = time.perf_counter()
        report.timings = {
            "user_s": t_user,
            "exact_s": t_exact,
            "diagnosis_s": t_end - t_diag,
            "total_s": t_end - t_start,
        }
        return report

    def tolerance(self, result: torch.dtype) -> Tolerance:
        """The rounding model's tolerance for code that returns ``result`` (or the overrides):
        the run's dtype, or the result's when that is coarser."""
        opts = self.opts
        dtype = coarser(opts.dtype, result)
        return default_tolerance(torch_dtype_name(dtype), rtol=opts.rtol, atol=opts.atol)

    def refine(self, stats: Sequence[ErrorStats], exact_res: Sequence[sympy.Expr]) -> None:
        """High precision where the float64 reference cannot settle a point (see _refine)."""
        from ._refine import Quantity, refine

        term_pairs = [(t.placeholder(), e) for t, e in self.exact.items()]
        quantities = []
        for r in self.system.residuals:
            used = r.free_symbols
            quantities.append(Quantity(r, self.syms, [p for p in term_pairs if p[0] in used]))
        refine(list(zip(stats, quantities, strict=True)))

    def dtype_warnings(self, tols: Sequence[Tolerance]) -> list[str]:
        """One warning per coarser dtype the user's code returned."""
        out = []
        run = self.opts.dtype_name
        by_dtype: dict[torch.dtype, list[int]] = {}
        for i in range(self.k):
            if self.coarse(i):
                by_dtype.setdefault(self.result_dtypes[i], []).append(i)
        for dtype, eqs in by_dtype.items():
            name = torch_dtype_name(dtype)
            which = f" ({', '.join(f'eq{i + 1}' for i in eqs)})" if self.k > 1 else ""
            tol = tols[eqs[0]]
            head = (
                f"Your function returned {name} values in a {run} run{which}: part of it "
                f"computes in {name}, probably through a cast (a {name} model, "
                f".to(torch.{name}), or a constant such as torch.tensor(..., dtype=torch.{name}))"
            )
            out.append(
                f"{head}. pinncheck compared it with {name}'s rounding ({tol.describe()}); run "
                f"with --dtype {name} to check it as {name} code, or keep it in {run} to "
                "check it more tightly."
            )
        return out


__all__ = ["VerifyEquation", "VerifyJob", "VerifyReport", "prepare_verify", "verify"]
