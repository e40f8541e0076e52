"""``python -m bench.pictures`` (``make pictures``): the pictures of docs/pictures.md.

One picture of each kind that ``--plot`` draws, from fixed seeds (the same code gives the same
pictures): a 1-D check, a 2-D verify of a residual with a bug localized at x > 0.9, a 2-D
residual whose candidate is not a solution near one point, the projections of a 3-D verify,
and the probe's Jacobian of a model with BatchNorm in training mode. Each is a PNG under
200 KB, written with :func:`pinncheck._plot.save_plot`, exactly as ``--plot`` writes it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "user_code"
SEED = 20240917
MAX_BYTES = 200_000


def _grad(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]


def heat_wrong_near_x1(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The heat residual u_t - 0.1 u_xx with a bug: an extra 1e-3 u where x > 0.9 (as a
    boundary term applied to the wrong points would add)."""
    g = _grad(u, x)
    u_x, u_t = g[:, 0:1], g[:, 1:2]
    u_xx = _grad(u_x, x)[:, 0:1]
    return u_t - 0.1 * u_xx + torch.where(x[:, 0:1] > 0.9, 1e-3 * u, torch.zeros_like(u))


def heat2d_wrong_early_at_the_edge(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The 2-D heat residual u_t - 0.1 (u_xx + u_yy) with a bug in x > 0.8 while t < 0.3."""
    g = _grad(u, x)
    u_x, u_y, u_t = g[:, 0:1], g[:, 1:2], g[:, 2:3]
    u_xx, u_yy = _grad(u_x, x)[:, 0:1], _grad(u_y, x)[:, 1:2]
    r = u_t - 0.1 * (u_xx + u_yy)
    wrong = (x[:, 0:1] > 0.8) & (x[:, 2:3] < 0.3)
    return r + torch.where(wrong, 1e-4 * u_xx, torch.zeros_like(u))


def _check_1d() -> tuple[Any, Any]:
    from pinncheck._check import prepare_check

    job = prepare_check(
        "sin(8*x)*Abs(x - 0.3)**2.5", ["x=0:1"], n=20_000, dtype="float32", seed=SEED
    )
    return _run(job)


def _verify_2d() -> tuple[Any, Any]:
    from pinncheck._verify import prepare_verify

    job = prepare_verify(
        heat_wrong_near_x1,
        "u_t - nu*u_xx",
        "u = sin(2*x + 1)*exp(-t) + x**3*t",
        ["x=0:1", "t=0:1"],
        param=["nu=0.1"],
        n=20_000,
        seed=SEED,
    )
    return _run(job)


def _residual_2d() -> tuple[Any, Any]:
    from pinncheck._residual import prepare_residual

    job = prepare_residual(
        "u_t - nu*u_xx",
        ["u = exp(-t)*sin(pi*x) + exp(-((x - 0.7)**2 + (t - 0.5)**2)/0.002)/100"],
        ["x=0:1", "t=0:1"],
        param=["nu = 1/pi**2"],
        n=20_000,
        seed=SEED,
    )
    return _run(job)


def _verify_3d() -> tuple[Any, Any]:
    from pinncheck._verify import prepare_verify

    job = prepare_verify(
        heat2d_wrong_early_at_the_edge,
        "u_t - nu*(u_xx + u_yy)",
        "u = sin(2*x + 1)*cos(y)*exp(-t) + x**2*y*t",
        ["x=0:1", "y=0:1", "t=0:1"],
        param=["nu=0.1"],
        n=50_000,
        seed=SEED,
    )
    return _run(job)


def _probe() -> tuple[Any, Any]:
    from pinncheck import probe

    return probe("models.py:batchnorm_mlp", ["x = 0:1", "t = 0:1"], base_dir=SAMPLES), None


def _run(job: Any) -> tuple[Any, Any]:
    from pinncheck._plot import error_maps

    maps = error_maps()
    return job.run(sinks=[maps]), maps


PICTURES: dict[str, Callable[[], tuple[Any, Any]]] = {
    "check-1d.png": _check_1d,
    "verify-2d.png": _verify_2d,
    "residual-2d.png": _residual_2d,
    "verify-3d.png": _verify_3d,
    "probe.png": _probe,
}
"""File name -> the run it pictures."""


def main(argv: list[str] | None = None) -> int:
    from pinncheck._plot import save_plot

    parser = argparse.ArgumentParser(prog="python -m bench.pictures", description=__doc__)
    parser.add_argument("folder", nargs="?", default=str(ROOT / "docs" / "pictures"))
    parser.add_argument("--only", action="append", choices=sorted(PICTURES), help="repeatable")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    too_big = []
    for name in args.only or PICTURES:
        report, maps = PICTURES[name]()
        path = save_plot(report, folder / name, maps)
        size = path.stat().st_size
        print(f"{path}: {report.kind} {report.status}, {size / 1000:.0f} kB")
        if size > MAX_BYTES:
            too_big.append(name)
    if too_big:
        print(f"over {MAX_BYTES / 1000:.0f} kB: {', '.join(too_big)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
