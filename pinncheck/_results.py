"""Result objects shared by every kind of report, and their JSON form."""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._compare import ErrorStats, Tolerance
from ._version import __version__


def _num(x: float | None) -> float | str | None:
    # JSON has no NaN/inf; they are written as strings so that the document stays valid.
    if x is None:
        return None
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def derivative_name(wrt: Sequence[str]) -> str:
    """``d/dx``, ``d2/dx^2``, ``d2/dx1dx2``, ``d3/dx^2dt``; ``value`` for order 0."""
    if not wrt:
        return "value"
    parts: list[str] = []
    for name in dict.fromkeys(wrt):
        m = list(wrt).count(name)
        parts.append(f"d{name}" + (f"^{m}" if m > 1 else ""))
    k = len(wrt)
    return ("d" if k == 1 else f"d{k}") + "/" + "".join(parts)


@dataclass
class QuantityResult:
    """One compared quantity (a partial derivative or a residual) and its statistics."""

    name: str
    stats: ErrorStats
    tolerance: Tolerance
    variables: tuple[str, ...]

    @property
    def status(self) -> str:
        return self.stats.status(self.tolerance)

    @property
    def effective_atol(self) -> float:
        return self.tolerance.effective_atol(self.stats.max_abs_exact)

    def point_dict(
        self, point: list[float] | None, values: tuple[float, float] | None, index: int | None
    ) -> dict[str, Any] | None:
        if point is None or values is None:
            return None
        coords = {n: _num(v) for n, v in zip(self.variables, point, strict=True)}
        return {"index": index, **coords, "autograd": _num(values[0]), "exact": _num(values[1])}

    def stats_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "max_abs_error": _num(s.max_abs_error if s.finite else math.nan),
            "max_rel_error": _num(s.max_rel_error),
            "rms_error": _num(s.rms_error),
            "max_abs_exact": _num(s.max_abs_exact),
            "nonfinite": s.nonfinite,
            "worst_point": self.point_dict(s.worst_point, s.worst_values, s.worst_index),
            "first_nonfinite_point": self.point_dict(
                s.first_nonfinite_point, s.first_nonfinite_values, s.first_nonfinite_index
            ),
            "rtol": self.tolerance.rtol,
            "atol": _num(self.effective_atol),
            "status": self.status,
        }


@dataclass
class DerivativeResult(QuantityResult):
    """A partial derivative of one function: ``wrt`` lists the variables, repeated by order."""

    function: str
    wrt: tuple[str, ...]
    exact: str

    @property
    def order(self) -> int:
        return len(self.wrt)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "function": self.function,
            "wrt": list(self.wrt),
            "order": self.order,
            "exact": self.exact,
            **self.stats_dict(),
        }


def environment() -> dict[str, Any]:
    import torch

    return {
        "pinncheck": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def overall_status(statuses: Sequence[str]) -> str:
    return "pass" if all(s == "pass" for s in statuses) else "fail"
