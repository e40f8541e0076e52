"""Measuring: worker processes per (case, dtype), rows of medians, ratios, memory and goals.

Times come from one worker process per (case, dtype), tuned like the ``pinncheck`` command
(:func:`pinncheck._engine.tune_allocator`). Peak memory comes from a second worker, started
with ``MALLOC_MMAP_THRESHOLD_=65536``: there every tensor of 64 KiB or more is a mapping of its
own, returned to the system when freed, so resident memory follows the live tensors and its
high-water mark is the peak (see :mod:`bench.measure`).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

import torch

GOAL_AUTOGRAD = 2.5  # autograd path / floor
GOAL_CHECK = 5.0  # whole check / floor
GOAL_FROM_N = 100_000  # faster than torch.func and forward-over-reverse from this n on
DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class Settings:
    cases: list[str]
    dtypes: list[str]
    ns: list[int]
    methods: list[str]
    repeat: int
    device: str
    chunk: int | None
    quiet_s: float
    memory: bool
    threads: int | None = None
    rounds: int = 1


def measure(case_name: str, dtype_name: str, s: Settings, memory: bool = False) -> None:
    """Print one JSON row per n for (case, dtype): times, or with ``memory`` peak bytes."""
    from pinncheck._engine import Programs, default_chunk, tune_allocator, workers_for
    from pinncheck._options import resolve_device
    from pinncheck._sample import sample_box

    from .cases import CASES, prepare
    from .measure import peak_bytes, timed, wait_quiet
    from .methods import SEED, build

    if s.threads:
        torch.set_num_threads(s.threads)
    if not memory:
        tune_allocator()
    device = resolve_device(s.device)
    dtype = DTYPES[dtype_name]
    prep = prepare(CASES[case_name], dtype)
    for n in s.ns:
        # Every method gets the chunks of pinncheck's own run, and its points.
        chunk = s.chunk or default_chunk(Programs(prep.plan), dtype, device)
        methods = build(s.methods, prep, dtype, chunk, device)
        points = sample_box(prep.plan.domain, SEED, 0, n, dtype=dtype, device=device)
        row: dict[str, Any] = {"case": case_name, "dtype": dtype_name, "n": n, "chunk": chunk}
        if memory:
            in_flight = min(n, chunk * workers_for(device))
            row["methods"] = {}
            for m in methods:
                m.prepare(points)
                peak = peak_bytes(lambda m=m, p=points: m.run(p), device)
                per = None if peak is None else peak / (in_flight if m.parallel else min(n, chunk))
                row["methods"][m.name] = {"peak_bytes": peak, "bytes_per_point": per}
            print(json.dumps(row), flush=True)
            continue
        compile_s, reps = {}, {}
        for m in methods:
            t = time.perf_counter()
            compile_s[m.name] = m.prepare(points)
            first = time.perf_counter() - t - compile_s[m.name]
            # Slow methods at large n get fewer repeats (at least three unless very slow).
            reps[m.name] = s.repeat if first < 3 else min(s.repeat, 3 if first < 20 else 1)
        times: dict[str, list[float]] = {m.name: [] for m in methods}
        waited = 0.0
        for r in range(s.repeat):
            waited += wait_quiet(s.quiet_s)
            k = r % len(methods)  # take turns: each method leads a repeat
            for m in methods[k:] + methods[:k]:
                if len(times[m.name]) < reps[m.name]:
                    times[m.name].append(timed(lambda m=m, p=points: m.run(p), device))
        row["waited_s"] = round(waited, 2)
        row["methods"] = {
            m.name: {
                "median_s": statistics.median(times[m.name]),
                "times_s": sorted(times[m.name]),
                "compile_s": compile_s[m.name],
                **({"parts_s": dict(m.parts)} if m.parts else {}),
            }
            for m in methods
        }
        print(json.dumps(row), flush=True)


def with_goals(row: dict[str, Any]) -> dict[str, Any]:
    """Add ratios to the floor and the goals' PASS/MISS to a row."""
    ms = row["methods"]
    floor = ms["floor"]["median_s"] if "floor" in ms else None
    for m in ms.values():
        reference = m.get("floor_median_s", floor)
        m["ratio"] = m["median_s"] / reference if reference else None
    goals: dict[str, str] = {}

    def ratio(name: str) -> float | None:
        return ms[name]["ratio"] if name in ms else None

    ag, ck = ratio("autograd"), ratio("check")
    if ag is not None:
        goals[f"autograd<={GOAL_AUTOGRAD}x"] = "PASS" if ag <= GOAL_AUTOGRAD else "MISS"
    if ck is not None:
        goals[f"check<={GOAL_CHECK}x"] = "PASS" if ck <= GOAL_CHECK else "MISS"
    if row["n"] >= GOAL_FROM_N and ag is not None:
        for other in ("torch.func", "fwd-over-rev"):
            if other in ms:
                ok = ms["autograd"]["median_s"] < ms[other]["median_s"]
                goals[f"faster than {other}"] = "PASS" if ok else "MISS"
    row["goals"] = goals
    return row


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    info: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name()
    try:
        from importlib.metadata import version

        info["jax"] = version("jax")
    except Exception:  # not installed
        info["jax"] = None
    return info


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _worker(kind: str, case: str, dtype: str, s: Settings) -> tuple[list[dict[str, Any]], str]:
    """Run a worker process; its rows, and an error message ('' when it succeeded)."""
    cmd = [sys.executable, "-m", "bench", kind, case, dtype, *_worker_args(s)]
    env = dict(os.environ)
    if kind == "--memory-worker":
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    err = "" if proc.returncode == 0 else f"{case} {dtype}: {kind} exited with {proc.returncode}"
    return rows, err


def run_all(s: Settings, on_row: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Every (case, dtype) in its worker processes; ``on_row(row)`` as rows complete.

    With ``s.rounds`` > 1 the whole set is measured that many times, one round after the
    other, and each method's times are pooled over the rounds before the median is taken: on a
    shared machine whose speed drifts over minutes, that median no longer rests on one stretch
    of a few seconds per row.
    """
    errors: list[str] = []
    # JAX runs in a process of its own, with its own floor for its ratios: torch operations
    # right after JAX's ran up to twice as slow in the same process.
    from .cases import CASES
    from .methods import jax_available

    jax = "jax" in s.methods and jax_available() and s.device == "cpu"
    torch_side = replace(s, methods=[m for m in s.methods if m != "jax"])
    jax_side = replace(s, methods=["floor", "jax"])
    timed: dict[tuple[str, str], list[list[dict[str, Any]]]] = {}
    jaxed: dict[tuple[str, str], list[list[dict[str, Any]]]] = {}
    for _ in range(max(1, s.rounds)):
        for case in s.cases:
            for dtype in s.dtypes:
                rows, err = _worker("--worker", case, dtype, torch_side)
                errors += [err] if err else []
                timed.setdefault((case, dtype), []).append(rows)
                if jax and rows:
                    rows, err = _worker("--worker", case, dtype, jax_side)
                    errors += [err] if err else []
                    jaxed.setdefault((case, dtype), []).append(rows)
    out: list[dict[str, Any]] = []
    for (case, dtype), rounds in timed.items():
        timed_rows = _pool_rounds(rounds)
        if jaxed.get((case, dtype)):
            _merge_jax(timed_rows, _pool_rounds(jaxed[(case, dtype)]))
        mem_rows: list[dict[str, Any]] = []
        if s.memory and timed_rows:
            mem_rows, err = _worker("--memory-worker", case, dtype, s)
            errors += [err] if err else []
        peaks = {r["n"]: r["methods"] for r in mem_rows}
        for row in timed_rows:
            for name, m in row["methods"].items():
                m.update(peaks.get(row["n"], {}).get(name, {}))
            row["expression"] = CASES[case].label
            out.append(with_goals(row))
            on_row(row)
    return out, errors


def _pool_rounds(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per n from the rows of several rounds: each method's times pooled, the median
    taken again; the rest (compile time, the check's phases) from the last round."""
    rounds = [r for r in rounds if r]
    if not rounds:
        return []
    pooled = []
    for rows in zip(*rounds, strict=True):
        row = {**rows[-1], "rounds": len(rows)}
        row["waited_s"] = round(sum(r.get("waited_s", 0.0) for r in rows), 2)
        methods = {}
        for name, m in rows[-1]["methods"].items():
            times = sorted(t for r in rows for t in r["methods"][name]["times_s"])
            methods[name] = {**m, "times_s": times, "median_s": statistics.median(times)}
        row["methods"] = methods
        pooled.append(row)
    return pooled


def _merge_jax(rows: list[dict[str, Any]], jax_rows: list[dict[str, Any]]) -> None:
    """Add the JAX process's methods to the rows, with that process's floor as reference."""
    by_n = {r["n"]: r["methods"] for r in jax_rows}
    for row in rows:
        ms = by_n.get(row["n"], {})
        floor = ms.get("floor", {}).get("median_s")
        for name, m in ms.items():
            if name.startswith("jax") and floor:
                row["methods"][name] = {**m, "floor_median_s": floor}


def _worker_args(s: Settings) -> list[str]:
    args = ["--n", ",".join(str(n) for n in s.ns), "--methods", ",".join(s.methods)]
    args += ["--repeat", str(s.repeat), "--device", s.device, "--quiet-wait", str(s.quiet_s)]
    if s.chunk:
        args += ["--chunk", str(s.chunk)]
    if s.threads:
        args += ["--threads", str(s.threads)]
    return args
