"""pinncheck.testing: assertion helpers for users' own test suites."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from pinncheck.testing import assert_partials_match, assert_pointwise, assert_residual_matches

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "user_code"
HEAT = dict(
    pde="u_t - nu*u_xx",
    solution="u = sin(2*x + 1)*exp(-t) + x**3*t",
    domain=["x=0:1", "t=0:1"],
    param=["nu=0.1"],
)


def _grad(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]


def heat_residual(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    g = _grad(u, x)
    return g[:, 1:2] - 0.1 * _grad(g[:, 0:1], x)[:, 0:1]


def heat_residual_swapped(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    g = _grad(u, x)
    return g[:, 0:1] - 0.1 * _grad(g[:, 1:2], x)[:, 1:2]


def test_importing_the_helpers_does_not_import_torch_or_sympy() -> None:
    code = (
        "import sys, pinncheck.testing\n"
        "print('HEAVY', [m for m in ('torch', 'sympy') if m in sys.modules])\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in p.stdout, p.stdout + p.stderr


def test_assert_partials_match() -> None:
    report = assert_partials_match("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"], n=100)
    assert report.status == "pass"
    with pytest.raises(AssertionError, match=r"log\(x1\) disagree\n.*undefined at \d+ point"):
        assert_partials_match("log(x1)", ["x1=-1:1"], n=100)


def test_assert_residual_matches_passes_for_a_correct_function() -> None:
    report = assert_residual_matches(heat_residual, **HEAT)  # type: ignore[arg-type]
    assert report.status == "pass"


def test_assert_residual_matches_raises_with_the_diagnosis() -> None:
    with pytest.raises(AssertionError) as info:
        assert_residual_matches(heat_residual_swapped, **HEAT)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("pinncheck: heat_residual_swapped does not compute u_t - nu*u_xx")
    assert "your residual ≈ 1.0·u_x − 0.1·u_tt; expected 1.0·u_t − 0.1·u_xx" in message
    assert "column" in message


def test_assert_residual_matches_accepts_a_target_string() -> None:
    target = f"{SAMPLES / 'heat_missing_create_graph.py'}:residual"
    with pytest.raises(AssertionError, match="create_graph=True"):
        assert_residual_matches(target, **HEAT)  # type: ignore[arg-type]
    assert_residual_matches(f"{SAMPLES / 'heat_correct.py'}:residual", **HEAT)  # type: ignore[arg-type]


def test_assert_pointwise() -> None:
    torch.manual_seed(0)
    good = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    assert assert_pointwise(good, domain=["x=0:1", "t=0:1"]).offdiag_ratio == 0.0
    bad = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 1))
    with pytest.raises(AssertionError, match=r"(?s)not pointwise.*BatchNorm1d `1`.*model\.eval"):
        assert_pointwise(bad, domain=["x=0:1", "t=0:1"])
    # A ReLU network passes; the report carries the warning.
    relu = assert_pointwise(f"{SAMPLES / 'models.py'}:relu_mlp", domain=["x=0:1", "t=0:1"])
    assert "second derivatives" in relu.warnings[0]


def test_assert_pointwise_on_nan_outputs_names_only_the_non_finite_outputs() -> None:
    def nan_model(x: torch.Tensor) -> torch.Tensor:
        return torch.log(x[:, :1] - 0.5) + x[:, 1:]

    with pytest.raises(AssertionError) as info:
        assert_pointwise(nan_model, domain=["x=0:1", "t=0:1"])
    message = str(info.value)
    assert "non-finite outputs at" in message
    assert "nondeterministic" not in message and "batch coupling" not in message


def test_failures_hide_pinncheck_frames_and_stay_short(tmp_path: Path) -> None:
    test = tmp_path / "test_user.py"
    test.write_text(
        "from pinncheck.testing import assert_partials_match\n\n"
        "def test_log():\n"
        "    assert_partials_match('log(x1)', ['x1=-1:1'], n=50)\n"
    )
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 1
    assert "PinncheckAssertionError: pinncheck: the partial derivatives of log(x1)" in p.stdout
    assert "pinncheck/testing.py" not in p.stdout and "def _passed" not in p.stdout
    assert "PINNCHECK_FULL_REPORT=1" in p.stdout
    assert "┃ derivative" not in p.stdout  # the tables only on demand
    p = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PINNCHECK_FULL_REPORT": "1"},
    )
    assert p.returncode == 1
    assert "derivative" in p.stdout and "worst point" in p.stdout


def test_the_failure_carries_the_report() -> None:
    from pinncheck.testing import PinncheckAssertionError

    with pytest.raises(PinncheckAssertionError) as info:
        assert_partials_match("log(x1)", ["x1=-1:1"], n=50)
    assert info.value.report.status == "fail"
    assert len(str(info.value).splitlines()) <= 4
