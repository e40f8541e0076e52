"""pinncheck: check autograd partial derivatives and PDE residuals against SymPy.

The public API is re-exported here. Heavy modules (torch, sympy) load on first use, so that
``import pinncheck`` and ``pinncheck --help`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._errors import CheckFileError as CheckFileError
from ._errors import DeviceError as DeviceError
from ._errors import DomainError as DomainError
from ._errors import ExitCode as ExitCode
from ._errors import ExpressionError as ExpressionError
from ._errors import OptionError as OptionError
from ._errors import PinncheckError as PinncheckError
from ._errors import UserCodeError as UserCodeError
from ._version import __version__ as __version__

if TYPE_CHECKING:
    from ._check import CheckReport as CheckReport
    from ._check import check as check
    from ._checkfile import RunReport as RunReport
    from ._checkfile import run_files as run_files
    from ._domain import Domain as Domain
    from ._domain import parse_domain as parse_domain
    from ._parse import parse_expression as parse_expression
    from ._probe import ProbeReport as ProbeReport
    from ._probe import probe as probe
    from ._residual import ResidualReport as ResidualReport
    from ._residual import residual as residual
    from ._verify import VerifyReport as VerifyReport
    from ._verify import verify as verify

_LAZY = {
    "check": "._check",
    "CheckReport": "._check",
    "Domain": "._domain",
    "parse_domain": "._domain",
    "parse_expression": "._parse",
    "residual": "._residual",
    "ResidualReport": "._residual",
    "run_files": "._checkfile",
    "RunReport": "._checkfile",
    "verify": "._verify",
    "VerifyReport": "._verify",
    "probe": "._probe",
    "ProbeReport": "._probe",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pinncheck' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
