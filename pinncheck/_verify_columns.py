"""The user's residual, as pinncheck reads it: one float column per equation, checked for shape,
type and readability, and the precision it was computed in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ._errors import UserCodeError
from ._probe_hooks import plain_tensors
from ._usercode import GradCall, dtype_phrase, exception_text


def shape_text(shape: Sequence[int], n: int) -> str:
    return "(" + ", ".join("n" if s == n else str(s) for s in shape) + ")"


def none_evidence(calls: Sequence[GradCall], n: int) -> str | None:
    """The user's ``torch.autograd.grad`` calls that returned None, as one line of evidence."""
    nones = [shape for c in calls for shape in c.none_shapes]
    if not nones:
        return None
    shapes = sorted({shape_text(s, n) for s in nones})
    return (
        f"evidence: torch.autograd.grad returned None for {len(nones)} input(s) of shape "
        f"{', '.join(shapes)} (allow_unused=True): those tensors are not on the graph of "
        "what was differentiated"
    )


def equation_columns(
    out: Any,
    n: int,
    k: int,
    label: str,
    device: torch.device | None = None,
    keep_graph: bool = False,
) -> list[torch.Tensor]:
    """The user's result as ``k`` tensors of shape ``(n,)`` (detached unless ``keep_graph``).

    Raises:
        UserCodeError: anything else (wrong type, shape, or number of equations).
    """
    usage = (
        f"return an (n,) or (n, 1) tensor per PDE: one tensor, an (n, {k}) tensor, or a list of "
        f"{k} tensors (n = {n} points here)"
    )
    out = plain_tensors(out)
    if isinstance(out, torch.Tensor):
        if out.dim() == 2 and out.shape == (n, n) and k != n and n > 1:
            raise UserCodeError(
                f"{label} returned an (n, n) tensor, shape {tuple(out.shape)} for {n} points: "
                "an (n,) tensor was probably combined with an (n, 1) one, which broadcasts to "
                "(n, n) (e.g. x[:, 0] with u or with x[:, 0:1]). Keep every column (n, 1) "
                f"(slice with x[:, 0:1]) or every one (n,); {usage}."
            )
        if out.dim() == 1 and out.shape[0] == n:
            cols = [out]
        elif out.dim() == 2 and out.shape[0] == n:
            cols = [out[:, i] for i in range(out.shape[1])]
        else:
            raise UserCodeError(
                f"{label} returned a tensor of shape {tuple(out.shape)} for {n} points; {usage}."
            )
    elif isinstance(out, (list, tuple)):
        cols = []
        for i, item in enumerate(out):
            if not isinstance(item, torch.Tensor):
                raise UserCodeError(
                    f"{label} returned a {type(out).__name__} whose item {i} is a "
                    f"{type(item).__name__}, not a tensor; {usage}."
                )
            if item.shape in ((n,), (n, 1)):
                cols.append(item.reshape(n))
            else:
                raise UserCodeError(
                    f"{label} returned a {type(out).__name__} whose item {i} has shape "
                    f"{tuple(item.shape)} for {n} points; {usage}."
                )
    else:
        raise UserCodeError(f"{label} returned a {type(out).__name__}, not a tensor; {usage}.")
    if len(cols) != k:
        raise UserCodeError(
            f"{label} returned {len(cols)} equation(s) but {k} PDE(s) were given (--pde); {usage}."
        )
    for c in cols:
        check_values(c, label)
    if keep_graph:
        return cols
    try:
        return [c.detach().to(device=device) for c in cols]
    except Exception as exc:
        raise UserCodeError(
            f"{label} returned a tensor whose values cannot be read: {type(exc).__name__}: "
            f"{exception_text(exc)}"
        ) from None


def check_values(c: torch.Tensor, label: str) -> None:
    """A result column must hold real floating-point values that can be read."""
    if c.device.type == "meta":
        raise UserCodeError(
            f"{label} returned a tensor on the meta device, which holds no values; return the "
            "residual computed from x and u."
        )
    if c.layout != torch.strided:
        raise UserCodeError(f"{label} returned a {c.layout} tensor; return a dense tensor.")
    if c.is_complex():
        raise UserCodeError(f"{label} returned a {c.dtype} tensor; expected real values.")
    if not c.is_floating_point():
        raise UserCodeError(
            f"{label} returned {dtype_phrase(c.dtype)} tensor; a residual must be floating point "
            "(float64 or float32). Integers and booleans come from a comparison (x > 0), "
            ".long()/.int()/.round(), or an integer constant, and lose the derivatives."
        )


def torch_dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def dtype_eps(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps)


def coarser(a: torch.dtype, b: torch.dtype) -> torch.dtype:
    """The less precise of two floating dtypes (``a`` when they are as precise)."""
    return b if dtype_eps(b) > dtype_eps(a) else a
