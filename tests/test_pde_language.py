"""The PDE language: names as users write them, diff() of expressions, laplacian(), functions,
hints, and --forcing within its budget."""

from __future__ import annotations

import time

import pytest
import sympy

from helpers import run_cli
from pinncheck import ExpressionError, residual
from pinncheck._domain import parse_domain
from pinncheck._engine import Term
from pinncheck._errors import DomainError
from pinncheck._parse import check_identifier, parse_constant, parse_expression, real_symbol
from pinncheck._pde import parse_system, spatial_variables

x, y, t = real_symbol("x"), real_symbol("y"), real_symbol("t")


def system(pde, solution, domain, param=None, space=None):  # type: ignore[no-untyped-def]
    return parse_system(pde, solution, parse_domain(domain, shadow=True), param, space=space)


def ph(function: str, *alpha: int) -> sympy.Symbol:
    return Term(function, tuple(sorted(alpha))).placeholder()


def refuse(pde, solution, domain, param=None, space=None) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ExpressionError) as info:
        system(pde, solution, domain, param, space)
    return str(info.value)


# Unknowns with '_' ----------------------------------------------------------------------------


def test_unknowns_with_underscores_work_with_diff_and_subscripts() -> None:
    s = system(
        ["diff(sigma_xx, x) + sigma_xy_y"],
        ["sigma_xx=x**2*y", "sigma_xy=x*y**2"],
        ["x=0:1", "y=0:1"],
    )
    assert s.residuals[0] == ph("sigma_xx", 0) + ph("sigma_xy", 1)
    assert s.warnings == ()


def test_declared_names_win_and_the_ambiguity_is_explained() -> None:
    s = system(["T_x - diff(T, x)"], ["T=sin(x)", "T_x=cos(x)"], ["x=0:1"])
    assert s.residuals[0] == ph("T_x") - ph("T", 0)
    assert len(s.warnings) == 1
    assert "declared names win" in s.warnings[0] and "diff(T, x)" in s.warnings[0]
    # T_x_x is the derivative of the unknown T_x: not ambiguous.
    s = system(["T_x_x + T_xx"], ["T=sin(x)", "T_x=cos(x)"], ["x=0:1"])
    assert s.residuals[0] == ph("T_x", 0) + ph("T", 0, 0)


def test_no_warning_without_a_competing_unknown() -> None:
    s = system(["T_x - 1"], ["T_x=x"], ["x=0:1"])
    assert s.residuals[0] == ph("T_x") - 1 and s.warnings == ()


def test_placeholders_of_underscored_unknowns_never_collide() -> None:
    assert Term("u", (0, 0)).placeholder() != Term("u_0", (0,)).placeholder()
    assert Term("u", ()).placeholder() != Term("u_", ()).placeholder()


def test_mixed_form_end_to_end_with_an_independent_check() -> None:
    r = residual(
        ["T_t - (T_x_x + T_y_y)/10", "T_x - diff(T, x)", "T_y - diff(T, y)"],
        [
            "T=exp(-t/5)*sin(x)*sin(y)",
            "T_x=exp(-t/5)*cos(x)*sin(y)",
            "T_y=exp(-t/5)*sin(x)*cos(y)",
        ],
        ["x=0:1", "y=0:1", "t=0:1"],
        n=300,
    )
    assert r.status == "pass"
    wrong = residual(
        "T_x - diff(T, x)", ["T=sin(x)", "T_x=-cos(x)"], ["x=0.1:1"], n=100, symbolic_timeout=1
    )
    assert wrong.status == "fail"


# Constants shadowed by declared names ---------------------------------------------------------


def test_a_parameter_may_shadow_E_and_exp1_stays_eulers_number() -> None:
    s = system(["u - E - exp(1)"], ["u=x"], ["x=0:1"], ["E=2"])
    assert s.residuals[0] == ph("u") - 2 - sympy.E
    assert any("parameter E shadows the constant E" in w for w in s.warnings)
    # A later parameter's value may use it.
    s = system(["u - k"], ["u=x"], ["x=0:1"], ["E=2", "k=3*E"])
    assert s.params["k"] == 6


def test_a_variable_or_unknown_may_shadow_E() -> None:
    r = residual("w_E - 2*E", ["w=E**2"], ["E=0:1"], n=100)
    assert r.status == "pass"
    assert any("variable E shadows" in w for w in r.warnings)
    r = residual("E_x - 2*x", ["E=x**2"], ["x=0:1"], n=100)
    assert r.status == "pass"
    assert any("unknown E shadows" in w for w in r.warnings)


def test_undeclared_E_is_eulers_number_and_I_stays_reserved() -> None:
    assert parse_expression("E") == sympy.E
    s = system(["u - E"], ["u=x"], ["x=0:1"])
    assert s.residuals[0] == ph("u") - sympy.E and s.warnings == ()
    with pytest.raises(ExpressionError, match="imaginary"):
        check_identifier("I", what="parameter name", shadow=True)
    with pytest.raises(ExpressionError, match="function name"):
        system(["u"], ["sin=x"], ["x=0:1"])
    with pytest.raises(DomainError, match="constant name"):
        parse_domain(["E=0:1"])  # only where the caller treats the name as the variable


def test_check_with_a_variable_named_E() -> None:
    from pinncheck import check

    report = check("E**2*x + exp(1)", ["E=0:1", "x=0:1"], n=100, order=1)
    assert report.status == "pass"
    exact = {d.name: d.exact for d in report.derivatives}
    assert any(v == "2*E*x" for v in exact.values()), exact
    assert any("variable E shadows the constant E" in w for w in report.warnings)


def test_black_scholes_with_S_as_a_variable() -> None:
    # V = S solves V_t + sigma^2*S^2*V_SS/2 + r*S*V_S - r*V = 0 (a forward contract's delta).
    r = residual(
        "V_t + sigma**2*S**2*V_SS/2 + r*S*V_S - r*V",
        ["V=S*exp(0*t)"],
        ["S=0:2", "t=0:1"],
        param=["sigma=0.2", "r=0.05"],
        n=100,
    )
    assert r.status == "pass"
    for name in ("N", "O", "Q"):
        assert system([f"u - {name}"], ["u=x"], ["x=0:1"], [f"{name}=1"]).params[name] == 1


# Functions and hints --------------------------------------------------------------------------


def test_new_functions_have_their_values() -> None:
    assert parse_constant("log10(1000)")[1] == pytest.approx(3.0)
    assert parse_constant("sech(0) + coth(1)*tanh(1) + csch(1)*sinh(1)")[1] == pytest.approx(3.0)
    assert parse_constant("Max(1, 2, sqrt(5)) - Min(-1, 3)")[1] == pytest.approx(5**0.5 + 1)
    assert parse_constant("Heaviside(0) + Heaviside(-2) + Heaviside(3)")[1] == 1.5


@pytest.mark.parametrize(
    "text, needle",
    [
        ("ln(x)", "Write log (log is the natural logarithm) instead"),
        ("abs(x)", "Write Abs instead"),
        ("max(x, 1)", "Write Max instead"),
        ("arctan(x)", "Write atan instead"),
        ("Min(x)", "Min needs at least two arguments"),
    ],
)
def test_function_hints(text: str, needle: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert needle in str(info.value)
    assert "multiplication" not in str(info.value)


def test_pde_errors_quote_the_pde_once_with_the_expression_hints() -> None:
    message = refuse(["u_t = u_{xx}"], ["u=x*t"], ["x=0:1", "t=0:1"])
    assert message.count("u_t = u_{xx}") == 1
    assert "u_xx, not u_{xx}" in message
    message = refuse(["u_t = ln(u)"], ["u=x*t"], ["x=0:1", "t=0:1"])
    assert message.count("u_t = ln(u)") == 1 and "Write log" in message
    message = refuse(["du/dt = u_xx"], ["u=x*t"], ["x=0:1", "t=0:1"])
    assert message.count("du/dt = u_xx") == 1
    assert "u_t or diff(u, t)" in message
    message = refuse(["d2u/dx2 = u"], ["u=x*t"], ["x=0:1", "t=0:1"])
    assert "write u_xx or diff(u, x, 2)" in message


@pytest.mark.parametrize(
    "pde, needle",
    [
        ("u = x = t", "more than one '='"),
        ("u == x", "comparisons"),
        ("sin(u = x)", "inside parentheses"),
        ("u = ", "empty"),
    ],
)
def test_equals_signs_are_checked(pde: str, needle: str) -> None:
    message = refuse([pde], ["u=x*t"], ["x=0:1", "t=0:1"])
    assert needle in message and message.count(pde.strip()) == 1


def test_cli_prints_a_pde_error_once() -> None:
    result = run_cli("residual", "--pde", "u_t = u_{xx}", "-s", "u=x*t", "-d", "x=0:1,t=0:1")
    assert result.exit_code == 2
    assert result.stderr.count("u_{xx}") == 2  # the PDE once, and the hint's "not u_{xx}"


# diff() of expressions and laplacian() --------------------------------------------------------


def test_diff_of_expressions_applies_the_chain_rule() -> None:
    s = system(["diff(u**2/2, x)", "diff((1 + x**2)*u_x, x)"], ["u=x"], ["x=0:1"])
    assert s.residuals[0] == ph("u") * ph("u", 0)
    assert sympy.expand(s.residuals[1] - (2 * x * ph("u", 0) + (1 + x**2) * ph("u", 0, 0))) == 0
    s = system(["diff(u*v, x, 2)"], ["u=x", "v=x"], ["x=0:1"])
    expected = ph("u", 0, 0) * ph("v") + 2 * ph("u", 0) * ph("v", 0) + ph("u") * ph("v", 0, 0)
    assert sympy.expand(s.residuals[0] - expected) == 0


def test_conservative_burgers_matches_sympy_directly() -> None:
    solution = "sin(x + 2*t)*exp(x*t)"
    r = residual(
        "u_t + diff(u**2/2, x) - nu*diff((1 + x**2)*u_x, x)",
        [f"u={solution}"],
        ["x=0:1", "t=0:1"],
        param=["nu=0.1"],
        n=200,
        any_residual=True,
    )
    assert r.status == "pass"
    u = sympy.sin(x + 2 * t) * sympy.exp(x * t)
    nu = sympy.Rational(1, 10)
    truth = u.diff(t) + (u**2 / 2).diff(x) - nu * ((1 + x**2) * u.diff(x)).diff(x)
    assert sympy.simplify(r.equations[0].exact_residual - truth) == 0


def test_diff_order_is_limited() -> None:
    assert "orders up to" in refuse(["diff(u**2, x, 9)"], ["u=x"], ["x=0:1"])
    assert "orders up to" in refuse(["diff(u_xxxx, x, 5)"], ["u=x"], ["x=0:1"])


def test_laplacian_sums_over_the_spatial_variables() -> None:
    s = system(["u_t - laplacian(u)"], ["u=x*y*t"], ["x=0:1", "y=0:1", "t=0:1"])
    assert s.residuals[0] == ph("u", 2) - ph("u", 0, 0) - ph("u", 1, 1)
    s = system(["u_t - laplacian(u)"], ["u=x*y*t"], ["x=0:1", "y=0:1", "t=0:1"], space="x")
    assert s.residuals[0] == ph("u", 2) - ph("u", 0, 0)
    s = system(["laplacian(u**2)"], ["u=x"], ["x=0:1"])
    assert sympy.expand(s.residuals[0] - 2 * ph("u", 0) ** 2 - 2 * ph("u") * ph("u", 0, 0)) == 0
    # A variable named time counts as time too; --space may include t.
    dom = parse_domain(["x=0:1", "time=0:1"])
    assert spatial_variables(dom) == ["x"]
    assert spatial_variables(dom, "x, time") == ["x", "time"]


def test_laplacian_heat_end_to_end() -> None:
    r = residual(
        "u_t = nu*laplacian(u)",
        ["u=exp(-2*nu*t)*sin(x)*sin(y)"],
        ["x=0:1", "y=0:1", "t=0:1"],
        param=["nu=0.1"],
        n=200,
    )
    assert r.status == "pass" and r.equations[0].symbolic == "proved"


@pytest.mark.parametrize(
    "pde, domain, space, needle",
    [
        ("laplacian(u)", ["t=0:1"], None, "only time"),
        ("laplacian(u)", ["x=0:1"], "z", "'z', which is not a domain variable"),
        ("laplacian(u)", ["x=0:1"], "x,x", "twice"),
        ("laplacian(u, x)", ["x=0:1"], None, "takes one expression"),
        ("u_x", ["x=0:1"], "y", "not a domain variable"),  # checked even without laplacian()
    ],
)
def test_laplacian_errors(pde: str, domain: list[str], space: str | None, needle: str) -> None:
    assert needle in refuse([pde], ["u=x" if "x=0:1" in domain else "u=t"], domain, None, space)


def test_cli_space_option() -> None:
    result = run_cli(
        "residual",
        "--pde",
        "u_t - laplacian(u)",
        "-s",
        "u=exp(-t)*sin(x)",
        "-d",
        "x=0:1,y=0:1,t=0:1",
        "--space",
        "x,y",
        "-n",
        "100",
    )
    assert result.exit_code == 0, result.stderr


# --forcing within its budget ------------------------------------------------------------------


def _slow_on_two(value: int) -> int:
    if value == 2:
        time.sleep(60)
    return value * 10


def test_one_budget_is_shared_and_unfinished_items_come_back_unchanged() -> None:
    from pinncheck._symbolic import run_each_with_budget

    results = run_each_with_budget(_slow_on_two, [1, 2, 3], 2.0)
    assert results[0] == ("ok", 10)
    assert results[1] == ("timeout", None) and results[2] == ("timeout", None)
    assert run_each_with_budget(_slow_on_two, [1], 0) == [("timeout", None)]


def test_forcing_not_simplified_in_time_is_printed_with_a_note() -> None:
    args = ["residual", "--pde", "u_t - u_xx", "-s", "u=sin(x)*cos(t)", "-d", "x=0:1,t=0:1"]
    args += ["-n", "50", "--any-residual", "--forcing", "--symbolic-timeout", "0"]
    result = run_cli(*args)
    assert result.exit_code == 0
    assert "forcing eq1: f = " in result.stdout and "not simplified" in result.stdout
    doc = run_cli(*args, "--format", "json").json()
    eq = doc["equations"][0]
    assert eq["forcing_simplified"] is False
    assert eq["forcing"] == eq["exact_residual"]  # unsimplified, as computed


def test_forcing_is_simplified_within_the_budget_and_zero_when_proved() -> None:
    r = residual(
        "u_t - u_xx", ["u=sin(x)*cos(t)"], ["x=0:1", "t=0:1"], n=50, any_residual=True, forcing=True
    )
    e = r.equations[0]
    assert e.forcing_simplified
    f = e.exact_residual
    assert sympy.simplify(f - (sympy.sin(x) * sympy.cos(t) - sympy.sin(x) * sympy.sin(t))) == 0
    r = residual("u_t - u_xx", ["u=exp(-t)*sin(x)"], ["x=0:1", "t=0:1"], n=50, forcing=True)
    assert r.equations[0].forcing == "0"
