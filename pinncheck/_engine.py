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

import numpy as np
import sympy
import torch

from ._autograd import MultiIndex, partials
from ._compare import ErrorStats, needs_scaling
from ._domain import Domain
from ._evaluate import Program
from ._sample import sample_box

DEFAULT_CHUNK = 1 << 17
"""Largest automatic chunk on the CPU. Chunks of 2^16 to 2^17 points run fastest there: smaller
ones pay per-operation overheads (autograd's most), larger ones leave the caches (see the
README's Performance section)."""
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
        # Derived quantities, from the term values (autograd's or exact) and the points.
        self.inputs = [*syms, *(t.placeholder() for t in plan.terms)]
        derived = [d.expr for d in plan.derived]
        self.derived = Program(derived, self.inputs, cse=True, inplace=True) if derived else None
        parts = [p for d in plan.derived for p in d.parts]
        self.parts = Program(parts, self.inputs, cse=True, inplace=True) if parts else None
        self.part_counts = [len(d.parts) for d in plan.derived]

    def bytes_per_point(self, dtype: torch.dtype, order: int) -> int:
        """A generous estimate of one point's share of a chunk's peak memory."""
        run = torch.empty((), dtype=dtype).element_size()
        graph = sum(len(p.steps) for p in self.functions.values()) * 3 * (order + 1)
        exact = self.exact.peak_live + len(self.exact.outputs)
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
    programs: Programs | None = None,
) -> Outcome:
    """Stream ``n`` seeded points through ``plan`` and collect error statistics.

    ``programs`` are the plan's lowered expressions, when the caller has them already.

    On the CPU a run of several chunks processes one chunk per core at a time, in worker
    threads with single-threaded torch operations: as fast as torch's multi-threaded
    operations on a quiet machine, and without their stalls (a whole scheduler tick per
    operation) when another process holds a core. The chunks' statistics are merged in order,
    so the result is that of one pass over the points.
    """
    start_all = time.perf_counter()
    progs = programs or Programs(plan)
    chunk = max(1, min(n, chunk_size or default_chunk(progs, dtype, device)))
    starts = range(0, n, chunk)
    workers = min(workers_for(device), len(starts))
    rtols = [rtol[t] for t in plan.terms] + [rtol[d.name] for d in plan.derived]
    totals = _new_stats(rtols, len(plan.terms))
    derived_scale = {d.name: 0.0 for d in plan.derived}
    timings = {"setup_s": time.perf_counter() - start_all}
    timings.update(sample_s=0.0, autograd_s=0.0, exact_s=0.0, compare_s=0.0)

    # A chunk whose excesses cannot beat the worst excess of an earlier chunk skips the
    # search for its worst point (an earlier point keeps a tie). Earlier chunks are those
    # merged so far, and those finished but not merged yet (other workers').
    merged_worst = [-math.inf] * len(totals)
    finished: dict[int, list[float]] = {}  # start -> worst excesses, until merged

    def beat(start: int) -> list[float]:
        best = list(merged_worst)
        for s, worst in list(finished.items()):
            if s < start:
                best = [max(b, w) for b, w in zip(best, worst, strict=True)]
        return best

    def work(start: int) -> _ChunkResult:
        stop = min(n, start + chunk)
        res = _run_chunk(
            progs, plan.domain, seed, start, stop, dtype, device, rtols, lambda: beat(start)
        )
        finished[start] = [s.worst_excess for s in res.stats]
        return res

    with closing(map_in_order(work, starts, workers)) as results:
        for start, res in zip(starts, results, strict=True):
            for i, (total, part) in enumerate(zip(totals, res.stats, strict=True)):
                merge_stats(total, part)
                merged_worst[i] = total.worst_excess
            finished.pop(start, None)
            for d, scale in zip(plan.derived, res.scales, strict=True):
                if d.parts:
                    derived_scale[d.name] = max(derived_scale[d.name], scale)
            for key, value in res.seconds.items():
                timings[key] += value
            if progress is not None:
                progress(min(n, start + chunk), n)
    timings["total_s"] = time.perf_counter() - start_all
    k = len(plan.terms)
    term_stats = dict(zip(plan.terms, totals[:k], strict=True))
    derived_stats = {d.name: s for d, s in zip(plan.derived, totals[k:], strict=True)}
    return Outcome(term_stats, derived_stats, derived_scale, timings, chunk)


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
    rtols: list[float],
    beat: Callable[[], list[float]],
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
    # Exact side, always in float64, at the same (possibly float32-rounded) points.
    pts64 = [x.detach().to(torch.float64) for x in leaves]
    ex, ex_derived, part_sums = exact_side(progs, pts64)
    _sync(device)
    t3 = time.perf_counter()
    stats = _new_stats(rtols, len(ag))
    pairs = list(zip(stats, ag + ag_derived, ex + ex_derived, strict=True))
    scales = fold_chunk(pairs, pts64, start, extra=part_sums, beat=beat())
    t4 = time.perf_counter()
    seconds = {"sample_s": t1 - t0, "autograd_s": t2 - t1, "exact_s": t3 - t2, "compare_s": t4 - t3}
    return _ChunkResult(stats, scales, seconds)


def _new_stats(rtols: Sequence[float], n_terms: int) -> list[ErrorStats]:
    """Empty statistics: the terms', then the derived quantities' (which keep max|autograd|,
    the residual's size that reports show)."""
    return [ErrorStats(rtol=r, track_autograd=i >= n_terms) for i, r in enumerate(rtols)]


def merge_stats(total: ErrorStats, part: ErrorStats) -> None:
    """Fold the statistics of a later chunk, ``part``, into ``total``: the result equals
    :meth:`ErrorStats.update` over both chunks' points in order."""
    total.count += part.count
    total.finite += part.finite
    total.nonfinite += part.nonfinite
    total.max_abs_error = max(total.max_abs_error, part.max_abs_error)
    total.max_abs_exact = max(total.max_abs_exact, part.max_abs_exact)
    if total.track_autograd:
        total.max_abs_autograd = max(total.max_abs_autograd, part.max_abs_autograd)
    total.add_sum_sq(part.sum_sq_error, part.sq_scale)
    if part.worst_excess > total.worst_excess:  # the earlier chunk keeps a tie
        total.worst_excess = part.worst_excess
        total.worst_index = part.worst_index
        total.worst_point = part.worst_point
        total.worst_values = part.worst_values
    if total.first_nonfinite_index is None and part.first_nonfinite_index is not None:
        total.first_nonfinite_index = part.first_nonfinite_index
        total.first_nonfinite_point = part.first_nonfinite_point
        total.first_nonfinite_values = part.first_nonfinite_values


def autograd_side(
    progs: Programs, leaves: list[torch.Tensor]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Autograd's values of every term (in the plan's order) and derived quantity."""
    ag = _autograd_terms(progs, leaves)
    pts = [x.detach() for x in leaves]
    return ag, progs.derived.run(pts + ag) if progs.derived else []


def exact_side(
    progs: Programs, pts64: list[torch.Tensor]
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor | None]]:
    """Exact values of every term and derived quantity, and each one's sum(|part|) maximum."""
    ex = progs.exact.run(pts64)
    ex_derived = progs.derived.run(pts64 + ex) if progs.derived else []
    return ex, ex_derived, _part_sums(progs, pts64 + ex)


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
    """For each derived quantity, max over the chunk of sum(|part|) (None without parts)."""
    if progs.parts is None:
        return [None] * len(progs.part_counts)
    parts = iter(progs.parts.run(inputs))
    out: list[torch.Tensor | None] = []
    for count in progs.part_counts:
        total = None
        for _ in range(count):
            p = next(parts).abs()
            total = p if total is None else total.add_(p)
        out.append(None if total is None else total.max())
    return out


def fold_chunk(
    pairs: Sequence[tuple[ErrorStats, torch.Tensor, torch.Tensor]],
    points: list[torch.Tensor],
    offset: int,
    extra: Sequence[torch.Tensor | None] = (),
    beat: Sequence[float] | None = None,
) -> list[float]:
    """``stats.update(autograd, exact, points, offset)`` for each pair, syncing at most twice.

    A chunk where every value is finite (its sum of squared errors is) is reduced with cheap
    operations: ``amax`` and a dot product, several times faster than ``torch.max`` and
    ``argmax`` on the CPU. The excess ``|a - e| - rtol*|e|`` is only computed where the chunk
    may hold a worst point: where ``max|a - e| - rtol*min|e|``, an upper bound of every
    excess (rounding included), beats ``beat`` (default: the statistics' own worst excess;
    a parallel run passes the worst of the earlier chunks done so far). Other chunks go through
    :meth:`ErrorStats.update` itself. The statistics are those of ``update``, bit for bit (the
    sum of squares up to rounding). ``extra`` are 0-d tensors read back with the first sync;
    they are returned as floats (NaN for None).
    """
    if beat is None:
        beat = [stats.worst_excess for stats, _, _ in pairs]
    rows: list[torch.Tensor] = []
    errs: list[torch.Tensor] = []
    for stats, a, e in pairs:
        # In float64: a float32 ``a`` is widened exactly on the fly, without a copy.
        err = torch.sub(a, e)
        sum_sq = torch.dot(err, err)
        err = err.abs_()
        row = [sum_sq, err.amax(), e.amin(), e.amax()]
        if stats.track_autograd:
            row += [a.amin().to(torch.float64), a.amax().to(torch.float64)]
        rows.append(torch.stack(row))
        errs.append(err)
    tail = [torch.full((1,), math.nan, dtype=torch.float64, device=points[0].device)]
    tail += [x.reshape(1).to(torch.float64) for x in extra if x is not None]
    flat = torch.cat(rows + tail).tolist()
    m = points[0].numel()
    search = []
    at = 0
    for i, ((stats, a, e), err) in enumerate(zip(pairs, errs, strict=True)):
        width = len(rows[i])
        sum_sq, err_max, e_min, e_max, *a_range = flat[at : at + width]
        at += width
        if not math.isfinite(sum_sq) or needs_scaling(sum_sq, err_max):
            # Non-finite values, or squares that overflow or underflow: the careful way.
            stats.update(a, e, points, offset)
            continue
        stats.count += m
        stats.finite += m
        stats.max_abs_error = max(stats.max_abs_error, err_max)
        stats.max_abs_exact = max(stats.max_abs_exact, -e_min, e_max)
        if a_range:
            stats.max_abs_autograd = max(stats.max_abs_autograd, -a_range[0], a_range[1])
        stats.add_sum_sq(sum_sq)
        least = 0.0 if e_min <= 0.0 <= e_max else -e_max if e_max < 0.0 else e_min  # min|e|
        to_beat = max(beat[i], stats.worst_excess)
        if err_max - stats.rtol * least > to_beat:
            excess, where = _excess(e, err, stats.rtol, least, err_max, (e_min, e_max))
            search.append((stats, a, e, excess, where, to_beat))
    if search:
        worsts = torch.stack([s[3].amax() for s in search]).tolist()
        for (stats, a, e, excess, where, to_beat), worst in zip(search, worsts, strict=True):
            if worst > to_beat:
                j = _argmax(excess)
                if where is not None:
                    j = int(where[j])
                stats.worst_excess = worst
                stats.worst_index = offset + j
                stats.worst_point = [float(p[j]) for p in points]
                stats.worst_values = (float(a[j]), float(e[j]))
    scales = iter(flat[at + 1 :])
    return [math.nan if x is None else next(scales) for x in extra]


FILTER_MIN_POINTS = 1 << 15
"""Chunks from this size on search their worst point among candidates (see :func:`_excess`);
below it the filter costs more (about 20 µs) than it saves."""


def _excess(
    e: torch.Tensor,
    err: torch.Tensor,
    rtol: float,
    least: float,
    err_max: float,
    e_range: tuple[float, float],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The excess ``|a - e| - rtol*|e|`` wherever it may be largest, rounded exactly as
    :meth:`ErrorStats.update` rounds it: ``(values, None)`` for every point, or
    ``(values, indices)`` for the candidates, in order.

    The point of least ``|e|`` has an excess of at least ``-rtol*least``, and any point's excess
    is at most ``err_max - rtol*|e|``; so only points with ``|e| <= least + err_max/rtol`` can
    hold the largest (the margin below covers rounding; the first of equal excesses stays
    first, as the candidates keep their order). In a passing check those are a few points near
    the zeros of ``e``: one comparison replaces four passes over the chunk. Used on the CPU,
    where extracting the candidates costs no device sync, while they are at most an eighth of
    the chunk.
    """
    e_min, e_max = e_range
    m = e.numel()
    if e.device.type == "cpu" and m >= FILTER_MIN_POINTS and rtol >= 1e-15:
        # NumPy's comparisons and flatnonzero are several times faster than torch's here.
        values = e.detach().numpy()
        magnitude = None
        if e_min <= 0.0 <= e_max:  # least is only a lower bound here: find min|e| itself
            magnitude = np.abs(values)
            least = float(magnitude.min())
        if least * rtol == 0.0 or least * rtol >= 1e-290:  # no subnormal rounding
            limit = (least + err_max / rtol) * (1 + 1e-6) + 1e-300
            if magnitude is not None:
                found = np.flatnonzero(magnitude <= limit)
            elif e_min >= 0.0:
                found = np.flatnonzero(values <= limit)
            else:
                found = np.flatnonzero(values >= -limit)
            if 0 < found.size <= m // 8:
                where = torch.from_numpy(found)
                return torch.abs(e[where]).mul_(-rtol).add_(err[where]), where
    return torch.abs(e).mul_(-rtol).add_(err), None


def _argmax(x: torch.Tensor) -> int:
    """The first index of the largest value (NumPy's is ~10x faster than torch's on the CPU)."""
    if x.device.type == "cpu":
        return int(x.detach().numpy().argmax())
    return int(x.argmax())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
