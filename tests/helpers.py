"""Shared test helpers: run the CLI and get stdout, stderr and the exit code together."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from pinncheck.cli import app


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """Invoke ``pinncheck ARGS`` in-process, as if piped (not a terminal), 200 columns wide,
    and outside GitHub Actions (no step summary, no workspace) unless ``env`` says otherwise."""
    base: dict[str, str | None] = {"COLUMNS": "200", "NO_COLOR": "1"}
    base.update(GITHUB_STEP_SUMMARY=None, GITHUB_WORKSPACE=None)
    runner = CliRunner(env={**base, **(env or {})})
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)
