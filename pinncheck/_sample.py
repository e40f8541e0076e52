"""Seeded, reproducible uniform sampling of points in a box.

Each variable has its own stream of uniform float64 numbers in ``[0, 1)``: NumPy's PCG64
generator seeded with ``SeedSequence(seed, spawn_key=(j,))`` for variable ``j``, read in order,
one draw per point, then scaled to the variable's interval. PCG64 jumps ahead any number of draws
at once, so any range of points is produced on its own: a run split into chunks of any size sees
exactly the points of an unchunked run. The points are drawn on the CPU in float64, so they do
not depend on the device either.

(PCG64 draws about four times faster than torch's CPU generator, and one stream per variable
fills each coordinate's tensor directly, without a transposing copy: before these changes,
sampling cost as much as evaluating all the exact derivatives.)
"""

from __future__ import annotations

import numpy as np
import torch

from ._domain import Domain

DEFAULT_SEED = 20240917


def _stream(seed: int, variable: int, start: int) -> np.random.Generator:
    bits = np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(variable,)))
    bits.advance(start)  # each float64 consumes exactly one 64-bit draw
    return np.random.Generator(bits)


def unit_columns(seed: int, start: int, stop: int, dim: int) -> torch.Tensor:
    """Points ``[start, stop)`` of the seeded uniform sample of ``[0, 1)^dim``, as a float64
    tensor of shape ``(dim, stop - start)`` (one row per variable).

    Example:
        >>> bool(unit_columns(7, 0, 10, 2)[:, 4:].equal(unit_columns(7, 4, 10, 2)))
        True
    """
    out = torch.empty((dim, max(stop - start, 0)), dtype=torch.float64)
    for j in range(dim):
        _stream(seed, j, start).random(out=out[j].numpy())
    return out


def box_rows(domain: Domain, seed: int, start: int, stop: int) -> torch.Tensor:
    """Points ``start..stop-1`` of the box's seeded sample, a float64 CPU ``(dim, m)`` tensor
    (``lo + (hi - lo)*u`` per variable), ignoring any ``where`` constraints."""
    pts = unit_columns(seed, start, stop, len(domain))
    for row, lo, hi in zip(pts, domain.lows, domain.highs, strict=True):
        # u*1 and u+0 are u exactly: the unit interval's coordinates need no pass.
        if hi - lo != 1.0:
            row.mul_(hi - lo)
        if lo != 0.0:
            row.add_(lo)
    return pts


def sampled_blocks(start: int, m: int, stride: int, block: int) -> list[tuple[int, int]]:
    """The stretches (local ``[lo, hi)``) of points ``start .. start+m-1`` that lie in the
    blocks of ``block`` consecutive points whose block number is a multiple of ``stride``: a
    sample of one point in ``stride``, chosen by global index so that chunking changes
    nothing. Each point is drawn independently, so consecutive points are as random a sample
    as any, and stretches copy far faster than every ``stride``-th point.

    Example:
        >>> sampled_blocks(1000, 5000, 2, 1024)
        [(0, 24), (1048, 2072), (3096, 4120)]
    """
    j = -(-(start // block) // stride) * stride  # the first sampled block that can overlap
    out = []
    while j * block < start + m:
        lo, hi = max(j * block, start) - start, min((j + 1) * block, start + m) - start
        if hi > lo:
            out.append((lo, hi))
        j += stride
    return out


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

    The coordinates are computed in float64 (``lo + (hi - lo)*u``) and then rounded to
    ``dtype``, so a float32 run uses the float32-rounded versions of the float64 run's points.
    The tensors are the rows of one ``(dim, stop-start)`` tensor. A domain with ``where``
    inequalities is sampled by rejection (:mod:`pinncheck._region`): its points are the box
    sample's points that satisfy them, in order.
    """
    if domain.where:
        from ._region import region_index

        pts = region_index(domain, seed).rows(start, stop)
    else:
        pts = box_rows(domain, seed, start, stop)
    pts = pts.to(device=device, dtype=dtype)
    return list(pts.unbind(0))
