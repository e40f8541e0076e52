"""Suites: folders, [tool.pinncheck], -k, -x, --shard, table lines, all problems at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli
from pinncheck import CheckFileError, OptionError
from pinncheck._checkfile import load_file, table_lines
from pinncheck._suite import collect, find_config, keyword_matcher, load_suite, parse_shard, shard


def check(name: str, expr: str = "x**2", extra: str = "", domain: str = "x=0:1") -> str:
    """A cheap [[check]] table of 7 lines."""
    return (
        f'[[check]]\nname = "{name}"\nexpr = "{expr}"\ndomain = "{domain}"\npoints = 50\n'
        f"order = 1\n{extra}\n"
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    """A folder: two check files (one nested), a pyproject.toml and a foreign TOML file."""
    write(tmp_path / "b.toml", check("beta") + check("gamma-heat"))
    write(tmp_path / "a" / "z.toml", check("alpha") + check("delta-wave"))
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    write(tmp_path / "a" / "ruff.toml", "line-length = 100\n")
    write(tmp_path / ".hidden" / "c.toml", check("hidden"))
    return tmp_path


# Collecting folders -------------------------------------------------------------------------
def test_folder_collects_check_files_sorted_and_skips_foreign_toml(suite: Path) -> None:
    c = collect([suite])
    assert c.files == [suite / "a" / "z.toml", suite / "b.toml"]
    assert sorted(p.name for p, _ in c.skipped) == ["pyproject.toml", "ruff.toml"]
    assert all("no pinncheck tables" in why for _, why in c.skipped)
    assert c.problems == []


def test_collection_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    for name in ("m.toml", "c.toml", "x.toml", "a.toml"):
        write(tmp_path / name, check(name))
    assert [p.name for p in collect([tmp_path]).files] == ["a.toml", "c.toml", "m.toml", "x.toml"]


def test_a_file_named_twice_is_collected_once(suite: Path) -> None:
    files = collect([suite / "b.toml", suite, suite / "b.toml"]).files
    assert files == [suite / "b.toml", suite / "a" / "z.toml"]


def test_a_misspelled_table_in_a_folder_is_reported_not_skipped(tmp_path: Path) -> None:
    write(tmp_path / "typo.toml", check("a").replace("[[check]]", "[[chek]]"))
    r = run_cli("run", str(tmp_path))
    assert r.exit_code == 2
    assert "unknown table [[chek]]" in r.stderr and "did you mean [[check]]" in r.stderr


def test_folder_without_check_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[project]\n")
    r = run_cli("run", str(tmp_path))
    assert r.exit_code == 2
    assert "No check files in the folder" in r.stderr and "Traceback" not in r.stderr


def test_run_on_a_folder_runs_every_check_and_verbose_says_what_was_skipped(suite: Path) -> None:
    r = run_cli("run", str(suite), "-v")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "4 of 4 checks met their expectation" in r.stdout
    assert "hidden" not in r.stdout
    assert "skipped" in r.stderr and "pyproject.toml: no pinncheck tables" in r.stderr
    quiet = run_cli("run", str(suite))
    assert "skipped" not in quiet.stderr


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    r = run_cli("run", str(tmp_path / "nope"))
    assert r.exit_code == 2 and "Cannot read the check file" in r.stderr


# Every problem of every file at once ----------------------------------------------------------
def test_all_problems_of_all_files_are_reported_in_one_run(tmp_path: Path) -> None:
    write(tmp_path / "1.toml", check("ok") + check("bad-expr", "sin x"))
    write(tmp_path / "2.toml", check("typo", extra="pionts = 3"))
    write(tmp_path / "3.toml", "[[check]\n")
    write(tmp_path / "4.toml", check("fine"))
    r = run_cli("run", str(tmp_path))
    assert r.exit_code == 2
    assert "3 problems in check files" in r.stderr
    for needle in ("check 'bad-expr', key 'expr'", "unknown key 'pionts'", "not valid TOML"):
        assert needle in r.stderr, needle
    assert "met their expectation" not in r.stdout  # nothing ran


def test_problems_carry_the_line_of_their_table(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", check("ok") + check("bad", "sin x") + check("b2", "cos x"))
    with pytest.raises(CheckFileError) as info:
        load_file(path)
    assert [(q.line, "'bad'" in q.message) for q in info.value.problems] == [(8, True), (15, False)]


def test_every_table_of_one_file_is_validated(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", check("a", extra="x = 1") + check("b", extra="y = 2"))
    with pytest.raises(CheckFileError) as info:
        load_file(path)
    assert len(info.value.problems) == 2
    assert "unknown key 'x'" in str(info.value) and "unknown key 'y'" in str(info.value)


# Table lines ----------------------------------------------------------------------------------
def test_table_lines_skip_comments_and_multiline_strings() -> None:
    text = (
        "# [[check]] in a comment\n"  # 1
        "[[check]]\n"  # 2
        'note = """\n'  # 3
        "[[check]]\n"  # 4: text, not a header
        '"""\n'  # 5
        "  [[ check ]]  # spaced\n"  # 6
        "lit = '''\n"  # 7
        "[[residual]]'''\n"  # 8: ends the string; no header
        '[["residual"]]\n'  # 9: quoted name
        'esc = "a \\" [[check]]"\n'  # 10: inside a one-line string
        "[check2]\n"  # 11: a table, not an array of tables
    )
    assert table_lines(text) == {"check": [2, 6], "residual": [9]}


def test_entries_know_the_line_of_their_header(tmp_path: Path) -> None:
    # Table a spans lines 3-11, with a [[check]] inside a multi-line string on line 10.
    text = "# top\n\n" + check("a", extra='expect_diagnosis = """\n[[check]]\n"""') + check("b")
    entries = load_file(write(tmp_path / "c.toml", text))
    assert [(e.name, e.line) for e in entries] == [("a", 3), ("b", 12)]


def test_inline_array_of_tables_points_at_its_key(tmp_path: Path) -> None:
    text = '\ncheck = [{name = "a", expr = "x", domain = "x=0:1"}]\n'
    (entry,) = load_file(write(tmp_path / "c.toml", text))
    assert entry.line == 2


# [tool.pinncheck] -----------------------------------------------------------------------------
def test_config_is_found_upward_and_gives_paths_and_defaults(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.pinncheck]\npaths = ["checks"]\npoints = 77\n')
    deep = tmp_path / "x" / "y"
    deep.mkdir(parents=True)
    config = find_config(deep)
    assert config is not None
    assert config.source == tmp_path / "pyproject.toml"
    assert config.paths == (tmp_path / "checks",)
    assert config.defaults == {"points": 77}


def test_a_pyproject_without_the_table_is_passed_over(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.pinncheck]\nseed = 5\n")
    write(tmp_path / "sub" / "pyproject.toml", "[project]\nname = 'x'\n")
    config = find_config(tmp_path / "sub")
    assert config is not None and config.defaults == {"seed": 5}


def test_a_broken_pyproject_stops_the_search_only_if_it_is_for_pinncheck(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.pinncheck]\nseed = 5\n")
    write(tmp_path / "a" / "pyproject.toml", "[project\n")  # broken, not about pinncheck
    config = find_config(tmp_path / "a")
    assert config is not None and config.source == tmp_path / "pyproject.toml"
    write(tmp_path / "b" / "pyproject.toml", "[tool.pinncheck]\nseed = \n")
    with pytest.raises(CheckFileError, match="is not valid TOML"):
        find_config(tmp_path / "b")


@pytest.mark.parametrize(
    "table, needle",
    [
        ("pionts = 3", "unknown key 'pionts' (did you mean 'points'?)"),
        ("points = '3'", "key 'points': must be an integer"),
        ("paths = 'checks'", "key 'paths': must be a list of paths"),
        ("seed = true", "key 'seed': must be an integer"),
    ],
)
def test_bad_config_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, needle: str
) -> None:
    write(tmp_path / "pyproject.toml", f"[tool.pinncheck]\n{table}\n")
    write(tmp_path / "c.toml", check("a"))
    monkeypatch.chdir(tmp_path)
    r = run_cli("run", "c.toml")
    assert r.exit_code == 2
    assert needle in r.stderr and "[tool.pinncheck]" in r.stderr


def test_run_without_arguments_uses_configured_paths_and_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "pyproject.toml", '[tool.pinncheck]\npaths = ["checks"]\nseed = 4242\n')
    write(
        tmp_path / "checks" / "c.toml", check("from-config") + check("own-seed", extra="seed = 1")
    )
    write(tmp_path / "other.toml", check("not-listed"))
    monkeypatch.chdir(tmp_path / "checks")  # config found from a subfolder
    r = run_cli("run")
    assert r.exit_code == 0, r.stderr
    assert "2 of 2 checks met" in r.stdout and "not-listed" not in r.stdout
    s = load_suite(None, config=find_config())
    seeds = {e.name: e.job.run().options.seed for e in s.entries}
    assert seeds == {"from-config": 4242, "own-seed": 1}


def test_defaults_do_not_touch_probe_tables(tmp_path: Path) -> None:
    text = '[[probe]]\nname = "p"\ntarget = "m.py:f"\ndomain = "x=0:1"\n'
    write(tmp_path / "m.py", "import torch\ndef f(x):\n    return torch.sin(x)\n")
    path = write(tmp_path / "c.toml", text)
    from pinncheck._checkfile import Problem, load_entries

    problems: list[Problem] = []
    (entry,) = load_entries(path, {"points": 5000, "dtype": "float64"}, problems)
    assert problems == []
    report = entry.job.run()
    assert report.n == 64 and report.dtype == "float32"


def test_a_bad_default_names_where_it_comes_from(tmp_path: Path) -> None:
    from pinncheck._checkfile import Problem, load_entries

    problems: list[Problem] = []
    load_entries(write(tmp_path / "c.toml", check("a")), {"dtype": "float16"}, problems)
    (q,) = problems
    assert "key 'dtype'" in q.message and "default from [tool.pinncheck]" in q.message


def test_no_paths_and_no_config_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = run_cli("run")
    assert r.exit_code == 2 and "[tool.pinncheck]" in r.stderr


# -k -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr, names, expected",
    [
        ("heat", ["heat-1d"], True),
        ("HEAT", ["heat-1d"], True),
        ("wave", ["heat-1d"], False),
        ("heat and not wave", ["heat-wave"], False),
        ("heat or wave", ["wave-1d"], True),
        ("not (heat or wave)", ["laplace"], True),
        ("not not heat", ["heat"], True),
        ("heat and (1d or 2d)", ["heat-2d"], True),
        ("heat and 3d", ["heat-2d"], False),
        ("samples/user", ["samples/user_code"], True),
    ],
)
def test_keyword_expressions_as_pytest(expr: str, names: list[str], expected: bool) -> None:
    assert keyword_matcher(expr)(names) is expected


@pytest.mark.parametrize("expr", ["", "heat and", "(heat", "heat)", "or heat", "heat wave", "a$b"])
def test_malformed_keyword_expressions_are_refused(expr: str) -> None:
    with pytest.raises(OptionError, match="-k"):
        keyword_matcher(expr)


def test_k_selects_by_check_name_and_file_name(suite: Path) -> None:
    s = load_suite([suite], keyword="heat or z.toml")
    assert [e.name for e in s.entries] == ["alpha", "delta-wave", "gamma-heat"]
    assert s.deselected == 1 and s.total == 4
    r = run_cli("run", str(suite), "-k", "not heat and not alpha")
    assert r.exit_code == 0
    assert "2 of 2 checks met" in r.stdout and "2 deselected by -k" in r.stdout


def test_k_selecting_nothing_is_a_usage_error(suite: Path) -> None:
    r = run_cli("run", str(suite), "-k", "nothing-like-this")
    assert r.exit_code == 2 and "selects none of the 4 checks" in r.stderr


def test_k_still_validates_every_file(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", check("good"))
    write(tmp_path / "b.toml", check("bad", "sin x"))
    r = run_cli("run", str(tmp_path), "-k", "good")
    assert r.exit_code == 2 and "check 'bad'" in r.stderr


# -x -------------------------------------------------------------------------------------------
def test_exitfirst_stops_after_the_first_miss(tmp_path: Path) -> None:
    text = check("one") + check("miss", "log(x)", domain="x=-1:1") + check("3") + check("4")
    path = write(tmp_path / "c.toml", text)
    r = run_cli("run", str(path), "-x")
    assert r.exit_code == 1
    assert "1 of 2 checks met their expectation" in r.stdout
    assert "stopped after the first miss (-x), 2 not run" in r.stdout
    full = run_cli("run", str(path))
    assert full.exit_code == 1 and "3 of 4 checks met" in full.stdout


def test_exitfirst_runs_everything_when_nothing_misses(suite: Path) -> None:
    r = run_cli("run", str(suite), "-x")
    assert r.exit_code == 0 and "4 of 4 checks met" in r.stdout and "not run" not in r.stdout


# --shard --------------------------------------------------------------------------------------
def test_shards_are_disjoint_cover_everything_and_are_balanced() -> None:
    items = list(range(23))
    parts = [shard(items, k, 5) for k in range(1, 6)]
    assert sorted(i for p in parts for i in p) == items
    assert {len(p) for p in parts} == {4, 5}
    assert shard(items, 2, 5) == [1, 6, 11, 16, 21]


@pytest.mark.parametrize("text", ["0/3", "4/3", "1-3", "a/b", "1/0", "", "1/3/4"])
def test_bad_shard_specs_are_refused(text: str) -> None:
    with pytest.raises(OptionError, match="--shard"):
        parse_shard(text)


def test_shard_option_splits_the_suite(suite: Path) -> None:
    names = []
    for k in (1, 2, 3):
        s = load_suite([suite], shard_spec=f"{k}/3")
        names.append([e.name for e in s.entries])
    assert names == [["alpha", "gamma-heat"], ["delta-wave"], ["beta"]]
    r = run_cli("run", str(suite), "--shard", "2/3")
    assert r.exit_code == 0 and "1 of 1 checks met" in r.stdout and "shard 2/3" in r.stdout
    r = run_cli("run", str(suite), "--shard", "1/2", "-k", "not beta", "-q")
    assert "(1 deselected by -k; shard 1/2 of 3 checks)" in r.stdout


def test_an_empty_shard_passes_and_says_so(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", check("only"))
    r = run_cli("run", str(path), "--shard", "2/2")
    assert r.exit_code == 0
    assert "0 of 0 checks met their expectation (shard 2/2 of 1 checks)" in r.stdout


def test_bad_shard_on_the_command_line(suite: Path) -> None:
    r = run_cli("run", str(suite), "--shard", "3/2")
    assert r.exit_code == 2 and "K/N" in r.stderr
