"""Check files: validation before running, expectations, summary and JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli

GOOD = """
[[check]]
name = "tutorial"
expr = "x1**2*sin(x2)"
domain = ["x1=0:1", "x2=0:1"]
points = 200

[[residual]]
name = "heat"
pde = "u_t - nu*u_xx"
solution = "u = exp(-nu*pi**2*t)*sin(pi*x)"
param = ["nu = 0.1"]
domain = "x=0:1, t=0:1"

[[residual]]
name = "not-a-solution"
pde = "u_t - nu*u_xx"
solution = "u = exp(-nu*t)*sin(pi*x)"
param = { nu = "0.1" }
domain = ["x=0:1", "t=0:1"]
expect = "fail"
"""


def write(tmp_path: Path, text: str, name: str = "checks.toml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_run_meets_expectations_and_exits_0(tmp_path: Path) -> None:
    r = run_cli("run", write(tmp_path, GOOD))
    assert r.exit_code == 0, r.stdout
    assert "3 of 3 checks met their expectation" in r.stdout
    for name in ("tutorial", "heat", "not-a-solution"):
        assert name in r.stdout


def test_missed_expectation_exits_1_and_shows_details(tmp_path: Path) -> None:
    text = GOOD.replace('expect = "fail"', 'expect = "pass"')
    r = run_cli("run", write(tmp_path, text))
    assert r.exit_code == 1
    assert "MISSED" in r.stdout and "not a solution" in r.stdout
    assert "2 of 3 checks met" in r.stdout


def test_expected_failure_that_passes_is_a_miss(tmp_path: Path) -> None:
    text = GOOD.replace('name = "heat"', 'name = "heat"\nexpect = "fail"')
    assert run_cli("run", write(tmp_path, text)).exit_code == 1


def test_json_is_one_object_with_status_counts_and_reports(tmp_path: Path) -> None:
    r = run_cli("run", write(tmp_path, GOOD), "--format", "json")
    assert r.exit_code == 0
    doc = r.json()
    assert doc["kind"] == "run" and doc["status"] == "pass" and doc["schema_version"] == 1
    assert doc["counts"] == {"total": 3, "met": 3, "missed": 0, "errors": 0}
    docs = doc["reports"]
    assert [d["name"] for d in docs] == ["tutorial", "heat", "not-a-solution"]
    assert [d["kind"] for d in docs] == ["check", "residual", "residual"]
    assert all(d["met_expectation"] for d in docs)
    assert docs[2]["status"] == "fail" and docs[2]["expect"] == "fail"


@pytest.mark.parametrize(
    "text, needles",
    [
        ("[[check]\nname=1", ["not valid TOML"]),
        ("[[chek]]\nname='a'", ["unknown table [[chek]]", "did you mean [[check]]"]),
        ("[[check]]\nexpr='x'\ndomain=['x=0:1']", ["needs a name"]),
        (
            "[[check]]\nname='a'\nexpr='x'\ndomain=['x=0:1']\npoints_=3",
            ["check 'a'", "unknown key 'points_'", "did you mean 'points'"],
        ),
        (
            "[[check]]\nname='a'\nexpr='x'\ndomain=['x=0:1']\npoints='many'",
            ["check 'a'", "key 'points'", "integer"],
        ),
        ("[[check]]\nname='a'\ndomain=['x=0:1']", ["check 'a'", "missing key 'expr'"]),
        ("[[check]]\nname='a'\nexpr='x +* 1'\ndomain=['x=0:1']", ["check 'a'", "key 'expr'"]),
        ("[[check]]\nname='a'\nexpr='x'\ndomain=['x=1:0']", ["check 'a'", "key 'domain'"]),
        (
            "[[residual]]\nname='r'\npde='f_x'\nsolution='u=x'\ndomain=['x=0:1']",
            ["residual 'r'", "key 'pde'", "not an unknown"],
        ),
        ("[[check]]\nname='a'\nexpr='x'\ndomain=['x=0:1']\nexpect='maybe'", ["key 'expect'"]),
        (
            "[[check]]\nname='a'\nexpr='x'\ndomain=['x=0:1']\n[[check]]\nname='a'\nexpr='x'\n"
            "domain=['x=0:1']",
            ["used twice"],
        ),
        ("", ["contains no checks"]),
    ],
)
def test_file_errors_exit_2_naming_file_check_and_key(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    path = write(tmp_path, text)
    r = run_cli("run", path)
    assert r.exit_code == 2, r.stdout
    assert path in r.stderr
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)
    assert "Traceback" not in r.stderr


def test_an_error_in_a_later_file_runs_nothing(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pinncheck._checkfile as mod

    ran: list[str] = []
    real = mod.run_entries

    def spy(entries, on_result=None):  # type: ignore[no-untyped-def]
        ran.append("ran")
        return real(entries, on_result)

    monkeypatch.setattr(mod, "run_entries", spy)
    good = write(tmp_path, GOOD, "a.toml")
    bad = write(tmp_path, "[[check]]\nname='b'\nexpr='sin x'\ndomain=['x=0:1']", "b.toml")
    r = run_cli("run", good, bad)
    assert r.exit_code == 2 and "sin(x)" in r.stderr
    assert ran == []


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    r = run_cli("run", str(tmp_path / "nope.toml"))
    assert r.exit_code == 2 and "Cannot read" in r.stderr


def test_names_with_rich_markup_are_shown_verbatim(tmp_path: Path) -> None:
    text = "[[check]]\nname = '[/] oops [red]x'\nexpr = 'log(x)'\ndomain = 'x=-1:1'\n"
    r = run_cli("run", write(tmp_path, text, "[x].toml"))
    assert r.exit_code == 1, r.stderr
    assert "[/] oops [red]x" in r.stdout and "[x].toml" in r.stdout
