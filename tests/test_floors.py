"""The structural lower bounds of the running error bound (pinncheck._floors): never above the
bound itself, and well above a value's own rounding where a formula cancels inside."""

from __future__ import annotations

import pytest
import sympy
import torch

from pinncheck._autograd import multi_indices
from pinncheck._bounds import UNIT_ROUNDOFF, run_bounded
from pinncheck._check import prepare_check
from pinncheck._domain import Domain
from pinncheck._engine import Plan, Programs, Term, _exact_values, symbols_of
from pinncheck._floors import Floors
from pinncheck._sample import sample_box

CASES = [
    ("-tanh((x-0.5*t)/0.02)*exp(-x**2) + log(1+x**2+t**2)", ["x=-1:1", "t=0:1"]),
    ("0.25 - 0.5*tanh(0.5*(x - 0.25*t)/0.1)", ["x=-1:1", "t=0:1"]),
    ("sin(x)/x", ["x=1e-3:1"]),
    ("(exp(x) - 1 - x)/x**2", ["x=1e-3:1"]),
    ("1/(1 - x**2)", ["x=0:0.999"]),
    ("sqrt(1 + x**2 + y**2)*(x - y)**3", ["x=-2:2", "y=-2:2"]),
    ("sigmoid(20*x - 5*y)", ["x=0:1", "y=0:1"]),
    ("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"]),
    # Variables that are never negative (their magnitudes are not taken), a saturated front
    # (tanh rounds to 1: its cancelling sums are exactly 0), sums that cannot cancel.
    ("-tanh((x-0.5*t)/0.02)*exp(-x**2) + log(1+x**2+t**2)", ["x=0:1", "t=0:1"]),
    ("x*tanh(x/0.02)**3 - tanh(y/0.05)/(1 + y**2)", ["x=0.5:1", "y=0.5:2"]),
    ("(x - y)**2*exp(x + y) + x/(x + y)", ["x=0:1", "y=0:1"]),
]


def _programs(expr: str, domain: list[str]) -> Programs:
    job = prepare_check(expr, domain, n=1000)
    syms = symbols_of(job.domain)
    terms = [Term("f", a) for a in multi_indices(len(job.domain), 2)]
    exact = {t: sympy.diff(job.parsed, *[syms[i] for i in t.alpha]) for t in terms}
    return Programs(Plan(job.domain, {"f": job.parsed}, terms, exact))


@pytest.mark.parametrize(("expr", "domain"), CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_floors_never_exceed_the_running_bound(expr: str, domain: list[str], dtype: str) -> None:
    progs = _programs(expr, domain)
    u = UNIT_ROUNDOFF[dtype]
    pts = sample_box(_domain(expr, domain), 3, 0, 20000)
    ex, kept = _exact_values(progs, pts)
    floors = progs.floors.lower(pts, kept, u) if progs.floors else [None] * len(ex)
    _, bounds = run_bounded(progs.exact, pts, [x.abs() * u for x in pts], u)
    for floor, bound in zip(floors, bounds, strict=True):
        if floor is None:
            continue
        finite = torch.isfinite(bound)
        assert bool((floor[finite] <= bound[finite] * (1 + 1e-12)).all())
        assert bool((floor >= 0).all())


def _domain(expr: str, domain: list[str]) -> Domain:
    return prepare_check(expr, domain, n=10).domain


@pytest.mark.parametrize(("expr", "domain"), CASES)
def test_the_fused_bounds_equal_the_term_by_term_ones(expr: str, domain: list[str]) -> None:
    # Two computations of one formula: the steps the exact program runs (Floors.fused) and the
    # fallback that reads the program's intermediate values (used where a sum is not finite).
    progs = _programs(expr, domain)
    if not progs.floors:
        return
    pts = sample_box(_domain(expr, domain), 7, 0, 5000)
    _, sums = _exact_values(progs, pts)
    fused = progs.floors.lower(pts, sums, 1.0)
    every = torch.arange(5000)
    for floor, out in zip(progs.floors.outputs, fused, strict=True):
        if floor is None:
            continue
        assert out is not None
        again = progs.floors._careful(floor, pts, every)
        assert torch.allclose(out, again, rtol=1e-12, atol=0.0)


def test_prescaled_bounds_equal_the_scaled_sums() -> None:
    # A run's exact program can return the bounds times u*K already (Programs.exact_for).
    expr, domain = CASES[0]
    progs = _programs(expr, domain)
    pts = sample_box(_domain(expr, domain), 7, 0, 3000)
    u, factors = 2.0**-53, [20.0 + i for i in range(len(progs.terms))]
    _, sums = _exact_values(progs, pts)
    plain, _, _ = progs.floors.lower_checked(pts, sums, u, factors)
    _, scaled = _exact_values(progs, pts, progs.floors.scales(u, factors))
    ready, _, _ = progs.floors.lower_checked(pts, scaled, u, factors, prescaled=True)
    assert any(a is not None for a in plain)
    for a, b in zip(plain, ready, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-13, atol=0.0)


def test_floors_see_the_cancellation_of_a_tanh_front() -> None:
    # d/dx tanh(x/0.02) = 50*(1 - tanh**2): in the flat part the value is tiny but carries the
    # rounding of the 1 (about u), which u*|value| misses by orders of magnitude.
    expr, domain = "tanh(x/0.02)", ["x=0.2:1"]
    progs = _programs(expr, domain)
    assert progs.floors
    pts = sample_box(_domain(expr, domain), 5, 0, 2000)
    ex, kept = _exact_values(progs, pts)
    u = UNIT_ROUNDOFF["float64"]
    floor = progs.floors.lower(pts, kept, u)[0]  # d/dx
    assert floor is not None
    plain = ex[0].abs() * u
    assert float((floor > 1e6 * plain).float().mean()) > 0.9


def test_floors_hold_where_a_front_saturates() -> None:
    # x/0.02 >= 40: tanh rounds to exactly 1, so 1 - tanh**2 is 0 and so are the exact
    # derivatives, yet the running bound carries the rounding of tanh (the reference is off by
    # up to ~100u there). The floor reads it through the factors beside the zero sum; before,
    # 0 * inf there made it 0, and every such point needed the full bound.
    expr, domain = "tanh(x/0.02)", ["x=0.8:1"]
    progs = _programs(expr, domain)
    pts = sample_box(_domain(expr, domain), 5, 0, 2000)
    ex, kept = _exact_values(progs, pts)
    u = UNIT_ROUNDOFF["float64"]
    assert bool((ex[0] == 0).all()) and bool((ex[1] == 0).all())  # d/dx, d2/dx2
    floors = progs.floors.lower(pts, kept, u)
    _, bounds = run_bounded(progs.exact, pts, [x.abs() * u for x in pts], u)
    for floor, bound in zip(floors[:2], bounds[:2], strict=True):
        assert floor is not None
        assert bool((floor > 0).all())
        assert bool((floor <= bound).all())
        # within a small factor of the bound (it was 0, a factor of infinity, before)
        assert bool((bound <= 16 * floor).all())


def test_a_program_without_sums_has_no_floors() -> None:
    progs = _programs("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"])
    assert not progs.floors and progs.exact_run is progs.exact


def test_retaining_keeps_the_outputs_and_adds_the_read_values() -> None:
    x = sympy.Symbol("x", real=True)
    from pinncheck._evaluate import Program

    prog = Program([50 * (1 - sympy.tanh(x) ** 2) * sympy.exp(x)], [x], cse=True, inplace=True)
    floors = Floors(prog)
    assert floors
    kept_prog = floors.retaining()
    pts = [torch.linspace(0.1, 3, 7, dtype=torch.float64)]
    out = kept_prog.run(pts)
    assert torch.equal(out[0], prog.run(pts)[0])
    assert len(out) == 1 + len(floors.slots)
