"""pinncheck probe: pointwise and deterministic models, and the culprits when they are not."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import run_cli
from pinncheck import ExitCode, OptionError, probe

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "user_code"
BOX = ["x = 0:1", "t = 0:1"]
MODELS = str(SAMPLES / "models.py")


def sample(name: str, **kw: object):  # type: ignore[no-untyped-def]
    return probe(f"models.py:{name}", BOX, base_dir=SAMPLES, **kw)  # type: ignore[arg-type]


def test_pointwise_mlp_passes_with_exactly_zero_coupling() -> None:
    r = sample("pointwise_mlp")
    assert r.status == "pass" and r.kind == "probe"
    assert r.offdiag_ratio == 0.0 and r.offdiag_max_row_ratio == 0.0
    assert r.perturbation["max_rel_change"] == 0.0 and not r.perturbation["coupled"]
    assert r.deterministic and r.finite and not r.second_derivatives_vanish
    assert (r.dtype, r.device, r.output_columns) == ("float32", "cpu", 1)
    assert r.diagnosis == [] and r.warnings == [] and r.culprits == []


def test_batchnorm_model_fails_and_names_the_layers() -> None:
    r = sample("batchnorm_mlp")
    assert r.status == "fail" and not r.pointwise and r.deterministic
    assert r.offdiag_ratio is not None and r.offdiag_ratio > 0.01
    assert r.perturbation["coupled"] and r.perturbation["rows_changed"] == r.n - 1
    assert [(c.name, c.type, c.observed) for c in r.culprits] == [
        ("1", "BatchNorm1d", True),
        ("4", "BatchNorm1d", False),
    ]
    text = "\n".join(r.diagnosis)
    assert "BatchNorm1d `1`, BatchNorm1d `4`" in text and "training mode" in text
    assert "first appears at BatchNorm1d `1`" in text and "model.eval()" in text
    assert f"off-diagonal mass is {r.offdiag_ratio:.3g}" in text


def test_batch_mean_model_is_located_between_two_submodules() -> None:
    r = sample("batch_mean_model")
    assert r.status == "fail" and not r.pointwise
    text = "\n".join(r.diagnosis)
    assert "batch coupling" in text
    assert "forward() of CenteredMLP (the model itself)" in text
    assert "between the calls of `inp` and `hidden`" in text
    assert [(c.name, c.type) for c in r.culprits] == [("", "CenteredMLP")]


def test_dropout_model_is_nondeterministic_but_pointwise() -> None:
    r = sample("dropout_mlp")
    assert r.status == "fail" and r.pointwise and not r.deterministic
    assert r.randomness_from_rng is True and r.nondeterminism > 0.01
    text = "\n".join(r.diagnosis)
    assert "nondeterministic" in text and "torch's RNG" in text
    assert "Dropout `2`, Dropout `5`" in text and "first appears at Dropout `2`" in text
    assert {c.problem for c in r.culprits} == {"nondeterminism"}


def test_relu_model_passes_with_a_second_derivative_warning() -> None:
    r = sample("relu_mlp")
    assert r.status == "pass" and r.second_derivatives_vanish
    (warning,) = r.warnings
    assert "second derivatives" in warning and "second-order PDE terms will be zero" in warning
    assert "ReLU `1`, ReLU `3`" in warning


def test_plain_callable_passes_in_float32_by_default() -> None:
    r = sample("scaled_sin")
    assert r.status == "pass" and r.dtype == "float32" and r.model_type == "function"
    r64 = sample("scaled_sin", dtype="float64")
    assert r64.dtype == "float64" and r64.status == "pass"


def test_a_zero_argument_class_is_built() -> None:
    r = sample("CenteredMLP")
    assert r.status == "fail" and "batch" in "\n".join(r.diagnosis)


def test_model_dtype_is_used_and_an_explicit_dtype_converts_a_copy() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    r = probe(net, BOX)
    assert r.dtype == "float64" and r.status == "pass" and r.warnings == []
    r32 = probe(net, BOX, dtype="float32")
    assert r32.dtype == "float32" and "converted to float32" in r32.warnings[0]
    assert next(net.parameters()).dtype == torch.float64  # the user's model is untouched


def test_probing_an_instance_does_not_change_its_batchnorm_statistics() -> None:
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 1))
    before = net[1].running_mean.clone()  # type: ignore[union-attr]
    assert probe(net, BOX).status == "fail"
    assert torch.equal(net[1].running_mean, before)  # type: ignore[union-attr]
    net.eval()
    assert probe(net, BOX).status == "pass"


class _Center(nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h - h.mean(dim=0, keepdim=True)


class _DetachedCenter(nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h - h.mean(dim=0, keepdim=True).detach()


def test_a_custom_coupling_submodule_is_named() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), _Center(), nn.Tanh(), nn.Linear(8, 1))
    r = probe(net, BOX)
    assert r.status == "fail"
    assert [(c.name, c.type, c.observed) for c in r.culprits] == [("1", "_Center", True)]
    assert "first appears at _Center `1`" in "\n".join(r.diagnosis)


def test_coupling_through_detached_values_is_caught_by_perturbation() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), _DetachedCenter(), nn.Tanh(), nn.Linear(8, 1))
    r = probe(net, BOX)
    assert r.offdiag_ratio == 0.0 and r.perturbation["coupled"] and r.status == "fail"
    assert "Jacobian is diagonal" in "\n".join(r.diagnosis)


def test_non_finite_outputs_fail() -> None:
    r = probe(lambda x: torch.log(x[:, :1] - 0.5), BOX)
    assert r.status == "fail" and not r.finite and r.nonfinite_points > 0
    assert "NaN or inf" in r.diagnosis[0]


# The command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, code", [("pointwise_mlp", ExitCode.OK), ("batchnorm_mlp", ExitCode.FAILED)]
)
def test_cli_exit_codes_and_table(name: str, code: ExitCode) -> None:
    r = run_cli("probe", f"{MODELS}:{name}", "-d", "x=0:1", "-d", "t=0:1")
    assert r.exit_code == code, r.stdout + r.stderr
    assert "pointwise (Jacobian)" in r.stdout and "deterministic" in r.stdout
    assert ("PASS" if code == ExitCode.OK else "FAIL") in r.stdout


def test_cli_relu_warning_goes_to_stderr() -> None:
    r = run_cli("probe", f"{MODELS}:relu_mlp", "-d", "x=0:1,t=0:1")
    assert r.exit_code == ExitCode.OK and "second derivatives" in r.stderr


def test_cli_json_schema() -> None:
    r = run_cli("probe", f"{MODELS}:dropout_mlp", "-d", "x=0:1,t=0:1", "-n", "40", "-f", "json")
    assert r.exit_code == ExitCode.FAILED
    doc = r.json()
    for key in (
        "pinncheck",
        "torch",
        "kind",
        "status",
        "target",
        "dtype",
        "device",
        "n",
        "seed",
        "offdiag_ratio",
        "offdiag_max_row_ratio",
        "jacobian_points",
        "perturbation",
        "pointwise",
        "deterministic",
        "culprits",
        "diagnosis",
        "warnings",
    ):
        assert key in doc, key
    assert (doc["kind"], doc["status"], doc["n"], doc["jacobian_points"]) == (
        "probe",
        "fail",
        40,
        32,
    )
    assert doc["deterministic"] is False and doc["pointwise"] is True
    assert [c["name"] for c in doc["culprits"]] == ["2", "5"]
    assert any("nondetermin" in line for line in doc["diagnosis"])


def _module(tmp_path: Path, body: str) -> str:
    path = tmp_path / "user_models.py"
    path.write_text("import torch\n" + textwrap.dedent(body), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "body, needle",
    [
        ("def model(x):\n    return x.sum()\n", "returned shape ()"),
        ("def model(x):\n    return torch.zeros(x.shape[0] + 1, 1)\n", "one output row per"),
        ("def model(x):\n    return 3.0\n", "returned a float"),
        ("def model():\n    return 42\n", "returned a int, not a model"),
        (
            "class model(torch.nn.Module):\n"
            "    def __init__(self, w):\n"
            "        super().__init__()\n",
            "constructor needs arguments",
        ),
        ("model = 5\n", "not an nn.Module"),
    ],
)
def test_bad_models_exit_2(tmp_path: Path, body: str, needle: str) -> None:
    r = run_cli("probe", _module(tmp_path, body) + ":model", "-d", "x=0:1,t=0:1")
    assert r.exit_code == ExitCode.USAGE, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_model_raising_exits_2_with_its_traceback(tmp_path: Path) -> None:
    body = "def model(x):\n    return torch.nn.functional.linear(x, torch.ones(1, 3))\n"
    r = run_cli("probe", _module(tmp_path, body) + ":model", "-d", "x=0:1,t=0:1")
    assert r.exit_code == ExitCode.USAGE
    assert "Traceback" in r.stderr and "user_models.py" in r.stderr
    assert "(n, 2) input, columns x, t" in r.stderr and "pinncheck/_" not in r.stderr


def test_too_few_points_is_a_usage_error() -> None:
    with pytest.raises(OptionError, match="at least 2 points"):
        probe(lambda x: x, BOX, n=1)
    assert run_cli("probe", f"{MODELS}:scaled_sin", "-d", "x=0:1", "-n", "1").exit_code == 2


# Non-finite outputs, output types, user prints ----------------------------------------------


def _log_half(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x[:, :1] - 0.5) + x[:, 1:]


def _overflow(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(1000 * x[:, :1])


def _all_nan(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x).sum(1, keepdim=True) * float("nan")


@pytest.mark.parametrize("model", [_log_half, _overflow, _all_nan], ids=["log", "exp", "nan"])
def test_non_finite_outputs_are_one_finding_not_nondeterminism_or_coupling(model) -> None:  # type: ignore[no-untyped-def]
    r = probe(model, BOX)
    assert r.status == "fail" and not r.finite and 0 < r.nonfinite_points <= r.n
    assert r.deterministic and r.nondeterminism == 0.0 and r.randomness_from_rng is None
    assert r.pointwise and not r.jacobian_coupled and not r.perturbation["coupled"]
    assert r.perturbation["reliable"]  # not "skipped: the model is random"
    (line,) = r.diagnosis  # reported once, as its own finding
    assert line.startswith(f"non-finite outputs at {r.nonfinite_points} of {r.n} points, first at")
    assert r.culprits == []
    if r.offdiag_ratio is not None:  # measured on the finite rows only
        assert r.offdiag_ratio == 0.0 and r.offdiag_max_row_ratio == 0.0
    else:
        assert r.jacobian_note and "NaN or inf" in r.jacobian_note


def test_finite_rows_of_a_partly_nan_model_are_still_checked() -> None:
    r = probe(_log_half, BOX)
    assert r.offdiag_ratio == 0.0 and r.perturbation["max_rel_change"] == 0.0
    assert r.second_derivatives_checked and not r.second_derivatives_vanish


def test_an_all_nan_model_has_unevaluated_checks_not_ok_ones() -> None:
    r = probe(_all_nan, BOX)
    assert r.nonfinite_points == r.n and r.offdiag_ratio is None
    assert not r.second_derivatives_checked and not r.second_derivatives_vanish
    assert r.perturbation["evaluated"] is False
    doc = r.to_dict()
    assert doc["second_derivatives_checked"] is False and doc["offdiag_ratio"] is None
    from rich.console import Console

    from pinncheck._render_user import probe_table

    console = Console(width=200, record=True)
    console.print(probe_table(r))
    text = console.export_text()
    assert "batch" not in text and "random" not in text
    second = next(line for line in text.splitlines() if "second derivatives" in line)
    assert "not evaluated" in second and " ok " not in second


def test_coupling_and_randomness_are_still_found_beside_nan_outputs() -> None:
    coupled = probe(lambda x: torch.log(x[:, :1] - 0.5) + x[:, 1:].mean(), BOX)
    assert not coupled.finite and coupled.jacobian_coupled and not coupled.pointwise
    random = probe(lambda x: torch.log(x[:, :1] - 0.5) + torch.rand(x.shape[0], 1), BOX)
    assert not random.finite and not random.deterministic and random.randomness_from_rng


def test_nan_aware_differences() -> None:
    from pinncheck._probe import nan_aware_difference

    inf, nan = math.inf, math.nan
    a = torch.tensor([1.0, nan, inf, -inf, 2.0, nan, inf])
    b = torch.tensor([1.5, nan, inf, -inf, nan, 1.0, -inf])
    assert nan_aware_difference(a, b).tolist() == [0.5, 0.0, 0.0, 0.0, inf, inf, inf]


@pytest.mark.parametrize(
    "body, needle",
    [
        ("def model(x):\n    return x > 0.5\n", "returned a bool tensor"),
        ("def model(x):\n    return (x > 0.5).long()\n", "returned an int64 tensor"),
        ("def model(x):\n    return x.to('meta')\n", "meta device"),
        ("def model(x):\n    return x[:, :0]\n", "no output columns"),
    ],
)
def test_non_float_outputs_exit_2(tmp_path: Path, body: str, needle: str) -> None:
    r = run_cli("probe", _module(tmp_path, body) + ":model", "-d", "x=0:1,t=0:1")
    assert r.exit_code == ExitCode.USAGE, r.stdout + r.stderr
    assert needle in r.stderr and "internal error" not in r.stderr
    assert r.stderr.count("error:") == 1


def test_an_exception_whose_str_fails_exits_2(tmp_path: Path) -> None:
    body = (
        "class Odd(Exception):\n"
        "    def __str__(self):\n"
        "        raise RuntimeError('str fails')\n"
        "def model(x):\n"
        "    raise Odd()\n"
    )
    r = run_cli("probe", _module(tmp_path, body) + ":model", "-d", "x=0:1,t=0:1")
    assert r.exit_code == ExitCode.USAGE, r.stdout + r.stderr
    assert "raised Odd" in r.stderr and "internal error" not in r.stderr


def test_user_prints_go_to_stderr_and_json_stays_valid(tmp_path: Path) -> None:
    body = (
        "print('AT IMPORT')\n"
        "def model():\n"
        "    print('IN FACTORY')\n"
        "    def forward(x):\n"
        "        print('IN FORWARD')\n"
        "        return torch.sin(x).sum(1, keepdim=True)\n"
        "    return forward\n"
    )
    r = run_cli("probe", _module(tmp_path, body) + ":model", "-d", "x=0:1,t=0:1", "-f", "json")
    assert r.exit_code == ExitCode.OK, r.stdout + r.stderr
    assert r.json()["status"] == "pass"
    for text in ("AT IMPORT", "IN FACTORY", "IN FORWARD"):
        assert text in r.stderr and text not in r.stdout
