"""CI formats: JUnit XML, GitHub annotations, the step summary and -q."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers import run_cli
from pinncheck._ci import annotation, escape_data, escape_property

# Five checks, one of each outcome; table headers on lines 1, 7, 13, 21 and 29.
SUITE = """[[check]]
name = "passes"
expr = "x**2"
domain = "x=0:1"
points = 50

[[check]]
name = "undefined, 100%: <&>"
expr = "log(x)"
domain = "x=-1:1"
points = 50

[[residual]]
name = "passes-but-expected-to-fail"
pde = "u_xx + u"
solution = "u = sin(x)"
domain = "x=0:1"
points = 50
expect = "fail"

[[verify]]
name = "user-code-crash"
target = "bad.py:residual"
pde = "u_t - u_xx"
solution = "u = sin(x)*exp(-t)"
domain = ["x = 0:1", "t = 0:1"]
points = 50

[[residual]]
name = "wrong diagnosis \\u001b"
pde = "u_t - u_xx"
solution = "u = exp(-t)*sin(2*x)"
domain = ["x = 0:1", "t = 0:1"]
points = 50
expect = "fail"
expect_diagnosis = "no such words"
"""
LINES = {
    "passes": 1,
    "undefined, 100%: <&>": 7,
    "passes-but-expected-to-fail": 13,
    "user-code-crash": 21,
    "wrong diagnosis \x1b": 29,
}


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "suite.toml").write_text(SUITE)
    (tmp_path / "checks" / "bad.py").write_text(
        "def residual(x, u):\n    raise RuntimeError('boom')\n"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def valid_junit(path: Path) -> ET.Element:
    """Parse a JUnit file and check it against the conventions Jenkins, GitLab and GitHub
    reporters read (the structure pytest writes): returns the <testsuite>."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    (suite,) = root
    assert suite.tag == "testsuite"
    assert set(suite.attrib) >= {"name", "tests", "failures", "errors", "skipped", "time"}
    cases = suite.findall("testcase")
    assert [c.tag for c in suite if c.tag != "properties"] == ["testcase"] * len(cases)
    outcomes = []
    for case in cases:
        assert set(case.attrib) == {"classname", "name", "file", "line", "time"}
        assert float(case.get("time", "x")) >= 0 and int(case.get("line", "x")) >= 1
        kids = list(case)
        assert len(kids) <= 1 and all(k.tag in ("failure", "error", "skipped") for k in kids)
        for k in kids:
            assert k.get("message")
            if k.tag != "skipped":
                assert k.get("type", "").startswith("pinncheck.") and k.text
        outcomes.append(kids[0].tag if kids else "passed")
    for key, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        assert int(suite.get(key, "x")) == outcomes.count(tag)
        assert int(root.get(key, "x")) == outcomes.count(tag)
    assert int(suite.get("tests", "x")) == len(cases) == int(root.get("tests", "x"))
    return suite


# JUnit XML ------------------------------------------------------------------------------------
def test_junit_has_one_testcase_per_check_with_failures_and_errors(suite: Path) -> None:
    # exit 2: one entry's user code crashed (that outranks the missed expectations)
    r = run_cli("run", "checks", "--junit-xml", "out.xml")
    assert r.exit_code == 2
    ts = valid_junit(suite / "out.xml")
    cases = {c.get("name"): c for c in ts.findall("testcase")}
    assert set(cases) == {n.replace("\x1b", "\\x1b") for n in LINES}
    assert {c.get("classname") for c in cases.values()} == {"checks.suite"}
    assert {c.get("file") for c in cases.values()} == {"checks/suite.toml"}
    assert {n: int(c.get("line", 0)) for n, c in cases.items()} == {
        n.replace("\x1b", "\\x1b"): line for n, line in LINES.items()
    }
    assert list(cases["passes"]) == []
    (failure,) = cases["undefined, 100%: <&>"]
    assert failure.tag == "failure"
    assert failure.get("message", "").startswith("expected PASS, got FAIL")
    assert "log(x)" in (failure.text or "")  # the report, as pinncheck prints it
    (unexpected,) = cases["passes-but-expected-to-fail"]
    assert unexpected.tag == "failure" and "expected FAIL, got PASS" in unexpected.get(
        "message", ""
    )
    (error,) = cases["user-code-crash"]
    assert error.tag == "error" and "RuntimeError: boom" in (error.text or "")
    (wrong,) = cases["wrong diagnosis \\x1b"]
    assert wrong.tag == "failure" and "does not mention 'no such words'" in wrong.get("message", "")


def test_junit_marks_checks_not_run_after_x_as_skipped(suite: Path) -> None:
    r = run_cli("run", "checks", "-x", "--junit-xml", "out.xml")
    assert r.exit_code == 1
    ts = valid_junit(suite / "out.xml")
    tags = [(c[0].tag if len(c) else "passed") for c in ts.findall("testcase")]
    assert tags == ["passed", "failure", "skipped", "skipped", "skipped"]
    assert "-x" in (ts.findall("testcase")[2][0].get("message") or "")


def test_junit_of_a_passing_run(suite: Path) -> None:
    r = run_cli("run", "checks", "-k", "passes and not expected", "--junit-xml", "out.xml")
    assert r.exit_code == 0
    ts = valid_junit(suite / "out.xml")
    assert [c.get("name") for c in ts.findall("testcase")] == ["passes"]
    assert ts.get("failures") == ts.get("errors") == "0"


def test_junit_shards_merge_into_the_whole_suite(suite: Path) -> None:
    whole = run_cli("run", "checks", "--junit-xml", "all.xml")
    assert whole.exit_code == 2
    merged: list[tuple[str | None, str | None, str]] = []
    for k in (1, 2, 3):
        run_cli("run", "checks", "--shard", f"{k}/3", "--junit-xml", f"shard-{k}.xml")
        ts = valid_junit(suite / f"shard-{k}.xml")
        prop = ts.find("properties/property[@name='shard']")
        assert prop is not None and prop.get("value") == f"{k}/3"
        merged += [
            (c.get("classname"), c.get("name"), c[0].tag if len(c) else "")
            for c in ts.findall("testcase")
        ]
    expected = [
        (c.get("classname"), c.get("name"), c[0].tag if len(c) else "")
        for c in valid_junit(suite / "all.xml").findall("testcase")
    ]
    assert sorted(merged) == sorted(expected) and len(set(merged)) == len(merged)


def test_junit_on_validation_errors_lists_each_problem(suite: Path) -> None:
    (suite / "checks" / "broken.toml").write_text('[[check]]\nname = "b"\nexpr = "sin x"\n')
    (suite / "checks" / "typo.toml").write_text("[[chek]]\nname = 'c'\n")
    r = run_cli("run", "checks", "--junit-xml", "out.xml")
    assert r.exit_code == 2
    ts = valid_junit(suite / "out.xml")
    cases = ts.findall("testcase")
    assert [(c.get("classname"), c.get("name"), c[0].tag) for c in cases] == [
        ("checks.broken", "validation", "error"),
        ("checks.typo", "validation", "error"),
    ]
    assert "missing key 'domain'" in (cases[0][0].get("message") or "")


def test_unwritable_junit_path_is_a_usage_error(suite: Path) -> None:
    r = run_cli("run", "checks", "-k", "passes and not expected", "--junit-xml", "no/such/x.xml")
    assert r.exit_code == 2
    assert "Cannot write the JUnit XML file no/such/x.xml" in r.stderr
    assert "1 of 1 checks met" in r.stdout  # the results were shown first


# GitHub annotations ---------------------------------------------------------------------------
def test_workflow_command_escaping() -> None:
    assert escape_data("a%b\r\nc:d,e") == "a%25b%0D%0Ac:d,e"
    assert escape_property("a%b\r\nc:d,e") == "a%25b%0D%0Ac%3Ad%2Ce"
    line = annotation("error", "50% off\nnext", Path("x,y.toml"), 3, "t: 1")
    assert line == "::error file=x%2Cy.toml,line=3,title=t%3A 1::50%25 off%0Anext"


def test_github_format_annotates_each_miss_on_its_table(suite: Path) -> None:
    r = run_cli("run", "checks", "--output-format", "github")
    assert r.exit_code == 2
    lines = [line for line in r.stdout.splitlines() if line.startswith("::")]
    assert len(lines) == 4  # one per miss or error; none for the check that passed
    for line in lines:
        assert line.startswith("::error file=checks/suite.toml,line=")
        assert "\n" not in line and "\r" not in line
    assert lines[0].startswith(
        "::error file=checks/suite.toml,line=7,title=pinncheck check undefined%2C 100%25%3A <&>::"
    )
    assert "::expected PASS, got FAIL" in lines[0]
    assert "line=21," in lines[2] and "RuntimeError: boom" in lines[2] and "%0A" in lines[2]
    assert "met their expectation" in r.stdout  # the usual output is still there


def test_github_annotation_paths_are_relative_to_the_workspace(
    suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(suite / "checks")
    r = run_cli("run", "suite.toml", "-f", "github", env={"GITHUB_WORKSPACE": str(suite)})
    assert "::error file=checks/suite.toml,line=7," in r.stdout


def test_github_format_annotates_validation_problems(suite: Path) -> None:
    (suite / "checks" / "suite.toml").write_text(SUITE.replace('expr = "log(x)"', 'expr = "lg x"'))
    r = run_cli("run", "checks", "-f", "github")
    assert r.exit_code == 2
    assert r.stdout.startswith("::error file=checks/suite.toml,line=7,title=pinncheck%3A bad")
    assert "Traceback" not in r.stderr


def test_table_format_prints_no_annotations(suite: Path) -> None:
    r = run_cli("run", "checks")
    assert r.exit_code == 2 and "::error" not in r.stdout


# $GITHUB_STEP_SUMMARY -------------------------------------------------------------------------
def test_step_summary_is_appended_when_set(suite: Path) -> None:
    summary = suite / "summary.md"
    summary.write_text("earlier step\n")
    r = run_cli("run", "checks", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert r.exit_code == 2
    text = summary.read_text()
    assert text.startswith("earlier step\n## pinncheck run: ERROR\n")
    assert "1 of 5 checks met their expectation." in text
    # names are escaped for Markdown and HTML; each miss has a row with its file and line
    assert "| undefined, 100%: &lt;&amp;&gt; | checks/suite.toml:7 | expected PASS" in text
    assert "<details><summary>All checks</summary>" in text
    assert text.count("| checks/suite.toml:") == 4 + 5  # the misses, then every check


def test_step_summary_escapes_table_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text(
        '[[check]]\nname = "a|b *c* `d`"\nexpr = "log(x)"\ndomain = "x=-1:1"\npoints = 20\n'
    )
    run_cli("run", "c.toml", env={"GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")})
    text = (tmp_path / "s.md").read_text()
    assert "| a\\|b \\*c\\* \\`d\\` | c.toml:1 |" in text


def test_no_step_summary_without_the_variable(suite: Path) -> None:
    run_cli("run", "checks", env={"GITHUB_STEP_SUMMARY": ""})
    assert not list(suite.glob("*.md"))


def test_unwritable_step_summary_is_a_warning_only(suite: Path) -> None:
    r = run_cli(
        "run",
        "checks",
        "-k",
        "passes and not expected",
        env={"GITHUB_STEP_SUMMARY": str(suite / "no" / "dir.md")},
    )
    assert r.exit_code == 0
    assert "warning: cannot append the summary" in r.stderr


def test_step_summary_of_a_shard_and_of_validation_errors(suite: Path) -> None:
    summary = suite / "s.md"
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    run_cli("run", "checks", "--shard", "1/2", "-k", "passes and not expected", env=env)
    assert "## pinncheck run (shard 1/2): PASS" in summary.read_text()
    (suite / "checks" / "broken.toml").write_text('[[check]]\nname = "b"\n')
    assert run_cli("run", "checks", env=env).exit_code == 2
    text = summary.read_text()
    assert "## pinncheck run: ERROR" in text and "missing key" in text


# -q -------------------------------------------------------------------------------------------
def test_quiet_prints_only_failures_and_the_final_line(suite: Path) -> None:
    loud = run_cli("run", "checks")
    quiet = run_cli("run", "checks", "-q")
    assert quiet.exit_code == loud.exit_code == 2
    assert "pinncheck run" in loud.stdout and "pinncheck run" not in quiet.stdout  # no table
    assert "passes-but-expected-to-fail" in quiet.stdout  # a miss: shown
    assert "RuntimeError: boom" in quiet.stdout
    assert quiet.stdout.rstrip().splitlines()[-1] == (
        "ERROR: 1 of 5 checks met their expectation; 1 could not run (exit code 2)"
    )


def test_quiet_passing_run_prints_one_line(suite: Path) -> None:
    r = run_cli("run", "checks", "-q", "-k", "passes and not expected")
    assert r.exit_code == 0
    assert r.stdout.strip() == "PASS: 1 of 1 checks met their expectation (4 deselected by -k)"
