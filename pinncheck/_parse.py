"""An eval-free, allowlist parser from text to SymPy expressions.

SymPy's own parsers (``sympify``, ``parse_expr``, ``S("...")`` and every SymPy function that
accepts a string) evaluate Python code, so user text must never reach them. This module parses
text with :func:`ast.parse` (which only builds a syntax tree and runs nothing) and then walks the
tree, accepting an allowlist of node types and building the SymPy objects itself:

* numbers (``int`` and ``float`` literals; floats become exact rationals: ``0.1`` is ``1/10``),
* the constants :data:`CONSTANTS` and real-valued names (variables and parameters),
* ``+ - * /``, unary ``-``/``+`` and powers, written ``^`` or ``**`` (``^`` means power, as in
  SymPy: ``-x1^2`` is ``-(x1**2)`` and ``2^3^2`` is ``2^9``),
* calls of the one-argument functions in :data:`FUNCTIONS` (and of names the caller adds).

Everything else (attributes, indexing, strings, lambdas, comparisons, keywords...) is refused
with an :class:`~pinncheck._errors.ExpressionError` that says what was refused, where, and how
to fix it. Guards on the size and depth of the text and on the size of numbers and powers keep
SymPy from hanging or exhausting memory on inputs such as ``10^10^10``.
"""

from __future__ import annotations

import ast
import cmath
import functools
import keyword
import math
import re
import unicodedata
import warnings
from collections.abc import Callable, Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Any, NoReturn

import sympy  # this module exists to build SymPy objects

from pinncheck._errors import ExpressionError

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_NODES",
    "RESERVED_NAMES",
    "check_identifier",
    "parse_constant",
    "parse_expression",
    "real_symbol",
    "sigmoid",
]

MAX_LENGTH: int = 10_000
"""Longest text accepted, in characters (checked before anything else)."""
MAX_NODES: int = 1_500
"""Most syntax-tree parts (numbers, names, operations, calls) in one expression."""
MAX_DEPTH: int = 100
"""Deepest nesting of the built expression; chains of ``+ -`` and of ``* /`` count as one level."""
MAX_EXPONENT: int = 1_000
"""Largest ``|exponent|`` of a constant exponent (unless the base is 0, 1 or -1)."""

_MAX_DIGITS = 300
"""Most digits of an integer literal; also the largest ``|log10|`` of any exact number."""
_MAX_MAGNITUDE = 1e300
"""Largest magnitude of a float literal and of any constant part of an expression."""
_MAX_RATIONAL_BITS = 1_200
"""Most bits in the numerator or denominator of an exact number (about 360 digits)."""
_MAX_ROOT_BITS = 256
"""Most bits (after removing factors 2, 3, 5 and 7) of a number raised to a fractional power.

SymPy factorises the base to simplify such powers, which gets slow for large numbers."""
_MAX_CONSTANT_WORK = 2_000
"""Budget for SymPy's simplification of functions and powers of constant expressions.

SymPy inspects a constant argument numerically (is it zero? positive?), evaluating the whole
argument each time, so nesting calls around a long constant costs depth times length. Every
function or power of a non-numeric constant spends the size of that constant."""
_MAX_SPECIAL_ARGUMENT = 1e100
"""Largest constant argument of erf and erfc (mpmath fails above about 1e154)."""
_LOG_MAX_MAGNITUDE = math.log(_MAX_MAGNITUDE)
"""``exp``, ``sinh`` and ``cosh`` of a constant beyond this would exceed 1e300."""


class sigmoid(sympy.Function):
    """The logistic function ``sigmoid(x) = 1/(1 + exp(-x))``.

    It stays unevaluated (except ``sigmoid(0) = 1/2``) so that expressions keep their shape; its
    derivative is ``sigmoid(x)*(1 - sigmoid(x))`` and ``.rewrite(sympy.exp)`` gives the closed
    form.

    Example:
        >>> x = real_symbol("x")
        >>> sympy.diff(sigmoid(x), x)
        (1 - sigmoid(x))*sigmoid(x)
    """

    @classmethod
    def eval(cls, arg: Any) -> Any:
        if arg.is_zero:
            return sympy.S.Half
        return None

    def fdiff(self, argindex: int = 1) -> Any:
        if argindex != 1:
            raise sympy.ArgumentIndexError(self, argindex)
        value = sigmoid(self.args[0])
        return value * (1 - value)

    def _eval_rewrite_as_exp(self, arg: Any, **kwargs: Any) -> Any:
        return 1 / (1 + sympy.exp(-arg))

    def _eval_is_real(self) -> bool | None:
        return True if self.args[0].is_real else None

    def _eval_evalf(self, prec: int) -> Any:
        if not self.args[0].is_number:
            return None
        return self._eval_rewrite_as_exp(self.args[0])._eval_evalf(prec)


FUNCTIONS: Mapping[str, Callable[..., sympy.Expr]] = MappingProxyType(
    {
        "sin": sympy.sin,
        "cos": sympy.cos,
        "tan": sympy.tan,
        "exp": sympy.exp,
        "log": sympy.log,
        "sqrt": sympy.sqrt,
        "tanh": sympy.tanh,
        "sinh": sympy.sinh,
        "cosh": sympy.cosh,
        "asin": sympy.asin,
        "acos": sympy.acos,
        "atan": sympy.atan,
        "asinh": sympy.asinh,
        "acosh": sympy.acosh,
        "atanh": sympy.atanh,
        "erf": sympy.erf,
        "erfc": sympy.erfc,
        "Abs": sympy.Abs,
        "sigmoid": sigmoid,
    }
)
"""The functions an expression may call, each with exactly one argument."""

CONSTANTS: Mapping[str, sympy.Expr] = MappingProxyType({"pi": sympy.pi, "E": sympy.E})
"""The named constants an expression may use."""

_SYMPY_NAMES = ("I", "oo", "nan", "zoo", "S", "N", "O", "Q")
RESERVED_NAMES: frozenset[str] = frozenset(
    [*FUNCTIONS, *CONSTANTS, "diff", "e", "lambda", *_SYMPY_NAMES, *keyword.kwlist]
)
"""Names that may not be used for variables or parameters."""

_GROWING_FUNCTIONS = frozenset({"exp", "sinh", "cosh"})
_UNDEFINED = (sympy.zoo, sympy.oo, -sympy.oo, sympy.nan)
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
_LOOKALIKES = {
    "\u2212": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u00d7": "*",
    "\u00b7": "*",
    "\u22c5": "*",
    "\u2217": "*",
    "\u00f7": "/",
    "\u2215": "/",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u03c0": "pi",
}
_IMPLICIT_NUMBER = re.compile(r"(?<![\w.])((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)([A-Za-z_]\w*)")
_FLOAT_EXPONENT = re.compile(r"[eE]\d+")
_LEXICAL_PART = re.compile(
    r"\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|[A-Za-z_]\w*|\*\*|//|[-+*/%@<>&|~]"
)
_HINT_GENERIC = (
    "Use only numbers, names, + - * / ^ and parentheses, and call functions like sin(x1)"
)


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def real_symbol(name: str) -> sympy.Symbol:
    """Return the real-valued SymPy symbol called ``name``.

    Symbols are real so that, for example, ``Abs(x)`` differentiates to ``sign(x)`` rather than
    to an expression involving ``re`` and ``im``. The name is not validated here; call
    :func:`check_identifier` first for user text.

    Args:
        name: The symbol's name.

    Returns:
        ``sympy.Symbol(name, real=True)`` (cached, so equal names give the same object).

    Example:
        >>> real_symbol("x1").is_real
        True
    """
    return sympy.Symbol(name, real=True)


def _identifier_problem(name: str) -> tuple[str, str] | None:
    """Why ``name`` (already stripped, ASCII) cannot be a variable: (problem, hint), or None."""
    if not name.isidentifier():
        return (
            f"{name!r} is not a valid name",
            "a name starts with a letter and contains only letters, digits and _ (e.g. x1)",
        )
    if name.startswith("_"):
        return f"{name!r} starts with '_'", "names must start with a letter"
    if name in FUNCTIONS:
        return f"{name!r} is a function name", f"choose another name, or call it as {name}(x1)"
    if name in CONSTANTS:
        return f"{name!r} is a constant name", f"choose another name; {name} is already defined"
    if name == "e":
        return (
            "'e' is reserved (it is ambiguous)",
            "use E for Euler's number 2.718..., or pick another name for a variable",
        )
    if name == "diff":
        return "'diff' is reserved for derivatives", "choose another name"
    if name == "I":
        return "'I' is reserved (the imaginary unit)", "choose another name"
    if keyword.iskeyword(name):
        return f"{name!r} is a Python keyword", "choose another name"
    if name in RESERVED_NAMES:
        return f"{name!r} is reserved (a SymPy name)", "choose another name"
    return None


def check_identifier(name: str, *, what: str) -> str:
    """Check that ``name`` may be used as a variable or parameter name.

    A valid name is an ASCII Python identifier that is not a keyword, does not start with
    ``_`` and is not in :data:`RESERVED_NAMES` (function and constant names, ``diff``, ``e``,
    ``I`` and a few other SymPy names).

    Args:
        name: The proposed name; surrounding whitespace is ignored.
        what: What the name is for, used in the error message (e.g. ``"variable name"``).

    Returns:
        The name without surrounding whitespace.

    Raises:
        ExpressionError: If the name is not allowed; the message says why.

    Example:
        >>> check_identifier(" nu ", what="parameter name")
        'nu'
    """
    if not isinstance(name, str):
        raise ExpressionError(
            f"Invalid {_one_line(what)}: expected text, got {type(name).__name__}."
        )
    stripped = name.strip()
    if not stripped:
        raise ExpressionError(f"Invalid {_one_line(what)}: the name is empty. Give a name like x1.")
    for index, char in enumerate(stripped):
        if not char.isascii():
            raise ExpressionError(
                f"Invalid {_one_line(what)} {_show(stripped)} at column {index + 1}: "
                f"{_describe_char(char)} is not an ASCII character. {_non_ascii_hint(char)}."
            )
    problem = _identifier_problem(stripped)
    if problem is not None:
        raise ExpressionError(f"Invalid {_one_line(what)}: {problem[0]}. {_capital(problem[1])}.")
    return stripped


# --------------------------------------------------------------------------------------------
# Message helpers
# --------------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _show(text: str, limit: int = 60) -> str:
    """The text quoted for a message: on one line, shortened to about ``limit`` characters."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def _describe_char(char: str) -> str:
    name = unicodedata.name(char, "")
    code = f"U+{ord(char):04X}"
    return f"{char!r} ({name}, {code})" if name else f"character {code}"


def _non_ascii_hint(char: str) -> str:
    replacement = _LOOKALIKES.get(char)
    if replacement is None:
        normalised = unicodedata.normalize("NFKC", char)
        if normalised.isascii() and normalised.isprintable() and normalised.strip():
            replacement = normalised
    if replacement is not None:
        return f"Write {replacement!r} instead (only ASCII characters are accepted)"
    if unicodedata.category(char).startswith("L"):
        return (
            "Only ASCII characters are accepted; retype the name with Latin letters a-z and "
            "spell Greek letters out (e.g. nu, alpha)"
        )
    return "Only ASCII characters are accepted; retype it with a plain keyboard character"


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def _rational_log10(value: sympy.Rational) -> float:
    """``log10(|value|)`` of a non-zero exact rational, without converting it to a float."""
    return math.log10(abs(int(value.p))) - math.log10(int(value.q))


def _smooth_free_bits(number: int) -> int:
    """Bit length of ``|number|`` after removing all factors 2, 3, 5 and 7."""
    number = abs(number)
    if number == 0:
        return 0
    number >>= (number & -number).bit_length() - 1
    for prime in (3, 5, 7):
        while number % prime == 0:
            number //= prime
    return number.bit_length()


def _number_problem(value: sympy.Expr) -> str | None:
    """Why an exact rational is too large, too small or too long to work with, or None."""
    if not value.is_Rational or value.is_zero:
        return None
    if max(int(value.p).bit_length(), int(value.q).bit_length()) > _MAX_RATIONAL_BITS:
        return f"an exact number has more than {_MAX_RATIONAL_BITS} bits (about 360 digits)"
    magnitude = _rational_log10(value)
    if abs(magnitude) > _MAX_DIGITS:
        size = "large" if magnitude > 0 else "small"
        return f"a constant is too {size} (about 10^{magnitude:.0f}; at most 10^+-{_MAX_DIGITS})"
    return None


def _is_finite(value: complex) -> bool:
    return cmath.isfinite(value)


def _real_part(value: complex) -> float | None:
    """The real part of ``value`` if its imaginary part is negligible, else None."""
    if abs(value.imag) > 1e-9 * max(1.0, abs(value.real)):
        return None
    return value.real


def _erf(value: complex) -> complex:
    if value.imag != 0.0:
        raise ValueError("complex argument")
    return complex(math.erf(value.real))


def _erfc(value: complex) -> complex:
    if value.imag != 0.0:
        raise ValueError("complex argument")
    return complex(math.erfc(value.real))


def _sigmoid(value: complex) -> complex:
    if value.imag == 0.0 and value.real < 0:  # avoids overflow of exp(-x) for very negative x
        return complex(math.exp(value.real) / (1 + math.exp(value.real)))
    return 1 / (1 + cmath.exp(-value))


_APPROXIMATIONS: dict[Any, Callable[[complex], complex]] = {
    sympy.sin: cmath.sin,
    sympy.cos: cmath.cos,
    sympy.tan: cmath.tan,
    sympy.cot: lambda value: 1 / cmath.tan(value),
    sympy.exp: cmath.exp,
    sympy.log: cmath.log,
    sympy.sinh: cmath.sinh,
    sympy.cosh: cmath.cosh,
    sympy.tanh: cmath.tanh,
    sympy.asin: cmath.asin,
    sympy.acos: cmath.acos,
    sympy.atan: cmath.atan,
    sympy.asinh: cmath.asinh,
    sympy.acosh: cmath.acosh,
    sympy.atanh: cmath.atanh,
    sympy.erf: _erf,
    sympy.erfc: _erfc,
    sympy.Abs: lambda value: complex(abs(value)),
    sigmoid: _sigmoid,
}


class _Approximator:
    """Approximate values of constant SymPy expressions in floating point, memoised.

    The guards against huge constants need rough values of the constant parts of an expression
    as it is built. Evaluating each part with SymPy's ``evalf`` would re-evaluate the same
    subexpressions again and again (and ``evalf`` can be slow on huge arguments); this walks
    each distinct subexpression once with Python floats. Overflow and undefined operations give
    a non-finite value, which the guards refuse.
    """

    def __init__(self) -> None:
        self.memo: dict[sympy.Basic, complex] = {}

    def __call__(self, expr: sympy.Basic) -> complex:
        value = self.memo.get(expr)
        if value is None:
            try:
                value = self.compute(expr)
            except Exception:  # overflow, a domain error, or SymPy unable to evaluate
                value = complex(math.nan, math.nan)
            self.memo[expr] = value
        return value

    def compute(self, expr: sympy.Basic) -> complex:
        if expr.is_Rational:
            return complex(int(expr.p) / int(expr.q))
        if expr.is_Float or isinstance(expr, sympy.NumberSymbol):
            return complex(float(expr))
        if expr.is_Add:
            return sum((self(arg) for arg in expr.args), complex(0.0))
        if expr.is_Mul:
            product = complex(1.0)
            for arg in expr.args:
                product *= self(arg)
            return product
        if expr.is_Pow:
            base, exponent = self(expr.base), self(expr.exp)
            if base.imag == 0.0 and exponent.imag == 0.0:
                if base.real >= 0.0 or float(exponent.real).is_integer():
                    return complex(math.pow(base.real, exponent.real))
            return complex(base**exponent)
        function = _APPROXIMATIONS.get(type(expr))
        if function is not None and len(expr.args) == 1:
            return complex(function(self(expr.args[0])))
        return complex(expr.evalf(15))  # rare: a function SymPy produced by simplification


def _final_value(expr: sympy.Expr) -> tuple[float | None, str]:
    """Evaluate a constant expression with ``evalf(30)``.

    Returns ``(value, "")`` for a real value (infinite when it overflows a float) or
    ``(None, reason)`` where ``reason`` is "undefined", "complex" or "not evaluable".
    """
    try:
        value = expr.evalf(30)
        if value.has(*_UNDEFINED):
            return None, "undefined"
        real, imag = value.as_real_imag()
        if not (real.is_Number and imag.is_Number):
            return None, "not evaluable"
        real_float, imag_float = float(real), float(imag)
    except OverflowError:
        return math.inf, ""
    except Exception:  # any failure of SymPy/mpmath means the value is not usable
        return None, "not evaluable"
    if math.isnan(real_float) or math.isnan(imag_float):
        return None, "undefined"
    if imag_float != 0.0 and abs(imag_float) > 1e-25 * max(1.0, abs(real_float)):
        return None, "complex"
    return real_float, ""


# --------------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------------


class _Source:
    """The text as given, the text handed to ``ast.parse``, and a map between their columns."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.code = ""
        self.columns: list[int] = []

    def fail(self, problem: str, hint: str, column: int | None = None) -> NoReturn:
        """Raise the ExpressionError for this text; ``column`` is 1-based in the original."""
        where = f" at column {column}" if column is not None else ""
        raise ExpressionError(
            f"Invalid {_one_line(self.what)} {_show(self.text)}{where}: {_one_line(problem)}. "
            f"{_capital(_one_line(hint))}."
        )

    def column(self, offset: int | None) -> int | None:
        """The 1-based column in the original text of a 0-based offset into the parsed code."""
        if offset is None or not self.columns:
            return None
        return self.columns[min(max(offset, 0), len(self.columns) - 1)] + 1

    def node_column(self, node: ast.AST) -> int | None:
        """The column of the part of ``node`` that a message is about (e.g. its operator)."""
        offset = getattr(node, "col_offset", None)
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            offset = self.skip_spaces(node.value.end_col_offset)
        elif isinstance(node, ast.BinOp):
            offset = self.skip_spaces(node.left.end_col_offset)
        elif isinstance(node, ast.Compare):
            offset = self.skip_spaces(node.left.end_col_offset)
        elif isinstance(node, ast.Call) and node.keywords:
            offset = getattr(node.keywords[0], "col_offset", offset)
        return self.column(offset)

    def skip_spaces(self, offset: int | None) -> int | None:
        """The offset of the first non-blank character at or after ``offset`` in the code."""
        if offset is None:
            return None
        while offset < len(self.code) and self.code[offset] in " ()":
            offset += 1
        return offset

    def node_text(self, node: ast.AST) -> str:
        start = getattr(node, "col_offset", None)
        end = getattr(node, "end_col_offset", None)
        if start is None or end is None:
            return ""
        return _one_line(self.code[start:end])

    def prepare(self) -> None:
        """Check the characters and build the code for ``ast.parse``."""
        text = self.text
        start = len(text) - len(text.lstrip())
        end = len(text.rstrip())
        if start >= end:
            self.fail("it is empty", "give an expression such as sin(x1)")
        chars: list[str] = []
        columns: list[int] = []
        for index in range(start, end):
            char = text[index]
            if not char.isascii():
                self.fail(
                    f"{_describe_char(char)} is not an ASCII character",
                    _non_ascii_hint(char),
                    index + 1,
                )
            if char in "'\"":
                self.fail(
                    f"quote character {char}: strings (including f-strings) are not allowed",
                    "write the formula itself, without quotes",
                    index + 1,
                )
            if char == "\\":
                self.fail(
                    "a backslash is not allowed",
                    "write the formula without backslashes",
                    index + 1,
                )
            if char == "#":
                self.fail(
                    "'#' is not allowed (comments are not supported)",
                    "remove it and the text after it",
                    index + 1,
                )
            if char in "\t\n\r\f\v":
                char = " "
            elif not char.isprintable():
                self.fail(
                    f"control character U+{ord(char):04X} is not allowed",
                    "remove it",
                    index + 1,
                )
            if char == "^":
                chars.append("**")
                columns += [index, index]
            else:
                chars.append(char)
                columns.append(index)
        columns.append(end)
        self.code = "".join(chars)
        self.columns = columns

    def too_large(self, count: int) -> NoReturn:
        self.fail(
            f"expression too large: {count} parts, at most {MAX_NODES}",
            "split it up, e.g. define repeated parts as parameters",
        )

    def parse(self) -> ast.expr:
        # Python's own parser recurses on long chains such as x+x+...+x, so refuse text with
        # clearly too many parts (numbers, names, operators) before handing it over.
        lexical_parts = len(_LEXICAL_PART.findall(self.code))
        if lexical_parts > MAX_NODES:
            self.too_large(lexical_parts)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(self.code, mode="eval")
        except SyntaxError as exc:
            self.syntax_error(exc)
        except (RecursionError, MemoryError):
            self.fail(
                "it is too deeply nested or too complex to parse",
                f"use at most {MAX_DEPTH} levels of nesting",
            )
        except (ValueError, OverflowError, TypeError) as exc:
            self.fail(f"it could not be parsed ({_one_line(str(exc))})", _HINT_GENERIC)
        count = 0
        for node in ast.walk(tree):
            if not isinstance(node, (ast.expr_context, ast.operator, ast.unaryop)):
                count += 1
        if count > MAX_NODES:
            self.too_large(count)
        return tree.body

    def syntax_error(self, exc: SyntaxError) -> NoReturn:
        message = _one_line(exc.msg or "")
        offset = (exc.offset - 1) if exc.offset else None
        column = self.column(offset)
        if "too many nested parentheses" in message:
            self.fail(
                f"it is too deeply nested ({message})",
                f"use at most {MAX_DEPTH} levels of nesting",
            )
        if "Exceeds the limit" in message or "integer string conversion" in message:
            self.fail(
                f"an integer has more than {_MAX_DIGITS} digits",
                "write large numbers in scientific notation, e.g. 1.5e20",
            )
        text = self.text
        for match in _IMPLICIT_NUMBER.finditer(text):
            number, name = match.groups()
            if _FLOAT_EXPONENT.fullmatch(name) or name in ("j", "J"):
                continue  # a valid float (1e5) or complex (2j) literal
            if number == "0" and name[0] in "xXoObB":
                continue  # a hexadecimal, octal or binary literal
            if name in ("e", "E"):
                self.fail(
                    f"{number + name!r} is an incomplete number",
                    f"write the exponent ({number}e3), or {number}*E for Euler's number",
                    match.start() + 1,
                )
            self.fail(
                f"{number + name!r} is a number directly followed by a name",
                f"write {number}*{name} (implicit multiplication is not supported)",
                match.start() + 1,
            )
        function_call = re.search(
            r"\b(" + "|".join(sorted(FUNCTIONS, key=len, reverse=True)) + r")\s+([\w.]+)", text
        )
        if function_call is not None:
            name, argument = function_call.groups()
            self.fail(
                f"function {name!r} is not followed by '('",
                f"write {name}({argument}); function arguments need parentheses",
                function_call.start() + 1,
            )
        if "was never closed" in message or "unmatched" in message or "does not match" in message:
            self.fail(message, "check that every '(' has a matching ')'", column)
        near = ""
        if offset is not None and 0 <= offset < len(self.code):
            near = f" (near {_show(self.code[offset : offset + 12], 20)})"
        hint = (
            "check for a missing operator (* is never implied), unbalanced parentheses or a "
            "stray character"
        )
        if "=" in self.code:
            hint = "give a single expression without '=' (for an equation, write only one side)"
        self.fail(f"could not parse it{near}", hint, column)


class _Builder:
    """Builds SymPy objects from an allowlisted syntax tree."""

    def __init__(
        self,
        source: _Source,
        resolve_name: Callable[[str], sympy.Expr] | None,
        extra_calls: Mapping[str, Callable[[list[sympy.Expr]], sympy.Expr]],
    ) -> None:
        self.source = source
        self.resolve_name = resolve_name
        self.extra_calls = extra_calls
        self.approximate = _Approximator()
        self.sizes: dict[sympy.Basic, int] = {}
        self.constant_work = 0

    def fail(self, node: ast.AST, problem: str, hint: str) -> NoReturn:
        self.source.fail(problem, hint, self.source.node_column(node))

    def checked(self, node: ast.AST, result: sympy.Expr) -> sympy.Expr:
        """Refuse undefined, complex or unmanageably large results of building ``node``."""
        if not isinstance(result, sympy.Expr):
            self.fail(node, "it does not build a number-valued expression", _HINT_GENERIC)
        if result.has(*_UNDEFINED):
            self.fail(
                node,
                f"{_show(self.source.node_text(node), 40)} is undefined (division by zero?)",
                "check divisions and function arguments such as log(0)",
            )
        if result.has(sympy.I):
            self.fail(
                node,
                f"{_show(self.source.node_text(node), 40)} is complex",
                "only real-valued expressions are supported",
            )
        for number in (result, result.as_coeff_Mul()[0], result.as_coeff_Add()[0]):
            problem = _number_problem(number)
            if problem is not None:
                self.fail(node, problem, "rescale the expression or use smaller constants")
        if not result.is_Rational and result.is_number:
            value = self.approximate(result)
            if not _is_finite(value) or abs(value) > _MAX_MAGNITUDE:
                self.fail(
                    node,
                    f"constant too large: {_show(self.source.node_text(node), 40)} exceeds "
                    f"{_MAX_MAGNITUDE:g} in magnitude (or cannot be evaluated)",
                    "rescale the expression or use smaller constants",
                )
            if _real_part(value) is None:
                # SymPy leaves asin(2), acosh(0), atanh(2)... unevaluated; they are complex.
                self.fail(
                    node,
                    f"{_show(self.source.node_text(node), 40)} is complex",
                    "only real-valued expressions are supported; check the function's domain",
                )
        return result

    def size(self, expr: sympy.Basic) -> int:
        """Number of nodes in a SymPy expression tree (memoised)."""
        size = self.sizes.get(expr)
        if size is None:
            size = 1 + sum(self.size(arg) for arg in expr.args)
            self.sizes[expr] = size
        return size

    def spend(self, node: ast.AST, constant: sympy.Expr) -> None:
        """Charge the work SymPy will do on a function or power of a constant expression."""
        if constant.is_Number or not constant.is_number:
            return
        self.constant_work += self.size(constant)
        if self.constant_work > _MAX_CONSTANT_WORK:
            self.fail(
                node,
                "its constant parts are too complex to simplify quickly (long constant "
                "expressions inside nested functions or powers)",
                "simplify the constants, or define them separately as parameters",
            )

    def constant_value(self, node: ast.AST, expr: sympy.Expr, role: str) -> float:
        """The approximate real value of a constant ``expr``; ``role`` names it in messages."""
        value = self.approximate(expr)
        real = _real_part(value) if _is_finite(value) else None
        if real is None:
            problem = "complex" if _is_finite(value) else "too large or cannot be evaluated"
            self.fail(
                node,
                f"{role} {_show(self.source.node_text(node), 40)} is {problem}",
                "only real-valued expressions of moderate size are supported",
            )
        return real

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
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS or name in self.extra_calls:
            self.fail(
                node,
                f"{name!r} is a function, but it is used without an argument",
                f"call it with one argument in parentheses, e.g. {name}(x1)",
            )
        problem = _identifier_problem(name)
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
        if handler is None and name not in FUNCTIONS:
            allowed = ", ".join(sorted({*FUNCTIONS, *self.extra_calls}))
            if name in CONSTANTS:
                problem = f"{name!r} is a constant, not a function"
            else:
                problem = f"unknown function {name!r}; allowed functions are: {allowed}"
            self.fail(
                node,
                problem,
                f"if you meant multiplication, write {name}*(...) (it is never implied)",
            )
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

    def power(
        self,
        node: ast.AST,
        base_node: ast.AST,
        exponent_node: ast.AST,
        base: sympy.Expr,
        exponent: sympy.Expr,
    ) -> sympy.Expr:
        """Build ``base**exponent`` after checking that SymPy can build it quickly."""
        self.spend(node, base)
        self.spend(node, exponent)
        if exponent.is_number:
            self.check_power(node, base_node, exponent_node, base, exponent)
        return self.checked(node, sympy.Pow(base, exponent))

    def check_power(
        self,
        node: ast.AST,
        base_node: ast.AST,
        exponent_node: ast.AST,
        base: sympy.Expr,
        exponent: sympy.Expr,
    ) -> None:
        if exponent.is_Rational:
            exp_value = float(exponent)
        else:
            exp_value = self.constant_value(exponent_node, exponent, "the exponent")
        if exp_value == 0.0:
            return
        hint = "rescale the expression or use smaller constants"
        trivial_base = base.is_Number and base in (sympy.S.Zero, sympy.S.One, sympy.S.NegativeOne)
        if not trivial_base and not abs(exp_value) <= MAX_EXPONENT:
            self.fail(
                node,
                f"the exponent is too large (about {exp_value:.4g}; at most {MAX_EXPONENT} in "
                "magnitude)",
                hint,
            )
        if base.is_Pow and base.exp.is_Number:
            if not abs(float(base.exp) * exp_value) <= MAX_EXPONENT:
                self.fail(
                    node,
                    f"the combined exponent is too large (at most {MAX_EXPONENT} in magnitude)",
                    hint,
                )
        if not base.is_number:
            # SymPy distributes powers over a product, so check its numeric coefficient.
            coefficient = base.as_coeff_Mul()[0]
            if coefficient.is_Rational and coefficient not in (sympy.S.One, sympy.S.NegativeOne):
                self.check_constant_power(node, base_node, abs(coefficient), exponent, exp_value)
            return
        if trivial_base:
            if base == sympy.S.NegativeOne and exponent.is_integer is not True:
                self.fail(
                    node,
                    f"{_show(self.source.node_text(node), 40)} is complex",
                    "only real-valued expressions are supported",
                )
            return
        self.check_constant_power(node, base_node, base, exponent, exp_value)

    def check_constant_power(
        self,
        node: ast.AST,
        base_node: ast.AST,
        base: sympy.Expr,
        exponent: sympy.Expr,
        exp_value: float,
    ) -> None:
        """Refuse a constant ``base**exponent`` that is huge, tiny, complex or costly."""
        if base.is_Rational:
            if base.is_zero:  # 0**positive is 0; 0**negative is refused as undefined later
                return
            log_base = _rational_log10(base)
            negative = bool(base.p < 0)
        else:
            value = self.constant_value(base_node, base, "the base")
            if value == 0.0:
                log_base = -math.inf  # a non-zero constant below the float range
            else:
                log_base = math.log10(abs(value)) if math.isfinite(value) else math.inf
            negative = value < 0
        hint = "rescale the expression or use smaller constants"
        magnitude = exp_value * log_base
        if not abs(magnitude) <= _MAX_DIGITS:
            size = "large" if magnitude > 0 else "small"
            about = f"about 10^{magnitude:.0f}" if math.isfinite(magnitude) else f"far too {size}"
            self.fail(
                node,
                f"constant too {size}: {_show(self.source.node_text(node), 40)} is {about} "
                f"(at most 10^+-{_MAX_DIGITS})",
                hint,
            )
        if negative and exponent.is_integer is not True:
            self.fail(
                node,
                f"{_show(self.source.node_text(node), 40)} is a fractional power of a negative "
                "number, which is complex",
                "only real-valued expressions are supported",
            )
        if base.is_Rational:
            bits = max(int(base.p).bit_length(), int(base.q).bit_length())
            if abs(exp_value) * bits > _MAX_RATIONAL_BITS:
                self.fail(
                    node,
                    f"the exact value of {_show(self.source.node_text(node), 40)} has too many "
                    "digits (at most about 360)",
                    "use a float approximation or smaller numbers",
                )
            if exponent.is_integer is not True:
                root_bits = max(_smooth_free_bits(int(base.p)), _smooth_free_bits(int(base.q)))
                if root_bits > _MAX_ROOT_BITS:
                    self.fail(
                        node,
                        f"a fractional power of a number with about {int(bits * 0.30103)} "
                        "digits is too costly to simplify exactly",
                        "use a shorter number",
                    )


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def _check_text(text: str, what: str) -> None:
    if not isinstance(text, str):
        raise ExpressionError(
            f"Invalid {_one_line(what)}: expected text, got {type(text).__name__}."
        )
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"Invalid {_one_line(what)} {_show(text, 30)}: it is too long ({len(text):,} "
            f"characters, at most {MAX_LENGTH:,}). Shorten it, e.g. define repeated parts as "
            "parameters."
        )


def parse_expression(
    text: str,
    *,
    what: str = "expression",
    resolve_name: Callable[[str], sympy.Expr] | None = None,
    extra_calls: Mapping[str, Callable[[list[sympy.Expr]], sympy.Expr]] | None = None,
) -> sympy.Expr:
    """Parse ``text`` into a real-valued SymPy expression without evaluating any code.

    Accepted: int and float literals (floats become exact rationals), ``pi`` and ``E``, names,
    ``+ - * /``, unary ``-``/``+``, powers written ``^`` or ``**`` (``^`` is power, not xor), and
    one-argument calls of :data:`FUNCTIONS`. Multiplication is never implied: ``2x1`` and
    ``sin x1`` are errors with a hint.

    Args:
        text: The expression, at most :data:`MAX_LENGTH` ASCII characters.
        what: What is being parsed, for error messages (e.g. ``"domain bound for x1"``).
        resolve_name: Called with every other name (after it passed the checks of
            :func:`check_identifier`); returns the SymPy object for it or raises
            ExpressionError. By default each name becomes :func:`real_symbol` of itself.
        extra_calls: More callable names handled by the caller (e.g. ``"diff"``); each handler
            gets the list of already built arguments (any number of them) and returns the
            result. These take precedence over :data:`FUNCTIONS`.

    Returns:
        The SymPy expression.

    Raises:
        ExpressionError: For any text that is not accepted, or that is undefined (``1/0``),
            complex (``sqrt(-1)``), too large or too deeply nested. No other exception escapes:
            errors raised inside SymPy or the callbacks are converted (an ExpressionError from a
            callback passes through unchanged).

    Example:
        >>> parse_expression("-x1^2 + 0.5*sin(x2)")
        -x1**2 + sin(x2)/2
    """
    _check_text(text, what)
    source = _Source(text, what)
    try:
        source.prepare()
        tree = source.parse()
        builder = _Builder(source, resolve_name, extra_calls or {})
        return builder.build(tree, 1)
    except ExpressionError:
        raise
    except (RecursionError, MemoryError) as exc:
        raise ExpressionError(
            f"Invalid {_one_line(what)} {_show(text)}: it is too deeply nested or too large to "
            f"build ({type(exc).__name__}). Simplify it or split it into parameters."
        ) from exc
    except Exception as exc:  # never let SymPy's or a callback's own exception types escape
        detail = _one_line(str(exc))[:200]
        raise ExpressionError(
            f"Invalid {_one_line(what)} {_show(text)}: it could not be built "
            f"({type(exc).__name__}: {detail}). {_HINT_GENERIC}."
        ) from exc


def parse_constant(
    text: str, *, what: str = "constant", names: Mapping[str, sympy.Expr] | None = None
) -> tuple[sympy.Expr, float]:
    """Parse a real, finite constant such as ``2*pi`` or ``1/Re``.

    The text follows the grammar of :func:`parse_expression`; the only names allowed besides
    ``pi`` and ``E`` are the keys of ``names`` (e.g. parameters defined earlier).

    Args:
        text: The constant's text.
        what: What is being parsed, for error messages (e.g. ``"parameter nu"``).
        names: Known constants the text may refer to, by name.

    Returns:
        ``(exact, value)``: the exact SymPy expression and its value as a float.

    Raises:
        ExpressionError: If the text is not accepted, uses an unknown name, or its value is
            complex (``sqrt(-1)``, ``asin(2)``), infinite, undefined or above 1e300 in magnitude.

    Example:
        >>> parse_constant("2*pi")
        (2*pi, 6.283185307179586)
    """
    known = dict(names or {})

    def resolve(name: str) -> sympy.Expr:
        if name in known:
            return known[name]
        available = ", ".join(sorted(known)) if known else "none"
        raise ExpressionError(
            f"Invalid {_one_line(what)} {_show(text)}: unknown name {name!r}. A constant may use "
            f"numbers, pi, E, the functions and already defined constants (defined: "
            f"{available})."
        )

    expr = parse_expression(text, what=what, resolve_name=resolve)
    if expr.free_symbols:
        symbols = ", ".join(sorted(str(symbol) for symbol in expr.free_symbols))
        raise ExpressionError(
            f"Invalid {_one_line(what)} {_show(text)}: it depends on {symbols}. A constant may "
            "only use numbers, pi, E, the functions and already defined constants."
        )
    value, reason = _final_value(expr)
    if value is None:
        detail = {
            "complex": "its value is complex, but pinncheck works with real-valued constants",
            "undefined": "its value is undefined",
        }.get(reason, "its value could not be computed")
        raise ExpressionError(
            f"Invalid {_one_line(what)} {_show(text)}: {detail}. Check the arguments of "
            "functions such as sqrt, log, asin and acosh."
        )
    if not math.isfinite(value) or abs(value) > _MAX_MAGNITUDE:
        raise ExpressionError(
            f"Invalid {_one_line(what)} {_show(text)}: its value is too large (at most "
            f"{_MAX_MAGNITUDE:g} in magnitude). Rescale the problem or use smaller constants."
        )
    return expr, value
