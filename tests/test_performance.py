"""The fast paths give the same numbers as the plain ones: lowered programs, streaming
statistics, parallel chunks, the automatic chunk size."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
import torch

import pinncheck._engine as engine
from pinncheck import check, residual
from pinncheck._compare import ErrorStats
from pinncheck._evaluate import Evaluator, Program
from pinncheck._parse import parse_expression, real_symbol

x, y, t = (real_symbol(n) for n in ("x", "y", "t"))
EXPRESSIONS = [
    "x**2*sin(y) - 3*t",
    "exp(-t)*sin(pi*x)*cos(pi*y)",
    "-tanh((x-0.5*t)/0.02)*exp(-x**2) + log(1+x**2+t**2)",
    "x/(1 + y**2) - sqrt(1 + t)/x**3 + 2**x*x**y",
    "sigmoid(x - y)*atan(t) - Abs(x - 0.5) + 2*x - 7",
    # A factor that rounds to 1 (and a sum with a term that rounds to 0): no identity step that
    # aliases x, through which an in-place step would overwrite the input.
    "cos(1e-9)*x**2/2 + exp(x)*y + t",
    "asinh(0.02*x**2 + 1.0*x + 2000000.0*y + 0.02)",
]
# Functions SymPy's derivatives produce that the parser does not accept.
RECIPROCALS = sympy.sec(x) + sympy.csc(1 + y) + sympy.cot(1 + t) + sympy.sech(x) + sympy.coth(y)
# SymPy keeps a Float coefficient of 1.0.
FLOAT_ONE = sympy.Float(1.0) * x * y + sympy.exp(y) * t


def _inputs(n: int = 257) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [0.1 + torch.rand(n, generator=g, dtype=torch.float64) for _ in range(3)]


def _reference(expr: sympy.Expr, pts: list[torch.Tensor]) -> torch.Tensor:
    # NumPy through lambdify: independent of pinncheck's evaluator (test constants only).
    sigmoid = {"sigmoid": lambda v: 1 / (1 + np.exp(-v))}
    fn = sympy.lambdify([x, y, t], expr, modules=[sigmoid, "numpy"])
    value = fn(*(p.numpy() for p in pts))
    return torch.tensor(np.broadcast_to(value, pts[0].shape), dtype=torch.float64)


@pytest.mark.parametrize("cse", [False, True])
@pytest.mark.parametrize("inplace", [False, True])
def test_program_evaluates_like_numpy_and_leaves_inputs_alone(cse: bool, inplace: bool) -> None:
    exprs = [parse_expression(e) for e in EXPRESSIONS] + [RECIPROCALS, FLOAT_ONE]
    derivs = [sympy.diff(e, v) for e in exprs for v in (x, y, t)]
    everything = exprs + derivs + [sympy.Integer(3), x, exprs[0]]
    pts = _inputs()
    copies = [p.clone() for p in pts]
    got = Program(everything, [x, y, t], cse=cse, inplace=inplace).run(pts)
    for e, g in zip(everything, got, strict=True):
        torch.testing.assert_close(g, _reference(e, copies), rtol=1e-12, atol=1e-12)
    for p, c in zip(pts, copies, strict=True):
        assert torch.equal(p, c)  # in place never writes into the inputs


def test_extended_program_runs_new_steps_among_its_own() -> None:
    from pinncheck._evaluate import _Step

    e = parse_expression("exp(-t)*sin(pi*x)*cos(pi*y)")
    exprs = [sympy.diff(e, x, y), sympy.diff(e, t, t), e]
    prog = Program(exprs, [x, y, t], cse=True, inplace=True)
    n = prog.n_inputs + len(prog.steps)
    # |first output| + 2*x (slots numbered as if appended), and |x| alone (inputs only)
    extra = [
        _Step("abs", (prog.outputs[0],)),
        _Step("add", (n, 0, 0)),
        _Step("abs", (0,)),
        _Step("wsum", (n, 1), 0.5, weights=(1.0, 3.0)),  # |first| + 3*y + 0.5
        _Step("wsum", (n + 2, n), 0.0, weights=(2.0, -1.0)),  # 2|x| - |first|
        _Step("abs", (1,)),
        _Step("wsum", (n + 5, n), 1.0, weights=(2.0, 1.0)),  # 2|y| + |first| + 1, in place
    ]
    ext = prog.extended(extra, [n + 1, n + 2, n + 3, n + 4, n + 6])
    assert any(st.op == "wsum" and st.inplace for st in ext.steps)
    assert ext.steps[0].op == "abs" and ext.steps[0].args == (0,)  # runs before the rest
    pts = _inputs()
    copies = [p.clone() for p in pts]
    got = ext.run(pts)
    want = [_reference(v, copies) for v in exprs]
    assert len(got) == 8
    for g, w in zip(got[:3], want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got[3], want[0].abs() + 2 * copies[0], rtol=1e-12, atol=0.0)
    torch.testing.assert_close(got[4], copies[0].abs(), rtol=0.0, atol=0.0)
    assert got[4] is not pts[0]
    torch.testing.assert_close(got[5], want[0].abs() + 3 * copies[1] + 0.5, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(got[6], 2 * copies[0].abs() - want[0].abs(), rtol=1e-12, atol=0.0)
    torch.testing.assert_close(got[7], 2 * copies[1] + want[0].abs() + 1, rtol=1e-12, atol=0.0)
    for p, c in zip(pts, copies, strict=True):
        assert torch.equal(p, c)
    assert len(prog.run(pts)) == 3  # the original is unchanged


def test_evaluator_shares_steps_across_calls() -> None:
    pts = _inputs()
    ev = Evaluator(dict(zip([x, y, t], pts, strict=True)))
    first = ev.tensor(sympy.sin(x) * y)
    steps = len(ev._lowering.steps)
    assert ev.tensor(sympy.sin(x) * y) is first and len(ev._lowering.steps) == steps
    assert ev.value(sympy.pi / 2) == pytest.approx(math.pi / 2)


def test_program_frees_intermediates_and_counts_its_memory() -> None:
    e = parse_expression("exp(-t)*sin(pi*x)*cos(pi*y)")
    prog = Program([sympy.diff(e, x, y), sympy.diff(e, t, t)], [x, y, t], cse=True, inplace=True)
    assert 0 < prog.peak_live <= len(prog.steps)
    assert any(step.inplace for step in prog.steps)


def _random_pair(n: int, nonfinite: bool, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(n)
    e = torch.randn(n, generator=g, dtype=torch.float64)
    a = (e + 1e-6 * torch.randn(n, generator=g, dtype=torch.float64)).to(dtype)
    if nonfinite:
        a[n // 3] = math.nan
        e[n // 2] = math.inf
    pts = [torch.rand(n, generator=g, dtype=torch.float64) for _ in range(2)]
    return a, e, *pts


@pytest.mark.parametrize("track", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_merged_chunk_statistics_equal_one_pass(dtype: torch.dtype, track: bool) -> None:
    chunks = [_random_pair(n, n == 3001, dtype) for n in (1000, 3001, 5, 4096)]
    whole = ErrorStats(track_autograd=track)
    merged = ErrorStats(track_autograd=track)
    cat = [torch.cat([c[i] for c in chunks]) for i in range(4)]
    tol = [(e.abs() * 1e-6).nan_to_num(posinf=1.0) + 1e-7 for _, e, *_ in chunks]
    ref = [t * 1e-3 for t in tol]
    whole.update(cat[0], cat[1], torch.cat(tol), torch.cat(ref), cat[2:], 0)
    offset = 0
    for (a, e, *pts), tl, rf in zip(chunks, tol, ref, strict=True):
        part = ErrorStats(track_autograd=track)
        part.update(a, e, tl, rf, pts, offset)
        merged.merge(part)
        offset += e.numel()
    for key in ("count", "finite", "nonfinite", "max_abs_error", "max_abs_exact"):
        assert getattr(merged, key) == getattr(whole, key), key
    for key in ("worst_ratio", "worst_index", "worst_point", "worst_values", "certain_failures"):
        assert getattr(merged, key) == getattr(whole, key), key
    assert merged.worst_ratio > 1 and merged.certain_failures > 0  # noise 1e-6 > tolerance
    assert merged.status() == "undefined"  # the NaN and inf points
    assert [p.index for p in merged.undecided] == [p.index for p in whole.undecided]
    assert merged.largest == whole.largest and merged.unsure == whole.unsure
    if track:
        assert merged.max_abs_autograd == whole.max_abs_autograd > 0
    else:  # not kept: NaN, not a made-up value
        assert math.isnan(merged.max_abs_autograd) and math.isnan(whole.max_abs_autograd)
    assert merged.first_nonfinite_index == whole.first_nonfinite_index
    assert merged.sum_sq_error == pytest.approx(whole.sum_sq_error, rel=1e-12)


def test_parallel_chunks_equal_one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    expr, dom = "-tanh((x-0.5*t)/0.02)*exp(-x**2) + log(1+x**2+t**2)", ["x=-1:1", "t=0:1"]
    parallel = check(expr, dom, n=40_000, chunk_size=3_000).to_dict()["derivatives"]
    monkeypatch.setattr(engine, "workers_for", lambda device: 1)
    serial = check(expr, dom, n=40_000, chunk_size=3_000).to_dict()["derivatives"]
    for a, b in zip(parallel, serial, strict=True):
        for key in ("max_abs_error", "max_abs_exact", "nonfinite", "worst_point", "status"):
            assert a[key] == b[key], key
        assert a["rms_error"] == pytest.approx(b["rms_error"], rel=1e-12)


def test_automatic_chunk_is_bounded_by_memory_and_does_not_change_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cpu = torch.device("cpu")
    assert engine.auto_chunk_size(100, cpu) <= engine.DEFAULT_CHUNK
    expr, dom = "exp(-t)*sin(pi*x)*cos(pi*y)", ["x=0:1", "y=0:1", "t=0:1"]
    roomy = check(expr, dom, n=30_000)
    # Pretend only 8 MiB are free: the chunks shrink to fit, the results stay the same.
    monkeypatch.setattr(engine, "available_memory", lambda device: 8 << 20)
    assert engine.auto_chunk_size(2000, cpu) == (8 << 20) // 4 // 2000
    assert engine.auto_chunk_size(10**9, cpu) == engine.MIN_CHUNK
    tight = check(expr, dom, n=30_000)
    assert tight.chunk_size < roomy.chunk_size
    for a, b in zip(roomy.to_dict()["derivatives"], tight.to_dict()["derivatives"], strict=True):
        for key in ("max_abs_error", "max_abs_exact", "worst_point", "nonfinite"):
            assert a[key] == b[key], key


def test_residual_scale_and_statistics_do_not_depend_on_chunking() -> None:
    args = (["u_t + u*u_x = nu*u_xx"], ["u=c - A*tanh(A*(x - c*t)/(2*nu))"], ["x=-1:1", "t=0:1"])
    params = ["nu = 0.05", "A = 0.5", "c = 0.25"]
    whole = residual(*args, param=params, n=20_000, chunk_size=20_000).to_dict()
    parts = residual(*args, param=params, n=20_000, chunk_size=777).to_dict()
    for a, b in zip(whole["equations"], parts["equations"], strict=True):
        for key in ("term_scale", "max_abs_error", "worst_point", "status"):
            assert a[key] == b[key], key


def test_timings_cover_the_work() -> None:
    timings = check("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"], n=5000).timings
    for key in ("sample_s", "autograd_s", "exact_s", "compare_s", "total_s"):
        assert timings[key] >= 0.0
    assert timings["total_s"] >= timings["setup_s"]


def test_sign_and_heaviside_of_an_undefined_argument_are_undefined() -> None:
    # torch.sign(NaN) is 0, which would make Heaviside(log(x)) = 1/2 at x < 0: a defined
    # exact value where the function is undefined (and the bound's value would differ).
    from pinncheck._bounds import run_bounded

    exprs = [sympy.Heaviside(sympy.log(x)), sympy.sign(sympy.log(x))]
    pts = [torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)] + [torch.ones(3)] * 2
    prog = Program(exprs, [x, y, t])
    for values in (prog.run(pts), run_bounded(prog, pts, [None] * 3, 2.0**-53)[0]):
        heaviside, sign = (v.tolist() for v in values)
        assert math.isnan(heaviside[0]) and heaviside[1:] == [0.0, 1.0]
        assert math.isnan(sign[0]) and sign[1:] == [-1.0, 1.0]
