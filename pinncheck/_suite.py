"""Suites of check files: collecting directories, ``[tool.pinncheck]``, ``-k`` and ``--shard``.

Nothing here imports torch or SymPy: a suite is collected, configured and selected from the
files' TOML alone, and the checks are prepared and run by :mod:`pinncheck._checkfile`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._checkfile import DEFAULT_KEYS, KINDS, Problem, read_toml, unknown_key
from ._errors import CheckFileError, OptionError

# Folders never searched for check files (as pytest's norecursedirs): hidden ones (.git, .venv),
# and these.
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "venv", "build", "dist", "site-packages"})


@dataclass
class Collected:
    """The check files of a suite, in run order, and what was left out, with why."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def is_check_file(path: Path) -> tuple[bool, str]:
    """Whether a TOML file found in a folder holds pinncheck tables, and if not, why not.

    A file whose top-level tables are all foreign (pyproject.toml, a tool's settings) is not a
    check file. One with a pinncheck table, or an array of tables whose name is close to one
    (``[[chek]]``), is: loading it then reports what is wrong, instead of skipping it.
    """
    _, data = read_toml(path)
    for key, value in data.items():
        if key in KINDS:
            return True, ""
        tables = isinstance(value, list) and value and all(isinstance(t, dict) for t in value)
        if tables and difflib.get_close_matches(key, KINDS, n=1):
            return True, ""
    return False, "no pinncheck tables ([[check]], [[residual]], [[verify]], [[probe]])"


def _walk(folder: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".") and d not in SKIPPED_DIRS and not d.endswith(".egg-info")
        ]
        for name in files:
            if name.endswith(".toml"):
                yield Path(root, name)


def collect(paths: Sequence[str | Path]) -> Collected:
    """The check files named by ``paths``, in order: files as given, folders searched.

    A folder contributes every ``*.toml`` file below it that holds pinncheck tables, sorted by
    path, so the order (and so ``--shard``) is the same on every machine. A file named
    directly is always a check file. A path named twice is collected once. Unreadable paths and
    invalid TOML are ``problems``; other TOML files are ``skipped`` with the reason.
    """
    out = Collected()
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.files.append(p)

    for given in paths:
        p = Path(given)
        if p.is_dir():
            found = sorted(_walk(p), key=lambda f: f.parts)
            kept = 0
            for f in found:
                try:
                    ok, why = is_check_file(f)
                except CheckFileError as exc:
                    out.problems.extend(exc.problems or [Problem(f, None, str(exc))])
                    continue
                if ok:
                    add(f)
                    kept += 1
                else:
                    out.skipped.append((f, why))
            if not kept and not any(q.file in found for q in out.problems):
                out.problems.append(
                    Problem(
                        p,
                        None,
                        f"No check files in the folder {p}: none of its {len(found)} TOML "
                        "file(s) holds [[check]], [[residual]], [[verify]] or [[probe]] tables.",
                    )
                )
        elif p.exists():
            add(p)
        else:
            out.problems.append(Problem(p, None, f"Cannot read the check file {p}: no such file."))
    return out


# pyproject.toml ------------------------------------------------------------------------------
CONFIG_TYPES: dict[str, tuple[type, str]] = {
    "paths": (list, "a list of paths (strings)"),
    "points": (int, "an integer"),
    "seed": (int, "an integer"),
    "dtype": (str, "a string (float64 or float32)"),
    "device": (str, "a string (cpu, cuda, cuda:N or auto)"),
}


@dataclass(frozen=True)
class Config:
    """``[tool.pinncheck]`` of a pyproject.toml: where the suite is, and defaults for its checks.

    ``paths`` are relative to the pyproject.toml's folder. ``defaults`` fill ``points``,
    ``seed``, ``dtype`` and ``device`` where a ``[[check]]``, ``[[residual]]`` or ``[[verify]]``
    table leaves them out.
    """

    source: Path
    paths: tuple[Path, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


def find_config(start: str | Path | None = None) -> Config | None:
    """The ``[tool.pinncheck]`` table of the nearest pyproject.toml that has one, searching
    from ``start`` (default: the current folder) up to the root; None if there is none.

    Raises:
        CheckFileError: that pyproject.toml is unreadable or its table is malformed.
    """
    folder = Path(start or Path.cwd()).resolve()
    for d in (folder, *folder.parents):
        candidate = d / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            _, data = read_toml(candidate)
        except CheckFileError as exc:
            # A broken pyproject.toml stops the search only if it mentions pinncheck.
            if "[tool.pinncheck]" in candidate.read_text(encoding="utf-8", errors="replace"):
                raise CheckFileError(str(exc).replace("check file", "file")) from None
            continue
        table = (
            data.get("tool", {}).get("pinncheck") if isinstance(data.get("tool"), dict) else None
        )
        if table is not None:
            return _config(candidate, table)
    return None


def _config(source: Path, table: Any) -> Config:
    where = f"{source}, [tool.pinncheck]"
    if not isinstance(table, dict):
        raise CheckFileError(f"{where}: must be a table.")
    for key, value in table.items():
        if key not in CONFIG_TYPES:
            raise unknown_key(where, key, list(CONFIG_TYPES))
        kind, text = CONFIG_TYPES[key]
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if key == "paths":
            ok = ok and all(isinstance(v, str) for v in value)
        if not ok:
            raise CheckFileError(f"{where}, key {key!r}: must be {text}, got {value!r}.")
    paths = tuple(source.parent / p for p in table.get("paths", []))
    defaults = {k: table[k] for k in DEFAULT_KEYS if k in table}
    return Config(source, paths, defaults)


# -k ------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(\()|(\))|([\w:+\-.\[\]\\/]+))")


def keyword_matcher(expr: str) -> Callable[[Iterable[str]], bool]:
    """A ``-k`` expression as pytest reads it: words matched case-insensitively as substrings
    of any of a check's names, combined with ``and``, ``or``, ``not`` and parentheses.

    Raises:
        OptionError: the expression is malformed (the message says where).
    """
    tokens: list[str] = []
    pos = 0
    text = expr.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise OptionError(
                f"-k {expr!r}: cannot read the character {text[pos:].lstrip()[:1]!r} at "
                f"position {pos + 1}; write words joined by and, or, not and parentheses."
            )
        tokens.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if not tokens:
        raise OptionError("-k needs an expression, e.g. -k 'heat and not wave'.")
    parser = _KeywordParser(expr, tokens)
    tree = parser.parse()
    return lambda names: _evaluate(tree, [n.lower() for n in names])


class _KeywordParser:
    # expr: and ('or' and)*;  and: not ('and' not)*;  not: 'not' not | '(' expr ')' | word
    def __init__(self, expr: str, tokens: list[str]) -> None:
        self.expr, self.tokens, self.i = expr, tokens, 0

    def fail(self, what: str) -> OptionError:
        got = self.tokens[self.i] if self.i < len(self.tokens) else "the end"
        return OptionError(f"-k {self.expr!r}: expected {what}, got {got!r}.")

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def parse(self) -> Any:
        tree = self.or_()
        if self.peek() is not None:
            raise self.fail("and, or or the end")
        return tree

    def or_(self) -> Any:
        tree = self.and_()
        while self.peek() == "or":
            self.i += 1
            tree = ("or", tree, self.and_())
        return tree

    def and_(self) -> Any:
        tree = self.not_()
        while self.peek() == "and":
            self.i += 1
            tree = ("and", tree, self.not_())
        return tree

    def not_(self) -> Any:
        token = self.peek()
        if token == "not":
            self.i += 1
            return ("not", self.not_())
        if token == "(":
            self.i += 1
            tree = self.or_()
            if self.peek() != ")":
                raise self.fail("')'")
            self.i += 1
            return tree
        if token is None or token in (")", "and", "or"):
            raise self.fail("a word, 'not' or '('")
        self.i += 1
        return ("word", token.lower())


def _evaluate(tree: Any, names: list[str]) -> bool:
    op = tree[0]
    if op == "word":
        return any(tree[1] in n for n in names)
    if op == "not":
        return not _evaluate(tree[1], names)
    if op == "and":
        return _evaluate(tree[1], names) and _evaluate(tree[2], names)
    return _evaluate(tree[1], names) or _evaluate(tree[2], names)


# --shard -------------------------------------------------------------------------------------
def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) as two integers.

    Raises:
        OptionError: not of that form.
    """
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise OptionError(
            f"--shard {text!r}: write K/N with 1 <= K <= N, e.g. --shard 2/3 for the second "
            "of three CI jobs."
        )
    return int(m.group(1)), int(m.group(2))


def shard(items: Sequence[Any], k: int, n: int) -> list[Any]:
    """Shard ``k`` of ``n`` (1-based): every n-th item of the list, starting at item k.

    Round-robin over the suite's fixed order: the shards are disjoint, together hold every
    item, and differ in size by at most one.
    """
    return [item for i, item in enumerate(items) if i % n == k - 1]


# A whole suite -------------------------------------------------------------------------------
@dataclass
class Suite:
    """The checks a ``pinncheck run`` will run, and how they were chosen.

    ``entries`` are the selected checks, prepared, in run order; ``total`` counts every check
    of the files, ``deselected`` those ``-k`` left out and ``sharded_out`` those that belong
    to other shards.
    """

    entries: list[Any]
    total: int
    deselected: int = 0
    sharded_out: int = 0
    shard: tuple[int, int] | None = None
    collected: Collected = field(default_factory=Collected)
    config: Config | None = None

    def describe(self) -> str:
        """What was selected, for the summary line (empty when it is the whole suite)."""
        parts = []
        if self.deselected:
            parts.append(f"{self.deselected} deselected by -k")
        if self.shard:
            selected = self.total - self.deselected
            parts.append(f"shard {self.shard[0]}/{self.shard[1]} of {selected} checks")
        return "; ".join(parts)


def keywords(entry: Any) -> list[str]:
    """The names ``-k`` matches for a check: its name, its file's name and its kind."""
    return [entry.name, entry.file.name, entry.kind]


def load_suite(
    paths: Sequence[str | Path] | None,
    *,
    keyword: str | None = None,
    shard_spec: str | None = None,
    config: Config | None = None,
) -> Suite:
    """Collect, validate, prepare and select the checks of a suite: the Python form of
    ``pinncheck run [PATHS] [-k EXPR] [--shard K/N]``.

    With no ``paths``, ``config.paths`` (from ``[tool.pinncheck]``); ``config.defaults``
    fill keys the tables leave out. Every file is validated, whatever is selected.

    Raises:
        OptionError: a malformed ``-k`` or ``--shard``, or a ``-k`` that selects nothing.
        CheckFileError: every problem of every file at once (``problems``).
    """
    from ._checkfile import load_entries, raise_problems

    match = keyword_matcher(keyword) if keyword is not None else None
    k_n = parse_shard(shard_spec) if shard_spec is not None else None
    if not paths:
        if config is None or not config.paths:
            raise CheckFileError(
                "No check files given: pinncheck run FILE.toml|FOLDER ..., or list them as "
                'paths = ["checks"] under [tool.pinncheck] in pyproject.toml.'
            )
        paths = list(config.paths)
    collected = collect(paths)
    problems = list(collected.problems)
    entries: list[Any] = []
    defaults = config.defaults if config else {}
    for f in collected.files:
        entries.extend(load_entries(f, defaults, problems))
    raise_problems(problems)
    suite = Suite(entries, len(entries), collected=collected, config=config, shard=k_n)
    if match is not None:
        suite.entries = [e for e in entries if match(keywords(e))]
        suite.deselected = len(entries) - len(suite.entries)
        if not suite.entries:
            raise OptionError(f"-k {keyword!r} selects none of the {len(entries)} checks.")
    if k_n is not None:
        mine = shard(suite.entries, *k_n)
        suite.sharded_out = len(suite.entries) - len(mine)
        suite.entries = mine
    return suite
