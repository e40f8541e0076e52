"""The shared pipeline: sample a chunk, differentiate with autograd, evaluate exactly, compare.

``check`` and ``residual`` describe their work as a :class:`Plan` and hand it to
:func:`run_plan`, which streams the points through in chunks so that memory stays bounded and
the statistics equal those of one pass over all points.

Everything symbolic happens once per run, before the first chunk: the expressions are lowered
into :class:`~pinncheck._evaluate.Program` s (the exact side after ``sympy.cse``). Each chunk then
only runs torch operations, and the comparison syncs with the device once per chunk. On the CPU
the chunks run in parallel threads (see :func:`run_plan`).
"""

from __future__ import annotations

import ctypes
import itertools
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass, field
from typing import TypeVar

import sympy
import torch

from ._autograd import MultiIndex, partials
from ._bounds import UNIT_ROUNDOFF
from ._compare import ErrorStats, Tolerance
from ._domain import Domain
from ._evaluate import Program
from ._floors import Floors
from ._judge import (
    BoundSample,
    References,
    floor_scales,
    judge_chunk,
    judge_sample,
)
from ._pointwise import ChunkView, Layout, PointSink, Resampler
from ._sample import sample_box

DEFAULT_CHUNK = 1 << 17
"""Largest automatic chunk on the CPU. Chunks of 2^16 to 2^17 points run fastest there: smaller
ones pay per-operation overheads (autograd's most), larger ones leave the caches (see the
docs/performance.md)."""
CUDA_CHUNK = 1 << 20
"""Largest automatic chunk on CUDA, where larger chunks amortise kernel launches. A guess until
the benchmark harness has run on a GPU."""
MIN_CHUNK = 1 << 10
MEMORY_FRACTION = 0.25
"""The share of the available memory that one chunk's working set may take."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Term:
    """Partial derivative ``alpha`` (sorted variable indices, ``()`` = value) of a function."""

    function: str
    alpha: MultiIndex

    def placeholder(self) -> sympy.Symbol:
        # A symbol standing for this term's values inside derived expressions (residuals).
        # "'" cannot occur in a name, so unknowns such as u_0 and u never share a placeholder.
        return sympy.Symbol(f"_{self.function}'" + ",".join(map(str, self.alpha)), real=True)


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


def job_timings(outcome: Outcome, started: float) -> dict[str, float]:
    """A job's timings: the run's, plus ``symbolic_s`` (SymPy work around it: derivatives,
    warnings, proofs) and ``total_s`` since ``started`` (a ``time.perf_counter()``)."""
    total = time.perf_counter() - started
    return {**outcome.timings, "symbolic_s": total - outcome.timings["total_s"], "total_s": total}


def symbols_of(domain: Domain) -> list[sympy.Symbol]:
    from ._parse import real_symbol

    return [real_symbol(name) for name in domain.names]


class Programs:
    """A plan's expressions lowered once for the whole run."""

    def __init__(self, plan: Plan) -> None:
        syms = symbols_of(plan.domain)
        self.terms = plan.terms
        self.by_function: dict[str, list[Term]] = {}
        for t in plan.terms:
            self.by_function.setdefault(t.function, []).append(t)
        # Autograd side: the functions as written (identical subtrees shared), out of place.
        self.functions = {name: Program([plan.functions[name]], syms) for name in self.by_function}
        # Exact side: all exact terms together, common subexpressions shared, in place.
        self.exact = Program(
            [plan.exact_terms[t] for t in plan.terms], syms, cse=True, inplace=True
        )
        # The same, also returning the sums of the terms' structural lower bounds (_floors).
        nonneg = [i for i, low in enumerate(plan.domain.lows) if low >= 0]
        self.floors = Floors(self.exact, nonneg)
        self.exact_run = self.floors.fused() if self.floors else self.exact
        self._scaled: dict[tuple[float, ...], Program] = {}
        # Derived quantities, from the term values (autograd's or exact) and the points.
        self.inputs = [*syms, *(t.placeholder() for t in plan.terms)]
        derived = [d.expr for d in plan.derived]
        self.derived = Program(derived, self.inputs, cse=True, inplace=True) if derived else None
        parts = [p for d in plan.derived for p in d.parts]
        self.parts = Program(parts, self.inputs, cse=True, inplace=True) if parts else None
        self.part_counts = [len(d.parts) for d in plan.derived]

    def exact_for(self, scales: Sequence[float]) -> Program:
        """:attr:`exact_run` with the bounds' sums times ``scales`` (see Floors.fused; only
        for a plan whose terms have bounds)."""
        key = tuple(scales)
        if key not in self._scaled:
            self._scaled[key] = self.floors.fused(scales)
        return self._scaled[key]

    def bytes_per_point(self, dtype: torch.dtype, order: int) -> int:
        """A generous estimate of one point's share of a chunk's peak memory."""
        run = torch.empty((), dtype=dtype).element_size()
        graph = sum(len(p.steps) for p in self.functions.values()) * 3 * (order + 1)
        exact = self.exact_run.peak_live + len(self.exact_run.outputs)
        derived = 2 * len(self.inputs) + (self.derived.peak_live if self.derived else 0)
        return run * (graph + 2 * len(self.inputs)) + 8 * (exact + derived + 8)


def available_memory(device: torch.device) -> int | None:
    """Bytes of memory available to a run on ``device``, or None where unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


_TUNED = False


def tune_allocator() -> bool:
    """Keep freed memory in the process (glibc only; once per process): True if tuned.

    Each chunk allocates and frees the same tensors again. By default glibc returns freed
    memory at the top of the heap to the system, and the next chunk faults the same pages in
    again, one by one, which is slow (in virtual machines especially): 15-25% of a check's time
    here. The CLI calls this; a library user may. The cost: the process keeps up to
    ``M_TRIM_THRESHOLD`` of freed memory resident.
    """
    global _TUNED
    if _TUNED or not sys.platform.startswith("linux"):
        return _TUNED
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    _TUNED = bool(
        mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest: big tensors stay in the heap
        and mallopt(m_trim_threshold, 512 << 20)
        and mallopt(m_top_pad, 64 << 20)
    )
    return _TUNED


def workers_for(device: torch.device) -> int:
    """Chunks processed at once: one per intra-op thread on the CPU (each chunk then runs its
    operations single-threaded), one on CUDA."""
    return 1 if device.type == "cuda" else max(1, torch.get_num_threads())


def auto_chunk_size(bytes_per_point: int, device: torch.device, workers: int = 1) -> int:
    """The default chunk: as large as is fast (see :data:`DEFAULT_CHUNK`), and small enough
    that the chunks in flight take at most :data:`MEMORY_FRACTION` of the available memory."""
    cap = CUDA_CHUNK if device.type == "cuda" else DEFAULT_CHUNK
    avail = available_memory(device)
    if avail is None:
        return cap
    fit = int(avail * MEMORY_FRACTION) // max(1, bytes_per_point * workers)
    return max(MIN_CHUNK, min(cap, fit))


def default_chunk(progs: Programs, dtype: torch.dtype, device: torch.device) -> int:
    """The chunk size of a run that does not set one.

    A run of one chunk runs on the calling thread with torch's multi-threaded operations:
    below ~2^17 points that beats splitting it for the worker threads, whose hand-offs cost
    more than they save.
    """
    order = max((len(t.alpha) for t in progs.terms), default=1)
    return auto_chunk_size(progs.bytes_per_point(dtype, order), device, workers_for(device))


@dataclass
class _ChunkResult:
    stats: list[ErrorStats]  # this chunk's statistics: per term, then per derived quantity
    scales: list[float]  # per derived quantity: max of sum(|part|) (NaN without parts)
    seconds: dict[str, float]
    partials: list[object] = field(default_factory=list)  # per sink: what this chunk adds
    sample: BoundSample | None = None  # the chunk's points of the run's bound sample


def run_plan(
    plan: Plan,
    *,
    n: int,
    seed: int,
    dtype: torch.dtype,
    device: torch.device,
    tolerance: dict[Term | str, Tolerance],
    chunk_size: int | None = None,
    progress: Progress | None = None,
    programs: Programs | None = None,
    sinks: Sequence[PointSink] = (),
    names: Sequence[str] | None = None,
) -> Outcome:
    """Stream ``n`` seeded points through ``plan`` and collect error statistics.

    ``programs`` are the plan's lowered expressions, when the caller has them already.

    On the CPU a run of several chunks processes one chunk per core at a time, in worker
    threads with single-threaded torch operations: as fast as torch's multi-threaded
    operations on a quiet machine, and without their stalls (a whole scheduler tick per
    operation) when another process holds a core. The chunks' statistics are merged in order,
    so the result is that of one pass over the points.

    ``tolerance`` gives each term and derived quantity (by name) its :class:`Tolerance`.

    ``sinks`` see every chunk's pointwise values (see :mod:`pinncheck._pointwise`); ``names``
    are the quantities' names in their layout (the terms', then the derived quantities').
    """
    start_all = time.perf_counter()
    progs = programs or Programs(plan)
    chunk = max(1, min(n, chunk_size or default_chunk(progs, dtype, device)))
    starts = range(0, n, chunk)
    workers = min(workers_for(device), len(starts))
    tols = [tolerance[t] for t in plan.terms] + [tolerance[d.name] for d in plan.derived]
    totals = _new_stats(len(tols), len(plan.terms))
    derived_scale = {d.name: 0.0 for d in plan.derived}
    timings = {"setup_s": time.perf_counter() - start_all}
    timings.update(sample_s=0.0, autograd_s=0.0, exact_s=0.0, compare_s=0.0)
    if sinks:
        layout = plan_layout(plan, n, names, Resampler(plan.domain, seed, dtype, device))
        for s in sinks:
            s.start(layout)

    samples: list[BoundSample | None] = []

    def work(start: int) -> _ChunkResult:
        stop = min(n, start + chunk)
        # What the chunks merged so far (all earlier than this one) have found.
        beat = [
            (
                t.worst_ratio,
                t.max_abs_error if t.largest is not None else -math.inf,
                t.max_reference_error if t.unsure is not None else -math.inf,
            )
            for t in totals
        ]
        return _run_chunk(
            progs, plan.domain, seed, start, stop, dtype, device, tols, n, beat, sinks
        )

    with closing(map_in_order(work, starts, workers)) as results:
        for start, res in zip(starts, results, strict=True):
            for total, part in zip(totals, res.stats, strict=True):
                total.merge(part)
            for d, scale in zip(plan.derived, res.scales, strict=True):
                if d.parts:
                    derived_scale[d.name] = max(derived_scale[d.name], scale)
            for key, value in res.seconds.items():
                timings[key] += value
            for s, p in zip(sinks, res.partials, strict=True):
                s.merge(p)
            samples.append(res.sample)
            if progress is not None:
                progress(min(n, start + chunk), n)
    t_sample = time.perf_counter()
    judge_sample(progs, samples, tols, UNIT_ROUNDOFF[str(dtype).removeprefix("torch.")], totals)
    t_refine = time.perf_counter()
    timings["compare_s"] += t_refine - t_sample
    refine_plan(plan, totals)
    timings["refine_s"] = time.perf_counter() - t_refine
    timings["total_s"] = time.perf_counter() - start_all
    k = len(plan.terms)
    term_stats = dict(zip(plan.terms, totals[:k], strict=True))
    derived_stats = {d.name: s for d, s in zip(plan.derived, totals[k:], strict=True)}
    return Outcome(term_stats, derived_stats, derived_scale, timings, chunk)


def plan_layout(
    plan: Plan, n: int, names: Sequence[str] | None = None, resample: Resampler | None = None
) -> Layout:
    """The :class:`Layout` sinks see: the terms, then the derived quantities."""
    dom = plan.domain
    if names is None:
        names = [f"{t.function}{list(t.alpha)}" for t in plan.terms]
        names += [d.name for d in plan.derived]
    kinds = ["derivative"] * len(plan.terms) + ["equation"] * len(plan.derived)
    return Layout(tuple(names), tuple(kinds), dom.names, dom.lows, dom.highs, n, resample)


def refine_plan(plan: Plan, totals: Sequence[ErrorStats]) -> None:
    """Settle undecided points and re-measure reported errors in high precision (see
    :mod:`pinncheck._refine`); ``totals`` are the terms' statistics, then the derived ones'."""
    from ._refine import Quantity, refine

    syms = symbols_of(plan.domain)
    quantities = [Quantity(plan.exact_terms[t], syms) for t in plan.terms]
    for d in plan.derived:
        used = d.expr.free_symbols
        terms = [(t.placeholder(), plan.exact_terms[t]) for t in plan.terms]
        quantities.append(Quantity(d.expr, syms, [p for p in terms if p[0] in used]))
    refine(list(zip(totals, quantities, strict=True)))


_Result = TypeVar("_Result")


def map_in_order(
    work: Callable[[int], _Result], starts: Sequence[int], workers: int
) -> Generator[_Result, None, None]:
    """``work(start)`` for each start, in order, ``workers`` at a time in threads (with
    single-threaded torch operations meanwhile); at most ``2*workers`` are queued at once."""
    if workers <= 1:
        yield from (work(s) for s in starts)
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    pool = _pool(workers)
    pending: deque[Future[_Result]] = deque()
    todo = iter(starts)
    try:
        for first in itertools.islice(todo, 2 * workers):
            pending.append(pool.submit(work, first))
        while pending:
            result = pending.popleft().result()
            following = next(todo, None)
            if following is not None:
                pending.append(pool.submit(work, following))
            yield result
    finally:
        for f in pending:
            f.cancel()
        wait(pending)
        torch.set_num_threads(threads)


_POOL: ThreadPoolExecutor | None = None
_POOL_KEY = (0, 0)  # (process id, workers) of _POOL


def _pool(workers: int) -> ThreadPoolExecutor:
    """The worker threads, kept between runs (starting them costs ~0.5 ms a run). A forked
    child gets a pool of its own: its parent's threads do not exist there."""
    global _POOL, _POOL_KEY
    pid, size = _POOL_KEY
    if _POOL is None or pid != os.getpid() or size < workers:
        if _POOL is not None and pid == os.getpid():
            _POOL.shutdown(wait=False)
        _POOL = ThreadPoolExecutor(workers, thread_name_prefix="pinncheck")
        _POOL_KEY = (os.getpid(), workers)
    return _POOL


def _run_chunk(
    progs: Programs,
    domain: Domain,
    seed: int,
    start: int,
    stop: int,
    dtype: torch.dtype,
    device: torch.device,
    tols: list[Tolerance],
    n_total: int,
    beat: Sequence[tuple[float, float, float]] = (),
    sinks: Sequence[PointSink] = (),
) -> _ChunkResult:
    """Sample points ``start..stop-1``, compute both sides, and compare: one chunk's statistics."""
    t0 = time.perf_counter()
    leaves = [
        x.requires_grad_(True)
        for x in sample_box(domain, seed, start, stop, dtype=dtype, device=device)
    ]
    t1 = time.perf_counter()
    # Autograd side, in the run's dtype, exactly as a PINN computes it.
    ag, ag_derived = autograd_side(progs, leaves)
    _sync(device)
    t2 = time.perf_counter()
    # Exact side, always in float64, at the same (possibly float32-rounded) points, with the
    # running error bound for the run's dtype where it is needed (see judge_chunk).
    pts64 = [x.detach().to(torch.float64) for x in leaves]
    u = UNIT_ROUNDOFF[str(dtype).removeprefix("torch.")]
    scales = floor_scales(progs, tols, u, n_total)
    ex, kept = _exact_values(progs, pts64, scales)
    part_sums = _part_sums(progs, pts64 + ex[: len(progs.terms)])
    # Each quantity's size at each point: |value|, or for a residual the sum of its terms'.
    # (None for a term: |exact| is computed where needed, not kept.)
    sizes = [None for _ in progs.terms] + part_sums
    judged, sample = judge_chunk(
        progs, pts64, ex, ag + ag_derived, sizes, tols, u, start, n_total, kept, scales is not None
    )
    _sync(device)
    t3 = time.perf_counter()
    stats = _new_stats(len(tols), len(progs.terms))
    for st, b in zip(stats, beat, strict=False):
        st.beat = b
    scales = []
    for i, (st, a, e, tol, j) in enumerate(
        zip(stats, ag + ag_derived, ex, tols, judged, strict=True)
    ):
        k = i - len(progs.terms)
        size = part_sums[k] if k >= 0 else None
        st.update(
            a,
            e,
            j.allowed,
            j.reference,
            pts64,
            start,
            override=tol.override,
            size=size,
            err=j.error,
            ratio=j.ratio,
            ratio_max=j.ratio_max,
            exact_max=j.size_max if k < 0 else None,
            tolerance_max=j.allowed_max,
            vague=j.vague,
        )
        if k >= 0:
            if size is None:
                scales.append(math.nan)
            else:
                scales.append(float(size.max() if j.size_max is None else j.size_max))
            assert j.over_reference is not None
            st.extra["exact_over_reference"] = j.over_reference
    partials: list[object] = []
    if sinks:
        view = ChunkView(
            start,
            pts64,
            [a.to(torch.float64) for a in ag + ag_derived],
            ex,
            [j.error for j in judged],
            [j.allowed for j in judged],
            References(judged),
            [j.ratio for j in judged],
            [j.ratio_max for j in judged],
            [st.nonfinite for st in stats],  # (this chunk's own statistics)
        )
        partials = [s.partial(view) for s in sinks]
    t4 = time.perf_counter()
    seconds = {"sample_s": t1 - t0, "autograd_s": t2 - t1, "exact_s": t3 - t2, "compare_s": t4 - t3}
    return _ChunkResult(stats, scales, seconds, partials, sample)


def _new_stats(count: int, n_terms: int) -> list[ErrorStats]:
    """Empty statistics: the terms', then the derived quantities' (which keep max|autograd|,
    the residual's size that reports show)."""
    return [ErrorStats(track_autograd=i >= n_terms) for i in range(count)]


def autograd_side(
    progs: Programs, leaves: list[torch.Tensor]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Autograd's values of every term (in the plan's order) and derived quantity."""
    ag = _autograd_terms(progs, leaves)
    pts = [x.detach() for x in leaves]
    return ag, progs.derived.run(pts + ag) if progs.derived else []


def exact_side(
    progs: Programs, pts64: list[torch.Tensor]
) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """Exact values of every term and derived quantity (float64, no bounds), and each derived
    quantity's sum(|part|) at each point (None without parts)."""
    ex, _ = _exact_values(progs, pts64)
    return ex, _part_sums(progs, pts64 + ex[: len(progs.terms)])


def _exact_values(
    progs: Programs, pts64: list[torch.Tensor], floor_scales: Sequence[float] | None = None
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Exact values of every term and derived quantity, and the sums of the terms' structural
    lower bounds (:mod:`pinncheck._floors`), times ``floor_scales`` where given."""
    run = progs.exact_run if floor_scales is None else progs.exact_for(floor_scales)
    out = run.run(pts64)
    k = len(progs.terms)
    ex, kept = out[:k], out[k:]
    if progs.derived is not None:
        ex = ex + progs.derived.run(pts64 + ex)
    return ex, kept


def _autograd_terms(progs: Programs, leaves: list[torch.Tensor]) -> list[torch.Tensor]:
    values: dict[Term, torch.Tensor] = {}
    for name, terms in progs.by_function.items():
        (y,) = progs.functions[name].run(leaves)
        ds = partials(y, leaves, [t.alpha for t in terms if t.alpha])
        y = y.detach()
        # Where the function itself is undefined (log of a negative number...), so are its
        # derivatives, even when autograd's formula for them is finite there. A finite sum
        # shows cheaply that every value is finite.
        undefined = None
        if not bool(torch.isfinite(y.sum())):
            undefined = ~torch.isfinite(y)
        for t in terms:
            value = ds[t.alpha] if t.alpha else y
            if undefined is not None:
                value = torch.where(undefined, torch.full_like(value, math.nan), value)
            values[t] = value
    return [values[t] for ts in progs.by_function.values() for t in ts]


def _part_sums(progs: Programs, inputs: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """For each derived quantity, sum(|part|) at each point (None without parts)."""
    if progs.parts is None:
        return [None] * len(progs.part_counts)
    parts = iter(progs.parts.run(inputs))
    out: list[torch.Tensor | None] = []
    for count in progs.part_counts:
        total = None
        for _ in range(count):
            p = next(parts).abs()
            total = p if total is None else total.add_(p)
        out.append(total)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
