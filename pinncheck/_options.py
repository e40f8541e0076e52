"""Validation of the run options shared by every command (points, seed, device, dtype...)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._errors import DeviceError, OptionError

DTYPES = {"float64": torch.float64, "float32": torch.float32}
MAX_ORDER = 6
# Ten billion points take hours on a CPU; more is a typo, not a check.
MAX_POINTS = 10**10


def resolve_device(spec: str | torch.device) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available) as a torch device.

    Raises:
        DeviceError: CUDA was asked for and is not available, or N is out of range.
    """
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        index_text = text.partition(":")[2]
        if index_text and not index_text.isdigit():
            raise DeviceError(f"Cannot read the device {spec!r}: write cuda or cuda:N.")
        if not torch.cuda.is_available():
            raise DeviceError(
                f"The device {spec!r} was requested, but CUDA is not available here (torch "
                f"{torch.__version__}, no usable GPU). Use --device cpu, or --device auto to pick "
                "CUDA only where it exists."
            )
        count = torch.cuda.device_count()
        index = int(index_text) if index_text else 0
        if index >= count:
            raise DeviceError(
                f"The device {spec!r} does not exist: this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}."
            )
        return torch.device("cuda", index)
    raise DeviceError(f"Unknown device {spec!r}: use cpu, cuda, cuda:N or auto.")


def resolve_dtype(name: str | torch.dtype) -> tuple[str, torch.dtype]:
    if isinstance(name, torch.dtype):
        for key, value in DTYPES.items():
            if value == name:
                return key, value
        raise OptionError(f"Unsupported dtype {name}: use float64 or float32.")
    key = str(name).strip().lower()
    if key not in DTYPES:
        raise OptionError(f"Unsupported dtype {name!r}: use float64 or float32.")
    return key, DTYPES[key]


@dataclass(frozen=True)
class RunOptions:
    """Validated options for sampling and comparison."""

    n: int
    seed: int
    device: torch.device
    dtype_name: str
    dtype: torch.dtype
    rtol: float | None
    atol: float | None
    chunk_size: int | None


def run_options(
    *,
    n: int,
    seed: int,
    device: str | torch.device,
    dtype: str | torch.dtype,
    rtol: float | None,
    atol: float | None,
    chunk_size: int | None = None,
) -> RunOptions:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_POINTS:
        raise OptionError(
            f"The number of points must be an integer from 1 to {MAX_POINTS:.0e}, got {n!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise OptionError(f"The seed must be an integer >= 0, got {seed!r}.")
    for label, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise OptionError(f"--{label} must be a finite number >= 0, got {value!r}.")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise OptionError(f"The chunk size must be an integer >= 1, got {chunk_size!r}.")
    dtype_name, torch_dtype = resolve_dtype(dtype)
    return RunOptions(
        n=n,
        seed=seed,
        device=resolve_device(device),
        dtype_name=dtype_name,
        dtype=torch_dtype,
        rtol=rtol,
        atol=atol,
        chunk_size=chunk_size,
    )


def check_order(order: int) -> int:
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_ORDER:
        raise OptionError(
            f"The derivative order must be an integer from 1 to {MAX_ORDER}, got {order!r}."
        )
    return order
