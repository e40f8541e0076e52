"""Every pinncheck command in docs/pde-language.md works as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import test_readme as readme

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
    readme.test_readme_command_succeeds(cmd)  # run the way the README's commands are run
