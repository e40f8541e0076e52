"""Check files: TOML lists of checks run by ``pinncheck run``.

Every entry is validated and parsed before anything runs, so a typo in the last entry of a
file costs nothing. Each kind of table (``[[check]]``, ``[[residual]]``, ...) declares the keys
it accepts and how to turn them into a prepared job.
"""

from __future__ import annotations

import difflib
import math
import pickle
import re
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import tomllib

from ._errors import CheckFileError, ExitCode, PinncheckError
from ._limits import MAX_CHECK_FILE_BYTES, MAX_CHECK_FILE_NESTING

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
    "dump_points": str,
    "dump_limit": int,
}

# Keys of a PDE given as SymPy objects in the user's code (instead of "pde" text).
PDE_FROM_KEYS: dict[str, Any] = {"pde_from": str, "pde_args": dict, "space": (str, list)}


class Job(Protocol):
    def run(self, progress: Any = None) -> Any: ...  # (and sinks=, except probe's)


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
    return prepare_residual(
        args.pop("pde", None), args.pop("solution"), args.pop("domain"), base_dir=base, **args
    )


def _prepare_verify(opts: dict[str, Any], base: Path) -> Job:
    from ._verify import prepare_verify

    args = _run_args(opts)
    return prepare_verify(
        args.pop("target"),
        args.pop("pde", None),
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
            **PDE_FROM_KEYS,
            "solution": (str, list, dict),
            "param": (str, list, dict),
            "any_residual": bool,
            "symbolic_timeout": float,
            "forcing": bool,
            **RUN_KEYS,
        },
        ("solution", "domain"),
        _prepare_residual,
    ),
    "verify": KindSpec(
        {
            "target": str,
            "timeout": float,
            "pde": (str, list),
            **PDE_FROM_KEYS,
            "solution": (str, list, dict),
            "param": (str, list, dict),
            "convention": str,
            "definitions_only": bool,
            **RUN_KEYS,
        },
        ("target", "solution", "domain"),
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
    line: int = 1
    """1-based line of the table's header (``[[check]]`` ...) in ``file``."""
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
    sinks: list[Any] = field(default_factory=list)
    """The point sinks that saw this entry's points (see ``run_entries(sinks=...)``)."""

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
        """See :func:`worst_error`; NaN when the entry could not run."""
        if self.report is None:
            return math.nan
        return worst_error(self.report)


WORST_ERROR_MEANING = (
    "the largest error relative to its scale: |autograd - exact| / max|exact| for a "
    "derivative; |residual error| / PDE term scale for a residual, including the residual "
    "itself (its distance from 0) when the candidate must solve the PDE; off-diagonal / "
    "diagonal Jacobian mass for a probe"
)


def worst_error(report: Any) -> float:
    """The largest error relative to scale over every compared quantity of a report (the
    ``worst rel. error`` column of ``pinncheck run``; :data:`WORST_ERROR_MEANING`).

    NaN (shown as ``undefined``) when a quantity is undefined (NaN or inf) at some point.
    """
    values = [
        q.stats.max_rel_error if q.status != "undefined" else math.nan
        for q in getattr(report, "derivatives", [])
    ]
    for q in getattr(report, "equations", []):
        if q.status == "undefined":
            values.append(math.nan)
            continue
        errors = [q.stats.max_abs_error]
        if getattr(q, "check_solution", False):  # residual: it must also be 0
            errors.append(q.stats.max_abs_exact)
        scale = q.term_scale or 1.0
        values += [err / scale for err in errors]
    ratio = getattr(report, "offdiag_ratio", None)  # probe: the batch-coupling figure
    if ratio is not None:
        values.append(ratio)
    if any(math.isnan(v) for v in values) or not values:
        return math.nan
    return max(values)


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


def _nesting(text: str) -> int:
    """An upper bound on the nesting of ``[``/``{`` brackets (strings are not skipped)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a check file: the message names the file, the check and the key;
    ``line`` is the 1-based line it is about (the table's header), when known."""

    file: Path
    line: int | None
    message: str


def raise_problems(problems: Sequence[Problem]) -> None:
    if not problems:
        return
    if len(problems) == 1:
        message = problems[0].message
    else:
        message = f"{len(problems)} problems in check files:\n" + "\n".join(
            f"  {q.message}" for q in problems
        )
    raise CheckFileError(message, problems)


def load_file(path: str | Path, defaults: dict[str, Any] | None = None) -> list[Entry]:
    """Read, validate and prepare every table of one check file.

    ``defaults`` fill keys that a ``[[check]]``, ``[[residual]]`` or ``[[verify]]`` table does
    not set (``points``, ``seed``, ``dtype``, ``device``: see :data:`DEFAULT_KEYS`).

    Raises:
        CheckFileError: unreadable file, bad TOML, unknown table or key, wrong type, or a bad
            expression/domain/option; the message names the file, the check and the key. Every
            table is validated: ``problems`` lists all that is wrong, not only the first.
    """
    problems: list[Problem] = []
    entries = load_entries(Path(path), defaults or {}, problems)
    raise_problems(problems)
    return entries


DEFAULT_KEYS = ("points", "seed", "dtype", "device")
"""Keys that ``[tool.pinncheck]`` in pyproject.toml may set for every check file."""
# probe's points is a batch size and its dtype defaults to the model's own: not defaulted.
DEFAULTED_KINDS = ("check", "residual", "verify")


def read_toml(p: Path) -> tuple[str, dict[str, Any]]:
    """The text and the parsed content of a TOML file.

    Raises:
        CheckFileError: unreadable file or bad TOML (the message names the file).
    """
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_CHECK_FILE_BYTES + 1)
    except OSError as exc:
        raise CheckFileError(f"Cannot read the check file {p}: {exc}.") from None
    if len(raw) > MAX_CHECK_FILE_BYTES:
        raise CheckFileError(
            f"The check file {p} is larger than {MAX_CHECK_FILE_BYTES:,} bytes (limit "
            "MAX_CHECK_FILE_BYTES); split it into several files."
        )
    try:
        text = raw.decode("utf-8-sig")  # editors on Windows start files with a BOM
    except UnicodeDecodeError as exc:
        raise CheckFileError(f"Cannot read the check file {p}: {exc}.") from None
    depth = _nesting(text)
    if depth > MAX_CHECK_FILE_NESTING:
        raise CheckFileError(
            f"{p} nests arrays or tables {depth} deep; a check file may nest at most "
            f"{MAX_CHECK_FILE_NESTING} levels (limit MAX_CHECK_FILE_NESTING)."
        )
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"at line (\d+)", str(exc))
        raise CheckFileError(
            f"{p} is not valid TOML: {exc}.",
            [Problem(p, int(where.group(1)) if where else None, f"{p} is not valid TOML: {exc}.")],
        ) from None
    except (RecursionError, MemoryError) as exc:
        raise CheckFileError(f"{p} is too deeply nested or too large to read ({exc!r}).") from None


def load_entries(p: Path, defaults: dict[str, Any], problems: list[Problem]) -> list[Entry]:
    """The entries of one check file that are valid; what is wrong is added to ``problems``."""
    try:
        text, data = read_toml(p)
    except CheckFileError as exc:
        problems.extend(exc.problems or [Problem(p, None, str(exc))])
        return []
    lines = table_lines(text)
    entries: list[Entry] = []
    names: set[str] = set()
    for kind, tables in data.items():
        if kind not in KINDS:
            hint = difflib.get_close_matches(kind, KINDS, n=1)
            found = lines.get(kind)
            problems.append(
                Problem(
                    p,
                    found[0] if found else None,
                    f"{p}: unknown table [[{kind}]]; use "
                    + ", ".join(f"[[{k}]]" for k in KINDS)
                    + (f" (did you mean [[{hint[0]}]]?)" if hint else "")
                    + ".",
                )
            )
            continue
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            problems.append(
                Problem(
                    p,
                    _key_line(text, kind),
                    f"{p}: {kind} must be an array of tables, written [[{kind}]].",
                )
            )
            continue
        found = lines.get(kind, [])
        for i, table in enumerate(tables):
            line = found[i] if len(found) == len(tables) else _key_line(text, kind)
            applied = {
                k: v
                for k, v in defaults.items()
                if kind in DEFAULTED_KINDS and k in KINDS[kind].keys and k not in table
            }
            try:
                entries.append(_entry(p, kind, i, {**applied, **table}, names, line))
            except CheckFileError as exc:
                message = str(exc)
                for k, v in applied.items():
                    if f"key {k!r}" in message:
                        message += f" ({k} = {v!r} is the default from [tool.pinncheck].)"
                problems.append(Problem(p, line, message))
    if not entries and not problems:
        problems.append(Problem(p, None, f"{p} contains no checks ([[check]], [[residual]], ...)."))
    return sorted(entries, key=lambda e: e.line)  # the file's order, whatever the kinds


_HEADER = re.compile(
    r"""\s*\[\[\s*(?:"([^"\\]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*\]\]\s*(?:\#.*)?$"""
)


def table_lines(text: str) -> dict[str, list[int]]:
    """The 1-based line of every array-of-tables header (``[[check]]``) in TOML text, by name.

    tomllib keeps no positions, so this scans the lines itself, skipping multi-line strings
    (a ``[[check]]`` inside one is text, not a header) and allowing quoted names, spaces and
    comments. The loader uses the lines only when their count matches the parsed tables.
    """
    found: dict[str, list[int]] = {}
    open_quote: str | None = None  # the delimiter of a multi-line string still open
    for number, line in enumerate(text.splitlines(), 1):
        start = 0
        if open_quote is not None:
            end = _string_end(line, 0, open_quote)
            if end < 0:
                continue
            open_quote, start = None, end
        else:
            m = _HEADER.match(line)
            if m:
                name = next(g for g in m.groups() if g is not None)
                found.setdefault(name, []).append(number)
                continue
        open_quote = _open_multiline(line, start)
    return found


def _string_end(line: str, i: int, quote: str) -> int:
    """Index just past the closing ``quote`` from ``line[i:]``, or -1 if the line has none."""
    while i < len(line):
        if quote[0] == '"' and line[i] == "\\":
            i += 2
            continue
        if line.startswith(quote, i):
            return i + len(quote)
        i += 1
    return -1


def _open_multiline(line: str, i: int) -> str | None:
    """The delimiter of a multi-line string that ``line[i:]`` opens and leaves open, if any."""
    while i < len(line):
        c = line[i]
        if c == "#":
            return None
        if c in "\"'":
            quote = c * 3 if line.startswith(c * 3, i) else c
            end = _string_end(line, i + len(quote), quote)
            if end < 0:
                return quote if len(quote) == 3 else None
            i = end
            continue
        i += 1
    return None


def _key_line(text: str, key: str) -> int | None:
    """The line of a top-level ``key = ...`` (an inline array of tables), if there is one."""
    m = re.search(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=", text, flags=re.M)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _entry(
    p: Path, kind: str, i: int, table: dict[str, Any], names: set[str], line: int | None = None
) -> Entry:
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
            raise unknown_key(label, key, sorted(allowed))
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
    dump = {k: opts.pop(k) for k in ("dump_points", "dump_limit") if k in opts}
    try:
        job = spec.prepare(opts, p.parent)
    except PinncheckError as exc:
        culprit = _guess_key(str(exc), opts)
        where = f", key {culprit!r}" if culprit else ""
        raise CheckFileError(f"{label}{where}: {exc}") from None
    if dump:
        from ._dump import dumping_job
        from ._pointwise import must_solve

        try:
            job = dumping_job(job, p.parent, solves=must_solve(kind, job), **dump)
        except PinncheckError as exc:
            limit = str(exc).startswith(("--dump-limit", "dump_limit"))
            key = "dump_limit" if limit else "dump_points"
            raise CheckFileError(f"{label}, key {key!r}: {exc}") from None
    return Entry(p, kind, i, name, expect, table.get("expect_diagnosis"), job, line or 1, timeout)


def unknown_key(where: str, key: str, allowed: Sequence[str]) -> CheckFileError:
    """The error for a key that ``where`` does not accept, with the closest allowed one."""
    hint = difflib.get_close_matches(key, allowed, n=1)
    return CheckFileError(
        f"{where}: unknown key {key!r}"
        + (f" (did you mean {hint[0]!r}?)" if hint else "")
        + f"; allowed keys: {', '.join(allowed)}."
    )


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
    """The outcome of :func:`run_files`.

    ``status`` is ``"pass"`` when every entry met its expectation, ``"error"`` when an entry
    could not run (its user code raised, or its input was refused at run time; exit code 2),
    and ``"fail"`` otherwise (exit code 1).
    """

    results: list[EntryResult] = field(default_factory=list)
    kind: str = "run"
    not_run: list[Entry] = field(default_factory=list)
    """Entries left out after the first miss (``exitfirst``)."""

    @property
    def status(self) -> str:
        if any(r.report is None for r in self.results):
            return "error"
        return "pass" if all(r.met for r in self.results) else "fail"

    @property
    def counts(self) -> dict[str, int]:
        """``total``, ``met``, ``missed`` (ran, but missed the expectation) and ``errors``."""
        errors = sum(r.report is None for r in self.results)
        met = sum(r.met for r in self.results)
        return {
            "total": len(self.results),
            "met": met,
            "missed": len(self.results) - met - errors,
            "errors": errors,
        }

    def verdict(self, selection: str = "") -> str:
        """The run's final line without its status: how many checks met their expectation,
        how many could not run or were not run, and ``selection`` (what ``-k`` and
        ``--shard`` left out) in parentheses."""
        c = self.counts
        text = f"{c['met']} of {c['total']} checks met their expectation"
        if c["errors"]:
            text += f"; {c['errors']} could not run (exit code 2)"
        if self.not_run:
            text += f"; stopped after the first miss (-x), {len(self.not_run)} not run"
        return text + (f" ({selection})" if selection else "")

    @property
    def exit_code(self) -> int:
        """0 all met; 1 a missed expectation; 2 an entry ended in an error (bad input, the
        user's code failing, crashing or timing out); 3 an entry hit a bug in pinncheck."""
        errors = [r.exit_code for r in self.results if r.report is None]
        if errors:
            return max(max(errors), int(ExitCode.USAGE))
        return int(ExitCode.OK if self.status == "pass" else ExitCode.FAILED)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``pinncheck run --format json`` (schema: docs/json.md)."""
        from ._results import document

        reports = []
        for r in self.results:
            e = r.entry
            doc: dict[str, Any] = (
                r.report.to_dict()
                if r.report is not None
                else document({"kind": e.kind, "status": "error", "error": r.error})
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
            reports.append(doc)
        return document(
            {"kind": self.kind, "status": self.status, "counts": self.counts, "reports": reports}
        )


def load_files(paths: Sequence[str | Path], defaults: dict[str, Any] | None = None) -> list[Entry]:
    """Validate and prepare every entry of every file (nothing runs).

    Raises:
        CheckFileError: listing every problem of every file (``problems``), not only the first.
    """
    if not paths:
        raise CheckFileError("No check files given: pinncheck run FILE.toml ...")
    entries: list[Entry] = []
    problems: list[Problem] = []
    for path in paths:
        entries.extend(load_entries(Path(path), defaults or {}, problems))
    raise_problems(problems)
    return entries


def run_entries(
    entries: Sequence[Entry],
    on_result: Callable[[EntryResult], None] | None = None,
    *,
    exitfirst: bool = False,
    jobs: int = 1,
    timeout: float | None = None,
    sinks: Callable[[Entry], Sequence[Any]] | None = None,
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
        exitfirst: stop after the first entry that misses its expectation; the entries after
            it are listed in ``RunReport.not_run``.
        jobs: how many worker processes may run at once.
        timeout: seconds a user-code entry may take, unless it sets its own ``timeout`` key
            (``None``: :data:`pinncheck._workers.DEFAULT_TIMEOUT`, 600 s; 0: no limit).
        sinks: called with each entry before it runs; the point sinks it returns (see
            :mod:`pinncheck._pointwise`) see that entry's points and come back, filled, in
            :attr:`EntryResult.sinks`, also from a worker process (so they must pickle).
            Return none for a kind that has no points to show (``probe``).
    """
    report = RunReport()
    results = _results(entries, jobs, timeout, sinks)
    for i, result in enumerate(results):
        report.results.append(result)
        if on_result is not None:
            on_result(result)
        if exitfirst and not result.met:
            report.not_run = list(entries[i + 1 :])
            results.close()  # stops the workers still running
            break
    return report


def _run_job(job: Job, sinks: Sequence[Any] = ()) -> tuple[Any, list[Any]]:
    """Run a job: its report, and its sinks, filled."""
    run: Any = job.run  # probe's job takes no sinks: it gets none
    return (run(sinks=sinks) if sinks else run()), list(sinks)


def _run_job_in_worker(job: Job, sinks: Sequence[Any] = ()) -> bytes:
    """:func:`_run_job` in a worker process, its result pickled there by value.

    multiprocessing's own pickler would send a tensor (a sink's bins, a report's matrix) as
    shared memory that the worker must still be alive to hand over, and a worker that ran
    user code exits as soon as it has answered.
    """
    return pickle.dumps(_run_job(job, sinks), protocol=pickle.HIGHEST_PROTOCOL)


def _results(
    entries: Sequence[Entry],
    jobs: int,
    timeout: float | None,
    sinks: Callable[[Entry], Sequence[Any]] | None = None,
) -> Generator[EntryResult, None, None]:
    from ._workers import DEFAULT_TIMEOUT, Task, prestart, run_tasks

    limit = DEFAULT_TIMEOUT if timeout is None else timeout

    def sinks_of(e: Entry) -> list[Any]:
        return list(sinks(e)) if sinks is not None else []

    def task(e: Entry) -> Task:
        return Task(
            _run_job_in_worker,
            (e.job, sinks_of(e)),
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
            yield _in_process(e, sinks_of(e))


def _error_text(message: str, details: str | None) -> str:
    return f"{message}\n{details}" if details else message


def _from_outcome(e: Entry, outcome: Any) -> EntryResult:
    from ._workers import relay_output

    relay_output(outcome.output)
    if outcome.ok:
        report, sinks = pickle.loads(outcome.value)  # from our worker: see _run_job_in_worker
        return EntryResult(e, report, outcome.seconds, sinks=sinks)
    return EntryResult(
        e,
        None,
        outcome.seconds,
        error=_error_text(outcome.error or "", outcome.details),
        exit_code=outcome.exit_code,
    )


def _in_process(e: Entry, sinks: Sequence[Any] = ()) -> EntryResult:
    from ._errors import UserCodeError

    t0 = time.perf_counter()
    try:
        report, filled = _run_job(e.job, sinks)
        return EntryResult(e, report, time.perf_counter() - t0, sinks=filled)
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
