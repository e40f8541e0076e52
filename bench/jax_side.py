"""JAX on the CPU, side by side (optional: ``pip install -e '.[jax]'``).

The harness's SymPy expressions are mapped to ``jax.numpy`` by a small interpreter, inside
``jax.jit``, so tracing happens once per chunk shape and XLA fuses the elementwise work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy
import torch
from jax.scipy.special import erf, erfc

from pinncheck._evaluate import _constant
from pinncheck._parse import sigmoid

from .cases import Prepared
from .methods import Method, Points, _inputs

jax.config.update("jax_enable_x64", True)

_FUNCS: dict[type, Callable[[Any], Any]] = {
    sympy.sin: jnp.sin,
    sympy.cos: jnp.cos,
    sympy.tan: jnp.tan,
    sympy.exp: jnp.exp,
    sympy.log: jnp.log,
    sympy.tanh: jnp.tanh,
    sympy.sinh: jnp.sinh,
    sympy.cosh: jnp.cosh,
    sympy.asin: jnp.arcsin,
    sympy.acos: jnp.arccos,
    sympy.atan: jnp.arctan,
    sympy.asinh: jnp.arcsinh,
    sympy.acosh: jnp.arccosh,
    sympy.atanh: jnp.arctanh,
    sympy.erf: erf,
    sympy.erfc: erfc,
    sympy.Abs: jnp.abs,
    sympy.sign: jnp.sign,
    sigmoid: jax.nn.sigmoid,
    sympy.sec: lambda x: 1 / jnp.cos(x),
    sympy.csc: lambda x: 1 / jnp.sin(x),
    sympy.cot: lambda x: 1 / jnp.tan(x),
    sympy.sech: lambda x: 1 / jnp.cosh(x),
    sympy.csch: lambda x: 1 / jnp.sinh(x),
    sympy.coth: lambda x: 1 / jnp.tanh(x),
}


def _eval(expr: sympy.Basic, env: dict[sympy.Basic, Any]) -> Any:
    """``expr`` with jnp operations; ``env`` maps symbols to values and memoises subtrees."""
    hit = env.get(expr)
    if hit is not None:
        return hit
    if not expr.free_symbols:
        value: Any = _constant(expr)
    elif isinstance(expr, sympy.Add):
        args = [_eval(a, env) for a in expr.args]
        value = args[0]
        for a in args[1:]:
            value = value + a
    elif isinstance(expr, sympy.Mul):
        args = [_eval(a, env) for a in expr.args]
        value = args[0]
        for a in args[1:]:
            value = value * a
    elif isinstance(expr, sympy.Pow):
        base, ex = expr.args
        e = int(ex) if ex.is_Integer else _eval(ex, env)
        value = _eval(base, env) ** e
    else:
        value = _FUNCS[type(expr)](_eval(expr.args[0], env))
    env[expr] = value
    return value


def _full(values: list[Any], like: Any) -> list[Any]:
    return [v if hasattr(v, "shape") and v.shape == like.shape else v + 0 * like for v in values]


def jax_methods(prep: Prepared, dtype: torch.dtype, chunk: int) -> list[Method]:
    syms = prep.symbols
    jdtype = jnp.float64 if dtype == torch.float64 else jnp.float32

    def f(v: Any) -> Any:
        return _eval(prep.function, {s: v[i] for i, s in enumerate(syms)})

    def autodiff(x: Any) -> list[Any]:
        g = jax.vmap(jax.grad(f))(x)
        h = jax.vmap(jax.hessian(f))(x)
        values = []
        for t in prep.plan.terms:
            if not t.alpha:
                values.append(jax.vmap(f)(x))
            elif len(t.alpha) == 1:
                values.append(g[:, t.alpha[0]])
            else:
                values.append(h[:, t.alpha[0], t.alpha[1]])
        cols = [x[:, i] for i in range(len(syms))]
        env = dict(zip(_inputs(prep), cols + values, strict=True))
        return values + _full([_eval(d.expr, env) for d in prep.plan.derived], cols[0])

    def exact(x: Any) -> list[Any]:
        cols = [x[:, i] for i in range(len(syms))]
        env: dict[sympy.Basic, Any] = dict(zip(syms, cols, strict=True))
        return _full([_eval(e, env) for e in prep.outputs], cols[0])

    return [
        _method("jax autodiff", jax.jit(autodiff), chunk, jdtype),
        _method("jax exact", jax.jit(exact), chunk, jdtype),
    ]


def _method(name: str, fn: Callable[[Any], Any], chunk: int, jdtype: Any) -> Method:
    cache: dict[int, list[Any]] = {}
    seen: set[tuple[int, ...]] = set()

    def arrays(points: Points) -> list[Any]:
        # The points as JAX arrays, chunk by chunk (converted in warm, outside the timings).
        key = id(points[0])
        if key not in cache:
            x = np.stack([p.cpu().numpy() for p in points], axis=1)
            cache.clear()
            cache[key] = [
                jnp.asarray(x[s : s + chunk], dtype=jdtype) for s in range(0, len(x), chunk)
            ]
        return cache[key]

    def run(points: Points) -> None:
        for x in arrays(points):
            jax.block_until_ready(fn(x))

    def warm(points: Points) -> float:
        # jit compiles on the first call of each new chunk shape (and runs once).
        xs = arrays(points)
        t = time.perf_counter()
        for x in xs:
            if x.shape not in seen:
                seen.add(x.shape)
                jax.block_until_ready(fn(x))
        return time.perf_counter() - t

    return Method(name, run, warm, parallel=False)
