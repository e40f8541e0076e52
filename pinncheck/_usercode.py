"""Loading and calling the user's own code: ``file.py:function`` and ``package.module:function``.

A target names an object in the user's code. Loading it imports their module, which runs their
code, the way pytest runs a test file: ``file.py:function`` is imported from its path with the
file's folder at the front of ``sys.path`` (so it can import its siblings), and
``package.module:function`` is imported by name with the current folder (or the check file's
folder) at the front of ``sys.path``.

Each target's folder is its own scope (:func:`target_scope`): the folder is on ``sys.path`` only
while the target is imported and run, and a module of the same name that another folder loaded
earlier (``A/mm.py`` and then ``B/mm.py``) is set aside for that time, so every target sees the
modules of its own folder.

Failures inside the user's code become :class:`~pinncheck.UserCodeError` with the user's
traceback (pinncheck's own frames removed) as ``details``; the CLI prints it and exits 2. What
the user's code prints goes to stderr (:func:`user_output`), so that pinncheck's own output on
stdout (JSON) stays clean.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import keyword
import os
import site
import sys
import sysconfig
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from ._errors import OptionError, UserCodeError
from ._scriptload import Script, split_script, training_calls

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_MODULES: dict[tuple[str, int, bool], ModuleType] = {}
# Scripts loaded with definitions_only, by module name: what each left out.
_SCRIPTS: dict[str, Script] = {}
# Notes about loading the user's code (a slow import, training calls), for the report.
_NOTES: list[str] = []
# Called with a note as soon as it is known (the CLI prints it to stderr before a long import).
NOTICE: Callable[[str], None] | None = None
# An import slower than this many seconds suggests definitions_only.
SLOW_IMPORT_S = 5.0
# What importing the user's modules changed in torch's settings: {field of TorchState: value}.
_IMPORT_SETTINGS: dict[str, Any] = {}

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


def exception_text(exc: BaseException) -> str:
    """``str(exc)``, or a note saying why it cannot be shown (the user's ``__str__`` may raise)."""
    try:
        text = str(exc)
    except Exception as inner:  # any failure of the user's __str__
        return f"<its message cannot be shown: str() raised {type(inner).__name__}>"
    return text if isinstance(text, str) else ""


def _hint(text: str) -> str:
    for needle, hint in _HINTS:
        if needle in text:
            return f"Hint: {hint}."
    return ""


def sentences(*parts: str) -> str:
    """Join message parts as sentences: each non-empty part ends with a full stop (or ``?``,
    ``!``, ``:``) before the next begins, so that no two run together."""
    out = ""
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if out and out[-1] not in ".!?:":
            out += "."
        out += (" " if out else "") + part
    return out


def _skipped_note(exc: BaseException) -> str:
    """For a NameError of a name that definitions_only left out: which statement it was."""
    name = getattr(exc, "name", None) if isinstance(exc, NameError) else None
    if not isinstance(name, str):
        return ""
    found = [s for script in _SCRIPTS.values() for s in script.skipped_for(name)]
    if not found:
        return ""
    return (
        f"{name!r} is defined by a statement that --definitions-only left out ("
        + "; ".join(s.describe() for s in found[:3])
        + "): only imports, definitions and simple constants are loaded. Move what the "
        "function needs into a function or a simple constant, or load the file without "
        "--definitions-only."
    )


def _error(what: str, exc: BaseException, note: str = "") -> UserCodeError:
    text = exception_text(exc).rstrip()
    message = f"{what} raised {type(exc).__name__}" + (f": {text}" if text else "")
    try:
        details: str | None = user_traceback(exc)
    except Exception:  # the traceback is a courtesy; the message is enough
        details = None
    return UserCodeError(sentences(message, _skipped_note(exc), _hint(text), note), details=details)


@contextmanager
def user_output() -> Iterator[None]:
    """Run the user's code with what it writes to stdout sent to stderr instead.

    pinncheck's own output (the table, or the JSON document of ``--format json``) is the only
    thing on stdout. The redirection is at the file-descriptor level
    (:func:`pinncheck._workers.user_output_to_stderr`): ``print``, ``os.write(1, ...)``, C code
    and subprocesses are all redirected. A process the user's code forks never returns into
    pinncheck: it exits when the block ends in it.
    """
    from ._workers import user_output_to_stderr

    pid = os.getpid()
    with user_output_to_stderr():
        try:
            yield
        finally:
            if os.getpid() != pid:  # a fork made by the user's code (os.fork as a "factory")
                os._exit(0)


def call_user(fn: Callable[..., Any], *args: Any, what: str) -> Any:
    """``fn(*args)``; an exception in it becomes a :class:`UserCodeError` with its traceback.

    What it prints goes to stderr (:func:`user_output`).
    """
    try:
        with user_output():
            return fn(*args)
    except (Exception, SystemExit) as exc:
        raise _error(what, exc) from None


# Import scopes ------------------------------------------------------------------------------
#
# Python caches imported modules by name in sys.modules, and the user's folders are not packages:
# two check files in different folders may each have their own mm.py (or helpers.py). A target's
# folder is therefore put first on sys.path only while that target is imported and run, and any
# module of a name the folder provides that was loaded from somewhere else (another user folder)
# is set aside for that time and put back afterwards. Modules of the standard library and of
# installed packages are never set aside: replacing a loaded torch or numpy would break them.


def _library_roots() -> tuple[str, ...]:
    roots: set[str] = set()
    for scheme_vars in (None, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        try:
            paths = sysconfig.get_paths(vars=scheme_vars) if scheme_vars else sysconfig.get_paths()
        except Exception:  # an odd installation: fewer roots, still safe
            continue
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if paths.get(key):
                roots.add(os.path.realpath(paths[key]))
    extra: list[str] = []
    with contextlib.suppress(Exception):
        extra += site.getsitepackages()
    with contextlib.suppress(Exception):
        extra.append(site.getusersitepackages())
    roots.update(os.path.realpath(p) for p in extra if p)
    roots.add(_PACKAGE_DIR)
    return tuple(sorted(roots))


_LIBRARY_ROOTS: tuple[str, ...] | None = None


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _module_location(module: object) -> str | None:
    """The real path of a module's file (or first package folder); None for built-ins."""
    try:
        where = getattr(module, "__file__", None)
        if not where:
            paths = getattr(module, "__path__", None)
            where = next(iter(paths), None) if paths is not None else None
        return os.path.realpath(where) if isinstance(where, str) and where else None
    except Exception:  # odd objects in sys.modules are left alone
        return None


def _provides(folder: str, top: str, where: str) -> bool:
    """Whether ``where`` (a module of the top-level name ``top``) is the folder's own file."""
    try:
        rel = os.path.relpath(where, folder)
    except ValueError:  # another drive (Windows)
        return False
    first = rel.split(os.sep, 1)[0]
    return not rel.startswith(os.pardir) and first.split(".", 1)[0] == top


def _provided_names(folder: str) -> set[str]:
    """Top-level module names a folder provides: its .py (and extension) files and folders."""
    suffixes = tuple(importlib.machinery.all_suffixes())
    names: set[str] = set()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return names
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        name = entry.name if is_dir else entry.name.split(".", 1)[0]
        if (is_dir or entry.name.endswith(suffixes)) and name.isidentifier():
            names.add(name)
    return names


@contextmanager
def folder_scope(folder: str | Path) -> Iterator[None]:
    """Import and run code with ``folder`` first on ``sys.path`` and its own modules in view.

    On entry, modules in ``sys.modules`` whose top-level name the folder provides but that were
    loaded from elsewhere (not the standard library or an installed package) are set aside,
    with their submodules, so that the folder's own files are imported afresh. On exit the
    folder leaves ``sys.path`` and what was set aside is put back (modules the scope imported
    under those names are dropped; other new modules stay, as after any import).
    """
    global _LIBRARY_ROOTS
    if _LIBRARY_ROOTS is None:
        _LIBRARY_ROOTS = _library_roots()
    folder = os.path.realpath(str(folder))
    provided = _provided_names(folder)
    clashing: set[str] = set()
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top not in provided or top == "pinncheck" or top in clashing:
            continue
        where = _module_location(module)
        if where is None or _under(where, _LIBRARY_ROOTS) or _provides(folder, top, where):
            continue
        clashing.add(top)
    aside = {
        name: module
        for name, module in list(sys.modules.items())
        if name.partition(".")[0] in clashing
    }
    for name in aside:
        del sys.modules[name]
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
        for name in [n for n in list(sys.modules) if n.partition(".")[0] in clashing]:
            if name not in aside:
                del sys.modules[name]
        sys.modules.update(aside)


# Global torch settings -----------------------------------------------------------------------
#
# User code may change torch's global settings (torch.set_grad_enabled(False),
# set_default_dtype, ...). Changes made while a target's code runs stay in effect until its
# scope closes, and are then undone, so that they do not leak into pinncheck's other checks (in
# `pinncheck run`, one file may hold many). Changes made by importing the user's modules are
# recorded and applied in every target's scope: as when pytest imports test files, a module's
# import-time settings hold for all the user code that runs after it (whichever module of a
# package made them, and in whatever order the targets come).


@dataclass(frozen=True)
class TorchState:
    """torch's global settings that user code commonly changes."""

    grad: bool
    dtype: Any
    threads: int
    anomaly: bool
    anomaly_check_nan: bool
    deterministic: bool
    deterministic_warn_only: bool
    device: Any

    @staticmethod
    def capture() -> TorchState:
        import torch

        get_device = getattr(torch, "get_default_device", None)  # torch >= 2.3
        check_nan = getattr(torch, "is_anomaly_check_nan_enabled", None)
        return TorchState(
            grad=torch.is_grad_enabled(),
            dtype=torch.get_default_dtype(),
            threads=torch.get_num_threads(),
            anomaly=torch.is_anomaly_enabled(),
            anomaly_check_nan=check_nan() if check_nan is not None else True,
            deterministic=torch.are_deterministic_algorithms_enabled(),
            deterministic_warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
            device=get_device() if get_device is not None else None,
        )

    def apply(self) -> None:
        import torch

        now = TorchState.capture()
        if now.grad != self.grad:
            torch.set_grad_enabled(self.grad)
        if now.dtype != self.dtype:
            torch.set_default_dtype(self.dtype)
        if now.threads != self.threads:
            torch.set_num_threads(self.threads)
        if (now.anomaly, now.anomaly_check_nan) != (self.anomaly, self.anomaly_check_nan):
            torch.autograd.set_detect_anomaly(self.anomaly, check_nan=self.anomaly_check_nan)
        if (now.deterministic, now.deterministic_warn_only) != (
            self.deterministic,
            self.deterministic_warn_only,
        ):
            torch.use_deterministic_algorithms(
                self.deterministic, warn_only=self.deterministic_warn_only
            )
        if now.device != self.device and self.device is not None:
            # The CPU is the default without a device context (which every op would pay for).
            cpu = self.device == torch.device("cpu")
            torch.set_default_device(None if cpu else self.device)


@contextmanager
def torch_state_scope() -> Iterator[None]:
    """Undo, on exit, changes to torch's global settings (:class:`TorchState`) made inside."""
    if "torch" not in sys.modules:  # nothing to protect, and no reason to import torch
        yield
        return
    before = TorchState.capture()
    try:
        yield
    finally:
        before.apply()


def _record_import(before: TorchState | None) -> None:
    # What an import of the user's code changed in torch's settings (see above).
    if before is None or "torch" not in sys.modules:
        return
    after = TorchState.capture()
    for f in fields(TorchState):
        if getattr(after, f.name) != getattr(before, f.name):
            _IMPORT_SETTINGS[f.name] = getattr(after, f.name)


def _apply_import_settings() -> None:
    if _IMPORT_SETTINGS and "torch" in sys.modules:
        replace(TorchState.capture(), **_IMPORT_SETTINGS).apply()


def _state_now() -> TorchState | None:
    return TorchState.capture() if "torch" in sys.modules else None


def target_folder(target: Target | Any) -> Path | None:
    """The folder a target's imports are resolved in (None for an object given directly)."""
    if not isinstance(target, Target):
        return None
    if target.path is not None:
        return target.path.parent
    return target.base_dir or Path.cwd()


@contextmanager
def target_scope(target: Target | Any) -> Iterator[None]:
    """The scope for loading and running a target: its folder's imports (:func:`folder_scope`)
    and, undone on exit, the changes its code makes to torch's settings (:class:`TorchState`).

    Lazy imports in the user's functions (an ``import`` inside a function body) resolve in the
    target's folder only while the scope is open, so keep it open while the code runs.
    """
    with torch_state_scope(), _import_scope(target):
        _apply_import_settings()
        yield


def _import_scope(target: Target | Any) -> contextlib.AbstractContextManager[None]:
    folder = target_folder(target)
    return folder_scope(folder) if folder is not None else contextlib.nullcontext()


def _note(text: str) -> None:
    if text not in _NOTES:
        _NOTES.append(text)
        if NOTICE is not None:
            NOTICE(text)


def take_notes() -> list[str]:
    """The notes gathered while loading the user's code (slow imports, training calls), once."""
    out = list(_NOTES)
    _NOTES.clear()
    return out


def _import_file(path: Path, definitions_only: bool = False) -> ModuleType:
    key = (str(path), path.stat().st_mtime_ns, definitions_only)
    cached = _MODULES.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"pinncheck_user_{path.stem}_{digest}" + ("_defs" if definitions_only else "")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserCodeError(f"Cannot import {path}: Python does not recognise it as a module.")
    module = importlib.util.module_from_spec(spec)
    suggest = ""
    if not definitions_only:
        calls = training_calls(path)
        if calls:
            suggest = (
                f"{path.name} has top-level code that looks like training ({'; '.join(calls)}), "
                "which importing it runs. To load only its imports, definitions and constants, "
                "use --definitions-only (definitions_only = true in a check file)."
            )
            _note(suggest)
    sys.modules[name] = module
    before = _state_now()
    started = time.perf_counter()
    try:
        with user_output():
            if definitions_only:
                _run_definitions(path, module)
            else:
                spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise _error(f"Importing {path}", exc, suggest) from None
    took = time.perf_counter() - started
    if not definitions_only and took > SLOW_IMPORT_S and not suggest:
        _note(
            f"Importing {path.name} took {took:.0f} s: its top level runs more than "
            "definitions. If it trains or builds data, use --definitions-only "
            "(definitions_only = true in a check file) to load only its imports, definitions "
            "and constants."
        )
    _MODULES[key] = module
    _record_import(before)
    return module


def _run_definitions(path: Path, module: ModuleType) -> None:
    """Run only the imports, definitions and simple constants of the file (definitions_only)."""
    try:
        source = path.read_text(encoding="utf-8")
        script = split_script(source, str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
        raise UserCodeError(f"Cannot read {path} as Python: {exc}") from None
    _SCRIPTS[module.__name__] = script
    code = compile(script.kept, str(path), "exec")
    # The kept statements of the user's own file, run as importing it would run them.
    exec(code, module.__dict__)  # noqa: S102


def _import_module(name: str, base_dir: Path | None) -> ModuleType:
    folder = str(base_dir or Path.cwd())
    before = _state_now()
    try:
        with user_output():
            module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise UserCodeError(
                f"Cannot import the module {name!r}: no module named {exc.name!r} (searched "
                f"{folder} and the installed packages). For a file, write path/to/file.py:function."
            ) from None
        raise _error(f"Importing {name}", exc) from None
    except (Exception, SystemExit) as exc:
        raise _error(f"Importing {name}", exc) from None
    _record_import(before)  # (nothing changed if it was imported before)
    return module


def load_target(target: Target, definitions_only: bool = False) -> Any:
    """Import the target's module (running the user's code) and return the named object.

    Changes the import makes to torch's global settings are recorded and hold for all user
    code run afterwards (:func:`target_scope` applies them, and undoes them when it closes).
    With ``definitions_only``, only the file's imports, definitions and simple constants run
    (:mod:`pinncheck._scriptload`).

    Raises:
        UserCodeError: the import failed (with the user's traceback), or the name is missing.
    """
    with _import_scope(target):
        if target.path is not None:
            module = _import_file(target.path, definitions_only)
            where = str(target.path)
        elif definitions_only:
            assert target.module is not None
            module = _import_file(_module_file(target.module), True)
            where = f"the module {target.module}"
        else:
            assert target.module is not None
            module = _import_module(target.module, target.base_dir)
            where = f"the module {target.module}"
        obj: Any = module
        walked: list[str] = []
        for part in target.attr.split("."):
            try:
                with user_output():
                    obj = getattr(obj, part)
            except AttributeError:
                owner = where if not walked else ".".join(walked)
                raise _missing(obj, part, owner, target, walked) from None
            except (Exception, SystemExit) as exc:
                raise _error(f"Looking up {part!r} in {where}", exc) from None
            walked.append(part)
        return obj


def _module_file(name: str) -> Path:
    """The source file of the module ``name``, found without importing it (its parent packages
    are imported)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise UserCodeError(f"Cannot find the module {name!r}: {exception_text(exc)}") from None
    origin = getattr(spec, "origin", None) if spec is not None else None
    if not origin or not str(origin).endswith(".py"):
        raise UserCodeError(
            f"Cannot load only the definitions of the module {name!r}: no Python source file "
            "was found for it (--definitions-only needs a .py file)."
        )
    return Path(origin)


def _missing(obj: Any, part: str, owner: str, target: Target, walked: list[str]) -> UserCodeError:
    """The error for a missing attribute, with the closest name and what the module defines."""
    names: list[str] = []
    public: list[str] = []
    with contextlib.suppress(Exception), user_output():
        names = [n for n in dir(obj) if isinstance(n, str) and not n.startswith("_")]
        for n in names:
            with contextlib.suppress(Exception):
                if callable(getattr(obj, n, None)):
                    public.append(n)
    close = difflib.get_close_matches(part, names, n=1)
    script = _SCRIPTS.get(getattr(obj, "__name__", None) or "") if not walked else None
    left_out = script.skipped_for(part) if script is not None else []
    if left_out:
        return UserCodeError(
            f"{owner} defines {part!r} (target {target.text!r}) only in a statement that "
            "--definitions-only left out ("
            + "; ".join(s.describe() for s in left_out[:3])
            + "): only imports, def/class definitions and simple constants are loaded. Name "
            "a function defined with def, or load the file without --definitions-only."
        )
    return UserCodeError(
        f"{owner} has no attribute {part!r} (target {target.text!r})"
        + (f"; did you mean {close[0]!r}?" if close else "")
        + (f" It defines: {', '.join(public[:12])}." if public and not walked else "")
    )


def resolve(target: Target | Any, definitions_only: bool = False) -> tuple[Any, str]:
    """The object a target names (loaded) or the object itself, and a label for messages."""
    if isinstance(target, Target):
        return load_target(target, definitions_only), target.text
    try:
        name = getattr(target, "__qualname__", None)
    except Exception:  # a user object with an odd __getattr__
        name = None
    return target, name if isinstance(name, str) and name else type(target).__name__


def dtype_phrase(dtype: Any) -> str:
    """``"an int64"``, ``"a bool"``: a tensor dtype with its article, for messages."""
    name = str(dtype).replace("torch.", "")
    return ("an " if name[:1] in "aeio" else "a ") + name


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
    "TorchState",
    "call_user",
    "dtype_phrase",
    "exception_text",
    "folder_scope",
    "load_target",
    "parse_target",
    "resolve",
    "sentences",
    "take_notes",
    "target_scope",
    "torch_state_scope",
    "trace_grad",
    "user_output",
    "user_traceback",
    "zero_arg_callable",
]
