"""PDEs, candidate solutions and parameters, parsed with the same allowlist parser as ``check``.

A PDE is held as a SymPy expression in which each derivative term of an unknown (``u``,
``u_x``, ``diff(u, x, 2)``) is a placeholder symbol (:meth:`Term.placeholder`). Substituting
the terms' exact SymPy derivatives gives the exact residual; substituting autograd's values
gives the residual a PINN computes.

``diff()`` of an expression and ``laplacian()`` apply the chain rule to the placeholders
(:func:`total_derivative`), so ``diff(u**2/2, x)`` becomes ``u*u_x``. PDEs that are SymPy
objects already (``--pde-from``) are converted by :mod:`pinncheck._pde_from`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import sympy

from ._autograd import MultiIndex
from ._domain import Domain
from ._engine import Term
from ._errors import ExpressionError
from ._limits import MAX_PARAMETER_NODES, tree_size
from ._options import MAX_ORDER
from ._parse import (
    check_identifier,
    parse_constant,
    parse_expression,
    real_symbol,
    shadow_warning,
)

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


def parse_params(
    spec: Assignments, reserved: Sequence[str] = (), shadowed: Sequence[str] = ()
) -> dict[str, sympy.Expr]:
    """Parameters in order; each value is a constant expression that may use earlier ones.

    ``shadowed``: constants' names (``E``) declared elsewhere in the run, or by a parameter."""
    params: dict[str, sympy.Expr] = {}
    for name, text in _pairs(spec, "parameter"):
        name = check_identifier(name, what="parameter name", shadow=True)
        if name in params:
            raise ExpressionError(f"The parameter {name} is given twice; give it once.")
        if name in reserved:
            raise ExpressionError(
                f"The parameter name {name} is already a variable or an unknown; rename it."
            )
        exact, number = parse_constant(
            text, what=f"parameter {name}", names=params, shadowed=[*shadowed, *params]
        )
        # A chain p1 = p0*(p0+1), p2 = p1*(p1+1)... doubles the exact tree at each step: a
        # large exact value is kept as its number, so later parameters stay small.
        large = tree_size(exact, MAX_PARAMETER_NODES) > MAX_PARAMETER_NODES
        params[name] = sympy.Float(number) if large else exact
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
    warnings: tuple[str, ...] = ()
    unused_params: tuple[str, ...] = ()

    def term_label(self, term: Term) -> str:
        return term_label(term, self.domain, self.solutions)


def term_label(term: Term, domain: Domain, unknowns: Collection[str] = ()) -> str:
    """``u``, ``u_xx`` when every variable is one letter, else ``d2u/dx1dx2``; also the latter
    when the subscript form is the name of an unknown (T_x for dT/dx when T_x is an unknown)."""
    wrt = [domain.names[i] for i in term.alpha]
    if not wrt:
        return term.function
    subscript = f"{term.function}_{''.join(wrt)}"
    if all(len(n) == 1 for n in domain.names) and subscript not in unknowns:
        return subscript
    from ._results import derivative_name

    name = derivative_name(wrt)
    head, _, tail = name.partition("/")
    return f"{head}{term.function}/{tail}"


TIME_NAMES: tuple[str, ...] = ("t", "time")
"""Variables that count as time: ``laplacian`` leaves them out unless ``space`` names them."""


def spatial_variables(domain: Domain, space: Sequence[str] | str | None = None) -> list[str]:
    """The variables ``laplacian`` sums over: ``space`` if given, else every variable that is not
    named ``t`` or ``time`` (:data:`TIME_NAMES`).

    Raises:
        ExpressionError: ``space`` names something that is not a variable, or nothing is left.
    """
    if space is None:
        names = [n for n in domain.names if n not in TIME_NAMES]
        if not names:
            raise ExpressionError(
                f"laplacian() needs a spatial variable, but the domain has only time "
                f"({', '.join(domain.names)}); name the spatial variables with --space."
            )
        return names
    items = space.split(",") if isinstance(space, str) else list(space)
    names = [str(n).strip() for n in items if str(n).strip()]
    if not names:
        raise ExpressionError("--space is empty: name the spatial variables, e.g. --space x,y.")
    for n in names:
        if n not in domain.names:
            raise ExpressionError(
                f"--space names {n!r}, which is not a domain variable (variables: "
                f"{', '.join(domain.names)})."
            )
    if len(set(names)) != len(names):
        raise ExpressionError(f"--space names a variable twice ({', '.join(names)}).")
    return names


class TermTable:
    """Placeholders of derivative terms, and derivatives of expressions in them (chain rule)."""

    def __init__(self, domain: Domain, where: str) -> None:
        self.domain = domain
        self.where = where  # "In the PDE '...'", for messages
        self.by_placeholder: dict[sympy.Symbol, Term] = {}
        self.unknowns: Collection[str] = ()

    def term(self, function: str, alpha: MultiIndex) -> sympy.Symbol:
        if len(alpha) > MAX_ORDER:
            raise ExpressionError(
                f"{self.where}, a derivative of order {len(alpha)} is used; "
                f"pinncheck supports orders up to {MAX_ORDER}."
            )
        t = Term(function, tuple(sorted(alpha)))
        sym = t.placeholder()
        self.by_placeholder[sym] = t
        return sym

    def derivative(self, expr: sympy.Expr, index: int) -> sympy.Expr:
        """d/d(variable ``index``) of ``expr``: explicitly, and through every term it uses."""
        t = self.by_placeholder.get(expr) if isinstance(expr, sympy.Symbol) else None
        if t is not None:
            return self.term(t.function, (*t.alpha, index))
        out = sympy.diff(expr, real_symbol(self.domain.names[index]))
        for sym in sorted(expr.free_symbols, key=lambda s: s.name):
            t = self.by_placeholder.get(sym)
            if t is not None:
                inner = sympy.diff(expr, sym)
                if inner != 0:
                    out += inner * self.term(t.function, (*t.alpha, index))
        return out

    def show(self, expr: sympy.Expr) -> str:
        """``expr`` as text, with term placeholders written as u, u_x, d2u/dx1^2..."""
        labels = {
            sym: sympy.Symbol(term_label(t, self.domain, self.unknowns))
            for sym, t in self.by_placeholder.items()
        }
        return str(expr.xreplace(labels))


_DERIVATIVE_WORD = re.compile(r"d(\d*)([A-Za-z]\w*)")


class _TermResolver(TermTable):
    """Maps names in a PDE's text to variables, parameters and derivative-term placeholders."""

    def __init__(
        self,
        domain: Domain,
        unknowns: Sequence[str],
        params: Mapping[str, sympy.Expr],
        equation: str,
        space: Sequence[str] | str | None = None,
    ) -> None:
        super().__init__(domain, f"In the PDE {equation!r}")
        self.unknowns = set(unknowns)
        self.params = params
        self.equation = equation
        self.space = space
        self.single_letter = all(len(n) == 1 for n in domain.names)
        self.warnings: list[str] = []
        self.used_params: set[str] = set()

    def subscript(self, name: str) -> tuple[str, str] | None:
        """``(unknown, variables)`` when ``name`` reads as a subscript derivative, else None."""
        base, sep, suffix = name.rpartition("_")
        if sep and base in self.unknowns and suffix:
            return base, suffix
        return None

    def name(self, name: str) -> sympy.Expr:
        if name in self.domain.names:
            return real_symbol(name)
        if name in self.params:
            self.used_params.add(name)
            return self.params[name]
        split = self.subscript(name)
        if name in self.unknowns:  # declared names win over subscript notation
            if split is not None and all(c in self.domain.names for c in split[1]):
                base, suffix = split
                wrt = ", ".join(suffix)
                warning = (
                    f"{self.where}, {name} is read as the unknown {name} (declared names win "
                    f"over subscripts); for the derivative of {base}, write diff({base}, {wrt})."
                )
                if warning not in self.warnings:
                    self.warnings.append(warning)
            return self.term(name, ())
        if split is not None:
            base, suffix = split
            if not self.single_letter:
                raise ExpressionError(
                    f"{self.where}, the term {name} uses subscript notation, which needs "
                    f"single-letter variables (the domain has {', '.join(self.domain.names)}); "
                    f"write it as diff({base}, ...), e.g. diff({base}, {self.domain.names[0]})."
                )
            bad = [c for c in suffix if c not in self.domain.names]
            if bad:
                raise ExpressionError(
                    f"{self.where}, the term {name} differentiates with respect to "
                    f"{bad[0]!r}, which is not a variable (variables: "
                    f"{', '.join(self.domain.names)})."
                )
            return self.term(base, tuple(self.domain.names.index(c) for c in suffix))
        base, sep, suffix = name.rpartition("_")
        if sep and base and suffix and all(c in self.domain.names for c in suffix):
            raise ExpressionError(
                f"{self.where}, the term {name} is a derivative of {base}, which is not an "
                f"unknown (unknowns with a --solution: {', '.join(sorted(self.unknowns))})."
            )
        raise ExpressionError(
            f"{self.where}, the name {name!r} is not a variable, a parameter or an unknown. "
            f"Variables: {', '.join(self.domain.names)}; parameters: "
            f"{', '.join(self.params) or 'none'}; unknowns: {', '.join(sorted(self.unknowns))}."
            + self.derivative_hint(name)
        )

    def derivative_hint(self, name: str) -> str:
        """A pointer to derivative notation for ``du``, ``d2u``, ``dt`` (from ``du/dt``)."""
        match = _DERIVATIVE_WORD.fullmatch(name)
        if match is None:
            return ""
        order, rest = match.groups()
        unknown = rest if rest in self.unknowns else sorted(self.unknowns)[0]
        if rest not in self.unknowns and rest not in self.domain.names:
            return ""
        var = "t" if "t" in self.domain.names else self.domain.names[0]
        for match in re.finditer(r"/\s*d([A-Za-z]\w*)", self.equation):
            word = match.group(1)
            stem = word.rstrip("0123456789")
            if word in self.domain.names or stem in self.domain.names:
                var = word if word in self.domain.names else stem
                break
        count = int(order) if order else 1
        sub = var * count if self.single_letter else ""
        subscript = f"{unknown}_{sub} or " if sub else ""
        times = f", {count}" if count > 1 else ""
        return (
            f" A fraction such as d{unknown}/d{var} is not derivative notation: write "
            f"{subscript}diff({unknown}, {var}{times})."
        )

    def diff(self, args: list[sympy.Expr]) -> sympy.Expr:
        usage = "write diff(u, x), diff(u, x, x), diff(u, x, 3) or diff(u**2/2, x)"
        if len(args) < 2:
            raise ExpressionError(
                f"{self.where}, diff() needs an expression and at least one variable: {usage}."
            )
        expr = args[0]
        what = self.show(expr)
        syms = [real_symbol(n) for n in self.domain.names]
        i = 1
        while i < len(args):
            a = args[i]
            if a.is_number:
                raise ExpressionError(
                    f"{self.where}, diff({what}, ...) is taken with respect to a constant ({a}: "
                    f"a parameter or a number), not a variable (variables: "
                    f"{', '.join(self.domain.names)}); {usage}."
                )
            if a not in syms:
                raise ExpressionError(
                    f"{self.where}, diff({what}, ...) is taken with respect to {a}, which is "
                    f"not a variable (variables: {', '.join(self.domain.names)}); {usage}."
                )
            idx = syms.index(a)
            count = 1
            if i + 1 < len(args) and args[i + 1].is_Integer:
                count = int(args[i + 1])
                if count < 1:
                    raise ExpressionError(
                        f"{self.where}, a derivative count must be a positive integer; {usage}."
                    )
                if count > MAX_ORDER:
                    raise ExpressionError(
                        f"{self.where}, a derivative of order {count:,} is used; pinncheck "
                        f"supports orders up to {MAX_ORDER}."
                    )
                i += 1
            for _ in range(count):
                expr = self.derivative(expr, idx)
            i += 1
        return expr

    def laplacian(self, args: list[sympy.Expr]) -> sympy.Expr:
        if len(args) != 1:
            raise ExpressionError(
                f"{self.where}, laplacian() takes one expression, e.g. laplacian(u); it sums "
                "the second derivatives over the spatial variables (see --space)."
            )
        try:
            names = spatial_variables(self.domain, self.space)
        except ExpressionError as exc:
            raise ExpressionError(f"{self.where}: {exc}") from None
        total = sympy.S.Zero
        for n in names:
            idx = self.domain.names.index(n)
            total += self.derivative(self.derivative(args[0], idx), idx)
        return total


@dataclass
class _Declared:
    """The names a system declares, parsed: unknowns, parameters, solutions, warnings."""

    unknowns: list[str]
    params: dict[str, sympy.Expr]
    param_texts: dict[str, str]
    solutions: dict[str, sympy.Expr]
    solution_texts: dict[str, str]
    shadowed: list[str]
    warnings: list[str]
    used_params: set[str]


def _declare(
    solutions: Assignments,
    domain: Domain,
    params: Assignments,
    required: Sequence[str] | None = None,
) -> _Declared:
    """Parse the unknowns (``--solution``) and parameters; ``required``: unknowns that a PDE
    given as objects uses, each of which needs a solution."""
    sol_pairs = _pairs(solutions, "solution")
    if not sol_pairs:
        raise ExpressionError("No solution given: add --solution NAME=EXPR for each unknown.")
    unknowns: list[str] = []
    for name, _ in sol_pairs:
        name = check_identifier(name, what="unknown function name", shadow=True)
        if name in domain.names:
            raise ExpressionError(f"The unknown {name} has the same name as a variable; rename it.")
        if name in unknowns:
            raise ExpressionError(f"The unknown {name} is given two solutions; give one.")
        unknowns.append(name)
    if required is not None:
        missing = [u for u in required if u not in unknowns]
        if missing:
            raise ExpressionError(
                f"The PDE uses the unknown {missing[0]}, which has no solution: add "
                f"--solution {missing[0]}=EXPR (unknowns: {', '.join(required)})."
            )
        extra = [u for u in unknowns if u not in required]
        if extra:
            raise ExpressionError(
                f"--solution {extra[0]}=... names no unknown of the PDE (its unknowns, the "
                f"applied functions: {', '.join(required) or 'none'})."
            )
    param_names = [
        check_identifier(k, what="parameter name", shadow=True)
        for k, _ in _pairs(params, "parameter")
    ]
    for name in param_names:
        base, sep, suffix = name.rpartition("_")
        if sep and base in unknowns and all(c in domain.names for c in suffix):
            raise ExpressionError(
                f"The parameter name {name} looks like a derivative of the unknown "
                f"{base} (subscript notation); rename the parameter."
            )
    declared = [*domain.names, *unknowns, *param_names]
    shadowed = [n for n in declared if shadow_warning(n, "name") is not None]
    warnings = []
    for names, what in (
        (domain.names, "variable"),
        (unknowns, "unknown"),
        (param_names, "parameter"),
    ):
        for n in names:
            w = shadow_warning(n, what)
            if w is not None:
                warnings.append(w)
    param_values = parse_params(params, reserved=[*domain.names, *unknowns], shadowed=shadowed)
    used_params: set[str] = set()

    def solution_name(name: str) -> sympy.Expr:
        if name in domain.names:
            return real_symbol(name)
        if name in param_values:
            used_params.add(name)
            return param_values[name]
        raise ExpressionError(
            f"The name {name!r} in a solution is not a variable or parameter (variables: "
            f"{', '.join(domain.names)}; parameters: {', '.join(param_values) or 'none'})."
        )

    sols: dict[str, sympy.Expr] = {}
    texts: dict[str, str] = {}
    for (_, text), uname in zip(sol_pairs, unknowns, strict=True):
        sols[uname] = parse_expression(
            text, what=f"solution for {uname}", resolve_name=solution_name, shadowed=shadowed
        )
        texts[uname] = text
    param_texts = dict(zip(param_names, (v for _, v in _pairs(params, "parameter")), strict=True))
    return _Declared(
        unknowns, param_values, param_texts, sols, texts, shadowed, warnings, used_params
    )


def _used_terms(
    residuals: Sequence[tuple[str, sympy.Expr, Mapping[sympy.Symbol, Term]]],
    unknowns: Sequence[str],
) -> list[Term]:
    """The terms the residuals use, in a stable order; refuses a PDE without any unknown."""
    used: dict[Term, None] = {}
    for label, expr, table in residuals:
        for sym in sorted(expr.free_symbols, key=lambda s: s.name):
            if sym in table:
                used[table[sym]] = None
        if not any(s in table for s in expr.free_symbols):
            why = (
                "cancels to an expression without any unknown"
                if table
                else ("does not involve any unknown")
            )
            raise ExpressionError(f"The PDE {label!r} {why} ({', '.join(unknowns)}).")
    return sorted(used, key=lambda t: (unknowns.index(t.function), len(t.alpha), t.alpha))


def parse_system(
    pdes: Sequence[str] | str,
    solutions: Assignments,
    domain: Domain,
    params: Assignments = None,
    *,
    space: Sequence[str] | str | None = None,
) -> PDESystem:
    """Parse PDEs, solutions (``NAME=EXPR``) and parameters (``NAME=VALUE``) against ``domain``.

    ``space`` names the variables ``laplacian()`` sums over (default: all but ``t``/``time``).

    Raises:
        ExpressionError: any malformed piece; the message names the term at fault.
    """
    eqs = [pdes] if isinstance(pdes, str) else list(pdes)
    if not eqs:
        raise ExpressionError("No PDE given: add --pde 'EXPR' (or 'LHS = RHS').")
    declared = _declare(solutions, domain, params)
    if space is not None:
        spatial_variables(domain, space)  # refuse a bad --space even if no laplacian uses it
    residuals = []
    warnings = list(declared.warnings)
    used = set(declared.used_params)
    for eq in eqs:
        if not isinstance(eq, str):
            raise ExpressionError(f"A PDE must be text, got {type(eq).__name__}.")
        resolver = _TermResolver(domain, declared.unknowns, declared.params, eq, space)
        expr = parse_expression(
            eq,
            what="PDE",
            resolve_name=resolver.name,
            extra_calls={"diff": resolver.diff, "laplacian": resolver.laplacian},
            shadowed=declared.shadowed,
            equation=True,
        )
        warnings += [w for w in resolver.warnings if w not in warnings]
        warnings += _vanished_terms(eq, domain, declared.unknowns, declared.params, space)
        residuals.append((eq, expr, resolver.by_placeholder))
        used |= resolver.used_params
    terms = _used_terms(residuals, declared.unknowns)
    return PDESystem(
        domain,
        tuple(eqs),
        tuple(r for _, r, _ in residuals),
        tuple(terms),
        declared.solutions,
        declared.solution_texts,
        declared.params,
        declared.param_texts,
        tuple(warnings),
        unused_params(declared.param_texts, used),
    )


def unused_params(texts: Mapping[str, str], used: set[str]) -> tuple[str, ...]:
    """The parameters that no PDE, no solution and no used parameter refers to."""
    names = list(texts)
    used = set(used)
    # A parameter written in terms of an earlier one uses it (lam = 2*mu uses mu).
    for name in reversed(names):
        if name in used:
            for other in names:
                if other != name and re.search(
                    rf"(?<![A-Za-z0-9_]){other}(?![A-Za-z0-9_])", texts[name]
                ):
                    used.add(other)
    return tuple(n for n in names if n not in used)


def _vanished_terms(
    eq: str,
    domain: Domain,
    unknowns: Sequence[str],
    params: Mapping[str, sympy.Expr],
    space: Sequence[str] | str | None,
) -> list[str]:
    """Terms of the PDE that a zero parameter removes (``nu = 0`` removes ``nu*u_xx``).

    The PDE is read again with the parameters as symbols; a term (of the sum as written, not
    expanded: expanding is unbounded) that has an unknown in it and is zero once the values are
    put in is a part of the user's code that no check exercises.
    """
    values = {real_symbol(k): v for k, v in params.items()}
    if not any(v == 0 for v in values.values()):
        return []
    resolver = _TermResolver(domain, unknowns, {str(k): k for k in values}, eq, space)
    notes = []
    try:
        parsed = parse_expression(
            eq,
            what="PDE",
            resolve_name=resolver.name,
            extra_calls={"diff": resolver.diff, "laplacian": resolver.laplacian},
            equation=True,
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
