"""Every sample in samples/ runs through `pinncheck run` and meets its expectation."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from helpers import run_cli
from pinncheck import run_files

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
FILES = sorted(SAMPLES.rglob("*.toml"))


def test_there_are_samples_and_the_index_lists_them() -> None:
    assert len(FILES) >= 15
    index = (SAMPLES / "README.md").read_text()
    for f in FILES:
        if f.parent == SAMPLES:
            assert f"`{f.name}`" in index, f"{f.name} missing from samples/README.md"


def test_every_user_code_file_is_used_by_a_check() -> None:
    user = SAMPLES / "user_code"
    checks = (user / "checks.toml").read_text()
    for py in user.glob("*.py"):
        assert f"{py.name}:" in checks, py.name


def test_every_sympy_catalogue_object_is_used_by_a_check() -> None:
    import ast

    checks = (SAMPLES / "sympy_pdes.toml").read_text()
    for py in (SAMPLES / "sympy_pdes").glob("*.py"):
        tree = ast.parse(py.read_text())
        names = [n.name for n in tree.body if isinstance(n, ast.ClassDef) and n.name != "PDE"]
        names += [
            t.id
            for n in tree.body
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name) and not t.id.startswith("_")
        ]
        assert names
        for name in names:
            assert f'{py.name}:{name}"' in checks, name


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(SAMPLES)) for f in FILES])
def test_sample_meets_its_expectation(path: Path) -> None:
    report = run_files([path])
    expected = {
        t["name"]: t.get("expect", "pass")
        for tables in tomllib.loads(path.read_text()).values()
        for t in tables
    }
    got = {r.entry.name: r.status for r in report.results}
    assert got == expected, [(r.entry.name, r.error) for r in report.results if not r.met]
    assert all(r.met for r in report.results)


def test_wrong_samples_exist_and_fail_for_the_stated_reason() -> None:
    report = run_files(sorted(SAMPLES.glob("wrong_*.toml")))
    assert len(report.results) >= 2
    for r in report.results:
        assert r.entry.expect == "fail" and r.status == "fail"
        assert any(e.status_detail == "not a solution" for e in r.report.equations)


def test_run_cli_on_all_samples_exits_0() -> None:
    result = run_cli("run", *map(str, sorted(SAMPLES.glob("*.toml"))))
    assert result.exit_code == 0, result.stdout
    assert "met their expectation" in result.stdout
