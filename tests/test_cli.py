"""The command line: exit codes, output formats, JSON schema, start-up cost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_cli
from pinncheck import ExitCode

SEED = ("check", "x1**2*sin(x2)", "-d", "x1=0:1", "-d", "x2=0:1")
VENV_BIN = Path(sys.executable).parent


def test_exit_codes_are_one_named_enum() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3]


def test_check_passes_with_a_table() -> None:
    r = run_cli(*SEED, "-n", "200")
    assert r.exit_code == 0, r.stderr
    assert "d2/dx1dx2" in r.stdout and "PASS" in r.stdout
    assert "seed: 20240917" in r.stdout and "n: 200" in r.stdout
    assert "\x1b[" not in r.stdout  # piped output is plain


def test_comma_separated_domain() -> None:
    assert run_cli("check", "x1*x2", "-d", "x1=0:1,x2=-pi:pi").exit_code == 0


def test_undefined_derivative_exits_1() -> None:
    r = run_cli("check", "log(x1)", "-d", "x1=-1:1")
    assert r.exit_code == ExitCode.FAILED
    assert "undefined" in r.stdout and "FAIL" in r.stdout


def test_wrong_derivative_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    import pinncheck._check as mod

    real = mod.exact_partials

    def wrong(expr, symbols, targets):  # type: ignore[no-untyped-def]
        out = real(expr, symbols, targets)
        out[(0,)] = out[(0,)] + 1
        return out

    monkeypatch.setattr(mod, "exact_partials", wrong)
    r = run_cli(*SEED, "--format", "json")
    assert r.exit_code == ExitCode.FAILED
    doc = r.json()
    assert doc["status"] == "fail"
    assert [d["status"] for d in doc["derivatives"]] == ["fail", "pass", "pass", "pass", "pass"]


def test_singular_warning_goes_to_stderr() -> None:
    r = run_cli("check", "1/x1", "-d", "x1=-1:1")
    assert "singular" in r.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (("check", "__import__('os')", "-d", "x=0:1"), "not allowed"),
        (("check", "2x1", "-d", "x1=0:1"), "2*x1"),
        (("check", "x1", "-d", "x1=1:0"), "empty"),
        (("check", "x1", "-d", "x1=0:inf"), "upper bound of x1 'inf': unknown name"),
        (("check", "x1", "-d", "x1=0:1e400"), "not a finite number"),
        (("check", "x1", "-d", "x1=0:1", "-d", "x1=0:2"), "twice"),
        (("check", "x1", "-d", "sin=0:1"), "sin"),
        (("check", "x1*y", "-d", "x1=0:1"), "-d y=LO:HI"),
        (("check", "x1", "-d", "x1=0:1", "-n", "0"), "points"),
        (("check", "x1", "-d", "x1=0:1", "--dtype", "float16"), "float16"),
        (("check", "x1", "-d", "x1=0:1", "--order", "0"), "order"),
        (("check", "x1", "-d", "x1"), "NAME=LO:HI"),
    ],
)
def test_bad_input_exits_2_with_one_message(args: tuple[str, ...], needle: str) -> None:
    r = run_cli(*args)
    assert r.exit_code == ExitCode.USAGE, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stderr.count("error:") == 1


def test_missing_cuda_is_a_usage_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    r = run_cli(*SEED, "--device", "cuda")
    assert r.exit_code == ExitCode.USAGE and "CUDA is not available" in r.stderr


def test_bad_option_type_exits_2() -> None:
    assert run_cli(*SEED, "-n", "many").exit_code == ExitCode.USAGE


def test_internal_error_exits_3_without_traceback_unless_debug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pinncheck._check as mod

    def broken(*a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("kaboom")

    monkeypatch.setattr(mod, "run_plan", broken)
    r = run_cli(*SEED)
    assert r.exit_code == ExitCode.INTERNAL
    assert "kaboom" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(*SEED, "--debug")
    assert r.exit_code == ExitCode.INTERNAL and "Traceback" in r.stderr


def test_json_schema() -> None:
    r = run_cli(*SEED, "--format", "json", "-n", "100", "--seed", "3")
    assert r.exit_code == 0
    doc = r.json()
    for key in (
        "pinncheck",
        "kind",
        "status",
        "expression",
        "variables",
        "domain",
        "n",
        "seed",
        "device",
        "dtype",
        "torch",
        "tolerances",
        "derivatives",
        "timings",
    ):
        assert key in doc, key
    assert doc["kind"] == "check" and doc["status"] == "pass"
    assert doc["variables"] == ["x1", "x2"] and doc["domain"] == {"x1": [0, 1], "x2": [0, 1]}
    assert (doc["n"], doc["seed"], doc["device"], doc["dtype"]) == (100, 3, "cpu", "float64")
    assert len(doc["derivatives"]) == 5
    mixed = doc["derivatives"][3]
    for key in (
        "name",
        "wrt",
        "order",
        "exact",
        "max_abs_error",
        "max_rel_error",
        "rms_error",
        "nonfinite",
        "worst_point",
        "status",
    ):
        assert key in mixed, key
    assert mixed["wrt"] == ["x1", "x2"] and mixed["order"] == 2 and mixed["status"] == "pass"
    assert set(mixed["worst_point"]) == {"index", "point", "autograd", "exact"}
    assert set(mixed["worst_point"]["point"]) == {"x1", "x2"}
    assert doc["schema_version"] == 1
    for key in ("autograd_s", "exact_s", "total_s"):
        assert doc["timings"][key] >= 0


def test_json_error_document_on_bad_input() -> None:
    r = run_cli("check", "x1 +", "-d", "x1=0:1", "--format", "json")
    assert r.exit_code == 2
    assert r.json()["status"] == "error"


def _run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    exe = VENV_BIN / "pinncheck"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pinncheck"]
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_console_script_end_to_end() -> None:
    p = _run_script(*SEED, "-n", "100", "--format", "json")
    assert p.returncode == 0, p.stderr
    assert '"status": "pass"' in p.stdout
    p = _run_script("check", "log(x1)", "-d", "x1=-1:1")
    assert p.returncode == 1
    p = _run_script("check", "x1", "-d", "x1=2:1")
    assert p.returncode == 2 and "Traceback" not in p.stderr


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_do_not_import_torch_or_sympy(flag: str) -> None:
    code = (
        "import sys\nfrom pinncheck.cli import app\n"
        f"try:\n    app([{flag!r}])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('torch', 'sympy', 'markdown_it') if m in sys.modules]\n"
        "print('HEAVY', bad)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in p.stdout, p.stdout + p.stderr


def test_version_prints_version() -> None:
    import pinncheck

    r = run_cli("--version")
    assert r.exit_code == 0 and pinncheck.__version__ in r.stdout


def test_bad_expression_is_refused_before_torch_is_imported() -> None:
    code = (
        "import sys\nfrom pinncheck.cli import app\n"
        "try:\n    app(['check', '10**10**10', '-d', 'x1=0:1'])\n"
        "except SystemExit as e:\n    print('CODE', e.code)\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "CODE 2" in p.stdout and "TORCH False" in p.stdout, p.stdout + p.stderr


def test_expression_with_a_leading_minus_gets_a_clear_usage_error() -> None:
    p = _run_script("check", "-x1**2", "-d", "x1=0:1")
    assert p.returncode == ExitCode.USAGE
    assert "is not an option" in p.stderr and "starts with a minus sign" in p.stderr
    assert "'(-x1**2)'" in p.stderr
    assert "Traceback" not in p.stderr
    # The ways the message suggests both work.
    assert run_cli("check", "(-x1**2)", "-d", "x1=0:1").exit_code == 0
    assert run_cli("check", "-d", "x1=0:1", "--", "-x1**2").exit_code == 0


@pytest.mark.parametrize(
    ("argv", "found"),
    [
        (["check", "-x1", "-d", "x1=0:1"], "-x1"),
        (["check", "-d", "x1=0:1", "-n", "10", "-1"], "-1"),
        (["check", "x1", "-dx1=0:1", "-n100"], None),  # values attached to short options
        (["check", "x1", "--domain", "x1=0:1", "--seed", "-3"], None),  # an option's value
        (["check", "-d", "x1=0:1", "--", "-x1"], None),
        (["check", "x1", "--bogus"], None),  # left to the parser's own message
        (["residual", "--pde", "-u_t = u_xx"], None),
    ],
)
def test_leading_minus_detection(argv: list[str], found: str | None) -> None:
    from pinncheck.cli import _leading_minus

    assert _leading_minus(["pinncheck", *argv]) == found
