"""Explain a wrong residual: what did the user's code compute instead?

The user's residual is fitted, by least squares over the sampled points, against the exact
values of candidate terms: every derivative of every unknown up to the PDE's order (value
included), the PDE's own nonlinear and variable-coefficient terms (and their images under a
permutation of the variables, so that a swapped column is recognised in ``u*u_x`` too), its
forcing, and a constant. A good fit is pruned to the fewest terms that still explain the
residual and compared with the PDE's own coefficients to name the likely bug.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy
import torch

from ._autograd import multi_indices
from ._domain import Domain
from ._engine import Term
from ._evaluate import Evaluator
from ._pde import PDESystem, term_label

# A fit explains the residual when ||A c - b|| <= FIT_RTOL * ||b||; float32 residuals carry
# rounding of ~1e-5 of their scale (second derivatives), float64 ones ~1e-13.
FIT_RTOL = {"float64": 1e-6, "float32": 1e-3}
# Two fitted coefficients are the same when they agree to this relative precision.
COEF_RTOL = {"float64": 1e-5, "float32": 1e-2}
# Columns of the exact (float64) candidate matrix are dependent below this relative residual.
DEPENDENT_RTOL = 1e-9
# Pruning keeps a column whose removal raises the residual by more than SIGNIFICANCE times the
# noise of the full fit (its residual per degree of freedom: the user's rounding), unless its
# share of ||b|| is below NEGLIGIBLE * rtol. A loose float32 rtol alone would drop a small but
# present term (0.001*u_xx) and blame others for it.
SIGNIFICANCE = 10.0
NEGLIGIBLE = 1e-3
MAX_SOLVES = 600
# The float32 rounding of a parameter explains a residual when it accounts for the difference
# from the expected residual to this relative precision (float64 noise is ~1e-8 of it).
ROUNDING_RTOL = 1e-3
ROUNDING_MAX_TERMS = 8
PERMUTED_MAX_VARIABLES = 3
MAPPED_MAX_VARIABLES = 4


@dataclass(frozen=True)
class Column:
    """One candidate term: ``expr`` in term placeholders and variables, shown as ``label``."""

    label: str
    expr: sympy.Expr
    order: int


Coefficients = dict[int, float]


def _placeholders(system: PDESystem, max_order: int) -> dict[sympy.Symbol, Term]:
    alphas = [(), *multi_indices(len(system.domain), max_order)]
    return {
        Term(f, a).placeholder(): Term(f, a) for f in system.solutions for a in alphas
    }  # dict order: unknowns, then orders


def max_order(system: PDESystem) -> int:
    """The highest derivative order the PDEs use."""
    return max((len(t.alpha) for t in system.terms), default=1)


def _label(expr: sympy.Expr, by_symbol: Mapping[sympy.Symbol, Term], domain: Domain) -> str:
    unknowns = {t.function for t in by_symbol.values()}
    names = {s: sympy.Symbol(term_label(t, domain, unknowns)) for s, t in by_symbol.items()}
    text = sympy.sstr(expr.xreplace(names))
    return text if len(text) <= 60 else text[:59] + "…"


def _order(expr: sympy.Expr, by_symbol: Mapping[sympy.Symbol, Term]) -> int:
    return max((len(by_symbol[s].alpha) for s in expr.free_symbols if s in by_symbol), default=0)


def _mapped(
    expr: sympy.Expr, by_symbol: Mapping[sympy.Symbol, Term], pi: Sequence[int]
) -> sympy.Expr:
    """``expr`` with every derivative's variables sent through ``pi`` (index i -> pi[i])."""
    swap = {
        s: Term(t.function, tuple(sorted(pi[i] for i in t.alpha))).placeholder()
        for s, t in by_symbol.items()
        if s in expr.free_symbols
    }
    return expr.xreplace(swap)


@dataclass
class CandidateSet:
    """The candidate columns for a system, and each PDE's own coefficients on them."""

    system: PDESystem
    columns: list[Column]
    expected: list[Coefficients]
    by_symbol: dict[sympy.Symbol, Term]

    def values(
        self, points: Sequence[torch.Tensor], terms: Mapping[Term, torch.Tensor]
    ) -> torch.Tensor:
        """The ``(N, p)`` matrix of column values from the exact term values at the points."""
        from ._engine import symbols_of

        inputs = dict(zip(symbols_of(self.system.domain), points, strict=True))
        inputs.update({t.placeholder(): v for t, v in terms.items()})
        ev = Evaluator(inputs)
        return torch.stack([ev.tensor(c.expr, like=points[0]) for c in self.columns], dim=1)

    def formula(self, coefficients: Coefficients) -> str:
        """``1.0·u_x − 0.1·u_tt`` (constant last)."""
        items = sorted(
            coefficients.items(), key=lambda kv: (self.columns[kv[0]].order == -1, kv[0])
        )
        if not items:
            return "0"
        out = ""
        for k, (j, c) in enumerate(items):
            col = self.columns[j]
            mag = _coef_text(abs(c))
            body = mag if col.order == -1 else f"{mag}·{col.label}"
            if k == 0:
                out = ("−" if c < 0 else "") + body
            else:
                out += (" − " if c < 0 else " + ") + body
        return out


def _coef_text(x: float) -> str:
    s = f"{x:.4g}"
    if not any(ch in s for ch in ".en"):
        s += ".0"
    return s


def candidate_set(system: PDESystem) -> CandidateSet:
    """Build the candidate columns and the PDEs' expected coefficients (see the module doc)."""
    from ._engine import symbols_of

    dom = system.domain
    order = max_order(system)
    by_symbol = _placeholders(system, order)
    varsyms = symbols_of(dom)
    columns: list[Column] = [Column("1", sympy.S.One, -1)]
    index: dict[sympy.Expr, int] = {sympy.S.One: 0}

    def add(expr: sympy.Expr, label: str | None = None) -> int:
        if expr not in index:
            index[expr] = len(columns)
            columns.append(
                Column(label or _label(expr, by_symbol, dom), expr, _order(expr, by_symbol))
            )
        return index[expr]

    for sym in by_symbol:
        add(sym)
    expected: list[Coefficients] = []
    nonlinear: list[sympy.Expr] = []
    for r in system.residuals:
        coeffs: Coefficients = {}
        forcing = sympy.S.Zero
        for part in sympy.Add.make_args(sympy.expand_mul(r)):
            terms_in = [s for s in part.free_symbols if s in by_symbol]
            if not terms_in:
                forcing += part
                continue
            coeff, rest = part.as_independent(*terms_in, *varsyms, as_Add=False)
            j = add(rest)
            coeffs[j] = coeffs.get(j, 0.0) + float(coeff)
            if rest not in by_symbol:
                nonlinear.append(rest)
        if forcing != 0:
            const, varying = forcing.as_independent(*varsyms, as_Add=True)
            if const != 0:
                coeffs[0] = coeffs.get(0, 0.0) + float(const)
            if varying != 0:
                coeff, rest = varying.as_independent(*varsyms, as_Add=False)
                j = add(rest, "f(" + ", ".join(dom.names) + ")=" + _label(rest, by_symbol, dom))
                coeffs[j] = coeffs.get(j, 0.0) + float(coeff)
        expected.append({j: c for j, c in coeffs.items() if c != 0.0})
    if len(dom) <= PERMUTED_MAX_VARIABLES:
        for pi in itertools.permutations(range(len(dom))):
            for expr in nonlinear:
                add(_mapped(expr, by_symbol, pi))
    return CandidateSet(system, columns, expected, by_symbol)


@dataclass
class Fit:
    """A least-squares fit of a residual on candidate columns.

    ``coefficients`` maps column index to coefficient (pruned to the fewest columns that still
    explain the residual when ``accepted``); ``rel_residual`` is ``||A c - b|| / ||b||``.
    """

    coefficients: Coefficients
    rel_residual: float
    accepted: bool


class _Solver:
    """Least squares on subsets of columns, through one QR factorisation of all of them.

    With ``A = QR`` and ``y = Q^T b``, the residual of ``b`` on the columns ``S`` is
    ``||b - Q y||^2 + min ||R_S c - y||^2``: every subset costs a ``p x |S|`` solve.
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor) -> None:
        norms = a.norm(dim=0)
        self.nonzero = [j for j in range(a.shape[1]) if float(norms[j]) > 0.0]
        scaled = a / torch.where(norms > 0, norms, torch.ones_like(norms))
        q, self.r = torch.linalg.qr(scaled)
        self.y = q.T @ b
        self.outside = float((b - q @ self.y).norm()) ** 2
        self.norms = norms
        self.bnorm = float(b.norm())
        self.solves = 0

    def solve(self, active: Sequence[int]) -> tuple[dict[int, float], float]:
        self.solves += 1
        if not active:
            return {}, 1.0
        sub = self.r[:, list(active)]
        sol = torch.linalg.lstsq(sub, self.y[:, None], driver="gelsd").solution[:, 0]
        inside = float((sub @ sol - self.y).norm()) ** 2
        rel = math.sqrt(self.outside + inside) / self.bnorm
        return {j: float(sol[k]) for k, j in enumerate(active)}, rel

    def unscale(self, scaled: dict[int, float]) -> Coefficients:
        return {j: c / float(self.norms[j]) for j, c in scaled.items()}


def fit_columns(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    rtol: float,
    prefer: Sequence[int] = (),
    candidates: Sequence[int] | None = None,
) -> Fit:
    """Fit ``b`` on the columns of ``a`` (float64) and prune to the fewest that still fit.

    Args:
        a: ``(N, p)`` candidate values. b: ``(N,)`` the values to explain (not all zero).
        rtol: the fit is accepted when ``||A c - b|| <= rtol * ||b||``.
        prefer: columns tried last when pruning (the PDE's own terms), so that among equivalent
            explanations the one closest to the PDE is kept.
        candidates: the columns to use (default: all non-zero ones).

    Returns:
        A :class:`Fit`; its coefficients are in the columns' own units.
    """
    solver = _Solver(a, b)
    active = [j for j in (candidates if candidates is not None else solver.nonzero)]
    active = [j for j in active if j in solver.nonzero]
    coef, rel = solver.solve(active)
    if not rel <= rtol:
        return Fit(solver.unscale(coef), rel, False)
    # The noise of the fit, per degree of freedom, in units of ||b||.
    dof = max(1, int(a.shape[0]) - len(active))
    noise = rel / math.sqrt(dof)
    floor = max(SIGNIFICANCE * noise, NEGLIGIBLE * rtol) ** 2

    def holds(r_now: float, r_new: float) -> bool:
        """Whether dropping columns (residual ``r_now`` -> ``r_new``) loses nothing real."""
        return r_new <= rtol and r_new**2 - r_now**2 <= floor

    # Drop columns whose weight is rounding noise, then remove one column at a time while the
    # fit still holds, trying the smallest weights (and columns outside the PDE) first.
    biggest = max(abs(c) for c in coef.values())
    tiny = [j for j in active if abs(coef[j]) <= 1e-12 * biggest]
    if tiny:
        trial = [j for j in active if j not in tiny]
        c2, r2 = solver.solve(trial)
        if holds(rel, r2):
            active, coef, rel = trial, c2, r2
    preferred = set(prefer)
    improved = True
    while improved and len(active) > 1 and solver.solves < MAX_SOLVES:
        improved = False
        for j in sorted(active, key=lambda j: (j in preferred, abs(coef[j]))):
            trial = [k for k in active if k != j]
            c2, r2 = solver.solve(trial)
            if holds(rel, r2):
                active, coef, rel = trial, c2, r2
                improved = True
                break
            if solver.solves >= MAX_SOLVES:
                break
    return Fit(solver.unscale(coef), rel, True)


def dependencies(
    cands: CandidateSet, a: torch.Tensor, among: Sequence[int]
) -> tuple[list[int], list[tuple[int, Coefficients]]]:
    """Zero columns, and columns equal to a combination of earlier ones, among ``among``.

    Returns ``(zero, [(j, {i: c})])``: column ``j`` equals ``sum c_i * column_i``.
    """
    zero: list[int] = []
    basis: list[int] = []
    found: list[tuple[int, Coefficients]] = []
    for j in among:
        col = a[:, j]
        if float(col.abs().max()) == 0.0:
            zero.append(j)
            continue
        if basis:
            fit = fit_columns(a, col, rtol=DEPENDENT_RTOL, candidates=basis)
            if fit.accepted:
                found.append((j, fit.coefficients))
                continue
        basis.append(j)
    return zero, found


# Hints --------------------------------------------------------------------------------------


def _close(x: float, y: float, rtol: float) -> bool:
    return abs(x - y) <= rtol * max(abs(x), abs(y))


def _same(f: Coefficients, e: Coefficients, rtol: float) -> bool:
    return set(f) == set(e) and all(_close(f[j], e[j], rtol) for j in f)


def _variable_maps(d: int) -> list[tuple[int, ...]]:
    if d > MAPPED_MAX_VARIABLES:
        return []
    perms = [p for p in itertools.permutations(range(d)) if list(p) != list(range(d))]
    others = [
        m
        for m in itertools.product(range(d), repeat=d)
        if len(set(m)) < d  # not a permutation: two variables share a column
    ]

    def moved(m: Sequence[int]) -> int:
        return sum(m[i] != i for i in range(d))

    # The simplest explanation first: fewest variables moved, permutations before merges.
    return sorted(perms, key=moved) + sorted(others, key=moved)


def _image(cands: CandidateSet, e: Coefficients, pi: Sequence[int]) -> Coefficients | None:
    index = {c.expr: j for j, c in enumerate(cands.columns)}
    out: Coefficients = {}
    for j, c in e.items():
        k = index.get(_mapped(cands.columns[j].expr, cands.by_symbol, pi))
        if k is None:
            return None
        out[k] = out.get(k, 0.0) + c
    return out


def _describe_map(pi: Sequence[int], domain: Domain, used: set[int]) -> str:
    names = domain.names
    moved_idx = [i for i in range(len(names)) if pi[i] != i and i in used]
    if len(moved_idx) == 2 and sorted(pi[i] for i in moved_idx) == moved_idx:
        a, b = moved_idx
        return (
            f"the columns of {names[a]} and {names[b]} are swapped: your code differentiates "
            f"with respect to {names[b]} (column {b}) where the PDE has {names[a]} (column {a}), "
            "and vice versa"
        )
    moved = [
        f"where the PDE differentiates with respect to {names[i]} (column {i}), your code uses "
        f"{names[pi[i]]} (column {pi[i]})"
        for i in moved_idx
    ]
    return "; ".join(moved)


def _function_maps(names: Sequence[str]) -> list[dict[str, str]]:
    """Maps of the unknowns onto the unknowns (a wrong output column), fewest changes first."""
    if not 2 <= len(names) <= 4:
        return []
    maps = [
        dict(zip(names, image, strict=True))
        for image in itertools.product(names, repeat=len(names))
    ]
    maps = [m for m in maps if any(k != v for k, v in m.items())]
    return sorted(maps, key=lambda m: sum(k != v for k, v in m.items()))


def _function_image(
    cands: CandidateSet, e: Coefficients, sigma: Mapping[str, str]
) -> Coefficients | None:
    """The expected coefficients with each unknown's terms replaced by those of ``sigma``'s."""
    sub = {
        sym: Term(sigma[t.function], t.alpha).placeholder() for sym, t in cands.by_symbol.items()
    }
    index = {c.expr: j for j, c in enumerate(cands.columns)}
    out: Coefficients = {}
    for j, c in e.items():
        k = index.get(cands.columns[j].expr.xreplace(sub))
        if k is None:
            return None
        out[k] = out.get(k, 0.0) + c
    return out


def _describe_outputs(cands: CandidateSet, e: Coefficients, sigma: Mapping[str, str]) -> str:
    names = list(cands.system.solutions)
    used = {
        cands.by_symbol[s].function
        for j in e
        for s in cands.columns[j].expr.free_symbols
        if s in cands.by_symbol
    }
    swaps = [
        f"where the PDE has {a} (output column {names.index(a)}), your code uses {b} (output "
        f"column {names.index(b)})"
        for a, b in sigma.items()
        if a != b and a in used
    ]
    columns = ", ".join(f"column {i} is {n}" for i, n in enumerate(names))
    return (
        "; ".join(swaps)
        + ". Check which output column (component) of the network's output you take: the output "
        f"columns follow the --solution options ({columns})"
    )


def _column_order(domain: Domain) -> str:
    order = ", ".join(f"{n}={i}" for i, n in enumerate(domain.names))
    return f"the columns of x follow the -d options ({order})"


def _labels(cands: CandidateSet, js: Sequence[int]) -> str:
    return ", ".join(cands.columns[j].label for j in sorted(js))


def explain(
    cands: CandidateSet,
    eq: int,
    fit: Fit,
    *,
    dtype_name: str,
    batch: int,
) -> list[str]:
    """Diagnosis lines for equation ``eq`` whose user residual was fitted as ``fit``."""
    dom = cands.system.domain
    rtol = COEF_RTOL[dtype_name]
    e = cands.expected[eq]
    f = {j: c for j, c in fit.coefficients.items()}
    got, want = cands.formula(f), cands.formula(e)
    head = f"your residual ≈ {got}; expected {want}"
    order_of = {j: cands.columns[j].order for j in set(f) | set(e)}

    for k, other in enumerate(cands.expected):
        if k != eq and _same(f, other, rtol):
            return [
                f"{head}: that is PDE {k + 1} ({cands.system.equations[k]}); your function "
                "returns the equations in a different order than the --pde options"
            ]
    if _same(f, e, rtol):
        return [
            f"{head}: the fit matches where your values are finite, so the disagreement is "
            "local or small; look at the worst points"
        ]
    if set(f) == set(e) and e:
        ratios = [f[j] / e[j] for j in e]
        if all(_close(r, ratios[0], rtol) for r in ratios):
            c = ratios[0]
            if _close(c, -1.0, rtol):
                return [
                    f"{head}: your residual has the opposite sign (harmless in a squared loss; "
                    "to verify it as written, give --pde with the opposite sign)"
                ]
            if _close(c, 1.0 / batch, 1e-3):
                return [
                    f"{head}: every term is divided by the number of points ({batch}); did you "
                    "differentiate u.mean() instead of u (use grad_outputs=torch.ones_like(u))?"
                ]
            return [f"{head}: your residual is {c:.4g} times the expected one (an overall factor)"]
        wrong = [
            f"the coefficient of {cands.columns[j].label} is {f[j]:.4g} (expected {e[j]:.4g})"
            for j in sorted(e)
            if not _close(f[j], e[j], rtol)
        ]
        return [f"{head}: " + "; ".join(wrong) + ": check the parameter values and signs"]
    if set(f) - set(e) == {0} and set(e) <= set(f) and all(_close(f[j], e[j], rtol) for j in e):
        return [
            f"{head}: your residual is off by the constant {f[0]:.4g} at every point: a wrong "
            "constant or forcing term, or something subtracted over the whole batch (a mean)"
        ]
    for sigma in _function_maps(list(cands.system.solutions)):
        image = _function_image(cands, e, sigma)
        if image is not None and _same(f, image, rtol):
            return [f"{head}: {_describe_outputs(cands, e, sigma)}"]
        # The same mistake in one term only (u_yy where the PDE has v_yy, v itself right).
        for j in e:
            image = _function_image(cands, {j: e[j]}, sigma)
            if image is None:
                continue
            merged = {i: c for i, c in e.items() if i != j}
            for i, c in image.items():
                merged[i] = merged.get(i, 0.0) + c
            if _same(f, merged, rtol):
                return [f"{head}: {_describe_outputs(cands, {j: e[j]}, sigma)}"]
    for pi in _variable_maps(len(dom)):
        image = _image(cands, e, pi)
        if image is not None and _same(f, image, rtol):
            used = {
                i
                for j in e
                for s in cands.columns[j].expr.free_symbols
                if s in cands.by_symbol
                for i in cands.by_symbol[s].alpha
            }
            return [
                f"{head}: {_describe_map(pi, dom, used)}. Check which column you differentiate: "
                + _column_order(dom)
            ]
    missing = [j for j in e if j not in f]
    extra = [j for j in f if j not in e]
    common_ok = all(_close(f[j], e[j], rtol) for j in e if j in f)
    derivs_e = [j for j in e if order_of[j] >= 1]
    derivs_f = [j for j in f if order_of[j] >= 1]
    if derivs_e and not derivs_f:
        return [
            f"{head}: every derivative term is missing, so the derivatives in your code are "
            "zero and do not depend on the inputs. Usually the tensor you differentiate with "
            "respect to is not on the graph of u (a slice such as x[:, 0:1] taken after u was "
            "computed from x; torch.autograd.grad then returns None with allow_unused=True, "
            "and a helper turned it into zeros). Differentiate with respect to x itself and "
            "slice the gradient"
        ]
    if missing and not extra and common_ok:
        k = min(order_of[j] for j in missing)
        high_e = [j for j in e if order_of[j] >= k]
        high_f = [j for j in f if order_of[j] >= k]
        if k >= 2 and set(high_e) <= set(missing) and not high_f:
            which = "second" if k == 2 else f"order-{k}"
            return [
                f"{head}: the {which}-order term(s) {_labels(cands, missing)} are zero in your "
                f"computation while the lower-order ones are right. Usually the order-{k - 1} "
                "derivative was taken without create_graph=True, so it is detached and its "
                "derivative is zero (or an error that a helper turned into zeros). Pass "
                "create_graph=True to every torch.autograd.grad call whose result is "
                "differentiated again"
            ]
        return [f"{head}: the term(s) {_labels(cands, missing)} are missing from your residual"]

    def signature(js: Sequence[int], coef: Coefficients) -> list[tuple[int, bool, str]]:
        pure = [cands.columns[j].expr in cands.by_symbol for j in js]
        return sorted((order_of[j], p, f"{coef[j]:.3g}") for j, p in zip(js, pure, strict=True))

    rest_f = [j for j in f if j not in derivs_f]
    rest_e = [j for j in e if j not in derivs_e]
    if (
        derivs_f
        and signature(derivs_f, f) == signature(derivs_e, e)
        and set(derivs_f) != set(derivs_e)
        and _same({j: f[j] for j in rest_f}, {j: e[j] for j in rest_e}, rtol)
    ):
        return [
            f"{head}: the derivative terms have the right orders and coefficients but other "
            "variables: check which column you differentiate: " + _column_order(dom)
        ]
    parts = []
    scaled = [j for j in e if j in f and any(_close(f[j] / e[j], batch**-p, 1e-3) for p in (1, 2))]
    if scaled:
        parts.append(
            f"{_labels(cands, scaled)} divided by the number of points ({batch}): did you "
            "differentiate u.mean() instead of u (use grad_outputs=torch.ones_like(u))?"
        )
    if missing:
        parts.append(f"missing {_labels(cands, missing)}")
    if extra:
        parts.append(f"unexpected {_labels(cands, extra)}")
    off = [j for j in e if j in f and not _close(f[j], e[j], rtol)]
    if off:
        parts.append(f"other coefficients for {_labels(cands, off)}")
    return [f"{head}: " + "; ".join(parts)]


def _float32(x: float) -> float:
    return float(torch.tensor(x, dtype=torch.float32).item())


def _rounded_parameters(system: PDESystem) -> list[tuple[str, float, float]]:
    """``(name, value, float32(value))`` for each parameter that float32 cannot hold exactly."""
    out = []
    for name, exact in system.params.items():
        try:
            value = float(exact)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and value != 0.0 and _float32(value) != value:
            out.append((name, value, _float32(value)))
    return out


def rounding_line(cands: CandidateSet, eq: int, a: torch.Tensor, b: torch.Tensor) -> str | None:
    """The diagnosis when ``b`` differs from the expected residual by exactly the float32
    rounding of a parameter (or of a coefficient of the PDE), else None.

    The difference ``b - A e`` from the expected coefficients ``e`` is compared, at the points,
    with what the rounding would change in each subset of the PDE's terms: a parameter
    ``p -> float32(p)`` scales its terms' coefficients by ``float32(p)/p`` (``p/float32(p)``
    when it divides them). This needs no fit, so it also holds when the terms are dependent
    (an exact solution, whose expected residual is zero).
    """
    e = cands.expected[eq]
    js = sorted(e)
    if not js or len(js) > ROUNDING_MAX_TERMS:
        return None
    coef = torch.tensor([e[j] for j in js], dtype=a.dtype)
    d = b - a[:, js] @ coef
    dn = float(d.norm())
    if not (math.isfinite(dn) and dn > 0.0):
        return None
    subsets = [s for k in range(1, len(js) + 1) for s in itertools.combinations(range(len(js)), k)]

    def explains(delta: torch.Tensor, subset: Sequence[int]) -> bool:
        pred = a[:, [js[i] for i in subset]] @ delta
        return float((d - pred).norm()) <= ROUNDING_RTOL * dn

    def terms(subset: Sequence[int], new: Sequence[float]) -> str:
        return "; ".join(
            f"{cands.columns[js[i]].label}: {c:.10g} instead of {e[js[i]]:.10g}"
            for i, c in zip(subset, new, strict=True)
        )

    fix = (
        "it is probably a float32 tensor or a numpy.float32 (torch.tensor(..., "
        "dtype=torch.float32)): use a Python float or a float64 tensor"
    )
    for name, value, v32 in _rounded_parameters(cands.system):
        rel = (v32 - value) / value
        for inverse in (False, True):
            r = -rel / (1.0 + rel) if inverse else rel  # the coefficients' relative change
            for subset in subsets:
                old = coef[list(subset)]
                if explains(old * r, subset):
                    how = "divides" if inverse else "multiplies"
                    return (
                        f"your residual differs from the expected one by exactly the float32 "
                        f"rounding of the parameter {name}: your code computes with {name} = "
                        f"{v32!r} (float32({value!r})) instead of {value!r}, a relative "
                        f"difference of {rel:.4g} in the coefficient(s) it {how} ("
                        + terms(subset, [float(c) * (1.0 + r) for c in old])
                        + f"). {name} is held in float32 in your code: {fix}"
                    )
    for subset in subsets:
        new = [_float32(float(coef[i])) for i in subset]
        if new == [float(coef[i]) for i in subset]:
            continue
        delta = torch.tensor(new, dtype=a.dtype) - coef[list(subset)]
        if explains(delta, subset):
            return (
                "your residual differs from the expected one by exactly the float32 rounding "
                "of the PDE's coefficient(s) ("
                + terms(subset, new)
                + f"): a constant in your code is held in float32: {fix}"
            )
    return None


def no_fit_line(cands: CandidateSet, fit: Fit) -> str:
    """The diagnosis when no combination of candidate terms explains the residual."""
    order = max_order(cands.system)
    unexplained = fit.rel_residual
    pct = f"{100 * unexplained:.2g}%" if math.isfinite(unexplained) else "all"
    return (
        "no combination of the unknowns, their derivatives up to order "
        f"{order}, the PDE's nonlinear terms and a constant explains your residual ({pct} of it "
        "is left unexplained by the best fit): it may use a higher derivative, a different "
        "nonlinearity, a wrong forcing term, or couple the points of the batch"
    )


__all__ = [
    "COEF_RTOL",
    "FIT_RTOL",
    "CandidateSet",
    "Column",
    "Fit",
    "candidate_set",
    "dependencies",
    "explain",
    "fit_columns",
    "max_order",
    "no_fit_line",
    "rounding_line",
]
