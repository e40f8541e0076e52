"""Every command in docs/ci.md works as written (in a folder with samples/ and the
pyproject.toml settings the page shows), and its workflow runs pinncheck with real options."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "ci.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S)


COMMANDS = [
    line.removeprefix("$ ")
    for block in _blocks("console")
    for line in block.splitlines()
    if line.startswith("$ ")
]
(CONFIG,) = [b for b in _blocks("toml") if b.startswith("[tool.pinncheck]")]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ci-doc")
    (d / "samples").symlink_to(ROOT / "samples")
    (d / "pyproject.toml").write_text(CONFIG)
    return d


def _run(cmd: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_page_has_commands_for_each_feature() -> None:
    text = " ".join(COMMANDS)
    for needle in ("-k", "-x", "-q", "-v", "--shard", "--junit-xml", "github", "python -m pytest"):
        assert needle in text, needle
    assert any(c.startswith("pinncheck run -") for c in COMMANDS)  # the configured paths


@pytest.mark.parametrize("cmd", COMMANDS)
def test_doc_command_succeeds(cmd: str, workdir: Path) -> None:
    p = _run(cmd, workdir)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]


def test_the_workflows_command_line_is_accepted(workdir: Path) -> None:
    (yaml,) = _blocks("yaml")
    (line,) = [x for x in yaml.splitlines() if "run: pinncheck" in x]
    cmd = (
        line.split("run: ", 1)[1]
        .replace("${{ matrix.shard }}", "3")
        .replace("checks/", "samples/heat_1d.toml")
    )
    p = _run(cmd, workdir)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert (workdir / "junit-3.xml").is_file()
