"""Error maps: binned ratios located from the data behind the map, streamed in bounded memory,
independent of the chunk size; and the terminal failure map under a failing table."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from helpers import HEAT, HEAT_ARGS, run_cli
from pinncheck._check import prepare_check
from pinncheck._maps import (
    DEFAULT_SAMPLE,
    SAMPLE_BLOCK,
    ErrorMaps,
    ErrorMapsResult,
    Grid,
    QuantityMap,
    ranked_pairs,
    sampled_points,
)
from pinncheck._pointwise import ChunkView, Layout
from pinncheck._residual import prepare_residual
from pinncheck._termmap import ASCII, UNICODE, map_cells, marks_for, render_map
from pinncheck._verify import prepare_verify

# A residual of the heat equation that drops the diffusion term where the condition holds.
BUGGY = """
import torch


def gradient(y, x):
    return torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y), create_graph=True)[0]


def residual(x, u):
    u = u[:, 0:1]
    du = gradient(u, x)
    u_x, u_t = du[:, 0:1], du[:, 1:2]
    u_xx = gradient(u_x, x)[:, 0:1]
    X, T = x[:, 0:1], x[:, 1:2]
    nu = torch.where({condition}, torch.zeros_like(u_xx), 0.1 * torch.ones_like(u_xx))
    return u_t - nu * u_xx
"""


def _buggy(tmp_path: Path, condition: str, name: str = "buggy") -> str:
    (tmp_path / f"{name}.py").write_text(BUGGY.format(condition=condition))
    return f"{name}.py:residual"


def _verify_maps(
    tmp_path: Path, condition: str, n: int = 2000, sample: int = DEFAULT_SAMPLE, **kw: object
) -> tuple:
    target = _buggy(tmp_path, condition)
    job = prepare_verify(target, n=n, base_dir=tmp_path, **HEAT, **kw)
    sink = ErrorMaps(sample=sample)
    report = job.run(sinks=[sink])
    return report, sink.result()


def _lower(grid: Grid, axis: int = 0) -> torch.Tensor:
    return grid.edges[axis][:-1]


def _upper(grid: Grid, axis: int = 0) -> torch.Tensor:
    return grid.edges[axis][1:]


@pytest.mark.parametrize(("n", "sample"), [(2000, DEFAULT_SAMPLE), (12_000, 1000)])
def test_a_bug_where_x_exceeds_0_9_is_located_by_the_map(
    tmp_path: Path, n: int, sample: int
) -> None:
    # The second run bins the largest ratios of passing bins from a sample (stride 12).
    report, maps = _verify_maps(tmp_path, "X > 0.9", n=n, sample=sample)
    assert maps.stride == (1 if n <= sample else 12)
    eq = report.equations[0]
    assert report.status == "fail" and eq.failing_points > 50
    qmap = maps.quantity("eq1")
    assert qmap.failing == eq.failing_points and qmap.count == n
    for prof in (qmap.profile("x"), qmap.pair("x", "t")):
        x_prof = prof if len(prof.shape) == 1 else None
        if x_prof is None:  # the pair, reduced by hand along t
            failing = prof.failing.sum(1)
            top = prof.max_ratio.nan_to_num(nan=0.0).amax(1)
        else:
            failing, top = prof.failing, prof.max_ratio
        # Every failing bin reaches past x = 0.9; every bin below 0.85 passes everywhere.
        assert bool((_upper(prof)[failing > 0] > 0.9).all())
        below = _upper(prof) <= 0.85
        assert bool((top[below] <= 1).all()) and int(failing[below].sum()) == 0
        assert int(failing[_lower(prof) >= 0.9].sum()) > 0
    # The largest ratio of the passing region is the rounding's: far below the bug's.
    assert qmap.max_ratio > 1e6
    assert qmap.worst[0].point[0] > 0.9 and qmap.worst[0].ratio == qmap.max_ratio
    # t plays no part: the failures spread over t.
    assert int((qmap.profile("t").failing > 0).sum()) > qmap.profile("t").shape[0] // 2


def test_a_bug_in_a_corner_is_located_in_two_dimensions(tmp_path: Path) -> None:
    report, maps = _verify_maps(tmp_path, "(X > 0.8) & (T > 0.7)", n=3000)
    grid = maps.quantity("eq1").pair("x", "t")
    assert grid.variables == ("x", "t") and grid.shape == (64, 64)
    fx, ft = torch.nonzero(grid.failing, as_tuple=True)
    assert fx.numel() > 20
    assert bool((_upper(grid, 0)[fx] > 0.8).all()) and bool((_upper(grid, 1)[ft] > 0.7).all())
    top = grid.max_ratio.nan_to_num(nan=0.0)
    outside = (_upper(grid, 0)[:, None] <= 0.78) | (_upper(grid, 1)[None, :] <= 0.68)
    assert bool((top[outside] <= 1).all())
    inside = (_lower(grid, 0)[:, None] >= 0.8) & (_lower(grid, 1)[None, :] >= 0.7)
    assert int(grid.failing[inside].sum()) == report.equations[0].failing_points - int(
        grid.failing[~inside].sum()
    )
    assert int(grid.failing[~inside].sum()) <= int(grid.failing.sum()) // 4


def test_a_candidate_that_is_not_a_solution_near_x_1_has_a_solves_map() -> None:
    job = prepare_residual(
        "u_t - u_xx",
        "u = exp(-t)*sin(x) + 1e-6*exp(-t)*exp(500*(x - 1))",
        ["x=0:1", "t=0:1"],
        n=2000,
    )
    sink = ErrorMaps()
    report = job.run(sinks=[sink])
    maps = sink.result()
    eq = report.equations[0]
    assert eq.solves == "fail" and eq.agreement == "pass"
    qmap = maps.quantity(eq.name)
    assert qmap.kind == "equation" and qmap.failing == 0  # autograd agrees
    solves = qmap.solves
    assert solves is not None and solves.measure == "solves" and solves.failing > 0
    prof = solves.profile("x")
    assert bool((_upper(prof)[prof.failing > 0] > 0.9).all())
    assert bool((prof.max_ratio[_upper(prof) <= 0.85] <= 1).all())
    # The derivative terms have no solves map.
    assert all(q.solves is None for q in maps.quantities if q.kind == "derivative")


def test_undefined_points_are_counted_apart_never_as_passing() -> None:
    job = prepare_check("log(x)", ["x=-1:1"], n=1000, order=1)
    sink = ErrorMaps()
    report = job.run(sinks=[sink])
    d = report.derivatives[0]
    qmap = sink.result().quantity(d.name)
    prof = qmap.profile("x")
    assert prof.shape == (200,)
    assert qmap.undefined == d.stats.nonfinite > 400 and qmap.failing == 0
    neg, pos = _upper(prof) <= 0, _lower(prof) >= 0
    assert bool((prof.undefined[neg] == prof.count[neg]).all())
    assert bool(torch.isnan(prof.max_ratio[neg & (prof.count > 0)]).all())
    assert int(prof.undefined[pos].sum()) == 0 and int(prof.count[pos].sum()) > 400
    assert all(w.point[0] > 0 for w in qmap.worst)  # undefined points are never the worst


def _data(n: int, d: int) -> tuple[list[torch.Tensor], ...]:
    """Known values: ties at ratio 0, failures, NaN values, overflowing tolerances."""
    g = torch.Generator().manual_seed(0)
    pts = [torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1 for _ in range(d)]
    values = [torch.randn(n, generator=g, dtype=torch.float64) for _ in range(2)]
    exact = [v + torch.randn(n, generator=g, dtype=torch.float64) * 1e-3 for v in values]
    exact[0][::7] = values[0][::7]
    values[1][::13] = math.nan
    t1 = (torch.rand(n, generator=g) * 1e-3).to(torch.float64)
    t1[::17] = math.inf
    tol = [torch.full((n,), 2e-3, dtype=torch.float64), t1]
    ref = [torch.full((n,), 1e-3, dtype=torch.float64) for _ in range(2)]
    return pts, values, exact, tol, ref


def _synthetic(
    n: int, chunk: int, d: int, largest: bool = True, sample: int = DEFAULT_SAMPLE
) -> ErrorMapsResult:
    """:func:`_data` fed to a sink in chunks of ``chunk`` points."""
    pts, values, exact, tol, ref = _data(n, d)
    names = tuple(f"v{j}" for j in range(d))
    layout = Layout(("a", "b"), ("derivative", "equation"), names, (-1.0,) * d, (1.0,) * d, n)
    sink = ErrorMaps(worst=5, largest=largest, sample=sample)
    sink.start(layout)
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        err = [(v[sl] - e[sl]).abs() for v, e in zip(values, exact, strict=True)]
        view = ChunkView(
            s,
            [p[sl] for p in pts],
            [v[sl] for v in values],
            [e[sl] for e in exact],
            err,
            [t[sl] for t in tol],
            [r[sl] for r in ref],
        )
        sink.merge(sink.partial(view))
    return sink.result()


def _same(a: ErrorMapsResult, b: ErrorMapsResult) -> None:
    for qa, qb in zip(a.quantities, b.quantities, strict=True):
        pairs = [(qa, qb)]
        if qa.solves is not None:
            assert qb.solves is not None
            pairs.append((qa.solves, qb.solves))
        for x, y in pairs:
            assert x.worst == y.worst
            assert (x.count, x.failing, x.undefined) == (y.count, y.failing, y.undefined)
            for ga, gb in zip(x.profiles + x.pairs, y.profiles + y.pairs, strict=True):
                assert torch.equal(ga.max_ratio.nan_to_num(-1.0), gb.max_ratio.nan_to_num(-1.0))
                for key in ("count", "failing", "undefined"):
                    assert torch.equal(getattr(ga, key), getattr(gb, key)), key


@pytest.mark.parametrize("d", [1, 2, 3])
def test_bins_equal_a_brute_force_count_whatever_the_chunk(d: int) -> None:
    n = 6000
    whole = _synthetic(n, n, d)
    _same(whole, _synthetic(n, 777, d))
    _same(_synthetic(300, 300, d), _synthetic(300, 1, d))
    pts, values, exact, tol, _ = _data(n, d)
    for q, qmap in enumerate(whole.quantities):
        defined = torch.isfinite(values[q]) & torch.isfinite(exact[q])
        den = torch.where(torch.isfinite(tol[q]), tol[q], torch.zeros_like(tol[q]))
        ratio = ((values[q] - exact[q]).abs() / den).nan_to_num(nan=0.0, posinf=math.inf)
        grids = qmap.pairs if d >= 2 else qmap.profiles
        for grid in grids:
            cell = torch.zeros(n, dtype=torch.int64)
            for a, bins in zip(grid.axes, grid.shape, strict=True):
                b = ((pts[a] + 1) / 2 * bins).floor().clamp(0, bins - 1).long()
                cell = cell * bins + b
            flat_max = grid.max_ratio.flatten()
            for c in torch.unique(cell).tolist()[:200]:
                here = cell == c
                ok = here & defined
                expect = float(ratio[ok].max()) if bool(ok.any()) else math.nan
                got = float(flat_max[c])
                assert got == expect or (math.isnan(got) and math.isnan(expect))
                assert int(grid.count.flatten()[c]) == int(here.sum())
                assert int(grid.undefined.flatten()[c]) == int((here & ~defined).sum())
                assert int(grid.failing.flatten()[c]) == int((ok & (ratio > 1)).sum())
        assert qmap.undefined == int((~defined).sum()) and qmap.count == n
        # The worst points: largest ratio first, ties to the lowest index.
        key = torch.where(defined, ratio, torch.full_like(ratio, -math.inf))
        order = sorted(range(n), key=lambda i: (-float(key[i]), i))[:5]
        assert [w.index for w in qmap.worst] == order
        assert [w.ratio for w in qmap.worst] == [float(key[i]) for i in order]


def _reference_cells(pts: list[torch.Tensor], grid: Grid) -> torch.Tensor:
    """Each point's bin in ``grid`` (flattened), the plain way (the box is [-1, 1]^d)."""
    cell = torch.zeros(pts[0].numel(), dtype=torch.int64)
    for a, bins in zip(grid.axes, grid.shape, strict=True):
        b = ((pts[a] + 1) / 2 * bins).floor().clamp(0, bins - 1).long()
        cell = cell * bins + b
    return cell


def _kept_max(
    cell: torch.Tensor, key: torch.Tensor, in_sample: torch.Tensor, cells: int
) -> torch.Tensor:
    """Each bin's largest ratio as the sink keeps it, the plain way: over the sampled points,
    the failing points and the bin's first defined point (``key``: each point's ratio, -inf
    where the quantity is undefined; -inf where a bin has no defined point)."""
    n = key.numel()
    defined = key > -math.inf
    first = torch.full((cells,), n).scatter_reduce(
        0, cell[defined], torch.arange(n)[defined], reduce="amin"
    )
    binned = in_sample | (key > 1)
    binned[first[first < n]] = True
    empty = torch.full((cells,), -math.inf, dtype=torch.float64)
    return empty.scatter_reduce(0, cell[binned], key[binned], reduce="amax")


@pytest.mark.parametrize("d", [2, 3])
def test_failing_bins_are_exact_and_passing_bins_come_from_the_sample(d: int) -> None:
    n, sample = 50_000, 10_000
    results = [_synthetic(n, chunk, d, sample=sample) for chunk in (n, 4999)]
    _same(*results)  # the sample depends on the points' indices, not on the chunks
    whole = results[0]
    stride = whole.stride
    assert stride == 5
    pts, values, exact, tol, _ = _data(n, d)
    index = torch.arange(n)
    in_sample = (index // SAMPLE_BLOCK) % stride == 0
    assert sampled_points(n, stride) == int(in_sample.sum()) < n // 4
    lower = 0
    for q, qmap in enumerate(whole.quantities):
        defined = torch.isfinite(values[q]) & torch.isfinite(exact[q])
        den = torch.where(torch.isfinite(tol[q]), tol[q], torch.zeros_like(tol[q]))
        ratio = ((values[q] - exact[q]).abs() / den).nan_to_num(nan=0.0, posinf=math.inf)
        key = torch.where(defined, ratio, torch.full_like(ratio, -math.inf))
        order = torch.sort(key, descending=True, stable=True).indices[:5]
        assert [w.index for w in qmap.worst] == order.tolist()  # exact, not sampled
        for grid in qmap.pairs:
            cell = _reference_cells(pts, grid)
            cells = grid.count.numel()
            empty = torch.full((cells,), -math.inf, dtype=torch.float64)
            every = empty.scatter_reduce(0, cell, key, reduce="amax")
            from_sample = _kept_max(cell, key, in_sample, cells)
            got = grid.max_ratio.flatten().nan_to_num(nan=-math.inf, posinf=math.inf)
            fails = every > 1
            assert bool(fails.any()) and bool((~fails & (grid.count.flatten() > 0)).any())
            assert torch.equal(got[fails], every[fails])  # failing bins: every point
            assert torch.equal(got, from_sample) and bool((got <= every).all())
            lower += int((got < every).sum())
            assert torch.equal(grid.count.flatten(), torch.bincount(cell, minlength=cells))
            failing = torch.bincount(cell[key > 1], minlength=cells)
            assert torch.equal(grid.failing.flatten(), failing)
            # Every bin with a defined point has a ratio (its first defined point's, if need be).
            has_defined = torch.bincount(cell[defined], minlength=cells) > 0
            assert bool((got[has_defined] > -math.inf).all())
    assert lower > 100  # passing bins' largest ratios are the sample's, below the exact ones


def test_the_sample_holds_every_point_up_to_its_size() -> None:
    n = 6000
    assert _synthetic(n, 777, 2, sample=n).stride == 1
    _same(_synthetic(n, 777, 2, sample=n), _synthetic(n, n, 2))
    assert _synthetic(n, n, 2, sample=n - 1).stride == 2
    assert sampled_points(n, 1) == n and sampled_points(n, 0) == 0
    assert sampled_points(3 * SAMPLE_BLOCK + 5, 2) == 2 * SAMPLE_BLOCK
    with pytest.raises(ValueError):
        ErrorMaps(sample=0)


def _feed(
    layout: Layout,
    pts: list[torch.Tensor],
    values: torch.Tensor,
    error: torch.Tensor,
    tol: torch.Tensor,
    chunk: int,
    **kw: Any,
) -> ErrorMaps:
    """One quantity's values (exact 0, so ``error`` is ``|values|`` where defined) fed to a
    sink in chunks of ``chunk`` points."""
    sink = ErrorMaps(worst=2, solves=False, **kw)
    sink.start(layout)
    for s in range(0, layout.n, chunk):
        sl = slice(s, s + chunk)
        e, t = error[sl], tol[sl]
        view = ChunkView(s, [p[sl] for p in pts], [values[sl]], [0 * e], [e], [t], [t])
        sink.merge(sink.partial(view))
    return sink


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("chunk", [3 * SAMPLE_BLOCK, 1000])
def test_a_bin_whose_first_point_is_undefined_has_its_first_defined_points_ratio(
    chunk: int, lazy: bool
) -> None:
    # Block 0 (the sample: stride 3) lies in bin 0; the later blocks, not sampled, in bin 3,
    # whose first point is undefined. Its ratio is its first defined point's (0.1), the
    # largest of the sample and of that point, not none.
    n = 3 * SAMPLE_BLOCK
    x = torch.full((n,), -0.9, dtype=torch.float64)
    x[SAMPLE_BLOCK:] = 0.9
    error = torch.zeros(n, dtype=torch.float64)
    error[SAMPLE_BLOCK:] = torch.linspace(2e-4, 1e-3, n - SAMPLE_BLOCK, dtype=torch.float64)
    values = error.clone()
    values[SAMPLE_BLOCK] = math.nan
    tol = torch.full((n,), 2e-3, dtype=torch.float64)
    layout = Layout(("a",), ("derivative",), ("x",), (-1.0,), (1.0,), n, lambda a, b: [x[a:b]])
    sink = _feed(layout, [x], values, error, tol, chunk, profile_bins=4, sample=SAMPLE_BLOCK)
    assert sink.stride == 3
    prof = sink.result().quantities[0].profiles[0]
    assert prof.count.tolist() == [SAMPLE_BLOCK, 0, 0, n - SAMPLE_BLOCK]
    assert prof.undefined.tolist() == [0, 0, 0, 1]
    first_defined = float(error[SAMPLE_BLOCK + 1] / tol[0])
    assert prof.max_ratio[0] == 0 and prof.max_ratio[3] == first_defined
    assert bool(torch.isnan(prof.max_ratio[1:3]).all())


def _undefined_first_and_everywhere() -> tuple[Layout, list[torch.Tensor], torch.Tensor]:
    """Points on [-1, 1]^2 and one quantity's value (its error: exact 0), for 4 x 4 bins and
    a sample of blocks 0 and 3 (stride 3): block 0 lies where x < 0.5 and the quantity is
    undefined where x < -0.5 (at every point of those bins in the run); blocks 1 to 5 lie
    where x >= -0.5, block 3 (sampled) where x < 0.5. So the bins of x >= 0.5 have no sampled
    point, and the first point of bin (3, 0), at the start of block 1, is undefined, its
    next point 1,500 points later."""
    n = 6 * SAMPLE_BLOCK
    g = torch.Generator().manual_seed(5)
    block = torch.arange(n) // SAMPLE_BLOCK
    lo = torch.tensor([-1.0, -0.5, -0.5, -0.5, -0.5, -0.5], dtype=torch.float64)[block]
    hi = torch.tensor([0.5, 1.0, 1.0, 0.5, 1.0, 1.0], dtype=torch.float64)[block]
    x = lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)
    y = torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1
    x[SAMPLE_BLOCK], y[SAMPLE_BLOCK] = 0.75, -0.75
    soon = torch.arange(n) < SAMPLE_BLOCK + 1500
    hide = soon & (x >= 0.5) & (y < -0.5)
    hide[SAMPLE_BLOCK] = False
    y[hide] = -y[hide]  # (into bin (3, 3))
    values = torch.rand(n, generator=g, dtype=torch.float64) * 1e-3  # ratios below 0.5
    values[x < -0.5] = math.nan
    values[SAMPLE_BLOCK] = math.nan
    layout = Layout(
        ("a",),
        ("derivative",),
        ("x", "y"),
        (-1.0, -1.0),
        (1.0, 1.0),
        n,
        lambda a, b: [x[a:b], y[a:b]],
    )
    return layout, [x, y], values


def test_each_bin_with_a_defined_point_has_a_ratio_and_lazy_counts_still_skip() -> None:
    layout, pts, values = _undefined_first_and_everywhere()
    n = layout.n
    error = values.nan_to_num(nan=0.0)
    tol = torch.full((n,), 2e-3, dtype=torch.float64)
    key = torch.where(torch.isfinite(values), error / tol, torch.full_like(error, -math.inf))
    kw: dict[str, Any] = {"pair_bins": (4, 4), "sample": 2 * SAMPLE_BLOCK}
    eager = [_feed(layout, pts, values, error, tol, c, **kw) for c in (n, 1000, 777)]
    results = [s.result() for s in eager]
    grid = results[0].quantities[0].pair("x", "y")
    assert eager[0].stride == 3
    cell = _reference_cells(pts, grid)
    in_sample = (torch.arange(n) // SAMPLE_BLOCK) % 3 == 0
    got = grid.max_ratio.nan_to_num(nan=-math.inf)
    assert torch.equal(got.flatten(), _kept_max(cell, key, in_sample, 16))
    # Bin (3, 0): its first defined point's ratio; the bins of x < -0.5: none, all undefined.
    first = int(torch.nonzero((cell == 12) & (key > -math.inf))[0])
    assert first > SAMPLE_BLOCK + 1500 and float(got[3, 0]) == float(key[first])
    assert int(grid.undefined[3, 0]) == 1 and bool((got[1:] > -math.inf).all())
    assert bool((got[0] == -math.inf).all()) and torch.equal(grid.undefined[0], grid.count[0])
    # A lazy_counts sink bins the chunk with that point (it has no failing or undefined
    # point), and leaves every later one for later: the bins undefined at every point do not
    # keep it binning every chunk. Its maps are the same.
    for chunk in (1000, 777):
        lazy = _feed(layout, pts, values, error, tol, chunk, lazy_counts=True, **kw)
        assert lazy._skipped[-1] == (-(-(first + 1) // chunk) * chunk, n)
        quick = lazy.result(counts=False).quantities[0].pair("x", "y")
        assert torch.equal(quick.max_ratio.nan_to_num(-1.0), grid.max_ratio.nan_to_num(-1.0))
        assert torch.equal(quick.undefined, grid.undefined)
        assert torch.equal(quick.count > 0, grid.count > 0)
        results.append(lazy.result())
    for other in results[1:]:
        _same(results[0], other)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_counts_only_maps_count_the_same_for_less(d: int) -> None:
    full = _synthetic(6000, 6000, d)
    for chunk in (6000, 777):
        counts = _synthetic(6000, chunk, d, largest=False)
        for a, b in zip(full.quantities, counts.quantities, strict=True):
            for x, y in ((a, b), (a.solves, b.solves)):
                if x is None or y is None:
                    assert x is None and y is None
                    continue
                assert (x.count, x.failing, x.undefined) == (y.count, y.failing, y.undefined)
                assert x.failing > 0 and y.max_ratio == x.max_ratio  # the largest, failing
                assert y.worst == ()
                for ga, gb in zip(x.profiles + x.pairs, y.profiles + y.pairs, strict=True):
                    assert bool(torch.isnan(gb.max_ratio).all())
                    for key in ("count", "failing", "undefined"):
                        assert torch.equal(getattr(ga, key), getattr(gb, key)), key


@pytest.mark.parametrize("chunk", [50_000, 3000, 7])
def test_worst_points_break_ties_by_index_whatever_the_chunk(chunk: int) -> None:
    # Every ratio of "flat" is 0.5 and of "zero" 0: the worst are the first points; "step"
    # has its largest ratio at a few late points, tied, and 0.25 elsewhere.
    n = 50_000 if chunk != 7 else 700
    pts = [torch.linspace(0, 1, n, dtype=torch.float64), torch.rand(n, dtype=torch.float64)]
    one = torch.ones(n, dtype=torch.float64)
    step = torch.full((n,), 0.25, dtype=torch.float64)
    late = [n - 300, n - 200, n - 100, n - 5]
    step[late] = 3.0
    errs = [0.5 * one, 0 * one, step]
    layout = Layout(
        ("flat", "zero", "step"), ("derivative",) * 3, ("x", "y"), (0.0, 0.0), (1.0, 1.0), n
    )
    sink = ErrorMaps(worst=6)
    sink.start(layout)
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        e = [x[sl] for x in errs]
        view = ChunkView(
            s, [p[sl] for p in pts], e, [0 * x for x in e], e, [one[sl]] * 3, [one[sl]] * 3
        )
        sink.merge(sink.partial(view))
    result = sink.result()
    assert [w.index for w in result.quantity("flat").worst] == list(range(6))
    assert [w.index for w in result.quantity("zero").worst] == list(range(6))
    assert [w.index for w in result.quantity("step").worst] == [*late, 0, 1]
    assert [w.ratio for w in result.quantity("step").worst] == [3.0] * 4 + [0.25] * 2
    assert result.quantity("step").failing == 4


def test_results_do_not_depend_on_the_chunk_size(tmp_path: Path) -> None:
    results = []
    for chunk in (2000, 97):
        _, maps = _verify_maps(tmp_path, "X > 0.9", chunk_size=chunk)
        results.append(maps)
    _same(*results)
    three = []
    for chunk in (20000, 1500):
        job = prepare_check(
            "exp(-t)*sin(pi*x)*cos(pi*y)", ["x=0:1", "y=0:1", "t=0:1"], n=20000, chunk_size=chunk
        )
        sink = ErrorMaps()
        job.run(sinks=[sink])
        three.append(sink.result())
    _same(*three)


def test_memory_does_not_grow_with_n() -> None:
    sizes, pickled = [], []
    for n in (10_000, 1_000_000):
        job = prepare_check("sin(x)*y", ["x=0:1", "y=0:1"], n=n, order=1)
        sink = ErrorMaps()
        job.run(sinks=[sink])
        result = sink.result()
        assert result.quantities[0].count == n
        sizes.append(sink.nbytes())
        pickled.append(len(pickle.dumps(result)))
    # The same bins; at n = 10^4 some are still empty, so the sink also keeps a flag per bin
    # and quantity (d/dx, d/dy) saying where a quantity has no ratio yet.
    assert sizes[0] == sizes[1] + 2 * 64 * 64 and sizes[0] < 2_000_000
    assert abs(pickled[0] - pickled[1]) < 2_000  # the same tensors; only numbers differ


def test_the_result_pickles_and_reads_as_plain_numbers(tmp_path: Path) -> None:
    _, maps = _verify_maps(tmp_path, "X > 0.9", n=500)
    back = pickle.loads(pickle.dumps(maps))
    _same(maps, back)
    q = back.quantity("eq1")
    assert isinstance(q, QuantityMap) and back.variables == ("x", "t")
    grid = q.pair("t", "x")
    assert grid.variables == ("x", "t")  # the domain's order, whichever way asked
    assert len(grid.edges[0]) == grid.shape[0] + 1 and float(grid.edges[0][-1]) == 1.0
    assert grid.max_ratio.dtype == torch.float64 and grid.count.dtype == torch.int64
    assert float(grid.centers(1)[0]) == pytest.approx(0.5 / grid.shape[1])
    assert int(grid.count.sum()) == 500 and grid.max_ratio.tolist()


def test_ranked_pairs_put_the_localizing_variables_first() -> None:
    # Three variables; the error lives near y = 1 and t = 0 whatever x.
    n, d = 20000, 3
    g = torch.Generator().manual_seed(1)
    pts = [torch.rand(n, generator=g, dtype=torch.float64) for _ in range(d)]
    err = torch.exp(-40 * ((pts[1] - 1) ** 2 + pts[2] ** 2)) + 1e-3
    layout = Layout(("f",), ("derivative",), ("x", "y", "t"), (0.0,) * 3, (1.0,) * 3, n)
    sink = ErrorMaps()
    sink.start(layout)
    one = torch.ones(n, dtype=torch.float64)
    sink.merge(sink.partial(ChunkView(0, pts, [err], [0 * one], [err], [one], [one])))
    qmap = sink.result().quantities[0]
    ranked = ranked_pairs(qmap)
    assert ranked[0] == (1, 2) and sorted(ranked) == [(0, 1), (0, 2), (1, 2)]
    assert ranked_pairs(_verify_maps_for_profile_only()) == []


def _verify_maps_for_profile_only() -> QuantityMap:
    job = prepare_check("sin(x)", ["x=0:1"], n=100, order=1)
    sink = ErrorMaps()
    job.run(sinks=[sink])
    return sink.result().quantities[0]


def test_cells_of_a_map_gather_whole_bins() -> None:
    job = prepare_check("sin(x)*y", ["x=0:1", "y=0:1"], n=3000, order=1)
    sink = ErrorMaps(pair_bins=(80, 48))
    job.run(sinks=[sink])
    grid = sink.result().quantities[0].pairs[0]
    cells = map_cells(grid)
    assert cells["count"].shape == (40, 12) and int(cells["count"].sum()) == 3000
    # Cell (0, 0) holds exactly the 2 x 4 bins of x < 1/40, y < 1/12.
    assert int(cells["count"][0, 0]) == int(grid.count[:2, :4].sum())


# -- the terminal map ----------------------------------------------------------------------


def test_a_failing_verify_prints_a_map_of_where_it_fails(tmp_path: Path) -> None:
    target = _buggy(tmp_path, "X > 0.9")
    res = run_cli("verify", str(tmp_path / target), *HEAT_ARGS)
    assert res.exit_code == 1
    out = res.stdout
    assert "eq1 fails at" in out and "where, over x, t:" in out
    lines = out.splitlines()
    top = next(i for i, line in enumerate(lines) if line.lstrip().startswith("┌"))
    rows = lines[top + 1 : top + 13]
    assert len(rows) == 12 and all(r.count("│") == 2 for r in rows)
    # The columns of x > 0.9 (the last 4 of 40) hold every failing cell.
    cols = [r[r.index("│") + 1 : r.rindex("│")] for r in rows]
    assert all(len(c) == 40 for c in cols)
    failing = {j for c in cols for j, ch in enumerate(c) if ch in "░▒▓█"}
    assert failing and min(failing) >= 35
    assert "█" in "".join(c[36:] for c in cols)
    assert "·" in "".join(c[:34] for c in cols)
    # The map sits under the table, above the diagnosis and the final line.
    assert out.index("┌") > out.index("equations") and out.index("┌") < out.index("diagnosis")


def test_a_1d_failure_map_is_a_strip_with_the_variable_range() -> None:
    res = run_cli("check", "log(x)", "-d", "x=-1:3", "--order", "1")
    assert res.exit_code == 1
    out = res.stdout
    assert "d/dx is undefined (NaN or inf) at" in out and "where, along x:" in out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.endswith("where, along x:"))
    top, strip, bottom, axis = lines[head + 1 : head + 5]
    assert top == "┌" + "─" * 40 + "┐" and bottom == "└" + "─" * 40 + "┘"
    inner = strip[1:-1]
    assert len(inner) == 40 and set(inner[:10]) == {"?"} and set(inner[10:]) == {"·"}
    assert axis.startswith("-1") and axis.endswith("3") and " x " in axis


def test_no_map_for_json_passing_checks_or_three_variables(tmp_path: Path) -> None:
    target = str(tmp_path / _buggy(tmp_path, "X > 0.9"))
    res = run_cli("verify", target, *HEAT_ARGS, "-f", "json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["status"] == "fail" and "where, over" not in res.stdout + res.stderr
    ok = run_cli("check", "x1**2*sin(x2)", "-d", "x1=0:1", "-d", "x2=0:1")
    assert ok.exit_code == 0 and "where, " not in ok.stdout and "┌" not in ok.stdout
    three = run_cli("check", "log(x)*y*z", "-d", "x=-1:1,y=0:1,z=0:1", "--order", "1")
    assert three.exit_code == 1 and "where, " not in three.stdout


def test_an_ascii_stream_gets_an_ascii_map(tmp_path: Path) -> None:
    target = str(tmp_path / _buggy(tmp_path, "X > 0.9"))
    script = Path(sys.executable).with_name("pinncheck")
    p = subprocess.run(
        [str(script), "verify", target, *HEAT_ARGS],
        capture_output=True,
        timeout=180,
        env={**os.environ, "PYTHONIOENCODING": "ascii", "NO_COLOR": "1"},
    )
    assert p.returncode == 1
    out = p.stdout.decode("ascii")  # raises on any non-ASCII byte
    assert "where, over x, t:" in out and "\\u" not in out
    rows = [line for line in out.splitlines() if line.rstrip().endswith("|") and "#" in line]
    assert len(rows) >= 6
    assert all(row[row.index("|") + 1 :].index("#") >= 35 for row in rows)


def test_marks_follow_the_encoding() -> None:
    assert marks_for("utf-8") is UNICODE and marks_for("ascii") is ASCII
    assert marks_for("cp1252") is ASCII and marks_for(None) is ASCII
    for marks in (UNICODE, ASCII):
        assert len({marks.passing, marks.undefined, marks.empty, *marks.shades}) == 7
    job = prepare_check("log(x)", ["x=-1:1"], n=300, order=1)
    sink = ErrorMaps()
    job.run(sinks=[sink])
    maps = sink.result()
    text = render_map(maps, maps.quantities[0], ASCII).plain
    text.encode("ascii")
    assert "?" in text and "-1" in text


def test_the_cli_sink_keeps_counts_unless_a_plot_reuses_it(tmp_path: Path) -> None:
    from pinncheck._termmap import sinks_for

    assert sinks_for(False, ["x"]) == [] and sinks_for(True, ["x", "y", "z"]) == []
    (counts,) = sinks_for(True, ["x", "t"])
    (full,) = sinks_for(True, ["x", "t"], plot=True)
    assert not counts.largest and counts.worst == 0
    assert full.largest and full.worst == 3
    # Both draw the same map.
    target = _buggy(tmp_path, "X > 0.9")
    job = prepare_verify(target, n=1500, base_dir=tmp_path, **HEAT)
    job.run(sinks=[counts, full])
    a, b = counts.result(), full.result()
    assert render_map(a, a.quantities[0]).plain == render_map(b, b.quantities[0]).plain
    assert len(b.quantities[0].worst) == 3 and a.quantities[0].worst == ()


def test_counts_only_sinks_skip_quiet_chunks_and_count_them_when_a_map_is_asked(
    tmp_path: Path,
) -> None:
    # Chunks of 16 points: most hold no point with x > 0.97, so a counts-only sink skips
    # them while they stream; the map then counts their points again from the seed, and the
    # counts equal those of a sink that binned every chunk.
    target = _buggy(tmp_path, "X > 0.97")
    runs = []
    for largest in (False, True):
        job = prepare_verify(target, n=800, base_dir=tmp_path, chunk_size=16, **HEAT)
        sink = ErrorMaps(worst=0, largest=largest, solves=False)  # (as verify's CLI builds it)
        report = job.run(sinks=[sink])
        skipped = len(sink._skipped)
        runs.append((report, sink.result(), skipped))
    (report, quick, skipped), (_, full, none_skipped) = runs
    assert report.status == "fail" and skipped > 10 and none_skipped == 0
    for a, b in zip(quick.quantities, full.quantities, strict=True):
        for ga, gb in zip(a.profiles, b.profiles, strict=True):
            assert torch.equal(ga.count, gb.count) and int(ga.count.sum()) == 800
            assert torch.equal(ga.failing, gb.failing) and torch.equal(ga.undefined, gb.undefined)
    assert quick.quantities[0].failing > 0


def test_a_passing_run_leaves_every_chunk_to_the_counts_only_sink() -> None:
    job = prepare_check("sin(x)*exp(y)", ["x=0:1", "y=0:1"], n=4000, chunk_size=500)
    sink = ErrorMaps(worst=0, largest=False)
    report = job.run(sinks=[sink])
    assert report.status == "pass"
    assert sink._skipped == [(0, 4000)]  # (the chunks, one after the other, in one range)
    assert int(sink.result().quantities[0].profiles[0].count.sum()) == 4000


def _lazy_and_eager(job_for: Any, **kw: Any) -> tuple[ErrorMaps, ErrorMaps]:
    """The same run fed to a lazy_counts sink and to one that counts every chunk."""
    sinks = []
    for lazy in (True, False):
        sink = ErrorMaps(pair_bins=(8, 8), profile_bins=16, worst=3, lazy_counts=lazy, **kw)
        job_for().run(sinks=[sink])
        sinks.append(sink)
    return sinks[0], sinks[1]


@pytest.mark.parametrize("case", ["pass", "fail", "undefined"])
def test_lazy_counts_leave_quiet_chunks_for_later_and_change_nothing_else(
    tmp_path: Path, case: str
) -> None:
    target = _buggy(tmp_path, "X > 0.999")  # (a failing point in a few chunks of 250)
    jobs = {
        "pass": lambda: prepare_check("sin(x)*exp(y)", ["x=0:1", "y=0:1"], n=6000, chunk_size=250),
        "fail": lambda: prepare_verify(target, n=6000, base_dir=tmp_path, chunk_size=250, **HEAT),
        "undefined": lambda: prepare_check(
            "log(x)*y", ["x=-0.001:1", "y=0:1"], n=6000, chunk_size=250
        ),
    }
    # (verify does not test whether its solution solves the PDE: no solves map, as in its CLI)
    lazy, eager = _lazy_and_eager(jobs[case], sample=1000, solves=case != "fail")
    # Chunks left out once every bin had a point; with failing or undefined points in most
    # chunks, fewer are.
    left_out = sum(b - a for a, b in lazy._skipped)
    assert left_out >= (3000 if case == "pass" else 250), left_out
    assert eager._skipped == []
    quick = lazy.result(counts=False)
    exact = eager.result()
    for a, b in zip(quick.quantities, exact.quantities, strict=True):
        assert (a.count, a.failing, a.undefined, a.worst) == (
            b.count,
            b.failing,
            b.undefined,
            b.worst,
        )
        assert a.count == 6000
        for ga, gb in zip(a.profiles + a.pairs, b.profiles + b.pairs, strict=True):
            assert torch.equal(ga.max_ratio.nan_to_num(-1.0), gb.max_ratio.nan_to_num(-1.0))
            assert torch.equal(ga.failing, gb.failing) and torch.equal(ga.undefined, gb.undefined)
            # Counts: a lower bound, zero exactly where the bin has no point.
            assert torch.equal(ga.count > 0, gb.count > 0) and bool((ga.count <= gb.count).all())
    assert lazy._skipped  # still to count; a result with counts counts them, exactly
    counted = lazy.result()
    assert lazy._skipped == []
    for a, b in zip(counted.quantities, exact.quantities, strict=True):
        for ga, gb in zip(a.profiles + a.pairs, b.profiles + b.pairs, strict=True):
            assert torch.equal(ga.count, gb.count)
