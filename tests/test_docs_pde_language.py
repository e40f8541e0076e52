"""Every pinncheck command in docs/pde-language.md works as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "pde-language.md"


def _commands() -> list[str]:
    cmds = []
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("pinncheck "):
                cmds.append(line)
    return cmds


COMMANDS = _commands()


def test_the_page_is_linked_from_the_readme() -> None:
    assert "docs/pde-language.md" in (ROOT / "README.md").read_text()
    assert len(COMMANDS) >= 6


@pytest.mark.parametrize("cmd", COMMANDS)
def test_doc_command_succeeds(cmd: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    p = subprocess.run(
        ["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
