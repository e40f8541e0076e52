"""Two versions of pinncheck side by side: the whole float64 check at n = 10^6, run alternately
in one process, median of the pairwise time ratios (docs/performance.md).

    git worktree add /tmp/old 6b18a09
    python -m bench.ab_versions /tmp/old/pinncheck pinncheck [--threads 1] [--pairs 11]

Each package folder is copied under a temporary name (``pa``, ``pb``), so both import at once
(pinncheck imports itself relatively). With one thread the CPU time is compared (steadier on a
shared machine), otherwise the wall time.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

CASES = [
    ("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"]),
    ("exp(-t)*sin(pi*x)*cos(pi*y)", ["x=0:1", "y=0:1", "t=0:1"]),
    ("-tanh((x-0.5*t)/0.02)*exp(-x**2) + log(1+x**2+t**2)", ["x=0:1", "t=0:1"]),
]
# A residual (bench/cases.py's "burgers"): PDE, solution, domain, parameters.
RESIDUALS = [
    (
        "u_t + u*u_x = nu*u_xx",
        {"u": "c - A*tanh(A*(x - c*t)/(2*nu))"},
        ["x=-1:1", "t=0:1"],
        {"nu": "0.05", "A": "0.5", "c": "0.25"},
    ),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", help="the previous version's package folder")
    ap.add_argument("new", help="this version's package folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=11)
    ap.add_argument("--n", type=float, default=1e6)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp())
    shutil.copytree(args.old, root / "pa")
    shutil.copytree(args.new, root / "pb")
    sys.path.insert(0, str(root))
    old = importlib.import_module("pa._check")
    new = importlib.import_module("pb._check")
    old_r = importlib.import_module("pa._residual")
    new_r = importlib.import_module("pb._residual")
    importlib.import_module("pb._engine").tune_allocator()
    clock = time.process_time if args.threads == 1 else time.perf_counter
    n = int(args.n)
    work = [
        (expr, [m.prepare_check(expr, domain, n=n) for m in (old, new)]) for expr, domain in CASES
    ]
    work += [
        (pde, [m.prepare_residual(pde, sol, dom, param=par, n=n) for m in (old_r, new_r)])
        for pde, sol, dom, par in RESIDUALS
    ]
    for expr, jobs in work:
        for job in jobs:
            job.run()
        times: list[list[float]] = [[], []]
        for _ in range(args.pairs):
            for k, job in enumerate(jobs):
                t = clock()
                job.run()
                times[k].append(clock() - t)
        ratio = statistics.median(b / a for a, b in zip(*times, strict=True))
        print(
            f"{expr[:40]:40s} old {statistics.median(times[0]):.3f} s "
            f"new {statistics.median(times[1]):.3f} s ratio {ratio:.2f}",
            flush=True,
        )
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
