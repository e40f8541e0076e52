"""Symbolic work with a time budget: proofs that a residual is zero, and display forms.

SymPy's ``simplify`` can run for minutes (over 100 s for one second derivative of a steep tanh
expression), and a Python thread cannot be stopped. So the work runs in a child process that is
killed when the budget is spent; the caller then falls back (numeric check, unsimplified form).
The child dies with pinncheck, on SIGTERM and SIGKILL alike (:mod:`pinncheck._workers`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import sympy

from ._workers import register_child, unregister_child

DEFAULT_TIMEOUT = 5.0


def _prove_zero(expr: sympy.Expr) -> str:
    # Cheap canonical forms first, then the expensive ones.
    if expr == 0:
        return "zero"
    for step in (
        sympy.expand,
        sympy.cancel,
        lambda e: sympy.expand(e.rewrite(sympy.exp)),
        sympy.simplify,
    ):
        try:
            if step(expr) == 0:
                return "zero"
        except Exception:  # a failing rewrite proves nothing either way
            continue
    return "unknown"


def _simplify(expr: sympy.Expr) -> sympy.Expr:
    return sympy.simplify(expr)


def _child(fn: Callable[[Any], Any], arg: Any, conn: Any, parent_pid: int) -> None:
    from ._workers import child_setup

    child_setup(parent_pid)  # dies with pinncheck (SIGTERM or SIGKILL), off its stdout
    try:
        conn.send(("ok", fn(arg)))
    except Exception as exc:  # reported to the parent, which falls back
        conn.send(("error", repr(exc)))
    finally:
        conn.close()


def run_with_budget(fn: Callable[[Any], Any], arg: Any, timeout: float) -> tuple[str, Any]:
    """Run ``fn(arg)`` in a child process; ``("ok", value)``, ``("timeout", None)`` or
    ``("error", message)``."""
    if timeout <= 0:
        return "timeout", None
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx: Any = mp.get_context(method)
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, arg, child, os.getpid()), daemon=True)
    proc.start()
    child.close()
    register_child(proc.pid)
    try:
        if parent.poll(timeout):
            status, value = parent.recv()
            return status, value
        return "timeout", None
    except EOFError:
        return "error", "the worker exited"
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(1)
        unregister_child(proc.pid)
        parent.close()


def _child_each(fn: Callable[[Any], Any], args: list[Any], conn: Any) -> None:
    try:
        for i, arg in enumerate(args):
            try:
                conn.send((i, "ok", fn(arg)))
            except Exception as exc:  # reported to the parent, which falls back for this one
                conn.send((i, "error", repr(exc)))
    finally:
        conn.close()


def run_each_with_budget(
    fn: Callable[[Any], Any], args: list[Any], timeout: float
) -> list[tuple[str, Any]]:
    """``fn`` of each of ``args``, one after the other in one child process, all within one
    ``timeout``: ``("ok", value)``, ``("error", message)`` or ``("timeout", None)`` for each
    (every argument the budget did not reach is a timeout)."""
    results: list[tuple[str, Any]] = [("timeout", None)] * len(args)
    if timeout <= 0 or not args:
        return results
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx: Any = mp.get_context(method)
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_each, args=(fn, list(args), child), daemon=True)
    deadline = time.monotonic() + timeout
    proc.start()
    child.close()
    try:
        received = 0
        while received < len(args):
            left = deadline - time.monotonic()
            if left <= 0 or not parent.poll(left):
                break
            i, status, value = parent.recv()
            results[i] = (status, value)
            received += 1
    except EOFError:
        pass
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(1)
        parent.close()
    return results


def simplified_all(
    exprs: list[sympy.Expr], timeout: float = DEFAULT_TIMEOUT
) -> list[tuple[sympy.Expr, bool]]:
    """``(simplify(expr), True)`` for each expression simplified within the shared ``timeout``,
    ``(expr, False)`` (unchanged, at once) for the others."""
    out: list[tuple[sympy.Expr, bool]] = []
    todo = [e for e in exprs if e != 0]
    done = dict(zip(todo, run_each_with_budget(_simplify, todo, timeout), strict=True))
    for e in exprs:
        status, value = done.get(e, ("ok", e))
        out.append((value, True) if status == "ok" else (e, False))
    return out


def prove_zero(expr: sympy.Expr, timeout: float = DEFAULT_TIMEOUT) -> str:
    """``"proved"`` when SymPy shows ``expr == 0`` within ``timeout`` s, else ``"not proved"``."""
    if expr == 0:
        return "proved"
    status, value = run_with_budget(_prove_zero, expr, timeout)
    return "proved" if status == "ok" and value == "zero" else "not proved"


def simplified(expr: sympy.Expr, timeout: float = DEFAULT_TIMEOUT) -> sympy.Expr:
    """``simplify(expr)`` if it finishes within ``timeout`` s, else ``expr`` unchanged."""
    status, value = run_with_budget(_simplify, expr, timeout)
    return value if status == "ok" else expr
