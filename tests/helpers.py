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
        """stdout as one JSON document, validated against its kind's shipped JSON Schema."""
        return validated(json.loads(self.stdout))


def validated(doc: Any) -> Any:
    """``doc``, after checking it against the JSON Schema of its kind (every pinncheck JSON
    document a test reads goes through here)."""
    from pinncheck._schemas import validate

    validate(doc)
    return doc


def run_cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """Invoke ``pinncheck ARGS`` in-process, as if piped (not a terminal), 200 columns wide,
    and outside GitHub Actions (no step summary, no workspace) unless ``env`` says otherwise."""
    base: dict[str, str | None] = {"COLUMNS": "200", "NO_COLOR": "1"}
    base.update(GITHUB_STEP_SUMMARY=None, GITHUB_WORKSPACE=None)
    runner = CliRunner(env={**base, **(env or {})})
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


# The heat equation of samples/user_code, for verify tests (API keywords and CLI options).
HEAT: dict[str, Any] = dict(
    pde="u_t - nu*u_xx",
    solution="u = sin(2*x + 1)*exp(-t) + x**3*t",
    domain=["x = 0:1", "t = 0:1"],
    param=["nu = 0.1"],
)
HEAT_ARGS = (
    "--pde",
    "u_t - nu*u_xx",
    "--solution",
    "u = sin(2*x + 1)*exp(-t) + x**3*t",
    "--param",
    "nu = 0.1",
    "-d",
    "x = 0:1",
    "-d",
    "t = 0:1",
)
