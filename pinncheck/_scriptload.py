"""Loading a function from a training script without running the script (``--definitions-only``).

Most PINN code lives in scripts whose top level builds the data, trains the network and plots
the result. Importing such a file to reach its ``pde`` function runs all of that. With
``definitions_only``, pinncheck reads the file with :mod:`ast` and runs only these top-level
statements, in their order:

- ``import`` and ``from ... import`` statements;
- ``def``, ``async def`` and ``class`` definitions (with their decorators);
- simple constant assignments: ``NAME = value`` (or several names, or an annotated
  assignment) whose value is built only from literals, names, attribute look-ups
  (``np.pi``), arithmetic, comparisons, subscripts and tuple/list/set/dict displays: no calls;
- the module's docstring, and ``try`` blocks made only of the statements above (``try: import
  x except ImportError: ...``).

Everything else (calls, loops, ``with`` blocks, ``if`` blocks, ``if __name__ == "__main__":``)
is left out, and pinncheck remembers what each left-out statement would have defined: when
the target needs such a name, the error names the statement. The kept statements are compiled
with their original line numbers and run in a fresh module, as an import would run them: this
is the user's own code, run as pytest would run it.

:func:`training_calls` finds the top-level calls that usually train (``model.train(...)``,
``.fit(...)``, ``model.compile(...)``, ``loss.backward()``), so that a plain import of such a
script can suggest ``--definitions-only``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

# The top-level calls that usually mean training, by attribute name.
_TRAIN_ATTRS = frozenset({"train", "fit", "backward", "compile"})
# Receivers of .compile( that are not models: re.compile, torch.compile(model) and friends.
_NOT_MODELS = frozenset({"re", "regex", "torch", "jax", "tf", "np", "numpy"})
_SIMPLE_NODES = (
    ast.Constant,
    ast.Name,
    ast.Attribute,
    ast.UnaryOp,
    ast.BinOp,
    ast.BoolOp,
    ast.Compare,
    ast.Subscript,
    ast.Slice,
    ast.Tuple,
    ast.List,
    ast.Set,
    ast.Dict,
    ast.Load,
    ast.Starred,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)


@dataclass(frozen=True)
class Skipped:
    """A top-level statement ``definitions_only`` left out."""

    line: int
    text: str
    names: tuple[str, ...]

    def describe(self) -> str:
        return f"line {self.line}: {self.text}"


@dataclass
class Script:
    """A script split into the statements that are kept and those left out."""

    kept: ast.Module
    skipped: list[Skipped] = field(default_factory=list)

    def skipped_for(self, name: str) -> list[Skipped]:
        """The left-out statements that would have defined ``name``."""
        return [s for s in self.skipped if name in s.names]


def _simple(value: ast.AST | None) -> bool:
    return value is not None and all(isinstance(n, _SIMPLE_NODES) for n in ast.walk(value))


def _assigned_names(node: ast.AST) -> tuple[str, ...]:
    """Names a statement binds at module level (not inside the functions it defines)."""
    names: list[str] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(n.name)
            continue
        if isinstance(n, ast.Lambda):
            continue
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.append(n.id)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in n.names]
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            names += n.names
        stack.extend(ast.iter_child_nodes(n))
    return tuple(dict.fromkeys(names))


def _kept(stmt: ast.stmt, first: bool) -> bool:
    if isinstance(
        stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    ):
        return True
    if isinstance(stmt, ast.Expr):
        return first and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)
    if isinstance(stmt, ast.Assign):
        return _simple(stmt.value) and all(
            isinstance(t, ast.Name)
            or (
                isinstance(t, (ast.Tuple, ast.List))
                and all(isinstance(e, ast.Name) for e in t.elts)
            )
            for t in stmt.targets
        )
    if isinstance(stmt, ast.AnnAssign):
        return isinstance(stmt.target, ast.Name) and (stmt.value is None or _simple(stmt.value))
    if isinstance(stmt, ast.Try):
        body = [*stmt.body, *stmt.orelse, *stmt.finalbody]
        body += [s for h in stmt.handlers for s in h.body]
        return all(_kept(s, False) or isinstance(s, ast.Pass) for s in body)
    if isinstance(stmt, ast.Pass):
        return True
    return False


def _summary(source: str, stmt: ast.stmt) -> str:
    text = ast.get_source_segment(source, stmt) or type(stmt).__name__
    first = text.strip().splitlines()[0] if text.strip() else type(stmt).__name__
    return first if len(first) <= 70 else first[:67] + "..."


def split_script(source: str, filename: str) -> Script:
    """Parse ``source`` and keep its definitions (see the module's docstring).

    Raises:
        SyntaxError: the file is not valid Python.
    """
    tree = ast.parse(source, filename=filename)
    kept: list[ast.stmt] = []
    skipped: list[Skipped] = []
    for i, stmt in enumerate(tree.body):
        if _kept(stmt, i == 0):
            kept.append(stmt)
        else:
            skipped.append(Skipped(stmt.lineno, _summary(source, stmt), _assigned_names(stmt)))
    return Script(ast.Module(body=kept, type_ignores=[]), skipped)


def _main_guard(stmt: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (which an import does not run)."""
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    parts = [stmt.test.left, *stmt.test.comparators]
    return any(isinstance(p, ast.Name) and p.id == "__name__" for p in parts)


def _training_call(node: ast.Call) -> bool:
    func = node.func
    if not isinstance(func, ast.Attribute) or func.attr not in _TRAIN_ATTRS:
        return False
    if func.attr == "compile":
        return not (isinstance(func.value, ast.Name) and func.value.id in _NOT_MODELS)
    if func.attr == "train":  # model.train() / model.train(False) only set a mode
        mode_only = not node.keywords and all(
            isinstance(a, ast.Constant) and isinstance(a.value, bool) for a in node.args
        )
        return not mode_only
    return True


def training_calls(path: Path) -> list[str]:
    """Top-level calls in ``path`` that usually train, as ``"line N: text"`` (at most 3).

    Calls inside functions and classes, and under ``if __name__ == "__main__":``, do not run on
    import and are not counted. A file that cannot be read or parsed has none.
    """
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return []
    found: list[ast.Call] = []
    stack: list[ast.AST] = [s for s in tree.body if not _main_guard(s)]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call) and _training_call(node):
            found.append(node)
            continue
        stack.extend(ast.iter_child_nodes(node))
    out = []
    for node in sorted(found, key=lambda c: (c.lineno, c.col_offset))[:3]:
        text = ast.get_source_segment(source, node) or ""
        text = text.splitlines()[0] if text else ""
        out.append(f"line {node.lineno}: {text[:60]}")
    return out


__all__ = ["Script", "Skipped", "split_script", "training_calls"]
