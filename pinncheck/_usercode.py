"""Loading and calling the user's own code: ``file.py:function`` and ``package.module:function``.

A target names an object in the user's code. Loading it imports their module, which runs their
code, the way pytest runs a test file: ``file.py:function`` is imported from its path with the
file's folder at the front of ``sys.path`` (so it can import its siblings), and
``package.module:function`` is imported by name with the current folder (or the check file's
folder) at the front of ``sys.path``.

Failures inside the user's code become :class:`~pinncheck.UserCodeError` with the user's
traceback (pinncheck's own frames removed) as ``details``; the CLI prints it and exits 2.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import keyword
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ._errors import OptionError, UserCodeError

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_MODULES: dict[tuple[str, int], ModuleType] = {}

TARGET_FORMS = "path/to/file.py:function or package.module:function"


@dataclass(frozen=True)
class Target:
    """A validated reference to an object in the user's code (nothing imported yet).

    Attributes:
        text: the target as written.
        attr: the dotted attribute path inside the module (``residual``, ``Net.build``).
        path: the resolved ``.py`` file, for ``file.py:function`` targets.
        module: the module name, for ``package.module:function`` targets.
        base_dir: the folder put on ``sys.path`` for ``module`` targets.
    """

    text: str
    attr: str
    path: Path | None = None
    module: str | None = None
    base_dir: Path | None = None

    def __str__(self) -> str:
        return self.text


def _dotted(text: str) -> bool:
    parts = text.split(".")
    return all(p.isidentifier() and not keyword.iskeyword(p) for p in parts)


def parse_target(text: str, base_dir: str | Path | None = None) -> Target:
    """Check the form of a target and that its file exists; import nothing.

    Args:
        text: ``path/to/file.py:function`` or ``package.module:function``; the attribute may be
            dotted (``models.py:Net.factory``).
        base_dir: the folder relative paths are resolved against (the current folder when
            ``None``; a check file's folder in ``pinncheck run``).

    Returns:
        The :class:`Target`.

    Raises:
        OptionError: malformed text, or the file does not exist.

    Example:
        >>> parse_target("samples/user_code/heat_correct.py:residual").attr
        'residual'
    """
    if not isinstance(text, str) or not text.strip():
        raise OptionError(f"No target given: write {TARGET_FORMS}.")
    raw = text.strip()
    where, sep, attr = raw.rpartition(":")
    if not sep or not where or not attr:
        raise OptionError(
            f"Cannot read the target {raw!r}: write {TARGET_FORMS} (the part after ':' names the "
            "function, model or factory)."
        )
    if not _dotted(attr):
        raise OptionError(
            f"Cannot read the target {raw!r}: {attr!r} after ':' is not a Python name "
            "(write e.g. heat.py:residual or models.py:Net)."
        )
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    looks_like_file = where.endswith(".py") or "/" in where or "\\" in where
    if looks_like_file:
        path = Path(where).expanduser()
        if not path.is_absolute():
            path = base / path
        path = path.resolve()
        if path.suffix != ".py":
            raise OptionError(
                f"The target {raw!r} names {where!r}, which is not a .py file; write "
                f"{TARGET_FORMS}."
            )
        if not path.is_file():
            raise OptionError(
                f"The target {raw!r} names the file {path}, which does not exist"
                + (
                    f" (relative paths are resolved against {base})"
                    if not Path(where).expanduser().is_absolute()
                    else ""
                )
                + "."
            )
        return Target(raw, attr, path=path)
    if not _dotted(where):
        raise OptionError(
            f"Cannot read the target {raw!r}: {where!r} is neither a .py file nor a dotted module "
            f"name; write {TARGET_FORMS}."
        )
    return Target(raw, attr, module=where, base_dir=base.resolve())


def _internal(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR) or filename.startswith("<frozen importlib")


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without pinncheck's and importlib's frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _internal(f.filename)]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


# Known autograd failures in residual code, and what usually causes them.
_HINTS = (
    (
        "does not require grad and does not have a grad_fn",
        "a tensor being differentiated is not on the autograd graph; usually an earlier "
        "torch.autograd.grad call lacked create_graph=True, so its result (a first derivative) "
        "cannot be differentiated again",
    ),
    (
        "appears to not have been used in the graph",
        "the tensor you differentiate with respect to is not on the graph of the output, e.g. a "
        "slice x[:, 0:1] taken after u was computed from x; differentiate with respect to x "
        "itself and slice the gradient: torch.autograd.grad(u, x, torch.ones_like(u), "
        "create_graph=True)[0][:, 0:1]",
    ),
    (
        "Trying to backward through the graph a second time",
        "pass retain_graph=True (or create_graph=True) to every torch.autograd.grad call but "
        "the last one on the same graph",
    ),
)


def _hint(exc: BaseException) -> str:
    text = str(exc)
    for needle, hint in _HINTS:
        if needle in text:
            return f" Hint: {hint}."
    return ""


def _error(what: str, exc: BaseException) -> UserCodeError:
    message = f"{what} raised {type(exc).__name__}: {exc}".rstrip()
    return UserCodeError(message + _hint(exc), details=user_traceback(exc))


def call_user(fn: Callable[..., Any], *args: Any, what: str) -> Any:
    """``fn(*args)``; an exception in it becomes a :class:`UserCodeError` with its traceback."""
    try:
        return fn(*args)
    except (Exception, SystemExit) as exc:
        raise _error(what, exc) from None


def _import_file(path: Path) -> ModuleType:
    key = (str(path), path.stat().st_mtime_ns)
    cached = _MODULES.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"pinncheck_user_{path.stem}_{digest}"
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserCodeError(f"Cannot import {path}: Python does not recognise it as a module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise _error(f"Importing {path}", exc) from None
    _MODULES[key] = module
    return module


def _import_module(name: str, base_dir: Path | None) -> ModuleType:
    folder = str(base_dir or Path.cwd())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise UserCodeError(
                f"Cannot import the module {name!r}: no module named {exc.name!r} (searched "
                f"{folder} and the installed packages). For a file, write path/to/file.py:function."
            ) from None
        raise _error(f"Importing {name}", exc) from None
    except (Exception, SystemExit) as exc:
        raise _error(f"Importing {name}", exc) from None


def load_target(target: Target) -> Any:
    """Import the target's module (running the user's code) and return the named object.

    Raises:
        UserCodeError: the import failed (with the user's traceback), or the name is missing.
    """
    if target.path is not None:
        module = _import_file(target.path)
        where = str(target.path)
    else:
        assert target.module is not None
        module = _import_module(target.module, target.base_dir)
        where = f"the module {target.module}"
    obj: Any = module
    walked: list[str] = []
    for part in target.attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            owner = where if not walked else ".".join(walked)
            public = [n for n in names if callable(getattr(obj, n, None))]
            raise UserCodeError(
                f"{owner} has no attribute {part!r} (target {target.text!r})"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + (f" It defines: {', '.join(public[:12])}." if public and not walked else "")
            ) from None
        except (Exception, SystemExit) as exc:
            raise _error(f"Looking up {part!r} in {where}", exc) from None
        walked.append(part)
    return obj


def resolve(target: Target | Any) -> tuple[Any, str]:
    """The object a target names (loaded) or the object itself, and a label for messages."""
    if isinstance(target, Target):
        return load_target(target), target.text
    name = getattr(target, "__qualname__", None) or type(target).__name__
    return target, str(name)


def zero_arg_callable(obj: Any) -> bool:
    """Whether ``obj`` can be called with no arguments (a factory), judged by its signature."""
    try:
        inspect.signature(obj).bind()
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): not a factory
        return False
    return True


@dataclass
class GradCall:
    """One ``torch.autograd.grad`` call made by the user's code."""

    create_graph: bool
    allow_unused: bool
    none_shapes: list[tuple[int, ...]] = field(default_factory=list)


@contextmanager
def trace_grad() -> Iterator[list[GradCall]]:
    """Record the user's ``torch.autograd.grad`` calls while the block runs.

    Only calls through the attribute ``torch.autograd.grad`` are seen (DeepXDE-style helpers
    and most residual code call it that way). The evidence feeds the diagnosis: a call without
    ``create_graph=True``, or one that returned ``None`` for an input that is not on the graph.
    """
    import torch

    real = torch.autograd.grad
    signature = inspect.signature(real)
    calls: list[GradCall] = []

    def traced(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        try:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            a = bound.arguments
            call = GradCall(bool(a["create_graph"]), bool(a["allow_unused"]))
            inputs = a["inputs"]
            inputs = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
            if isinstance(result, tuple):
                for g, x in zip(result, inputs, strict=False):
                    if g is None and isinstance(x, torch.Tensor):
                        call.none_shapes.append(tuple(x.shape))
            calls.append(call)
        except Exception:  # recording is best effort; never change the user's result
            pass
        return result

    setattr(torch.autograd, "grad", traced)  # noqa: B010
    try:
        yield calls
    finally:
        setattr(torch.autograd, "grad", real)  # noqa: B010


__all__ = [
    "GradCall",
    "Target",
    "call_user",
    "load_target",
    "parse_target",
    "resolve",
    "trace_grad",
    "user_traceback",
    "zero_arg_callable",
]
