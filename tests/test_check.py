"""pinncheck.check: autograd partials against SymPy, through the Python API."""

from __future__ import annotations

import math

import pytest
import sympy
import torch

import pinncheck
from pinncheck import DomainError, OptionError, check
from pinncheck._parse import parse_expression, real_symbol

x1, x2 = real_symbol("x1"), real_symbol("x2")
BOX = ["x1=0:1", "x2=0:1"]


def by_name(report: pinncheck.CheckReport) -> dict[str, object]:
    return {d.name: d for d in report.derivatives}


def test_tutorial_example_partials_are_the_known_formulas() -> None:
    report = check("x1**2*sin(x2)", BOX, n=200)
    assert report.status == "pass"
    d = by_name(report)
    assert list(d) == ["d/dx1", "d/dx2", "d2/dx1^2", "d2/dx1dx2", "d2/dx2^2"]
    expected = {
        "d/dx1": 2 * x1 * sympy.sin(x2),
        "d/dx2": x1**2 * sympy.cos(x2),
        "d2/dx1^2": 2 * sympy.sin(x2),
        "d2/dx1dx2": 2 * x1 * sympy.cos(x2),
        "d2/dx2^2": -(x1**2) * sympy.sin(x2),
    }
    for name, expr in expected.items():
        res = d[name]
        assert sympy.simplify(parse_expression(res.exact) - expr) == 0
        assert res.stats.max_abs_error < 1e-14
        assert res.stats.count == 200
    # The worst point lies in the box and the recorded values are the exact formula's there.
    worst = d["d/dx1"].stats
    assert worst.worst_point is not None and worst.worst_values is not None
    px1, px2 = worst.worst_point
    assert 0 <= px1 <= 1 and 0 <= px2 <= 1
    assert worst.worst_values[1] == pytest.approx(2 * px1 * math.sin(px2), rel=1e-12)


def test_third_order_and_mixed_partials() -> None:
    report = check("exp(x1)*sin(2*x2) + x1**3*x2", BOX, n=100, order=3)
    names = [d.name for d in report.derivatives]
    assert len(names) == 2 + 3 + 4
    assert "d3/dx1^2dx2" in names
    assert report.status == "pass"
    third = by_name(report)["d3/dx1^3"]
    assert third.order == 3 and third.wrt == ("x1", "x1", "x1")


# Each allowlisted function, with an inner argument keeping it inside its domain.
FUNCTION_CASES = {
    "sin": "sin(2*x1 + x2)",
    "cos": "cos(2*x1 - x2)",
    "tan": "tan(0.5*x1 + 0.3*x2)",
    "exp": "exp(x1 - 2*x2)",
    "log": "log(1 + x1 + x2**2)",
    "sqrt": "sqrt(1 + x1*x2)",
    "tanh": "tanh(3*x1 - x2)",
    "sinh": "sinh(x1 + x2)",
    "cosh": "cosh(x1 - x2)",
    "asin": "asin(0.4*x1 + 0.3*x2)",
    "acos": "acos(0.4*x1 - 0.3*x2)",
    "atan": "atan(2*x1 + x2)",
    "asinh": "asinh(2*x1 - x2)",
    "acosh": "acosh(1.5 + x1*x2)",
    "atanh": "atanh(0.4*x1 - 0.3*x2)",
    "erf": "erf(x1 - x2)",
    "erfc": "erfc(x1 + x2)",
    "Abs": "Abs(x1 - 2)*x2",
    "sigmoid": "sigmoid(3*x1 - 2*x2)",
    "sech": "sech(x1 - 2*x2)",
    "csch": "csch(x1 + x2 + 1)",
    "coth": "coth(x1 + x2 + 1)",
    "log10": "log10(x1 + 2*x2 + 1)",
    "Heaviside": "x1*x2 + Heaviside(x1 - x2)*sin(x1 + x2)",
}


def test_every_allowlisted_function_has_a_case() -> None:
    from pinncheck._parse import FUNCTIONS

    assert set(FUNCTIONS) == set(FUNCTION_CASES)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(FUNCTION_CASES))
def test_allowlisted_function_orders_1_and_2(name: str, dtype: str) -> None:
    report = check(FUNCTION_CASES[name], BOX, n=300, dtype=dtype)
    assert [d.order for d in report.derivatives] == [1, 1, 2, 2, 2]
    assert report.status == "pass", [(d.name, d.stats.max_abs_error) for d in report.derivatives]
    # Not vacuous: every first partial is non-trivially non-zero.
    for d in report.derivatives[:2]:
        assert d.stats.max_abs_exact > 1e-3


@pytest.mark.parametrize(
    "expr, kinked",
    [
        ("Min(x1, x2)*x1", True),
        ("Max(x1**2, x2, 0.3)", True),
        ("Max(x1, 2)*x2", False),  # x1 < 2 everywhere: no kink in the box
        ("Min(sin(x1), x2) + x1*x2", True),
    ],
)
def test_min_and_max_agree_and_warn_about_their_kinks(expr: str, kinked: bool) -> None:
    report = check(expr, BOX, n=300)
    assert report.status == "pass"
    assert any("not differentiable" in w for w in report.warnings) == kinked, report.warnings


def test_heaviside_warns_about_its_jump() -> None:
    report = check(FUNCTION_CASES["Heaviside"], BOX, n=300)
    assert report.status == "pass"
    assert any("jumps where" in w for w in report.warnings), report.warnings


def test_wrong_exact_derivative_makes_the_check_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    import pinncheck._check as mod

    real = mod.exact_partials

    def wrong(expr, symbols, targets):  # type: ignore[no-untyped-def]
        out = real(expr, symbols, targets)
        out[(0, 1)] = out[(0, 1)] * sympy.Rational(101, 100)  # 1% off
        return out

    monkeypatch.setattr(mod, "exact_partials", wrong)
    report = check("x1**2*sin(x2)", BOX, n=100)
    assert report.status == "fail"
    statuses = {d.name: d.status for d in report.derivatives}
    assert statuses.pop("d2/dx1dx2") == "fail"
    assert set(statuses.values()) == {"pass"}


@pytest.mark.parametrize("expr", ["log(x1)", "sqrt(x1)"])
def test_undefined_values_never_pass(expr: str) -> None:
    report = check(expr, ["x1=-1:1"], n=200)
    assert report.status == "fail"
    d = report.derivatives[0]
    assert d.status == "undefined"
    assert 0 < d.stats.nonfinite < 200
    assert d.stats.first_nonfinite_point is not None
    assert d.stats.first_nonfinite_point[0] < 0


def test_singular_expression_warns_even_when_no_point_hits_it() -> None:
    report = check("1/x1", ["x1=-1:1"], n=50)
    assert any("singular" in w and "x1 = 0" in w for w in report.warnings)
    assert not check("1/(2 + x1)", ["x1=-1:1"], n=50).warnings


def test_unused_domain_variable_warns_and_its_derivatives_are_zero() -> None:
    report = check("sin(x1)", ["x1=0:1", "x2=0:1"], n=50)
    assert report.status == "pass"
    assert any("x2" in w and "zero" in w for w in report.warnings)
    d = by_name(report)
    assert d["d/dx2"].stats.max_abs_exact == 0 and d["d/dx2"].stats.max_abs_error == 0


def test_constant_and_linear_derivatives_are_exact_zeros() -> None:
    report = check("3*x1 + x2", BOX, n=20)
    assert report.status == "pass"
    assert all(d.stats.max_abs_error == 0 for d in report.derivatives)


def test_missing_domain_names_the_variable_and_hints_implicit_multiplication() -> None:
    with pytest.raises(DomainError, match="x2"):
        check("x1*x2", ["x1=0:1"])
    with pytest.raises(DomainError, match=r"x1\*x2"):
        check("x1x2", BOX)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"order": 0},
        {"order": 99},
        {"dtype": "float16"},
        {"seed": -1},
        {"rtol": -1.0},
        {"atol": math.nan},
    ],
)
def test_bad_options_are_option_errors(kwargs: dict) -> None:
    with pytest.raises(OptionError):
        check("x1", ["x1=0:1"], **kwargs)


def test_float32_steep_front_passes_with_defaults_and_wrong_one_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    e3 = "-tanh((x-0.5*t)/0.02)*exp(-x**2) + log(1+x**2+t**2)"
    report = check(e3, ["x=-1:1", "t=0:1"], n=20000, dtype="float32")
    assert report.status == "pass", [(d.name, d.stats.max_rel_error) for d in report.derivatives]
    import pinncheck._check as mod

    real = mod.exact_partials

    def wrong(expr, symbols, targets):  # type: ignore[no-untyped-def]
        out = real(expr, symbols, targets)
        out[(0, 0)] = out[(0, 0)] * sympy.Rational(1001, 1000)  # 0.1% off
        return out

    monkeypatch.setattr(mod, "exact_partials", wrong)
    assert check(e3, ["x=-1:1", "t=0:1"], n=20000, dtype="float32").status == "fail"


def test_same_seed_same_result_other_seed_other_points() -> None:
    a = check("sin(x1)*x2", BOX, n=64, seed=7)
    b = check("sin(x1)*x2", BOX, n=64, seed=7)
    c = check("sin(x1)*x2", BOX, n=64, seed=8)
    assert a.derivatives[0].stats.worst_point == b.derivatives[0].stats.worst_point
    assert a.derivatives[0].stats.sum_sq_error == b.derivatives[0].stats.sum_sq_error
    assert a.derivatives[0].stats.worst_point != c.derivatives[0].stats.worst_point


@pytest.mark.parametrize("chunk", [1, 7, 1000, 65536 + 3])
def test_statistics_do_not_depend_on_chunking(chunk: int) -> None:
    n = 70000 if chunk > 1000 else 2000
    expr = "exp(-t)*sin(pi*x)*cos(pi*y)"
    dom = ["x=0:1", "y=0:1", "t=0:1"]
    whole = check(expr, dom, n=n, chunk_size=n).to_dict()["derivatives"]
    parts = check(expr, dom, n=n, chunk_size=chunk).to_dict()["derivatives"]
    for a, b in zip(whole, parts, strict=True):
        for key in ("max_abs_error", "max_rel_error", "nonfinite", "worst_point", "max_abs_exact"):
            assert a[key] == b[key], key
        assert a["rms_error"] == pytest.approx(b["rms_error"], rel=1e-9)


def test_rms_error_does_not_overflow_for_huge_derivatives() -> None:
    # Derivatives near 1e304: squares of errors of ~1e288 overflow float64.
    expr, dom = "exp(x1)*(1 + 1e-14*sin(1000*x1))", ["x1=690:700"]
    whole = check(expr, dom, n=1000, chunk_size=1000).to_dict()["derivatives"]
    parts = check(expr, dom, n=1000, chunk_size=37).to_dict()["derivatives"]
    for a, b in zip(whole, parts, strict=True):
        assert math.isfinite(a["rms_error"])
        assert a["rms_error"] == pytest.approx(b["rms_error"], rel=1e-9)
    second = whole[1]  # d2/dx1^2: autograd's rounding differs from the exact form's
    assert second["max_abs_error"] > 1e280
    # One point has the largest error: sqrt(max^2 / n) <= RMS <= max.
    assert second["max_abs_error"] / math.sqrt(1000) <= second["rms_error"]
    assert second["rms_error"] <= second["max_abs_error"]


def test_rms_error_of_chunks_whose_total_overflows() -> None:
    # Each chunk's sum of squares is finite (~1e308), their total is not.
    expr, dom = "exp(x1)*(1 + 1e-14*sin(1000*x1))", ["x1=386:387"]
    whole = check(expr, dom, n=200_000).to_dict()["derivatives"][1]
    parts = check(expr, dom, n=200_000, chunk_size=5000).to_dict()["derivatives"][1]
    assert math.isfinite(whole["rms_error"]) and whole["rms_error"] > 1e150
    assert parts["rms_error"] == pytest.approx(whole["rms_error"], rel=1e-9)


def test_rms_error_of_tiny_errors_is_not_lost_to_underflow() -> None:
    # Errors near 1e-185: their squares underflow to 0 (and zero-error chunks come between).
    expr, dom = "1e-170*x1**3*sin(x1)", ["x1=0:1"]
    whole = check(expr, dom, n=1000, chunk_size=1000).to_dict()["derivatives"]
    parts = check(expr, dom, n=1000, chunk_size=37).to_dict()["derivatives"]
    for a, b in zip(whole, parts, strict=True):
        assert 0 < a["max_abs_error"] < 1e-180
        assert a["max_abs_error"] / math.sqrt(1000) <= a["rms_error"] <= a["max_abs_error"]
        assert b["rms_error"] == pytest.approx(a["rms_error"], rel=1e-9)


def test_rms_error_is_infinite_when_an_error_overflows() -> None:
    import torch

    from pinncheck._compare import ErrorStats

    stats = ErrorStats()
    f64 = torch.float64
    a, e = torch.tensor([1e308, 1.0], dtype=f64), torch.tensor([-1e308, 1.0], dtype=f64)
    tol, ref = torch.full((2,), 1e-300, dtype=f64), torch.zeros(2, dtype=f64)
    stats.update(a, e, tol, ref, [torch.zeros(2, dtype=f64)], 0)
    stats.update(e, e, tol, ref, [torch.zeros(2, dtype=f64)], 2)  # and it stays so
    assert stats.max_abs_error == math.inf and stats.rms_error == math.inf
    assert stats.status() == "fail"


def test_points_do_not_depend_on_chunking() -> None:
    from pinncheck._domain import parse_domain
    from pinncheck._sample import sample_box

    dom = parse_domain(["x=-pi:pi", "t=0:2"])
    whole = sample_box(dom, 5, 0, 140000)
    pieces = [sample_box(dom, 5, s, min(s + 30001, 140000)) for s in range(0, 140000, 30001)]
    for i in range(2):
        assert torch.equal(whole[i], torch.cat([p[i] for p in pieces]))
    assert float(whole[0].min()) >= -math.pi and float(whole[0].max()) <= math.pi


def test_report_is_json_serialisable_with_nan_and_inf() -> None:
    import json

    doc = check("log(x1)", ["x1=-1:1"], n=20).to_dict()
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text)["status"] == "fail"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_matches_cpu(dtype: str) -> None:
    cpu = check("x1**2*sin(x2)", BOX, n=5000, dtype=dtype, device="cpu")
    gpu = check("x1**2*sin(x2)", BOX, n=5000, dtype=dtype, device="cuda")
    assert gpu.status == "pass" and gpu.to_dict()["device"].startswith("cuda")
    for a, b in zip(cpu.derivatives, gpu.derivatives, strict=True):
        assert a.stats.max_abs_exact == pytest.approx(b.stats.max_abs_exact, rel=1e-12)


def test_cuda_unavailable_is_a_device_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(pinncheck.DeviceError, match="CUDA is not available"):
        check("x1", ["x1=0:1"], device="cuda")
