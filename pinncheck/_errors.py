"""pinncheck's exceptions and exit codes.

Every error pinncheck raises on purpose derives from :class:`PinncheckError`. Each class also
derives from the builtin category it belongs to, so callers may catch either. The CLI maps the
classes to the exit codes in :class:`ExitCode`.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum, unique
from typing import Any


@unique
class ExitCode(IntEnum):
    """Exit status of the ``pinncheck`` command."""

    OK = 0
    """Everything that was checked passed (or met its expectation)."""
    FAILED = 1
    """The check ran, and something disagreed, was undefined, or missed its expectation."""
    USAGE = 2
    """Bad input: an expression, domain, option, device, check file or user module."""
    INTERNAL = 3
    """A bug in pinncheck itself."""


class PinncheckError(Exception):
    """Base class of every error pinncheck raises on purpose (bad input, not bugs)."""

    exit_code: ExitCode = ExitCode.USAGE


class ExpressionError(PinncheckError, ValueError):
    """An expression or constant could not be parsed or is not allowed."""


class DomainError(PinncheckError, ValueError):
    """A domain specification is malformed or inconsistent with the expression."""


class OptionError(PinncheckError, ValueError):
    """An option has a value pinncheck cannot use (points, order, dtype, tolerances...)."""


class DeviceError(PinncheckError, RuntimeError):
    """The requested device is not available."""


class CheckFileError(PinncheckError, ValueError):
    """A check file (``pinncheck run``) is malformed.

    ``problems`` lists every problem found (each a ``pinncheck._checkfile.Problem`` with its
    file, line and message) when the files were validated together; the message joins them.
    """

    def __init__(self, message: str, problems: Sequence[Any] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class UserCodeError(PinncheckError, RuntimeError):
    """The user's own module or function could not be loaded or raised an exception.

    ``details`` holds the formatted traceback of the user's code, which is shown to the user
    because it points into their code, not into pinncheck's.
    """

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details
