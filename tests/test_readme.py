"""Every pinncheck command and Python example in README.md and docs/*.md works as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# docs/ci.md has its own test (tests/test_docs_ci.py): its commands run in a prepared folder.
DOCS = [
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in ("ci.md", "calibration.md")),
]
TEXTS = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in DOCS}
PLACEHOLDERS = ("EXPR", "NAME=", "TARGET", "FILE", "[", "...")
# A command may start with environment assignments: PYTHONIOENCODING=ascii pinncheck ...
COMMAND = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S+ )*pinncheck ")


def _blocks(lang: str, text: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _commands(text: str) -> list[str]:
    cmds = []
    for block in _blocks("console", text):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ")
            if COMMAND.match(line) and not any(p in line for p in PLACEHOLDERS):
                cmds.append(line)
    return cmds


COMMANDS = [
    pytest.param(cmd, id=f"{name}: {cmd}")
    for name, text in TEXTS.items()
    for cmd in _commands(text)
]
PYTHON = [
    pytest.param(code, id=f"{name} #{i}")
    for name, text in TEXTS.items()
    for i, code in enumerate(_blocks("python", text))
]


@pytest.mark.parametrize("name", list(TEXTS))
def test_each_document_has_commands_to_check(name: str) -> None:
    assert len(_commands(TEXTS[name])) >= (3 if name == "README.md" else 1)


def test_env_prefixed_commands_are_collected() -> None:
    text = "```console\nPYTHONIOENCODING=ascii pinncheck --version\nmake test\n```\n"
    assert _commands(text) == ["PYTHONIOENCODING=ascii pinncheck --version"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_readme_command_succeeds(cmd: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    p = subprocess.run(
        ["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]


@pytest.mark.parametrize("code", PYTHON)
def test_readme_python_example_runs(code: str, tmp_path: Path) -> None:
    if "def test_" in code:  # a pytest example: run it with pytest
        (tmp_path / "test_example.py").write_text(code)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(tmp_path / "test_example.py"),
        ]
    else:
        cmd = [sys.executable, "-c", code]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
