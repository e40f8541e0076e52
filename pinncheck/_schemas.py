"""JSON Schemas of pinncheck's JSON documents, one per kind.

The schemas are built here and shipped as package data (``pinncheck/schemas/KIND.schema.json``,
written by ``python -m pinncheck._schemas``; a test keeps the files equal to what this module
builds). Read one with :func:`load_schema`; check a document with :func:`validate`, which needs
the ``jsonschema`` package (a development dependency, not a runtime one).

Conventions every schema states:

- Numbers that can be NaN or infinite are ``number`` or ``null``; a ``null`` for NaN or
  infinity comes with a sibling key ``NAME_nonfinite`` holding ``"nan"``, ``"inf"`` or
  ``"-inf"``.
- A point's coordinates are an object of their own, ``"point": {"x": ...}``, beside
  ``index`` and the compared values.
- Objects may gain keys in later versions without a change of ``schema_version``; renamed,
  removed or redefined keys change it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ._version import SCHEMA_VERSION

KINDS = ("check", "residual", "verify", "probe", "run")
DRAFT = "https://json-schema.org/draft/2020-12/schema"
NONFINITE = {"enum": ["nan", "inf", "-inf"]}

STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
STRINGS: dict[str, Any] = {"type": "array", "items": STRING}
NUMBER_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}
STATUS = {"enum": ["pass", "fail", "inconclusive", "undefined"]}


def obj(
    required: dict[str, Any], optional: dict[str, Any] | None = None, *, nullable: bool = False
) -> dict[str, Any]:
    """An object schema: ``required`` keys, ``optional`` keys, more keys allowed.

    Every ``NAME_nonfinite`` key must hold ``"nan"``, ``"inf"`` or ``"-inf"``, and for each
    nullable number ``NAME`` among the keys, ``NAME_nonfinite`` requires ``NAME`` to be null.
    """
    props = {**required, **(optional or {})}
    schema: dict[str, Any] = {
        "type": ["object", "null"] if nullable else "object",
        "required": list(required),
        "properties": props,
        "patternProperties": {"_nonfinite$": NONFINITE},
    }
    numbers = [k for k, v in props.items() if v is NUMBER_OR_NULL]
    if numbers:
        schema["dependentSchemas"] = {
            f"{k}_nonfinite": {"properties": {k: {"type": "null"}}, "required": [k]}
            for k in numbers
        }
    return schema


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def point(values: tuple[str, ...] = ("autograd", "exact")) -> dict[str, Any]:
    """A compared point: ``index``, the coordinates in ``point``, and the two values.

    No other keys, so that a coordinate can never sit beside ``index`` or the values
    (``tolerance`` and ``reference_error`` of the point are allowed)."""
    schema = obj(
        {
            "index": {"type": ["integer", "null"]},
            "point": {"type": "object", "additionalProperties": NUMBER_OR_NULL},
            **{v: NUMBER_OR_NULL for v in values},
        },
        {"tolerance": {}, "reference_error": NUMBER_OR_NULL},
        nullable=True,
    )
    schema["additionalProperties"] = False
    return schema


HEADER = {
    "pinncheck": STRING,
    "torch": STRING,
    "python": STRING,
    "schema_version": {"const": SCHEMA_VERSION},
}
DOMAIN = {
    "type": "object",
    "additionalProperties": {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 2,
        "maxItems": 2,
    },
}
SAMPLING = {
    "variables": STRINGS,
    "domain": DOMAIN,
    "n": INTEGER,
    "seed": INTEGER,
    "device": STRING,
    "dtype": STRING,
}
TOLERANCES = obj(
    {
        "rtol": NUMBER_OR_NULL,
        "atol": NUMBER_OR_NULL,
        "model": {"enum": ["rounding", "override"]},
        "safety_factor": NUMBER_OR_NULL,
        "unit_roundoff": {"type": "number"},
    }
)
TIMINGS = {"type": "object", "additionalProperties": {"type": "number"}}
ASSIGNMENTS = {"type": "object", "additionalProperties": STRING}
PARAMS = {"type": "object", "additionalProperties": NUMBER_OR_NULL}

# The error figures of a derivative, a residual or a user's residual. ``reference_error``
# (optional) is the estimated error of the exact reference values themselves.
STATS = {
    "max_abs_error": NUMBER_OR_NULL,
    "max_rel_error": NUMBER_OR_NULL,
    "rms_error": NUMBER_OR_NULL,
    "max_abs_exact": NUMBER_OR_NULL,
    "nonfinite": INTEGER,
    "finite_points": INTEGER,
    "worst_point": point(),
    "first_nonfinite_point": point(),
    "rtol": NUMBER_OR_NULL,
    "atol": NUMBER_OR_NULL,
    "tolerance": NUMBER_OR_NULL,
    "max_error_ratio": NUMBER_OR_NULL,
    "reference_error": NUMBER_OR_NULL,
    "undecided_points": INTEGER,
    "status": STATUS,
}
OPTIONAL_STATS: dict[str, Any] = {}

DERIVATIVE = obj(
    {
        "name": STRING,
        "function": STRING,
        "wrt": STRINGS,
        "order": INTEGER,
        "exact": STRING,
        **STATS,
    },
    OPTIONAL_STATS,
)

RESIDUAL_EQUATION = obj(
    {
        "equation": STRING,
        "name": STRING,
        "exact_residual": STRING,
        "max_abs_residual_autograd": NUMBER_OR_NULL,
        "max_abs_residual_exact": NUMBER_OR_NULL,
        "term_scale": NUMBER_OR_NULL,
        "symbolic_zero": BOOLEAN,
        "symbolic": STRING,
        "agreement": STATUS,
        "solves": {"enum": ["pass", "fail", "not checked"]},
        **STATS,
        "status_detail": STRING,
    },
    {"forcing": STRING, **OPTIONAL_STATS},
)

VERIFY_EQUATION = obj(
    {
        "equation": STRING,
        "name": STRING,
        "result_dtype": STRING,
        "exact_residual": STRING,
        "max_abs_residual_user": NUMBER_OR_NULL,
        "max_abs_residual_exact": NUMBER_OR_NULL,
        "term_scale": NUMBER_OR_NULL,
        **STATS,
        "failing_points": INTEGER,
        "worst_points": array(point(("user", "exact"))),
        "diagnosis": STRINGS,
        "fit": obj(
            {
                "accepted": BOOLEAN,
                "relative_residual": NUMBER_OR_NULL,
                "formula": {"type": ["string", "null"]},
                "coefficients": {"type": "object", "additionalProperties": NUMBER_OR_NULL},
                "expected": STRING,
                "points": INTEGER,
            },
            nullable=True,
        ),
    },
    OPTIONAL_STATS,
)


def _report(kind: str, required: dict[str, Any]) -> dict[str, Any]:
    return obj(
        {
            **HEADER,
            "kind": {"const": kind},
            "status": {"enum": ["pass", "fail"]},
            **required,
            "warnings": STRINGS,
            "timings": TIMINGS,
        }
    )


def _error(kind: str | dict[str, Any]) -> dict[str, Any]:
    """The document of a command that could not run (bad input, internal error); ``errors``
    may list every problem found (all the invalid tables of a suite's check files)."""
    return obj(
        {
            "pinncheck": STRING,
            "schema_version": {"const": SCHEMA_VERSION},
            "kind": kind if isinstance(kind, dict) else {"const": kind},
            "status": {"const": "error"},
            "error": STRING,
        },
        {"exit_code": {"enum": [2, 3]}, "errors": {"type": "array"}},
    )


REPORTS: dict[str, dict[str, Any]] = {
    "check": _report(
        "check",
        {
            "expression": STRING,
            "parsed": STRING,
            **SAMPLING,
            "order": INTEGER,
            "tolerances": TOLERANCES,
            "derivatives": array(DERIVATIVE),
            "chunk_size": INTEGER,
        },
    ),
    "residual": _report(
        "residual",
        {
            "pdes": STRINGS,
            "solutions": ASSIGNMENTS,
            "params": PARAMS,
            **SAMPLING,
            "any_residual": BOOLEAN,
            "tolerances": TOLERANCES,
            "derivatives": array(DERIVATIVE),
            "equations": array(RESIDUAL_EQUATION),
            "chunk_size": INTEGER,
        },
    ),
    "verify": _report(
        "verify",
        {
            "target": STRING,
            "pdes": STRINGS,
            "solutions": ASSIGNMENTS,
            "params": PARAMS,
            **SAMPLING,
            "tolerances": TOLERANCES,
            "equations": array(VERIFY_EQUATION),
            "diagnosis": STRINGS,
            "grad_calls": INTEGER,
        },
    ),
    "probe": _report(
        "probe",
        {
            "target": STRING,
            "model_type": STRING,
            **SAMPLING,
            "output_columns": INTEGER,
            "pointwise": BOOLEAN,
            "jacobian_points": INTEGER,
            "offdiag_ratio": NUMBER_OR_NULL,
            "offdiag_max_row_ratio": NUMBER_OR_NULL,
            "jacobian_note": {"type": ["string", "null"]},
            "coupling_tolerance": {"type": "number"},
            "perturbation": obj(
                {
                    "points": array(INTEGER),
                    "max_rel_change": NUMBER_OR_NULL,
                    "rows_changed": INTEGER,
                    "worst_point": {"type": ["integer", "null"]},
                    "reliable": BOOLEAN,
                    "coupled": BOOLEAN,
                    "evaluated": BOOLEAN,
                }
            ),
            "deterministic": BOOLEAN,
            "nondeterminism": NUMBER_OR_NULL,
            "randomness_from_rng": {"type": ["boolean", "null"]},
            "finite": BOOLEAN,
            "nonfinite_points": INTEGER,
            "second_derivatives_vanish": BOOLEAN,
            "second_derivatives_checked": BOOLEAN,
            "culprits": array(
                obj(
                    {
                        "name": STRING,
                        "type": STRING,
                        "problem": STRING,
                        "reason": STRING,
                        "observed": BOOLEAN,
                    }
                )
            ),
            "diagnosis": STRINGS,
        },
    ),
}

# What ``pinncheck run`` adds to each entry's report.
RUN_ENTRY = {
    "name": STRING,
    "file": STRING,
    "expect": {"enum": ["pass", "fail"]},
    "expect_diagnosis": {"type": ["string", "null"]},
    "met_expectation": BOOLEAN,
    "seconds": {"type": "number"},
}


def _run_schema() -> dict[str, Any]:
    entry_kinds = [k for k in KINDS if k != "run"]
    entries = [{"allOf": [{"$ref": f"#/$defs/{k}"}, obj(RUN_ENTRY)]} for k in entry_kinds]
    entries.append({"allOf": [_error({"enum": entry_kinds}), obj(RUN_ENTRY)]})
    run = obj(
        {
            **HEADER,
            "kind": {"const": "run"},
            "status": {"enum": ["pass", "fail", "error"]},
            "counts": obj({"total": INTEGER, "met": INTEGER, "missed": INTEGER, "errors": INTEGER}),
            "reports": array({"oneOf": entries}),
        },
        {"errors": {"type": "array"}},
    )
    return {**run, "$defs": {k: REPORTS[k] for k in entry_kinds}}


def build_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of ``pinncheck KIND --format json`` (its report or its error)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    body = _run_schema() if kind == "run" else REPORTS[kind]
    defs = body.pop("$defs", None) if kind == "run" else None
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": f"https://pinncheck.invalid/schemas/{kind}.schema.json",
        "title": f"pinncheck {kind} --format json",
        "description": f"The JSON document of `pinncheck {kind} --format json` "
        f"(schema_version {SCHEMA_VERSION}), or its error document.",
        "oneOf": [body, _error(kind)],
    }
    if defs:
        schema["$defs"] = defs
    return schema


def schema_text(kind: str) -> str:
    return json.dumps(build_schema(kind), indent=2) + "\n"


def load_schema(kind: str) -> dict[str, Any]:
    """The shipped JSON Schema of ``kind`` (``check``, ``residual``, ``verify``, ``probe``,
    ``run``), read from the package data."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    path = resources.files("pinncheck") / "schemas" / f"{kind}.schema.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def validate(doc: Any, kind: str | None = None) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``doc`` follows its kind's schema.

    ``kind`` defaults to the document's own ``kind``. Needs the ``jsonschema`` package.
    """
    import jsonschema

    kind = kind or (doc.get("kind") if isinstance(doc, dict) else None)
    if kind not in KINDS:
        raise ValueError(f"not a pinncheck document: kind {kind!r}")
    jsonschema.validate(doc, load_schema(kind), cls=jsonschema.Draft202012Validator)


def main() -> None:
    """Write every schema into ``pinncheck/schemas/`` (run after changing this module)."""
    from pathlib import Path

    folder = Path(__file__).parent / "schemas"
    folder.mkdir(exist_ok=True)
    for kind in KINDS:
        (folder / f"{kind}.schema.json").write_text(schema_text(kind), encoding="utf-8")


if __name__ == "__main__":
    main()
