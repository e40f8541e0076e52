"""The ways of computing a case's derivatives that the harness times, on the same points.

Each method is built once per (case, dtype, chunk) and then run over all points, chunk by chunk:
every method gets the same chunking, which is what keeps eager torch fast (see docs/performance.md).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from pinncheck._engine import (
    Programs,
    autograd_side,
    exact_side,
    map_in_order,
    run_plan,
    workers_for,
)
from pinncheck._evaluate import Program

from .cases import Prepared

SEED = 20240917
Points = list[torch.Tensor]


@dataclass
class Method:
    """``run(points)`` computes the method's values at all points. ``warm(points)`` runs before
    the timings (untimed) and returns the seconds spent compiling, for methods that compile."""

    name: str
    run: Callable[[Points], None]
    warm: Callable[[Points], float] | None = None
    parallel: bool = True  # chunks run in parallel threads (see each_chunk)
    parts: dict[str, float] | None = None  # the whole check's own timings of its last run

    def prepare(self, points: Points) -> float:
        if self.warm is not None:
            return self.warm(points)
        self.run(points)
        return 0.0


def _chunks(points: Points, chunk: int) -> list[Points]:
    n = points[0].numel()
    return [[p[s : s + chunk] for p in points] for s in range(0, n, chunk)]


def each_chunk(
    fn: Callable[[Points], object], points: Points, chunk: int, parallel: bool = True
) -> None:
    """``fn`` on every chunk, with pinncheck's parallelism: on the CPU one chunk per core at a
    time, each with single-threaded torch operations. Without ``parallel``, one chunk after
    the other with torch's multi-threaded operations (torch.func's transforms keep global
    state and cannot run in several threads)."""
    chunks = _chunks(points, chunk)
    workers = min(workers_for(points[0].device), len(chunks)) if parallel else 1
    for _ in map_in_order(lambda i: fn(chunks[i]), range(len(chunks)), workers):
        pass


def floor(prep: Prepared, dtype: torch.dtype, chunk: int) -> Method:
    """SymPy's exact values (``sympy.cse`` shared) as torch operations, in the run's dtype."""
    prog = Program(prep.outputs, prep.symbols, cse=True, inplace=True)

    return Method("floor", lambda points: each_chunk(prog.run, points, chunk))


def autograd(prep: Prepared, dtype: torch.dtype, chunk: int) -> Method:
    """pinncheck's autograd side: the function on one leaf per variable, ones-vector partials."""
    progs = Programs(prep.plan)

    def one(pts: Points) -> None:
        autograd_side(progs, [p.detach().requires_grad_(True) for p in pts])

    return Method("autograd", lambda points: each_chunk(one, points, chunk))


def exact(prep: Prepared, dtype: torch.dtype, chunk: int) -> Method:
    """pinncheck's exact side: float64 always, at the run's (maybe float32-rounded) points."""
    progs = Programs(prep.plan)

    def one(pts: Points) -> None:
        exact_side(progs, [p.to(torch.float64) for p in pts])

    return Method("exact", lambda points: each_chunk(one, points, chunk))


def check(prep: Prepared, dtype: torch.dtype, chunk: int) -> Method:
    """The whole check after the symbolic work (parsing, SymPy's derivatives, lowering):
    sampling, autograd side, exact side and comparison."""
    progs = Programs(prep.plan)
    parts: dict[str, float] = {}

    def run(points: Points) -> None:
        outcome = run_plan(
            prep.plan,
            n=points[0].numel(),
            seed=SEED,
            dtype=dtype,
            device=points[0].device,
            tolerance=prep.tolerance,
            chunk_size=chunk,
            programs=progs,
        )
        parts.update({k: outcome.timings[k] for k in PARTS})

    return Method("check", run, parts=parts)


PARTS = ("sample_s", "autograd_s", "exact_s", "compare_s")
"""The phases of a check whose shares the report shows (seconds summed over worker threads)."""


def floor_plain(prep: Prepared, dtype: torch.dtype, chunk: int) -> Method:
    """The floor as first measured (README): out of place, one pass over all points, torch's
    own threads. For context; ratios are to :func:`floor`."""
    prog = Program(prep.outputs, prep.symbols, cse=True)
    return Method("floor plain", lambda points: prog.run(points), parallel=False)


def _per_point(prep: Prepared) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function of one point ``(d,)`` for torch.func."""
    prog = Program([prep.function], prep.symbols)
    return lambda v: prog.run(list(v.unbind(0)))[0]


def _assemble(
    prep: Prepared, cols: Points, value: Callable[[], torch.Tensor], grad: torch.Tensor, hess
) -> None:
    """Terms from the gradient and the Hessian's upper triangle; derived quantities from them."""
    values = []
    for t in prep.plan.terms:
        if not t.alpha:
            values.append(value())
        elif len(t.alpha) == 1:
            values.append(grad[:, t.alpha[0]])
        else:
            values.append(hess(*t.alpha))
    if prep.plan.derived:
        Program([d.expr for d in prep.plan.derived], _inputs(prep)).run(cols + values)


def _inputs(prep: Prepared) -> list:
    return [*prep.symbols, *(t.placeholder() for t in prep.plan.terms)]


def torch_func(prep: Prepared, dtype: torch.dtype, chunk: int) -> Method:
    """``torch.func``: ``vmap(jacrev(f))`` and ``vmap(hessian(f))`` on an ``(n, d)`` input."""
    from torch.func import hessian, jacrev, vmap

    f = _per_point(prep)
    jac, hes, val = vmap(jacrev(f)), vmap(hessian(f)), vmap(f)

    def one(pts: Points) -> None:
        x = torch.stack(pts, dim=1)
        g, h = jac(x), hes(x)
        _assemble(prep, pts, lambda: val(x), g, lambda i, j: h[:, i, j])

    run = lambda points: each_chunk(one, points, chunk, parallel=False)  # noqa: E731
    return Method("torch.func", run, parallel=False)


def fwd_over_rev(prep: Prepared, dtype: torch.dtype, chunk: int) -> Method:
    """Forward-over-reverse: ``torch.func.jvp`` of ``vmap(grad(f))``, one per variable."""
    from torch.func import grad, jvp, vmap

    f = _per_point(prep)
    g, val = vmap(grad(f)), vmap(f)
    d = len(prep.symbols)

    def one(pts: Points) -> None:
        x = torch.stack(pts, dim=1)
        cols = {}
        gx = None
        # Hessian column i is the directional derivative of the gradient along e_i.
        for i in range(d):
            e = torch.zeros_like(x)
            e[:, i] = 1
            gx, cols[i] = jvp(g, (x,), (e,))
        assert gx is not None
        _assemble(prep, pts, lambda: val(x), gx, lambda i, j: cols[j][:, i])

    run = lambda points: each_chunk(one, points, chunk, parallel=False)  # noqa: E731
    return Method("fwd-over-rev", run, parallel=False)


def exact_compiled(prep: Prepared, dtype: torch.dtype, chunk: int) -> Method:
    """The floor compiled by ``torch.compile`` (inductor): one fused loop per chunk shape."""
    prog = Program(prep.outputs, prep.symbols, cse=True)
    compiled = torch.compile(lambda *cols: prog.run(list(cols)), dynamic=False)
    seen: set[int] = set()

    def run(points: Points) -> None:
        each_chunk(lambda pts: compiled(*pts), points, chunk, parallel=False)

    def warm(points: Points) -> float:
        # The first call of each new chunk shape compiles (and runs once).
        t = time.perf_counter()
        for pts in _chunks(points, chunk):
            if pts[0].numel() not in seen:
                seen.add(pts[0].numel())
                compiled(*pts)
        return time.perf_counter() - t

    return Method("floor compiled", run, warm, parallel=False)


def jax_available() -> bool:
    return importlib.util.find_spec("jax") is not None


BUILDERS: dict[str, Callable[[Prepared, torch.dtype, int], Method]] = {
    "floor": floor,
    "autograd": autograd,
    "exact": exact,
    "check": check,
    "floor plain": floor_plain,
    "torch.func": torch_func,
    "fwd-over-rev": fwd_over_rev,
}


def build(
    names: Sequence[str], prep: Prepared, dtype: torch.dtype, chunk: int, device: torch.device
) -> list[Method]:
    methods = [BUILDERS[name](prep, dtype, chunk) for name in names if name in BUILDERS]
    if "compiled" in names:
        methods.append(exact_compiled(prep, dtype, chunk))
    if "jax" in names and device.type == "cpu" and jax_available():
        from .jax_side import jax_methods

        methods += jax_methods(prep, dtype, chunk)
    return methods
