"""Text that every terminal and log can carry.

Two guards for what pinncheck prints:

- :func:`printable` escapes control characters in user-supplied strings (check names,
  targets, expressions), so that a name holding ``ESC]0;...BEL`` or ``ESC[2J`` is shown as
  ``\\x1b]0;...\\x07`` instead of retitling or clearing the user's terminal.
- :func:`use_ascii_fallback` makes a text stream whose encoding cannot carry a character
  (``PYTHONIOENCODING=ascii``, a cp1252 Windows console) write an ASCII stand-in instead of
  failing: ``≈`` becomes ``~=``, ``·`` ``*``, ``−`` ``-``, ``…`` ``...``; any other character
  its ``\\uXXXX`` escape.

This module imports nothing heavy: the CLI uses it before torch or SymPy load.
"""

from __future__ import annotations

import codecs
import io
import unicodedata
from typing import Any

ERRORS = "pinncheck-ascii"
"""The name of the codec error handler registered by :func:`use_ascii_fallback`."""

ASCII_STAND_INS = {
    "≈": "~=",
    "·": "*",
    "−": "-",
    "…": "...",
    "–": "-",
    "—": "-",
    "×": "x",
    "≤": "<=",
    "≥": ">=",
    "→": "->",
    "µ": "u",
    "²": "^2",
    "³": "^3",
    "θ": "theta",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
}

# Bidirectional overrides and isolates reorder what a terminal shows ("Trojan source").
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: object) -> str:
    """``text`` as a string with control characters (and bidi overrides) escaped.

    Tabs and newlines are escaped too: a user-supplied name is one line.

    Example:
        >>> printable("heat\\x1b[2J\\x07")
        'heat\\\\x1b[2J\\\\x07'
    """
    s = str(text)
    if s.isprintable():
        return s
    return "".join(
        _escape(ch) if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI else ch
        for ch in s
    )


def printable_lines(text: object) -> str:
    """Like :func:`printable`, but keeps line breaks (tracebacks, multi-line messages)."""
    return "\n".join(printable(line) for line in str(text).split("\n"))


def _ascii_stand_in(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    chunk = exc.object[exc.start : exc.end]
    return "".join(ASCII_STAND_INS.get(ch, _escape(ch)) for ch in chunk), exc.end


def _register() -> None:
    try:
        codecs.lookup_error(ERRORS)
    except LookupError:
        codecs.register_error(ERRORS, _ascii_stand_in)


def use_ascii_fallback(stream: Any) -> None:
    """Make ``stream`` write ASCII stand-ins for characters its encoding cannot carry.

    Only a :class:`io.TextIOWrapper` whose errors handler is ``strict`` is changed (an
    explicit ``PYTHONIOENCODING=...:replace`` is respected); UTF-8 streams are left alone.
    """
    _register()
    if not isinstance(stream, io.TextIOWrapper) or stream.errors != "strict":
        return
    encoding = (stream.encoding or "").lower().replace("_", "-")
    if encoding.startswith("utf"):
        return
    try:
        stream.reconfigure(errors=ERRORS)
    except (ValueError, OSError):  # a closed or detached stream: nothing to do
        pass


__all__ = ["ASCII_STAND_INS", "printable", "printable_lines", "use_ascii_fallback"]
