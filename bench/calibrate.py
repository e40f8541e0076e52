"""``python -m bench.calibrate`` (``make calibrate``): measure the tolerance model on a corpus.

For every expression of the corpus and both dtypes it measures:

* **noise**: the largest ratio |autograd - truth| / tolerance of the correct computation over
  the points (a false alarm when above 1);
* **detection**: the smallest relative error of the derivatives that the check catches, found
  by running autograd on ``(1 + eps) * f`` against the exact derivatives of ``f`` for eps on a
  grid from 1e-15 to 1e-2 (the smallest eps that fails);
* the same for PDE residuals (``eps`` scales the autograd residual's highest-order term).

Rerun it whenever the tolerance model changes; it writes ``bench/results/calibration.json`` and
the Markdown table that docs/tolerances.md shows (``--markdown PATH``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

import sympy

EXPRESSIONS: list[tuple[str, list[str], str]] = [
    # (expression, domain, kind)
    ("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"], "polynomial x trig"),
    ("exp(-t)*sin(pi*x)*cos(pi*y)", ["x=0:1", "y=0:1", "t=0:1"], "separable"),
    ("-tanh((x-0.5*t)/0.02)*exp(-x**2) + log(1+x**2+t**2)", ["x=0:1", "t=0:1"], "steep"),
    ("tanh(x/0.01)", ["x=-1:1"], "steep"),
    ("sigmoid(20*x - 5*y)", ["x=0:1", "y=0:1"], "steep"),
    ("x**5 - 3*x**3*y + y**4", ["x=-2:2", "y=-2:2"], "polynomial"),
    ("(1 + x)**7", ["x=-1:1"], "polynomial"),
    ("1/(1 + 25*x**2)", ["x=-1:1"], "rational"),
    ("x/(1 + y**2)", ["x=-3:3", "y=-3:3"], "rational"),
    ("sqrt(1 + x**2 + y**2)", ["x=-2:2", "y=-2:2"], "algebraic"),
    ("log(1 + x**2)", ["x=-5:5"], "log"),
    ("exp(-x**2 - y**2)", ["x=-3:3", "y=-3:3"], "gaussian"),
    ("erf(x)*erfc(y)", ["x=-2:2", "y=-2:2"], "special"),
    ("atan(x*y)", ["x=-3:3", "y=-3:3"], "inverse trig"),
    ("asinh(x) + acosh(2 + y)", ["x=-3:3", "y=0:3"], "inverse hyperbolic"),
    ("asin(0.9*x)*acos(0.5*y)", ["x=-1:1", "y=-1:1"], "inverse trig"),
    ("sin(50*x)", ["x=0:100"], "large argument"),
    ("cos(1000*x)", ["x=0:1"], "large argument"),
    ("sin(x)*exp(x)", ["x=0:30"], "large values"),
    ("cosh(x)*sinh(y)", ["x=-10:10", "y=-10:10"], "large values"),
    ("1e-12*sin(x)*exp(y)", ["x=0:1", "y=0:1"], "small amplitude"),
    ("1e-30*(x**3 + y)", ["x=0:1", "y=0:1"], "small amplitude"),
    ("1e20*cos(x*y)", ["x=0:1", "y=0:1"], "large amplitude"),
    ("sin(x)/x", ["x=0:1"], "cancelling"),
    ("(exp(x) - 1 - x)/x**2", ["x=-1:1"], "cancelling"),
    ("(1 - cos(x))/x**2", ["x=-1:1"], "cancelling"),
    ("atanh(x)", ["x=0.9999999:0.99999999999"], "near-singular"),
    ("1/(1 - x**2)", ["x=0.99:0.999999"], "near-singular"),
    ("log(x)", ["x=1e-8:1e-6"], "near-singular"),
    ("1/x", ["x=0.001:1"], "near-singular"),
    ("x**2.5", ["x=0:2"], "fractional power"),
    ("2**x*x**y", ["x=0.5:2", "y=0:2"], "powers"),
    ("Abs(x - 0.5)*y", ["x=0:1", "y=0:1"], "kink"),
    ("tan(x)", ["x=-1.5:1.5"], "near-singular"),
    ("sin(x1)*cos(x2)*exp(x3)*log(2 + x4)", ["x1=0:1", "x2=0:1", "x3=0:1", "x4=0:1"], "4 vars"),
    ("exp(sin(x))*cos(exp(y))", ["x=0:3", "y=0:2"], "nested"),
    ("sin(sin(sin(x)))", ["x=-3:3"], "nested"),
    ("x*exp(-x)*sin(10*y)", ["x=0:10", "y=0:1"], "oscillatory"),
    ("(x - y)**3/(1 + exp(x))", ["x=-5:5", "y=-5:5"], "mixed"),
    ("tanh(3*x)*sigmoid(y) + erf(x*y)", ["x=-2:2", "y=-2:2"], "mixed"),
    ("x**8*y**8", ["x=0:1", "y=0:1"], "high power"),
    ("sin(pi*x)*sinh(pi*y)/sinh(pi)", ["x=0:1", "y=0:1"], "harmonic"),
]
RESIDUALS: list[tuple[str, str, list[str], list[str]]] = [
    ("u_t - nu*u_xx", "u = sin(2*x + 1)*exp(-t) + x**3*t", ["x=0:1", "t=0:1"], ["nu=0.1"]),
    ("u_t + u*u_x - nu*u_xx", "u = tanh((x - t)/0.1) + x*t", ["x=-1:1", "t=0:1"], ["nu=0.01"]),
    ("u_tt - c**2*u_xx", "u = sin(x - c*t)", ["x=-2:2", "t=0:1"], ["c=10000"]),
    ("u_xx + u_yy", "u = exp(x)*sin(y) + 1e-3*x**4", ["x=0:1", "y=0:1"], []),
    ("u_xxxx - q", "u = x**2*(1-x)**2*sin(x)", ["x=0:1"], ["q=1"]),
    ("u_t + c*u_x", "u = 1e-12*(sin(k*(x-c*t)) + x*t)", ["x=0:1", "t=0:1"], ["c=2", "k=3"]),
]
EPS_GRID = [10.0 ** (-k / 2) for k in range(30, 3, -1)]  # 1e-15 ... 1e-2


def _check_once(expr: str, domain: list[str], dtype: str, n: int, eps: float) -> Any:
    from pinncheck._check import prepare_check, tolerances_for
    from pinncheck._engine import Plan, Term, run_plan, symbols_of
    from pinncheck._exact import exact_partials

    job = prepare_check(expr, domain, n=n, order=2, dtype=dtype)
    syms = symbols_of(job.domain)
    from pinncheck._autograd import multi_indices

    alphas = multi_indices(len(job.domain), 2)
    exact = exact_partials(job.parsed, syms, alphas)
    terms = [Term("f", a) for a in alphas]
    mutated = job.parsed * (1 + sympy.Float(eps, 30)) if eps else job.parsed
    plan = Plan(job.domain, {"f": mutated}, terms, {t: exact[t.alpha] for t in terms})
    opts = job.options
    out = run_plan(
        plan,
        n=n,
        seed=opts.seed,
        dtype=opts.dtype,
        device=opts.device,
        tolerance=tolerances_for(opts, terms),
    )
    return out


def _statuses(outcome: Any) -> set[str]:
    stats = list(outcome.terms.values()) + list(outcome.derived.values())
    return {s.status() for s in stats}


def _fails(outcome: Any) -> bool:
    return _statuses(outcome) != {"pass"}


def _false_alarm(outcome: Any) -> bool:
    # A correct computation that fails or is inconclusive. (Undefined is not a false alarm:
    # the function is NaN or inf at a sampled point, e.g. float32 points rounded onto a pole.)
    return bool(_statuses(outcome) & {"fail", "inconclusive"})


def _noise(outcome: Any) -> float:
    stats = list(outcome.terms.values()) + list(outcome.derived.values())
    return max((s.worst_ratio for s in stats if s.finite), default=math.nan)


def _detect(run: Any) -> float:
    for eps in EPS_GRID:
        if _fails(run(eps)):
            return eps
    return math.inf


def _residual_once(
    pde: str, sol: str, domain: list[str], params: list[str], dtype: str, n: int, eps: float
) -> Any:
    from pinncheck._check import tolerances_for
    from pinncheck._engine import Derived, Plan, run_plan, symbols_of
    from pinncheck._residual import exact_terms, prepare_residual

    job = prepare_residual(pde, sol, domain, param=params, n=n, dtype=dtype)
    system, opts = job.system, job.options
    exact = exact_terms(system)
    derived = [
        Derived(f"eq{i + 1}", r, sympy.Add.make_args(r)) for i, r in enumerate(system.residuals)
    ]
    # The bug, on the autograd side only: the solution off by a relative eps*x (not a symmetry
    # of any PDE here), so that the residual is off by about eps of its terms' scale.
    x0 = symbols_of(system.domain)[0]
    functions = {
        name: u * (1 + sympy.Float(eps, 30) * x0) if eps else u
        for name, u in system.solutions.items()
    }
    plan = Plan(system.domain, functions, list(system.terms), exact, derived)
    tols = tolerances_for(opts, system.terms)
    tols.update({d.name: tols[system.terms[0]] for d in derived})
    return run_plan(plan, n=n, seed=opts.seed, dtype=opts.dtype, device=opts.device, tolerance=tols)


def calibrate(n: int) -> dict[str, Any]:
    rows = []
    for dtype in ("float64", "float32"):
        for expr, domain, kind in EXPRESSIONS:
            t0 = time.perf_counter()
            base = _check_once(expr, domain, dtype, n, 0.0)
            detect = _detect(
                lambda eps, e=expr, d=domain, f=dtype: _check_once(e, d, f, n, eps)  # type: ignore[misc]
            )
            rows.append(
                {
                    "what": "check",
                    "case": expr,
                    "kind": kind,
                    "dtype": dtype,
                    "noise": _noise(base),
                    "false_alarm": _false_alarm(base),
                    "undefined": "undefined" in _statuses(base),
                    "detects": detect,
                    "seconds": time.perf_counter() - t0,
                }
            )
        for pde, sol, domain, params in RESIDUALS:
            t0 = time.perf_counter()

            def run(eps: float, p=pde, s=sol, d=domain, q=params, f=dtype) -> Any:  # type: ignore[no-untyped-def]
                return _residual_once(p, s, d, q, f, n, eps)

            base = run(0.0)
            rows.append(
                {
                    "what": "residual",
                    "case": f"{pde} with {sol}",
                    "kind": "PDE",
                    "dtype": dtype,
                    "noise": _noise(base),
                    "false_alarm": _false_alarm(base),
                    "undefined": "undefined" in _statuses(base),
                    "detects": _detect(run),
                    "seconds": time.perf_counter() - t0,
                }
            )
    return {"n": n, "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    from pinncheck._compare import SAFETY_FACTOR

    lines = [
        f"Corpus: {len(EXPRESSIONS)} expressions (all partials to order 2) and {len(RESIDUALS)} "
        f"PDE residuals, n = {result['n']} points each, safety factors "
        + ", ".join(f"{k} {v:g}" for k, v in SAFETY_FACTOR.items())
        + ".",
        "",
        "| dtype | cases | false alarms | noise: median / max ratio "
        "| detects: median / worst eps |",
        "|---|---|---|---|---|",
    ]
    for dtype in ("float64", "float32"):
        rows = [r for r in result["rows"] if r["dtype"] == dtype]
        noise = [r["noise"] for r in rows if math.isfinite(r["noise"])]
        det = [r["detects"] for r in rows]
        fa = sum(r["false_alarm"] for r in rows)
        finite_det = [d for d in det if math.isfinite(d)] or [math.nan]
        lines.append(
            f"| {dtype} | {len(rows)} | {fa} | {statistics.median(noise):.2g} / {max(noise):.2g} "
            f"| {statistics.median(finite_det):.2g} / {max(det):.2g} |"
        )
    lines += [
        "",
        "| case | kind | dtype | noise ratio | smallest relative error caught |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        flag = ""
        if r["false_alarm"] or r["undefined"]:
            flag = " (false alarm)" if r["false_alarm"] else " (undefined)"
        lines.append(
            f"| `{r['case']}` | {r['kind']} | {r['dtype']} | {r['noise']:.2g}{flag} "
            f"| {r['detects']:.2g} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--json", default="bench/results/calibration.json")
    parser.add_argument("--markdown", default="-")
    args = parser.parse_args(argv)
    result = calibrate(args.n)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1, default=str)
    text = markdown(result)
    if args.markdown == "-":
        print(text)
    else:
        with open(args.markdown, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
