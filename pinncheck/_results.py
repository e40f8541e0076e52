"""Result objects shared by every kind of report, and their JSON form."""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._compare import ErrorStats, Tolerance
from ._version import SCHEMA_VERSION, __version__

NONFINITE_SUFFIX = "_nonfinite"


def _num(x: float | None) -> float | None:
    """A number for a report's document: a float (NaN and inf kept; see :func:`json_ready`)."""
    return None if x is None else float(x)


def nonfinite_kind(x: float) -> str:
    """``"nan"``, ``"inf"`` or ``"-inf"``."""
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _is_nonfinite(v: Any) -> bool:
    return isinstance(v, float) and not math.isfinite(v)


def json_ready(value: Any) -> Any:
    """``value`` with every NaN and infinity replaced by ``null``, so that the document is
    valid JSON and arithmetic on it (jq, JavaScript) never meets a string.

    In an object, the kind of a replaced number (``"nan"``, ``"inf"`` or ``"-inf"``) goes
    into a sibling key with the suffix ``_nonfinite``: ``{"max_abs_error": null,
    "max_abs_error_nonfinite": "nan"}``. Such keys appear only for non-finite numbers.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if _is_nonfinite(v):
                out[k] = None
                out[f"{k}{NONFINITE_SUFFIX}"] = nonfinite_kind(v)
            else:
                out[k] = json_ready(v)
        return out
    if isinstance(value, (list, tuple)):
        return [None if _is_nonfinite(v) else json_ready(v) for v in value]
    return value


def document(body: dict[str, Any]) -> dict[str, Any]:
    """A report's JSON document: the environment header, ``schema_version`` and ``body``,
    made valid JSON by :func:`json_ready`."""
    return json_ready({**environment(), "schema_version": SCHEMA_VERSION, **body})


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


def point_coordinates(names: Sequence[str], point: Sequence[float]) -> dict[str, float | None]:
    """A point's coordinates, by variable name: the ``point`` object of the JSON documents."""
    return {n: _num(v) for n, v in zip(names, point, strict=True)}


@dataclass
class QuantityResult:
    """One compared quantity (a partial derivative or a residual) and its statistics."""

    name: str
    stats: ErrorStats
    tolerance: Tolerance
    variables: tuple[str, ...]

    @property
    def status(self) -> str:
        return self.stats.status()

    def conditioning_scale(self) -> float:
        """The size against which the formula's rounding is judged ill-conditioned."""
        return self.stats.max_abs_exact

    @property
    def worst_tolerance(self) -> float:
        """The tolerance at the worst point (NaN without one)."""
        w = self.stats.worst
        return math.nan if w is None else w.tolerance

    def point_dict(
        self, point: list[float] | None, values: tuple[float, float] | None, index: int | None
    ) -> dict[str, Any] | None:
        if point is None or values is None:
            return None
        return {
            "index": index,
            "point": point_coordinates(self.variables, point),
            "autograd": _num(values[0]),
            "exact": _num(values[1]),
        }

    def stats_dict(self) -> dict[str, Any]:
        """The error figures. Where any point is undefined (NaN or inf on either side), the
        errors over all points are undefined too: NaN (``null`` in JSON), never 0."""
        s = self.stats
        defined = s.finite > 0 and s.nonfinite == 0
        return {
            "max_abs_error": _num(s.max_abs_error if defined else math.nan),
            "max_rel_error": _num(s.max_rel_error if defined else math.nan),
            "rms_error": _num(s.rms_error if defined else math.nan),
            "max_abs_exact": _num(s.max_abs_exact),
            "nonfinite": s.nonfinite,
            "finite_points": s.finite,
            "worst_point": self.point_dict(s.worst_point, s.worst_values, s.worst_index),
            "first_nonfinite_point": self.point_dict(
                s.first_nonfinite_point, s.first_nonfinite_values, s.first_nonfinite_index
            ),
            "rtol": self.tolerance.rtol,
            "atol": self.tolerance.atol,
            "tolerance": _num(self.worst_tolerance),
            "max_error_ratio": _num(s.worst_ratio if s.worst is not None else math.nan),
            "reference_error": _num(s.max_reference_error if s.finite else math.nan),
            "undecided_points": s.undecided_count,
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


def quantities(report: Any) -> list[Any]:
    """A report's derivatives, then its equations (a check has no equations, verify no
    derivatives)."""
    return [*getattr(report, "derivatives", []), *getattr(report, "equations", [])]


def inconclusive_reason(s: ErrorStats) -> str:
    """Why a quantity's check could not say pass or fail."""
    if s.unresolved:
        return (
            f"at {s.unresolved} point(s) the error is within the float64 reference's own error "
            "of the tolerance, and high precision did not settle them in time"
        )
    counted = (
        f"about {s.vague} of {s.finite} points (estimated from a sample of 1 point in "
        f"{s.vague_stride})"
        if s.vague_stride
        else f"{s.vague} of {s.finite} points"
    )
    return (
        f"at {counted} the rounding tolerance is not small against the values there (over a "
        "tenth of them), so a missing or wrong term could hide in rounding. Use a manufactured "
        "solution whose values are of order 1 (not tiny, not near underflow), or a more "
        "precise dtype"
    )


ILL_CONDITIONED = 1e6
"""A quantity whose rounding bound somewhere exceeds this many units of roundoff of its scale
is ill-conditioned as written there (it loses six or more digits to rounding)."""


def conditioning_warnings(results: Sequence[QuantityResult], dtype: str) -> list[str]:
    """A warning for each quantity whose formula, as written, is ill-conditioned somewhere in
    the domain: autograd's rounding there is explained by the formula, and was allowed for."""
    from ._bounds import UNIT_ROUNDOFF
    from ._judge import REFERENCE_SAFETY

    u64 = UNIT_ROUNDOFF["float64"]
    out = []
    for r in results:
        s = r.stats
        probe = s.unsure
        scale = r.conditioning_scale()
        if probe is None or not s.finite or scale == 0.0:
            continue
        units = s.max_reference_error / (REFERENCE_SAFETY * u64 * scale)
        if units > ILL_CONDITIONED and math.isfinite(units):
            where = ", ".join(f"{n}={v:.6g}" for n, v in zip(r.variables, probe.point, strict=True))
            out.append(
                f"{r.name} is ill-conditioned as written near {where}: rounding alone can "
                f"change it by {units * UNIT_ROUNDOFF.get(dtype, u64):.2g} of its scale in "
                f"{dtype}. pinncheck allowed for that rounding (it is your formula's, not "
                "autograd's); rewrite the formula if you need those digits."
            )
    return out


def environment() -> dict[str, Any]:
    import torch

    return {
        "pinncheck": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def overall_status(statuses: Sequence[str]) -> str:
    return "pass" if all(s == "pass" for s in statuses) else "fail"
