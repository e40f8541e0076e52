"""Forward hooks on a user's model: each submodule call's batch-major inputs and outputs, in
call order, and the first call where two runs differ (to name the layer that couples the batch
or is random)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class Record:
    name: str
    type: str
    parent: int | None
    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor] = field(default_factory=list)


def plain_tensors(out: Any) -> Any:
    """A tensor subclass (PINA's LabelTensor...) read as a plain tensor, also in a list.

    ``as_subclass(torch.Tensor)`` shares the data and stays on the autograd graph, while the
    subclass's own methods (which may need attributes pinncheck does not set) are not used.
    """
    if isinstance(out, torch.Tensor) and type(out) is not torch.Tensor:
        return out.as_subclass(torch.Tensor)
    if isinstance(out, (list, tuple)):
        return [plain_tensors(item) if isinstance(item, torch.Tensor) else item for item in out]
    return out


def batch_tensors(value: Any, n: int) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value.detach().clone()] if value.dim() >= 1 and value.shape[0] == n else []
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in batch_tensors(v, n)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in batch_tensors(v, n)]
    return []


@contextlib.contextmanager
def recording(model: nn.Module, n: int) -> Iterator[list[Record]]:
    """Record every submodule call's batch-major inputs and outputs, in call order."""
    records: list[Record] = []
    stack: list[int] = []
    handles = []

    def pre(name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: Any) -> None:
            parent = stack[-1] if stack else None
            records.append(Record(name, type(mod).__name__, parent, batch_tensors(args, n)))
            stack.append(len(records) - 1)

        return hook

    def post(name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: Any, output: Any) -> None:
            if stack:
                records[stack.pop()].outputs = batch_tensors(output, n)

        return hook

    for name, mod in model.named_modules():
        handles.append(mod.register_forward_pre_hook(pre(name)))
        handles.append(mod.register_forward_hook(post(name)))
    try:
        yield records
    finally:
        for h in handles:
            h.remove()


@dataclass
class Origin:
    """Where a difference first appears: the innermost call whose output changed while its
    inputs did not. ``around`` holds, when the difference enters in that call's own code
    between two of its submodule calls, the last unchanged child and the first changed one."""

    record: Record
    has_children: bool
    around: list[Record]

    @property
    def in_own_code(self) -> bool:
        return bool(self.around) or (not self.record.name and self.has_children)


def first_appearance(
    a: list[Record], b: list[Record], changed: Callable[[torch.Tensor, torch.Tensor], bool]
) -> Origin | None:
    if [r.name for r in a] != [r.name for r in b]:
        return None

    def any_changed(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor]) -> bool:
        return any(x.shape == y.shape and changed(x, y) for x, y in zip(xs, ys, strict=False))

    flags = [
        (any_changed(ra.inputs, rb.inputs), any_changed(ra.outputs, rb.outputs))
        for ra, rb in zip(a, b, strict=True)
    ]
    origin = [i for i, (inp, out) in enumerate(flags) if out and not inp]
    inner = [i for i in origin if not any(a[k].parent == i for k in origin)]
    if not inner:
        return None
    i = inner[0]
    children = [k for k in range(len(a)) if a[k].parent == i]
    hit = [k for k in children if flags[k][0]]
    around: list[Record] = []
    if hit:
        before = [k for k in children if k < hit[0]]
        around = [a[k] for k in before[-1:]] + [a[hit[0]]]
    return Origin(a[i], bool(children), around)


__all__ = ["Origin", "Record", "first_appearance", "plain_tensors", "recording"]
