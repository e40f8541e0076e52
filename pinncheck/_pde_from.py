"""PDEs that are SymPy objects already: ``--pde-from TARGET`` (and ``pde_from`` in check files).

TARGET names, in the user's Python code, a SymPy expression; a list or dict of them (dict keys
name the equations); an object with an ``.equations`` dict (how PhysicsNeMo-Sym's ``PDE``
classes hold theirs); or a class or function that returns one of these, called with the
``--pde-arg KEY=VALUE`` arguments. The target is loaded the way ``verify`` loads its target
(:mod:`pinncheck._usercode`).

The unknowns are the applied undefined functions (``u(x, y, t)``), the variables are their
arguments, and every other free symbol is a parameter, which needs a ``--param``.

No object from the user's code is trusted: each node is checked against an allowlist of node
*types* (exact types, not subclasses) and rebuilt from pinncheck's own pieces (real symbols,
exact rationals, term placeholders). Nothing of the user's object is converted through text,
and nothing reaches ``sympify`` or any other SymPy function that evaluates strings. Anything
outside the allowlist is refused (exit 2) with the node's type named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import sympy
from sympy.core.function import AppliedUndef, UndefinedFunction

from ._domain import Domain
from ._errors import ExpressionError
from ._parse import MAX_DEPTH, MAX_EXPONENT, check_identifier, real_symbol, sigmoid
from ._parse_names import _MAX_RATIONAL_BITS
from ._parse_numbers import _number_problem
from ._pde import Assignments, PDESystem, TermTable, _declare, _used_terms, spatial_variables

MAX_OBJECT_NODES = 20_000
"""Most nodes in all equations of one ``--pde-from`` target."""

# Functions of one argument, by their exact SymPy class.
_FUNCTIONS: tuple[type, ...] = (
    sympy.sin,
    sympy.cos,
    sympy.tan,
    sympy.sec,
    sympy.csc,
    sympy.cot,
    sympy.exp,
    sympy.log,
    sympy.sinh,
    sympy.cosh,
    sympy.tanh,
    sympy.sech,
    sympy.csch,
    sympy.coth,
    sympy.asin,
    sympy.acos,
    sympy.atan,
    sympy.asinh,
    sympy.acosh,
    sympy.atanh,
    sympy.erf,
    sympy.erfc,
    sympy.Abs,
    sympy.sign,
    sigmoid,
)
_NUMBERS: tuple[type, ...] = (
    sympy.Integer,
    sympy.Rational,
    sympy.Float,
    type(sympy.S.Zero),
    type(sympy.S.One),
    type(sympy.S.NegativeOne),
    type(sympy.S.Half),
)
_CONSTANTS: dict[type, sympy.Expr] = {
    type(sympy.pi): sympy.pi,
    type(sympy.E): sympy.E,
}


@dataclass(frozen=True)
class ObjectEquations:
    """The equations of a ``--pde-from`` target, before conversion.

    Attributes:
        target: the target as written.
        equations: ``(name, object)`` pairs, in order.
    """

    target: str
    equations: tuple[tuple[str, Any], ...]


def parse_pde_args(spec: Sequence[str] | Mapping[str, Any] | str | None) -> dict[str, Any]:
    """``--pde-arg KEY=VALUE`` items as keyword arguments: integers, floats, true/false, or text.

    A mapping (a check file's ``pde_args`` table) is taken as it is. Nothing is evaluated.
    """
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        out = {}
        for key, value in spec.items():
            out[_arg_name(str(key))] = value
        return out
    items = [spec] if isinstance(spec, str) else list(spec)
    args: dict[str, Any] = {}
    for item in items:
        key, eq, text = str(item).partition("=")
        if not eq or not key.strip():
            raise ExpressionError(f"Cannot read --pde-arg {item!r}: write KEY=VALUE, e.g. nu=0.01.")
        name = _arg_name(key.strip())
        if name in args:
            raise ExpressionError(f"--pde-arg {name} is given twice; give it once.")
        args[name] = _arg_value(text.strip())
    return args


def _arg_name(key: str) -> str:
    if not key.isidentifier():
        raise ExpressionError(f"--pde-arg {key!r}: a key must be a Python identifier.")
    return key


def _arg_value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def load_equations(
    target: str, args: Mapping[str, Any] | None = None, base_dir: str | Path | None = None
) -> ObjectEquations:
    """Load a ``--pde-from`` target from the user's code and list its equations (unconverted).

    Raises:
        UserCodeError: the import or the constructor failed (with the user's traceback).
        ExpressionError: the target is not an equation, a list or dict of them, or an object
            with an ``.equations`` dict.
    """
    from ._usercode import call_user, load_target, parse_target, target_scope, user_output

    parsed = parse_target(target, base_dir)
    kwargs = dict(args or {})
    with target_scope(parsed):
        obj = load_target(parsed)
        with user_output():
            to_call = not _is_container(obj) and (
                isinstance(obj, type) or (callable(obj) and not hasattr(obj, "equations"))
            )
        if to_call:
            obj = call_user(lambda: obj(**kwargs), what=f"Calling {target}")
        elif kwargs:
            raise ExpressionError(
                f"--pde-arg was given, but {target} is not a class or function to call."
            )
        with user_output():
            equations = getattr(obj, "equations", None) if not _is_container(obj) else None
    if equations is not None:
        obj = equations
    attr = parsed.attr.rsplit(".", 1)[-1]
    if isinstance(obj, sympy.Basic):
        pairs: list[tuple[str, Any]] = [(attr, obj)]
    elif isinstance(obj, (list, tuple)):
        pairs = [(f"{attr}[{i}]", e) for i, e in enumerate(obj)]
    elif isinstance(obj, dict):
        pairs = []
        for key, e in obj.items():
            if not isinstance(key, str):
                raise ExpressionError(
                    f"The equations of {target} are a dict whose key {key!r} is not text; name "
                    "each equation with a string."
                )
            pairs.append((key, e))
    else:
        raise ExpressionError(
            f"{target} is {type(obj).__name__}, not a PDE: give a SymPy expression, a list or "
            "dict of them, or an object with an .equations dict (PhysicsNeMo-Sym style)."
        )
    if not pairs:
        raise ExpressionError(f"{target} holds no equations.")
    return ObjectEquations(target, tuple(pairs))


def _is_container(obj: Any) -> bool:
    return isinstance(obj, (list, tuple, dict, sympy.Basic))


def object_unknowns(objects: ObjectEquations) -> list[str]:
    """The names of the applied functions in the equations, in order of first appearance."""
    seen: dict[str, None] = {}
    for name, e in objects.equations:
        for node in _walk(e, objects.target, name):
            if isinstance(node, AppliedUndef):
                seen[_function_name(node, name)] = None
    return list(seen)


def _walk(expr: Any, target: str, name: str) -> list[Any]:
    """Every node of ``expr`` (pre-order), each of an allowlisted type; refuses anything else."""
    if type(expr) is sympy.Equality:
        expr = expr.args  # walked as its two sides
        stack = [(a, 1) for a in expr]
    else:
        stack = [(expr, 1)]
    out: list[Any] = []
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"The equation {name!r} of {target} is nested more than {MAX_DEPTH} levels deep."
            )
        _allowed(node, target, name)
        out.append(node)
        if len(out) > MAX_OBJECT_NODES:
            raise ExpressionError(
                f"The equations of {target} have more than {MAX_OBJECT_NODES} parts; pinncheck "
                "refuses objects that large."
            )
        if type(node) is sympy.Derivative:
            stack.append((node.args[0], depth + 1))
            stack += [(v, depth + 1) for v, _ in node.variable_count]
        elif not isinstance(node, (sympy.Symbol, sympy.Number, AppliedUndef)):
            stack += [(a, depth + 1) for a in node.args]
        elif isinstance(node, AppliedUndef):
            stack += [(a, depth + 1) for a in node.args]
    return out


def _allowed(node: Any, target: str, name: str) -> None:
    kind = type(node)
    ok = (
        kind in (sympy.Add, sympy.Mul, sympy.Pow, sympy.Symbol, sympy.Derivative)
        or kind in _FUNCTIONS
        or kind in (sympy.Min, sympy.Max, sympy.Heaviside)
        or kind in _CONSTANTS
        or kind in _NUMBERS
        or (isinstance(node, AppliedUndef) and type(kind) is UndefinedFunction)
    )
    if not ok:
        raise ExpressionError(
            f"The equation {name!r} of {target} contains a node of type "
            f"{kind.__module__}.{kind.__qualname__}, which pinncheck does not accept. Accepted: "
            "numbers, pi, E, symbols, applied functions u(x, t), +, *, **, Derivative, and the "
            "functions of the PDE language (sin, exp, log, tanh, Abs, Min, Max, ...)."
        )


def _function_name(node: Any, equation: str) -> str:
    name = type(node).__name__
    if not isinstance(name, str):
        raise ExpressionError(f"In the equation {equation!r}, a function has no usable name.")
    return name


class _Converter(TermTable):
    """Rebuilds one allowlisted SymPy object from pinncheck's own pieces."""

    def __init__(
        self,
        domain: Domain,
        params: Mapping[str, sympy.Expr],
        unknowns: Sequence[str],
        target: str,
        equation: str,
    ) -> None:
        super().__init__(domain, f"In the equation {equation!r} of {target}")
        self.params = params
        self.unknowns = list(unknowns)
        self.signatures: dict[str, tuple[str, ...]] = {}
        self.memo: dict[Any, sympy.Expr] = {}

    def fail(self, problem: str) -> ExpressionError:
        return ExpressionError(f"{self.where}, {problem}")

    def convert(self, node: Any) -> sympy.Expr:
        hit = self.memo.get(node)
        if hit is None:
            hit = self.memo[node] = self._convert(node)
        return hit

    def _convert(self, node: Any) -> sympy.Expr:
        kind = type(node)
        if kind is sympy.Equality:
            return self.convert(node.args[0]) - self.convert(node.args[1])
        if kind in _CONSTANTS:
            return _CONSTANTS[kind]
        if kind is sympy.Float:
            value = float(node)
            if not math.isfinite(value):
                raise self.fail(f"the number {value} is not finite.")
            exact = Fraction(repr(value))
            return self.number(sympy.Rational(exact.numerator, exact.denominator))
        if isinstance(node, sympy.Rational):
            p, q = node.p, node.q
            if not (isinstance(p, int) and isinstance(q, int)):
                raise self.fail("a rational number is malformed.")
            return self.number(sympy.Rational(p, q))
        if kind is sympy.Symbol:
            return self.symbol(node)
        if isinstance(node, AppliedUndef):
            return self.function(node)
        if kind is sympy.Derivative:
            return self.derivative_of(node)
        args = [self.convert(a) for a in node.args]
        if kind is sympy.Add:
            return sympy.Add(*args)
        if kind is sympy.Mul:
            return sympy.Mul(*args)
        if kind is sympy.Pow:
            exponent = args[1]
            if exponent.is_number and not abs(float(exponent)) <= MAX_EXPONENT:
                raise self.fail(f"an exponent is too large (at most {MAX_EXPONENT}).")
            if args[0].is_Number and exponent.is_Number:
                bits = max(int(args[0].p).bit_length(), int(args[0].q).bit_length())
                if bits * abs(float(exponent)) > _MAX_RATIONAL_BITS:  # as for exact numbers
                    raise self.fail(
                        f"a power of numbers would have more than {_MAX_RATIONAL_BITS} bits "
                        "(about 360 digits)."
                    )
            return sympy.Pow(args[0], exponent)
        if kind is sympy.Heaviside:
            if args[1:] not in ((), (sympy.S.Half,)):
                raise self.fail("Heaviside is accepted only with H(0) = 1/2 (SymPy's default).")
            return sympy.Heaviside(args[0])
        if kind in (sympy.Min, sympy.Max):
            return kind(*args)
        if len(args) != 1:
            raise self.fail(f"{kind.__name__} is called with {len(args)} arguments, not 1.")
        return kind(args[0])

    def number(self, value: sympy.Expr) -> sympy.Expr:
        problem = _number_problem(value)
        if problem is not None:
            raise self.fail(f"{problem}.")
        return value

    def symbol(self, node: Any) -> sympy.Expr:
        name = node.name
        if not isinstance(name, str):
            raise self.fail("a symbol's name is not text.")
        if name in self.domain.names:
            return real_symbol(name)
        if name in self.params:
            return self.params[name]
        raise self.fail(
            f"the symbol {name!r} is neither a variable (an argument of an unknown function, "
            f"in the domain: {', '.join(self.domain.names)}) nor a parameter: give it with "
            f"--param {name}=VALUE."
        )

    def function(self, node: Any) -> sympy.Expr:
        name = _function_name(node, self.where)
        if name not in self.unknowns:
            raise self.fail(f"the function {name} is not an unknown.")
        variables = []
        for a in node.args:
            if type(a) is not sympy.Symbol or not isinstance(a.name, str):
                raise self.fail(
                    f"the unknown {name} is applied to {type(a).__name__}; an unknown's "
                    "arguments must be plain symbols, its variables (u(x, t))."
                )
            if a.name not in self.domain.names:
                raise self.fail(
                    f"the unknown {name} depends on {a.name}, which is not a domain variable "
                    f"(domain: {', '.join(self.domain.names)}); add -d {a.name}=LO:HI."
                )
            variables.append(a.name)
        signature = tuple(variables)
        previous = self.signatures.setdefault(name, signature)
        if previous != signature:
            raise self.fail(
                f"the unknown {name} is used as {name}({', '.join(previous)}) and as "
                f"{name}({', '.join(signature)}); use one list of variables."
            )
        return self.term(name, ())

    def derivative_of(self, node: Any) -> sympy.Expr:
        expr = self.convert(node.args[0])
        for var, count in node.variable_count:
            if type(var) is not sympy.Symbol or var.name not in self.domain.names:
                raise self.fail(
                    f"a Derivative is taken with respect to {var}, which is not a domain "
                    f"variable ({', '.join(self.domain.names)})."
                )
            if not (isinstance(count, (int, sympy.Integer)) and 1 <= int(count) <= 8):
                raise self.fail("a Derivative has an unusable order.")
            index = self.domain.names.index(var.name)
            for _ in range(int(count)):
                expr = self.derivative(expr, index)
        return expr


def convert_equations(
    objects: ObjectEquations,
    domain: Domain,
    params: Mapping[str, sympy.Expr],
    unknowns: Sequence[str],
) -> list[tuple[str, sympy.Expr, dict[sympy.Symbol, Any], str]]:
    """Each equation as ``(name, residual in placeholders, placeholder table, display text)``.

    Raises:
        ExpressionError: a node outside the allowlist, an unknown name, or a symbol that is
            neither a variable nor a ``--param``.
    """
    out = []
    for name, e in objects.equations:
        _walk(e, objects.target, name)  # refuses any node outside the allowlist first
        converter = _Converter(domain, params, unknowns, objects.target, name)
        expr = converter.convert(e)
        if not isinstance(expr, sympy.Expr):
            raise ExpressionError(
                f"The equation {name!r} of {objects.target} is not an expression."
            )
        out.append((name, expr, converter.by_placeholder, f"{name}: {converter.show(expr)}"))
    return out


def object_system(
    objects: ObjectEquations,
    solutions: Assignments,
    domain: Domain,
    params: Assignments = None,
    *,
    space: Sequence[str] | str | None = None,
) -> PDESystem:
    """The :class:`~pinncheck._pde.PDESystem` of equations given as SymPy objects.

    Every unknown (applied function) needs a ``--solution``; every other free symbol that is not
    a domain variable needs a ``--param``.
    """
    unknowns = object_unknowns(objects)
    if not unknowns:
        raise ExpressionError(
            f"{objects.target} contains no unknown: write each unknown as an applied function "
            "of its variables, e.g. u = Function('u')(x, t)."
        )
    for u in unknowns:
        check_identifier(u, what=f"unknown function name (in {objects.target})", shadow=True)
    declared = _declare(solutions, domain, params, required=unknowns)
    if space is not None:
        spatial_variables(domain, space)  # the option is checked even though no text uses it
    converted = convert_equations(objects, domain, declared.params, declared.unknowns)
    terms = _used_terms([(n, e, table) for n, e, table, _ in converted], declared.unknowns)
    return PDESystem(
        domain,
        tuple(text for *_, text in converted),
        tuple(e for _, e, _, _ in converted),
        tuple(terms),
        declared.solutions,
        declared.solution_texts,
        declared.params,
        declared.param_texts,
        tuple(declared.warnings),
    )


__all__ = [
    "MAX_OBJECT_NODES",
    "ObjectEquations",
    "convert_equations",
    "load_equations",
    "object_system",
    "object_unknowns",
    "parse_pde_args",
]
