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
from collections.abc import Callable, Mapping, Sequence
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
from ._engine import DEFAULT_CHUNK, REFERENCE_SAFETY, Progress, Term, symbols_of
from ._errors import UserCodeError
from ._evaluate import Evaluator, Program
from ._exact import exact_partials
from ._explain import (
    FIT_RTOL,
    CandidateSet,
    Fit,
    candidate_set,
    dependencies,
    explain,
    fit_columns,
    max_order,
    no_fit_line,
    rounding_line,
)
from ._gradflow import (
    COARSE_RTOL,
    GRAD_POINTS,
    GRAD_RTOL,
    GradientFinding,
    compare,
    exact_directions,
    linearise,
    user_slopes,
)
from ._options import RunOptions, run_options
from ._pde import Assignments, PDESystem
from ._pointwise import ChunkView, Layout, PointSink, feed, start_all
from ._probe import nan_aware_difference, plain_tensors
from ._residual import (
    SOLVE_FACTOR,
    EquationResult,
    build_system,
    substitute,
    system_warnings,
)
from ._results import _num, document, inconclusive_reason, overall_status, point_coordinates
from ._sample import DEFAULT_SEED, sample_box
from ._usercode import (
    GradCall,
    Target,
    call_user,
    dtype_phrase,
    exception_text,
    parse_target,
    resolve,
    take_notes,
    target_scope,
    trace_grad,
)
from ._usermemory import ChunkMemory, clear_framework_caches

# The fit and the diagnosis use at most this many points (the first ones of the sample).
FIT_POINTS = 2000
WORST_POINTS = 3
# locate() works through the kept values in blocks of this many points.
LOCATE_BLOCK = 1 << 18
# A result in a precision without a row in the tolerance table (float16, bfloat16) is compared
# with this many units of its rounding, relative to the PDE's term scale (and as rtol): coarse,
# but a wrong term is off by O(1) of the scale and still fails.
HALF_ROUNDING_UNITS = 16

ResidualFunction = Callable[[torch.Tensor, torch.Tensor], Any]


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
    return job.run(progress)


def _shape_text(shape: Sequence[int], n: int) -> str:
    return "(" + ", ".join("n" if s == n else str(s) for s in shape) + ")"


def _none_evidence(calls: Sequence[GradCall], n: int) -> str | None:
    """The user's ``torch.autograd.grad`` calls that returned None, as one line of evidence."""
    nones = [shape for c in calls for shape in c.none_shapes]
    if not nones:
        return None
    shapes = sorted({_shape_text(s, n) for s in nones})
    return (
        f"evidence: torch.autograd.grad returned None for {len(nones)} input(s) of shape "
        f"{', '.join(shapes)} (allow_unused=True): those tensors are not on the graph of "
        "what was differentiated"
    )


def equation_columns(
    out: Any,
    n: int,
    k: int,
    label: str,
    device: torch.device | None = None,
    keep_graph: bool = False,
) -> list[torch.Tensor]:
    """The user's result as ``k`` tensors of shape ``(n,)`` (detached unless ``keep_graph``).

    Raises:
        UserCodeError: anything else (wrong type, shape, or number of equations).
    """
    usage = (
        f"return an (n,) or (n, 1) tensor per PDE: one tensor, an (n, {k}) tensor, or a list of "
        f"{k} tensors (n = {n} points here)"
    )
    out = plain_tensors(out)
    if isinstance(out, torch.Tensor):
        if out.dim() == 2 and out.shape == (n, n) and k != n and n > 1:
            raise UserCodeError(
                f"{label} returned an (n, n) tensor, shape {tuple(out.shape)} for {n} points: "
                "an (n,) tensor was probably combined with an (n, 1) one, which broadcasts to "
                "(n, n) (e.g. x[:, 0] with u or with x[:, 0:1]). Keep every column (n, 1) "
                f"(slice with x[:, 0:1]) or every one (n,); {usage}."
            )
        if out.dim() == 1 and out.shape[0] == n:
            cols = [out]
        elif out.dim() == 2 and out.shape[0] == n:
            cols = [out[:, i] for i in range(out.shape[1])]
        else:
            raise UserCodeError(
                f"{label} returned a tensor of shape {tuple(out.shape)} for {n} points; {usage}."
            )
    elif isinstance(out, (list, tuple)):
        cols = []
        for i, item in enumerate(out):
            if not isinstance(item, torch.Tensor):
                raise UserCodeError(
                    f"{label} returned a {type(out).__name__} whose item {i} is a "
                    f"{type(item).__name__}, not a tensor; {usage}."
                )
            if item.shape in ((n,), (n, 1)):
                cols.append(item.reshape(n))
            else:
                raise UserCodeError(
                    f"{label} returned a {type(out).__name__} whose item {i} has shape "
                    f"{tuple(item.shape)} for {n} points; {usage}."
                )
    else:
        raise UserCodeError(f"{label} returned a {type(out).__name__}, not a tensor; {usage}.")
    if len(cols) != k:
        raise UserCodeError(
            f"{label} returned {len(cols)} equation(s) but {k} PDE(s) were given (--pde); {usage}."
        )
    for c in cols:
        _check_values(c, label)
    if keep_graph:
        return cols
    try:
        return [c.detach().to(device=device) for c in cols]
    except Exception as exc:
        raise UserCodeError(
            f"{label} returned a tensor whose values cannot be read: {type(exc).__name__}: "
            f"{exception_text(exc)}"
        ) from None


def _check_values(c: torch.Tensor, label: str) -> None:
    """A result column must hold real floating-point values that can be read."""
    if c.device.type == "meta":
        raise UserCodeError(
            f"{label} returned a tensor on the meta device, which holds no values; return the "
            "residual computed from x and u."
        )
    if c.layout != torch.strided:
        raise UserCodeError(f"{label} returned a {c.layout} tensor; return a dense tensor.")
    if c.is_complex():
        raise UserCodeError(f"{label} returned a {c.dtype} tensor; expected real values.")
    if not c.is_floating_point():
        raise UserCodeError(
            f"{label} returned {dtype_phrase(c.dtype)} tensor; a residual must be floating point "
            "(float64 or float32). Integers and booleans come from a comparison (x > 0), "
            ".long()/.int()/.round(), or an integer constant, and lose the derivatives."
        )


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _eps(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps)


def _coarser(a: torch.dtype, b: torch.dtype) -> torch.dtype:
    """The less precise of two floating dtypes (``a`` when they are as precise)."""
    return b if _eps(b) > _eps(a) else a


class _Run:
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
                    evidence = _none_evidence(calls, self.batch_size())
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
                returned[i] = c.dtype if prev is None else _coarser(prev, c.dtype)
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
            Layout(names, ("equation",) * self.k, dom.names, dom.lows, dom.highs, opts.n),
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
                view = ChunkView(
                    start,
                    pts,
                    vals,
                    ex,
                    [torch.sub(v, e).abs_() for v, e in zip(vals, ex, strict=True)],
                    [allowed_all[i, start:stop] for i in range(self.k)],
                    refs,
                )
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
                result_dtype=_dtype_name(self.result_dtypes[i]),
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
        dtype = _coarser(opts.dtype, result)
        return default_tolerance(_dtype_name(dtype), rtol=opts.rtol, atol=opts.atol)

    def refine(self, stats: Sequence[ErrorStats], exact_res: Sequence[sympy.Expr]) -> None:
        """High precision where the float64 reference cannot settle a point (see _refine)."""
        from ._refine import Quantity, refine

        term_pairs = [(t.placeholder(), e) for t, e in self.exact.items()]
        quantities = []
        for r in self.system.residuals:
            used = r.free_symbols
            quantities.append(Quantity(r, self.syms, [p for p in term_pairs if p[0] in used]))
        refine(list(zip(stats, quantities, strict=True)))

    def coarse(self, i: int) -> bool:
        """Whether equation ``i``'s result is less precise than the run."""
        return _coarser(self.opts.dtype, self.result_dtypes[i]) != self.opts.dtype

    def dtype_name(self, i: int) -> str:
        """The dtype whose fit and coefficient tolerances apply to equation ``i``."""
        if not self.coarse(i):
            return self.opts.dtype_name
        name = _dtype_name(self.result_dtypes[i])
        return name if name in FIT_RTOL else "float32"

    def dtype_warnings(self, tols: Sequence[Tolerance]) -> list[str]:
        """One warning per coarser dtype the user's code returned."""
        out = []
        run = self.opts.dtype_name
        by_dtype: dict[torch.dtype, list[int]] = {}
        for i in range(self.k):
            if self.coarse(i):
                by_dtype.setdefault(self.result_dtypes[i], []).append(i)
        for dtype, eqs in by_dtype.items():
            name = _dtype_name(dtype)
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

    # The diagnosis -----------------------------------------------------------------------

    def point_text(self, i: int) -> str:
        coords = ", ".join(
            f"{name}={float(v):.4g}" for name, v in zip(self.dom.names, self.points[i], strict=True)
        )
        return coords

    def diagnose(self, report: VerifyReport, fn: ResidualFunction) -> None:
        m = min(FIT_POINTS, self.opts.n)
        cands = candidate_set(self.system)
        pts = [self.points[:m, j].contiguous() for j in range(len(self.dom))]
        ev = Evaluator(dict(zip(self.syms, pts, strict=True)))
        terms = list(self.exact)
        term_values = dict(zip(terms, ev.tensors([self.exact[t] for t in terms]), strict=True))
        a = cands.values(pts, term_values)
        rows_ok = torch.isfinite(a).all(dim=1)
        report.warnings += self.solution_warnings(report, cands, a[rows_ok])
        for i, eq in enumerate(report.equations):
            self.locate(eq, i)
            if eq.status in ("pass", "inconclusive"):
                continue
            lines = list(eq.diagnosis)
            b = self.user[i][:m]
            ok = rows_ok & torch.isfinite(b)
            lines += self.nonfinite_lines(i)
            bb, aa = b[ok], a[ok]
            if bb.numel() == 0:
                pass
            elif float(bb.abs().max()) == 0.0:
                lines.append(
                    "your residual is identically 0: every derivative in your code vanished, so "
                    "they do not depend on the inputs. Usually the tensor you differentiate with "
                    "respect to is not on the graph of u (a slice such as x[:, 0:1] taken after "
                    "u was computed from x; torch.autograd.grad then returns None with "
                    "allow_unused=True, and a helper turned it into zeros). Differentiate with "
                    "respect to x itself and slice the gradient: torch.autograd.grad(u, x, "
                    "torch.ones_like(u), create_graph=True)[0][:, 0:1]"
                )
                eq.fit = self.fit_dict(cands, i, Fit({}, 0.0, True), int(ok.sum()))
            else:
                fit = fit_columns(
                    aa,
                    bb,
                    rtol=FIT_RTOL[self.dtype_name(i)],
                    prefer=list(cands.expected[i]),
                )
                eq.fit = self.fit_dict(cands, i, fit, int(ok.sum()))
                rounded = rounding_line(cands, i, aa, bb)
                if rounded is not None:
                    lines.append(rounded)
                elif fit.accepted:
                    lines += explain(
                        cands, i, fit, dtype_name=self.dtype_name(i), batch=self.batch_size()
                    )
                else:
                    lines.append(no_fit_line(cands, fit))
            eq.diagnosis = lines
        self.gradient_flow(report, fn)
        failed = [e for e in report.equations if e.status != "pass"]
        for e in failed:
            prefix = f"{e.name}: " if self.k > 1 else ""
            report.diagnosis += [e.diagnosis[0]] + [prefix + line for line in e.diagnosis[1:]]
        if failed:
            report.diagnosis += self.grad_evidence(order=max_order(self.system))
            report.diagnosis += self.batch_coupling(fn)

    def gradient_flow(self, report: VerifyReport, fn: ResidualFunction) -> None:
        """For the equations whose values agree: is their gradient with respect to the solution
        right too (:mod:`pinncheck._gradflow`)? For those that disagree in a way no candidate
        term explains: is their gradient right, so that the difference depends on the
        variables only (a source term)?"""
        agree = [i for i, e in enumerate(report.equations) if e.status == "pass"]
        unexplained = [
            i
            for i, e in enumerate(report.equations)
            if e.status == "fail" and e.fit is not None and not e.fit["accepted"]
        ]
        if not agree and not unexplained:
            return
        opts, system = self.opts, self.system
        m = min(GRAD_POINTS, opts.n)
        cols = sample_box(self.dom, opts.seed, 0, m, dtype=opts.dtype, device=opts.device)
        theta_sym = sympy.Dummy("theta", real=True)
        vs, exact_v = exact_directions(self.syms, list(system.solutions), self.alphas)
        sols = [s + theta_sym * v for s, v in zip(self.solutions, vs, strict=True)]
        what = f"Your residual function {self.label}"
        try:
            with torch.enable_grad():
                theta = torch.zeros(m, dtype=opts.dtype, device=opts.device, requires_grad=True)
                prepared = build_call(self.conv, self.syms, sols, cols, {theta_sym: theta})
                try:
                    out = call_user(fn, *prepared.args, what=what)
                    rows = equation_columns(out, m, self.k, what, keep_graph=True)
                    slopes = user_slopes(rows, theta)
                finally:
                    clear_framework_caches()
        except (UserCodeError, RuntimeError) as exc:
            report.warnings.append(
                f"The gradient of your residual with respect to the solution was not checked: "
                f"{exception_text(exc)}"
            )
            return
        ev = Evaluator(dict(zip(self.syms, [c.to(torch.float64).cpu() for c in cols], strict=True)))
        for i in agree + unexplained:
            eq = report.equations[i]
            lin = linearise(system.residuals[i], system.terms, self.exact, exact_v)
            rtol = GRAD_RTOL.get(self.dtype_name(i), COARSE_RTOL)
            found = compare(slopes[i], lin, ev, rtol)
            if i in agree:
                eq.gradient = "pass" if found.ok else "fail"
                if not found.ok:
                    eq.diagnosis = [self.gradient_line(eq, i, found)]
            elif found.ok and found.scale > 0:
                eq.diagnosis = [
                    line for line in eq.diagnosis if not line.startswith("no combination")
                ] + [
                    "your residual differs from the expected one by a function of "
                    f"{', '.join(self.dom.names)} only: its dependence on the solution is right "
                    "(its gradient with respect to u agrees with the PDE's), so check the "
                    "source (forcing) term"
                ]

    def gradient_line(self, eq: VerifyEquation, i: int, found: GradientFinding) -> str:
        system = self.system
        labels = {t.placeholder(): sympy.Symbol(system.term_label(t)) for t in system.terms}
        head = (
            f"{eq.name} ({eq.equation}): your residual's values are right but its gradient with "
            "respect to the solution is wrong (for u + θ·v, dR/dθ is off by up to "
            f"{found.max_error:.3g} against a scale of {found.scale:.3g})"
        )
        if found.missing:
            names = ", ".join(system.term_label(t) for t in found.missing)
            where = [
                str(arg.xreplace(labels))
                for arg in sympy.Add.make_args(system.residuals[i])
                if any(t.placeholder() in arg.free_symbols for t in found.missing)
            ]
            head += (
                f": its dependence on {names} (in the term {', '.join(where[:3])}) does not "
                "reach autograd"
            )
        return (
            head + ". A value there is cut off the graph: .detach(), .item(), .data, a "
            "computation under torch.no_grad(), or a constant built from u. Training through "
            "this residual follows a wrong gradient"
        )

    def batch_size(self) -> int:
        return min(self.opts.n, self.opts.chunk_size or DEFAULT_CHUNK)

    def locate(self, eq: VerifyEquation, i: int) -> None:
        """Count the failing points, record the worst ones, and write the 'where' line."""
        s = eq.stats
        u, e, allowed = self.user[i], self.exact_values[i], self.allowed_values[i]
        # In blocks, so that the temporaries stay small however many points there are.
        failing = 0
        ranked: list[tuple[float, int]] = []
        for a in range(0, u.numel(), LOCATE_BLOCK):
            ub, eb = u[a : a + LOCATE_BLOCK], e[a : a + LOCATE_BLOCK]
            finite = torch.isfinite(ub) & torch.isfinite(eb)
            err = torch.where(finite, (ub - eb).abs(), torch.zeros_like(ub))
            ratio = torch.where(
                finite, err / allowed[a : a + LOCATE_BLOCK], torch.full_like(ub, -math.inf)
            ).nan_to_num_(nan=0.0)
            failing += int(((ratio > 1) | ~finite).sum())
            vals, idx = torch.topk(ratio, min(WORST_POINTS, ratio.numel()))
            ranked += [(v, a + j) for v, j in zip(vals.tolist(), idx.tolist(), strict=True)]
        eq.failing_points = failing
        ranked.sort(key=lambda vj: (-vj[0], vj[1]))
        eq.worst_points = [
            {
                "index": j,
                "point": point_coordinates(self.dom.names, self.points[j].tolist()),
                "user": _num(float(u[j])),
                "exact": _num(float(e[j])),
            }
            for v, j in ranked[:WORST_POINTS]
            if math.isfinite(v)
        ]
        if eq.status == "pass":
            return
        if s.finite == 0:
            eq.diagnosis = [f"{eq.name} ({eq.equation}) is undefined (NaN or inf) at every point"]
            return
        if eq.status == "inconclusive":
            eq.diagnosis = [f"{eq.name} ({eq.equation}) is inconclusive: {inconclusive_reason(s)}"]
            return
        worst = "; ".join(
            f"{self.point_text(p['index'])} (yours {float(u[p['index']]):.6g}, expected "
            f"{float(e[p['index']]):.6g})"
            for p in eq.worst_points
        )
        eq.diagnosis = [
            f"{eq.name} ({eq.equation}) disagrees at {eq.failing_points} of {s.count} points: max "
            f"|error| {s.max_abs_error:.3g}, {s.worst_ratio:.3g}x the rounding tolerance at the "
            f"worst point (PDE term scale {eq.term_scale:.3g}); worst at {worst}"
        ]

    def nonfinite_lines(self, i: int) -> list[str]:
        u, e = self.user[i], self.exact_values[i]
        lines = []
        bad_exact = ~torch.isfinite(e)
        bad_user = ~torch.isfinite(u) & ~bad_exact
        if bool(bad_user.any()):
            j = int(bad_user.nonzero()[0, 0])
            lines.append(
                f"your residual is NaN or inf at {int(bad_user.sum())} point(s) where the exact "
                f"one is finite, first at {self.point_text(j)} (yours {float(u[j])}); look for "
                "a division by a derivative, a log or sqrt of a negative value, or an overflow"
            )
        if bool(bad_exact.any()):
            j = int(bad_exact.nonzero()[0, 0])
            lines.append(
                f"the exact residual itself is undefined (NaN or inf) at {int(bad_exact.sum())} "
                f"point(s), first at {self.point_text(j)}: choose a manufactured solution that "
                "is smooth on the whole domain"
            )
        return lines

    def fit_dict(self, cands: CandidateSet, i: int, fit: Fit, points: int) -> dict[str, Any]:
        return {
            "accepted": fit.accepted,
            "relative_residual": _num(fit.rel_residual),
            "formula": cands.formula(fit.coefficients) if fit.accepted else None,
            "coefficients": {cands.columns[j].label: c for j, c in fit.coefficients.items()}
            if fit.accepted
            else {},
            "expected": cands.formula(cands.expected[i]),
            "points": points,
        }

    def solution_warnings(
        self, report: VerifyReport, cands: CandidateSet, a: torch.Tensor
    ) -> list[str]:
        """Weak manufactured solutions: zero or dependent terms, or an exact solution."""
        out = []
        for e in report.equations:
            s = e.stats
            if s.finite and s.extra.get("exact_over_reference", math.inf) <= SOLVE_FACTOR:
                out.append(
                    f"The manufactured solution solves {e.name} ({e.equation}): its exact "
                    "residual is 0, so a residual that returns zeros would pass too. A generic u "
                    "that does not solve the PDE catches more bugs."
                )
        if a.shape[0] == 0:
            return out
        used = {j for ex in cands.expected for j in ex} - {0}
        index = {c.expr: j for j, c in enumerate(cands.columns)}
        zero: list[int] = []
        deps: list[tuple[int, dict[int, float]]] = []
        # Each unknown's value and derivatives (and a constant): which are zero, and which are
        # combinations of others for this solution. Only relations with a PDE term matter.
        for fname in self.system.solutions:
            own = [index[t.placeholder()] for t in cands.by_symbol.values() if t.function == fname]
            z, found = dependencies(cands, a, [0, *own])
            zero += z
            deps += [(j, c) for j, c in found if j in used or used & set(c)]
        label = [c.label for c in cands.columns]
        pde_zero = [label[j] for j in zero if j in used]
        if pde_zero:
            out.append(
                f"The term(s) {', '.join(pde_zero)} of the PDE are zero at every sampled point for "
                "this manufactured solution, so a bug in them cannot show; choose a solution for "
                "which every term is non-zero."
            )
        if deps:
            shown = [f"{label[j]} ≈ {cands.formula(c)}" for j, c in deps[:3]]
            more = f" (+{len(deps) - 3} more)" if len(deps) > 3 else ""
            poly = "*".join(f"{name}**3" for name in self.dom.names)
            out.append(
                "For this manufactured solution "
                + ", ".join(shown)
                + more
                + " at every sampled point: pinncheck cannot tell these terms apart, so a bug "
                "that confuses them may pass unnoticed and the diagnosis may be ambiguous. Add a "
                f"generic term to the solution (e.g. + {poly})."
            )
        return out

    def grad_evidence(self, order: int) -> list[str]:
        calls = self.calls[0] if self.calls else []
        lines = []
        evidence = _none_evidence(calls, self.batch_size())
        if evidence is not None:
            lines.append(evidence)
        flat = [c for c in calls if not c.create_graph]
        if flat and order >= 2:
            lines.append(
                f"evidence: {len(flat)} of your {len(calls)} torch.autograd.grad call(s) ran "
                "without create_graph=True; a derivative computed that way is detached and "
                "cannot be differentiated again (higher derivatives of it are zero or an error)"
            )
        return lines

    def batch_coupling(self, fn: ResidualFunction) -> list[str]:
        """Call the user's function on half of the first chunk: do the values change?"""
        half = max(1, min(self.batch_size(), self.opts.n) // 2)
        if half >= self.opts.n:
            return []
        cols = sample_box(
            self.dom, self.opts.seed, 0, half, dtype=self.opts.dtype, device=self.opts.device
        )
        got = [c.to(torch.float64).cpu() for c in self.call(fn, cols)]
        worst = 0.0
        coarsest = self.opts.dtype
        for i in range(self.k):
            full = self.user[i][:half]
            diff = nan_aware_difference(got[i], full)
            ref = float(torch.where(torch.isfinite(full), full.abs(), 0.0).max()) or 1.0
            worst = max(worst, float(diff.max()) / ref)
            coarsest = _coarser(coarsest, self.result_dtypes[i])
        name = _dtype_name(coarsest)
        limit = {"float64": 1e-9, "float32": 1e-4}.get(name, HALF_ROUNDING_UNITS * _eps(coarsest))
        if worst <= limit:
            return []
        return [
            f"your residual couples the points of the batch: calling it on the first {half} "
            f"points alone changes its values there by up to {worst:.2g} (relative). A "
            "residual must be pointwise; look for a mean or sum over dim 0, a sum() before "
            "torch.autograd.grad over the wrong axis, or a batch-coupled model"
        ]


__all__ = ["VerifyEquation", "VerifyJob", "VerifyReport", "prepare_verify", "verify"]
