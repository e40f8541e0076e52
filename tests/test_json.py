"""JSON for scripts: one shape per kind, shipped schemas, numbers that stay numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from helpers import run_cli
from pinncheck import ExitCode
from pinncheck._schemas import KINDS, build_schema, load_schema, schema_text, validate

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_schemas_are_what_the_module_builds(kind: str) -> None:
    shipped = ROOT / "pinncheck" / "schemas" / f"{kind}.schema.json"
    assert shipped.read_text(encoding="utf-8") == schema_text(kind), (
        "run `python -m pinncheck._schemas` after changing pinncheck/_schemas.py"
    )
    assert load_schema(kind) == build_schema(kind)


def test_schemas_are_package_data() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["pinncheck"]
    assert "schemas/*.schema.json" in patterns


def test_an_undefined_derivative_never_reports_an_error_of_0() -> None:
    # log(x1) on -1:1: autograd and SymPy agree exactly where both are finite, and both are
    # NaN or inf elsewhere. The error over all points is undefined, not 0.
    r = run_cli("check", "log(x1)", "-d", "x1=-1:1", "-n", "50", "-f", "json")
    assert r.exit_code == ExitCode.FAILED
    for d in r.json()["derivatives"]:
        assert d["status"] == "undefined"
        for key in ("max_abs_error", "max_rel_error", "rms_error"):
            assert d[key] is None and d[f"{key}_nonfinite"] == "nan"
        assert d["nonfinite"] + d["finite_points"] == 50 and d["nonfinite"] > 0
        first = d["first_nonfinite_point"]
        assert first["point"]["x1"] < 0
        assert first["autograd"] is None and first["autograd_nonfinite"] == "nan"
    # The table says the same: nan, not 0.
    row = next(
        line
        for line in run_cli("check", "log(x1)", "-d", "x1=-1:1", "-n", "50").stdout.split("\n")
        if line.startswith("│ d/dx1")
    )
    assert row.split("│")[3].strip() == "nan"


def test_non_finite_numbers_are_null_with_their_kind() -> None:
    from pinncheck._results import json_ready

    doc = json_ready({"a": math.nan, "b": math.inf, "c": -math.inf, "d": 1.5, "e": [math.nan, 2.0]})
    assert doc == {
        "a": None,
        "a_nonfinite": "nan",
        "b": None,
        "b_nonfinite": "inf",
        "c": None,
        "c_nonfinite": "-inf",
        "d": 1.5,
        "e": [None, 2.0],
    }
    json.dumps(doc, allow_nan=False)


def test_variables_named_like_keys_do_not_collide() -> None:
    r = run_cli(
        "check", "index**2*exact", "-d", "index=0:1", "-d", "exact=1:2", "-n", "50", "-f", "json"
    )
    assert r.exit_code == 0, r.stderr
    worst = r.json()["derivatives"][0]["worst_point"]
    assert set(worst) == {"index", "point", "autograd", "exact"}
    assert set(worst["point"]) == {"index", "exact"}
    assert isinstance(worst["index"], int) and 1 <= worst["point"]["exact"] <= 2


def test_schema_rejects_strings_for_numbers_and_coordinates_beside_values() -> None:
    doc = run_cli("check", "x1**3", "-d", "x1=0:1", "-n", "20", "-f", "json").json()
    import jsonschema

    bad = json.loads(json.dumps(doc))
    bad["derivatives"][0]["max_abs_error"] = "nan"
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad = json.loads(json.dumps(doc))
    bad["derivatives"][0]["worst_point"]["x1"] = 0.5
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad = json.loads(json.dumps(doc))
    bad["derivatives"][0]["max_abs_error_nonfinite"] = "nan"  # beside a number
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad = json.loads(json.dumps(doc))
    del bad["schema_version"]
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


def test_schema_allows_new_fields_of_derivatives() -> None:
    doc = run_cli("check", "x1**3", "-d", "x1=0:1", "-n", "20", "-f", "json").json()
    doc["derivatives"][0]["reference_error"] = 1e-17
    doc["derivatives"][0]["something_new"] = {"any": "thing"}
    validate(doc)


def test_error_documents_have_a_schema_too() -> None:
    doc = run_cli("check", "x1 +", "-d", "x1=0:1", "-f", "json").json()
    assert doc["status"] == "error" and doc["exit_code"] == 2 and doc["schema_version"] == 1


USER_CODE_ERROR = """
[[check]]
name = "fine"
expr = "x**2"
domain = "x=0:1"
points = 20

[[verify]]
name = "raises"
target = "broken.py:residual"
pde = "u_t"
solution = "u = sin(x + t)"
domain = ["x=0:1", "t=0:1"]
points = 20
"""


def test_user_code_errors_inside_run_exit_2(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def residual(x, u):\n    raise ValueError('oops')\n")
    path = tmp_path / "checks.toml"
    path.write_text(USER_CODE_ERROR)
    r = run_cli("run", str(path))
    assert r.exit_code == ExitCode.USAGE, r.stdout + r.stderr
    assert "ValueError: oops" in r.stdout
    assert "1 could not run (exit code 2)" in r.stdout
    row = next(line for line in r.stdout.splitlines() if "raises" in line)
    assert "error" in row and "nan" not in row
    doc = run_cli("run", str(path), "-f", "json").json()
    assert doc["status"] == "error"
    assert doc["counts"] == {"total": 2, "met": 1, "missed": 0, "errors": 1}
    assert doc["reports"][1]["status"] == "error" and "oops" in doc["reports"][1]["error"]
