"""Check files: TOML lists of checks run by ``pinncheck run``.

Every entry is validated and parsed before anything runs, so a typo in the last entry of a
file costs nothing. Each kind of table (``[[check]]``, ``[[residual]]``, ...) declares the keys
it accepts and how to turn them into a prepared job.
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import tomllib

from ._errors import CheckFileError, ExitCode, PinncheckError

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
            "timeout": float,
            "pde": (str, list),
            "solution": (str, list, dict),
            "param": (str, list, dict),
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
            "timeout": float,
        },
        ("target", "domain"),
        _prepare_probe,
    ),
}
# Kinds that run the user's code: each entry runs in its own worker process (see _workers).
USER_CODE_KINDS = ("verify", "probe")


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
    timeout: float | None = None
    """The entry's own ``timeout`` key (seconds), if it has one."""

    @property
    def user_code(self) -> bool:
        return self.kind in USER_CODE_KINDS

    @property
    def where(self) -> str:
        return f"{self.file}, {self.kind} {self.name!r}"


@dataclass
class EntryResult:
    entry: Entry
    report: Any
    seconds: float
    error: str | None = None
    exit_code: int = 0
    """For an error: 2 for bad input or the user's code (a crash, a timeout), 3 for a bug."""

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
    timeout = opts.pop("timeout", None)
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise CheckFileError(
            f"{label}, key 'timeout': must be a positive number of seconds, got {timeout!r}."
        )
    try:
        job = spec.prepare(opts, p.parent)
    except PinncheckError as exc:
        culprit = _guess_key(str(exc), opts)
        where = f", key {culprit!r}" if culprit else ""
        raise CheckFileError(f"{label}{where}: {exc}") from None
    return Entry(p, kind, i, name, expect, table.get("expect_diagnosis"), job, timeout)


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

    @property
    def exit_code(self) -> int:
        """0 all met; 1 a missed expectation; 2 an entry ended in an error (bad input, the
        user's code failing, crashing or timing out); 3 an entry hit a bug in pinncheck."""
        errors = [r.exit_code for r in self.results if r.report is None]
        if errors:
            return max(max(errors), int(ExitCode.USAGE))
        return int(ExitCode.OK if self.status == "pass" else ExitCode.FAILED)

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
    entries: Sequence[Entry],
    on_result: Callable[[EntryResult], None] | None = None,
    *,
    jobs: int = 1,
    timeout: float | None = None,
) -> RunReport:
    """Run prepared entries; results come in the order of ``entries`` whatever ``jobs`` is.

    Every entry that runs the user's code (``verify``, ``probe``) runs in its own fresh worker
    process (:mod:`pinncheck._workers`): an error, a crash, ``os._exit``, a hang past its
    timeout, or a change the code makes to the interpreter fails that entry only. With
    ``jobs`` > 1, every entry runs in a worker, up to ``jobs`` at once; with ``jobs`` = 1
    pinncheck's own checks run in this process, which never runs user code.

    Args:
        entries: from :func:`load_files`.
        on_result: called with each result as soon as it and all before it are done.
        jobs: how many worker processes may run at once.
        timeout: seconds a user-code entry may take, unless it sets its own ``timeout`` key
            (``None``: :data:`pinncheck._workers.DEFAULT_TIMEOUT`, 600 s; 0: no limit).
    """
    report = RunReport()
    for result in _results(entries, jobs, timeout):
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    return report


def _run_job(job: Job) -> Any:
    # In a worker process.
    return job.run()


def _results(entries: Sequence[Entry], jobs: int, timeout: float | None) -> Iterator[EntryResult]:
    from ._workers import DEFAULT_TIMEOUT, Task, prestart, run_tasks

    limit = DEFAULT_TIMEOUT if timeout is None else timeout

    def task(e: Entry) -> Task:
        return Task(
            _run_job,
            (e.job,),
            timeout=(e.timeout if e.timeout is not None else limit) if e.user_code else None,
            user_code=e.user_code,
            label=f"{e.kind} {e.name!r}",
        )

    if jobs > 1:
        for e, outcome in zip(entries, run_tasks([task(e) for e in entries], jobs), strict=True):
            yield _from_outcome(e, outcome)
        return
    if any(e.user_code for e in entries):
        prestart()  # the template process imports torch while the first entries run here
    for e in entries:
        if e.user_code:
            yield _from_outcome(e, next(iter(run_tasks([task(e)]))))
        else:
            yield _in_process(e)


def _error_text(message: str, details: str | None) -> str:
    return f"{message}\n{details}" if details else message


def _from_outcome(e: Entry, outcome: Any) -> EntryResult:
    from ._workers import relay_output

    relay_output(outcome.output)
    if outcome.ok:
        return EntryResult(e, outcome.value, outcome.seconds)
    return EntryResult(
        e,
        None,
        outcome.seconds,
        error=_error_text(outcome.error or "", outcome.details),
        exit_code=outcome.exit_code,
    )


def _in_process(e: Entry) -> EntryResult:
    from ._errors import UserCodeError

    t0 = time.perf_counter()
    try:
        return EntryResult(e, e.job.run(), time.perf_counter() - t0)
    except UserCodeError as exc:
        msg, code = _error_text(str(exc), exc.details), int(exc.exit_code)
    except PinncheckError as exc:
        msg, code = str(exc), int(exc.exit_code)
    except Exception as exc:  # a bug in pinncheck: this entry's error, as in a worker (-j N)
        from ._workers import describe_exception

        message, details, code, _ = describe_exception(exc, user_code=False)
        msg = _error_text(message, details)
    return EntryResult(e, None, time.perf_counter() - t0, error=msg, exit_code=int(code))


def run_files(
    paths: Sequence[str | Path], *, jobs: int = 1, timeout: float | None = None
) -> RunReport:
    """Load, validate and run check files: the Python form of ``pinncheck run``.

    ``jobs`` and ``timeout`` are as for :func:`run_entries`. Like any program that starts
    worker processes with :mod:`multiprocessing`, a script calling this at the top level needs
    an ``if __name__ == "__main__":`` guard.

    Example:
        >>> report = run_files(["samples/heat_1d.toml"])
        >>> report.status
        'pass'
    """
    return run_entries(load_files(paths), jobs=jobs, timeout=timeout)
