"""The results as a rich table, as Markdown (for docs/performance.md) and as JSON."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from .methods import PARTS

# Column heading of each method, in table order.
COLUMNS = {
    "autograd": "autograd",
    "exact": "exact",
    "check": "check",
    "floor plain": "plain floor",
    "torch.func": "torch.func",
    "fwd-over-rev": "fwd/rev",
    "jax autodiff": "JAX AD",
    "jax exact": "JAX exact",
    "floor compiled": "compiled",
}
MEMORY = ("floor", "autograd", "check", "torch.func")


def _n(n: int) -> str:
    exp = len(str(n)) - 1
    return f"1e{exp}" if n == 10**exp else f"{n:,}"


def _parts(check: dict[str, Any]) -> str:
    """The whole check's ratio split by phase, in floor units: its threads' time shares of
    sampling, autograd, exact side and comparison times the check's ratio."""
    parts, ratio = check.get("parts_s"), check.get("ratio")
    if not parts or ratio is None:
        return "-"
    total = sum(parts.values()) or 1.0
    return " + ".join(f"{ratio * parts[k] / total:.1f}" for k in PARTS)


def _cells(row: dict[str, Any], present: list[str], parts: bool) -> list[str]:
    ms = row["methods"]
    floor = ms.get("floor")
    cells = [row["case"], row["dtype"], _n(row["n"])]
    cells.append(f"{floor['median_s'] / row['n'] * 1e9:.1f}" if floor else "-")
    for name in present:
        m = ms.get(name)
        cells.append("-" if m is None or m.get("ratio") is None else f"{m['ratio']:.2f}")
    if parts:
        cells.append(_parts(ms.get("check", {})))
    mem = [ms.get(k, {}).get("bytes_per_point") for k in MEMORY]
    cells.append(" / ".join("-" if b is None else f"{b:.0f}" for b in mem))
    misses = [k for k, v in row.get("goals", {}).items() if v == "MISS"]
    cells.append("PASS" if not misses else "MISS: " + ", ".join(misses))
    return cells


def _present(rows: list[dict[str, Any]]) -> list[str]:
    return [k for k in COLUMNS if any(k in r["methods"] for r in rows)]


def _with_parts(rows: list[dict[str, Any]]) -> bool:
    return any("parts_s" in r["methods"].get("check", {}) for r in rows)


def _headers(present: list[str], parts: bool) -> list[str]:
    return [
        "case",
        "dtype",
        "n",
        "floor ns/pt",
        *(COLUMNS[k] + " ×" for k in present),
        *(["check = sample + autograd + exact + compare"] if parts else []),
        "bytes/pt " + "/".join(MEMORY),
        "goals",
    ]


def table(rows: list[dict[str, Any]], title: str = "") -> Table:
    present = _present(rows)
    t = Table(title=title or None, show_lines=False)
    parts = _with_parts(rows)
    for i, h in enumerate(_headers(present, parts)):
        t.add_column(h, justify="left" if i < 2 or h == "goals" else "right")
    for r in rows:
        cells = _cells(r, present, parts)
        style = "red" if cells[-1] != "PASS" else None
        t.add_row(*cells, style=style)
    return t


def markdown(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    present = _present(rows)
    parts = _with_parts(rows)
    head = _headers(present, parts)
    lines = [
        "| " + " | ".join(head) + " |",
        "|"
        + "|".join("---" if i < 2 or i == len(head) - 1 else "---:" for i in range(len(head)))
        + "|",
    ]
    lines += ["| " + " | ".join(_cells(r, present, parts)) + " |" for r in rows]
    return "\n".join(lines) + "\n\n" + describe(info) + "\n"


def describe(info: dict[str, Any]) -> str:
    device = info.get("device_name") or info.get("cpu", "")
    commit = (info.get("git_commit") or "unknown")[:10] + (
        " (modified)" if info.get("git_dirty") else ""
    )
    jax = info.get("jax")
    return (
        f"{info.get('date', '')}: {device}, {info.get('cores')} cores, "
        f"{info.get('torch_threads')} torch threads, {info.get('memory_gib')} GiB; "
        f"torch {info.get('torch')}, Python {info.get('python')}"
        + (f", JAX {jax}" if jax else ", JAX not installed")
        + f"; pinncheck at {commit}."
    )
