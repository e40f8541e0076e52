"""The diagnosis half of ``verify``: where an equation fails, what the user's code computed
instead (a fit against candidate terms), whether its gradient with respect to the solution is
right, and the evidence from the user's ``torch.autograd.grad`` calls.

:class:`Diagnosis` is a mixin of the run (:class:`pinncheck._verify._Run`): it reads the values
the measurement kept, listed as the class's attributes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sympy
import torch

from ._callconv import Convention, build_call
from ._domain import Domain
from ._engine import DEFAULT_CHUNK, Term
from ._errors import UserCodeError
from ._evaluate import Evaluator
from ._explain import (
    FIT_RTOL,
    CandidateSet,
    Fit,
    candidate_set,
    dependencies,
    explain,
    fit_columns,
    max_order,
    no_fit_line,
    rounding_line,
)
from ._gradflow import (
    COARSE_RTOL,
    GRAD_POINTS,
    GRAD_RTOL,
    GradientFinding,
    compare,
    exact_directions,
    linearise,
    user_slopes,
)
from ._options import RunOptions
from ._pde import PDESystem
from ._probe import nan_aware_difference
from ._residual import SOLVE_FACTOR
from ._results import _num, inconclusive_reason, point_coordinates
from ._sample import sample_box
from ._usercode import GradCall, call_user, exception_text
from ._usermemory import clear_framework_caches
from ._verify_columns import coarser, dtype_eps, equation_columns, none_evidence, torch_dtype_name

if TYPE_CHECKING:
    from ._verify import VerifyEquation, VerifyReport

ResidualFunction = Callable[[torch.Tensor, torch.Tensor], Any]

# The fit and the diagnosis use at most this many points (the first ones of the sample).
FIT_POINTS = 2000
WORST_POINTS = 3
# locate() works through the kept values in blocks of this many points.
LOCATE_BLOCK = 1 << 18
# A result in a precision without a row in the tolerance table (float16, bfloat16) is compared
# with this many units of its rounding, relative to the PDE's term scale (and as rtol): coarse,
# but a wrong term is off by O(1) of the scale and still fails.
HALF_ROUNDING_UNITS = 16


class Diagnosis:
    """The diagnosis of a verify run, from the values its measurement kept."""

    # Set by the run before the diagnosis starts.
    opts: RunOptions
    system: PDESystem
    dom: Domain
    syms: list[sympy.Symbol]
    k: int
    label: str
    conv: Convention
    solutions: list[sympy.Expr]
    alphas: list[tuple[int, ...]]
    exact: dict[Term, sympy.Expr]
    calls: list[list[GradCall]]
    result_dtypes: list[torch.dtype]
    points: torch.Tensor  # (n, d) float64
    user: list[torch.Tensor]  # per equation: the user's values, float64
    exact_values: list[torch.Tensor]  # per equation: the exact residual's values
    allowed_values: list[torch.Tensor]  # per equation: the tolerance at each point

    def call(
        self, fn: ResidualFunction, cols: Sequence[torch.Tensor], watch: bool = True
    ) -> list[torch.Tensor]:
        """The user's result on ``cols`` (the run's own call)."""
        raise NotImplementedError

    def coarse(self, i: int) -> bool:
        """Whether equation ``i``'s result is less precise than the run."""
        return coarser(self.opts.dtype, self.result_dtypes[i]) != self.opts.dtype

    def dtype_name(self, i: int) -> str:
        """The dtype whose fit and coefficient tolerances apply to equation ``i``."""
        if not self.coarse(i):
            return self.opts.dtype_name
        name = torch_dtype_name(self.result_dtypes[i])
        return name if name in FIT_RTOL else "float32"

    def point_text(self, i: int) -> str:
        coords = ", ".join(
            f"{name}={float(v):.4g}" for name, v in zip(self.dom.names, self.points[i], strict=True)
        )
        return coords

    def diagnose(self, report: VerifyReport, fn: ResidualFunction) -> None:
        m = min(FIT_POINTS, self.opts.n)
        cands = candidate_set(self.system)
        pts = [self.points[:m, j].contiguous() for j in range(len(self.dom))]
        ev = Evaluator(dict(zip(self.syms, pts, strict=True)))
        terms = list(self.exact)
        term_values = dict(zip(terms, ev.tensors([self.exact[t] for t in terms]), strict=True))
        a = cands.values(pts, term_values)
        rows_ok = torch.isfinite(a).all(dim=1)
        report.warnings += self.solution_warnings(report, cands, a[rows_ok])
        for i, eq in enumerate(report.equations):
            self.locate(eq, i)
            if eq.status in ("pass", "inconclusive"):
                continue
            lines = list(eq.diagnosis)
            b = self.user[i][:m]
            ok = rows_ok & torch.isfinite(b)
            lines += self.nonfinite_lines(i)
            bb, aa = b[ok], a[ok]
            if bb.numel() == 0:
                pass
            elif float(bb.abs().max()) == 0.0:
                lines.append(
                    "your residual is identically 0: every derivative in your code vanished, so "
                    "they do not depend on the inputs. Usually the tensor you differentiate with "
                    "respect to is not on the graph of u (a slice such as x[:, 0:1] taken after "
                    "u was computed from x; torch.autograd.grad then returns None with "
                    "allow_unused=True, and a helper turned it into zeros). Differentiate with "
                    "respect to x itself and slice the gradient: torch.autograd.grad(u, x, "
                    "torch.ones_like(u), create_graph=True)[0][:, 0:1]"
                )
                eq.fit = self.fit_dict(cands, i, Fit({}, 0.0, True), int(ok.sum()))
            else:
                fit = fit_columns(
                    aa,
                    bb,
                    rtol=FIT_RTOL[self.dtype_name(i)],
                    prefer=list(cands.expected[i]),
                )
                eq.fit = self.fit_dict(cands, i, fit, int(ok.sum()))
                rounded = rounding_line(cands, i, aa, bb)
                if rounded is not None:
                    lines.append(rounded)
                elif fit.accepted:
                    lines += explain(
                        cands, i, fit, dtype_name=self.dtype_name(i), batch=self.batch_size()
                    )
                else:
                    lines.append(no_fit_line(cands, fit))
            eq.diagnosis = lines
        self.gradient_flow(report, fn)
        failed = [e for e in report.equations if e.status != "pass"]
        for e in failed:
            prefix = f"{e.name}: " if self.k > 1 else ""
            report.diagnosis += [e.diagnosis[0]] + [prefix + line for line in e.diagnosis[1:]]
        if failed:
            report.diagnosis += self.grad_evidence(order=max_order(self.system))
            report.diagnosis += self.batch_coupling(fn)

    def gradient_flow(self, report: VerifyReport, fn: ResidualFunction) -> None:
        """For the equations whose values agree: is their gradient with respect to the solution
        right too (:mod:`pinncheck._gradflow`)? For those that disagree in a way no candidate
        term explains: is their gradient right, so that the difference depends on the
        variables only (a source term)?"""
        agree = [i for i, e in enumerate(report.equations) if e.status == "pass"]
        unexplained = [
            i
            for i, e in enumerate(report.equations)
            if e.status == "fail" and e.fit is not None and not e.fit["accepted"]
        ]
        if not agree and not unexplained:
            return
        opts, system = self.opts, self.system
        m = min(GRAD_POINTS, opts.n)
        cols = sample_box(self.dom, opts.seed, 0, m, dtype=opts.dtype, device=opts.device)
        theta_sym = sympy.Dummy("theta", real=True)
        vs, exact_v = exact_directions(self.syms, list(system.solutions), self.alphas)
        sols = [s + theta_sym * v for s, v in zip(self.solutions, vs, strict=True)]
        what = f"Your residual function {self.label}"
        try:
            with torch.enable_grad():
                theta = torch.zeros(m, dtype=opts.dtype, device=opts.device, requires_grad=True)
                prepared = build_call(self.conv, self.syms, sols, cols, {theta_sym: theta})
                try:
                    out = call_user(fn, *prepared.args, what=what)
                    rows = equation_columns(out, m, self.k, what, keep_graph=True)
                    slopes = user_slopes(rows, theta)
                finally:
                    clear_framework_caches()
        except (UserCodeError, RuntimeError) as exc:
            report.warnings.append(
                f"The gradient of your residual with respect to the solution was not checked: "
                f"{exception_text(exc)}"
            )
            return
        ev = Evaluator(dict(zip(self.syms, [c.to(torch.float64).cpu() for c in cols], strict=True)))
        for i in agree + unexplained:
            eq = report.equations[i]
            lin = linearise(system.residuals[i], system.terms, self.exact, exact_v)
            rtol = GRAD_RTOL.get(self.dtype_name(i), COARSE_RTOL)
            found = compare(slopes[i], lin, ev, rtol)
            if i in agree:
                eq.gradient = "pass" if found.ok else "fail"
                if not found.ok:
                    eq.diagnosis = [self.gradient_line(eq, i, found)]
            elif found.ok and found.scale > 0:
                eq.diagnosis = [
                    line for line in eq.diagnosis if not line.startswith("no combination")
                ] + [
                    "your residual differs from the expected one by a function of "
                    f"{', '.join(self.dom.names)} only: its dependence on the solution is right "
                    "(its gradient with respect to u agrees with the PDE's), so check the "
                    "source (forcing) term"
                ]

    def gradient_line(self, eq: VerifyEquation, i: int, found: GradientFinding) -> str:
        system = self.system
        labels = {t.placeholder(): sympy.Symbol(system.term_label(t)) for t in system.terms}
        head = (
            f"{eq.name} ({eq.equation}): your residual's values are right but its gradient with "
            "respect to the solution is wrong (for u + θ·v, dR/dθ is off by up to "
            f"{found.max_error:.3g} against a scale of {found.scale:.3g})"
        )
        if found.missing:
            names = ", ".join(system.term_label(t) for t in found.missing)
            where = [
                str(arg.xreplace(labels))
                for arg in sympy.Add.make_args(system.residuals[i])
                if any(t.placeholder() in arg.free_symbols for t in found.missing)
            ]
            head += (
                f": its dependence on {names} (in the term {', '.join(where[:3])}) does not "
                "reach autograd"
            )
        return (
            head + ". A value there is cut off the graph: .detach(), .item(), .data, a "
            "computation under torch.no_grad(), or a constant built from u. Training through "
            "this residual follows a wrong gradient"
        )

    def batch_size(self) -> int:
        return min(self.opts.n, self.opts.chunk_size or DEFAULT_CHUNK)

    def locate(self, eq: VerifyEquation, i: int) -> None:
        """Count the failing points, record the worst ones, and write the 'where' line."""
        s = eq.stats
        u, e, allowed = self.user[i], self.exact_values[i], self.allowed_values[i]
        # In blocks, so that the temporaries stay small however many points there are.
        ranked: list[tuple[float, int]] = []
        for a in range(0, u.numel(), LOCATE_BLOCK):
            ub, eb = u[a : a + LOCATE_BLOCK], e[a : a + LOCATE_BLOCK]
            finite = torch.isfinite(ub) & torch.isfinite(eb)
            err = torch.where(finite, (ub - eb).abs(), torch.zeros_like(ub))
            ratio = torch.where(
                finite, err / allowed[a : a + LOCATE_BLOCK], torch.full_like(ub, -math.inf)
            ).nan_to_num_(nan=0.0)
            vals, idx = torch.topk(ratio, min(WORST_POINTS, ratio.numel()))
            ranked += [(v, a + j) for v, j in zip(vals.tolist(), idx.tolist(), strict=True)]
        # As the verdict counts them: certain failures, undecided points that high precision
        # failed, and undefined points (unsettled ones make the equation inconclusive instead).
        eq.failing_points = s.certain_failures + s.refined_failures + s.nonfinite
        ranked.sort(key=lambda vj: (-vj[0], vj[1]))
        eq.worst_points = [
            {
                "index": j,
                "point": point_coordinates(self.dom.names, self.points[j].tolist()),
                "user": _num(float(u[j])),
                "exact": _num(float(e[j])),
            }
            for v, j in ranked[:WORST_POINTS]
            if math.isfinite(v)
        ]
        if eq.status == "pass":
            return
        if s.finite == 0:
            eq.diagnosis = [f"{eq.name} ({eq.equation}) is undefined (NaN or inf) at every point"]
            return
        if eq.status == "inconclusive":
            eq.diagnosis = [f"{eq.name} ({eq.equation}) is inconclusive: {inconclusive_reason(s)}"]
            return
        worst = "; ".join(
            f"{self.point_text(p['index'])} (yours {float(u[p['index']]):.6g}, expected "
            f"{float(e[p['index']]):.6g})"
            for p in eq.worst_points
        )
        eq.diagnosis = [
            f"{eq.name} ({eq.equation}) disagrees at {eq.failing_points} of {s.count} points: max "
            f"|error| {s.max_abs_error:.3g}, {s.worst_ratio:.3g}x the rounding tolerance at the "
            f"worst point (PDE term scale {eq.term_scale:.3g}); worst at {worst}"
        ]

    def nonfinite_lines(self, i: int) -> list[str]:
        u, e = self.user[i], self.exact_values[i]
        lines = []
        bad_exact = ~torch.isfinite(e)
        bad_user = ~torch.isfinite(u) & ~bad_exact
        if bool(bad_user.any()):
            j = int(bad_user.nonzero()[0, 0])
            lines.append(
                f"your residual is NaN or inf at {int(bad_user.sum())} point(s) where the exact "
                f"one is finite, first at {self.point_text(j)} (yours {float(u[j])}); look for "
                "a division by a derivative, a log or sqrt of a negative value, or an overflow"
            )
        if bool(bad_exact.any()):
            j = int(bad_exact.nonzero()[0, 0])
            lines.append(
                f"the exact residual itself is undefined (NaN or inf) at {int(bad_exact.sum())} "
                f"point(s), first at {self.point_text(j)}: choose a manufactured solution that "
                "is smooth on the whole domain"
            )
        return lines

    def fit_dict(self, cands: CandidateSet, i: int, fit: Fit, points: int) -> dict[str, Any]:
        return {
            "accepted": fit.accepted,
            "relative_residual": _num(fit.rel_residual),
            "formula": cands.formula(fit.coefficients) if fit.accepted else None,
            "coefficients": {cands.columns[j].label: c for j, c in fit.coefficients.items()}
            if fit.accepted
            else {},
            "expected": cands.formula(cands.expected[i]),
            "points": points,
        }

    def solution_warnings(
        self, report: VerifyReport, cands: CandidateSet, a: torch.Tensor
    ) -> list[str]:
        """Weak manufactured solutions: zero or dependent terms, or an exact solution."""
        out = []
        for e in report.equations:
            s = e.stats
            if s.finite and s.extra.get("exact_over_reference", math.inf) <= SOLVE_FACTOR:
                out.append(
                    f"The manufactured solution solves {e.name} ({e.equation}): its exact "
                    "residual is 0, so a residual that returns zeros would pass too. A generic u "
                    "that does not solve the PDE catches more bugs."
                )
        if a.shape[0] == 0:
            return out
        used = {j for ex in cands.expected for j in ex} - {0}
        index = {c.expr: j for j, c in enumerate(cands.columns)}
        zero: list[int] = []
        deps: list[tuple[int, dict[int, float]]] = []
        # Each unknown's value and derivatives (and a constant): which are zero, and which are
        # combinations of others for this solution. Only relations with a PDE term matter.
        for fname in self.system.solutions:
            own = [index[t.placeholder()] for t in cands.by_symbol.values() if t.function == fname]
            z, found = dependencies(cands, a, [0, *own])
            zero += z
            deps += [(j, c) for j, c in found if j in used or used & set(c)]
        label = [c.label for c in cands.columns]
        pde_zero = [label[j] for j in zero if j in used]
        if pde_zero:
            out.append(
                f"The term(s) {', '.join(pde_zero)} of the PDE are zero at every sampled point for "
                "this manufactured solution, so a bug in them cannot show; choose a solution for "
                "which every term is non-zero."
            )
        if deps:
            shown = [f"{label[j]} ≈ {cands.formula(c)}" for j, c in deps[:3]]
            more = f" (+{len(deps) - 3} more)" if len(deps) > 3 else ""
            poly = "*".join(f"{name}**3" for name in self.dom.names)
            out.append(
                "For this manufactured solution "
                + ", ".join(shown)
                + more
                + " at every sampled point: pinncheck cannot tell these terms apart, so a bug "
                "that confuses them may pass unnoticed and the diagnosis may be ambiguous. Add a "
                f"generic term to the solution (e.g. + {poly})."
            )
        return out

    def grad_evidence(self, order: int) -> list[str]:
        calls = self.calls[0] if self.calls else []
        lines = []
        evidence = none_evidence(calls, self.batch_size())
        if evidence is not None:
            lines.append(evidence)
        flat = [c for c in calls if not c.create_graph]
        if flat and order >= 2:
            lines.append(
                f"evidence: {len(flat)} of your {len(calls)} torch.autograd.grad call(s) ran "
                "without create_graph=True; a derivative computed that way is detached and "
                "cannot be differentiated again (higher derivatives of it are zero or an error)"
            )
        return lines

    def batch_coupling(self, fn: ResidualFunction) -> list[str]:
        """Call the user's function on half of the first chunk: do the values change?"""
        half = max(1, min(self.batch_size(), self.opts.n) // 2)
        if half >= self.opts.n:
            return []
        cols = sample_box(
            self.dom, self.opts.seed, 0, half, dtype=self.opts.dtype, device=self.opts.device
        )
        got = [c.to(torch.float64).cpu() for c in self.call(fn, cols)]
        worst = 0.0
        coarsest = self.opts.dtype
        for i in range(self.k):
            full = self.user[i][:half]
            diff = nan_aware_difference(got[i], full)
            ref = float(torch.where(torch.isfinite(full), full.abs(), 0.0).max()) or 1.0
            worst = max(worst, float(diff.max()) / ref)
            coarsest = coarser(coarsest, self.result_dtypes[i])
        name = torch_dtype_name(coarsest)
        limit = {"float64": 1e-9, "float32": 1e-4}.get(
            name, HALF_ROUNDING_UNITS * dtype_eps(coarsest)
        )
        if worst <= limit:
            return []
        return [
            f"your residual couples the points of the batch: calling it on the first {half} "
            f"points alone changes its values there by up to {worst:.2g} (relative). A "
            "residual must be pointwise; look for a mean or sum over dim 0, a sum() before "
            "torch.autograd.grad over the wrong axis, or a batch-coupled model"
        ]


__all__ = ["Diagnosis"]
