"""The builder: SymPy objects from an allowlisted syntax tree.

Part of :mod:`pinncheck._parse`; the checks on each built node are in
:mod:`pinncheck._parse_guards`.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import NoReturn

import sympy

from pinncheck._parse_guards import Guards
from pinncheck._parse_names import (
    _LOG_MAX_MAGNITUDE,
    _MAX_DIGITS,
    _MAX_MAGNITUDE,
    _MAX_SPECIAL_ARGUMENT,
    CONSTANTS,
    FUNCTION_HINTS,
    FUNCTIONS,
    MAX_DEPTH,
    MULTI_FUNCTIONS,
    _identifier_problem,
    _show,
    real_symbol,
)
from pinncheck._parse_source import _HINT_GENERIC, Source

_GROWING_FUNCTIONS = frozenset({"exp", "sinh", "cosh"})
_NAMED_OPERATORS: dict[type[ast.AST], str] = {
    ast.Mod: "'%' (modulo)",
    ast.FloorDiv: "'//' (floor division)",
    ast.MatMult: "'@' (matrix multiplication)",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.BitOr: "'|'",
    ast.BitAnd: "'&'",
    ast.BitXor: "bitwise xor",
    ast.Invert: "'~'",
    ast.Not: "'not'",
}
_NAMED_NODES: dict[type[ast.AST], tuple[str, str]] = {
    ast.Attribute: (
        "attribute access ('.name') is not allowed",
        "write plain names such as x1 and call functions directly, e.g. sin(x1)",
    ),
    ast.Subscript: (
        "indexing with [...] is not allowed",
        "write each variable as a plain name such as x1",
    ),
    ast.Lambda: ("'lambda' is not allowed", "write the formula itself"),
    ast.ListComp: ("comprehensions are not allowed", "write the formula itself"),
    ast.SetComp: ("comprehensions are not allowed", "write the formula itself"),
    ast.DictComp: ("comprehensions are not allowed", "write the formula itself"),
    ast.GeneratorExp: ("comprehensions are not allowed", "write the formula itself"),
    ast.Compare: (
        "comparisons (<, >, ==, ...) are not allowed",
        "an expression is a formula, not a condition or an equation",
    ),
    ast.BoolOp: ("'and'/'or' are not allowed", "an expression is a formula, not a condition"),
    ast.IfExp: (
        "conditional 'if ... else' is not allowed",
        "piecewise expressions are not supported; Abs, sigmoid or tanh may approximate one",
    ),
    ast.NamedExpr: ("assignment ':=' is not allowed", "write the formula itself"),
    ast.Starred: ("'*' unpacking is not allowed", "pass exactly one argument, e.g. sin(x1)"),
    ast.JoinedStr: ("strings are not allowed", "write the formula itself, without quotes"),
    ast.FormattedValue: ("strings are not allowed", "write the formula itself, without quotes"),
    ast.Tuple: (
        "a comma-separated list is not allowed",
        "write a single expression; commas only separate arguments of a function call",
    ),
    ast.List: ("lists [...] are not allowed", "write a single expression"),
    ast.Dict: ("braces {...} are not allowed", "use parentheses ( ) for grouping"),
    ast.Set: ("braces {...} are not allowed", "use parentheses ( ) for grouping"),
    ast.Await: ("'await' is not allowed", "write the formula itself"),
    ast.Yield: ("'yield' is not allowed", "write the formula itself"),
    ast.YieldFrom: ("'yield' is not allowed", "write the formula itself"),
    ast.Slice: ("slices are not allowed", "write a single expression"),
}


class Builder(Guards):
    """Builds SymPy objects from an allowlisted syntax tree."""

    def __init__(
        self,
        source: Source,
        resolve_name: Callable[[str], sympy.Expr] | None,
        extra_calls: Mapping[str, Callable[[list[sympy.Expr]], sympy.Expr]],
        shadowed: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(source)
        self.resolve_name = resolve_name
        self.extra_calls = extra_calls
        self.shadowed = shadowed

    def build(self, node: ast.AST, depth: int) -> sympy.Expr:
        if depth > MAX_DEPTH:
            self.fail(
                node,
                f"it is too deeply nested (more than {MAX_DEPTH} levels)",
                "simplify the expression or split it into parameters",
            )
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, (ast.Add, ast.Sub)):
                return self.build_chain(node, depth, (ast.Add, ast.Sub))
            if isinstance(node.op, (ast.Mult, ast.Div)):
                return self.build_chain(node, depth, (ast.Mult, ast.Div))
            if isinstance(node.op, ast.Pow):
                base = self.build(node.left, depth + 1)
                exponent = self.build(node.right, depth + 1)
                return self.power(node, node.left, node.right, base, exponent)
            self.refuse_operator(node, node.op)
        if isinstance(node, ast.UnaryOp):
            negative = False
            operand: ast.AST = node
            while isinstance(operand, ast.UnaryOp):
                if isinstance(operand.op, ast.USub):
                    negative = not negative
                elif not isinstance(operand.op, ast.UAdd):
                    self.refuse_operator(operand, operand.op)
                operand = operand.operand
            value = self.build(operand, depth + 1)
            return self.checked(node, -value) if negative else value
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        problem, hint = _NAMED_NODES.get(
            type(node), (f"{type(node).__name__} is not allowed", _HINT_GENERIC)
        )
        self.fail(node, problem, hint)

    def refuse_operator(self, node: ast.AST, op: ast.AST) -> NoReturn:
        name = _NAMED_OPERATORS.get(type(op), f"operator {type(op).__name__}")
        hint = "use / for division" if isinstance(op, ast.FloorDiv) else _HINT_GENERIC
        self.fail(node, f"{name} is not allowed", hint)

    def build_chain(
        self, node: ast.BinOp, depth: int, ops: tuple[type[ast.operator], type[ast.operator]]
    ) -> sympy.Expr:
        """Build a left-associative chain ``a + b - c ...`` or ``a * b / c ...`` iteratively."""
        rights: list[tuple[ast.operator, ast.expr]] = []
        current: ast.expr = node
        while isinstance(current, ast.BinOp) and isinstance(current.op, ops):
            rights.append((current.op, current.right))
            current = current.left
        parts = [self.build(current, depth + 1)]
        for op, right in reversed(rights):
            value = self.build(right, depth + 1)
            if isinstance(op, ast.Sub):
                value = -value
            elif isinstance(op, ast.Div):
                value = self.checked(right, sympy.Pow(value, -1))
            parts.append(value)
        if ops[0] is ast.Add:
            return self.checked(node, sympy.Add(*parts))
        return self.checked(node, sympy.Mul(*parts))

    def number(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            self.fail(node, f"{value!r} is not a number", _HINT_GENERIC)
        if isinstance(value, int):
            if abs(value) >= 10**_MAX_DIGITS:
                self.fail(
                    node,
                    f"an integer has more than {_MAX_DIGITS} digits",
                    "write large numbers in scientific notation, e.g. 1.5e20",
                )
            return sympy.Integer(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                self.fail(
                    node,
                    f"{self.source.node_text(node)} is not a finite number",
                    f"numbers must be at most {_MAX_MAGNITUDE:g} in magnitude",
                )
            if abs(value) > _MAX_MAGNITUDE:
                self.fail(
                    node,
                    f"{self.source.node_text(node)} is too large",
                    f"numbers must be at most {_MAX_MAGNITUDE:g} in magnitude",
                )
            exact = Fraction(repr(value))
            return self.checked(node, sympy.Rational(exact.numerator, exact.denominator))
        if isinstance(value, complex):
            self.fail(
                node,
                f"{self.source.node_text(node)} is a complex number",
                "only real-valued expressions are supported",
            )
        if isinstance(value, (str, bytes)):
            self.fail(node, "strings are not allowed", "write the formula itself, without quotes")
        self.fail(node, f"{type(value).__name__} constants are not allowed", _HINT_GENERIC)

    def name(self, node: ast.Name) -> sympy.Expr:
        name = node.id
        if not isinstance(node.ctx, ast.Load):
            self.fail(node, f"assignment to {name!r} is not allowed", "write the formula itself")
        shadowed = name in self.shadowed
        if name in CONSTANTS and not shadowed:
            return CONSTANTS[name]
        if name in FUNCTIONS or name in MULTI_FUNCTIONS or name in self.extra_calls:
            self.fail(
                node,
                f"{name!r} is a function, but it is used without an argument",
                f"call it with one argument in parentheses, e.g. {name}(x1)",
            )
        problem = _identifier_problem(name, shadowed)
        if problem is not None:
            self.fail(node, problem[0], problem[1])
        if self.resolve_name is None:
            return real_symbol(name)
        return self.checked(node, self.resolve_name(name))

    def call(self, node: ast.Call, depth: int) -> sympy.Expr:
        func = node.func
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Attribute):
                self.build(func, depth + 1)  # refuses attribute access with its own message
            self.fail(
                node,
                f"{_show(self.source.node_text(func), 30)} is not a function name, but it is "
                "followed by '('",
                "write * between factors (implicit multiplication is not supported), e.g. "
                "(x1+1)*(x1-1)",
            )
        name = func.id
        handler = self.extra_calls.get(name)
        if handler is None and name in MULTI_FUNCTIONS:
            handler = self.multi_function(node, name)
        if handler is None and name not in FUNCTIONS:
            self.unknown_function(node, name)
        if node.keywords:
            self.fail(
                node,
                f"keyword arguments are not allowed in {name}(...)",
                f"pass the argument by position, e.g. {name}(x1)",
            )
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail(
                    arg,
                    f"'*' unpacking is not allowed in {name}(...)",
                    f"pass the argument by position, e.g. {name}(x1)",
                )
        if handler is None and len(node.args) != 1:
            count = len(node.args)
            self.fail(
                node,
                f"function {name!r} takes exactly 1 argument, but {count} "
                f"{'was' if count == 1 else 'were'} given",
                f"write {name}(x1)" + (" (log is the natural logarithm)" if name == "log" else ""),
            )
        args = [self.build(arg, depth + 1) for arg in node.args]
        if handler is not None:
            return self.checked(node, handler(args))
        self.spend(node, args[0])
        if name in ("erf", "erfc") and args[0].is_number:
            value = self.constant_value(node.args[0], args[0], f"the argument of {name}")
            if abs(value) > _MAX_SPECIAL_ARGUMENT:
                self.fail(
                    node,
                    f"the argument of {name} is too large (about {value:.4g})",
                    f"keep constant arguments of {name} within +-{_MAX_SPECIAL_ARGUMENT:g}; "
                    f"{name} is already constant far below that",
                )
        if name in _GROWING_FUNCTIONS and args[0].is_number:
            value = self.constant_value(node.args[0], args[0], f"the argument of {name}")
            limit = _LOG_MAX_MAGNITUDE
            if value > limit or (name != "exp" and value < -limit):
                self.fail(
                    node,
                    f"{name} of a constant this large exceeds 1e300 (the argument is about "
                    f"{value:.4g})",
                    f"keep constant arguments of {name} within +-{limit:.0f}",
                )
        if name == "sqrt":
            return self.power(node, node.args[0], node, args[0], sympy.S.Half)
        return self.checked(node, FUNCTIONS[name](args[0]))

    def unknown_function(self, node: ast.Call, name: str) -> NoReturn:
        allowed = ", ".join(sorted({*FUNCTIONS, *MULTI_FUNCTIONS, *self.extra_calls}))
        spelled = FUNCTION_HINTS.get(name)
        if spelled is not None:
            self.fail(node, f"unknown function {name!r}", f"write {spelled} instead")
        if name in CONSTANTS:
            problem = f"{name!r} is a constant, not a function"
        else:
            problem = f"unknown function {name!r}; allowed functions are: {allowed}"
        self.fail(
            node,
            problem,
            f"if you meant multiplication, write {name}*(...) (it is never implied)",
        )

    def multi_function(self, node: ast.Call, name: str) -> Callable[[list[sympy.Expr]], sympy.Expr]:
        """The handler of ``Min``/``Max``: two or more arguments."""
        if len(node.args) < 2:
            self.fail(
                node,
                f"{name} needs at least two arguments",
                f"write {name}(a, b) or {name}(a, b, c)",
            )
        return lambda args: MULTI_FUNCTIONS[name](*args)
