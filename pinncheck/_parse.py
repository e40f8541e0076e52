"""An eval-free, allowlist parser from text to SymPy expressions.

SymPy's own parsers (``sympify``, ``parse_expr``, ``S("...")`` and every SymPy function that
accepts a string) evaluate Python code, so user text must never reach them. This module parses
text with :func:`ast.parse` (which only builds a syntax tree and runs nothing) and then walks the
tree, accepting an allowlist of node types and building the SymPy objects itself:

* numbers (``int`` and ``float`` literals; floats become exact rationals: ``0.1`` is ``1/10``),
* the constants :data:`CONSTANTS` and real-valued names (variables and parameters),
* ``+ - * /``, unary ``-``/``+`` and powers, written ``^`` or ``**`` (``^`` means power, as in
  SymPy: ``-x1^2`` is ``-(x1**2)`` and ``2^3^2`` is ``2^9``),
* calls of the one-argument functions in :data:`FUNCTIONS`, of ``Min``/``Max`` with two or more
  arguments, and of names the caller adds.

Everything else (attributes, indexing, strings, lambdas, comparisons, keywords...) is refused
with an :class:`~pinncheck._errors.ExpressionError` that says what was refused, where, and how
to fix it. Guards on the size and depth of the text and on the size of numbers and powers keep
SymPy from hanging or exhausting memory on inputs such as ``10^10^10``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping

import sympy  # this module exists to build SymPy objects

from pinncheck._errors import ExpressionError
from pinncheck._parse_build import Builder
from pinncheck._parse_names import (
    _MAX_MAGNITUDE,
    CONSTANTS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_LENGTH,
    MAX_NODES,
    MULTI_FUNCTIONS,
    RESERVED_NAMES,
    _one_line,
    _show,
    check_identifier,
    real_symbol,
    shadow_warning,
    sigmoid,
)
from pinncheck._parse_numbers import _final_value
from pinncheck._parse_source import _HINT_GENERIC, Source

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_NODES",
    "MULTI_FUNCTIONS",
    "RESERVED_NAMES",
    "check_identifier",
    "parse_constant",
    "parse_expression",
    "real_symbol",
    "shadow_warning",
    "sigmoid",
]

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
    shadowed: Collection[str] = (),
    equation: bool = False,
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
        shadowed: Names of :data:`CONSTANTS` (``E``) that the caller has declared as its own
            names: they go to ``resolve_name`` instead of meaning the constant.
        equation: Accept one ``=``: ``LHS = RHS`` is built as ``LHS - (RHS)``.

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
    source = Source(text, what, equation=equation)
    try:
        source.prepare()
        tree = source.parse()
        builder = Builder(source, resolve_name, extra_calls or {}, frozenset(shadowed))
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
    text: str,
    *,
    what: str = "constant",
    names: Mapping[str, sympy.Expr] | None = None,
    shadowed: Collection[str] = (),
) -> tuple[sympy.Expr, float]:
    """Parse a real, finite constant such as ``2*pi`` or ``1/Re``.

    The text follows the grammar of :func:`parse_expression`; the only names allowed besides
    ``pi`` and ``E`` are the keys of ``names`` (e.g. parameters defined earlier).

    Args:
        text: The constant's text.
        what: What is being parsed, for error messages (e.g. ``"parameter nu"``).
        names: Known constants the text may refer to, by name.
        shadowed: Names of :data:`CONSTANTS` declared by the caller (see
            :func:`parse_expression`); one of them that is in ``names`` means that value.

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

    expr = parse_expression(text, what=what, resolve_name=resolve, shadowed=shadowed)
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
