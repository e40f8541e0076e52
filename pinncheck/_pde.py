"""PDEs, candidate solutions and parameters, parsed with the same allowlist parser as ``check``.

A PDE is held as a SymPy expression in which each derivative term of an unknown (``u``,
``u_x``, ``diff(u, x, 2)``) is a placeholder symbol (:meth:`Term.placeholder`). Substituting
the terms' exact SymPy derivatives gives the exact residual; substituting autograd's values
gives the residual a PINN computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy

from ._autograd import MultiIndex
from ._domain import Domain
from ._engine import Term
from ._errors import ExpressionError
from ._limits import MAX_PARAMETER_NODES, check_diff_count, tree_size
from ._options import MAX_ORDER
from ._parse import check_identifier, parse_constant, parse_expression, real_symbol

Assignments = Sequence[str] | Mapping[str, str | float] | str | None


def _pairs(spec: Assignments, what: str) -> list[tuple[str, str]]:
    """``NAME=TEXT`` items from a list of strings, one string, or a mapping (order kept)."""
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        return [(str(k), str(v)) for k, v in spec.items()]
    items = [spec] if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        name, eq, text = str(item).partition("=")
        if not eq or not name.strip() or not text.strip():
            raise ExpressionError(f"Cannot read the {what} {item!r}: write NAME=VALUE.")
        out.append((name.strip(), text.strip()))
    return out


def parse_params(spec: Assignments, reserved: Sequence[str] = ()) -> dict[str, sympy.Expr]:
    """Parameters in order; each value is a constant expression that may use earlier ones."""
    params: dict[str, sympy.Expr] = {}
    for name, text in _pairs(spec, "parameter"):
        name = check_identifier(name, what="parameter name")
        if name in params:
            raise ExpressionError(f"The parameter {name} is given twice; give it once.")
        if name in reserved:
            raise ExpressionError(
                f"The parameter name {name} is already a variable or an unknown; rename it."
            )
        exact, value = parse_constant(text, what=f"parameter {name}", names=params)
        # A chain p1 = p0*(p0+1), p2 = p1*(p1+1)... doubles the exact tree at each step: a
        # large exact value is kept as its number, so later parameters stay small.
        large = tree_size(exact, MAX_PARAMETER_NODES) > MAX_PARAMETER_NODES
        params[name] = sympy.Float(value) if large else exact
    return params


@dataclass(frozen=True)
class PDESystem:
    """Parsed PDEs with their unknowns' candidate solutions.

    Attributes:
        equations: the PDEs as written (``lhs = rhs`` kept as text).
        residuals: one expression per PDE, in term placeholders and the domain's variables.
        terms: every derivative term the PDEs use, in a stable order.
        solutions: each unknown's solution as a SymPy expression of the variables.
        params: the parameters' exact values.
    """

    domain: Domain
    equations: tuple[str, ...]
    residuals: tuple[sympy.Expr, ...]
    terms: tuple[Term, ...]
    solutions: dict[str, sympy.Expr]
    solution_texts: dict[str, str]
    params: dict[str, sympy.Expr]
    param_texts: dict[str, str]
    notes: tuple[str, ...] = ()
    """Warnings found while parsing (a parameter value that removes a term)."""

    def term_label(self, term: Term) -> str:
        return term_label(term, self.domain)


def term_label(term: Term, domain: Domain) -> str:
    """``u``, ``u_xx`` when every variable is one letter, else ``d2u/dx1dx2``."""
    wrt = [domain.names[i] for i in term.alpha]
    if not wrt:
        return term.function
    if all(len(n) == 1 for n in domain.names):
        return f"{term.function}_{''.join(wrt)}"
    from ._results import derivative_name

    name = derivative_name(wrt)
    head, _, tail = name.partition("/")
    return f"{head}{term.function}/{tail}"


class _TermResolver:
    """Maps names in a PDE to variables, parameters and derivative-term placeholders."""

    def __init__(
        self,
        domain: Domain,
        unknowns: Sequence[str],
        params: Mapping[str, sympy.Expr],
        equation: str,
    ) -> None:
        self.domain = domain
        self.unknowns = set(unknowns)
        self.params = params
        self.equation = equation
        self.by_placeholder: dict[sympy.Symbol, Term] = {}
        self.single_letter = all(len(n) == 1 for n in domain.names)

    def term(self, function: str, alpha: MultiIndex) -> sympy.Symbol:
        if len(alpha) > MAX_ORDER:
            raise ExpressionError(
                f"In the PDE {self.equation!r}, a derivative of order {len(alpha)} is used; "
                f"pinncheck supports orders up to {MAX_ORDER}."
            )
        t = Term(function, tuple(sorted(alpha)))
        sym = t.placeholder()
        self.by_placeholder[sym] = t
        return sym

    def name(self, name: str) -> sympy.Expr:
        if name in self.domain.names:
            return real_symbol(name)
        if name in self.params:
            return self.params[name]
        if name in self.unknowns:
            return self.term(name, ())
        base, sep, suffix = name.rpartition("_")
        if sep and base in self.unknowns and suffix:
            if not self.single_letter:
                raise ExpressionError(
                    f"In the PDE {self.equation!r}, the term {name} uses subscript notation, which "
                    f"needs single-letter variables (the domain has {', '.join(self.domain.names)}"
                    f"); write it as diff({base}, ...), e.g. diff({base}, {self.domain.names[0]})."
                )
            bad = [c for c in suffix if c not in self.domain.names]
            if bad:
                raise ExpressionError(
                    f"In the PDE {self.equation!r}, the term {name} differentiates with respect to "
                    f"{bad[0]!r}, which is not a variable (variables: "
                    f"{', '.join(self.domain.names)})."
                )
            return self.term(base, tuple(self.domain.names.index(c) for c in suffix))
        if sep and base and suffix and all(c in self.domain.names for c in suffix):
            raise ExpressionError(
                f"In the PDE {self.equation!r}, the term {name} is a derivative of {base}, which "
                "is "
                f"not an unknown (unknowns with a --solution: {', '.join(sorted(self.unknowns))})."
            )
        raise ExpressionError(
            f"In the PDE {self.equation!r}, the name {name!r} is not a variable, a parameter or "
            f"an unknown. Variables: {', '.join(self.domain.names)}; parameters: "
            f"{', '.join(self.params) or 'none'}; unknowns: {', '.join(sorted(self.unknowns))}."
        )

    def show(self, expr: sympy.Expr) -> str:
        """``expr`` as text, with term placeholders written as u, u_x, d2u/dx1^2..."""
        labels = {
            sym: sympy.Symbol(term_label(t, self.domain)) for sym, t in self.by_placeholder.items()
        }
        return str(expr.xreplace(labels))

    def diff(self, args: list[sympy.Expr]) -> sympy.Expr:
        usage = "write diff(u, x), diff(u, x, x) or diff(u, x, 3)"
        if len(args) < 2:
            raise ExpressionError(
                f"In the PDE {self.equation!r}, diff() needs an unknown and at "
                f"least one variable: {usage}."
            )
        first = args[0]
        base = self.by_placeholder.get(first) if isinstance(first, sympy.Symbol) else None
        if base is None:
            raise ExpressionError(
                f"In the PDE {self.equation!r}, diff() is applied to {self.show(first)}, which is "
                f"not an unknown function; {usage} (expand products yourself, e.g. 2*u*u_x)."
            )
        alpha = list(base.alpha)
        syms = [real_symbol(n) for n in self.domain.names]
        i = 1
        while i < len(args):
            a = args[i]
            if a.is_number:
                raise ExpressionError(
                    f"In the PDE {self.equation!r}, diff({base.function}, ...) is taken with "
                    f"respect to a constant ({a}: a parameter or a number), not a variable "
                    f"(variables: {', '.join(self.domain.names)}); {usage}."
                )
            if a not in syms:
                raise ExpressionError(
                    f"In the PDE {self.equation!r}, diff({base.function}, ...) is taken with "
                    f"respect to {a}, which is not a variable (variables: "
                    f"{', '.join(self.domain.names)}); {usage}."
                )
            idx = syms.index(a)
            count = 1
            if i + 1 < len(args) and args[i + 1].is_Integer:
                count = int(args[i + 1])
                check_diff_count(count, len(alpha), MAX_ORDER, self.equation)
                if count < 1:
                    raise ExpressionError(
                        f"In the PDE {self.equation!r}, a derivative count must "
                        f"be a positive integer; {usage}."
                    )
                i += 1
            alpha.extend([idx] * count)
            i += 1
        return self.term(base.function, tuple(alpha))


def parse_system(
    pdes: Sequence[str] | str,
    solutions: Assignments,
    domain: Domain,
    params: Assignments = None,
) -> PDESystem:
    """Parse PDEs, solutions (``NAME=EXPR``) and parameters (``NAME=VALUE``) against ``domain``.

    Raises:
        ExpressionError: any malformed piece; the message names the term at fault.
    """
    eqs = [pdes] if isinstance(pdes, str) else list(pdes)
    if not eqs:
        raise ExpressionError("No PDE given: add --pde 'EXPR' (or 'LHS = RHS').")
    sol_pairs = _pairs(solutions, "solution")
    if not sol_pairs:
        raise ExpressionError("No solution given: add --solution NAME=EXPR for each unknown.")
    unknowns: list[str] = []
    for name, _ in sol_pairs:
        name = check_identifier(name, what="unknown function name")
        if name in domain.names:
            raise ExpressionError(f"The unknown {name} has the same name as a variable; rename it.")
        if name in unknowns:
            raise ExpressionError(f"The unknown {name} is given two solutions; give one.")
        if "_" in name:
            raise ExpressionError(
                f"The unknown name {name!r} may not contain '_' (it would clash "
                "with subscript derivatives such as u_x)."
            )
        unknowns.append(name)
    for name, _ in _pairs(params, "parameter"):
        base, sep, suffix = name.strip().rpartition("_")
        if sep and base in unknowns:
            raise ExpressionError(
                f"The parameter name {name.strip()} looks like a derivative of the unknown "
                f"{base} (subscript notation); rename the parameter."
            )
    param_values = parse_params(params, reserved=[*domain.names, *unknowns])

    def solution_name(name: str) -> sympy.Expr:
        if name in domain.names:
            return real_symbol(name)
        if name in param_values:
            return param_values[name]
        raise ExpressionError(
            f"The name {name!r} in a solution is not a variable or parameter (variables: "
            f"{', '.join(domain.names)}; parameters: {', '.join(param_values) or 'none'})."
        )

    sols: dict[str, sympy.Expr] = {}
    texts: dict[str, str] = {}
    for (_, text), uname in zip(sol_pairs, unknowns, strict=True):
        sols[uname] = parse_expression(
            text, what=f"solution for {uname}", resolve_name=solution_name
        )
        texts[uname] = text

    residuals: list[sympy.Expr] = []
    notes: list[str] = []
    used: dict[Term, None] = {}
    for eq in eqs:
        sides = eq.split("=")
        if len(sides) > 2 or any(not s.strip() for s in sides):
            raise ExpressionError(
                f"Cannot read the PDE {eq!r}: write one expression (meaning = 0) or LHS = RHS "
                "with a single '='."
            )
        resolver = _TermResolver(domain, unknowns, param_values, eq)
        parsed = [
            parse_expression(
                s,
                what=f"PDE {eq!r}",
                resolve_name=resolver.name,
                extra_calls={"diff": resolver.diff},
            )
            for s in sides
        ]
        expr = parsed[0] - parsed[1] if len(parsed) == 2 else parsed[0]
        notes += _vanished_terms(eq, sides, domain, unknowns, param_values)
        for sym in sorted(expr.free_symbols, key=lambda s: s.name):
            if sym in resolver.by_placeholder:
                used[resolver.by_placeholder[sym]] = None
        if not any(s in resolver.by_placeholder for s in expr.free_symbols):
            why = (
                "cancels to an expression without any unknown"
                if resolver.by_placeholder
                else "does not involve any unknown"
            )
            raise ExpressionError(f"The PDE {eq!r} {why} ({', '.join(unknowns)}).")
        residuals.append(expr)
    terms = sorted(used, key=lambda t: (unknowns.index(t.function), len(t.alpha), t.alpha))
    param_texts = {
        check_identifier(k, what="parameter name"): v for k, v in _pairs(params, "parameter")
    }
    return PDESystem(
        domain,
        tuple(eqs),
        tuple(residuals),
        tuple(terms),
        sols,
        texts,
        param_values,
        param_texts,
        tuple(notes),
    )


def _vanished_terms(
    eq: str,
    sides: Sequence[str],
    domain: Domain,
    unknowns: Sequence[str],
    params: Mapping[str, sympy.Expr],
) -> list[str]:
    """Terms of the PDE that a zero parameter removes (``nu = 0`` removes ``nu*u_xx``).

    The PDE is read again with the parameters as symbols; a term (of the sum as written, not
    expanded: expanding is unbounded) that has an unknown in it and is zero once the values are
    put in is a part of the user's code that no check exercises.
    """
    values = {real_symbol(k): v for k, v in params.items()}
    if not any(v == 0 for v in values.values()):
        return []
    resolver = _TermResolver(domain, unknowns, {str(k): k for k in values}, eq)
    notes = []
    for side in sides:
        try:
            parsed = parse_expression(
                side,
                what=f"PDE {eq!r}",
                resolve_name=resolver.name,
                extra_calls={"diff": resolver.diff},
            )
        except ExpressionError:  # e.g. a parameter used where a number is required
            return []
        for term in sympy.Add.make_args(parsed):
            zeroed = [k for k in term.free_symbols & set(values) if values[k] == 0]
            has_unknown = bool(term.free_symbols & set(resolver.by_placeholder))
            if zeroed and has_unknown and term.xreplace(values) == 0:
                shown = ", ".join(f"{k} = 0" for k in sorted(zeroed, key=str))
                notes.append(
                    f"In the PDE {eq!r}, {shown} removes {resolver.show(term)}: that part of "
                    "your code is not checked. Use a non-zero value to check it."
                )
    return notes
