"""Where the CLI's output goes: consoles for stdout and stderr, and what happens when stdout
cannot take it.

- On a terminal, tables fit its width; a table that cannot fit without cutting a name or a
  number is printed at its natural width instead (the terminal wraps the lines).
- Anywhere else (a pipe, a file, a CI log), tables are printed at their natural width: no
  80-column wrap, every name and number in full, one line per row.
- A stream whose encoding cannot carry a character gets an ASCII stand-in (``_text``).
- A reader that closes stdout early (``pinncheck ... | head -2``) ends the command quietly
  with exit code 141 (128 + SIGPIPE), the code a shell reports for ``git log | head`` or
  ``yes | head``; stdout that cannot be written (``> /dev/full``, ``>&-``) ends it with one
  line on stderr and exit code 2.

rich is imported lazily, inside the functions, so that ``pinncheck --help`` stays light.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from ._text import use_ascii_fallback

DEFAULT_DUMP_LIMIT = 100_000
"""Most rows ``--dump-points`` writes by default (:mod:`pinncheck._dump`; kept here, where the
CLI reads it at start-up without importing the dump module)."""

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

CLOSED_PIPE_EXIT = 141
"""Exit code when the reader closes stdout early: 128 + SIGPIPE, as shells report it."""

UNWRITABLE_EXIT = 2
"""Exit code when stdout cannot be written (no space left, closed descriptor...)."""

# Width given to rich when stdout is not a terminal: tables take their natural width, which
# is far below this, and text is never wrapped.
UNBOUNDED_WIDTH = 1_000_000
RULE_WIDTH = 80


class StdoutClosed(Exception):
    """The reader of stdout went away (EPIPE)."""


class StdoutUnwritable(Exception):
    """stdout cannot be written; the message says why."""


def prepare_streams() -> None:
    """ASCII stand-ins on stdout and stderr where their encoding needs them."""
    use_ascii_fallback(sys.stdout)
    use_ascii_fallback(sys.stderr)


def _raise_output_error(exc: OSError) -> None:
    if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
        raise StdoutClosed from None
    raise StdoutUnwritable(exc.strerror or str(exc)) from None


class GuardedStdout:
    """``sys.stdout`` whose write errors become :class:`StdoutClosed` or
    :class:`StdoutUnwritable`, so that the CLI can tell them from errors of the work."""

    def __init__(self, stream: Any) -> None:
        if stream is None:
            raise StdoutUnwritable("standard output is closed")
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except (OSError, ValueError) as exc:  # ValueError: "I/O operation on closed file"
            if isinstance(exc, ValueError):
                raise StdoutUnwritable("standard output is closed") from None
            _raise_output_error(exc)
            raise  # pragma: no cover (unreachable)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError) as exc:
            if isinstance(exc, ValueError):
                raise StdoutUnwritable("standard output is closed") from None
            _raise_output_error(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def silence_stdout() -> None:
    """Point file descriptor 1 at the null device, so that flushing what Python still holds
    for stdout at exit cannot fail (and print "Exception ignored ...") again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass


def emit_json(doc: Any) -> None:
    """One JSON document on stdout, flushed (errors as for :class:`GuardedStdout`)."""
    out = GuardedStdout(sys.stdout)
    out.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    out.flush()


def stdout_console() -> Console:
    """A console on stdout: the terminal's width there, natural widths anywhere else."""
    from rich.console import Console

    stream = GuardedStdout(sys.stdout)
    console = Console(file=stream, highlight=False)  # type: ignore[arg-type]
    if not console.is_terminal:
        console = Console(
            file=stream,  # type: ignore[arg-type]
            highlight=False,
            width=UNBOUNDED_WIDTH,
            soft_wrap=True,
        )
    return console


class ForgivingStderr:
    """``sys.stderr`` that drops what it cannot write: a message about a failure has nowhere
    else to go, and must not turn into a second failure (``2> /dev/full``)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except (OSError, ValueError, AttributeError):
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError, AttributeError):
            pass

    def isatty(self) -> bool:
        try:
            return bool(self._stream.isatty())
        except (OSError, ValueError, AttributeError):
            return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(
        file=ForgivingStderr(sys.stderr),  # type: ignore[arg-type]
        highlight=False,
        soft_wrap=True,
    )


def print_table(console: Console, table: RenderableType) -> None:
    """A table that never cuts a name or a number: fitted to a terminal when it can be,
    else at its natural width."""
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    if isinstance(table, Table):
        # A column that does not wrap must never be narrower than its longest cell: that
        # makes the table's minimum width the width below which it would cut a number.
        for column in table.columns:
            if column.no_wrap:
                column.min_width = max(_cell_width(c) for c in [column.header, *column.cells])
    if console.width >= UNBOUNDED_WIDTH:
        if isinstance(table, Table) and table.title:
            # A title is padded to the table's width: print it on its own line instead, so
            # that no log line ends in spaces.
            title, table.title = table.title, None
            console.print(Text(title) if isinstance(title, str) else title)
        console.print(table, soft_wrap=False)
        return
    need = Measurement.get(console, console.options.update_width(UNBOUNDED_WIDTH), table)
    if need.minimum <= console.width:
        console.print(table)
    else:
        # Console.print never renders wider than the console: widen it for this table.
        width = console.width
        console.width = need.maximum
        try:
            console.print(table, crop=False)
        finally:
            console.width = width


def _cell_width(cell: Any) -> int:
    from rich.cells import cell_len
    from rich.text import Text

    if isinstance(cell, Text):
        return max((cell_len(line) for line in cell.plain.split("\n")), default=0)
    if isinstance(cell, str):
        return max((cell_len(line) for line in cell.split("\n")), default=0)
    return 0


def section(console: Console, title: str, style: str = "") -> None:
    """A titled rule between parts of the output (80 columns wide off a terminal)."""
    from rich.rule import Rule
    from rich.text import Text

    rule = Rule(Text(title), style=style)
    if console.width >= UNBOUNDED_WIDTH:
        console.print(rule, width=max(RULE_WIDTH, len(title) + 8))
    else:
        console.print(rule)


__all__ = [
    "CLOSED_PIPE_EXIT",
    "UNWRITABLE_EXIT",
    "GuardedStdout",
    "StdoutClosed",
    "StdoutUnwritable",
    "emit_json",
    "prepare_streams",
    "print_table",
    "section",
    "silence_stdout",
    "stderr_console",
    "stdout_console",
]
