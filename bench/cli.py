"""``python -m bench`` (``make bench``): time pinncheck against the floor and the alternatives.

Examples::

    python -m bench                      # the default set, 5-6 min on 2 cores
    python -m bench --quick              # a minute or two: float64, n = 1e4 and 1e5
    python -m bench --full               # adds n = 1e7 and torch.compile (tens of minutes)
    python -m bench --only seed --n 1e6,1e7 --dtype float64 --repeat 7
    python -m bench --device cuda --json bench/results/cuda.json
    python -m bench --from-json bench/results/latest.json --markdown -
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .run import DTYPES, Settings, machine, measure, run_all

DEFAULT_METHODS = [
    "floor",
    "autograd",
    "exact",
    "check",
    "floor plain",
    "torch.func",
    "fwd-over-rev",
    "jax",
]


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    from .cases import CASES

    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark pinncheck's autograd path, exact path and whole check against "
        "the floor (SymPy's exact partials with common subexpressions shared, as torch "
        "operations), torch.func, forward-over-reverse and JAX, on the same points.",
    )
    p.add_argument("--quick", action="store_true", help="float64, n = 1e4,1e5, 3 repeats")
    p.add_argument("--full", action="store_true", help="add n = 1e7 and torch.compile")
    p.add_argument("--n", type=_ints, help="point counts, e.g. 1e4,1e5,1e6 (default)")
    p.add_argument("--dtype", type=_names, help="float64,float32 (default both)")
    p.add_argument("--only", type=_names, help=f"cases: {', '.join(CASES)} (default all)")
    p.add_argument("--methods", type=_names, help=f"default {','.join(DEFAULT_METHODS)}")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd floor")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--repeat", type=int, default=None, help="timed runs per method (5)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure everything this many times, one round after the other, and pool the "
        "times (steadier medians on a shared machine)",
    )
    p.add_argument("--chunk", type=int, default=None, help="points per chunk (pinncheck's default)")
    p.add_argument(
        "--quiet-wait", type=float, default=20.0, help="seconds to wait for a quiet machine"
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument(
        "--json", default="bench/results/latest.json", help="where to write JSON ('-': none)"
    )
    p.add_argument(
        "--markdown", default=None, help="also write the table as Markdown ('-': stdout)"
    )
    p.add_argument(
        "--from-json", default=None, help="render a saved JSON file instead of measuring"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--worker", nargs=2, metavar=("CASE", "DTYPE"), help=argparse.SUPPRESS)
    p.add_argument("--memory-worker", nargs=2, metavar=("CASE", "DTYPE"), help=argparse.SUPPRESS)
    return p


def settings(a: argparse.Namespace) -> Settings:
    from .cases import CASES

    ns = a.n or ([10_000, 100_000] if a.quick else [10_000, 100_000, 1_000_000])
    if a.full and not a.n:
        ns = [*ns, 10_000_000]
    methods = a.methods or list(DEFAULT_METHODS)
    if (a.compile or a.full) and "compiled" not in methods:
        methods.append("compiled")
    dtypes = a.dtype or (["float64"] if a.quick else ["float64", "float32"])
    for d in dtypes:
        if d not in DTYPES:
            raise SystemExit(f"unknown dtype {d!r}: use float64 or float32")
    cases = a.only or list(CASES)
    for c in cases:
        if c not in CASES:
            raise SystemExit(f"unknown case {c!r}: use {', '.join(CASES)}")
    return Settings(
        cases=cases,
        dtypes=dtypes,
        ns=ns,
        methods=methods,
        repeat=a.repeat or (3 if a.quick else 5),
        device=a.device,
        chunk=a.chunk,
        quiet_s=a.quiet_wait,
        memory=not a.no_memory,
        threads=a.threads,
        rounds=a.rounds,
    )


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    if a.worker or a.memory_worker:
        case, dtype = a.worker or a.memory_worker
        measure(case, dtype, settings(a), memory=bool(a.memory_worker))
        return
    from rich.console import Console

    from .report import describe, markdown, table

    console = Console(width=max(Console().width, 180))
    if a.from_json:
        with open(a.from_json) as f:
            doc = json.load(f)
        rows, info = doc["rows"], doc["machine"]
    else:
        s = settings(a)
        info = machine()
        info["device_name"] = info.get("cuda_device") if s.device.startswith("cuda") else None
        info["settings"] = vars(s)
        console.print(describe(info), highlight=False)
        console.print(f"cases {s.cases}, dtypes {s.dtypes}, n {s.ns}, methods {s.methods}")

        def on_row(row: dict[str, Any]) -> None:
            m = row["methods"]
            ratios = ", ".join(
                f"{k} {v['ratio']:.2f}x" for k, v in m.items() if v.get("ratio") is not None
            )
            console.print(f"{row['case']} {row['dtype']} n={row['n']:,}: {ratios}", highlight=False)

        rows, errors = run_all(s, on_row)
        for e in errors:
            console.print(f"[red]{e}[/red]")
        if a.json != "-":
            os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
            with open(a.json, "w") as f:
                json.dump({"machine": info, "rows": rows}, f, indent=1)
            console.print(f"JSON written to {a.json}")
    console.print(table(rows, title="time / floor (medians); bytes per point in flight"))
    console.print(describe(info), highlight=False)
    if a.markdown:
        text = markdown(rows, info)
        if a.markdown == "-":
            sys.stdout.write(text)
        else:
            with open(a.markdown, "w") as f:
                f.write(text)
