"""Non-box domains: --where inequalities, rejection sampling, and what honours them."""

from __future__ import annotations

import math
from pathlib import Path

import mpmath
import pytest
import torch

from helpers import run_cli
from pinncheck import DomainError, ExitCode, check, residual
from pinncheck._domain import parse_domain
from pinncheck._region import parse_where
from pinncheck._sample import sample_box

DISK = ["x=-1:1", "y=-1:1"]


def test_parse_where_builds_g_ge_0_and_refuses_what_is_not_an_inequality() -> None:
    (c,) = parse_where("x**2 + y**2 <= 1", ["x", "y"])
    assert str(c.g) == "-x**2 - y**2 + 1" and not c.strict
    (c,) = parse_where("x > 0.2*y", ["x", "y"])
    assert c.strict and str(c.g) == "x - y/5"
    assert len(parse_where("0.1 <= x**2 + y**2 < 1", ["x", "y"])) == 2
    for bad, needle in [
        ("x == y", "'=='"),
        ("x = y", "'='"),
        ("x => y", "write >="),
        ("x + y", "no comparison"),
        ("x < 1 and y < 1", "own --where"),
        ("x**2 + z <= 1", "unknown name 'z'"),
        ("1 < 2", "does not depend"),
        ("x <= __import__('os')", "Invalid"),
    ]:
        with pytest.raises(DomainError) as err:
            parse_where(bad, ["x", "y"])
        assert needle in str(err.value), (bad, str(err.value))


def test_points_lie_in_the_region_and_do_not_depend_on_chunks_or_dtype() -> None:
    dom = parse_domain(DISK, where=["x**2 + y**2 <= 1", "x >= 0.2*y"])
    whole = torch.stack(sample_box(dom, 5, 0, 200_000))
    assert bool((whole[0] ** 2 + whole[1] ** 2 <= 1).all())
    assert bool((whole[0] >= 0.2 * whole[1]).all())
    parts = [
        torch.stack(sample_box(dom, 5, a, min(a + 7_777, 200_000)))
        for a in range(0, 200_000, 7_777)
    ]
    assert torch.equal(torch.cat(parts, dim=1), whole)
    late = torch.stack(
        sample_box(
            parse_domain(DISK, where=["x**2 + y**2 <= 1", "x >= 0.2*y"]), 5, 150_000, 150_010
        )
    )
    assert torch.equal(late, whole[:, 150_000:150_010])
    f32 = torch.stack(sample_box(dom, 5, 0, 1000, dtype=torch.float32))
    assert torch.equal(f32, whole[:, :1000].to(torch.float32))
    assert not torch.equal(whole[:, :1000], torch.stack(sample_box(dom, 6, 0, 1000)))
    # The share of the box: half a disk's area over the box's, against an exact value.
    share = dom.acceptance
    assert share is not None
    exact = float(mpmath.pi / 2 / 4)
    assert abs(share - exact) < 0.01


def test_a_formula_undefined_outside_the_disk_checks_with_where_only() -> None:
    expr = "sqrt(1 - x**2 - y**2)"
    plain = check(expr, DISK, n=2000)
    assert plain.status == "fail"
    assert any("sqrt" in w for w in plain.warnings)
    cut = check(expr, DISK, n=2000, chunk_size=300, where="x**2 + y**2 <= 0.9")
    assert cut.status == "pass"
    assert not any("singular" in w for w in cut.warnings)
    assert any("% of the box's points lie in it" in w for w in cut.warnings)
    same = check(expr, DISK, n=2000, where="x**2 + y**2 <= 0.9")
    for a, b in zip(cut.derivatives, same.derivatives, strict=True):
        assert a.stats.max_abs_error == b.stats.max_abs_error


def test_residual_and_the_check_file_take_where(tmp_path: Path) -> None:
    r = residual(
        "u_xx + u_yy",
        ["u = log(x**2 + y**2)"],
        ["x=-1:1", "y=-1:1"],
        where=["x**2 + y**2 >= 0.25"],
        n=3000,
    )
    assert r.status == "pass"  # log r is harmonic away from the origin
    assert not any("singular" in w for w in r.warnings)
    f = tmp_path / "c.toml"
    f.write_text(
        '[[check]]\nname = "wedge"\nexpr = "log(x - y)"\n'
        'domain = ["x=0:1", "y=0:1"]\nwhere = "x > y + 0.01"\n'
    )
    assert run_cli("run", str(f)).exit_code == ExitCode.OK


def test_the_cli_refuses_a_region_too_small_to_sample_and_reports_the_rate() -> None:
    r = run_cli("check", "x*y", "-d", "x=-1:1", "-d", "y=-1:1", "--where", "x**2 + y**2 <= 1e-4")
    assert r.exit_code == ExitCode.USAGE and "too small to sample" in r.stderr
    r = run_cli(
        "check",
        "x*y",
        "-d",
        "x=-1:1",
        "-d",
        "y=-1:1",
        "--where",
        "x**2 + y**2 <= 1",
        "--format",
        "json",
    )
    assert r.exit_code == ExitCode.OK
    note = [w for w in r.json()["warnings"] if "lie in it" in w]
    assert note
    share = float(note[0].split(": ")[1].split("%")[0]) / 100
    assert abs(share - math.pi / 4) < 0.01
