"""pinncheck.residual: PDE parsing, agreement, solution status, forcing."""

from __future__ import annotations

import pytest
import sympy

from pinncheck import ExpressionError, residual
from pinncheck._domain import parse_domain
from pinncheck._engine import Term
from pinncheck._parse import real_symbol
from pinncheck._pde import parse_system

HEAT = dict(
    pde="u_t - nu*u_xx",
    solution=["u=exp(-nu*pi**2*t)*sin(pi*x)"],
    domain=["x=0:1", "t=0:1"],
    param=["nu=0.1"],
)


def system(pde, solution, domain, param=None):  # type: ignore[no-untyped-def]
    return parse_system(pde, solution, parse_domain(domain), param)


def test_subscript_and_diff_notation_give_the_same_terms() -> None:
    a = system(["u_t - u_xx + u*u_x"], ["u=x*t"], ["x=0:1", "t=0:1"])
    b = system(["diff(u, t) - diff(u, x, x) + u*diff(u, x)"], ["u=x*t"], ["x=0:1", "t=0:1"])
    c = system(["diff(u, t) - diff(u, x, 2) + u*diff(u, x)"], ["u=x*t"], ["x=0:1", "t=0:1"])
    assert a.terms == b.terms == c.terms
    assert a.residuals[0] == b.residuals[0] == c.residuals[0]
    assert {t.alpha for t in a.terms} == {(), (0,), (1,), (0, 0)}


def test_diff_works_for_multi_letter_variables_and_subscripts_are_refused() -> None:
    s = system(["diff(u, x1, x2) + diff(u, x1, 3)"], ["u=x1**4*x2"], ["x1=0:1", "x2=0:1"])
    assert {t.alpha for t in s.terms} == {(0, 1), (0, 0, 0)}
    with pytest.raises(ExpressionError, match="single-letter"):
        system(["u_x1"], ["u=x1"], ["x1=0:1"])


def test_lhs_equals_rhs_means_lhs_minus_rhs() -> None:
    s = system(["u_xx = -u"], ["u=sin(x)"], ["x=0:1"])
    uxx, u = Term("u", (0, 0)).placeholder(), Term("u", ()).placeholder()
    assert s.residuals[0] == uxx + u


def test_params_may_use_earlier_params() -> None:
    s = system(["u_x - k*u"], ["u=exp(k*x)"], ["x=0:1"], ["a=2", "k=sqrt(a**2+5)"])
    assert s.params["k"] == 3


@pytest.mark.parametrize(
    "pde, solution, domain, needle",
    [
        ("f_x", ["u=x"], ["x=0:1"], "derivative of f, which is not an unknown"),
        ("u_q", ["u=x"], ["x=0:1"], "'q', which is not a variable"),
        ("v_x", ["u=x"], ["x=0:1"], "not an unknown"),
        ("diff(u, y)", ["u=x"], ["x=0:1"], "'y' is not a variable"),
        ("diff(u**2, y)", ["u=x"], ["x=0:1"], "'y' is not a variable"),
        ("diff(u)", ["u=x"], ["x=0:1"], "at least one variable"),
        ("u_x + w", ["u=x"], ["x=0:1"], "'w' is not a variable"),
        ("u_x = = 1", ["u=x"], ["x=0:1"], "single '='"),
        ("x + 1", ["u=x"], ["x=0:1"], "does not involve any unknown"),
        ("u_xxxxxxx", ["u=x"], ["x=0:1"], "order 7"),
        ("u_x", ["u=x*y"], ["x=0:1"], "'y' in a solution"),
        ("u_x", ["x=x"], ["x=0:1"], "same name as a variable"),
        ("u_x", [], ["x=0:1"], "No solution"),
        ("u_x", ["u x"], ["x=0:1"], "NAME=VALUE"),
    ],
)
def test_pde_errors_name_the_term(
    pde: str, solution: list[str], domain: list[str], needle: str
) -> None:
    with pytest.raises(ExpressionError, match=None) as info:
        system([pde], solution, domain)
    assert needle in str(info.value)


def test_true_solution_passes_and_is_proved() -> None:
    r = residual(**HEAT, n=300)
    assert r.status == "pass"
    eq = r.equations[0]
    assert eq.symbolic == "proved" and eq.solves == "pass" and eq.agreement == "pass"
    assert [d.name for d in r.derivatives] == ["u_t", "u_xx"]
    assert eq.term_scale > 1


def test_non_solution_fails_as_not_a_solution_but_agrees() -> None:
    r = residual(**{**HEAT, "solution": ["u=exp(-nu*pi*t)*sin(pi*x)"]}, n=300)
    assert r.status == "fail"
    eq = r.equations[0]
    assert eq.agreement == "pass" and eq.solves == "fail"
    assert eq.status_detail == "not a solution"
    assert eq.stats.max_abs_exact > 0.1
    # --any-residual checks agreement only.
    r2 = residual(**{**HEAT, "solution": ["u=exp(-nu*pi*t)*sin(pi*x)"]}, n=300, any_residual=True)
    assert r2.status == "pass"


BURGERS = dict(
    pde="u_t + u*u_x - nu*u_xx",
    solution=["u=c - A*tanh(A*(x - c*t)/(2*nu))"],
    domain=["x=-1:1", "t=0:1"],
    param=["nu=0.05", "A=0.5", "c=0.25"],
)


def test_numeric_check_decides_when_the_proof_times_out() -> None:
    r = residual(**BURGERS, n=300, symbolic_timeout=0)
    eq = r.equations[0]
    assert eq.exact_residual != 0  # not zero before simplification
    assert eq.symbolic == "not proved" and eq.solves == "pass" and r.status == "pass"
    assert residual(**BURGERS, n=50, symbolic_timeout=20).equations[0].symbolic == "proved"


def test_large_terms_are_not_failed_by_rounding() -> None:
    # Terms of size ~1e6 cancel; the residual's rounding noise is ~1e-10 absolute.
    r = residual(
        "u_tt - c**2*u_xx",
        ["u=1000*sin(x - c*t)*exp(0)"],
        ["x=0:10", "t=0:1"],
        param=["c=30"],
        n=500,
        symbolic_timeout=0,
    )
    eq = r.equations[0]
    assert eq.term_scale > 1e5
    assert eq.stats.max_abs_exact > 0  # rounding noise is there ...
    assert r.status == "pass"  # ... and does not fail the check


def test_disagreeing_autograd_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    import pinncheck._residual as mod

    real = mod.exact_terms

    def wrong(system):  # type: ignore[no-untyped-def]
        out = real(system)
        t = Term("u", (0, 0))
        out[t] = out[t] * sympy.Rational(11, 10)
        return out

    monkeypatch.setattr(mod, "exact_terms", wrong)
    r = residual(**HEAT, n=200)
    assert r.status == "fail"
    assert {d.name: d.status for d in r.derivatives} == {"u_t": "pass", "u_xx": "fail"}
    assert r.equations[0].agreement == "fail"
    assert r.equations[0].status_detail == "autograd disagrees with exact"


def test_systems_and_fourth_order() -> None:
    r = residual(["u_xxxx + 2*u_xxyy + u_yyyy"], ["u=x*exp(x)*sin(y)"], ["x=0:1", "y=0:1"], n=200)
    assert r.status == "pass"
    assert max(d.order for d in r.derivatives) == 4


def test_forcing_is_the_manufactured_source() -> None:
    r = residual(
        "-(u_xx + u_yy)",
        ["u=sin(pi*x)*sin(pi*y)"],
        ["x=0:1", "y=0:1"],
        n=50,
        any_residual=True,
        forcing=True,
    )
    forcing = r.equations[0].forcing
    assert forcing is not None
    x, y = real_symbol("x"), real_symbol("y")
    from pinncheck._parse import parse_expression

    expected = 2 * sympy.pi**2 * sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y)
    assert sympy.simplify(parse_expression(forcing) - expected) == 0


def test_float32_residual_passes_with_defaults() -> None:
    r = residual(**BURGERS, n=5000, dtype="float32")
    assert r.status == "pass", r.to_dict()["equations"]


def test_residual_json_schema() -> None:
    doc = residual(**HEAT, n=50).to_dict()
    for key in (
        "kind",
        "status",
        "pdes",
        "solutions",
        "params",
        "derivatives",
        "equations",
        "n",
        "seed",
        "device",
        "dtype",
        "torch",
        "domain",
        "timings",
    ):
        assert key in doc, key
    assert doc["kind"] == "residual"
    eq = doc["equations"][0]
    for key in (
        "equation",
        "max_abs_residual_autograd",
        "max_abs_residual_exact",
        "max_abs_error",
        "symbolic_zero",
        "status",
    ):
        assert key in eq, key
    assert eq["symbolic_zero"] is True
    assert doc["params"] == {"nu": 0.1}


@pytest.mark.parametrize(
    "pde, param, needle",
    [
        ("u_t - nu*u_xx", ["nu=0.1", "u_xx=5"], "u_xx looks like a derivative of the unknown u"),
        ("diff(u**2, nu)", ["nu=0.1"], "diff(u**2, ...) is taken with respect to a constant"),
        ("diff(u, nu)", ["nu=0.1"], "with respect to a constant"),
        ("u - u", None, "cancels to an expression without any unknown"),
    ],
)
def test_pde_errors_speak_the_users_language(
    pde: str, param: list[str] | None, needle: str
) -> None:
    with pytest.raises(ExpressionError) as info:
        system([pde], ["u=exp(-t)*sin(x)"], ["x=0:1", "t=0:1"], param)
    assert needle in str(info.value)
    assert "_u_" not in str(info.value)
