"""The pytest plugin: check files as pytest items (run in subprocesses, as a user runs pytest)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECKS = """[[check]]
name = "passes"
expr = "x**2"
domain = "x=0:1"
points = 50

[[check]]
name = "undefined-log"
expr = "log(x)"
domain = "x=-1:1"
points = 50

[[verify]]
name = "crashes"
target = "bad.py:residual"
pde = "u_t - u_xx"
solution = "u = sin(x)*exp(-t)"
domain = ["x = 0:1", "t = 0:1"]
points = 50
"""
PROBE = """import sys

def test_modules():
    print("MODULES", *(m in sys.modules for m in ("pinncheck.pytest_plugin", "torch", "sympy")))
"""


def pytest_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pinncheck_checks.toml").write_text(CHECKS)
    (tmp_path / "bad.py").write_text("def residual(x, u):\n    raise RuntimeError('boom')\n")
    (tmp_path / "other.toml").write_text(CHECKS)  # not named pinncheck*.toml: not collected
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    return tmp_path


def test_samples_run_as_pytest_items() -> None:
    p = pytest_run(ROOT, "samples/heat_1d.toml", "-q")
    assert p.returncode == 0, p.stdout[-3000:]
    assert "1 passed" in p.stdout


def test_items_pass_fail_and_show_pinncheck_diagnosis(project: Path) -> None:
    p = pytest_run(project, "-q", "--junitxml=out.xml")
    assert p.returncode == 1, p.stdout[-3000:]
    assert "2 failed, 1 passed" in p.stdout
    assert "FAILED pinncheck_checks.toml::undefined-log - expected PASS, got FAIL" in p.stdout
    assert "pinncheck_checks.toml:7: check 'undefined-log'" in p.stdout
    assert "log(x)" in p.stdout  # the report's table
    # the user's traceback, not one into pinncheck
    assert "RuntimeError: boom" in p.stdout and 'bad.py", line 2' in p.stdout
    assert "_checkfile.py" not in p.stdout and "pytest_plugin.py" not in p.stdout
    assert "other.toml" not in p.stdout
    cases = ET.parse(project / "out.xml").getroot().iter("testcase")
    got = {c.get("name"): [k.tag for k in c] for c in cases}
    assert got == {"passes": [], "undefined-log": ["failure"], "crashes": ["failure"]}


def test_x_stops_at_the_first_failing_item(project: Path) -> None:
    p = pytest_run(project, "-q", "-x")
    assert "1 failed, 1 passed" in p.stdout and "stopping after 1 failures" in p.stdout


def test_a_named_toml_is_collected_whatever_its_name_and_k_selects_items(project: Path) -> None:
    # other.toml is collected because it is named; the torch import comes with it.
    # -k matches item names and the tables' kinds ("verify" selects "crashes").
    (project / "test_probe.py").write_text(PROBE)
    k = "passes or modules or verify"
    p = pytest_run(project, "-q", "-s", "test_probe.py", "other.toml", "-k", k)
    assert "1 failed, 2 passed, 1 deselected" in p.stdout, p.stdout[-2000:]
    assert "FAILED other.toml::crashes" in p.stdout
    assert "MODULES True True True" in p.stdout


def test_plugin_loads_without_torch_or_sympy_until_a_check_file_is_collected(
    project: Path,
) -> None:
    (project / "test_probe.py").write_text(PROBE)
    p = pytest_run(project, "-q", "-s", "test_probe.py")
    assert "MODULES True False False" in p.stdout, p.stdout[-2000:]
    # disabled: pinncheck_checks.toml is not collected either
    p = pytest_run(project, "-q", "-s", "-p", "no:pinncheck")
    assert "MODULES False False False" in p.stdout and "1 passed" in p.stdout, p.stdout[-2000:]


def test_bad_check_file_is_a_collection_error_in_pinncheck_words(project: Path) -> None:
    (project / "pinncheck_checks.toml").write_text(CHECKS + '[[chek]]\nname = "c"\n')
    (project / "pyproject.toml").write_text("[tool.pinncheck]\ndtype = 'float16'\n")
    p = pytest_run(project, "-q")
    assert p.returncode == 2
    out = p.stdout
    assert "ERROR collecting pinncheck_checks.toml" in out
    assert "unknown table [[chek]]" in out
    # the dtype default from pyproject.toml reaches every table that takes it
    assert out.count("key 'dtype': Unsupported dtype 'float16'") == 3
    assert "default from [tool.pinncheck]" in out
    assert "Traceback" not in out and "_checkfile.py" not in out


@pytest.mark.parametrize("args", [(), ("samples",)])
def test_the_projects_own_test_run_collects_no_check_files(args: tuple[str, ...]) -> None:
    # Only the plugin collects (-p no:python): testpaths (tests/) and samples/ hold no
    # pinncheck*.toml files, so `make test` and `pytest samples` collect none.
    p = pytest_run(ROOT, "--collect-only", "-q", "-p", "no:python", *args)
    assert p.returncode == 5, p.stdout[-2000:]  # pytest's "no tests collected"
    assert "no tests collected" in p.stdout and ".toml" not in p.stdout
