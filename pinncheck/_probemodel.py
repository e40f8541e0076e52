"""Building the model that ``probe`` examines: the target, its factory arguments, its weights,
and how many inputs its ``forward`` takes.

A probe target names one of:

- an ``nn.Module`` instance or any callable mapping inputs to outputs;
- a class or factory, called with ``args`` (``--arg KEY=VALUE``, ``args = {...}`` in a check
  file) or with no arguments when it needs none;

and, for a module, ``state_dict`` names a checkpoint to load first (``torch.save`` of
``model.state_dict()``, or a dict holding one under ``state_dict`` / ``model_state_dict`` /
``model``), read with ``torch.load(..., weights_only=True)`` so that it runs no code.

The model is called with one ``(n, d)`` tensor, or with one ``(n, 1)`` tensor per domain
variable when its ``forward`` takes ``d`` inputs (``forward(self, x, t)``).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib
import torch
from torch import nn

from ._errors import OptionError, UserCodeError
from ._usercode import call_user, exception_text, resolve, user_output, zero_arg_callable

_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")


def parse_args(items: Sequence[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Factory arguments from ``KEY=VALUE`` texts (values read as TOML values: ``32``,
    ``1e-3``, ``true``, ``"tanh"``, ``[64, 64]``; anything else is a string) or a mapping.

    Raises:
        OptionError: an item is not ``KEY=VALUE`` or its key is not a Python name.
    """
    if items is None:
        return {}
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            key, eq, value = str(item).partition("=")
            if not eq or not key.strip():
                raise OptionError(
                    f"Cannot read the factory argument {item!r}: write KEY=VALUE, e.g. "
                    "--arg width=64 --arg activation=tanh."
                )
            pairs.append((key.strip(), _value(value.strip())))
    out: dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(key, str) or not key.isidentifier():
            raise OptionError(f"The factory argument name {key!r} is not a Python name.")
        out[key] = value
    return out


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]  # a TOML value: parsed, never evaluated
    except tomllib.TOMLDecodeError:
        return text


def _signature_text(obj: Any, label: str) -> str:
    try:
        return f"{label}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return label


def _args_phrase(obj: Any) -> str:
    try:
        params = [
            p
            for p in inspect.signature(obj).parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return "--arg KEY=VALUE"
    return " ".join(f"--arg {p.name}=VALUE" for p in params) or "--arg KEY=VALUE"


def _call_factory(obj: Any, label: str, args: dict[str, Any]) -> Any:
    kind = "class" if inspect.isclass(obj) else "factory"
    if args:
        try:
            inspect.signature(obj).bind(**args)
        except TypeError as exc:
            raise UserCodeError(
                f"The {kind} {_signature_text(obj, label)} does not accept the arguments "
                f"{args}: {exc}. Give each parameter it needs as --arg NAME=VALUE (args = "
                "{NAME = VALUE, ...} in a check file)."
            ) from None
        except ValueError:  # no signature to check: let the call decide
            pass
    elif not zero_arg_callable(obj):
        needs = "its constructor needs arguments" if kind == "class" else "it needs arguments"
        raise UserCodeError(
            f"The {kind} {_signature_text(obj, label)}: {needs}; give them with "
            f"{_args_phrase(obj)} (args = {{...}} in a check file), or name an instance or a "
            "zero-argument factory."
        )
    model = call_user(lambda: obj(**args), what=f"The {kind} {label}")
    if isinstance(model, torch.Tensor) or not callable(model):
        raise UserCodeError(
            f"The {kind} {label} returned a {type(model).__name__}, not a model (an nn.Module "
            "or a callable mapping an (n, d) tensor to (n, m))."
        )
    return model


def load_state_dict(model: Any, path: Path, label: str) -> None:
    """Load the weights at ``path`` into ``model`` (``weights_only``: no code runs)."""
    if not isinstance(model, nn.Module):
        raise UserCodeError(
            f"--state-dict needs an nn.Module, but {label} is a {type(model).__name__}."
        )
    if not path.is_file():
        raise OptionError(f"The state dict file {path} does not exist.")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserCodeError(
            f"Cannot read the state dict {path}: {type(exc).__name__}: {exception_text(exc)}. "
            "Save it with torch.save(model.state_dict(), path) (tensors and plain containers "
            "only: it is loaded with weights_only=True, which runs no code)."
        ) from None
    state = loaded
    if isinstance(loaded, Mapping):
        for key in _CHECKPOINT_KEYS:
            inner = loaded.get(key)
            if isinstance(inner, Mapping):
                state = inner
                break
    if not isinstance(state, Mapping):
        raise UserCodeError(
            f"{path} holds a {type(loaded).__name__}, not a state dict (a mapping of parameter "
            "names to tensors)."
        )
    try:
        with user_output():
            model.load_state_dict(state)
    except Exception as exc:
        raise UserCodeError(
            f"The weights in {path} do not fit {label}: {exception_text(exc).strip()}"
        ) from None


def input_arity(model: Any, d: int, label: str) -> int:
    """How many tensors the model takes: 1 (an ``(n, d)`` tensor) or ``d`` (split inputs)."""
    fn = model.forward if isinstance(model, nn.Module) else model
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 1
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(p.default is p.empty for p in positional)
    if required <= 1 <= len(positional):
        return 1
    if d > 1 and required <= d <= len(positional):
        return d
    names = ", ".join(p.name for p in positional)
    raise UserCodeError(
        f"The model {label} takes {required} input(s) ({'forward' if fn is not model else label}"
        f"({names})), but pinncheck calls it with one (n, {d}) tensor, or with one (n, 1) tensor "
        f"per domain variable ({d} here). Give the domain one -d option per input, in the "
        "order forward takes them."
    )


@dataclass
class BuiltModel:
    model: Any
    label: str
    arity: int
    warnings: list[str] = field(default_factory=list)

    def inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The arguments for an ``(n, d)`` input: itself, or its columns as ``(n, 1)`` views
        (on x's graph, so derivatives with respect to x still see them)."""
        if self.arity == 1:
            return (x,)
        return tuple(x[:, i : i + 1] for i in range(x.shape[1]))


def build_model(
    target: Any,
    d: int,
    *,
    args: dict[str, Any],
    state_dict: Path | None,
    definitions_only: bool = False,
) -> BuiltModel:
    """Load the target and turn it into the model to probe (a copy of a module instance)."""
    obj, label = resolve(target, definitions_only=definitions_only)
    warnings: list[str] = []
    owned = True
    if isinstance(obj, nn.Module):
        if args:
            raise UserCodeError(
                f"{label} is a model instance, which takes no factory arguments; name its class "
                "or a factory to pass --arg values."
            )
        model: Any = obj
        owned = False
    elif inspect.isclass(obj) or args or (callable(obj) and zero_arg_callable(obj)):
        if not callable(obj):
            raise UserCodeError(f"{label} is a {type(obj).__name__}; it cannot take arguments.")
        model = _call_factory(obj, label, args)
    elif callable(obj):
        model = obj
    else:
        raise UserCodeError(
            f"{label} is a {type(obj).__name__}, not an nn.Module, a callable or a factory."
        )
    if isinstance(model, nn.Module) and not owned:
        # Probing runs forward passes, which update BatchNorm statistics: use a copy.
        try:
            with user_output():
                model = copy.deepcopy(model)
        except Exception:
            warnings.append(
                "The model could not be copied, so probing it ran forward passes on the "
                "original (BatchNorm running statistics may have been updated)."
            )
    if state_dict is not None:
        load_state_dict(model, state_dict, label)
    return BuiltModel(model, label, input_arity(model, d, label), warnings)


__all__ = ["BuiltModel", "build_model", "input_arity", "load_state_dict", "parse_args"]
