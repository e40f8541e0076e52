"""Keeping memory bounded while the user's code runs chunk after chunk.

pinncheck calls the user's function once per chunk of points, and what a chunk's call leaves
behind should be freed before the next one. Two things defeat that:

- **DeepXDE's gradient caches.** ``deepxde.grad.jacobian`` and ``deepxde.grad.hessian`` keep
  every ``(ys, xs)`` pair they have seen, with its derivatives and the whole autograd graph,
  in module-level dictionaries until ``deepxde.grad.clear()`` is called (DeepXDE's own
  training loop calls it after each step). When ``deepxde`` is already imported (pinncheck
  never imports it), :func:`clear_framework_caches` clears them after each call.
- **Anything else that holds on to a chunk's tensors** (a global list, a cache of the user's
  own). :class:`ChunkMemory` notices it: it keeps a weak reference to each chunk's input
  tensor and checks, after the call has returned and pinncheck has dropped its own references,
  whether the tensor is still alive. A tensor computed from the input through autograd keeps the
  input alive through its graph, so a surviving input means the call's graph is kept. It also
  measures the process's memory after each chunk (CUDA: allocated memory; otherwise the resident
  set size, where the platform reports it), and the warning says how much it grew.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import weakref
from dataclasses import dataclass, field
from typing import Any

# This many retained chunks, or a growth above GROWTH_FLOOR bytes (beyond what pinncheck
# keeps; the allocator holds on to some memory too), produce a warning.
RETAINED_CHUNKS = 2
GROWTH_FLOOR = 256 * 2**20


def _deepxde_gradients() -> Any:
    """DeepXDE's gradients module when ``deepxde`` is loaded (never imports anything)."""
    if "deepxde" not in sys.modules:
        return None
    module = sys.modules.get("deepxde.gradients")
    if module is None:
        module = getattr(sys.modules["deepxde"], "grad", None)
    return module


def clear_framework_caches() -> bool:
    """Clear the gradient caches of PINN libraries that are loaded; True when one was cleared.

    DeepXDE 1.10 and later (``deepxde.gradients.clear()``, also reached as ``dde.grad.clear()``);
    earlier releases keep their caches on ``jacobian._Jacobians`` and ``hessian._Hessians``,
    which are cleared the same way. A library that is not imported is left alone.
    """
    module = _deepxde_gradients()
    if module is None:
        return False
    targets = [getattr(module, "clear", None)]
    if not callable(targets[0]):
        targets = [
            getattr(getattr(getattr(module, fn, None), cache, None), "clear", None)
            for fn, cache in (("jacobian", "_Jacobians"), ("hessian", "_Hessians"))
        ]
    cleared = False
    for clear in targets:
        if callable(clear):
            # A failure here is DeepXDE's; the check itself does not depend on it.
            with contextlib.suppress(Exception):
                clear()
                cleared = True
    return cleared


def memory_now(device: Any = None) -> int | None:
    """Bytes in use now: CUDA memory allocated by torch on a CUDA device, else the process's
    resident set size (Linux), else ``None``."""
    if device is not None and getattr(device, "type", None) == "cuda":
        import torch

        return int(torch.cuda.memory_allocated(device))
    try:
        with open("/proc/self/statm") as fh:
            resident = int(fh.read().split()[1])
        return resident * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _mb(n: float) -> str:
    return f"{n / 2**20:.0f} MB"


@dataclass
class ChunkMemory:
    """Watches, chunk after chunk, whether the user's code keeps the chunks' tensors.

    Call :meth:`watch` with a chunk's input tensor before calling the user, and :meth:`settle`
    after the call returned and every reference pinncheck held to the chunk's tensors is gone.
    ``kept_per_point`` is the number of bytes pinncheck itself keeps per point (its values for
    the diagnosis), which is not counted as growth.
    """

    device: Any = None
    kept_per_point: int = 0
    chunks: int = 0
    points: int = 0
    retained: int = 0
    cleared_deepxde: bool = False
    readings: list[int] = field(default_factory=list)
    _ref: Any = None

    def watch(self, x: Any, points: int) -> None:
        self._ref = weakref.ref(x)
        self.points += points

    def settle(self) -> None:
        self.cleared_deepxde = clear_framework_caches() or self.cleared_deepxde
        ref, self._ref = self._ref, None
        self.chunks += 1
        if ref is not None and ref() is not None:
            gc.collect()  # only when something survived: a reference cycle may be all it is
            if ref() is not None:
                self.retained += 1
        now = memory_now(self.device)
        if now is not None:
            self.readings.append(now)

    def growth(self) -> int | None:
        """Bytes the process grew by after the first chunk, less what pinncheck kept."""
        if len(self.readings) < 2:
            return None
        first_points = self.points / max(self.chunks, 1)
        own = self.kept_per_point * max(self.points - first_points, 0)
        return int(self.readings[-1] - self.readings[0] - own)

    def warnings(self) -> list[str]:
        """A warning when the user's code kept the chunks' tensors or memory kept growing."""
        grew = self.growth()
        grew_text = (
            f"; memory grew by {_mb(grew)} after the first chunk" if grew and grew > 0 else ""
        )
        if self.retained >= RETAINED_CHUNKS:
            return [
                f"Your code kept each chunk's tensors after it returned ({self.retained} of "
                f"{self.chunks} chunks stayed alive, with their autograd graphs){grew_text}, so "
                "memory grows with the number of points. Something holds the tensors it was "
                "given or computed: a global list, a cache or memo of your own, or a library's "
                "gradient cache (pinncheck clears DeepXDE's after each call). Memory stays "
                "bounded when nothing outlives the call."
            ]
        if grew is not None and grew > GROWTH_FLOOR and self.chunks > RETAINED_CHUNKS:
            return [
                f"Memory kept growing while your code ran: {_mb(grew)} over {self.chunks} "
                "chunks, beyond what pinncheck keeps. Your code may store values from every "
                "call (a global list or cache); memory then grows with the number of points."
            ]
        return []


__all__ = ["ChunkMemory", "clear_framework_caches", "memory_now"]
