"""What the error maps (``ErrorMaps``, docs/pictures.md) add to a check: runs with and without
the sink, interleaved in one process, median of each.

    python -m bench.maps_overhead [--n 1e6] [--rounds 5] [--terminal]

``--terminal``: the sink the CLI builds for its failure maps (counts only) on a check of two
variables, instead of the full maps on three.
"""

from __future__ import annotations

import argparse
import statistics
import time

EXPR = "exp(-t)*sin(pi*x)*cos(pi*y)"
DOMAIN = ["x=0:1", "y=0:1", "t=0:1"]
TERMINAL_EXPR = "exp(-t)*sin(pi*x)"
TERMINAL_DOMAIN = ["x=0:1", "t=0:1"]


def measure(n: int, rounds: int, terminal: bool = False) -> dict[str, list[float]]:
    from pinncheck._check import prepare_check
    from pinncheck._engine import tune_allocator
    from pinncheck._maps import ErrorMaps
    from pinncheck._termmap import sinks_for

    tune_allocator()  # as the CLI does

    def sinks() -> list[ErrorMaps]:
        return (
            sinks_for(True, [d.split("=")[0] for d in TERMINAL_DOMAIN])
            if terminal
            else [ErrorMaps()]
        )

    expr, domain = (TERMINAL_EXPR, TERMINAL_DOMAIN) if terminal else (EXPR, DOMAIN)
    job = prepare_check(expr, domain, n=n, order=2)
    job.run()  # warm up both paths (lowering, allocator, thread pool)
    job.run(sinks=sinks())
    out: dict[str, list[float]] = {"plain": [], "maps": [], "plain_cpu": [], "maps_cpu": []}
    for _ in range(rounds):
        for key, with_maps in (("plain", False), ("maps", True)):
            t0, c0 = time.perf_counter(), time.process_time()
            job.run(sinks=sinks() if with_maps else [])
            out[key].append(time.perf_counter() - t0)
            out[f"{key}_cpu"].append(time.process_time() - c0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=float, default=1e6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--terminal", action="store_true")
    args = parser.parse_args()
    t = measure(int(args.n), args.rounds, args.terminal)
    expr, domain = (TERMINAL_EXPR, TERMINAL_DOMAIN) if args.terminal else (EXPR, DOMAIN)
    kind = "counts only (the terminal map's sink)" if args.terminal else "full maps"
    print(f"check {expr!r} ({len(domain)} variables, order 2), n = {int(args.n):.3g}, {kind}")
    for what, unit in (("", "wall"), ("_cpu", "CPU (all threads)")):
        a, b = statistics.median(t["plain" + what]), statistics.median(t["maps" + what])
        print(f"{unit}: without maps median {a:.3f} s {[round(x, 3) for x in t['plain' + what]]}")
        print(f"{unit}: with maps    median {b:.3f} s {[round(x, 3) for x in t['maps' + what]]}")
        print(f"{unit}: overhead {100 * (b / a - 1):+.1f}%")


if __name__ == "__main__":
    main()
