"""Output that survives logs: widths, encodings, closed or full stdout, control characters;
and the small traps of option values, help and usage lines."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_cli
from pinncheck import ExitCode

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SEED = ("check", "x1**2*sin(x2)", "-d", "x1=0:1", "-d", "x2=0:1")
SWAPPED = (
    "verify",
    "samples/user_code/heat_swapped_column.py:residual",
    "--pde",
    "u_t - nu*u_xx",
    "-s",
    "u = sin(2*x + 1)*exp(-t) + x**3*t",
    "-d",
    "x=0:1,t=0:1",
    "-p",
    "nu=0.1",
    "-n",
    "100",
)


def _script() -> list[str]:
    exe = VENV_BIN / "pinncheck"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "pinncheck"]


def _run(
    *args: str, env: dict[str, str] | None = None, shell_tail: str = ""
) -> subprocess.CompletedProcess[str]:
    """The console script, through bash so that a test can pipe or redirect its stdout."""
    cmd = " ".join(_quote(a) for a in [*_script(), *args]) + shell_tail
    return subprocess.run(
        ["bash", "-c", cmd],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
        encoding=(env or {}).get("PYTHONIOENCODING", "utf-8"),
    )


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# Widths -------------------------------------------------------------------------------------
def test_piped_tables_keep_every_name_and_number_whatever_columns_says() -> None:
    r = run_cli(*SEED, "--order", "3", env={"COLUMNS": "40"})
    assert r.exit_code == 0
    for name in ("d3/dx1^2dx2", "d3/dx1dx2^2", "non-finite", "derivative"):
        assert name in r.stdout
    assert "…" not in r.stdout
    # One line per derivative: 9 partials up to order 3, each on its own row.
    rows = [line for line in r.stdout.splitlines() if line.startswith("│ d")]
    assert len(rows) == 9


def test_run_table_shows_full_numbers_and_names(tmp_path: Path) -> None:
    long_name = "a-rather-long-check-name-that-used-to-be-cut-in-logs"
    path = tmp_path / "checks.toml"
    path.write_text(
        f'[[check]]\nname = "{long_name}"\nexpr = "exp(x)*sin(3*x)"\ndomain = "x=0:1"\n'
        "points = 50\n"
    )
    r = run_cli("run", str(path), env={"COLUMNS": "40"})
    assert r.exit_code == 0, r.stdout
    assert long_name in r.stdout
    row = next(line for line in r.stdout.splitlines() if long_name in line)
    assert "worst rel. error" in r.stdout
    assert not [line for line in r.stdout.splitlines() if line.endswith(" ")]
    # The worst error is printed whole: mantissa and exponent (or an exact 0).
    import re

    assert re.search(r"\s(\d\.\d\de[+-]\d\d|0)\s", row), row


def test_a_terminal_too_narrow_for_a_table_gets_it_whole() -> None:
    from rich.console import Console
    from rich.table import Table

    from pinncheck._output import print_table
    from pinncheck._render import number_column

    table = Table()
    table.add_column("name", overflow="fold")
    for header in ("max abs err", "max rel err", "rms err"):
        number_column(table, header)
    table.add_row("d2/dx1dx2", "1.23e-05", "4.56e-07", "7.89e-08")
    buf = io.StringIO()
    console = Console(file=buf, width=30, force_terminal=True, color_system=None)
    print_table(console, table)
    text = buf.getvalue()
    for number in ("1.23e-05", "4.56e-07", "7.89e-08"):
        assert number in text
    assert "…" not in text
    # A table that fits is fitted to the terminal.
    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=True, color_system=None)
    print_table(console, table)
    assert max(len(line) for line in buf.getvalue().splitlines()) <= 200


# Encodings ----------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
def test_verify_on_a_narrow_encoding_uses_stand_ins_and_keeps_its_exit_code(
    encoding: str,
) -> None:
    p = _run(*SWAPPED, env={"PYTHONIOENCODING": encoding})
    assert p.returncode == ExitCode.FAILED, p.stderr
    assert "Traceback" not in p.stderr and "UnicodeEncodeError" not in p.stderr
    assert "your residual ~= 1.0" in p.stdout
    if encoding == "ascii":
        assert "1.0*u_x - 0.1*u_tt" in p.stdout
        p.stdout.encode("ascii")  # nothing but ASCII


def test_check_passes_on_an_ascii_stream() -> None:
    p = _run(*SEED, "-n", "50", env={"PYTHONIOENCODING": "ascii"})
    assert p.returncode == 0, p.stderr
    assert "PASS" in p.stdout and "+---" in p.stdout  # ASCII box


def test_ascii_stand_ins() -> None:
    from pinncheck._text import use_ascii_fallback

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    use_ascii_fallback(stream)
    stream.write("u ≈ 1.0·u_x − 0.1·u_tt … µ \u4e2d")
    stream.flush()
    assert raw.getvalue() == b"u ~= 1.0*u_x - 0.1*u_tt ... u \\u4e2d"
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    use_ascii_fallback(utf8)
    assert utf8.errors == "strict"  # left alone


# Closed and unwritable stdout ---------------------------------------------------------------
def test_a_reader_closing_the_pipe_ends_quietly_with_141() -> None:
    p = _run(*SEED, "--order", "4", shell_tail=" | head -2; exit ${PIPESTATUS[0]}")
    assert p.returncode == 141, p.stderr
    assert p.stderr == ""
    assert p.stdout.splitlines()[0].startswith("pinncheck check")


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_full_stdout_is_one_line_on_stderr_and_exit_2(fmt: str) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    p = _run(*SEED, "-n", "50", "-f", fmt, shell_tail=" > /dev/full")
    assert p.returncode == 2
    assert p.stderr.strip() == "error: cannot write to standard output: No space left on device"


def test_an_unwritable_stderr_changes_nothing() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    warned = _run("check", "log(x1)", "-d", "x1=-1:1", "-n", "20", shell_tail=" 2> /dev/full")
    assert warned.returncode == ExitCode.FAILED and "undefined" in warned.stdout
    refused = _run("check", "x1 +", "-d", "x1=0:1", shell_tail=" 2> /dev/full")
    assert refused.returncode == ExitCode.USAGE


def test_a_closed_stdout_is_one_line_on_stderr_and_exit_2() -> None:
    p = _run(*SEED, "-n", "50", "-f", "json", shell_tail=" >&-")
    assert p.returncode == 2
    assert p.stderr.strip() == "error: cannot write to standard output: it is closed"


# Control characters -------------------------------------------------------------------------
def test_control_characters_in_user_strings_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "checks.toml"
    path.write_text(
        '[[check]]\nname = "evil\\u001b]0;pwned\\u0007\\u001b[2J"\nexpr = "log(x)"\n'
        'domain = "x=-1:1"\npoints = 20\n'
    )
    r = run_cli("run", str(path))
    assert r.exit_code == ExitCode.FAILED
    out = r.stdout + r.stderr
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J" in r.stdout
    # JSON escapes them its own way.
    doc = run_cli("run", str(path), "-f", "json").json()
    assert doc["reports"][0]["name"] == "evil\x1b]0;pwned\x07\x1b[2J"


def test_control_characters_in_error_messages_are_escaped() -> None:
    r = run_cli("check", "x1 + \x1b[2J", "-d", "x1=0:1")
    assert r.exit_code == ExitCode.USAGE
    assert "\x1b" not in r.stderr


def test_printable() -> None:
    from pinncheck._text import printable

    assert printable("plain é ü 中") == "plain é ü 中"
    assert printable("a\x1b[31mb\x07") == "a\\x1b[31mb\\x07"
    assert printable("line\nbreak\ttab") == "line\\x0abreak\\x09tab"
    assert printable("rtl\u202eoverride") == "rtl\\u202eoverride"


# Option values, help and usage --------------------------------------------------------------
@pytest.mark.parametrize("value", ["1e3", "1_000", "1000", "1.0e3"])
def test_points_accept_integers_written_as_python_does(value: str) -> None:
    r = run_cli(*SEED, "-n", value, "-f", "json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["n"] == 1000


@pytest.mark.parametrize(
    "args, needle",
    [
        (("-n", "1.5"), "'1.5' is not a whole number; write it as 1000, 1e6 or 1_000_000"),
        (("-n", "many"), "'many' is not a whole number"),
        (("--seed", "1e400"), "'1e400' is not a whole number"),
        (("--rtol", "tight"), "'tight' is not a number"),
        (("-f", "yaml"), "unknown format 'yaml'; use table or json"),
        (("--order", "two"), "'two' is not a whole number"),
    ],
)
def test_bad_option_values_are_refused_in_pinncheck_words(
    args: tuple[str, ...], needle: str
) -> None:
    r = run_cli(*SEED, *args)
    assert r.exit_code == ExitCode.USAGE
    assert needle in r.stderr
    for foreign in ("Value error", "Input should be", "unable to parse", "valid integer"):
        assert foreign not in r.stderr


@pytest.mark.parametrize(
    "command", [(), ("check",), ("residual",), ("run",), ("verify",), ("probe",)]
)
def test_dash_h_is_help_everywhere(command: tuple[str, ...]) -> None:
    r = run_cli(*command, "-h")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("Usage: pinncheck")


def test_dash_h_is_help_for_the_console_script_too() -> None:
    p = _run("check", "-h")
    assert p.returncode == 0 and p.stdout.startswith("Usage: pinncheck check [OPTIONS] EXPR")


@pytest.mark.parametrize(
    "command, usage",
    [
        ("check", "Usage: pinncheck check [OPTIONS] EXPR\n"),
        ("run", "Usage: pinncheck run [OPTIONS] [FILES...]\n"),
        ("verify", "Usage: pinncheck verify [OPTIONS] TARGET\n"),
        ("probe", "Usage: pinncheck probe [OPTIONS] TARGET\n"),
    ],
)
def test_usage_lines_name_arguments_plainly(command: str, usage: str) -> None:
    text = run_cli(command, "--help").stdout
    assert text.startswith(usage)
    assert "{" not in text.split("\n")[0] and "<list[str]>" not in text and "<str>" not in text


def test_residual_help_shows_option_metavars() -> None:
    text = run_cli("residual", "--help").stdout
    assert "--pde TEXT" in text and "<list[str]>" not in text and "<float>" not in text


def test_probe_has_jacobian_points() -> None:
    target = "samples/user_code/models.py:pointwise_mlp"
    r = run_cli("probe", target, "-d", "x=0:1,t=0:1", "--jacobian-points", "5", "-f", "json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["jacobian_points"] == 5
    r = run_cli("probe", target, "-d", "x=0:1,t=0:1", "--jacobian-points", "1")
    assert r.exit_code == ExitCode.USAGE and "jacobian_points" in r.stderr


def test_an_unused_parameter_gets_a_warning() -> None:
    args = ("--pde", "u_t - nu*u_xx", "-s", "u = exp(-nu*pi**2*t)*sin(pi*x)", "-d", "x=0:1,t=0:1")
    r = run_cli("residual", *args, "-p", "nu=0.1", "-p", "nuu=2", "-p", "k=2*nu", "-n", "50")
    assert r.exit_code == 0, r.stderr
    assert "The parameter nuu is not used" in r.stderr
    assert "The parameter k is not used" in r.stderr
    assert "The parameter nu is" not in r.stderr  # used by the PDE
    # A parameter used only through another used one counts as used.
    chained = ("--pde", "u_t - lam*u_xx", "-s", "u = exp(-lam*pi**2*t)*sin(pi*x)")
    r = run_cli("residual", *chained, *args[4:], "-p", "nu=0.1", "-p", "lam=nu", "-n", "50")
    assert r.exit_code == 0, r.stderr
    assert "is not used" not in r.stderr


def test_every_message_character_prints_on_a_cp1252_console() -> None:
    # A character outside cp1252 in an output string needs an ASCII stand-in, or a CI log on
    # Windows shows an escape. Exempt: input-side tables (what the parser accepts, the XML
    # characters _ci removes) and the terminal map's block marks (_termmap.UNICODE), printed
    # only where the console's encoding carries them (else their ASCII twin, see marks_for).
    import ast
    from pathlib import Path

    import pinncheck
    from pinncheck._text import ASCII_STAND_INS

    exempt = {"_ci.py", "_parse_names.py"}
    missing = set()
    for path in Path(pinncheck.__file__).parent.glob("*.py"):
        if path.name in exempt:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }  # (docstrings)
        if path.name == "_termmap.py":
            marks = [
                node.value
                for node in tree.body
                if isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == ["UNICODE"]
            ]
            assert len(marks) == 1
            skipped |= {id(node) for node in ast.walk(marks[0])}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) in skipped:
                    continue
                for char in node.value:
                    if char not in ASCII_STAND_INS and not _cp1252(char):
                        missing.add((path.name, node.lineno, char))
    assert not missing


def _cp1252(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True
