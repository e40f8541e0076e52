"""pytest plugin: pinncheck check files as test items, one per table.

Registered as the ``pytest11`` entry point ``pinncheck``, so installing pinncheck enables it;
``-p no:pinncheck`` disables it. It collects

- every ``*.toml`` file given on pytest's command line (``pytest checks/heat.toml``), and
- files named ``pinncheck*.toml`` in the folders pytest searches (``pytest tests/``),

and makes each ``[[check]]``, ``[[residual]]``, ``[[verify]]`` or ``[[probe]]`` table an item
named after the table's ``name``. An item passes when the check meets its expectation, as in
``pinncheck run``; a failing item shows pinncheck's diagnosis. Defaults under
``[tool.pinncheck]`` in pyproject.toml apply as they do for ``pinncheck run`` (its ``paths``
do not: pytest's own arguments and ``testpaths`` say what to collect).

This module imports only pytest at import time: torch and SymPy load when a check file is
collected, so test runs without check files pay nothing for the plugin.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PATTERN = "pinncheck*.toml"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> CheckFile | None:
    if file_path.suffix != ".toml":
        return None
    if parent.session.isinitpath(file_path) or fnmatch.fnmatch(file_path.name, PATTERN):
        return CheckFile.from_parent(parent, path=file_path)
    return None


class CheckMissed(Exception):
    """A check that did not meet its expectation (carries pinncheck's result)."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.entry.name)
        self.result = result


class CheckFile(pytest.File):
    """A pinncheck check file: validated as a whole, like ``pinncheck run`` validates it."""

    def collect(self) -> Iterator[CheckItem]:
        from ._checkfile import Problem, load_entries
        from ._errors import CheckFileError
        from ._suite import find_config

        try:
            config = find_config(self.config.invocation_params.dir)
        except CheckFileError as exc:
            raise self.CollectError(str(exc)) from None
        problems: list[Problem] = []
        entries = load_entries(self.path, config.defaults if config else {}, problems)
        if problems:
            raise self.CollectError("\n".join(q.message for q in problems))
        for entry in entries:
            yield CheckItem.from_parent(self, name=entry.name, entry=entry)


class CheckItem(pytest.Item):
    """One table of a check file."""

    def __init__(self, *, entry: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entry = entry
        self.extra_keyword_matches.add(entry.kind)  # -k check, -k "residual and heat"

    def runtest(self) -> None:
        from ._checkfile import run_entries

        result = run_entries([self.entry]).results[0]
        if not result.met:
            raise CheckMissed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CheckMissed):
            from ._ci import outcome

            o = outcome(excinfo.value.result)
            where = f"{self.entry.file}:{self.entry.line}: {self.entry.kind} {self.entry.name!r}"
            return f"{o.message}\n{where}\n\n{o.details}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.entry.line - 1, f"{self.entry.kind} {self.entry.name}"
