"""Sampling domains: boxes ``NAME=LO:HI`` given on the command line or in check files."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import DomainError, ExpressionError
from ._parse import check_identifier, parse_constant


@dataclass(frozen=True)
class Interval:
    """One coordinate of the box: ``name`` ranges over ``[lo, hi]``.

    ``lo_text``/``hi_text`` keep the bounds as the user wrote them (``-pi``) for reports.
    """

    name: str
    lo: float
    hi: float
    lo_text: str
    hi_text: str

    def __str__(self) -> str:
        return f"{self.name}={self.lo_text}:{self.hi_text}"


@dataclass(frozen=True)
class Domain:
    """An axis-aligned box, one :class:`Interval` per variable, in the order given, optionally
    cut down to the part where inequalities hold (``where``; see :mod:`pinncheck._region`)."""

    intervals: tuple[Interval, ...]
    where: tuple[Any, ...] = ()
    # The share of the box's points that satisfy ``where`` (measured when parsed).
    acceptance: float | None = field(default=None, compare=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(iv.name for iv in self.intervals)

    @property
    def lows(self) -> tuple[float, ...]:
        return tuple(iv.lo for iv in self.intervals)

    @property
    def highs(self) -> tuple[float, ...]:
        return tuple(iv.hi for iv in self.intervals)

    def __len__(self) -> int:
        return len(self.intervals)

    def __str__(self) -> str:
        box = ", ".join(str(iv) for iv in self.intervals)
        if not self.where:
            return box
        return box + " where " + "; ".join(dict.fromkeys(str(c) for c in self.where))

    def as_dict(self) -> dict[str, list[float]]:
        return {iv.name: [iv.lo, iv.hi] for iv in self.intervals}


DomainLike = Domain | str | Sequence[str] | Mapping[str, "tuple[float | str, float | str] | str"]


def _split_specs(specs: Iterable[str]) -> list[str]:
    out: list[str] = []
    for spec in specs:
        out.extend(part for part in (p.strip() for p in spec.split(",")) if part)
    return out


def _bound(text: str, what: str) -> tuple[str, float]:
    try:
        _, value = parse_constant(text, what=what)
    except ExpressionError as exc:
        raise DomainError(str(exc)) from None
    if not math.isfinite(value):
        raise DomainError(f"The {what} is not finite ({text!r}); bounds must be finite numbers.")
    return text.strip(), value


def _interval(name: str, lo_text: str, hi_text: str, shadow: bool = False) -> Interval:
    try:
        name = check_identifier(name, what="domain variable", shadow=shadow)
    except ExpressionError as exc:
        raise DomainError(str(exc)) from None
    lo_s, lo = _bound(lo_text, f"lower bound of {name}")
    hi_s, hi = _bound(hi_text, f"upper bound of {name}")
    if not lo < hi:
        raise DomainError(
            f"The domain of {name} is empty: lower bound {lo_s} ({lo:g}) is not below upper "
            f"bound {hi_s} ({hi:g}). Write it as {name}=LO:HI with LO < HI."
        )
    return Interval(name, lo, hi, lo_s, hi_s)


def parse_domain(
    spec: DomainLike, where: str | Sequence[str] | None = None, *, shadow: bool = False
) -> Domain:
    """Build a :class:`Domain` from the forms users write.

    Args:
        spec: a ``Domain``; a string ``"x=0:1, t=0:1"``; a list of such strings (the repeated
            ``-d`` option); or a mapping ``{"x": (0, 1), "t": ("0", "2*pi")}`` whose bounds are
            numbers or constant expressions, or ``{"x": "0:1"}``.
        where: inequalities in the variables that must all hold (``"x**2 + y**2 <= 1"``); the
            domain is then the part of the box where they do, sampled by rejection. A region
            with less than 0.1% of the box's points is refused.
        shadow: accept variables named like a constant (``E``); the caller treats the name
            as the variable in its expressions and warns.

    Returns:
        The domain, variables in the order given.

    Raises:
        DomainError: malformed entries, bad or reserved names, non-finite or empty intervals,
            duplicate variables.

    Example:
        >>> parse_domain(["x=-pi:pi", "t=0:1"]).names
        ('x', 't')
    """
    if isinstance(spec, Domain):
        return _with_where(spec, where)
    pieces: list[tuple[str, str, str]] = []
    if isinstance(spec, Mapping):
        for name, bounds in spec.items():
            if isinstance(bounds, str):
                lo_t, sep, hi_t = bounds.partition(":")
                if not sep:
                    raise DomainError(f"The domain of {name} must be LO:HI, got {bounds!r}.")
            else:
                try:
                    lo_v, hi_v = bounds
                except (TypeError, ValueError):
                    raise DomainError(
                        f"The domain of {name} must be a pair (LO, HI), got {bounds!r}."
                    ) from None
                lo_t, hi_t = str(lo_v), str(hi_v)
            pieces.append((str(name), lo_t, hi_t))
    else:
        entries = _split_specs([spec] if isinstance(spec, str) else list(spec))
        for entry in entries:
            name, eq, rng = entry.partition("=")
            lo_t, colon, hi_t = rng.partition(":")
            if not eq or not colon or not name.strip() or ":" in hi_t:
                raise DomainError(
                    f"Cannot read the domain {entry!r}: write NAME=LO:HI, for example x=0:1 or "
                    "t=0:2*pi; several may be separated by commas."
                )
            pieces.append((name.strip(), lo_t, hi_t))
    if not pieces:
        raise DomainError("No domain given: add one -d NAME=LO:HI for each variable.")
    intervals: list[Interval] = []
    seen: set[str] = set()
    for name, lo_t, hi_t in pieces:
        iv = _interval(name, lo_t, hi_t, shadow)
        if iv.name in seen:
            raise DomainError(f"The variable {iv.name} is given a domain twice; give it once.")
        seen.add(iv.name)
        intervals.append(iv)
    return _with_where(Domain(tuple(intervals)), where)


def _with_where(domain: Domain, where: str | Sequence[str] | None) -> Domain:
    if where is None or (not isinstance(where, str) and not list(where)):
        return domain
    from ._region import check_samplable, parse_where

    cut = Domain(domain.intervals, domain.where + parse_where(where, domain.names))
    return Domain(cut.intervals, cut.where, check_samplable(cut))
