import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _json_documents_follow_their_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every JSON document a test produces, through ``report.to_dict()`` or the CLI (see
    ``helpers.CliResult.json``), is validated against the schema shipped for its kind."""
    from helpers import validated
    from pinncheck._check import CheckReport
    from pinncheck._checkfile import RunReport
    from pinncheck._probe import ProbeReport
    from pinncheck._residual import ResidualReport
    from pinncheck._verify import VerifyReport

    for cls in (CheckReport, ResidualReport, VerifyReport, ProbeReport, RunReport):

        def to_dict(self: Any, _original: Any = cls.to_dict) -> Any:
            return validated(_original(self))

        monkeypatch.setattr(cls, "to_dict", to_dict)
    yield
