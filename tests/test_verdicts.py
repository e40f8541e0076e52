"""Trustworthy verdicts: every figure and verdict here is checked against a truth computed in
the test itself with mpmath at high precision (numerical differentiation of functions written
with mpmath's own operations), never against pinncheck's reference."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import mpmath
import pytest
import sympy
import torch

from pinncheck import check, residual, verify
from pinncheck._compare import Probe

mpmath.mp.dps = 60


def _truth(f: Callable[..., mpmath.mpf], point: Sequence[float], orders: Sequence[int]) -> float:
    args = [mpmath.mpf(v) for v in point]
    if len(args) == 1:
        return float(mpmath.diff(f, args[0], orders[0]))
    return float(mpmath.diff(f, tuple(args), tuple(orders)))


def _reported_is_true(probe: Probe, f: Callable[..., mpmath.mpf], orders: Sequence[int]) -> float:
    """autograd's true error at a reported point, and the check that pinncheck reported it."""
    truth = _truth(f, probe.point, orders)
    true_error = abs(probe.autograd - truth)
    assert probe.error == pytest.approx(true_error, rel=1e-6, abs=1e-300)
    return true_error


def _sinc(x: mpmath.mpf) -> mpmath.mpf:
    return mpmath.sin(x) / x


@pytest.mark.parametrize("order", [2, 3, 4])
def test_sinc_near_zero_passes_as_ill_conditioned_with_true_errors(order: int) -> None:
    report = check("sin(x)/x", ["x=0:1"], order=order, n=2000)
    d = report.derivatives[order - 1]
    assert d.status == "pass"
    assert any("ill-conditioned" in w and d.name in w for w in report.warnings)
    # The reported largest error is autograd's true error there, not the reference's.
    assert d.stats.largest is not None and d.stats.largest.truth is not None
    true = _reported_is_true(d.stats.largest, _sinc, [order])
    assert d.stats.max_abs_error >= true


def test_atanh_near_one_reports_the_true_error_not_zero() -> None:
    # SymPy and torch both compute 1/(1-x**2): they agree with each other exactly, and both are
    # wrong. The report must show autograd's true error, and call the formula ill-conditioned.
    report = check("atanh(x)", ["x=0.9999999:0.99999999999"], order=1, n=1000)
    (d,) = report.derivatives
    assert d.status == "pass"
    assert any("ill-conditioned" in w for w in report.warnings)
    assert d.stats.max_reference_error > 0
    unsure = d.stats.unsure
    assert unsure is not None and unsure.truth is not None
    true = _reported_is_true(unsure, mpmath.atanh, [1])
    assert true > 0 and d.stats.max_abs_error >= true


def _steep(x: mpmath.mpf, t: mpmath.mpf) -> mpmath.mpf:
    front = -mpmath.tanh((x - t / 2) * 50) * mpmath.exp(-(x**2))
    return front + mpmath.log(1 + x**2 + t**2)


def test_steep_front_reports_autograd_true_error() -> None:
    report = check(
        "-tanh((x-0.5*t)/0.02)*exp(-x**2) + log(1+x**2+t**2)", ["x=0:1", "t=0:1"], n=2000
    )
    assert report.status == "pass"
    orders = {"d/dx": [1, 0], "d/dt": [0, 1], "d2/dx^2": [2, 0], "d2/dxdt": [1, 1]}
    for d in report.derivatives:
        if d.name in orders and d.stats.largest.truth is not None:
            true = _reported_is_true(d.stats.largest, _steep, orders[d.name])
            assert d.stats.max_abs_error >= true


# False alarms on correct code ------------------------------------------------------------


def test_large_float32_arguments_are_not_false_alarms() -> None:
    report = check("sin(50*x)", ["x=0:100"], order=2, n=100_000, dtype="float32")
    assert report.status == "pass", [d.stats.worst_ratio for d in report.derivatives]


def test_large_wave_speed_in_float32_is_not_a_false_alarm() -> None:
    report = residual(
        "u_tt - c**2*u_xx",
        "u = sin(x - c*t)",
        ["x = -2:2", "t = 0:1"],
        param=["c = 10000"],
        n=100_000,
        dtype="float32",
    )
    assert report.status == "pass"


def test_cancelling_travelling_wave_solves_numerically() -> None:
    report = residual(
        "u_t + c*u_x",
        "u = sin(k*(x-c*t))/(k*(x-c*t))",
        ["x = 0.1:1", "t = 0:1"],
        param=["c = 2", "k = 3"],
        symbolic_timeout=0,
    )
    assert report.status == "pass"
    assert report.equations[0].solves == "pass"


def test_a_non_solution_off_by_1e_minus_12_is_not_a_solution() -> None:
    # The exact residual is 1e-12 of the terms' scale: far above float64 rounding.
    report = residual(
        "u_t - u_xx - 1e-12*exp(-t)*sin(x)",
        "u = exp(-t)*sin(x)",
        ["x = 0:1", "t = 0:1"],
        symbolic_timeout=0,
    )
    assert report.equations[0].solves == "fail"


# Small amplitudes and detection near the noise ------------------------------------------------

HEAT = """
import torch

def d(y, x):
    return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]

def correct(x, u):
    g = d(u, x)
    return g[:, 1:2] - 0.1 * d(g[:, 0:1], x)[:, 0:1]

def no_u_xx(x, u):
    g = d(u, x)
    return g[:, 1:2] + 0 * d(g[:, 0:1], x)[:, 0:1]

EPS = 0.0

def scaled_u_xx(x, u):
    g = d(u, x)
    return g[:, 1:2] - 0.1 * (1 + EPS) * d(g[:, 0:1], x)[:, 0:1]
"""


def _heat(tmp_path, name: str, amplitude: str, dtype: str, eps: float = 0.0):  # type: ignore[no-untyped-def]
    path = tmp_path / f"heat_{abs(hash((name, amplitude, dtype, eps)))}.py"
    path.write_text(HEAT.replace("EPS = 0.0", f"EPS = {eps!r}"))
    return verify(
        f"{path}:{name}",
        pde="u_t - nu*u_xx",
        solution=f"u = {amplitude}*(sin(2*x + 1)*exp(-t) + x**3*t)",
        domain=["x = 0:1", "t = 0:1"],
        param=["nu = 0.1"],
        dtype=dtype,
    )


@pytest.mark.parametrize(("amplitude", "dtype"), [("1e-12", "float64"), ("1e-5", "float32")])
def test_small_amplitude_does_not_hide_a_deleted_term(tmp_path, amplitude: str, dtype: str) -> None:  # type: ignore[no-untyped-def]
    assert _heat(tmp_path, "correct", amplitude, dtype).status == "pass"
    assert _heat(tmp_path, "no_u_xx", amplitude, dtype).status == "fail"


@pytest.mark.parametrize(("dtype", "eps"), [("float64", 1e-12), ("float32", 3e-5)])
def test_bugs_near_the_noise_are_caught(tmp_path, dtype: str, eps: float) -> None:  # type: ignore[no-untyped-def]
    assert _heat(tmp_path, "scaled_u_xx", "1", dtype, eps=eps).status == "fail"
    assert _heat(tmp_path, "scaled_u_xx", "1", dtype, eps=0.0).status == "pass"


def test_tolerance_overrides_replace_the_model() -> None:
    loose = check("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"], n=200, rtol=1e-3, atol=1e-3)
    assert loose.passed and all(d.tolerance.override for d in loose.derivatives)
    w = loose.derivatives[0].stats.worst
    assert w is not None and w.tolerance == pytest.approx(1e-3 + 1e-3 * abs(w.exact))
    # An override tighter than the float64 reference can resolve is never a silent pass.
    tight = check("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"], n=200, atol=1e-30, rtol=0.0)
    assert tight.status == "fail"


def test_float32_rounding_of_the_points_is_allowed_for() -> None:
    torch.manual_seed(0)
    report = check("exp(3*x)*cos(7*y)", ["x=0:4", "y=-3:3"], order=3, dtype="float32", n=20_000)
    assert report.status == "pass", [(d.name, d.stats.worst_ratio) for d in report.derivatives]


def test_every_operation_has_an_error_bound_and_a_high_precision_value() -> None:
    from pinncheck import _bounds, _evaluate

    assert set(_evaluate._OPS) <= set(_bounds._OPS)
    report = check("Max(x, y) + Min(x, 2*y) + Heaviside(x - 0.5) + sech(x)", ["x=0:1", "y=0:1"])
    assert report.status == "pass"
    assert all(d.stats.max_reference_error < 1e-12 for d in report.derivatives)


def test_a_weighted_sum_bound_holds_against_exact_arithmetic() -> None:
    # wsum is emitted by pinncheck._floors, not by lowering: its rule is checked on its own,
    # against the sum computed exactly in rationals from the same float64 inputs.
    from fractions import Fraction

    from pinncheck._bounds import run_bounded
    from pinncheck._evaluate import Program, _Step

    x = sympy.Symbol("x", real=True)
    prog = Program([sympy.sin(x)], [x])
    n = prog.n_inputs + len(prog.steps)
    weights = (1.0, -3.3, 1e-3)
    step = _Step("wsum", (1, 0, 1), 0.1, weights=weights)
    ext = prog.extended([step], [n])
    g = torch.Generator().manual_seed(2)
    pts = [torch.rand(2000, generator=g, dtype=torch.float64) * 200 - 100]
    values, bounds = run_bounded(ext, [pts[0].clone()], [None], 2.0**-53)
    assert torch.equal(values[1], ext.run([pts[0].clone()])[1])
    sines = values[0].tolist()
    sine_bounds = bounds[0].tolist()
    for i, xi in enumerate(pts[0].tolist()):
        exact = (
            Fraction(weights[0]) * Fraction(sines[i])
            + Fraction(weights[1]) * Fraction(xi)
            + Fraction(weights[2]) * Fraction(sines[i])
            + Fraction(0.1)
        )
        # the sines' own errors are in the bound too; here only the sum's rounding counts
        carried = Fraction((abs(weights[0]) + abs(weights[2])) * sine_bounds[i])
        assert abs(Fraction(values[1][i].item()) - exact) <= Fraction(bounds[1][i].item()) - carried


def test_bounded_evaluation_gives_the_plain_values() -> None:
    import sympy

    from pinncheck._bounds import run_bounded
    from pinncheck._evaluate import Program
    from pinncheck._parse import parse_expression

    exprs = [
        "sin(2*x + 1)*exp(-t) + x**3*t - cosh(x)/t",
        "tanh(x/t)*sigmoid(x) + sqrt(x)*log(t) - atan(x)**2 + erf(t)*2**x",
        "asinh(x) + acosh(1 + t) + atanh(x/3) + asin(x/2) - acos(t/2) + tan(x)",
        "x**t + Abs(x - t)*sinh(t) - 1/(x*t) + erfc(x)",
    ]
    syms = [sympy.Symbol("x", real=True), sympy.Symbol("t", real=True)]
    pts = [torch.rand(64, dtype=torch.float64) + 0.5 for _ in syms]
    for text in exprs:
        expr = parse_expression(text)
        derivs = [expr, sympy.diff(expr, syms[0]), sympy.diff(expr, syms[1], 2)]
        prog = Program(derivs, syms, cse=True)
        plain = prog.run([p.clone() for p in pts])
        values, bounds = run_bounded(prog, [p.clone() for p in pts], [None, None], 2.0**-53)
        for a, b, bound in zip(plain, values, bounds, strict=True):
            assert torch.equal(a, b), text
            assert bool((bound > 0).all() and torch.isfinite(bound).all()), text


def _sample_entries() -> list[tuple[str, str, object]]:
    from pathlib import Path

    from pinncheck._checkfile import load_file

    root = Path(__file__).resolve().parent.parent / "samples"
    files = sorted(root.glob("*.toml")) + [root / "user_code" / "checks.toml"]
    out = []
    for f in files:
        for e in load_file(f):
            if e.kind in ("check", "residual", "verify") and e.expect == "pass":
                out.append((f"{f.name}:{e.name}", e.kind, e.job))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_no_false_alarm_on_the_samples_in_either_dtype(dtype: str) -> None:
    import dataclasses

    from pinncheck._options import DTYPES

    alarms = []
    entries = _sample_entries()
    assert len(entries) >= 20
    for label, _kind, job in entries:
        opts = job.options  # type: ignore[attr-defined]
        opts = dataclasses.replace(opts, dtype=DTYPES[dtype], dtype_name=dtype)
        report = dataclasses.replace(job, options=opts).run()  # type: ignore[type-var]
        if report.status != "pass":
            alarms.append(label)
    assert alarms == []


def test_sampled_bounds_do_not_depend_on_chunking() -> None:
    # Above ALL_BOUNDS_UP_TO points the full bound is computed at a sample chosen by global
    # index and where a verdict needs it: the statistics are those of one pass.
    from pinncheck._judge import ALL_BOUNDS_UP_TO

    n = ALL_BOUNDS_UP_TO + 5000
    args = ("-tanh((x-0.5*t)/0.02)*exp(-x**2)", ["x=0:1", "t=0:1"])
    whole = check(*args, n=n, order=2, chunk_size=n)
    parts = check(*args, n=n, order=2, chunk_size=4099)
    assert whole.passed and parts.passed
    for a, b in zip(whole.derivatives, parts.derivatives, strict=True):
        sa, sb = a.stats, b.stats
        assert sa.max_abs_error == sb.max_abs_error
        assert sa.max_reference_error == sb.max_reference_error
        assert sa.worst_index == sb.worst_index and sa.worst_ratio == sb.worst_ratio
        assert sa.unsure is not None and sb.unsure is not None
        assert sa.unsure.index == sb.unsure.index


def test_sampled_path_judges_a_derivative_that_is_zero_everywhere() -> None:
    # d2/dx1^2 of x1*sin(x2) is 0 exactly on both sides: 0/0 ratios are no error, not NaN that
    # hides the other points (and the run is past ALL_BOUNDS_UP_TO: the sampled path).
    from pinncheck._judge import ALL_BOUNDS_UP_TO

    report = check("x1*sin(x2)", ["x1=0:1", "x2=0:1"], n=ALL_BOUNDS_UP_TO + 3000, order=2)
    by = {d.name: d for d in report.derivatives}
    assert report.passed
    assert by["d2/dx1^2"].stats.worst_ratio == 0.0 and by["d2/dx1^2"].stats.max_abs_error == 0.0
    assert all(math.isfinite(d.stats.worst_ratio) for d in report.derivatives)


@pytest.mark.parametrize("extra", [-40000, 4000, 30000])
def test_a_residual_lost_in_rounding_is_inconclusive_on_every_path(extra: int) -> None:
    # At x ~ 1e6 in float32 the input's rounding alone (|x|*u ~ 0.06) moves sin(x) by more
    # than a tenth of the residual's terms: the check cannot see a missing term. Below
    # ALL_BOUNDS_UP_TO points every point has its full bound; above it, the sampled points
    # estimate the share (correct code's errors stay small, so few points are patched).
    from pinncheck._judge import ALL_BOUNDS_UP_TO

    n = ALL_BOUNDS_UP_TO + extra
    report = residual(
        "u_xx + u", {"u": "sin(x)"}, ["x=1e6:1e6+1"], n=n, dtype="float32", chunk_size=8192
    )
    (eq,) = report.equations
    assert eq.status == "inconclusive" and report.status == "fail"
    assert eq.stats.vague > eq.stats.finite / 2
    from pinncheck._results import inconclusive_reason

    reason = inconclusive_reason(eq.stats)
    assert "could hide in rounding" in reason
    assert ("estimated from a sample of 1 point in 64" in reason) == (n > ALL_BOUNDS_UP_TO)


def test_an_inconclusive_equation_says_why_in_the_summary_line() -> None:
    from typer.testing import CliRunner

    from pinncheck.cli import app

    args = ["residual", "--pde", "u_xx + u", "--solution", "u = sin(x)", "-d", "x=1e6:1e6+1"]
    result = CliRunner().invoke(app, [*args, "-n", "2000", "--dtype", "float32"])
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("FAIL: eq1 (u_xx + u) inconclusive: at 2000 of 2000 points")
    assert "could hide in rounding" in result.output


@pytest.mark.parametrize("n", [70_000, 1_000_003, 3 * 10**7])
def test_the_bound_sample_is_the_same_points_whatever_the_chunks(n: int) -> None:
    from pinncheck._judge import SAMPLE_CAP, sample_size, sample_span, sample_stride

    count = sample_size(n)
    assert count * sample_stride(n) >= n > (count - 1) * sample_stride(n)
    assert count <= SAMPLE_CAP + 1 and (n > 64 * SAMPLE_CAP or sample_stride(n) == 64)

    def picked(chunk: int) -> list[int]:
        out: list[int] = []
        for start in range(0, min(n, 4 * count + chunk), chunk):
            span = sample_span(start, min(chunk, n - start), n)
            if span is not None:
                assert span[0] == start
                out += list(range(*span))
        return out

    assert picked(131072) == picked(4999) == picked(100) == list(range(count))


@pytest.mark.parametrize("extra", [-1000, 1000])
def test_a_bound_that_overflows_falls_back_to_the_lower_bound_on_every_path(
    monkeypatch: pytest.MonkeyPatch, extra: int
) -> None:
    # Where the running bound is inf or NaN (an intermediate bound overflows, or inf*0 in a
    # slope) while the values are finite, the best finite lower bound is the tolerance, on the
    # full path (small runs) as on the sampled one: a correct derivative passes on both.
    import pinncheck._judge as judge
    from pinncheck._judge import ALL_BOUNDS_UP_TO

    real = judge._bounds_at

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        bounds = real(*args, **kwargs)
        for b in bounds:
            b[::7] = math.inf
            b[3::7] = math.nan
        return bounds

    monkeypatch.setattr(judge, "_bounds_at", broken)
    n = ALL_BOUNDS_UP_TO + extra
    report = check("x1**2*sin(x2) + tanh((x1 - 0.5)/0.05)", ["x1=0:1", "x2=0:1"], n=n, order=2)
    assert report.passed, [(d.name, d.status, d.stats.certain_failures) for d in report.derivatives]
    # ... and a wrong one (autograd off by 1e-9 of its value) still fails.
    import pinncheck._engine as engine

    right = engine.autograd_side

    def off(*args, **kwargs):  # type: ignore[no-untyped-def]
        ag, derived = right(*args, **kwargs)
        return [a * (1 + 1e-9) for a in ag], derived

    monkeypatch.setattr(engine, "autograd_side", off)
    wrong = check("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"], n=n, order=1)
    assert not wrong.passed
    assert all(d.stats.certain_failures > 0 for d in wrong.derivatives)


@pytest.mark.parametrize("extra", [-40000, 5000])
def test_the_term_scale_is_the_largest_sum_of_terms_on_every_path(extra: int) -> None:
    # u_t - u_xx of a non-solution: points near the reference bound get the full bound, which
    # must not leak into the reported term scale, max |u_t| + |u_xx| = 2*sin(1) (at x=1, t=0).
    from pinncheck._judge import ALL_BOUNDS_UP_TO

    u = "sin(x)*exp(-t) + 1e-9*x**3"
    report = residual("u_t - u_xx", {"u": u}, ["x=0:1", "t=0:1"], n=ALL_BOUNDS_UP_TO + extra)
    (eq,) = report.equations
    assert eq.status == "fail"  # (not a solution)
    assert 1.6 < eq.term_scale <= 2 * math.sin(1.0) + 1e-8


def test_a_residual_that_solves_is_not_called_ill_conditioned() -> None:
    # Its exact value is ~0 by design, rounding and all: against its terms' size (1.9) the
    # formula is well-conditioned. (It was called ill-conditioned against its own ~1e-16.)
    report = residual(
        "u_t + u*u_x = nu*u_xx",
        {"u": "c - A*tanh(A*(x - c*t)/(2*nu))"},
        ["x=-1:1", "t=0:1"],
        param={"nu": "0.05", "A": "0.5", "c": "0.25"},
        n=20_000,
    )
    assert report.status == "pass"
    assert not [w for w in report.warnings if "ill-conditioned" in w]
    # while argument rounding at x ~ 1e6 is ill-conditioned against the terms too
    far = residual("u_xx + u", {"u": "sin(x)"}, ["x=1e6:1e6+1"], n=20_000)
    assert far.status == "pass"
    assert any("ill-conditioned" in w and "eq1" in w for w in far.warnings)
