"""Seeded, reproducible uniform sampling of points in a box.

Points are defined block by block: block ``b`` holds rows ``[b*BLOCK, (b+1)*BLOCK)`` and is drawn
from its own generator, seeded from ``(seed, b)``. Any range of rows can therefore be produced on
its own, so a run split into chunks of any size sees exactly the points of an unchunked run, and
the points do not depend on the device (they are drawn on the CPU in float64).
"""

from __future__ import annotations

import hashlib

import torch

from ._domain import Domain

BLOCK = 1 << 16
DEFAULT_SEED = 20240917


def _block_seed(seed: int, block: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{block}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def unit_rows(seed: int, start: int, stop: int, dim: int) -> torch.Tensor:
    """Rows ``[start, stop)`` of the seeded stream of uniform points in ``[0, 1)^dim`` (float64)."""
    parts = []
    row = start
    while row < stop:
        block, offset = divmod(row, BLOCK)
        take = min(stop - row, BLOCK - offset)
        gen = torch.Generator().manual_seed(_block_seed(seed, block))
        # The CPU generator yields a prefix of the same stream for a shorter request, so only
        # the rows up to offset + take are drawn.
        rows = torch.rand((offset + take, dim), generator=gen, dtype=torch.float64)
        parts.append(rows[offset:])
        row += take
    if not parts:
        return torch.empty((0, dim), dtype=torch.float64)
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def sample_box(
    domain: Domain,
    seed: int,
    start: int,
    stop: int,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Points ``start..stop-1`` of the seeded sample, one ``(stop-start,)`` tensor per variable.

    The coordinates are computed in float64 and then rounded to ``dtype``, so a float32 run
    uses the float32-rounded versions of the float64 run's points.
    """
    unit = unit_rows(seed, start, stop, len(domain))
    lo = torch.tensor(domain.lows, dtype=torch.float64)
    hi = torch.tensor(domain.highs, dtype=torch.float64)
    pts = lo + (hi - lo) * unit
    pts = pts.to(device=device, dtype=dtype)
    return [pts[:, i].contiguous() for i in range(len(domain))]
