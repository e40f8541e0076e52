"""Non-box domains: the part of the box where inequalities hold (``--where "x**2 + y**2 <= 1"``).

An inequality is two or more expressions joined by ``<``, ``<=``, ``>`` or ``>=``
(``0.2 <= x**2 + y**2 <= 1`` is two inequalities). Each side is parsed with pinncheck's own
expression parser (:func:`pinncheck._parse.parse_expression`), with the domain's variables as
the only names: nothing is evaluated as code. Several ``--where`` options must all hold.

Points are drawn by rejection: the box's own seeded sample (:mod:`pinncheck._sample`) is read in
fixed blocks of :data:`BLOCK` points, the inequalities are evaluated on each block in float64 on
the CPU, and the region's points are the accepted box points, in order. Point ``k`` of a run is
therefore the same whatever the chunk size and the device (the blocks, not the chunks, decide
what is evaluated together), and a float32 run uses the float32-rounded versions of the float64
run's points. :class:`RegionIndex` remembers how many points each block accepted, so that any
range of points is found without evaluating the blocks before it again.

A region must keep at least :data:`MIN_ACCEPTANCE` of the box's points (measured on a pilot
sample when the domain is parsed); a smaller one is refused (shrink the box around it).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy
import torch

from ._errors import DomainError, ExpressionError

BLOCK = 1 << 16
MIN_ACCEPTANCE = 1e-3
# The pilot sample that measures a region's share of the box when the domain is parsed.
PILOT_POINTS = 1 << 16
PILOT_SEED = 0
_OPERATORS = ("<=", ">=", "<", ">")


@dataclass(frozen=True)
class Constraint:
    """``g >= 0`` (``g > 0`` when strict), written by the user as ``text``."""

    text: str
    g: sympy.Expr
    strict: bool

    def __str__(self) -> str:
        return self.text


def _split(text: str) -> tuple[list[str], list[str]]:
    """The sides and the comparison operators of ``text``, split outside parentheses."""
    sides: list[str] = []
    ops: list[str] = []
    depth = 0
    last = i = 0
    while i < len(text):
        c = text[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and c in "<>=!":
            op = text[i : i + 2] if text[i : i + 2] in ("<=", ">=", "==", "!=", "=<", "=>") else c
            if op in ("==", "!=", "=", "=<", "=>"):
                hint = {
                    "=<": "write <= (not =<)",
                    "=>": "write >= (not =>)",
                }.get(op, "a region is given by <, <=, > or >= (an equation has no interior)")
                raise DomainError(
                    f"Cannot read the region {text!r}: {op!r} is not allowed; {hint}."
                )
            sides.append(text[last:i])
            ops.append(op)
            i += len(op)
            last = i
            continue
        i += 1
    sides.append(text[last:])
    return sides, ops


def parse_where(texts: str | Sequence[str] | None, names: Sequence[str]) -> tuple[Constraint, ...]:
    """Parse ``--where`` inequalities over the domain's variables ``names``.

    Raises:
        DomainError: no comparison, ``=``/``==``/``!=``, ``and``/``or``, a name that is not a
            domain variable, or a side that does not parse.

    Example:
        >>> [str(c.g) for c in parse_where(["x**2 + y**2 <= 1"], ["x", "y"])]
        ['-x**2 - y**2 + 1']
    """
    from ._parse import parse_expression, real_symbol

    if texts is None:
        return ()
    items = [texts] if isinstance(texts, str) else list(texts)
    variables = ", ".join(names)
    out: list[Constraint] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise DomainError("An empty --where was given; write an inequality such as x <= y.")
        text = item.strip()

        def resolve(name: str, text: str = text) -> sympy.Expr:
            if name in names:
                return real_symbol(name)
            raise ExpressionError(
                f"Cannot read the region {text!r}: unknown name {name!r}. A region may use the "
                f"domain's variables ({variables}), numbers, pi, E and the functions."
            )

        lowered = f" {text} "
        for word in (" and ", " or ", "&", "|"):
            if word in lowered:
                raise DomainError(
                    f"Cannot read the region {text!r}: {word.strip()!r} is not supported; give "
                    "each inequality its own --where (they must all hold)."
                )
        sides, ops = _split(text)
        if not ops:
            raise DomainError(
                f"Cannot read the region {text!r}: it has no comparison; write an inequality "
                "in the variables, e.g. x**2 + y**2 <= 1 or x >= 0.2*y."
            )
        try:
            exprs = [
                parse_expression(s, what=f"side of the region {text!r}", resolve_name=resolve)
                for s in sides
            ]
        except ExpressionError as exc:
            raise DomainError(str(exc)) from None
        for (a, b), op in zip(zip(exprs, exprs[1:], strict=False), ops, strict=True):
            g = b - a if op in ("<", "<=") else a - b
            if not g.free_symbols:
                raise DomainError(
                    f"The region {text!r} does not depend on the variables ({variables}); "
                    "write an inequality in them."
                )
            out.append(Constraint(text, sympy.expand(g) if g.is_polynomial() else g, op in "<>"))
    return tuple(out)


def mask(
    constraints: Sequence[Constraint], names: Sequence[str], rows: torch.Tensor
) -> torch.Tensor:
    """Which columns of the float64 ``(d, m)`` points satisfy every constraint (NaN: no)."""
    from ._evaluate import Evaluator
    from ._parse import real_symbol

    ev = Evaluator({real_symbol(n): rows[i] for i, n in enumerate(names)})
    keep = torch.ones(rows.shape[1], dtype=torch.bool)
    for c in constraints:
        g = ev.tensor(c.g, like=rows[0])
        keep &= (g > 0) if c.strict else (g >= 0)
    return keep


@dataclass
class RegionIndex:
    """How many region points each block of the box's sample holds (filled as needed)."""

    box: object  # the Domain without constraints
    where: tuple[Constraint, ...]
    names: tuple[str, ...]
    seed: int
    counts: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def block(self, b: int) -> torch.Tensor:
        """The region's points in block ``b``, float64 on the CPU, ``(d, accepted)``."""
        from ._sample import box_rows

        rows = box_rows(self.box, self.seed, b * BLOCK, (b + 1) * BLOCK)  # type: ignore[arg-type]
        kept = rows[:, mask(self.where, self.names, rows)]
        with self.lock:  # chunks may be sampled by several threads at once
            if b == len(self.counts):
                self.counts.append(int(kept.shape[1]))
        return kept

    def drawn(self) -> tuple[int, int]:
        """(box points evaluated, region points among them)."""
        return len(self.counts) * BLOCK, sum(self.counts)

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Region points ``[start, stop)`` as a float64 ``(d, stop - start)`` tensor."""
        d = len(self.names)
        parts: list[torch.Tensor] = []
        before = b = 0
        need = stop - start
        while need > 0:
            if b < len(self.counts) and before + self.counts[b] <= start:
                before += self.counts[b]
                b += 1
                continue
            kept = self.block(b)
            lo = max(start - before, 0)
            take = kept[:, lo : lo + need]
            parts.append(take)
            need -= take.shape[1]
            before += kept.shape[1]
            b += 1
            if b > 16 and sum(self.counts) < MIN_ACCEPTANCE * b * BLOCK:
                raise DomainError(
                    f"The region ({'; '.join(sorted({c.text for c in self.where}))}) holds "
                    f"too few of the box's points to sample ({sum(self.counts)} of "
                    f"{b * BLOCK}); shrink the box (-d) around it."
                )
        if not parts:
            return torch.empty((d, 0), dtype=torch.float64)
        return torch.cat(parts, dim=1)


_INDEXES: dict[tuple[object, int], RegionIndex] = {}


def region_index(domain: object, seed: int) -> RegionIndex:
    from ._domain import Domain

    assert isinstance(domain, Domain)
    key = (domain, seed)
    index = _INDEXES.get(key)
    if index is None:
        if len(_INDEXES) > 64:
            _INDEXES.clear()
        box = Domain(domain.intervals)
        index = RegionIndex(box, domain.where, domain.names, seed)
        _INDEXES[key] = index
    return index


def pilot_acceptance(domain: object) -> float:
    """The share of the box's points in the region, on a fixed pilot sample."""
    from ._domain import Domain
    from ._sample import box_rows

    assert isinstance(domain, Domain)
    rows = box_rows(Domain(domain.intervals), PILOT_SEED, 0, PILOT_POINTS)
    return float(mask(domain.where, domain.names, rows).sum()) / PILOT_POINTS


def check_samplable(domain: object) -> float:
    """The region's share of the box; a region too small to sample raises DomainError."""
    from ._domain import Domain

    assert isinstance(domain, Domain)
    share = pilot_acceptance(domain)
    if share < MIN_ACCEPTANCE:
        regions = "; ".join(dict.fromkeys(c.text for c in domain.where))
        found = (
            "no point lies in it"
            if share == 0
            else f"only {share:.3%} of the points lie in it (at least {MIN_ACCEPTANCE:.1%} must)"
        )
        raise DomainError(
            f"The region {regions} is too small to sample in the box {Domain(domain.intervals)}: "
            f"of a {PILOT_POINTS}-point sample of the box, {found}. Check the inequalities' "
            "direction, or shrink the box (-d) around the region."
        )
    return share


def region_notes(domain: object) -> list[str]:
    """A note for reports on a domain with ``where`` inequalities: its share of the box."""
    from ._domain import Domain

    assert isinstance(domain, Domain)
    if not domain.where:
        return []
    share = domain.acceptance if domain.acceptance is not None else pilot_acceptance(domain)
    regions = "; ".join(dict.fromkeys(c.text for c in domain.where))
    return [
        f"The domain is the part of the box where {regions}: {100 * share:.3g}% of the box's "
        "points lie in it (acceptance rate of the rejection sampling, measured on a "
        f"{PILOT_POINTS}-point pilot sample); the points do not depend on the chunk size or "
        "device."
    ]


__all__ = [
    "Constraint",
    "RegionIndex",
    "region_notes",
    "check_samplable",
    "mask",
    "parse_where",
    "region_index",
]
