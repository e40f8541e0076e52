"""verify's diagnosis in float32: present terms are not called missing, and a parameter held in
float32 is named as such (issue 11, "Diagnoses that point the right way")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from pinncheck import verify
from pinncheck._explain import fit_columns

Terms = dict[str, torch.Tensor]


def _residual(formula: Callable[[Terms], torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A residual ``f(x, u)`` computing ``formula`` from correctly taken derivatives (the
    variables are the columns of x in order, the last one t)."""

    def residual(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        names = "xt" if x.shape[1] == 2 else "xyt"
        g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
        v: Terms = {"u": u}
        for i, name in enumerate(names):
            v[f"u_{name}"] = g[:, i : i + 1]
        for i, name in enumerate(names[:-1]):
            first = v[f"u_{name}"]
            second = torch.autograd.grad(first, x, torch.ones_like(first), create_graph=True)[0]
            v[f"u_{name}{name}"] = second[:, i : i + 1]
        return formula(v)

    return residual


# Allen–Cahn in float32: a present, small term (0.001*u_xx) is not pruned ---------------------

ALLEN_CAHN: dict[str, Any] = dict(
    pde="u_t - d*u_xx + 5*u**3 - 5*u",
    solution="u = sin(x)*exp(-t) + x**3*t",
    domain=["x=-1:1", "t=0:1"],
    param=["d=0.001"],
)


def _missing_text(diagnosis: list[str]) -> str:
    return next(line for line in diagnosis if line.startswith("your residual ≈"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_allen_cahn_missing_only_the_cube_names_only_the_cube(dtype: str) -> None:
    f = _residual(lambda v: v["u_t"] - 0.001 * v["u_xx"] - 5 * v["u"])
    report = verify(f, dtype=dtype, **ALLEN_CAHN)
    assert report.status == "fail"
    line = _missing_text(report.diagnosis)
    assert "the term(s) u**3 are missing" in line, line
    assert "u_xx, u**3" not in line
    fit = report.equations[0].fit
    assert fit is not None and set(fit["coefficients"]) == {"u", "u_t", "u_xx"}
    tol = 1e-3 if dtype == "float32" else 1e-9
    assert fit["coefficients"]["u_xx"] == pytest.approx(-0.001, rel=tol)
    assert fit["coefficients"]["u"] == pytest.approx(-5.0, rel=tol)


def test_allen_cahn_correct_in_float32_passes() -> None:
    f = _residual(lambda v: v["u_t"] - 0.001 * v["u_xx"] + 5 * v["u"] ** 3 - 5 * v["u"])
    assert verify(f, dtype="float32", **ALLEN_CAHN).status == "pass"


def test_allen_cahn_genuinely_missing_u_xx_in_float32_is_still_named() -> None:
    f = _residual(lambda v: v["u_t"] + 5 * v["u"] ** 3 - 5 * v["u"])
    report = verify(f, dtype="float32", **ALLEN_CAHN)
    assert report.status == "fail"
    line = _missing_text(report.diagnosis)
    assert "u_xx" in line.split(":", 1)[1] and "u**3" not in line.split(":", 1)[1], line


def test_a_wrong_small_coefficient_in_float32_is_not_called_missing() -> None:
    f = _residual(lambda v: v["u_t"] - 0.003 * v["u_xx"] + 5 * v["u"] ** 3 - 5 * v["u"])
    report = verify(f, dtype="float32", **ALLEN_CAHN)
    line = _missing_text(report.diagnosis)
    assert "the coefficient of u_xx is -0.003 (expected -0.001)" in line, line
    assert "missing" not in line


def test_pruning_keeps_a_small_term_that_stands_above_the_noise() -> None:
    gen = torch.Generator().manual_seed(3)
    a = torch.rand(2000, 4, generator=gen, dtype=torch.float64)
    noise = 1e-7 * torch.randn(2000, generator=gen, dtype=torch.float64)
    # Column 2's share of b (~1e-4) is far below the float32 fit tolerance (1e-3) but ~1e3
    # times the noise per point: it is there. Column 3 is not.
    b = a[:, 0] - 5.0 * a[:, 1] + 1e-4 * a[:, 2] + noise
    fit = fit_columns(a, b, rtol=1e-3)
    assert fit.accepted and set(fit.coefficients) == {0, 1, 2}
    assert fit.coefficients[2] == pytest.approx(1e-4, rel=1e-2)
    # Without the term, the fit names the two others only.
    fit = fit_columns(a, a[:, 0] - 5.0 * a[:, 1] + noise, rtol=1e-3)
    assert fit.accepted and set(fit.coefficients) == {0, 1}


def test_pruning_drops_a_term_drowned_in_the_noise() -> None:
    gen = torch.Generator().manual_seed(4)
    a = torch.rand(2000, 3, generator=gen, dtype=torch.float64)
    noise = 1e-3 * torch.randn(2000, generator=gen, dtype=torch.float64)
    b = a[:, 0] + 1e-6 * a[:, 2] + noise
    fit = fit_columns(a, b, rtol=1e-2)
    assert fit.accepted and set(fit.coefficients) == {0}


# A parameter held in float32 in a float64 run -------------------------------------------------

HEAT_2D: dict[str, Any] = dict(
    pde="u_t - C2*(u_xx + u_yy)",
    solution="u = sin(pi*x)*sin(pi*y)*exp(-t) + x**3*y*t",
    domain=["x=0:1", "y=0:1", "t=0:1"],
    param=["C2=0.01"],
)
C2_32 = torch.tensor(0.01, dtype=torch.float32)
# The independent truth: numpy's float32 rounding of 0.01, relative to 0.01.
C2_REL = float(np.float32(0.01)) / 0.01 - 1.0


def _heat(c: float | torch.Tensor) -> Callable[..., torch.Tensor]:
    return _residual(lambda v: v["u_t"] - c * (v["u_xx"] + v["u_yy"]))


@pytest.mark.parametrize(
    "solution",
    [HEAT_2D["solution"], "u = sin(pi*x)*sin(pi*y)*exp(-2*pi**2*C2*t)"],
    ids=["generic", "exact"],
)
def test_a_float32_parameter_is_named_with_its_rounding(solution: str) -> None:
    report = verify(_heat(C2_32), **{**HEAT_2D, "solution": solution})
    assert report.status == "fail"
    text = "\n".join(report.diagnosis)
    assert "float32 rounding of the parameter C2" in text, text
    assert f"a relative difference of {C2_REL:.4g}" in text
    assert "u_xx: -0.009999999776 instead of -0.01" in text
    assert "u_yy: -0.009999999776 instead of -0.01" in text
    assert "use a Python float or a float64 tensor" in text
    assert "missing" not in text


def test_a_float32_parameter_that_divides_is_named() -> None:
    k32 = torch.tensor(100.1, dtype=torch.float32)
    f = _residual(lambda v: v["u_t"] - (v["u_xx"] + v["u_yy"]) / k32)
    report = verify(f, **{**HEAT_2D, "pde": "u_t - (u_xx + u_yy)/k", "param": ["k=100.1"]})
    text = "\n".join(report.diagnosis)
    rel = float(np.float32(100.1)) / 100.1 - 1.0
    assert "float32 rounding of the parameter k" in text, text
    assert f"a relative difference of {rel:.4g} in the coefficient(s) it divides" in text


def test_a_float32_literal_coefficient_is_named() -> None:
    report = verify(_heat(C2_32), **{**HEAT_2D, "pde": "u_t - 0.01*(u_xx + u_yy)", "param": []})
    text = "\n".join(report.diagnosis)
    assert "float32 rounding of the PDE's coefficient(s)" in text, text
    assert "u_xx: -0.009999999776 instead of -0.01" in text


@pytest.mark.parametrize("c", [0.011, 0.0100001, 0.01 * (1 + 4 * C2_REL)])
def test_a_wrong_coefficient_is_not_called_float32_rounding(c: float) -> None:
    report = verify(_heat(c), **HEAT_2D)
    assert report.status == "fail"
    text = "\n".join(report.diagnosis)
    assert "float32" not in text, text
    if c == 0.011:
        assert "the coefficient of u_xx is -0.011 (expected -0.01)" in text


def test_a_float64_parameter_passes_and_a_missing_term_is_still_missing() -> None:
    assert verify(_heat(0.01), **HEAT_2D).status == "pass"
    f = _residual(lambda v: v["u_t"] - C2_32 * v["u_xx"])
    text = "\n".join(verify(f, **HEAT_2D).diagnosis)
    assert "float32 rounding" not in text and "u_yy" in text, text
