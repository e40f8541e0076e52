"""``python -m bench.plot_cost``: what ``--plot`` adds to a run (docs/pictures.md quotes it).

    python -m bench.plot_cost [-n 1e6 -n 1e7] [--rounds 3] [--vars 2 --vars 3] [--threads 1]
                              [--no-command] [--fixed]

Two measurements per check (``--vars 2``: ``x1**2*sin(x2) + exp(x1*x2)``, five derivatives;
``--vars 3``: ``exp(-t)*sin(pi*x)*cos(pi*y)``, nine), each repeated with the runs alternating,
medians reported:

* **streaming**: the CPU time of ``job.run()`` in one process with and without the plot's
  :class:`~pinncheck._maps.ErrorMaps` sink (what grows with ``n``), with the allocator tuned
  as the CLI does, and the CPU time of the sink's own calls (steadier than the difference of
  two noisy runs);
* **whole command**: ``pinncheck check ... [--plot PATH]`` as a user runs it, with table output
  (where, over two variables, the terminal failure map's ErrorMaps sink runs anyway and the
  plot reuses it) and with JSON output (where the plot brings the sink): wall and CPU time
  and peak memory (RSS) of the process, which adds the fixed costs of importing matplotlib and
  drawing the figure.

``--fixed`` adds a third: the CPU time of what ``--plot`` costs whatever ``n``, each part in a
fresh process (importing what drawing needs; drawing and encoding the figure).

The whole command's figures include medians of the paired differences and ratios (the runs
alternate, and which goes first alternates too).

``--threads`` sets torch's threads, in this process and (``OMP_NUM_THREADS``) in the
commands: 1 by default, where CPU time is steadiest on a shared machine (CPU time, user +
system, is quoted next to wall time for that reason); 0 leaves torch's default, as a user
runs it (one worker thread per core).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CASES = {
    2: ("x1**2*sin(x2) + exp(x1*x2)", ["x1=0:1", "x2=0:1"]),
    3: ("exp(-t)*sin(pi*x)*cos(pi*y)", ["x=0:1", "y=0:1", "t=0:1"]),
}


def streaming(n: int, rounds: int, variables: int = 2) -> dict[str, float]:
    from pinncheck._check import prepare_check
    from pinncheck._engine import tune_allocator
    from pinncheck._plot import error_maps

    tune_allocator()  # as the CLI does
    expr, domain = CASES[variables]
    job = prepare_check(expr, domain, n=n)
    job.run()  # warm up
    job.run(sinks=[error_maps()])
    cpu: dict[str, list[float]] = {"plain": [], "maps": [], "sink": []}
    for _ in range(rounds):
        for mode in ("plain", "maps"):
            sinks = [_timed(error_maps(), cpu["sink"])] if mode == "maps" else []
            t = time.process_time()
            job.run(sinks=sinks)
            cpu[mode].append(time.process_time() - t)
    return {k: statistics.median(v) for k, v in cpu.items()}


def _timed(sink: Any, into: list[float]) -> Any:
    """``sink``, adding the CPU time of its own calls (in whichever thread) to ``into``."""
    into.append(0.0)
    partial, merge = sink.partial, sink.merge

    def timed(call: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def run(arg: Any) -> Any:
            t = time.thread_time()
            out = call(arg)
            into[-1] += time.thread_time() - t  # (a float add: atomic enough for a bench)
            return out

        return run

    sink.partial, sink.merge = timed(partial), timed(merge)
    return sink


def command(
    n: int, rounds: int, folder: Path, fmt: str, variables: int = 2
) -> dict[str, dict[str, float]]:
    """The whole command with and without ``--plot``, alternating: medians of each, and the
    medians of the paired differences and ratios (``extra_*``; steadier on a shared
    machine, where one run's time moves with the load)."""
    exe = Path(sys.executable).with_name("pinncheck")
    expr, domain = CASES[variables]
    base = [str(exe), "check", expr, *(a for d in domain for a in ("-d", d)), "-n", str(n)]
    base += ["-f", fmt]
    runs: dict[str, list[tuple[float, float, float]]] = {"plain": [], "plot": []}
    for r in range(rounds):
        for mode in sorted(runs, reverse=r % 2 == 1):  # alternate which goes first
            argv = base + (["--plot", str(folder / "cost.png")] if mode == "plot" else [])
            runs[mode].append(_measure(argv))
    out: dict[str, dict[str, float]] = {
        "extra": {},
        **{
            mode: {
                "wall_s": statistics.median(r[0] for r in rs),
                "cpu_s": statistics.median(r[1] for r in rs),
                "rss_mb": statistics.median(r[2] for r in rs),
            }
            for mode, rs in runs.items()
        },
    }
    pairs = list(zip(runs["plain"], runs["plot"], strict=True))
    for k, name in ((0, "wall"), (1, "cpu")):
        out["extra"][f"{name}_s"] = statistics.median(q[k] - p[k] for p, q in pairs)
        out["extra"][f"{name}_ratio"] = statistics.median(q[k] / p[k] for p, q in pairs)
    return out


FIXED = """
import sys, time
from pinncheck._check import prepare_check
from pinncheck import _plot
expr, domain = {case!r}
job = prepare_check(expr, domain, n=200_000)
maps = _plot.error_maps()
report = job.run(sinks=[maps])
t = time.process_time()
import matplotlib.figure, matplotlib.backends.backend_agg, PIL.PngImagePlugin
imported = time.process_time() - t
t = time.process_time()
_plot.plot_png(report, maps)
print(imported, time.process_time() - t)
"""


def fixed(rounds: int, variables: int) -> dict[str, float]:
    """The CPU time of the parts of ``--plot`` that do not grow with ``n``, each in a fresh
    process (as a command pays them): importing what drawing needs, and drawing the
    figure and encoding it as PNG (n = 200,000: every bin already has points)."""
    code = FIXED.format(case=CASES[variables])
    parts: dict[str, list[float]] = {"import": [], "draw": []}
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        imported, drawn = map(float, out.stdout.split())
        parts["import"].append(imported)
        parts["draw"].append(drawn)
    return {k: statistics.median(v) for k, v in parts.items()}


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
    parser.add_argument("--vars", type=int, action="append", choices=sorted(CASES))
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: its default")
    parser.add_argument("--no-command", action="store_true", help="streaming only")
    parser.add_argument("--fixed", action="store_true", help="also the fixed parts' CPU time")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    sizes = [int(n) for n in (args.n or [1e6, 1e7])]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for variables in args.vars or [2, 3]:
                s = streaming(n, args.rounds, variables)
                extra = s["maps"] / s["plain"] - 1
                print(
                    f"n={n:.0e} {variables} variables, streaming: run {s['plain']:.3f} s CPU, "
                    f"with ErrorMaps {s['maps']:.3f} s ({100 * extra:+.1f}%); the sink's own "
                    f"calls {s['sink']:.3f} s ({100 * s['sink'] / s['plain']:.1f}% of the run)",
                    flush=True,
                )
                if args.fixed:
                    f = fixed(args.rounds, variables)
                    print(
                        f"{variables} variables, fixed: importing {f['import']:.3f} s CPU, "
                        f"drawing and encoding the PNG {f['draw']:.3f} s CPU",
                        flush=True,
                    )
                if args.no_command:
                    continue
                for fmt in ("table", "json"):
                    c = command(n, args.rounds, Path(tmp), fmt, variables)
                    p, q, e = c["plain"], c["plot"], c["extra"]
                    print(
                        f"n={n:.0e} {variables} variables, command -f {fmt}: wall "
                        f"{p['wall_s']:.2f} -> {q['wall_s']:.2f} s, CPU {p['cpu_s']:.2f} -> "
                        f"{q['cpu_s']:.2f} s; paired medians: wall {e['wall_s']:+.2f} s "
                        f"({100 * (e['wall_ratio'] - 1):+.1f}%), CPU {e['cpu_s']:+.2f} s "
                        f"({100 * (e['cpu_ratio'] - 1):+.1f}%); peak RSS {p['rss_mb']:.0f} -> "
                        f"{q['rss_mb']:.0f} MB",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
