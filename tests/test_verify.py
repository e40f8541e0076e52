"""pinncheck verify: users' own residual code against the exact residual, with a diagnosis."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import HEAT, HEAT_ARGS, run_cli
from pinncheck import CheckFileError, ExitCode, UserCodeError, verify
from pinncheck._checkfile import load_file

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "user_code"


def heat(target: str, **kw: object) -> object:
    return verify(target, base_dir=SAMPLES, **HEAT, **kw)  # type: ignore[arg-type]


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


# The samples ---------------------------------------------------------------------------------


def test_correct_sample_passes_via_api_and_cli() -> None:
    report = heat("heat_correct.py:residual")
    assert report.status == "pass" and report.kind == "verify"
    eq = report.equations[0]
    assert eq.stats.count == 1000 and eq.failing_points == 0
    assert eq.stats.max_abs_error < 1e-13 and eq.stats.max_abs_exact > 0.5
    assert report.diagnosis == [] and report.warnings == []
    r = run_cli("verify", str(SAMPLES / "heat_correct.py") + ":residual", *HEAT_ARGS)
    assert r.exit_code == ExitCode.OK, r.stdout + r.stderr
    assert "PASS" in r.stdout and "u_t - nu*u_xx" in r.stdout


def test_correct_sample_passes_in_float32() -> None:
    assert heat("heat_correct.py:residual", dtype="float32").status == "pass"


@pytest.mark.parametrize(
    "target, keyword, coefficients",
    [
        ("heat_swapped_column.py:residual", "column", {"u_x": 1.0, "u_tt": -0.1}),
        ("heat_missing_create_graph.py:residual", "create_graph", {"u_t": 1.0}),
        ("heat_slice_not_on_graph.py:residual", "not on the graph", {}),
    ],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_buggy_sample_fails_with_its_diagnosis(
    target: str, keyword: str, coefficients: dict[str, float], dtype: str
) -> None:
    report = heat(target, dtype=dtype)
    assert report.status == "fail"
    text = "\n".join(report.diagnosis)
    assert keyword in text
    fit = report.equations[0].fit
    assert fit is not None and fit["accepted"]
    assert set(fit["coefficients"]) == set(coefficients)
    for label, value in coefficients.items():
        assert fit["coefficients"][label] == pytest.approx(value, rel=1e-3)
    assert fit["expected"] == "1.0·u_t − 0.1·u_xx"


def test_swapped_column_names_the_formula_and_the_columns() -> None:
    report = heat("heat_swapped_column.py:residual")
    text = "\n".join(report.diagnosis)
    assert "your residual ≈ 1.0·u_x − 0.1·u_tt; expected 1.0·u_t − 0.1·u_xx" in text
    assert "columns of x and t are swapped" in text and "(x=0, t=1)" in text


def test_missing_create_graph_has_grad_call_evidence() -> None:
    text = "\n".join(heat("heat_missing_create_graph.py:residual").diagnosis)
    assert "your residual ≈ 1.0·u_t;" in text and "u_xx are zero" in text
    assert "1 of your 1 torch.autograd.grad call(s) ran without create_graph=True" in text


def test_slice_not_on_graph_has_none_gradient_evidence() -> None:
    text = "\n".join(heat("heat_slice_not_on_graph.py:residual").diagnosis)
    assert "identically 0" in text and "not on the graph of u" in text
    assert "returned None for 2 input(s) of shape (n, 1)" in text


def test_worst_points_are_where_the_values_differ() -> None:
    # The swapped sample computes u_x - 0.1*u_tt; the exact residual is u_t - 0.1*u_xx.
    report = heat("heat_swapped_column.py:residual")
    eq = report.equations[0]
    assert eq.failing_points == 1000
    assert report.diagnosis[0].startswith("eq1 (u_t - nu*u_xx) disagrees at 1000 of 1000 points")
    assert len(eq.worst_points) == 3
    errors = []
    for p in eq.worst_points:
        x, t = p["point"]["x"], p["point"]["t"]
        s, c = math.sin(2 * x + 1) * math.exp(-t), math.cos(2 * x + 1) * math.exp(-t)
        assert 0 <= x <= 1 and 0 <= t <= 1
        assert p["exact"] == pytest.approx(-0.6 * s + x**3 - 0.6 * x * t, abs=1e-12)
        assert p["user"] == pytest.approx(2 * c + 3 * x**2 * t - 0.1 * s, abs=1e-12)
        errors.append(abs(p["user"] - p["exact"]))
    assert errors == sorted(errors, reverse=True)
    assert errors[0] == pytest.approx(eq.stats.max_abs_error)


def test_buggy_sample_via_cli_exits_1_and_prints_the_diagnosis() -> None:
    r = run_cli("verify", str(SAMPLES / "heat_swapped_column.py") + ":residual", *HEAT_ARGS)
    assert r.exit_code == ExitCode.FAILED
    assert "diagnosis:" in r.stdout and "1.0·u_x − 0.1·u_tt" in r.stdout
    assert "FAIL" in r.stdout and "Traceback" not in r.stdout + r.stderr


def test_json_follows_the_residual_shape() -> None:
    target = str(SAMPLES / "heat_missing_create_graph.py") + ":residual"
    r = run_cli("verify", target, *HEAT_ARGS, "--format", "json", "-n", "200", "--seed", "5")
    assert r.exit_code == ExitCode.FAILED
    doc = r.json()
    for key in (
        "pinncheck",
        "torch",
        "kind",
        "status",
        "target",
        "pdes",
        "solutions",
        "params",
        "variables",
        "domain",
        "n",
        "seed",
        "device",
        "dtype",
        "tolerances",
        "equations",
        "diagnosis",
        "warnings",
        "timings",
    ):
        assert key in doc, key
    assert (doc["kind"], doc["status"], doc["n"], doc["seed"]) == ("verify", "fail", 200, 5)
    assert doc["params"] == {"nu": 0.1} and doc["domain"] == {"x": [0, 1], "t": [0, 1]}
    (eq,) = doc["equations"]
    for key in (
        "equation",
        "max_abs_error",
        "max_abs_residual_user",
        "max_abs_residual_exact",
        "term_scale",
        "worst_point",
        "worst_points",
        "failing_points",
        "status",
        "diagnosis",
        "fit",
    ):
        assert key in eq, key
    assert eq["status"] == "fail" and eq["failing_points"] == 200
    assert eq["fit"]["formula"] == "1.0·u_t" and eq["fit"]["accepted"] is True
    assert any("create_graph" in line for line in eq["diagnosis"])
    assert set(eq["worst_point"]) == {"index", "point", "autograd", "exact"}
    assert set(eq["worst_point"]["point"]) == {"x", "t"}


# Check files ---------------------------------------------------------------------------------


def test_sample_check_file_meets_every_expectation() -> None:
    r = run_cli("run", str(SAMPLES / "checks.toml"))
    assert r.exit_code == ExitCode.OK, r.stdout
    assert "19 of 19 checks met their expectation" in r.stdout


def heat_keys(target: str) -> str:
    """The keys of a [[verify]] table of the heat sample's PDE, for ``target``."""
    return textwrap.dedent(f"""
        target = "{target}"
        pde = "u_t - nu*u_xx"
        solution = "u = sin(2*x + 1)*exp(-t) + x**3*t"
        param = ["nu = 0.1"]
        domain = ["x = 0:1", "t = 0:1"]
    """)


def test_a_flipped_expectation_is_missed(tmp_path: Path) -> None:
    common = heat_keys((SAMPLES / "heat_swapped_column.py").as_posix() + ":residual")
    path = write(
        tmp_path,
        "flipped.toml",
        f"""
        [[verify]]
        name = "claims-pass"
        expect = "pass"
        {textwrap.dedent(common)}
        [[verify]]
        name = "wrong-diagnosis"
        expect = "fail"
        expect_diagnosis = "create_graph"
        {textwrap.dedent(common)}
        [[verify]]
        name = "right"
        expect = "fail"
        expect_diagnosis = "COLUMN"
        {textwrap.dedent(common)}
        """,
    )
    r = run_cli("run", str(path))
    assert r.exit_code == ExitCode.FAILED
    assert "expected the diagnosis to mention 'create_graph'" in r.stdout
    doc = run_cli("run", str(path), "--format", "json").json()
    assert [d["met_expectation"] for d in doc["reports"]] == [False, False, True]
    assert doc["status"] == "fail" and doc["counts"]["missed"] == 2


def test_check_file_targets_are_relative_to_the_file_and_validated_first(tmp_path: Path) -> None:
    marker = tmp_path / "imported.txt"
    write(
        tmp_path,
        "side_effect.py",
        f"""
        open({str(marker)!r}, "w").write("ran")

        def residual(x, u):
            return u[:, 0]
        """,
    )
    path = write(
        tmp_path,
        "checks.toml",
        """
        [[verify]]
        name = "fine"
        target = "side_effect.py:residual"
        pde = "u_t"
        solution = "u = x*t"
        domain = ["x = 0:1", "t = 0:1"]

        [[verify]]
        name = "bad-target"
        target = "missing.py:residual"
        pde = "u_t"
        solution = "u = x*t"
        domain = ["x = 0:1", "t = 0:1"]
        """,
    )
    with pytest.raises(CheckFileError, match=r"verify 'bad-target', key 'target'.*does not exist"):
        load_file(path)
    assert not marker.exists()  # validation imports nothing
    r = run_cli("run", str(path))
    assert r.exit_code == ExitCode.USAGE and "missing.py" in r.stderr


# The user's code failing ---------------------------------------------------------------------


def test_exception_in_user_code_exits_2_with_the_users_traceback(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "boom.py",
        """
        def helper(u):
            raise ValueError("boom in user code")

        def residual(x, u):
            return helper(u)
        """,
    )
    r = run_cli("verify", f"{path}:residual", *HEAT_ARGS)
    assert r.exit_code == ExitCode.USAGE
    assert "Traceback (most recent call last)" in r.stderr
    assert str(path) in r.stderr and "in helper" in r.stderr
    assert "ValueError: boom in user code" in r.stderr
    assert "pinncheck/_" not in r.stderr  # pinncheck's own frames are not shown
    assert r.stderr.count("error:") == 1


def test_exception_while_importing_exits_2_with_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", "import math\nvalue = 1 / 0\n")
    r = run_cli("verify", f"{path}:residual", *HEAT_ARGS)
    assert r.exit_code == ExitCode.USAGE
    assert "ZeroDivisionError" in r.stderr and "line 2" in r.stderr
    assert "Importing" in r.stderr and "pinncheck/_" not in r.stderr


def test_autograd_error_gets_a_hint(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "no_graph.py",
        """
        import torch

        def residual(x, u):
            g = torch.autograd.grad(u, x, torch.ones_like(u))[0]  # no create_graph
            u_xx = torch.autograd.grad(g[:, 0:1], x, torch.ones_like(u))[0][:, 0:1]
            return g[:, 1:2] - 0.1 * u_xx
        """,
    )
    with pytest.raises(UserCodeError, match="create_graph=True") as info:
        verify(f"{path}:residual", **HEAT)  # type: ignore[arg-type]
    assert info.value.details is not None and "no_graph.py" in info.value.details


@pytest.mark.parametrize(
    "target, needle",
    [
        ("heat_correct.py", "Cannot read the target"),
        ("heat_correct.py:", "Cannot read the target"),
        ("heat_correct.py:1abc", "not a Python name"),
        ("missing_file.py:residual", "does not exist"),
        ("sub/data.txt:residual", "not a .py file"),
        ("heat_correct.py:residul", "did you mean 'residual'"),
        ("heat_correct.py:NU", "not a function f(x, u)"),
        ("no_such_package_xyz.mod:residual", "Cannot import the module"),
        ("bad name:residual", "neither a .py file nor a dotted module"),
    ],
)
def test_bad_targets_exit_2_with_one_message(target: str, needle: str) -> None:
    t = target if not target.startswith("heat") else str(SAMPLES / target)
    r = run_cli("verify", t, *HEAT_ARGS)
    assert r.exit_code == ExitCode.USAGE, r.stdout + r.stderr
    assert needle in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stderr.count("error:") == 1


@pytest.mark.parametrize(
    "body, needle",
    [
        ("return torch.zeros(x.shape[0], 3)", "returned 3 equation(s) but 2 PDE(s)"),
        ("return torch.zeros(x.shape[0] + 1)", "shape (1001,)"),
        ("return 0.0", "returned a float, not a tensor"),
        ("return [u[:, 0], 'nope']", "item 1 is a str"),
        ("return [u[:, 0]]", "returned 1 equation(s) but 2 PDE(s)"),
    ],
)
def test_wrong_output_shape_exits_2(tmp_path: Path, body: str, needle: str) -> None:
    path = write(
        tmp_path,
        "shape.py",
        f"import torch\n\ndef residual(x, u):\n    {body}\n",
    )
    pdes = ("--pde", "u_t - v_x", "--pde", "v_t - u_x", "-s", "u=x*t", "-s", "v=x+t")
    r = run_cli("verify", f"{path}:residual", *pdes, "-d", "x=0:1", "-d", "t=0:1")
    assert r.exit_code == ExitCode.USAGE, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


# Systems and other forms ---------------------------------------------------------------------

SYSTEM = dict(
    pde=["u_t - v_x", "v_t - u_x"],
    solution=["u = sin(x)*exp(-t) + x*t**2", "v = cos(2*x + t) + x**2*t"],
    domain=["x=0:1", "t=0:1"],
)
SYSTEM_CODE = """
import torch

def d(y, x):
    return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]

def parts(x, u):
    du, dv = d(u[:, 0:1], x), d(u[:, 1:2], x)
    return du[:, 1:2] - dv[:, 0:1], dv[:, 1:2] - du[:, 0:1]

def as_list(x, u):
    return list(parts(x, u))

def as_tuple_1d(x, u):
    a, b = parts(x, u)
    return a[:, 0], b[:, 0]

def as_matrix(x, u):
    return torch.cat(parts(x, u), dim=1)

def swapped_order(x, u):
    a, b = parts(x, u)
    return [b, a]
"""


@pytest.mark.parametrize("name", ["as_list", "as_tuple_1d", "as_matrix"])
def test_two_equation_system_in_every_return_form(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "system.py", SYSTEM_CODE)
    report = verify(f"{path}:{name}", n=300, **SYSTEM)  # type: ignore[arg-type]
    assert report.status == "pass"
    assert [e.status for e in report.equations] == ["pass", "pass"]


def test_system_equations_in_the_wrong_order(tmp_path: Path) -> None:
    path = write(tmp_path, "system.py", SYSTEM_CODE)
    report = verify(f"{path}:swapped_order", n=300, **SYSTEM)  # type: ignore[arg-type]
    assert [e.status for e in report.equations] == ["fail", "fail"]
    text = "\n".join(report.diagnosis)
    assert "that is PDE 2 (v_t - u_x)" in text and "that is PDE 1 (u_t - v_x)" in text
    assert "different order than the --pde options" in text


BURGERS = dict(
    pde="u_t + u*u_x - nu*u_xx",
    solution="u = sin(2*x + 1)*exp(-t) + x**3*t",
    domain=["x=0:1", "t=0:1"],
    param=["nu=0.01"],
)


def _burgers(formula):  # type: ignore[no-untyped-def]
    """A DeepXDE-style residual computing ``formula(terms)`` from correctly taken derivatives."""
    import torch

    def residual(x, u):  # type: ignore[no-untyped-def]
        d = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
        u_x, u_t = d[:, 0:1], d[:, 1:2]
        u_xx = torch.autograd.grad(u_x, x, torch.ones_like(u_x), create_graph=True)[0][:, 0:1]
        u_tt = torch.autograd.grad(u_t, x, torch.ones_like(u_t), create_graph=True)[0][:, 1:2]
        return formula(dict(u=u, u_x=u_x, u_t=u_t, u_xx=u_xx, u_tt=u_tt, x=x))

    return residual


@pytest.mark.parametrize(
    "formula, needles",
    [
        (lambda v: v["u_t"] + v["u"] * v["u_x"] - 0.01 * v["u_xx"], None),
        (
            lambda v: v["u_x"] + v["u"] * v["u_t"] - 0.01 * v["u_tt"],
            ["1.0·u*u_t", "columns of x and t are swapped"],
        ),
        (lambda v: -(v["u_t"] + v["u"] * v["u_x"] - 0.01 * v["u_xx"]), ["opposite sign"]),
        (
            lambda v: v["u_t"] + v["u"] * v["u_x"] - 0.1 * v["u_xx"],
            ["the coefficient of u_xx is -0.1 (expected -0.01)"],
        ),
        (
            lambda v: v["u_t"] + v["u"] * v["u_x"],
            ["second-order term(s) u_xx are zero", "create_graph=True"],
        ),
        (lambda v: v["u_t"] + v["u_x"] - 0.01 * v["u_xx"], ["missing u*u_x", "unexpected u_x"]),
        (
            lambda v: v["u_t"] + v["u"] * v["u_x"] - 0.01 * v["u_xx"] - v["u_t"].mean(),
            ["off by the constant", "couples the points of the batch"],
        ),
        (
            lambda v: (v["u_t"] + v["u"] * v["u_x"] - 0.01 * v["u_xx"]) / (v["x"][:, 0:1] > 0.5),
            ["NaN or inf at", "local or small"],
        ),
    ],
)
def test_burgers_diagnoses(formula, needles: list[str] | None) -> None:  # type: ignore[no-untyped-def]
    report = verify(_burgers(formula), **BURGERS)  # type: ignore[arg-type]
    if needles is None:
        assert report.status == "pass"
        return
    assert report.status == "fail"
    text = "\n".join(report.diagnosis)
    for needle in needles:
        assert needle in text, text


def test_weak_manufactured_solutions_are_flagged() -> None:
    report = verify(
        _burgers(lambda v: v["u_t"] - 0.1 * v["u_xx"]),
        pde="u_t - nu*u_xx",
        solution="u = exp(-nu*pi**2*t)*sin(pi*x)",
        domain=["x=0:1", "t=0:1"],
        param=["nu=0.1"],
    )
    assert report.status == "pass"
    text = "\n".join(report.warnings)
    assert "solves eq1" in text and "returns zeros would pass too" in text
    assert "u_xx ≈ −9.87·u" in text and "cannot tell these terms apart" in text


def test_module_target_is_imported_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "verify_pkg_7731"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "physics.py").write_text((SAMPLES / "heat_correct.py").read_text())
    monkeypatch.chdir(tmp_path)
    r = run_cli("verify", "verify_pkg_7731.physics:residual", *HEAT_ARGS, "-n", "100")
    assert r.exit_code == ExitCode.OK, r.stdout + r.stderr


def test_results_do_not_depend_on_the_chunk_size() -> None:
    whole = heat("heat_swapped_column.py:residual", n=300)
    chunked = heat("heat_swapped_column.py:residual", n=300, chunk_size=64)
    a, b = whole.equations[0], chunked.equations[0]
    assert a.stats.max_abs_error == b.stats.max_abs_error and a.failing_points == b.failing_points
    assert a.worst_points == b.worst_points and a.fit == b.fit
    assert heat("heat_correct.py:residual", n=300, chunk_size=7).status == "pass"


# The result's dtype and device ----------------------------------------------------------------

HEAT_CODE = """
import torch

def d(y, x):
    return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]

def correct(x, u):
    g = d(u, x)
    return g[:, 1:2] - 0.1 * d(g[:, 0:1], x)[:, 0:1]

def swapped(x, u):
    g = d(u, x)
    return g[:, 0:1] - 0.1 * d(g[:, 1:2], x)[:, 1:2]

def as_int(x, u):
    return correct(x, u).to(torch.int64)

def as_bool(x, u):
    return correct(x, u) > 0

def as_float32(x, u):
    return correct(x, u).float()

def float32_constant(x, u):
    g = d(u, x)
    nu = torch.tensor(0.1, dtype=torch.float32)
    return g[:, 1:2].float() - nu * d(g[:, 0:1], x)[:, 0:1].float()

def swapped_float32(x, u):
    return swapped(x, u).float()

def as_float16(x, u):
    return correct(x, u).half()

def on_meta(x, u):
    return correct(x, u).to("meta")

class Odd(Exception):
    def __str__(self):
        raise RuntimeError("str fails")

def odd(x, u):
    raise Odd()

def prints(x, u):
    print("USER STDOUT")
    return correct(x, u)
"""


@pytest.mark.parametrize(
    "name, needle",
    [
        ("as_int", "returned an int64 tensor; a residual must be floating point"),
        ("as_bool", "returned a bool tensor; a residual must be floating point"),
        ("on_meta", "meta device"),
        ("odd", "raised Odd"),
    ],
)
def test_non_float_results_and_odd_exceptions_exit_2(
    tmp_path: Path, name: str, needle: str
) -> None:
    path = write(tmp_path, "heat_dtypes.py", HEAT_CODE)
    r = run_cli("verify", f"{path}:{name}", *HEAT_ARGS)
    assert r.exit_code == ExitCode.USAGE, r.stdout + r.stderr
    assert needle in r.stderr and "internal error" not in r.stderr
    assert r.stderr.count("error:") == 1
    with pytest.raises(UserCodeError, match=needle):
        verify(f"{path}:{name}", **HEAT)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["as_float32", "float32_constant"])
def test_a_float32_result_in_a_float64_run_passes_with_float32_rounding(
    tmp_path: Path, name: str
) -> None:
    path = write(tmp_path, "heat_dtypes.py", HEAT_CODE)
    report = verify(f"{path}:{name}", **HEAT)  # type: ignore[arg-type]
    assert report.status == "pass", report.diagnosis
    (eq,) = report.equations
    assert eq.result_dtype == "float32" and eq.tolerance.dtype == "float32"
    (warning,) = report.warnings
    assert "returned float32 values in a float64 run" in warning and "cast" in warning
    assert report.to_dict()["equations"][0]["result_dtype"] == "float32"


def test_a_wrong_float32_result_still_fails_with_its_diagnosis(tmp_path: Path) -> None:
    path = write(tmp_path, "heat_dtypes.py", HEAT_CODE)
    report = verify(f"{path}:swapped_float32", **HEAT)  # type: ignore[arg-type]
    assert report.status == "fail"
    text = "\n".join(report.diagnosis)
    assert "columns of x and t are swapped" in text and "local or small" not in text
    assert "float32" in report.warnings[0]


def test_a_float16_result_is_inconclusive_with_a_warning(tmp_path: Path) -> None:
    # float16's rounding (u = 2^-11) reaches over a tenth of the PDE's term scale: such a check
    # cannot tell a missing term from rounding, so it is inconclusive, never a silent pass.
    path = write(tmp_path, "heat_dtypes.py", HEAT_CODE)
    report = verify(f"{path}:as_float16", **HEAT)  # type: ignore[arg-type]
    eq = report.equations[0]
    assert eq.status == "inconclusive" and report.status == "fail"
    assert eq.stats.certain_failures == 0 and eq.stats.worst_ratio < 1
    assert eq.result_dtype == "float16"
    assert "returned float16 values in a float64 run" in report.warnings[0]
    assert "float16's rounding" in report.warnings[0]
    wrong = verify(_burgers(lambda v: (v["u_x"] - 0.1 * v["u_tt"]).half()), **HEAT)  # type: ignore[arg-type]
    assert wrong.status == "fail"


def test_a_float64_run_of_a_correct_function_has_no_dtype_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "heat_dtypes.py", HEAT_CODE)
    report = verify(f"{path}:correct", **HEAT)  # type: ignore[arg-type]
    assert report.status == "pass" and report.warnings == []
    assert report.equations[0].result_dtype == "float64"


# The user's prints --------------------------------------------------------------------------


def test_user_prints_go_to_stderr_and_json_stays_valid(tmp_path: Path) -> None:
    path = write(tmp_path, "heat_dtypes.py", 'print("AT IMPORT")\n' + HEAT_CODE)
    r = run_cli("verify", f"{path}:prints", *HEAT_ARGS, "-n", "50", "--format", "json")
    assert r.exit_code == ExitCode.OK, r.stdout + r.stderr
    assert r.json()["status"] == "pass"
    assert "USER STDOUT" in r.stderr and "AT IMPORT" in r.stderr
    assert "USER STDOUT" not in r.stdout and "AT IMPORT" not in r.stdout
    table = run_cli("verify", f"{path}:prints", *HEAT_ARGS, "-n", "50")
    assert table.stdout.lstrip().startswith("pinncheck verify")


# Modules of the same name in different folders ------------------------------------------------

GOOD_MM = """
import torch

def f(x, u):
    g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
    return g[:, 1:2]
"""
BAD_MM = """
import torch

def f(x, u):
    g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
    return g[:, 0:1]
"""
MM_CHECK = """
[[verify]]
name = "{name}"
target = "{target}"
pde = "u_t"
solution = "u = sin(x + 2*t) + x**2*t"
domain = ["x = 0:1", "t = 0:1"]
points = 50
expect = "{expect}"
"""


@pytest.fixture
def fresh_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep this test's sys.path changes and its user modules (``*_7431``) from leaking."""
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [n for n in sys.modules if n.partition(".")[0].endswith("_7431")]:
        del sys.modules[name]


def _folder(root: Path, name: str, files: dict[str, str], target: str, expect: str) -> Path:
    folder = root / name
    folder.mkdir()
    for file, text in files.items():
        write(folder, file, text)
    return write(folder, "c.toml", MM_CHECK.format(name=name, target=target, expect=expect))


@pytest.mark.parametrize("order", ["good-first", "bad-first"])
def test_same_module_name_in_two_check_file_folders(
    tmp_path: Path, fresh_imports: None, order: str
) -> None:
    import sys

    a = _folder(tmp_path, "A", {"mm_7431.py": GOOD_MM}, "mm_7431:f", "pass")
    b = _folder(tmp_path, "B", {"mm_7431.py": BAD_MM}, "mm_7431:f", "fail")
    files = [a, b] if order == "good-first" else [b, a]
    doc = run_cli("run", *map(str, files), "--format", "json").json()
    got = {d["name"]: (d["status"], d["met_expectation"]) for d in doc["reports"]}
    assert got == {"A": ("pass", True), "B": ("fail", True)}
    assert str(tmp_path / "A") not in sys.path and str(tmp_path / "B") not in sys.path


def test_sibling_imports_of_file_targets_come_from_their_own_folder(
    tmp_path: Path, fresh_imports: None
) -> None:
    user = "from helpers_7431 import f\n\ndef residual(x, u):\n    return f(x, u)\n"
    a = _folder(tmp_path, "A", {"helpers_7431.py": GOOD_MM, "t.py": user}, "t.py:residual", "pass")
    b = _folder(tmp_path, "B", {"helpers_7431.py": BAD_MM, "t.py": user}, "t.py:residual", "fail")
    for files in ([a, b], [b, a]):
        doc = run_cli("run", *map(str, files), "--format", "json").json()
        assert all(d["met_expectation"] for d in doc["reports"]), doc
    kw = dict(pde="u_t", solution="u = sin(x + 2*t) + x**2*t", domain=["x=0:1", "t=0:1"], n=50)
    assert verify(str(tmp_path / "A" / "t.py:residual"), **kw).status == "pass"  # type: ignore[arg-type]
    assert verify(str(tmp_path / "B" / "t.py:residual"), **kw).status == "fail"  # type: ignore[arg-type]
    assert verify(str(tmp_path / "A" / "t.py:residual"), **kw).status == "pass"  # type: ignore[arg-type]


def test_torch_settings_changed_by_user_code_stay_with_that_code(tmp_path: Path) -> None:
    import torch

    write(
        tmp_path,
        "leaky.py",
        """
        import torch

        torch.set_default_dtype(torch.float64)  # at import: the residual relies on it

        def gradient(y, x):
            return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]

        def residual(x, u):
            nu = torch.tensor(0.1)
            assert nu.dtype == torch.float64, "the import-time default dtype was lost"
            u_x, u_t = gradient(u, x).unbind(1)
            u_xx = gradient(u_x, x)[:, 0]
            r = u_t - nu * u_xx
            torch.set_grad_enabled(False)  # a stray global change
            return r
        """,
    )
    common = heat_keys("leaky.py:residual")
    path = write(
        tmp_path,
        "leaky.toml",
        f"""
        [[verify]]
        name = "first"
        {textwrap.dedent(common)}
        [[verify]]
        name = "again, from the cached module"
        {textwrap.dedent(common)}
        [[check]]
        name = "pinncheck's own autograd afterwards"
        expr = "x1**2*sin(x2)"
        domain = ["x1 = 0:1", "x2 = 0:1"]
        """,
    )
    dtype = torch.get_default_dtype()
    r = run_cli("run", str(path))
    assert r.exit_code == ExitCode.OK, r.stdout + r.stderr
    assert "3 of 3 checks met their expectation" in r.stdout
    assert torch.is_grad_enabled() and torch.get_default_dtype() == dtype


def test_import_time_torch_settings_hold_whichever_module_made_them(tmp_path: Path) -> None:
    # pkg.config sets the default dtype when imported; pkg.net imports it. A target in either
    # module sees the setting, in any order, and pinncheck's own check afterwards does not.
    residual = """
        import torch

        def residual(x, u):
            assert torch.get_default_dtype() == torch.float64, "import-time setting lost"
            g = lambda y: torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]
            u_x, u_t = g(u).unbind(1)
            return u_t - 0.1 * g(u_x)[:, 0]
        """
    (tmp_path / "pkg").mkdir()
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/config.py", "import torch\ntorch.set_default_dtype(torch.float64)\n")
    body = textwrap.dedent(residual)
    write(tmp_path, "pkg/net.py", "from . import config  # noqa: F401\n" + body)
    write(tmp_path, "pkg/model.py", "from . import net  # noqa: F401\n" + body)
    tables = "".join(
        f'[[verify]]\nname = "{t}"\n{heat_keys(t)}\n'
        for t in ("pkg.net:residual", "pkg.model:residual")
    )
    own = '[[check]]\nname = "own"\nexpr = "x1**3"\ndomain = ["x1 = 0:1"]\n'
    path = write(tmp_path, "order.toml", tables + own)
    dtype = __import__("torch").get_default_dtype()
    r = run_cli("run", str(path))
    assert r.exit_code == ExitCode.OK, r.stdout + r.stderr
    assert __import__("torch").get_default_dtype() == dtype
