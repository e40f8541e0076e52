"""``python -m bench.plot_cost``: what ``--plot`` adds to a run (docs/pictures.md quotes it).

Two measurements, each repeated with the runs alternating, medians reported:

* **streaming**: the CPU time of ``job.run()`` in one process with and without the
  :class:`~pinncheck._maps.ErrorMaps` sink (what grows with ``n``);
* **whole command**: ``pinncheck check ... [--plot PATH]`` as a user runs it, with table output
  (where the terminal failure map's ErrorMaps sink runs anyway and the plot reuses it) and with
  JSON output (where the plot brings the sink): wall and CPU time and peak memory (RSS) of the
  process, which adds the fixed costs of importing matplotlib and drawing the figure.

CPU time (user + system) is quoted next to wall time because it is steadier on a shared
machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPR = "x1**2*sin(x2) + exp(x1*x2)"
DOMAIN = ["x1=0:1", "x2=0:1"]


def streaming(n: int, rounds: int) -> dict[str, float]:
    from pinncheck._check import prepare_check
    from pinncheck._plot import error_maps

    job = prepare_check(EXPR, DOMAIN, n=n)
    job.run()  # warm up
    cpu: dict[str, list[float]] = {"plain": [], "maps": []}
    for _ in range(rounds):
        for mode in cpu:
            sinks = [error_maps()] if mode == "maps" else []
            t = time.process_time()
            job.run(sinks=sinks)
            cpu[mode].append(time.process_time() - t)
    return {k: statistics.median(v) for k, v in cpu.items()}


def command(n: int, rounds: int, folder: Path, fmt: str) -> dict[str, dict[str, float]]:
    exe = Path(sys.executable).with_name("pinncheck")
    base = [str(exe), "check", EXPR, *(a for d in DOMAIN for a in ("-d", d)), "-n", str(n)]
    base += ["-f", fmt]
    runs: dict[str, list[tuple[float, float, float]]] = {"plain": [], "plot": []}
    for _ in range(rounds):
        for mode in runs:
            argv = base + (["--plot", str(folder / "cost.png")] if mode == "plot" else [])
            runs[mode].append(_measure(argv))
    return {
        mode: {
            "wall_s": statistics.median(r[0] for r in rs),
            "cpu_s": statistics.median(r[1] for r in rs),
            "rss_mb": statistics.median(r[2] for r in rs),
        }
        for mode, rs in runs.items()
    }


def _measure(argv: list[str]) -> tuple[float, float, float]:
    """Wall time, CPU time and peak RSS (MB) of one child process."""
    t = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, argv)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plot_cost", description=__doc__)
    parser.add_argument("-n", type=float, action="append", help="points (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in (args.n or [1e6, 1e7])]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            s = streaming(n, args.rounds)
            extra = s["maps"] / s["plain"] - 1
            print(
                f"n={n:.0e} streaming: run {s['plain']:.2f} s CPU, with ErrorMaps "
                f"{s['maps']:.2f} s (+{100 * extra:.0f}%)"
            )
            for fmt in ("table", "json"):
                c = command(n, args.rounds, Path(tmp), fmt)
                p, q = c["plain"], c["plot"]
                print(
                    f"n={n:.0e} command -f {fmt}: wall {p['wall_s']:.2f} -> {q['wall_s']:.2f} s, "
                    f"CPU {p['cpu_s']:.2f} -> {q['cpu_s']:.2f} s "
                    f"(+{100 * (q['cpu_s'] / p['cpu_s'] - 1):.0f}%), peak RSS "
                    f"{p['rss_mb']:.0f} -> {q['rss_mb']:.0f} MB",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
