"""How pinncheck calls the user's residual function: the calling conventions of PINN code.

``verify`` supports three conventions, chosen from the function's signature (or named with
``convention=``):

- ``x_u`` (DeepXDE's, the default): ``f(x, u)``, ``x`` an ``(n, d)`` tensor with
  ``requires_grad=True`` (columns in the domain's order), ``u`` the ``(n, m)`` manufactured
  solution computed from ``x``.
- ``split``: one ``(n, 1)`` input tensor per domain variable, then the solution:
  ``f(x, t, u)``, ``f(x, y, t, u)``. Each input is its own leaf with ``requires_grad=True``, so
  ``torch.autograd.grad(u, t, ...)`` works; ``u`` is ``(n, m)``, or one ``(n, 1)`` tensor per
  unknown when the function takes ``d + m`` parameters (``f(x, t, u, v)``).
- ``model``: ``f(model, x)``: the function gets a ``torch.nn.Module`` whose ``forward(x)``
  returns the manufactured solution (``(n, m)``) computed from the ``x`` it is given, the way a
  network's output is; ``forward`` also accepts split inputs (``model(x, t)``).

The signature decides: ``d + 1`` (or ``d + m``) positional parameters for ``d >= 2`` variables
mean ``split``; two parameters whose first is named like a model (``model``, ``net``...)
mean ``model``; any other two mean ``x_u``. A signature that fits none is refused with the
expected forms.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy
import torch

from ._errors import OptionError, UserCodeError
from ._evaluate import Evaluator

CONVENTIONS = ("x_u", "split", "model")
MODEL_NAMES = frozenset({"model", "net", "network", "nn", "pinn", "module", "u_net", "mlp"})


@dataclass(frozen=True)
class Convention:
    """A calling convention for ``d`` input variables and ``m`` unknowns."""

    kind: str
    names: tuple[str, ...]
    unknowns: tuple[str, ...]
    split_unknowns: bool = False

    def signature(self) -> str:
        """The call pinncheck makes, e.g. ``f(x, t, u)``."""
        if self.kind == "model":
            return "f(model, x)"
        if self.kind == "split":
            outs = self.unknowns if self.split_unknowns else ("u",)
            return f"f({', '.join((*self.names, *outs))})"
        return "f(x, u)"

    def description(self) -> str:
        d, m = len(self.names), len(self.unknowns)
        cols = ", ".join(self.names)
        if self.kind == "model":
            return (
                f"f(model, x): x is an (n, {d}) tensor (columns {cols}) with requires_grad=True "
                f"and model(x) returns the manufactured solution, (n, {m})"
            )
        if self.kind == "split":
            outs = (
                f"one (n, 1) tensor per unknown ({', '.join(self.unknowns)})"
                if self.split_unknowns
                else f"u, the (n, {m}) manufactured solution computed from them"
            )
            return f"{self.signature()}: one (n, 1) input tensor per variable ({cols}), then {outs}"
        return (
            f"f(x, u): x is an (n, {d}) tensor (columns {cols}) with requires_grad=True and u the "
            f"(n, {m}) manufactured solution computed from it"
        )


def _expected(names: Sequence[str], unknowns: Sequence[str]) -> str:
    forms = [Convention("x_u", tuple(names), tuple(unknowns))]
    if len(names) >= 2:
        forms.append(Convention("split", tuple(names), tuple(unknowns)))
        if len(unknowns) >= 2:
            forms.append(Convention("split", tuple(names), tuple(unknowns), True))
    forms.append(Convention("model", tuple(names), tuple(unknowns)))
    return "; ".join(c.description() for c in forms)


def _positional(fn: Any) -> tuple[int, int, bool, list[str]] | None:
    """(required, accepted, has *args, names) of ``fn``'s positional parameters, or None."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    required = accepted = 0
    star = False
    names: list[str] = []
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            accepted += 1
            names.append(p.name)
            if p.default is p.empty:
                required += 1
        elif p.kind is p.VAR_POSITIONAL:
            star = True
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            return (required, -1, star, names)  # a required keyword: no positional call fits
    return required, accepted, star, names


def _fits(count: int, required: int, accepted: int, star: bool) -> bool:
    return required <= count and (star or count <= accepted)


def choose_convention(
    fn: Any, label: str, names: Sequence[str], unknowns: Sequence[str], forced: str | None = None
) -> Convention:
    """The convention to call ``fn`` with, from its signature or ``forced``.

    Raises:
        UserCodeError: the signature fits no convention (or not the forced one); the message
            shows the expected forms.
    """
    names, unknowns = tuple(names), tuple(unknowns)
    d, m = len(names), len(unknowns)
    shape = _positional(fn)
    candidates: list[Convention] = []
    if forced is not None:
        if forced == "split":
            candidates = [Convention("split", names, unknowns)]
            if m >= 2:
                candidates.append(Convention("split", names, unknowns, True))
        else:
            candidates = [Convention(forced, names, unknowns)]
        if shape is None:
            return candidates[0]
    elif shape is None:
        return Convention("x_u", names, unknowns)  # no signature to read: the default
    else:
        required, accepted, star, params = shape
        first = params[0].lower() if params else ""
        if d >= 2:
            candidates.append(Convention("split", names, unknowns))
            if m >= 2:
                candidates.append(Convention("split", names, unknowns, True))
        model_first = first in MODEL_NAMES or "model" in first or "net" in first
        candidates.append(Convention("model" if model_first else "x_u", names, unknowns))
    required, accepted, star, params = shape
    for conv in candidates:
        count = _arity(conv)
        if _fits(count, required, accepted, star):
            return conv
    yours = f"{label}({', '.join(params)})" if params else f"{label}()"
    raise UserCodeError(
        f"Your residual function {yours} does not fit "
        + (f"the {forced!r} calling convention" if forced else "any calling convention")
        + f" for the variables ({', '.join(names)}) and unknowns ({', '.join(unknowns)}): it "
        f"takes {required} required positional parameter(s)"
        + ("" if accepted == required else f" and at most {accepted}" if accepted >= 0 else "")
        + ". pinncheck calls it as one of: "
        + _expected(names, unknowns)
        + "."
    )


def _arity(conv: Convention) -> int:
    if conv.kind == "split":
        return len(conv.names) + (len(conv.unknowns) if conv.split_unknowns else 1)
    return 2


def check_convention_name(name: str | None) -> str | None:
    """Validate a convention name given by the user (``None``: detect it from the signature)."""
    if name is None:
        return None
    key = str(name).strip().lower().replace("-", "_").replace(",", "_").replace(" ", "")
    key = {"xu": "x_u", "f(x,u)": "x_u", "f(model,x)": "model"}.get(key, key)
    if key not in CONVENTIONS:
        raise OptionError(
            f"Unknown calling convention {name!r}: use x_u (f(x, u)), split (f(x, t, u), one "
            "(n, 1) tensor per variable) or model (f(model, x)); leave it out to detect it from "
            "the function's signature."
        )
    return key


class ManufacturedModel(torch.nn.Module):
    """A module whose ``forward(x)`` is the manufactured solution, ``(n, m)``, computed from
    ``x``'s columns (or from split ``(n, 1)`` inputs ``forward(x, t)``) with torch operations."""

    def __init__(
        self,
        symbols: Sequence[sympy.Symbol],
        solutions: Sequence[sympy.Expr],
        label: str,
        extra: Mapping[sympy.Symbol, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self._symbols = tuple(symbols)
        self._solutions = tuple(solutions)
        self._label = label
        self._extra = dict(extra or {})

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        d = len(self._symbols)
        if len(inputs) == 1 and isinstance(inputs[0], torch.Tensor) and inputs[0].dim() == 2:
            x = inputs[0]
        elif len(inputs) == d and all(isinstance(t, torch.Tensor) for t in inputs):
            x = torch.cat([t.reshape(t.shape[0], -1) for t in inputs], dim=1)
        else:
            raise TypeError(
                f"pinncheck's model takes an (n, {d}) tensor or {d} (n, 1) tensors "
                f"({', '.join(map(str, self._symbols))}); got {len(inputs)} argument(s)"
            )
        if x.shape[-1] != d:
            raise ValueError(
                f"pinncheck's model takes an (n, {d}) tensor (columns "
                f"{', '.join(map(str, self._symbols))}); got shape {tuple(x.shape)}"
            )
        cols = [x[:, i] for i in range(d)]
        return solution_columns(self._symbols, self._solutions, cols, self._extra)

    def extra_repr(self) -> str:
        return f"manufactured solution of {self._label}"


def solution_columns(
    symbols: Sequence[sympy.Symbol],
    solutions: Sequence[sympy.Expr],
    cols: Sequence[torch.Tensor],
    extra: Mapping[sympy.Symbol, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The manufactured solution, ``(n, m)``, as torch operations on the ``(n,)`` columns
    (and on ``extra`` inputs, such as the per-point parameter of the gradient check)."""
    ev = Evaluator({**dict(zip(symbols, cols, strict=True)), **dict(extra or {})})
    us = []
    for sol in solutions:
        v = ev.tensor(sol, like=cols[0])
        if not v.requires_grad and cols[0].requires_grad:  # a constant: keep it on the graph
            v = v + 0 * cols[0]
        us.append(v)
    return torch.stack(us, dim=1)


@dataclass
class PreparedCall:
    """The arguments of one call, and the tensor whose survival shows a kept graph."""

    args: tuple[Any, ...]
    leaf: torch.Tensor


def build_call(
    conv: Convention,
    symbols: Sequence[sympy.Symbol],
    solutions: Sequence[sympy.Expr],
    cols: Sequence[torch.Tensor],
    extra: Mapping[sympy.Symbol, torch.Tensor] | None = None,
) -> PreparedCall:
    """The arguments for ``conv`` on the sampled ``(n,)`` columns (grad enabled by the caller)."""
    if conv.kind == "split":
        inputs = [c.detach().reshape(-1, 1).requires_grad_(True) for c in cols]
        u = solution_columns(symbols, solutions, [t[:, 0] for t in inputs], extra)
        outs = tuple(u[:, j : j + 1] for j in range(u.shape[1])) if conv.split_unknowns else (u,)
        return PreparedCall((*inputs, *outs), inputs[0])
    x = torch.stack(list(cols), dim=1).detach().requires_grad_(True)
    if conv.kind == "model":
        model = ManufacturedModel(symbols, solutions, ", ".join(map(str, solutions)), extra)
        return PreparedCall((model, x), x)
    u = solution_columns(symbols, solutions, [x[:, i] for i in range(x.shape[1])], extra)
    return PreparedCall((x, u), x)


__all__ = [
    "CONVENTIONS",
    "Convention",
    "ManufacturedModel",
    "build_call",
    "check_convention_name",
    "choose_convention",
    "solution_columns",
]
