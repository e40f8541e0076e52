"""Assertion helpers for your own test suite (pytest, unittest, plain ``assert``).

Each helper runs one pinncheck check and raises :class:`AssertionError` with pinncheck's
diagnosis as the message when it fails, so a failing test says what is wrong::

    from pinncheck.testing import assert_pointwise, assert_residual_matches

    from mypinn.physics import heat_residual
    from mypinn.model import make_net

    def test_heat_residual():
        assert_residual_matches(
            heat_residual,
            pde="u_t - nu*u_xx",
            solution="u = sin(2*x + 1)*exp(-t) + x**3*t",
            domain=["x=0:1", "t=0:1"],
            param=["nu=0.1"],
        )

    def test_network_is_pointwise():
        assert_pointwise(make_net(), domain=["x=0:1", "t=0:1"])

Importing this module is cheap: torch and SymPy load when a helper is first called.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._check import CheckReport
    from ._domain import DomainLike
    from ._pde import Assignments
    from ._probe import ProbeReport
    from ._verify import VerifyReport


R = TypeVar("R")

FULL_REPORT_ENV = "PINNCHECK_FULL_REPORT"
"""Set this environment variable to ``1`` to append pinncheck's full report (the tables the
command line prints) to every failure message."""


class PinncheckAssertionError(AssertionError):
    """A pinncheck helper's failure: a short message (what disagrees, and pinncheck's
    diagnosis); the whole report is in ``report`` (and in the message when the environment
    variable ``PINNCHECK_FULL_REPORT=1`` is set)."""

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report


def _passed(report: R, title: str, lines: Sequence[str], warnings: Sequence[str]) -> R:
    """``report`` when it passed; else raise :class:`PinncheckAssertionError`."""
    __tracebackhide__ = True
    if getattr(report, "status", None) == "pass":
        return report
    body = [title, *(f"  - {line}" for line in lines)]
    body += [f"  (warning) {w}" for w in warnings]
    if os.environ.get(FULL_REPORT_ENV, "").strip() not in ("", "0"):
        from .cli import render_report

        body += ["", render_report(report).rstrip()]
    else:
        body.append(
            f"  (the full report: set {FULL_REPORT_ENV}=1, or read the exception's .report)"
        )
    raise PinncheckAssertionError("\n".join(body), report)


def assert_partials_match(expr: str, domain: DomainLike, **kw: Any) -> CheckReport:
    """Assert that autograd's partial derivatives of ``expr`` match SymPy's.

    Args:
        expr: the expression (``"x1**2*sin(x2)"``), parsed by pinncheck's allowlist parser.
        domain: the sampling box (``["x1=0:1", "x2=0:1"]``).
        **kw: any keyword of :func:`pinncheck.check` (``n``, ``order``, ``dtype``, ``device``,
            ``seed``, ``rtol``, ``atol``...).

    Returns:
        The passing :class:`~pinncheck.CheckReport`.

    Raises:
        PinncheckAssertionError: a derivative disagrees or is undefined; the message names each one.

    Example:
        >>> assert_partials_match("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"]).status
        'pass'
    """
    __tracebackhide__ = True
    from ._check import check
    from ._render import describe_failures

    report = check(expr, domain, **kw)
    title = f"pinncheck: the partial derivatives of {expr} disagree"
    return _passed(report, title, [describe_failures(report.derivatives)], report.warnings)


def assert_residual_matches(
    f: Any,
    *,
    pde: str | Sequence[str],
    solution: Assignments,
    domain: DomainLike,
    param: Assignments = None,
    **kw: Any,
) -> VerifyReport:
    """Assert that your residual function ``f(x, u)`` computes the exact residual of ``pde``.

    Args:
        f: the residual function (DeepXDE convention ``f(x, u)``, see :func:`pinncheck.verify`),
            or a target string ``"path/to/file.py:function"`` / ``"package.module:function"``.
        pde, solution, domain, param: as for :func:`pinncheck.verify`; the manufactured
            solution need not solve the PDE.
        **kw: any other keyword of :func:`pinncheck.verify` (``n``, ``dtype``, ``rtol``...).

    Returns:
        The passing :class:`~pinncheck.VerifyReport`.

    Raises:
        PinncheckAssertionError: the residual disagrees; the message is pinncheck's diagnosis
            (where, and what your code computed instead, e.g. ``your residual ≈ 1.0·u_x −
            0.1·u_tt``).
        UserCodeError: ``f`` raised or returned the wrong shape.
    """
    __tracebackhide__ = True
    from ._verify import verify

    report = verify(f, pde, solution, domain, param=param, **kw)
    title = f"pinncheck: {report.target} does not compute {'; '.join(report.system.equations)}"
    return _passed(report, title, report.diagnosis, report.warnings)


def assert_pointwise(model: Any, *, domain: DomainLike, **kw: Any) -> ProbeReport:
    """Assert that ``model`` is pointwise (output i depends on input i only) and deterministic.

    Args:
        model: an ``nn.Module``, a callable, a zero-argument factory, or a target string.
        domain: the input box; its variables are the input columns, in order.
        **kw: any other keyword of :func:`pinncheck.probe` (``n``, ``dtype``, ``device``...).

    Returns:
        The passing :class:`~pinncheck.ProbeReport` (its ``warnings`` may still say that second
        derivatives vanish).

    Raises:
        PinncheckAssertionError: batch coupling, nondeterminism or non-finite outputs; the
            message is pinncheck's diagnosis, naming the culprit submodules.
    """
    __tracebackhide__ = True
    from ._probe import probe

    report = probe(model, domain, **kw)
    title = f"pinncheck: the model {report.target} is not pointwise, deterministic and finite"
    return _passed(report, title, report.diagnosis, report.warnings)


__all__ = [
    "PinncheckAssertionError",
    "assert_partials_match",
    "assert_pointwise",
    "assert_residual_matches",
]
