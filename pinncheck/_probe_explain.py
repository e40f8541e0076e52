"""The words of ``probe``: the submodules that likely cause a finding (by type, and where the
forward hooks saw a difference appear), and the lines that explain it.

:class:`ProbeExplanation` is a mixin of the probe run (:class:`pinncheck._probe._Probe`); it
reads the attributes listed on the class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ._domain import Domain
from ._probe_hooks import Origin, first_appearance, recording
from ._sample import sample_box

if TYPE_CHECKING:
    from ._probe import ProbeJob, ProbeReport

_RELU_LIKE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.Hardtanh,
    nn.Threshold,
    nn.Hardshrink,
    nn.Softshrink,
)
_ATTENTION = (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


@dataclass
class Culprit:
    """A submodule that likely causes a finding.

    Attributes:
        name: its qualified name in ``model.named_modules()`` (``""`` is the model itself).
        type: its class name.
        problem: ``"batch coupling"``, ``"nondeterminism"`` or ``"vanishing second derivatives"``.
        reason: why it is suspected.
        observed: whether the forward hooks saw the problem appear in it (not just its type).
    """

    name: str
    type: str
    problem: str
    reason: str
    observed: bool = False

    @property
    def display(self) -> str:
        return f"{self.type} `{self.name}`" if self.name else f"{self.type} (the model itself)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "problem": self.problem,
            "reason": self.reason,
            "observed": self.observed,
        }


class ProbeExplanation:
    """Culprits and explanations of a probe run."""

    # Set by the run.
    job: ProbeJob
    dom: Domain
    model: Any
    x: torch.Tensor
    y1: torch.Tensor
    tol: float
    dtype: torch.dtype
    device: torch.device
    rng: int

    def forward(
        self, x: torch.Tensor, *, rng_seed: int | None = None, grad: bool = False
    ) -> torch.Tensor:
        """The model's output on ``x`` (the run's own call)."""
        raise NotImplementedError

    def changed_rows(self, a: torch.Tensor, b: torch.Tensor, skip: int | None) -> torch.Tensor:
        """The rows where ``a`` and ``b`` differ (the run's own test)."""
        raise NotImplementedError

    def static_culprits(self) -> list[Culprit]:
        from torch.nn.modules.batchnorm import _BatchNorm
        from torch.nn.modules.dropout import _DropoutNd

        out: list[Culprit] = []
        if not isinstance(self.model, nn.Module):
            return out
        for name, mod in self.model.named_modules():
            kind = type(mod).__name__
            if isinstance(mod, _BatchNorm) and (mod.training or not mod.track_running_stats):
                why = (
                    "in training mode, normalising each feature with the mean and variance of "
                    "the whole batch"
                    if mod.training
                    else "built with track_running_stats=False, using the batch's statistics "
                    "even in eval mode"
                )
                out.append(Culprit(name, kind, "batch coupling", why))
            elif isinstance(mod, _ATTENTION):
                out.append(
                    Culprit(
                        name,
                        kind,
                        "batch coupling",
                        "attention mixes the positions of a sequence; with (n, d) inputs the "
                        "points may be attended over",
                    )
                )
            elif isinstance(mod, (_DropoutNd, nn.AlphaDropout)) and mod.training and mod.p > 0:
                out.append(
                    Culprit(
                        name,
                        kind,
                        "nondeterminism",
                        f"in training mode with p={mod.p:g}, drawing a new random mask on "
                        "every call",
                    )
                )
            elif isinstance(mod, _RELU_LIKE):
                out.append(
                    Culprit(
                        name,
                        kind,
                        "vanishing second derivatives",
                        "piecewise linear, with a second derivative that is zero almost everywhere",
                    )
                )
        return out

    def locate(self, perturb_row: int | None) -> Origin | None:
        """Run twice with hooks and find where the difference first appears."""
        if not isinstance(self.model, nn.Module):
            return None
        n = self.job.n
        x2 = self.x.clone()
        seed = self.rng
        if perturb_row is not None:
            fresh = sample_box(
                self.dom, self.job.seed + 1, 0, 1, dtype=self.dtype, device=self.device
            )
            x2[perturb_row] = torch.stack(fresh, dim=1)[0]
        with recording(self.model, n) as ra:
            self.forward(self.x, rng_seed=seed if perturb_row is not None else None)
        with recording(self.model, n) as rb:
            self.forward(x2, rng_seed=seed if perturb_row is not None else None)

        def changed(a: torch.Tensor, b: torch.Tensor) -> bool:
            if not (a.is_floating_point() and b.is_floating_point()):
                return bool((a != b).any())
            if a.numel() == 0:
                return False
            d = self.changed_rows(a, b, perturb_row)
            ref = float(torch.where(torch.isfinite(a), a.abs(), torch.zeros_like(a)).max()) or 1.0
            return bool((d > self.tol * ref).any())

        return first_appearance(ra, rb, changed)

    def explain(self, r: ProbeReport, bad_rows: torch.Tensor, first_zero: bool) -> None:
        static = self.static_culprits()
        names = self.dom.names
        if not r.finite:
            j = int(bad_rows.nonzero()[0, 0])
            at = ", ".join(f"{v}={float(c):.4g}" for v, c in zip(names, self.x[j], strict=True))
            row = self.y1[j]
            value = float(row[~torch.isfinite(row)][0])
            rest = (
                "the other checks used the points with finite outputs"
                if r.nonfinite_points < r.n
                else "the other checks could not be evaluated"
            )
            r.diagnosis.append(
                f"non-finite outputs at {r.nonfinite_points} of {r.n} points, first at {at} "
                f"(output {value}): the model returns NaN or inf there, and so do the PDE "
                "residual and the loss; look for a log or sqrt of a negative value, a division "
                f"by zero, or an overflow such as exp of a large input ({rest})"
            )
        if not r.pointwise:
            r.diagnosis.append(self.coupling_line(r))
            r.culprits += [c for c in static if c.problem == "batch coupling"]
            found = self.locate(perturb_row=int(r.perturbation.get("worst_point") or 0))
            r.diagnosis += self.culprit_lines(r, found, "batch coupling")
        if not r.deterministic:
            line = (
                f"nondeterministic: two calls on the same input differ by up to "
                f"{r.nondeterminism:.3g} (relative to the output's size)"
            )
            if r.randomness_from_rng:
                line += (
                    "; with a fixed torch seed they agree, so the randomness comes from torch's RNG"
                )
            elif r.randomness_from_rng is False:
                line += (
                    "; they differ even with a fixed torch seed (state that changes between calls, "
                    "or nondeterministic kernels), so the coupling checks are unreliable"
                )
            r.diagnosis.append(
                line + ". The PDE residual, and the loss, are then random at every step"
            )
            r.culprits += [c for c in static if c.problem == "nondeterminism"]
            found = self.locate(perturb_row=None)
            r.diagnosis += self.culprit_lines(r, found, "nondeterminism")
        if first_zero:
            r.warnings.append(
                "The output does not depend on the inputs: every first derivative is zero at "
                "every sampled point."
            )
        elif r.second_derivatives_vanish:
            relu = [c for c in static if c.problem == "vanishing second derivatives"]
            r.culprits += relu
            where = (
                " (piecewise-linear activations: " + ", ".join(c.display for c in relu) + ")"
                if relu
                else " (piecewise-linear activations, e.g. F.relu in forward())"
            )
            r.warnings.append(
                "The second derivatives of the output with respect to the inputs vanish at "
                f"every sampled point{where}: second-order PDE terms will be zero (u_xx, u_tt, "
                "... computed from this model). Use a smooth activation (tanh, SiLU, GELU, "
                "softplus)."
            )

    def coupling_line(self, r: ProbeReport) -> str:
        p = r.perturbation
        parts = []
        if r.jacobian_coupled:
            parts.append(
                f"the Jacobian's off-diagonal mass is {r.offdiag_ratio:.3g} of its diagonal on "
                f"{r.jacobian_points} points (worst point {r.offdiag_max_row_ratio:.3g}; a "
                "pointwise model gives exactly 0)"
            )
        elif r.offdiag_ratio is not None:
            parts.append(
                "the Jacobian is diagonal, so the coupling passes through detached or "
                "non-differentiable operations"
            )
        if p.get("coupled"):
            parts.append(
                f"changing point {p['worst_point']} alone changed the outputs at "
                f"{p['rows_changed']} of the other {r.n - 1} points by up to "
                f"{float(p['max_rel_change']):.3g} (relative)"
            )
        elif p.get("reliable"):
            parts.append("single-point perturbations did not move other outputs beyond rounding")
        return (
            "batch coupling: output i depends on other points of the batch, not only on input i: "
            + "; ".join(parts)
            + ". The ones-vector derivatives (grad(u, x, ones)) of this model are sums over "
            "points, not pointwise derivatives, so every PDE term is wrong"
        )

    def culprit_lines(self, r: ProbeReport, found: Origin | None, problem: str) -> list[str]:
        """Name the suspects (by type) and where the hooks saw the problem appear."""
        suspects = [c for c in r.culprits if c.problem == problem]
        lines = []
        note = ""
        if found is not None:
            rec = found.record
            label = f"{rec.type} `{rec.name}`" if rec.name else f"{rec.type} (the model itself)"
            if found.in_own_code:
                around = found.around
                if len(around) == 2:
                    where = f"between the calls of `{around[0].name}` and `{around[1].name}`"
                elif around:
                    where = f"before the call of `{around[0].name}`"
                else:
                    where = "after its submodules"
                what = (
                    "a mean, sum, std, softmax or sort over dim 0 (the batch)"
                    if problem == "batch coupling"
                    else "random numbers (torch.rand, F.dropout)"
                )
                if not any(c.name == rec.name for c in suspects):
                    r.culprits.append(
                        Culprit(rec.name, rec.type, problem, f"in its forward(), {where}", True)
                    )
                lines.append(
                    f"the {problem} arises in the forward() of {label}, {where}, not in a "
                    f"submodule: look there for {what}"
                )
            else:
                match = [c for c in suspects if c.name == rec.name]
                if match:
                    match[0].observed = True
                else:
                    c = Culprit(
                        rec.name,
                        rec.type,
                        problem,
                        "its output changes while its inputs do not",
                        True,
                    )
                    r.culprits.append(c)
                    suspects.append(c)
                note = f" (the {problem} first appears at {label})"
        if suspects:
            reasons = "; ".join(dict.fromkeys(c.reason for c in suspects))
            fix = (
                "Call model.eval() before computing PDE residuals, or use a per-point "
                "normalisation (LayerNorm) or none in a PINN"
                if problem == "batch coupling"
                else "Call model.eval() (or use p=0) when computing PDE residuals"
            )
            plural = "s" if len(suspects) > 1 else ""
            shown = ", ".join(c.display for c in suspects)
            lines.insert(0, f"likely culprit{plural}: {shown}: {reasons}{note}. {fix}")
        return lines


__all__ = ["Culprit", "ProbeExplanation"]
