"""Names for the allowlist parser: limits, functions, constants, reserved names, messages.

Part of :mod:`pinncheck._parse` (which re-exports the public names); split out so that each
module of the parser holds one concern.
"""

from __future__ import annotations

import functools
import keyword
import math
import unicodedata
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import sympy

from pinncheck._errors import ExpressionError

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
        "sech": sympy.sech,
        "csch": sympy.csch,
        "coth": sympy.coth,
        "log10": lambda arg: sympy.log(arg) / sympy.log(10),
        "Heaviside": sympy.Heaviside,
    }
)
"""The functions an expression may call, each with exactly one argument.

``Heaviside(0)`` is 1/2; its derivative is zero wherever it is differentiable."""

MULTI_FUNCTIONS: Mapping[str, Callable[..., sympy.Expr]] = MappingProxyType(
    {"Min": sympy.Min, "Max": sympy.Max}
)
"""The functions an expression may call with two or more arguments."""

FUNCTION_HINTS: Mapping[str, str] = MappingProxyType(
    {
        "ln": "log (log is the natural logarithm)",
        "abs": "Abs",
        "min": "Min",
        "max": "Max",
        "heaviside": "Heaviside",
        "arcsin": "asin",
        "arccos": "acos",
        "arctan": "atan",
        "arcsinh": "asinh",
        "arccosh": "acosh",
        "arctanh": "atanh",
        "sec": "1/cos",
        "csc": "1/sin",
        "cot": "1/tan",
        "log2": "log(...)/log(2)",
        "exp10": "10**(...)",
        "pow": "** or ^ (e.g. x**2)",
        "sgn": "Abs(x)/x or Heaviside",
    }
)
"""Common names of functions that pinncheck spells differently, with what to write instead."""

CONSTANTS: Mapping[str, sympy.Expr] = MappingProxyType({"pi": sympy.pi, "E": sympy.E})
"""The named constants an expression may use."""

# Names that read as something else in SymPy's output (I is the imaginary unit, oo infinity).
# pinncheck never hands text to SymPy, so SymPy's other one-letter names (S, N, O, Q) are free.
_SYMPY_NAMES = ("I", "oo", "nan", "zoo")
# Words of the PDE language (derivatives and operators).
_PDE_WORDS = ("diff", "laplacian")
RESERVED_NAMES: frozenset[str] = frozenset(
    [*FUNCTIONS, *MULTI_FUNCTIONS, *CONSTANTS, *_PDE_WORDS, "e", *_SYMPY_NAMES, *keyword.kwlist]
)
"""Names that may not be used for variables or parameters (a declared name may shadow one of
:data:`CONSTANTS`; see :func:`check_identifier`)."""

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


def _identifier_problem(name: str, shadow: bool = False) -> tuple[str, str] | None:
    """Why ``name`` (already stripped, ASCII) cannot be a variable: (problem, hint), or None.

    With ``shadow``, a constant's name (``E``) is accepted: the caller declares it."""
    if not name.isidentifier():
        return (
            f"{name!r} is not a valid name",
            "a name starts with a letter and contains only letters, digits and _ (e.g. x1)",
        )
    if name.startswith("_"):
        return f"{name!r} starts with '_'", "names must start with a letter"
    if name in FUNCTIONS or name in MULTI_FUNCTIONS:
        return f"{name!r} is a function name", f"choose another name, or call it as {name}(x1)"
    if name in CONSTANTS and not shadow:
        return f"{name!r} is a constant name", f"choose another name; {name} is already defined"
    if name == "e":
        return (
            "'e' is reserved (it is ambiguous)",
            "use E for Euler's number 2.718..., or pick another name for a variable",
        )
    if name in _PDE_WORDS:
        return f"{name!r} is reserved for derivatives", "choose another name"
    if name == "I":
        return "'I' is reserved (the imaginary unit)", "choose another name"
    if keyword.iskeyword(name):
        return f"{name!r} is a Python keyword", "choose another name"
    if name in RESERVED_NAMES and not (shadow and name in CONSTANTS):
        return f"{name!r} is reserved (a SymPy name)", "choose another name"
    return None


def check_identifier(name: str, *, what: str, shadow: bool = False) -> str:
    """Check that ``name`` may be used as a variable or parameter name.

    A valid name is an ASCII Python identifier that is not a keyword, does not start with
    ``_`` and is not in :data:`RESERVED_NAMES` (function and constant names, ``diff``, ``e``,
    ``I`` and a few other SymPy names).

    Args:
        name: The proposed name; surrounding whitespace is ignored.
        what: What the name is for, used in the error message (e.g. ``"variable name"``).
        shadow: Accept the name of a constant (``E``, ``pi``): the caller declares the name,
            and expressions that it parses treat the name as the declared one
            (:func:`shadow_warning` words the warning to give).

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
    problem = _identifier_problem(stripped, shadow)
    if problem is not None:
        raise ExpressionError(f"Invalid {_one_line(what)}: {problem[0]}. {_capital(problem[1])}.")
    return stripped


def shadow_warning(name: str, what: str) -> str | None:
    """The warning for a declared name that shadows a constant (``E``), or None.

    Example:
        >>> shadow_warning("E", "parameter")
        "The parameter E shadows the constant E (Euler's number) in this run; write exp(1) for Euler's number."
    """  # noqa: E501
    if name not in CONSTANTS:
        return None
    spelled = {"E": "exp(1)", "pi": "acos(-1)"}[name]
    meaning = {"E": "Euler's number", "pi": "3.14159..."}[name]
    return (
        f"The {what} {name} shadows the constant {name} ({meaning}) in this run; write "
        f"{spelled} for {meaning}."
    )


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
