"""The text of an expression: character checks, ``ast.parse``, columns and syntax-error hints.

Part of :mod:`pinncheck._parse`.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import NoReturn

from pinncheck._errors import ExpressionError
from pinncheck._parse_names import (
    _MAX_DIGITS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_NODES,
    _capital,
    _describe_char,
    _non_ascii_hint,
    _one_line,
    _show,
)

_IMPLICIT_NUMBER = re.compile(r"(?<![\w.])((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)([A-Za-z_]\w*)")
_FLOAT_EXPONENT = re.compile(r"[eE]\d+")
_LEXICAL_PART = re.compile(
    r"\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|[A-Za-z_]\w*|\*\*|//|[-+*/%@<>&|~]"
)
_HINT_GENERIC = (
    "Use only numbers, names, + - * / ^ and parentheses, and call functions like sin(x1)"
)


class Source:
    """The text as given, the text handed to ``ast.parse``, and a map between their columns."""

    def __init__(self, text: str, what: str, *, equation: bool = False) -> None:
        self.text = text
        self.what = what
        self.equation = equation
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
        sides = 1
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
            elif char == "=" and self.equation:
                sides = self.equals_sign(index, start, end, sides)
                chars.append("-(")  # LHS = RHS is read as LHS -(RHS)
                columns += [index, index]
            else:
                chars.append(char)
                columns.append(index)
        if sides == 2:
            chars.append(")")
            columns.append(end)
        columns.append(end)
        self.code = "".join(chars)
        self.columns = columns

    def equals_sign(self, index: int, start: int, end: int, sides: int) -> int:
        """Check the ``=`` at ``index`` of an equation; returns the number of sides so far."""
        text = self.text
        usage = "write one expression (meaning = 0) or LHS = RHS with a single '='"
        before = text[index - 1] if index > start else ""
        after = text[index + 1] if index + 1 < end else ""
        if (before and before in "=<>!") or after == "=":
            self.fail("comparisons (==, <=, >=, !=) are not allowed", usage, index + 1)
        left = text[start:index]
        if left.count("(") != left.count(")"):
            self.fail(
                "'=' may only separate the two sides, not stand inside parentheses",
                usage,
                index + 1,
            )
        if sides > 1:
            self.fail("it has more than one '='", usage, index + 1)
        if not text[start:index].strip() or not text[index + 1 : end].strip():
            self.fail("a side of the '=' is empty", usage, index + 1)
        return 2

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
        if "{" in text or "}" in text:
            brace = text.find("{") if "{" in text else text.find("}")
            self.fail(
                "braces { } are not allowed",
                "write subscripts without braces (u_xx, not u_{xx}) and group with ( )",
                brace + 1,
            )
        if "was never closed" in message or "unmatched" in message or "does not match" in message:
            self.fail(message, "check that every '(' has a matching ')'", column)
        near = ""
        if offset is not None and 0 <= offset < len(self.code) and column is not None:
            # Quote the text as typed (the code may differ: ^ is **, and LHS = RHS is
            # LHS -(RHS)).
            near = f" (near {_show(self.text[column - 1 : column + 11], 20)})"
        hint = (
            "check for a missing operator (* is never implied), unbalanced parentheses or a "
            "stray character"
        )
        if "=" in self.code:
            hint = "give a single expression without '=' (for an equation, write only one side)"
        self.fail(f"could not parse it{near}", hint, column)
