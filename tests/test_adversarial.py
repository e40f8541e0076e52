"""Adversarial inputs (issue 13): every one ends quickly in a documented exit code.

Each test reproduces one finding with small caps, so it runs in seconds; the limits themselves
are documented in docs/limits.md.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_verify import HEAT, HEAT_CODE

from helpers import run_cli
from pinncheck import (
    ExitCode,
    ExpressionError,
    OptionError,
    PinncheckError,
    UserCodeError,
    _limits,
    check,
    probe,
    residual,
    verify,
)
from pinncheck._domain import parse_domain
from pinncheck._evaluate import Evaluator
from pinncheck._exact import exact_partials
from pinncheck._parse import FUNCTIONS, parse_expression, real_symbol
from pinncheck._pde import parse_params
from pinncheck._singular import singularity_warnings


def box(n_vars: int, lo: float = 1.0, hi: float = 2.0) -> list[str]:
    return [f"x{i}={lo}:{hi}" for i in range(1, n_vars + 1)]


# Bounds before work ---------------------------------------------------------------------------


def test_partials_are_counted_before_any_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_limits, "MAX_PARTIALS", 50)
    r = run_cli("check", "x1*x2", *[a for v in box(10) for a in ("-d", v)], "--order", "2")
    assert r.exit_code == ExitCode.USAGE, r.stdout + r.stderr
    assert "65 partial derivatives" in r.stderr and "MAX_PARTIALS" in r.stderr
    assert "--order 1" in r.stderr and "Traceback" not in r.stderr
    # At the real limit, 100 variables at order 6 are refused from the count alone.
    monkeypatch.undo()
    with pytest.raises(OptionError, match="1,705,904,745 partial derivatives"):
        check("x1", box(100), order=6, n=4)


def test_derivative_growth_is_predicted_before_the_next_diff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A long product grows ~(factors)x per order: refused from the first derivative's size.
    monkeypatch.setattr(_limits, "MAX_DERIVATIVE_NODES", 5_000)
    monkeypatch.setattr(_limits, "SMALL_DERIVATIVE_NODES", 100)
    product = "*".join(f"(x1+{i})" for i in range(1, 31))
    with pytest.raises(ExpressionError, match=r"order-2 derivative .* predicted .*Lower --order"):
        check(product, ["x1=0:1"], n=4)
    # An expression that does not grow is not refused by the same caps.
    assert check("sin(x1)*exp(x1)", ["x1=0:1"], order=4, n=4).status == "pass"


def test_derivative_time_is_predicted_before_the_next_diff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_limits, "MAX_SYMBOLIC_SECONDS", 0.0)
    monkeypatch.setattr(_limits, "SMALL_DERIVATIVE_NODES", 5)
    nested = "sin(sin(sin(sin(x1 + x2))))"
    r = run_cli("check", nested, "-d", "x1=0:1", "-d", "x2=0:1", "--order", "3", "-n", "4")
    assert r.exit_code == ExitCode.USAGE and "MAX_SYMBOLIC_SECONDS" in r.stderr


def test_deep_function_chains_are_refused_before_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_limits, "MAX_FUNCTION_NESTING", 5)
    chain = "x1"
    for _ in range(6):
        chain = f"sigmoid({chain})"
    with pytest.raises(ExpressionError, match="nests 6 function calls.*MAX_FUNCTION_NESTING"):
        check(chain, ["x1=0:1"], n=4)
    five = "sin(sigmoid(sigmoid(sigmoid(sigmoid(x1)))))"
    assert check(five, ["x1=0:1"], n=4).status == "pass"


def test_parameter_chain_does_not_grow_exponentially() -> None:
    spec = ["p0=sin(1)/2"] + [f"p{i}=p{i - 1}*(p{i - 1}+1)/3" for i in range(1, 14)]
    params = parse_params(spec)
    for value in params.values():
        assert _limits.tree_size(value, 1_000) <= 200
    # The values are right: recompute the chain in floating point.
    p = math.sin(1) / 2
    for i in range(1, 14):
        p = p * (p + 1) / 3
        assert float(params[f"p{i}"]) == pytest.approx(p, rel=1e-14)


def test_diff_order_in_pde_text_is_refused_before_building() -> None:
    with pytest.raises(ExpressionError, match=r"order 10,000,000 is used; .* up to 6"):
        residual("diff(u, x, 10000000)", ["u=sin(x)"], ["x=0:1"], n=4)
    r = run_cli("residual", "--pde", "diff(u, x, 300000000)", "--solution", "u=x", "-d", "x=0:1")
    assert r.exit_code == ExitCode.USAGE and "300,000,000" in r.stderr


def test_singularity_search_is_not_exponential_in_the_variables() -> None:
    # 3 points per axis in 30 variables would be 2e14 points; only x1 is sampled.
    assert singularity_warnings(parse_expression("1/x1"), parse_domain(box(30))) == []
    found = singularity_warnings(parse_expression("1/x1"), parse_domain(box(30, -1, 1)))
    assert len(found) == 1 and "x1 = 0" in found[0]
    # A denominator in many variables is sampled at random points, still bounded.
    many = "1/(" + "+".join(f"x{i}" for i in range(1, 31)) + ")"
    assert len(singularity_warnings(parse_expression(many), parse_domain(box(30, -1, 1)))) == 1
    assert singularity_warnings(parse_expression(many), parse_domain(box(30))) == []


# Faults end in documented codes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [MemoryError(), RuntimeError("DefaultCPUAllocator: can't allocate memory: 4e11 bytes")],
)
def test_out_of_memory_is_exit_2_with_advice(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    from pinncheck import _check

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(_check.CheckJob, "run", fail)
    r = run_cli("check", "x1**2", "-d", "x1=0:1", "-f", "json")
    assert r.exit_code == ExitCode.USAGE, r.stderr
    assert "--chunk-size" in r.stderr and "Traceback" not in r.stderr
    assert r.json()["exit_code"] == 2 and "out of memory" in r.json()["error"]


def write_check(path: Path, prefix: bytes = b"", extra: str = "") -> Path:
    body = 'name = "sq"\nexpr = "x1**2"\ndomain = ["x1 = 0:1"]\npoints = 10\n'
    path.write_bytes(prefix + ("[[check]]\n" + body + extra).encode())
    return path


def test_check_file_with_bom_is_accepted(tmp_path: Path) -> None:
    r = run_cli("run", str(write_check(tmp_path / "bom.toml", b"\xef\xbb\xbf")))
    assert r.exit_code == ExitCode.OK, r.stderr


def test_deeply_nested_check_file_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 3000 + "]" * 3000 + "\n")
    r = run_cli("run", str(path))
    assert r.exit_code == ExitCode.USAGE and "MAX_CHECK_FILE_NESTING" in r.stderr


def test_huge_check_file_is_refused(tmp_path: Path) -> None:
    padding = ("# " + "x" * 98 + "\n") * (_limits.MAX_CHECK_FILE_BYTES // 100 + 1)
    r = run_cli("run", str(write_check(tmp_path / "big.toml", extra=padding)))
    assert r.exit_code == ExitCode.USAGE and "MAX_CHECK_FILE_BYTES" in r.stderr


# Every allowlisted function evaluates ---------------------------------------------------------

X = real_symbol("x1")
POINTS = torch.linspace(0.2, 0.7, 6, dtype=torch.float64)


def evaluate_partials(text: str, order: int = 4) -> list[torch.Tensor]:
    derivs = exact_partials(parse_expression(text), [X], [(0,) * k for k in range(1, order + 1)])
    ev = Evaluator({X: POINTS})
    return [ev.tensor(d) for d in derivs.values()]


@pytest.mark.parametrize("outer", sorted(FUNCTIONS))
def test_every_function_and_composition_evaluates_to_order_4(outer: str) -> None:
    # No "cannot evaluate atan2/re/DiracDelta": each derivative lowers to the torch table.
    for inner in ["", *sorted(FUNCTIONS)]:
        text = f"{outer}({inner}(x1))" if inner else f"{outer}(x1)"
        try:
            evaluate_partials(text)
        except ExpressionError as exc:
            pytest.fail(f"{text}: {exc}")


def test_abs_derivatives_are_right_and_undefined_on_the_kink() -> None:
    # Abs(sqrt(x)) = sqrt(x) on (0.1, 0.9): its derivatives are those of sqrt.
    got = evaluate_partials("Abs(sqrt(x1))", 3)
    want = [0.5 * POINTS**-0.5, -0.25 * POINTS**-1.5, 0.375 * POINTS**-2.5]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-14, atol=0)
    # |x| at x = -0.5, 0, 0.5: slope -1, undefined, 1; higher orders 0, undefined, 0.
    pts = torch.tensor([-0.5, 0.0, 0.5], dtype=torch.float64)
    derivs = exact_partials(parse_expression("Abs(x1)"), [X], [(0,), (0, 0), (0, 0, 0)])
    ev = Evaluator({X: pts})
    first, second, third = (ev.tensor(derivs[a]) for a in [(0,), (0, 0), (0, 0, 0)])
    assert first[0] == -1 and first[2] == 1 and math.isnan(first[1])
    for d in (second, third):
        assert d[0] == 0 and d[2] == 0 and math.isnan(d[1])
    report = check("Abs(x1)", ["x1=-1:1"], order=3, n=20)
    assert report.status == "pass" and any("kink" in w for w in report.warnings)


# Singularities that touch zero ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "domain"),
    [
        ("1/(cos(x1)-1)", "x1=-1:1"),
        ("log((x1-0.3)**2)", "x1=0:1"),
        ("log((x1-x2)**2 + (x2-0.5)**2)", None),
    ],
)
def test_zero_touched_without_sign_change_is_warned(expr: str, domain: str | None) -> None:
    spec = [domain] if domain else ["x1=0:1", "x2=0.123:0.9"]
    found = singularity_warnings(parse_expression(expr), parse_domain(spec))
    assert found and "without a sign change" in found[0]


def test_near_zero_that_does_not_touch_is_not_warned() -> None:
    for expr in ["1/(cos(x1)-1.001)", "log((x1-0.3)**2 + 1e-6)"]:
        assert singularity_warnings(parse_expression(expr), parse_domain(["x1=0:1"])) == []


# Real client types ----------------------------------------------------------------------------


def user_module(tmp_path: Path, body: str) -> str:
    path = tmp_path / "user_mod.py"
    path.write_text(HEAT_CODE + textwrap.dedent(body))
    return str(path)


class LabelTensor(torch.Tensor):
    """Like PINA's: every op's result must carry labels, which torch's own ops do not set."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = super().__torch_function__(func, types, args, kwargs or {})
        if isinstance(out, LabelTensor):
            out.labels = out._labels
        return out


def labelled(t: torch.Tensor) -> torch.Tensor:
    out = t.as_subclass(LabelTensor)
    out.__dict__["_labels"] = ["r"]
    return out


def test_tensor_subclass_result_is_read_as_a_tensor(tmp_path: Path) -> None:
    target = user_module(
        tmp_path,
        """
        from test_adversarial import labelled

        def residual(x, u):
            return labelled(correct(x, u))
        """,
    )
    report = verify(target + ":residual", **HEAT)  # type: ignore[arg-type]
    assert report.status == "pass"
    # A model (probe) that returns the subclass is read the same way.
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh())
    assert probe(lambda x: labelled(net(x)), ["x=0:1", "t=0:1"], n=8).status == "pass"


def test_none_gradient_evidence_is_shown_when_user_code_fails(tmp_path: Path) -> None:
    target = user_module(
        tmp_path,
        """
        def residual(x, u):
            t = torch.zeros(x.shape[0], requires_grad=True)
            g = torch.autograd.grad(u.sum(), [x, t], allow_unused=True, create_graph=True)
            return g[1] * 2  # None * 2: TypeError
        """,
    )
    with pytest.raises(UserCodeError, match=r"TypeError.*returned None for 1 input\(s\) of shape"):
        verify(target + ":residual", **HEAT)  # type: ignore[arg-type]


def test_parameter_that_removes_a_term_is_warned() -> None:
    report = residual("u_t - nu*u_xx", ["u = sin(x)"], ["x=0:1", "t=0:1"], param=["nu=0"], n=8)
    assert any("nu = 0 removes -nu*u_xx" in w for w in report.warnings)
    report = residual("u_t - nu*u_xx", ["u = sin(x)"], ["x=0:1", "t=0:1"], param=["nu=1"], n=8)
    assert not any("removes" in w for w in report.warnings)


# Fuzz: random allowlisted expressions end in 0, 1 or 2 ----------------------------------------

LEAVES = st.sampled_from(["x1", "x2", "2", "0.5", "pi", "(x1-0.4)", "(x2+x1)"])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    unary = st.tuples(st.sampled_from(sorted(FUNCTIONS)), children).map(lambda t: f"{t[0]}({t[1]})")
    binary = st.tuples(children, st.sampled_from("+-*/"), children).map(
        lambda t: f"({t[0]}{t[1]}{t[2]})"
    )
    power = st.tuples(children, st.sampled_from(["2", "3", "-1", "0.5", "x1"])).map(
        lambda t: f"({t[0]})**{t[1]}"
    )
    return unary | binary | power


HANG_SECONDS = 120.0
EXPRESSIONS = st.recursive(LEAVES, lambda children: _combine(children), max_leaves=8)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(EXPRESSIONS, st.integers(1, 3))
def test_fuzz_random_expressions_end_in_a_documented_code(expr: str, order: int) -> None:
    # Any exception other than pinncheck's own (exit 2) fails the test: that would be exit 3.
    started = time.monotonic()
    try:
        report = check(expr, ["x1=0.1:0.9", "x2=-0.5:0.5"], order=order, n=16)
    except PinncheckError as exc:
        assert exc.exit_code == ExitCode.USAGE and str(exc)
    else:
        assert report.status in ("pass", "fail")
    # A hang guard, not a speed claim: the symbolic limits end every input within seconds.
    assert time.monotonic() - started < HANG_SECONDS


@pytest.mark.parametrize("expr", ["Abs(atanh(x1-0.5))", "1/(cos(x1)-1)"])
def test_subprocess_cases_end_in_a_documented_code(expr: str) -> None:
    cmd = [sys.executable, "-m", "pinncheck", "check", expr, "-d", "x1=0.1:0.9", "--order", "2"]
    proc = subprocess.run(
        [*cmd, "-n", "16", "-f", "json"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["kind"] == "check"
