"""Tests of pinncheck._parse: the eval-free allowlist parser from text to SymPy."""

from __future__ import annotations

import ast
import builtins
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sympy  # the parser results are SymPy objects
from hypothesis import given, settings
from hypothesis import strategies as st

import pinncheck._parse as parse_module
from pinncheck._errors import ExpressionError, PinncheckError
from pinncheck._parse import (
    CONSTANTS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_LENGTH,
    MAX_NODES,
    MULTI_FUNCTIONS,
    RESERVED_NAMES,
    check_identifier,
    parse_constant,
    parse_expression,
    real_symbol,
    sigmoid,
)

x = real_symbol("x")
x1 = real_symbol("x1")
x2 = real_symbol("x2")
t = real_symbol("t")

TIME_LIMIT_S = 2.0


def refuse(text: str, *, what: str = "expression", **kwargs: Any) -> str:
    """Assert that ``parse_expression`` refuses ``text`` quickly; return the message."""
    start = time.perf_counter()
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, what=what, **kwargs)
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_LIMIT_S, f"took {elapsed:.2f} s to refuse {text[:60]!r}"
    message = str(info.value)
    assert "\n" not in message
    assert what in message
    return message


def refuse_constant(text: str, **kwargs: Any) -> str:
    start = time.perf_counter()
    with pytest.raises(ExpressionError) as info:
        parse_constant(text, what="parameter nu", **kwargs)
    assert time.perf_counter() - start < TIME_LIMIT_S
    message = str(info.value)
    assert "\n" not in message and "parameter nu" in message
    return message


# ---------------------------------------------------------------------------------------------
# Valid input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", sympy.Integer(0)),
        ("42", sympy.Integer(42)),
        ("  7 ", sympy.Integer(7)),
        ("0.5", sympy.Rational(1, 2)),
        ("0.1", sympy.Rational(1, 10)),
        ("0.02", sympy.Rational(1, 50)),
        ("1e-3", sympy.Rational(1, 1000)),
        ("2.5e3", sympy.Integer(2500)),
        (".25", sympy.Rational(1, 4)),
        ("1_000", sympy.Integer(1000)),
        ("pi", sympy.pi),
        ("E", sympy.E),
        ("2*pi", 2 * sympy.pi),
        ("-x1^2", -(x1**2)),
        ("-x1**2", -(x1**2)),
        ("2^3^2", sympy.Integer(512)),
        ("(2^3)^2", sympy.Integer(64)),
        ("a*b^2", real_symbol("a") * real_symbol("b") ** 2),
        ("x1^-1", 1 / x1),
        ("x1 - x2 + t", x1 - x2 + t),
        ("x1 - (x2 + t)", x1 - x2 - t),
        ("x1 / x2 * t", x1 * t / x2),
        ("x1 / (x2 * t)", x1 / (x2 * t)),
        ("+x1", x1),
        ("--x1", x1),
        ("---x1", -x1),
        ("0.5*t", t / 2),
        ("x1\n + 1", x1 + 1),
        ("\tsin(x1)\t", sympy.sin(x1)),
        ("x1x2", real_symbol("x1x2")),
        ("2**0.5", sympy.sqrt(2)),
        ("sqrt(1e-300)", sympy.Rational(1, 10**150)),
    ],
)
def test_valid_expressions(text: str, expected: sympy.Expr) -> None:
    result = parse_expression(text)
    assert isinstance(result, sympy.Expr)
    assert result == expected


def test_float_literals_become_exact_rationals() -> None:
    assert parse_expression("0.5*t") == parse_expression("t/2")
    value = parse_expression("0.1")
    assert isinstance(value, sympy.Rational) and value == sympy.Rational(1, 10)
    assert not parse_expression("0.3*x1 + 1.7").atoms(sympy.Float)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_builds_the_right_sympy_object(name: str) -> None:
    result = parse_expression(f"{name}(x1)")
    assert result == FUNCTIONS[name](x1)
    expected_class = {"sqrt": sympy.Pow, "log10": sympy.Mul}.get(name, FUNCTIONS[name])
    assert result.func is expected_class


def test_function_table_is_exactly_the_documented_one() -> None:
    assert set(FUNCTIONS) == {
        "sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "sinh", "cosh", "asin", "acos",
        "atan", "asinh", "acosh", "atanh", "erf", "erfc", "Abs", "sigmoid", "sech", "csch",
        "coth", "log10", "Heaviside",
    }  # fmt: skip
    assert set(MULTI_FUNCTIONS) == {"Min", "Max"}
    assert FUNCTIONS["sin"] is sympy.sin
    assert FUNCTIONS["Abs"] is sympy.Abs
    assert FUNCTIONS["sigmoid"] is sigmoid
    assert dict(CONSTANTS) == {"pi": sympy.pi, "E": sympy.E}
    assert (MAX_LENGTH, MAX_NODES, MAX_DEPTH, MAX_EXPONENT) == (10_000, 1_500, 100, 1_000)


def test_symbols_are_real_and_shared() -> None:
    assert real_symbol("x").is_real
    result = parse_expression("x1 + x2")
    assert result.free_symbols == {x1, x2}
    assert all(symbol.is_real for symbol in result.free_symbols)
    assert real_symbol("x1") is x1


def test_abs_differentiates_to_sign() -> None:
    derivative = sympy.diff(parse_expression("Abs(x)"), x)
    assert derivative == sympy.sign(x)
    assert not derivative.has(sympy.re, sympy.im)


def test_nested_depth_up_to_the_limit_is_accepted() -> None:
    assert parse_expression("sin(" * (MAX_DEPTH - 1) + "x" + ")" * (MAX_DEPTH - 1)).has(x)
    assert parse_expression("(" * 150 + "x" + ")" * 150) == x


def test_long_sum_below_the_node_limit_is_flattened() -> None:
    terms = [f"x{i}" for i in range(600)]
    result = parse_expression(" + ".join(terms) + " - " + " - ".join(terms[:10]))
    assert isinstance(result, sympy.Add) and len(result.args) == 590
    product = parse_expression("*".join(terms[:300]) + "/" + "/".join(terms[:299]))
    assert product == real_symbol("x299")


def test_resolve_name_hook() -> None:
    seen: list[str] = []

    def resolve(name: str) -> sympy.Expr:
        seen.append(name)
        if name == "nu":
            return sympy.Rational(1, 100)
        if name == "u":
            return x1 * x2
        raise ExpressionError(f"no such thing as {name}")

    assert parse_expression("nu*u + pi", resolve_name=resolve) == x1 * x2 / 100 + sympy.pi
    assert seen == ["nu", "u"]
    with pytest.raises(ExpressionError, match="^no such thing as w$"):
        parse_expression("u + w", resolve_name=resolve)
    # Reserved names are refused before the hook sees them.
    refuse("u + e", resolve_name=resolve)
    assert "e" not in seen


def test_resolve_name_may_return_unevaluable_constants() -> None:
    u_at_0 = sympy.Function("u")(sympy.Integer(0))  # e.g. a boundary value, not a number

    def resolve(name: str) -> sympy.Expr:
        return u_at_0 if name == "u0" else real_symbol(name)

    result = parse_expression("exp(u0) + u0^2 + sin(x1)^u0", resolve_name=resolve)
    assert result == sympy.exp(u_at_0) + u_at_0**2 + sympy.sin(x1) ** u_at_0


def test_extra_calls_hook() -> None:
    calls: list[list[sympy.Expr]] = []

    def diff(args: list[sympy.Expr]) -> sympy.Expr:
        calls.append(args)
        if len(args) != 2:
            raise ExpressionError("diff needs two arguments")
        return sympy.diff(args[0], args[1])

    extra = {"diff": diff}
    assert parse_expression("diff(x1^3, x1) + 1", extra_calls=extra) == 3 * x1**2 + 1
    assert calls == [[x1**3, x1]]
    with pytest.raises(ExpressionError, match="diff needs two arguments"):
        parse_expression("diff(x1)", extra_calls=extra)
    message = refuse("diff + 1", extra_calls=extra)
    assert "'diff' is a function" in message
    message = refuse("grad(x1)", extra_calls=extra)
    assert "diff" in message and "unknown function 'grad'" in message
    # Without the hook, diff is an unknown function.
    assert "unknown function 'diff'" in refuse("diff(x1, x1)")


def test_exceptions_from_hooks_are_converted() -> None:
    def broken(args: list[sympy.Expr]) -> sympy.Expr:
        raise ZeroDivisionError("oops")

    message = refuse("f(x1)", extra_calls={"f": broken})
    assert "ZeroDivisionError" in message


# ---------------------------------------------------------------------------------------------
# parse_constant
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "exact", "value"),
    [
        ("-pi", -sympy.pi, -math.pi),
        ("2*pi", 2 * sympy.pi, 2 * math.pi),
        (
            "10-sqrt(100+4*pi**2)",
            10 - sympy.sqrt(100 + 4 * sympy.pi**2),
            10 - math.sqrt(100 + 4 * math.pi**2),
        ),
        ("0.01/pi", sympy.Rational(1, 100) / sympy.pi, 0.01 / math.pi),
        ("E^2", sympy.exp(2), math.e**2),
        ("sigmoid(1)", sigmoid(1), 1 / (1 + math.exp(-1))),
        ("1e300", sympy.Integer(10) ** 300, 1e300),
    ],
)
def test_parse_constant_values(text: str, exact: sympy.Expr, value: float) -> None:
    result, number = parse_constant(text)
    assert result == exact
    assert isinstance(number, float)
    assert number == pytest.approx(value, rel=1e-14)


def test_parse_constant_with_names() -> None:
    a_exact, a_value = parse_constant("1/3")
    names = {"a": a_exact}
    result, value = parse_constant("2*a + pi", names=names)
    assert result == sympy.Rational(2, 3) + sympy.pi
    assert value == pytest.approx(2 / 3 + math.pi)
    message = refuse_constant("2*b", names=names)
    assert "'b'" in message and "a" in message


@pytest.mark.parametrize(
    "text",
    [
        "x",
        "sqrt(-1)",
        "log(-1)",
        "asin(2)",
        "acosh(0.5)",
        "1/0",
        "log(0)",
        "exp(700)",
        "10**300*10",
        "1e301",
        "e",
        "",
    ],
)
def test_parse_constant_refuses(text: str) -> None:
    refuse_constant(text)


def test_parse_constant_messages() -> None:
    assert "'x'" in refuse_constant("2*x")
    assert "complex" in refuse_constant("asin(2)")
    assert "complex" in refuse_constant("sqrt(-1)")


# ---------------------------------------------------------------------------------------------
# sigmoid
# ---------------------------------------------------------------------------------------------


def test_sigmoid() -> None:
    assert sigmoid(0) == sympy.Rational(1, 2)
    assert isinstance(sigmoid(x), sigmoid) and sigmoid(1).func is sigmoid
    assert sigmoid(x).is_real
    first = sympy.diff(sigmoid(x), x)
    assert sympy.simplify(first - sigmoid(x) * (1 - sigmoid(x))) == 0
    second = sympy.diff(sigmoid(x), x, 2)
    closed = 1 / (1 + sympy.exp(-x))
    assert sigmoid(x).rewrite(sympy.exp) == closed
    for point in (-3.0, -0.25, 0.0, 0.5, 2.0):
        at = {x: sympy.Float(point)}
        assert float(sigmoid(x).subs(at).evalf()) == pytest.approx(float(closed.subs(at)))
        assert float(second.subs(at).evalf()) == pytest.approx(
            float(sympy.diff(closed, x, 2).subs(at).evalf())
        )


# ---------------------------------------------------------------------------------------------
# Refused input
# ---------------------------------------------------------------------------------------------

ADVERSARIAL = [
    "10**10**10",
    "x1**(10**10**10)",
    "loggamma(10**29)",
    "(" * 5000 + "x" + ")" * 5000,
    "(" * 2000 + "x" + ")" * 2000,
    "sin(" * 150 + "x" + ")" * 150,
    "+".join(["x1"] * 3000),
    "x" * 1_000_000,
    "-" * 5000 + "x",
    "9**9**9**9",
    "2x1",
    "sin x1",
    "\uff581",
    "\u0445",
    "x.real",
    "x[0]",
    "sin(x=1)",
    "lambda: 1",
    "[i for i in ()]",
    '"abc"',
    "True",
    "None",
    "...",
    "1j",
    "x if x else 1",
    "x < 1",
    "x == 1",
    "x and 1",
    "not x",
    "x % 2",
    "x // 2",
    "x @ x",
    "x << 1",
    "x & 1",
    "~x",
    'f"{x}"',
    "*x",
    "(x, 1)",
    "x, 1",
    "{x}",
    "{x: 1}",
    "(x := 1)",
    "1/0",
    "x/0",
    "1/(1/0)",
    "log(0)",
    "atanh(1)",
    "tan(pi/2)",
    "sqrt(-1)",
    "log(-1)",
    "acosh(0)",
    "(-8)^(1/3)",
    "(-1)^(1/3)",
    "sin(1, 2)",
    "sin()",
    "log(x, 2)",
    "",
    "   ",
    "e",
    "x + I",
    "oo",
    "_x",
    "__import__",
    "pi(2)",
    "(x+1)(x-1)",
    "x1(x2)",
    "sin",
    "1e400",
    "1e301",
    "1" * 400,
    "2**1001",
    "2**-1001",
    "x**1001",
    "(x**1000)**1000",
    "(2*x)**1000",
    "(10**300*x)**1000",
    "exp(1000)",
    "exp(exp(exp(10)))",
    "cosh(-1000)",
    "E**700",
    "pi^pi^pi^pi",
    "sqrt(10**299 + 1)",
    "erfc(-10**300)",
    "x = 1",
    "x # comment",
    "x \\",
    "x\x00",
    "(x",
    "x)",
    "x ^^ 2",
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=lambda text: repr(text[:30]))
def test_adversarial_input_is_refused_quickly(text: str) -> None:
    refuse(text)


def test_long_constant_nesting_is_refused_quickly() -> None:
    # SymPy evaluates constant arguments numerically at every level of nesting.
    inner = "+".join(f"sin({k})" for k in range(1, 300))
    assert "too complex" in refuse("exp(sin(" * 45 + inner + "))" * 45)
    assert "too complex" in refuse("sin(" * 98 + "1" + ")" * 98)
    assert parse_expression("sin(" * 30 + "1" + ")" * 30).is_number
    assert parse_expression("sin(" * 98 + "x" + ")" * 98).has(x)


def test_non_text_is_refused() -> None:
    with pytest.raises(ExpressionError):
        parse_expression(b"x1")  # type: ignore[arg-type]
    with pytest.raises(ExpressionError):
        parse_constant(3.0)  # type: ignore[arg-type]


def test_length_is_checked_before_anything_else() -> None:
    message = refuse("\uff58" * (MAX_LENGTH + 1))
    assert "too long" in message and "FULLWIDTH" not in message
    refuse("x" * 5_000_000)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("2x1", ["2*x1", "implicit multiplication", "column 1"]),
        ("x1 + 3.5t", ["3.5*t", "implicit multiplication", "column 6"]),
        ("sin x1", ["sin(x1)"]),
        ("1 + cosh  t", ["cosh(t)"]),
        ("x1 ** (2", ["never closed"]),
        ("2 x", ["column 3", "missing operator"]),
        ("\uff581", ["FULLWIDTH LATIN SMALL LETTER X", "column 1", "'x'"]),
        ("a + \u0445", ["CYRILLIC SMALL LETTER HA", "column 5"]),
        ("x1 \u2212 1", ["MINUS SIGN", "'-'"]),
        ("x.real", ["attribute access", "column 2"]),
        ("x[0]", ["indexing"]),
        ("sin(x=1)", ["keyword"]),
        ("lambda: 1", ["lambda"]),
        ("[i for i in ()]", ["comprehension"]),
        ('"abc"', ["string"]),
        ('f"{x}"', ["f-string"]),
        ("x < 1", ["comparison"]),
        ("x if x else 1", ["if ... else"]),
        ("x % 2", ["'%'"]),
        ("x // 2", ["'//'", "Use / for division"]),
        ("x, 1", ["comma"]),
        (
            "foo(x)",
            ["unknown function 'foo'", "allowed functions are: Abs, Heaviside, Max, Min, acos"],
        ),
        ("sin(1, 2)", ["'sin' takes exactly 1 argument", "2 were given"]),
        ("log(x, 2)", ["'log' takes exactly 1 argument"]),
        ("1/0", ["division by zero"]),
        ("log(0)", ["undefined"]),
        ("sqrt(-1)", ["real-valued"]),
        ("10**10**10", ["too large"]),
        ("+".join(["x1"] * 3000), ["expression too large", "at most 1500"]),
        ("sin(" * 150 + "x" + ")" * 150, ["too deeply nested"]),
        ("(" * 2000 + "x" + ")" * 2000, ["too deeply nested"]),
        ("1e400", ["not a finite number"]),
        ("1" * 400, ["more than 300 digits"]),
        ("x + e", ["Use E"]),
        ("", ["empty"]),
    ],
    ids=lambda value: repr(value)[:30] if isinstance(value, str) else None,
)
def test_error_messages_explain_the_problem(text: str, fragments: list[str]) -> None:
    message = refuse(text, what="domain bound for x1")
    assert message.startswith("Invalid domain bound for x1")
    for fragment in fragments:
        assert fragment in message


def test_error_is_a_pinncheck_value_error() -> None:
    with pytest.raises(PinncheckError):
        parse_expression("1/0")
    with pytest.raises(ValueError):
        parse_expression("1/0")


# ---------------------------------------------------------------------------------------------
# Security: nothing in the text is ever executed
# ---------------------------------------------------------------------------------------------


def payloads(marker: Path) -> list[str]:
    m = str(marker)
    return [
        f"__import__('os').system('touch {m}')",
        f'__import__("os").system("touch {m}")',
        f"sin.eval.__globals__['__builtins__']['exec']('open({m!r},\"w\")')",
        f"sin.__class__.__init__.__globals__['__builtins__']['open']({m!r}, 'w')",
        "(lambda: __import__('os'))()",
        f"(lambda: __import__('os').system('touch {m}'))()",
        "().__class__.__bases__[0].__subclasses__()",
        "x.__class__.__mro__[-1].__subclasses__()",
        f"exec('open({m!r}, \"w\")')",
        f"eval('open({m!r}, \"w\")')",
        f"open('{m}', 'w')",
        f"open({m!r}, 'w')",
        "getattr(sin, 'eval')",
        f"compile('open({m!r}, \"w\")', 'x', 'exec')",
        f"[open({m!r}, 'w') for _ in (1,)]",
        f"sin(x) if open({m!r}, 'w') else 0",
        f"(f := open({m!r}, 'w'))",
        "breakpoint()",
        "globals()",
        "sympify('x')",
        f"S('open({m!r}, \"w\")')",
        "__builtins__",
        f"Symbol('x').__class__.__init__.__globals__['os'].system('touch {m}')",
    ]


def test_no_payload_runs(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    for payload in payloads(marker):
        with pytest.raises(ExpressionError):
            parse_expression(payload)
        with pytest.raises(ExpressionError):
            parse_constant(payload)
        assert not marker.exists(), payload


@pytest.fixture
def no_code_execution(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make eval, exec, compile and SymPy's string parser fail loudly while a test runs."""
    used: list[str] = []

    def forbidden(name: str) -> Any:
        def replacement(*args: Any, **kwargs: Any) -> Any:
            used.append(name)
            raise AssertionError(f"{name} was called")

        return replacement

    import sympy.parsing.sympy_parser as sympy_parser

    monkeypatch.setattr(sympy_parser, "parse_expr", forbidden("parse_expr"))
    monkeypatch.setattr(builtins, "eval", forbidden("eval"))
    monkeypatch.setattr(builtins, "exec", forbidden("exec"))
    yield used


def test_valid_parsing_never_executes_code(no_code_execution: list[str]) -> None:
    texts = ["sin(x1)^2 + 0.5*exp(-t)*sigmoid(x2)", "Abs(x1 - 2.5e-3)/sqrt(pi)", "E^x1"]
    for text in texts:
        assert isinstance(parse_expression(text), sympy.Expr)
    assert parse_constant("10-sqrt(100+4*pi**2)")[1] < 0
    with pytest.raises(ExpressionError):
        parse_expression("__import__('os')")
    assert no_code_execution == []


def test_module_source_has_no_dangerous_calls() -> None:
    """The parser itself never calls anything that could run or parse code from a string."""
    source = Path(parse_module.__file__).read_text(encoding="utf-8")
    string_parsers = {"sympify", "parse_expr", "lambdify", "symbols", "S", "N", "Float", "eval"}
    builtins_banned = {"eval", "exec", "compile", "__import__", "open", "breakpoint"}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                assert func.id not in builtins_banned | string_parsers, func.id
            elif isinstance(func, ast.Attribute):
                assert func.attr not in string_parsers | {"exec"}, func.attr


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x", "x1", "t", "nu", "alpha", "u_x", "Re"])
def test_check_identifier_accepts(name: str) -> None:
    assert check_identifier(f" {name} ", what="variable name") == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("sin", "function"),
        ("sigmoid", "function"),
        ("pi", "constant"),
        ("E", "constant"),
        ("I", "imaginary"),
        ("e", "Use E"),
        ("diff", "derivative"),
        ("oo", "reserved"),
        ("zoo", "reserved"),
        ("1x", "not a valid name"),
        ("x-y", "not a valid name"),
        ("x y", "not a valid name"),
        ("lambda", "keyword"),
        ("None", "keyword"),
        ("_x", "'_'"),
        ("__class__", "'_'"),
        ("\uff58", "FULLWIDTH LATIN SMALL LETTER X"),
        ("", "empty"),
    ],
)
def test_check_identifier_rejects(name: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as info:
        check_identifier(name, what="variable name")
    message = str(info.value)
    assert "variable name" in message and reason in message and "\n" not in message


def test_reserved_names() -> None:
    expected = {"diff", "laplacian", "e", "I", "oo", "nan", "zoo", "lambda", "if", "None"}
    assert expected | set(FUNCTIONS) | set(MULTI_FUNCTIONS) | set(CONSTANTS) <= RESERVED_NAMES
    # pinncheck never hands text to SymPy, so SymPy's S, N, O and Q are ordinary names.
    assert not {"S", "N", "O", "Q"} & RESERVED_NAMES
    for name in ("S", "N", "O", "Q"):
        assert check_identifier(name, what="variable") == name
        assert parse_expression(f"2*{name}") == 2 * real_symbol(name)
    assert not {"x", "x1", "t", "nu"} & RESERVED_NAMES


# ---------------------------------------------------------------------------------------------
# Fuzzing: only sympy.Expr or ExpressionError, never anything else
# ---------------------------------------------------------------------------------------------

EXPRESSION_ALPHABET = "x1 2+-*/^().e sincoexplgqrtpiE,_"
expression_like = st.text(alphabet=EXPRESSION_ALPHABET, max_size=200)
tokens = st.lists(
    st.sampled_from(
        ["x1", "t", "2", "0.5", "1e3", "pi", "E", "+", "-", "*", "/", "^", "**", "(", ")",
         "sin(", "exp(", "log(", "sqrt(", "Abs(", "sigmoid(", "10", "9", "0"]
    ),
    max_size=40,
).map("".join)  # fmt: skip


def parse_or_refuse(text: str) -> None:
    start = time.perf_counter()
    try:
        result = parse_expression(text)
    except ExpressionError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(result, sympy.Expr)
    assert time.perf_counter() - start < TIME_LIMIT_S


def constant_or_refuse(text: str) -> None:
    try:
        exact, value = parse_constant(text)
    except ExpressionError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(exact, sympy.Expr) and not exact.free_symbols
        assert isinstance(value, float) and math.isfinite(value) and abs(value) <= 1e300


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_random_text(text: str) -> None:
    parse_or_refuse(text)


@settings(max_examples=300, deadline=None)
@given(expression_like)
def test_fuzz_expression_like_text(text: str) -> None:
    parse_or_refuse(text)


@settings(max_examples=300, deadline=None)
@given(tokens)
def test_fuzz_token_sequences(text: str) -> None:
    parse_or_refuse(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), expression_like, tokens))
def test_fuzz_constants(text: str) -> None:
    constant_or_refuse(text)
