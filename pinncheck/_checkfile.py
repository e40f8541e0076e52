"""Check files: TOML lists of checks run by ``pinncheck run``.

Every entry is validated and parsed before anything runs, so a typo in the last entry of a
file costs nothing. Each kind of table (``[[check]]``, ``[[residual]]``, ...) declares the keys
it accepts and how to turn them into a prepared job.
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import tomllib

from ._errors import CheckFileError, PinncheckError

COMMON_KEYS = {"name": str, "expect": str, "expect_diagnosis": str}
# Keys shared by the kinds that sample points.
RUN_KEYS: dict[str, Any] = {
    "domain": (str, list),
    "points": int,
    "seed": int,
    "device": str,
    "dtype": str,
    "rtol": float,
    "atol": float,
    "chunk_size": int,
    "where": (str, list),
}


class Job(Protocol):
    def run(self, progress: Any = None) -> Any: ...


@dataclass(frozen=True)
class KindSpec:
    """One table kind: accepted keys (with types), required keys, and how to prepare a job."""

    keys: dict[str, Any]
    required: tuple[str, ...]
    prepare: Callable[[dict[str, Any], Path], Job]


def _run_args(opts: dict[str, Any]) -> dict[str, Any]:
    renamed = {"points": "n"}
    return {renamed.get(k, k): v for k, v in opts.items()}


def _prepare_check(opts: dict[str, Any], base: Path) -> Job:
    from ._check import prepare_check

    args = _run_args(opts)
    return prepare_check(args.pop("expr"), args.pop("domain"), **args)


def _prepare_residual(opts: dict[str, Any], base: Path) -> Job:
    from ._residual import prepare_residual

    args = _run_args(opts)
    return prepare_residual(args.pop("pde"), args.pop("solution"), args.pop("domain"), **args)


def _prepare_verify(opts: dict[str, Any], base: Path) -> Job:
    from ._verify import prepare_verify

    args = _run_args(opts)
    return prepare_verify(
        args.pop("target"),
        args.pop("pde"),
        args.pop("solution"),
        args.pop("domain"),
        base_dir=base,
        **args,
    )


def _prepare_probe(opts: dict[str, Any], base: Path) -> Job:
    from ._probe import prepare_probe

    args = _run_args(opts)
    return prepare_probe(args.pop("target"), args.pop("domain"), base_dir=base, **args)


KINDS: dict[str, KindSpec] = {
    "check": KindSpec({"expr": str, "order": int, **RUN_KEYS}, ("expr", "domain"), _prepare_check),
    "residual": KindSpec(
        {
            "pde": (str, list),
            "solution": (str, list, dict),
            "param": (str, list, dict),
            "any_residual": bool,
            "symbolic_timeout": float,
            "forcing": bool,
            **RUN_KEYS,
        },
        ("pde", "solution", "domain"),
        _prepare_residual,
    ),
    "verify": KindSpec(
        {
            "target": str,
            "pde": (str, list),
            "solution": (str, list, dict),
            "param": (str, list, dict),
            "convention": str,
            "definitions_only": bool,
            **RUN_KEYS,
        },
        ("target", "pde", "solution", "domain"),
        _prepare_verify,
    ),
    "probe": KindSpec(
        {
            "target": str,
            "domain": (str, list),
            "points": int,
            "seed": int,
            "device": str,
            "dtype": str,
            "jacobian_points": int,
            "args": dict,
            "state_dict": str,
            "definitions_only": bool,
        },
        ("target", "domain"),
        _prepare_probe,
    ),
}


@dataclass
class Entry:
    """One table of a check file, validated and prepared."""

    file: Path
    kind: str
    index: int
    name: str
    expect: str
    expect_diagnosis: str | None
    job: Job

    @property
    def where(self) -> str:
        return f"{self.file}, {self.kind} {self.name!r}"


@dataclass
class EntryResult:
    entry: Entry
    report: Any
    seconds: float
    error: str | None = None

    @property
    def status(self) -> str:
        return "error" if self.report is None else self.report.status

    @property
    def diagnosis_text(self) -> str:
        if self.report is None:
            return self.error or ""
        parts = list(getattr(self.report, "diagnosis", []) or [])
        parts += list(getattr(self.report, "warnings", []) or [])
        return "\n".join(parts)

    @property
    def met(self) -> bool:
        e = self.entry
        if self.report is None or self.status != e.expect:
            return False
        return (
            e.expect_diagnosis is None or e.expect_diagnosis.lower() in self.diagnosis_text.lower()
        )

    @property
    def worst_error(self) -> float:
        if self.report is None:
            return math.nan
        return worst_error(self.report)


def worst_error(report: Any) -> float:
    """The largest error relative to scale over every compared quantity of a report.

    For ``probe``, the Jacobian's off-diagonal mass relative to its diagonal.
    """
    values = [q.stats.max_rel_error for q in getattr(report, "derivatives", [])]
    values += [
        q.stats.max_abs_error / q.term_scale if q.term_scale else q.stats.max_abs_error
        for q in getattr(report, "equations", [])
    ]
    ratio = getattr(report, "offdiag_ratio", None)  # probe: the batch-coupling figure
    if ratio is not None:
        values.append(ratio)
    finite = [v for v in values if not math.isnan(v)]
    return max(finite) if finite else math.nan


def _type_ok(value: Any, kinds: Any) -> bool:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    for k in kinds:
        if k is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if k is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if k is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return True
        if k is dict and isinstance(value, dict):
            return True
        if k in (str, bool) and isinstance(value, k):
            return True
    return False


def _type_name(kinds: Any) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list of strings",
        dict: "a table",
    }
    return " or ".join(names[k] for k in kinds)


def load_file(path: str | Path) -> list[Entry]:
    """Read, validate and prepare every table of one check file.

    Raises:
        CheckFileError: unreadable file, bad TOML, unknown table or key, wrong type, or a bad
            expression/domain/option; the message names the file, the check and the key.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckFileError(f"Cannot read the check file {p}: {exc}.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CheckFileError(f"{p} is not valid TOML: {exc}.") from None
    entries: list[Entry] = []
    names: set[str] = set()
    for kind, tables in data.items():
        if kind not in KINDS:
            hint = difflib.get_close_matches(kind, KINDS, n=1)
            raise CheckFileError(
                f"{p}: unknown table [[{kind}]]; use "
                + ", ".join(f"[[{k}]]" for k in KINDS)
                + (f" (did you mean [[{hint[0]}]]?)" if hint else "")
                + "."
            )
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise CheckFileError(f"{p}: {kind} must be an array of tables, written [[{kind}]].")
        for i, table in enumerate(tables):
            entries.append(_entry(p, kind, i, table, names))
    if not entries:
        raise CheckFileError(f"{p} contains no checks ([[check]], [[residual]], ...).")
    return entries


def _entry(p: Path, kind: str, i: int, table: dict[str, Any], names: set[str]) -> Entry:
    spec = KINDS[kind]
    label = f"{p}, {kind} #{i + 1}"
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CheckFileError(f'{label}: every check needs a name = "...".')
    label = f"{p}, {kind} {name!r}"
    if name in names:
        raise CheckFileError(f"{label}: the name is used twice in this file; names must differ.")
    names.add(name)
    allowed = {**COMMON_KEYS, **spec.keys}
    for key, value in table.items():
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            raise CheckFileError(
                f"{label}: unknown key {key!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; allowed keys: {', '.join(sorted(allowed))}."
            )
        if not _type_ok(value, allowed[key]):
            raise CheckFileError(
                f"{label}, key {key!r}: must be {_type_name(allowed[key])}, got {value!r}."
            )
    missing = [k for k in spec.required if k not in table]
    if missing:
        raise CheckFileError(f"{label}: missing key {missing[0]!r}.")
    expect = table.get("expect", "pass")
    if expect not in ("pass", "fail"):
        raise CheckFileError(f'{label}, key \'expect\': must be "pass" or "fail", got {expect!r}.')
    opts = {k: v for k, v in table.items() if k not in COMMON_KEYS}
    try:
        job = spec.prepare(opts, p.parent)
    except PinncheckError as exc:
        culprit = _guess_key(str(exc), opts)
        where = f", key {culprit!r}" if culprit else ""
        raise CheckFileError(f"{label}{where}: {exc}") from None
    return Entry(p, kind, i, name, expect, table.get("expect_diagnosis"), job)


def _guess_key(message: str, opts: dict[str, Any]) -> str | None:
    # Name the key whose text the error quotes; else the kind of thing the error is about.
    for key, value in opts.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and len(v) > 2 and v.strip() in message:
                return key
    lowered = message.lower()
    for word, key in (
        ("domain", "domain"),
        ("pde", "pde"),
        ("solution", "solution"),
        ("parameter", "param"),
        ("points", "points"),
        ("seed", "seed"),
        ("dtype", "dtype"),
        ("device", "device"),
        ("order", "order"),
        ("expression", "expr"),
        ("target", "target"),
    ):
        if word in lowered and key in opts:
            return key
    return None


@dataclass
class RunReport:
    """The outcome of :func:`run_files`."""

    results: list[EntryResult] = field(default_factory=list)
    kind: str = "run"

    @property
    def status(self) -> str:
        return "pass" if all(r.met for r in self.results) else "fail"

    def to_dict(self) -> list[dict[str, Any]]:
        out = []
        for r in self.results:
            e = r.entry
            doc: dict[str, Any] = (
                r.report.to_dict()
                if r.report is not None
                else {"kind": e.kind, "status": "error", "error": r.error}
            )
            doc.update(
                {
                    "name": e.name,
                    "file": str(e.file),
                    "expect": e.expect,
                    "expect_diagnosis": e.expect_diagnosis,
                    "met_expectation": r.met,
                    "seconds": r.seconds,
                }
            )
            out.append(doc)
        return out


def load_files(paths: Sequence[str | Path]) -> list[Entry]:
    """Validate and prepare every entry of every file (nothing runs)."""
    if not paths:
        raise CheckFileError("No check files given: pinncheck run FILE.toml ...")
    entries: list[Entry] = []
    for path in paths:
        entries.extend(load_file(path))
    return entries


def run_entries(
    entries: Sequence[Entry], on_result: Callable[[EntryResult], None] | None = None
) -> RunReport:
    """Run prepared entries in order. A user-code error in one entry fails that entry only."""
    from ._errors import UserCodeError

    report = RunReport()
    for e in entries:
        t0 = time.perf_counter()
        try:
            result = EntryResult(e, e.job.run(), time.perf_counter() - t0)
        except UserCodeError as exc:
            msg = f"{exc}\n{exc.details}" if exc.details else str(exc)
            result = EntryResult(e, None, time.perf_counter() - t0, error=msg)
        except PinncheckError as exc:
            result = EntryResult(e, None, time.perf_counter() - t0, error=str(exc))
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    return report


def run_files(paths: Sequence[str | Path]) -> RunReport:
    """Load, validate and run check files: the Python form of ``pinncheck run``.

    Example:
        >>> report = run_files(["samples/heat_1d.toml"])
        >>> report.status
        'pass'
    """
    return run_entries(load_files(paths))
