"""Every pinncheck command and Python example in README.md works as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PLACEHOLDERS = ("EXPR", "NAME=", "TARGET", "FILE", "[", "...")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _commands() -> list[str]:
    cmds = []
    for block in _blocks("console"):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("pinncheck ") and not any(p in line for p in PLACEHOLDERS):
                cmds.append(line)
    return cmds


COMMANDS = _commands()


def test_readme_has_commands_to_check() -> None:
    assert len(COMMANDS) >= 3


@pytest.mark.parametrize("cmd", COMMANDS)
def test_readme_command_succeeds(cmd: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    p = subprocess.run(
        ["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]


@pytest.mark.parametrize("code", _blocks("python"))
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
