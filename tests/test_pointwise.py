"""The pointwise seam: sinks see every point once, in order, with the values the verdict used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from helpers import HEAT
from pinncheck._check import prepare_check
from pinncheck._pointwise import ChunkView, Layout
from pinncheck._residual import prepare_residual
from pinncheck._verify import prepare_verify

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "user_code"


class Collect:
    """A sink that keeps everything (fine for tests' small n)."""

    def __init__(self) -> None:
        self.layout: Layout | None = None
        self.starts: list[int] = []
        self.cols: dict[str, list[torch.Tensor]] = {}

    def start(self, layout: Layout) -> None:
        self.layout = layout

    def partial(self, view: ChunkView) -> Any:
        assert self.layout is not None
        out: dict[str, Any] = {"start": view.start, "m": len(view)}
        for j, v in enumerate(self.layout.variables):
            out[v] = view.points[j].clone()
        for q, name in enumerate(self.layout.names):
            for field in ("values", "exact", "error", "tolerance", "reference"):
                out[f"{name}.{field}"] = getattr(view, field)[q].clone()
        return out

    def merge(self, partial: Any) -> None:
        self.starts.append(partial.pop("start"))
        partial.pop("m")
        for key, value in partial.items():
            self.cols.setdefault(key, []).append(value)

    def column(self, key: str) -> torch.Tensor:
        return torch.cat(self.cols[key])


def test_check_sink_sees_each_point_once_in_order_whatever_the_chunk() -> None:
    sinks = []
    for chunk in (1000, 97):
        job = prepare_check(
            "x1**2*sin(x2)", ["x1=0:1", "x2=0:2"], n=1000, order=2, chunk_size=chunk
        )
        sink = Collect()
        report = job.run(sinks=[sink])
        sinks.append(sink)
        assert sink.layout is not None
        assert sink.layout.names == tuple(d.name for d in report.derivatives)
        assert sink.layout.variables == ("x1", "x2") and sink.layout.highs == (1.0, 2.0)
        assert sink.starts == list(range(0, 1000, chunk))
        for d in report.derivatives:
            err = sink.column(f"{d.name}.error")
            assert err.numel() == 1000
            # The report's largest error may have been re-measured in high precision (then it
            # moves by at most the reference's error bound).
            slack = d.stats.max_reference_error
            assert abs(float(err.max()) - d.stats.max_abs_error) <= slack
            diff = (sink.column(f"{d.name}.values") - sink.column(f"{d.name}.exact")).abs()
            assert torch.equal(diff, err)
            w = d.stats.worst
            assert w is not None
            assert float(sink.column("x1")[w.index]) == w.point[0]
    a, b = sinks
    for key in a.cols:
        assert torch.equal(a.column(key), b.column(key)), key


def test_residual_sink_layout_has_terms_then_equations() -> None:
    job = prepare_residual(
        "u_t - nu*u_xx",
        "u = exp(-nu*pi**2*t)*sin(pi*x)",
        ["x=0:1", "t=0:1"],
        param=["nu=0.1"],
        n=300,
    )
    sink = Collect()
    report = job.run(sinks=[sink])
    assert sink.layout is not None
    eqs = [e.name for e in report.equations]
    assert list(sink.layout.names[-len(eqs) :]) == eqs
    assert sink.layout.kinds[-1] == "equation" and sink.layout.kinds[0] == "derivative"
    # A solution: the exact residual is within its reference bound at every point.
    ex, ref = sink.column("eq1.exact"), sink.column("eq1.reference")
    assert bool((ex.abs() <= ref).all())


def test_verify_sink_sees_the_failing_points_the_report_counts() -> None:
    for target, failing in (
        ("heat_correct.py:residual", 0),
        ("heat_swapped_column.py:residual", None),
    ):
        job = prepare_verify(target, n=400, base_dir=SAMPLES, **HEAT)
        sink = Collect()
        report = job.run(sinks=[sink])
        eq = report.equations[0]
        fails = int((sink.column("eq1.error") > sink.column("eq1.tolerance")).sum())
        assert fails == eq.failing_points
        if failing is not None:
            assert fails == failing
        else:
            assert fails > 100 and report.status == "fail"


@pytest.mark.parametrize("chunk", [64, 400])
def test_verify_sink_does_not_depend_on_the_chunk(chunk: int) -> None:
    job = prepare_verify(
        "heat_correct.py:residual", n=400, base_dir=SAMPLES, chunk_size=chunk, **HEAT
    )
    sink = Collect()
    job.run(sinks=[sink])
    assert sink.starts == list(range(0, 400, chunk))
    assert sink.column("t").numel() == 400


@pytest.mark.parametrize("n", [3000, 70000])  # judged with full bounds everywhere / sampled
def test_views_carry_the_ratios_the_verdict_used(n: int) -> None:
    ratios: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]] = []

    class Ratios(Collect):
        def partial(self, view: ChunkView) -> Any:
            for q in range(len(view.values)):
                ratios.append((view.error[q], view.tolerance[q], view.ratio[q], view.ratio_max[q]))
            return super().partial(view)

    job = prepare_check("exp(x)*sin(3*y)", ["x=0:1", "y=0:1"], n=n, order=2)
    sink = Ratios()
    report = job.run(sinks=[sink])
    for err, tol, ratio, top in ratios:
        want = torch.div(err, tol).nan_to_num_(nan=0.0)
        assert torch.allclose(ratio, want, rtol=1e-12, atol=0.0)
        assert top >= float(want.amax()) and top == float(ratio.amax())
    # The worst point's ratio against the float64 reference (the report may refine it).
    probes = [d.stats.worst for d in report.derivatives if d.stats.worst is not None]
    worst = max(abs(p.autograd - p.exact) / p.tolerance for p in probes)
    assert max(top for *_, top in ratios) == pytest.approx(worst, rel=1e-9)
