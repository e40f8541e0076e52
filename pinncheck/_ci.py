"""What CI tools read natively: JUnit XML, GitHub annotations and a Markdown step summary.

All three describe a :class:`~pinncheck._checkfile.RunReport` through :func:`outcome`, the
verdict on one check in the words the pytest plugin also uses.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._checkfile import Entry, EntryResult, Problem, RunReport

NOT_RUN = "not run: -x stopped the run after the first missed expectation"


@dataclass(frozen=True)
class Outcome:
    """The verdict on one check: ``passed``, ``failed`` (missed its expectation), ``error``
    (it could not run: the user's code raised) or ``skipped`` (not run); for all but
    ``passed``, a one-line ``message`` and the full ``details`` (the report as pinncheck prints
    it, or the error with the user's traceback)."""

    state: str
    message: str
    details: str


def render_text(report: Any, width: int = 120) -> str:
    """A report as plain text, tables and warnings in the order pinncheck prints them."""
    from rich.console import Console

    from .cli import print_report

    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, no_color=True, color_system=None, highlight=False, emoji=False
    )
    # Warnings go to a console on stderr: catch them in the same text.
    with contextlib.redirect_stderr(buffer):
        print_report(console, report)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()).strip("\n")


def _last_line(text: str) -> str:
    """The summary line every report ends with, without its ``PASS:``/``FAIL:`` head."""
    lines = [line for line in text.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    return re.sub(r"^(PASS|FAIL|UNDEFINED|ERROR): ", "", last)


def outcome(result: EntryResult) -> Outcome:
    """The verdict on one check run, with the reason when it missed its expectation."""
    e = result.entry
    if result.report is None:
        error = result.error or "the check could not run"
        return Outcome("error", error.splitlines()[0], error)
    if result.met:  # nothing to explain: not rendered (a suite may hold thousands)
        return Outcome("passed", "", "")
    details = render_text(result.report)
    summary = _last_line(details)
    if result.status != e.expect:
        message = f"expected {e.expect.upper()}, got {result.status.upper()}: {summary}"
    else:
        message = (
            f"{result.status.upper()} as expected, but the diagnosis does not mention "
            f"{e.expect_diagnosis!r}"
        )
    return Outcome("failed", message, details)


def not_run_outcome() -> Outcome:
    return Outcome("skipped", NOT_RUN, NOT_RUN)


def outcomes(report: RunReport) -> list[tuple[Entry, Outcome, float]]:
    """Every check of a run, in order: its entry, outcome and seconds (0 if not run)."""
    rows = [(r.entry, outcome(r), r.seconds) for r in report.results]
    rows += [(e, not_run_outcome(), 0.0) for e in report.not_run]
    return rows


# JUnit XML ---------------------------------------------------------------------------------
# Characters XML 1.0 cannot carry, even escaped.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _display_path(path: Path, base: str | Path | None = None) -> str:
    """``path`` relative to ``base`` (default: the current folder) when inside it, with
    forward slashes; otherwise as given."""
    root = Path(base) if base else Path.cwd()
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def classname(path: Path) -> str:
    """The JUnit class of a check: its file's path without ``.toml``, dotted like a module
    (``samples/heat_1d.toml`` -> ``samples.heat_1d``)."""
    shown = _display_path(path).removesuffix(".toml")
    return ".".join(part for part in shown.split("/") if part not in ("", ".", ".."))


def junit_xml(
    report: RunReport | None,
    *,
    name: str = "pinncheck",
    properties: dict[str, str] | None = None,
    problems: Sequence[Problem] = (),
) -> ET.ElementTree:
    """A run as JUnit XML, as pytest writes it: one ``<testsuite>`` in ``<testsuites>``, one
    ``<testcase>`` per check (``classname`` from the file, ``name`` the check's), with
    ``<failure>`` for a missed expectation, ``<error>`` for a check that could not run and
    ``<skipped>`` for one not run. ``file`` and ``line`` point at the check's table.

    When the files did not validate (``report`` None), each of the ``problems`` is a
    ``<testcase>`` with an ``<error>``, named ``validation``, as pytest reports collection
    errors."""
    rows: list[tuple[str, str, Path, int | None, Outcome, float]] = [
        (classname(e.file), e.name, e.file, e.line, o, s)
        for e, o, s in (outcomes(report) if report is not None else [])
    ]
    rows += [
        (
            classname(q.file),
            "validation",
            q.file,
            q.line,
            Outcome("error", q.message, q.message),
            0.0,
        )
        for q in problems
    ]
    states = [row[4].state for row in rows]
    counts = {
        "tests": str(len(rows)),
        "failures": str(states.count("failed")),
        "errors": str(states.count("error")),
        "skipped": str(states.count("skipped")),
        "time": f"{sum(row[5] for row in rows):.3f}",
    }
    root = ET.Element("testsuites", {"name": name, **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": name,
            **counts,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "hostname": _xml_text(socket.gethostname()),
        },
    )
    if properties:
        props = ET.SubElement(suite, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", {"name": key, "value": _xml_text(value)})
    for cls, case_name, file, line, result, seconds in rows:
        attrs = {
            "classname": _xml_text(cls),
            "name": _xml_text(case_name),
            "file": _xml_text(_display_path(file)),
        }
        if line is not None:
            attrs["line"] = str(line)
        case = ET.SubElement(suite, "testcase", {**attrs, "time": f"{seconds:.3f}"})
        if result.state == "passed":
            continue
        tag = {"failed": "failure", "error": "error", "skipped": "skipped"}[result.state]
        child = ET.SubElement(case, tag, {"message": _xml_text(result.message)})
        if tag != "skipped":
            child.set("type", "pinncheck." + ("missed" if tag == "failure" else "error"))
            child.text = _xml_text(result.details)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(report: RunReport | None, path: str | Path, **kwargs: Any) -> None:
    """Write :func:`junit_xml` to ``path`` (UTF-8, with an XML declaration).

    Raises:
        OSError: the file cannot be written.
    """
    junit_xml(report, **kwargs).write(path, encoding="utf-8", xml_declaration=True)


# GitHub workflow commands ------------------------------------------------------------------
def escape_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub's runner reads it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (file, title...), escaped."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(
    level: str,
    message: str,
    file: Path | None = None,
    line: int | None = None,
    title: str | None = None,
) -> str:
    """One ``::error file=...,line=...,title=...::message`` line."""
    props = []
    if file is not None:
        workspace = os.environ.get("GITHUB_WORKSPACE")
        props.append(f"file={escape_property(_display_path(file, workspace))}")
        if line is not None:
            props.append(f"line={line}")
    if title:
        props.append(f"title={escape_property(title)}")
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    return f"{head}::{escape_data(message)}"


def github_annotations(report: RunReport) -> list[str]:
    """An ``::error`` annotation for every check that missed its expectation or could not run,
    on the line of its table; a ``::warning`` for checks not run after ``-x``."""
    lines = []
    for result in report.results:
        if result.met:
            continue
        o = outcome(result)
        text = o.message
        diagnosis = result.diagnosis_text if result.report is not None else o.details
        if diagnosis and diagnosis != o.message:
            text += "\n" + diagnosis
        e = result.entry
        lines.append(annotation("error", text, e.file, e.line, f"pinncheck {e.kind} {e.name}"))
    if report.not_run:
        lines.append(annotation("warning", f"{len(report.not_run)} check(s) {NOT_RUN}"))
    return lines


def problem_annotations(problems: Sequence[Problem]) -> list[str]:
    """An ``::error`` annotation for each problem found validating check files."""
    return [
        annotation("error", q.message, q.file, q.line, "pinncheck: bad check file")
        for q in problems
    ]


# Markdown step summary ---------------------------------------------------------------------
def _md(text: str) -> str:
    """Text for a Markdown table cell: no markup, no HTML, no line breaks."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([\\`*_\[\]|#~!])", r"\\\1", text)
    return " ".join(text.split())


def markdown_summary(report: RunReport, *, title: str = "pinncheck run") -> str:
    """A run in Markdown, for ``$GITHUB_STEP_SUMMARY``: the verdict, a table of the checks that
    missed (with their reasons), and every check in a collapsed table."""
    rows = outcomes(report)
    missed = [(e, o) for e, o, _ in rows if o.state in ("failed", "error")]
    met = sum(o.state == "passed" for _, o, _ in rows)
    verdict = report.status.upper()  # not_run implies a miss, so FAIL
    out = [f"## {_md(title)}: {verdict}", ""]
    line = f"{met} of {len(rows)} checks met their expectation"
    if report.not_run:
        line += f"; {len(report.not_run)} not run (-x)"
    out += [line + ".", ""]
    if missed:
        out += ["| check | file | reason |", "| --- | --- | --- |"]
        for e, o in missed:
            where = f"{_display_path(e.file)}:{e.line}"
            out.append(f"| {_md(e.name)} | {_md(where)} | {_md(o.message)} |")
        out.append("")
    out += [
        "<details><summary>All checks</summary>",
        "",
        "| check | kind | file | result | time |",
        "| --- | --- | --- | --- | --- |",
    ]
    for e, o, seconds in rows:
        out.append(
            f"| {_md(e.name)} | {e.kind} | {_md(_display_path(e.file))}:{e.line} | {o.state} "
            f"| {seconds:.2f}s |"
        )
    out += ["", "</details>", ""]
    return "\n".join(out)


def problems_markdown(messages: Sequence[str]) -> str:
    """The problems that stopped a run before it started, in Markdown."""
    out = ["## pinncheck run: ERROR", "", "The check files did not validate; nothing ran.", ""]
    out += [f"- {_md(m)}" for m in messages]
    return "\n".join(out) + "\n"


def append_step_summary(text: str, path: str) -> None:
    """Append to the file GitHub names in ``$GITHUB_STEP_SUMMARY``.

    Raises:
        OSError: the file cannot be written.
    """
    with open(path, "a", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")
