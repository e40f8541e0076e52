"""``pinncheck.probe``: is the user's model pointwise and deterministic?

The ones-vector method that PINNs use to get pointwise derivatives (``grad(u, x,
grad_outputs=ones)``) is only right when output row ``i`` depends on input row ``i`` alone: the
Jacobian over the batch must be block diagonal. Batch normalisation in training mode, a mean
over the batch, attention over the batch axis... break this, and the "derivatives" silently
become sums over points. Dropout in training mode makes every call (and every residual)
random. Piecewise-linear activations make every second derivative zero.

``probe`` measures the Jacobian's off-diagonal mass on a small batch (where batch coupling,
which scales like 1/batch, is strongest; a pointwise model gives exactly 0), confirms it by
changing single points, calls the model twice to test determinism, checks second derivatives,
and walks the model's submodules (with forward hooks) to name the culprits.

Outputs that are NaN or inf are a finding of their own. Two outputs are equal when they are
identical, non-finite values included (NaN against NaN, inf against inf), so a model that returns
NaN at the same points on every call is not "nondeterministic"; the Jacobian and the second
derivatives are measured on the points with finite outputs only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._domain import Domain, DomainLike, parse_domain
from ._errors import OptionError, UserCodeError
from ._options import resolve_device, resolve_dtype, run_options
from ._probe_explain import Culprit, ProbeExplanation
from ._probe_hooks import plain_tensors
from ._probemodel import build_model, parse_args
from ._results import _num, document
from ._sample import DEFAULT_SEED, sample_box
from ._usercode import (
    Target,
    call_user,
    dtype_phrase,
    exception_text,
    parse_target,
    take_notes,
    target_scope,
    user_output,
)

DEFAULT_POINTS = 64
JACOBIAN_POINTS = 32
PERTURBED_POINTS = 3
SECOND_ORDER_OUTPUTS = 4
# A pointwise, deterministic model changes other rows by exactly 0; anything above this many
# units of rounding (relative to the output's size) counts.
ROUNDING_UNITS = 16


@dataclass
class ProbeReport:
    """The outcome of :func:`probe`. ``status`` is ``"pass"`` when the model is pointwise,
    deterministic and finite; ``diagnosis`` explains a failure, ``warnings`` the rest."""

    target: str
    model_type: str
    domain: Domain
    dtype: str
    device: str
    n: int
    seed: int
    output_columns: int
    jacobian_points: int
    offdiag_ratio: float | None
    offdiag_max_row_ratio: float | None
    perturbation: dict[str, Any]
    deterministic: bool
    nondeterminism: float
    randomness_from_rng: bool | None
    nonfinite_points: int
    second_derivatives_vanish: bool
    second_derivatives_checked: bool = True
    jacobian_note: str | None = None
    coupling: list[list[float]] | None = field(default=None, repr=False, compare=False)
    """The coupling matrix behind ``offdiag_ratio``, as ``b`` rows of ``b`` floats: entry
    ``[i][j]`` is the size of output ``i``'s derivative with respect to input ``j`` (random
    weights over the output columns), on the first ``b`` probe points with finite outputs. A
    pointwise model's is diagonal. Non-finite where the derivative is; None when the Jacobian
    was not measured. Plain floats, not a tensor, so that the report pickles back from a worker
    process. Not part of the JSON document (see :mod:`pinncheck._plot`)."""
    culprits: list[Culprit] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    kind: str = "probe"

    @property
    def jacobian_coupled(self) -> bool:
        tol = _tolerance(self.dtype)
        # A NaN ratio (never produced on purpose) is "not measured", not "coupled".
        return self.offdiag_ratio is not None and self.offdiag_ratio > tol

    @property
    def perturbation_coupled(self) -> bool:
        return bool(self.perturbation.get("coupled"))

    @property
    def pointwise(self) -> bool:
        return not (self.jacobian_coupled or self.perturbation_coupled)

    @property
    def finite(self) -> bool:
        return self.nonfinite_points == 0

    @property
    def status(self) -> str:
        return "pass" if self.pointwise and self.deterministic and self.finite else "fail"

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``pinncheck probe --format json`` (schema: docs/json.md)."""
        return document(
            {
                "kind": self.kind,
                "status": self.status,
                "target": self.target,
                "model_type": self.model_type,
                "variables": list(self.domain.names),
                "domain": self.domain.as_dict(),
                "n": self.n,
                "seed": self.seed,
                "dtype": self.dtype,
                "device": self.device,
                "output_columns": self.output_columns,
                "pointwise": self.pointwise,
                "jacobian_points": self.jacobian_points,
                "offdiag_ratio": _num(self.offdiag_ratio),
                "offdiag_max_row_ratio": _num(self.offdiag_max_row_ratio),
                "jacobian_note": self.jacobian_note,
                "coupling_tolerance": _tolerance(self.dtype),
                "perturbation": dict(self.perturbation),
                "deterministic": self.deterministic,
                "nondeterminism": _num(self.nondeterminism),
                "randomness_from_rng": self.randomness_from_rng,
                "finite": self.finite,
                "nonfinite_points": self.nonfinite_points,
                "second_derivatives_vanish": self.second_derivatives_vanish,
                "second_derivatives_checked": self.second_derivatives_checked,
                "culprits": [c.to_dict() for c in self.culprits],
                "diagnosis": list(self.diagnosis),
                "warnings": list(self.warnings),
                "timings": dict(self.timings),
            }
        )


def nan_aware_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|a - b|`` elementwise, where identical values are equal even when not finite.

    NaN against NaN and inf against inf (of the same sign) give 0; a non-finite value against
    any other value gives inf. A deterministic model that returns NaN at some points therefore
    differs from itself by exactly 0.
    """
    a, b = a.detach(), b.detach()
    same = (a == b) | (torch.isnan(a) & torch.isnan(b))
    d = torch.where(same, torch.zeros_like(a), (a - b).abs())
    return torch.nan_to_num(d, nan=math.inf, posinf=math.inf)


def _eps(dtype: str) -> float:
    return float(torch.finfo(getattr(torch, dtype)).eps)


def _tolerance(dtype: str) -> float:
    return ROUNDING_UNITS * _eps(dtype)


@dataclass
class ProbeJob:
    """A validated ``probe``: the target named, the user's code not yet imported."""

    target: Target | Any
    domain: Domain
    n: int
    seed: int
    device: torch.device | None
    dtype: torch.dtype | None
    jacobian_points: int
    args: dict[str, Any] = field(default_factory=dict)
    state_dict: Path | None = None
    definitions_only: bool = False

    def run(self, progress: Any = None) -> ProbeReport:
        return _Probe(self).run()


def prepare_probe(
    target: str | Any,
    domain: DomainLike,
    *,
    n: int = DEFAULT_POINTS,
    seed: int = DEFAULT_SEED,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    jacobian_points: int = JACOBIAN_POINTS,
    base_dir: str | Path | None = None,
    args: Sequence[str] | Mapping[str, Any] | None = None,
    state_dict: str | Path | None = None,
    definitions_only: bool = False,
) -> ProbeJob:
    """Validate the arguments of :func:`probe` without running the user's code."""
    run_options(n=n, seed=seed, device="cpu", dtype="float32", rtol=None, atol=None)
    if n < 2:
        raise OptionError(f"probe needs at least 2 points to see coupling between them, got {n}.")
    if (
        isinstance(jacobian_points, bool)
        or not isinstance(jacobian_points, int)
        or (jacobian_points < 2)
    ):
        raise OptionError(f"jacobian_points must be an integer >= 2, got {jacobian_points!r}.")
    dom = parse_domain(domain)
    dev = resolve_device(device) if device is not None else None
    dt = resolve_dtype(dtype)[1] if dtype is not None else None
    tgt = parse_target(target, base_dir) if isinstance(target, str) else target
    weights = None
    if state_dict is not None:
        weights = Path(state_dict).expanduser()
        if not weights.is_absolute():
            weights = Path(base_dir if base_dir is not None else Path.cwd()) / weights
        if not weights.is_file():
            raise OptionError(f"The state dict file {weights} does not exist.")
    return ProbeJob(
        tgt,
        dom,
        n,
        seed,
        dev,
        dt,
        jacobian_points,
        parse_args(args),
        weights,
        bool(definitions_only),
    )


def probe(
    model: str | Any,
    domain: DomainLike,
    *,
    n: int = DEFAULT_POINTS,
    seed: int = DEFAULT_SEED,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    jacobian_points: int = JACOBIAN_POINTS,
    base_dir: str | Path | None = None,
    args: Sequence[str] | Mapping[str, Any] | None = None,
    state_dict: str | Path | None = None,
    definitions_only: bool = False,
) -> ProbeReport:
    """Check that a model is pointwise (output i depends on input i only) and deterministic.

    Args:
        model: an ``nn.Module``, a callable mapping an ``(n, d)`` tensor to ``(n, m)``, a
            zero-argument factory returning one, or ``"path/to/file.py:name"`` /
            ``"package.module:name"`` naming any of these (importing it runs the user's code).
        domain: the input box; its variables are the input columns, in order.
        n: the batch size for the determinism, perturbation and second-derivative checks.
        seed: the sampling seed.
        device, dtype: default to the model's own (its parameters'); else CPU and float32. When
            given for a model with other parameters, a copy of the model is converted.
        jacobian_points: the batch size on which the full Jacobian is measured (batch coupling
            scales like 1/batch, so a small batch shows it best).
        base_dir: the folder a relative target path (and ``state_dict``) is resolved against.
        args: arguments for a class or factory target, ``{"width": 32}`` or ``["width=32"]``
            (values read as TOML values).
        state_dict: a checkpoint to load into the model first (``torch.save`` of its
            ``state_dict()``; loaded with ``weights_only=True``).
        definitions_only: load only the file's imports, definitions and simple constants.

        A model whose ``forward`` takes one input per domain variable (``forward(x, t)``) is
        called with ``(n, 1)`` columns; otherwise with one ``(n, d)`` tensor.

    Returns:
        A :class:`ProbeReport`: ``offdiag_ratio`` (0 for a pointwise model), ``deterministic``,
        ``culprits``, ``diagnosis`` and ``warnings``.

    Raises:
        UserCodeError: importing, building or calling the model failed, or its output is not
            ``(n, m)``.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        >>> r = probe(net, ["x=0:1", "t=0:1"])
        >>> r.status, r.offdiag_ratio
        ('pass', 0.0)
    """
    job = prepare_probe(
        model,
        domain,
        n=n,
        seed=seed,
        device=device,
        dtype=dtype,
        jacobian_points=jacobian_points,
        base_dir=base_dir,
        args=args,
        state_dict=state_dict,
        definitions_only=definitions_only,
    )
    return job.run()


# The probe ---------------------------------------------------------------------------------


class _Probe(ProbeExplanation):
    def __init__(self, job: ProbeJob) -> None:
        self.job = job
        self.dom = job.domain
        self.warnings: list[str] = []

    def build(self) -> None:
        job = self.job
        built = build_model(
            job.target,
            len(self.dom),
            args=job.args,
            state_dict=job.state_dict,
            definitions_only=job.definitions_only,
        )
        self.built, self.label, model = built, built.label, built.model
        self.warnings += built.warnings + take_notes()
        params = (
            [p for p in model.parameters() if p.is_floating_point()]
            if isinstance(model, nn.Module)
            else []
        )
        want_dtype, want_device = self.job.dtype, self.job.device
        if params:
            dtype, device = params[0].dtype, params[0].device
            if (want_dtype is not None and want_dtype != dtype) or (
                want_device is not None and want_device != device
            ):
                try:
                    with user_output():
                        model = model.to(dtype=want_dtype or dtype, device=want_device or device)
                except Exception as exc:
                    raise UserCodeError(
                        f"Converting the model to {want_dtype or dtype} on "
                        f"{want_device or device} failed: {type(exc).__name__}: "
                        f"{exception_text(exc)}"
                    ) from None
                self.warnings.append(
                    f"The model's parameters are {str(dtype).replace('torch.', '')} on {device}; "
                    f"a copy was converted to {str(want_dtype or dtype).replace('torch.', '')} "
                    f"on {want_device or device} as asked."
                )
                dtype, device = want_dtype or dtype, want_device or device
        else:
            dtype = want_dtype or torch.float32
            device = want_device or torch.device("cpu")
        self.model = model
        self.dtype: torch.dtype = dtype
        self.dtype_name = str(dtype).replace("torch.", "")
        self.device: torch.device = torch.device(device)
        self.tol = _tolerance(self.dtype_name)

    def forward(
        self, x: torch.Tensor, *, rng_seed: int | None = None, grad: bool = False
    ) -> torch.Tensor:
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=rng_seed is not None):
            if rng_seed is not None:
                torch.manual_seed(rng_seed)
            with torch.set_grad_enabled(grad):
                y = call_user(self.model, *self.built.inputs(x), what=self.what)
        return self.checked_output(y, x)

    def checked_output(self, y: Any, x: torch.Tensor) -> torch.Tensor:
        """The model's output as an ``(n, m)`` floating tensor, or a :class:`UserCodeError`."""
        n = x.shape[0]
        y = plain_tensors(y)
        if not isinstance(y, torch.Tensor):
            raise UserCodeError(
                f"The model {self.label} returned a {type(y).__name__}; expected a tensor of "
                f"shape (n, m) for an (n, {x.shape[1]}) input."
            )
        if y.device.type == "meta":
            raise UserCodeError(
                f"The model {self.label} returned a tensor on the meta device, which holds no "
                "values; return the output computed on the input's device."
            )
        if y.layout != torch.strided:
            raise UserCodeError(
                f"The model {self.label} returned a {y.layout} tensor; return a dense tensor."
            )
        if y.is_complex():
            raise UserCodeError(f"The model {self.label} returned complex values.")
        if not y.is_floating_point():
            raise UserCodeError(
                f"The model {self.label} returned {dtype_phrase(y.dtype)} tensor; a model's "
                "output must be floating point (float32 or float64), or it has no derivatives "
                "(a comparison such as x > 0, .long() or .round() makes integers or booleans)."
            )
        if y.dim() == 1 and y.shape[0] == n:
            y = y[:, None]
        if y.dim() != 2 or y.shape[0] != n:
            raise UserCodeError(
                f"The model {self.label} returned shape {tuple(y.shape)} for an input of shape "
                f"{tuple(x.shape)}; expected (n, m) = ({n}, m): one output row per input point."
            )
        if y.shape[1] == 0:
            raise UserCodeError(
                f"The model {self.label} returned shape {tuple(y.shape)}: no output columns; "
                "expected (n, m) with m >= 1."
            )
        return y

    def run(self) -> ProbeReport:
        # The target's folder is the import scope while the model is loaded and called.
        with target_scope(self.job.target):
            return self.measure()

    def measure(self) -> ProbeReport:
        t0 = time.perf_counter()
        self.build()
        job, dom = self.job, self.dom
        self.what = (
            f"The model {self.label} (called on an (n, {len(dom)}) input, columns "
            f"{', '.join(dom.names)})"
        )
        cols = sample_box(dom, job.seed, 0, job.n, dtype=self.dtype, device=self.device)
        x = torch.stack(cols, dim=1)
        self.x = x
        self.rng = job.seed % (2**31)
        # Finiteness and determinism. Identical non-finite values count as equal, so NaN at the
        # same points on both calls is not nondeterminism (it is reported as its own finding).
        y1 = self.forward(x).detach()
        y2 = self.forward(x).detach()
        self.y1 = y1
        finite = torch.isfinite(y1)
        self.finite_rows = finite.all(dim=1)
        bad_rows = ~self.finite_rows
        nonfinite = int(bad_rows.sum())
        self.scale = float(torch.where(finite, y1.abs(), torch.zeros_like(y1)).max()) or 1.0
        nondet = float(nan_aware_difference(y1, y2).max()) / self.scale
        deterministic = nondet <= self.tol
        from_rng: bool | None = None
        if not deterministic:
            a = self.forward(x, rng_seed=self.rng)
            b = self.forward(x, rng_seed=self.rng)
            from_rng = bool((nan_aware_difference(a, b) <= self.tol * self.scale).all())
        reliable = deterministic or bool(from_rng)
        jac, jac_row, jac_points, jac_note = self.jacobian()
        perturb = self.perturbation(reliable)
        vanish, first_zero, second_checked = self.second_derivatives()
        t1 = time.perf_counter()
        report = ProbeReport(
            target=self.label,
            model_type=type(self.model).__name__,
            domain=dom,
            dtype=self.dtype_name,
            device=str(self.device),
            n=job.n,
            seed=job.seed,
            output_columns=int(y1.shape[1]),
            jacobian_points=jac_points,
            offdiag_ratio=jac,
            offdiag_max_row_ratio=jac_row,
            perturbation=perturb,
            deterministic=deterministic,
            nondeterminism=nondet,
            randomness_from_rng=from_rng,
            nonfinite_points=nonfinite,
            second_derivatives_vanish=vanish,
            second_derivatives_checked=second_checked,
            jacobian_note=jac_note,
            coupling=self.coupling,
            warnings=list(self.warnings),
        )
        self.explain(report, bad_rows, first_zero)
        report.timings = {"probe_s": t1 - t0, "total_s": time.perf_counter() - t0}
        return report

    # Measurements ------------------------------------------------------------------------

    def jacobian(self) -> tuple[float | None, float | None, int, str | None]:
        """Off-diagonal Jacobian mass relative to the diagonal, on a small batch.

        The batch is the first points with finite outputs; points where the model's own
        derivative is NaN or inf are left out of the sums too (a pointwise model's backward pass
        multiplies their undefined derivative by 0, which gives NaN, not coupling). Returns the
        ratio, the worst point's ratio, the points measured and a note when points were left
        out or nothing could be measured.
        """
        self.coupling: list[list[float]] | None = None
        finite_rows = self.finite_rows.nonzero()[:, 0]
        if finite_rows.numel() < 2:
            where = "every point" if finite_rows.numel() == 0 else "all but one point"
            return None, None, 0, f"not evaluated: the output is NaN or inf at {where}"
        rows = finite_rows[: min(self.job.jacobian_points, self.job.n)]
        b = int(rows.numel())
        xs = self.x[rows].detach().clone().requires_grad_(True)
        y = self.forward(xs, rng_seed=self.rng, grad=True)
        if not y.requires_grad:
            self.warnings.append(
                "The model's output has no gradient with respect to its input (computed without "
                "autograd, or detached), so its Jacobian was not measured; only single-point "
                "perturbations were checked. A PINN needs that gradient."
            )
            return None, None, b, None
        # One backward pass per point, with random weights over the output columns (so that
        # no two columns can cancel): row i of the weighted Jacobian is J[i, :, j, :] . w, and
        # mass[i, j] is its squared size at point j.
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(y.shape[1], generator=gen, dtype=torch.float64).to(y.dtype).to(y.device)
        mass = torch.zeros(b, b, dtype=torch.float64)
        for i in range(b):
            go = torch.zeros_like(y)
            go[i] = w
            (g,) = call_user(
                lambda go=go: torch.autograd.grad(y, xs, go, retain_graph=True, allow_unused=True),
                what=f"Differentiating the output of {self.label}",
            )
            if g is not None:
                mass[i] = (g.detach().to(torch.float64).cpu() ** 2).reshape(b, -1).sum(dim=1)
        self.coupling = mass.sqrt().tolist()
        ok = torch.isfinite(mass.diagonal())
        used = int(ok.sum())
        left_out = []
        if len(finite_rows) < self.x.shape[0]:
            left_out.append("points with NaN or inf outputs")
        if used < b:
            left_out.append(f"{b - used} point(s) where the derivative is NaN or inf")
        note = f"measured without the {' and '.join(left_out)}" if left_out else None
        if used < 2:
            return None, None, used, "not evaluated: the model's derivatives are NaN or inf"
        mass = mass[ok][:, ok]
        diag = mass.diagonal().clone()
        off = mass.fill_diagonal_(0.0)
        # NaN between two points with defined derivatives cannot be measured; inf is coupling.
        off = torch.nan_to_num(off, nan=0.0).sum(dim=1)
        total_d, total_o = float(diag.sum()), float(off.sum())
        if total_d == 0.0:
            ratio = 0.0 if total_o == 0.0 else math.inf
        else:
            ratio = math.sqrt(total_o / total_d)
        per_row = [
            math.sqrt(o / d) if d > 0 else (0.0 if o == 0 else math.inf)
            for d, o in zip(diag.tolist(), off.tolist(), strict=True)
        ]
        return ratio, max(per_row), used, note

    def changed_rows(self, a: torch.Tensor, b: torch.Tensor, skip: int | None) -> torch.Tensor:
        """The largest change in each row (NaN against NaN is no change); row ``skip`` is 0."""
        n = a.shape[0]
        if a.numel() == 0:
            return torch.zeros(n, dtype=a.dtype, device=a.device)
        d = nan_aware_difference(a, b).reshape(n, -1).amax(dim=1)
        if skip is not None:
            d[skip] = 0.0
        return d

    def perturbation(self, reliable: bool) -> dict[str, Any]:
        """Change single points; do the other points' outputs move?"""
        n = self.job.n
        picks = sorted({0, n // 2, n - 1})[:PERTURBED_POINTS]
        if not bool(self.finite_rows.any()):
            return {
                "points": [],
                "max_rel_change": None,
                "rows_changed": 0,
                "worst_point": None,
                "reliable": reliable,
                "coupled": False,
                "evaluated": False,
            }
        fresh = sample_box(
            self.dom, self.job.seed + 1, 0, len(picks), dtype=self.dtype, device=self.device
        )
        fresh_x = torch.stack(fresh, dim=1)
        base = self.forward(self.x, rng_seed=self.rng)
        worst, rows, at = 0.0, 0, picks[0]
        for k, j in enumerate(picks):
            xp = self.x.clone()
            xp[j] = fresh_x[k]
            yp = self.forward(xp, rng_seed=self.rng)
            d = self.changed_rows(yp, base, j) / self.scale
            moved = int((d > self.tol).sum())
            if float(d.max()) > worst:
                worst, rows, at = float(d.max()), moved, j
        return {
            "points": picks,
            "max_rel_change": _num(worst),
            "rows_changed": rows,
            "worst_point": at,
            "reliable": reliable,
            "coupled": reliable and worst > self.tol,
            "evaluated": True,
        }

    def second_derivatives(self) -> tuple[bool, bool, bool]:
        """(second derivatives all exactly zero, first derivatives all exactly zero, evaluated).

        Measured at the points with finite outputs; NaN derivatives are no evidence either way,
        and when nothing but NaN is seen (or there is no gradient) the check is not evaluated.
        """
        if not bool(self.finite_rows.any()):
            return False, False, False
        xs = self.x[self.finite_rows].detach().clone().requires_grad_(True)
        y = self.forward(xs, rng_seed=self.rng, grad=True)
        if not y.requires_grad:
            return False, False, False
        first_zero = second_zero = True
        first_seen = second_seen = False
        for a in range(min(y.shape[1], SECOND_ORDER_OUTPUTS)):

            def first(a: int = a) -> Any:
                return torch.autograd.grad(
                    y[:, a].sum(), xs, retain_graph=True, create_graph=True, allow_unused=True
                )

            (g,) = call_user(first, what=f"Differentiating the output of {self.label}")
            if g is None:  # this output does not depend on the input at all
                first_seen = second_seen = True
                continue
            defined = ~torch.isnan(g)
            first_seen = first_seen or bool(defined.any())
            if bool(((g != 0) & defined).any()):
                first_zero = False
            if not g.requires_grad:  # the first derivative is constant: second ones are 0
                second_seen = True
                continue
            for k in range(xs.shape[1]):

                def second(k: int = k, g: torch.Tensor = g) -> Any:
                    return torch.autograd.grad(
                        g[:, k].sum(), xs, retain_graph=True, allow_unused=True
                    )

                (h,) = call_user(second, what=f"Differentiating the output of {self.label}")
                if h is None:
                    second_seen = True
                    continue
                defined = ~torch.isnan(h)
                second_seen = second_seen or bool(defined.any())
                if bool(((h != 0) & defined).any()):
                    second_zero = False
        if not first_seen:
            return False, False, False
        if first_zero:
            return False, True, True
        if not second_seen:
            return False, False, False
        return second_zero, False, True


__all__ = ["Culprit", "ProbeJob", "ProbeReport", "nan_aware_difference", "prepare_probe", "probe"]
