"""Timing and peak memory of one method, sound on a shared machine.

* Time: wall clock around a whole run over all points, synchronised on CUDA; the methods take
  turns within each repeat, so a slow spell of the machine hits them alike; medians.
* Quiet: before each repeat the harness waits (up to a limit) until other processes use less
  than a quarter of a core, because two-thread torch operations stall for whole scheduler
  ticks when another process holds the second core.
* Memory on the CPU: torch allocates with malloc, which tracemalloc does not see. The kernel's
  high-water mark of resident memory (VmHWM) does; it is reset before each measured run
  (``/proc/self/clear_refs``), after freed heap memory is returned (``malloc_trim``), so the
  peak minus the resident memory before the run is that run's own peak. On CUDA:
  ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import ctypes
import gc
import os
import time
from collections.abc import Callable

import torch

_CLK = os.sysconf("SC_CLK_TCK")


def _busy_jiffies() -> tuple[int, int]:
    """(all CPUs' busy time, this process's CPU time), in clock ticks."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    with open("/proc/self/stat") as f:
        stat = f.read().rsplit(")", 1)[1].split()
    return busy, int(stat[11]) + int(stat[12])


def others_load(window: float = 0.25) -> float | None:
    """Cores' worth of CPU time other processes used during ``window`` seconds."""
    try:
        b0, s0 = _busy_jiffies()
        time.sleep(window)
        b1, s1 = _busy_jiffies()
    except (OSError, ValueError, IndexError):
        return None
    return max(0, (b1 - b0) - (s1 - s0)) / _CLK / window


def wait_quiet(limit: float, threshold: float = 0.25) -> float:
    """Wait until other processes use less than ``threshold`` cores; return the seconds waited
    (``limit`` or more means the machine never became quiet)."""
    start = time.perf_counter()
    while True:
        load = others_load()
        waited = time.perf_counter() - start
        if load is None or load < threshold or waited >= limit:
            return waited


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"{key} not in /proc/self/status")


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_bytes(fn: Callable[[], None], device: torch.device) -> int | None:
    """The memory ``fn`` needs at its peak beyond what was in use before (None: unknown)."""
    if device.type == "cuda":
        _trim()
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    try:
        _trim()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident size
        base = _status_kib("VmRSS")
        fn()
        return (_status_kib("VmHWM") - base) * 1024
    except OSError:
        return None
