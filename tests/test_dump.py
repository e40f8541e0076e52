"""--dump-points: the points as data, matching the reports, bounded, chunk-size independent."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import HEAT, HEAT_ARGS, run_cli
from pinncheck import ExitCode, OptionError
from pinncheck._check import prepare_check
from pinncheck._dump import (
    FIELDS,
    VERDICTS,
    PointDump,
    sample_keys,
)
from pinncheck._residual import prepare_residual
from pinncheck._verify import prepare_verify

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "user_code"
# float32 autograd against an absolute tolerance it cannot always meet: d/dx fails at 247 of
# these 2000 points (by pinncheck's statistics), d/dy passes.
PARTIAL = ("check", "sin(3*x)*exp(y)", "-d", "x=0:1", "-d", "y=0:1", "--order", "1")
PARTIAL_OPTS = ("--dtype", "float32", "--atol", "4e-7", "--rtol", "0", "-n", "2000")
# A residual that is wrong only where x > 0.9.
LOCAL_BUG = """
import torch

def residual(x, u):
    g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
    u_x, u_t = g[:, 0:1], g[:, 1:2]
    u_xx = torch.autograd.grad(u_x, x, torch.ones_like(u_x), create_graph=True)[0][:, 0:1]
    r = u_t - 0.1 * u_xx
    return torch.where(x[:, 0:1] > 0.9, r + 1e-3, r)
"""


def partial_job(n: int, **kwargs: Any) -> Any:
    """The PARTIAL check through the Python API."""
    return prepare_check(
        "sin(3*x)*exp(y)",
        ["x=0:1", "y=0:1"],
        n=n,
        order=1,
        dtype="float32",
        atol=4e-7,
        rtol=0,
        **kwargs,
    )


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]], dict[str, Any]]:
    """The header, rows and metadata of a dump, with the csv module (as docs/dump.md says)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    comments = [line for line in lines if line.startswith("#")]
    assert lines[: len(comments)] == comments  # the comment lines lead
    meta = json.loads(next(c for c in comments if c.startswith("# meta: "))[len("# meta: ") :])
    reader = csv.DictReader(lines[len(comments) :])
    rows = list(reader)
    assert reader.fieldnames is not None
    return list(reader.fieldnames), rows, meta


def failing_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r["selected"] == "failing"]


def row_at(rows: list[dict[str, str]], index: int) -> dict[str, str]:
    (row,) = [r for r in rows if int(r["index"]) == index]
    return row


# The reports and the dump agree -------------------------------------------------------------


def test_verify_dump_has_the_failing_points_and_the_worst_point_of_the_json(
    tmp_path: Path,
) -> None:
    (tmp_path / "local_bug.py").write_text(LOCAL_BUG)
    path = tmp_path / "points.csv"
    r = run_cli(
        "verify",
        f"{tmp_path / 'local_bug.py'}:residual",
        *HEAT_ARGS,
        "-n",
        "600",
        "--dump-points",
        str(path),
        "-f",
        "json",
    )
    assert r.exit_code == ExitCode.FAILED, r.stderr
    eq = r.json()["equations"][0]
    assert eq["undecided_points"] == 0
    columns, rows, meta = read_csv(path)
    assert columns == ["index", "selected", "x", "t"] + [f"eq1.{f}" for f in ("user", *FIELDS)]
    fails = failing_rows(rows)
    assert eq["failing_points"] > 20
    assert len(fails) == eq["failing_points"] == meta["failing"]
    assert meta["quantities"][0]["fail"] == eq["failing_points"]
    # The bug's region, and nothing else, is flagged.
    assert all(float(f["x"]) > 0.9 for f in fails)
    assert all(float(s["x"]) <= 0.9 for s in rows if s["selected"] == "sample")
    assert [r["selected"] for r in rows] == ["failing"] * len(fails) + ["sample"] * (
        len(rows) - len(fails)
    )
    # Every point fits under the default limit: all of them are here, each once.
    assert sorted(int(r["index"]) for r in rows) == list(range(600))
    for w in [eq["worst_point"], *eq["worst_points"]]:
        row = row_at(rows, w["index"])
        assert row["selected"] == "failing" and row["eq1.verdict"] == "fail"
        assert float(row["x"]) == w["point"]["x"] and float(row["t"]) == w["point"]["t"]
        assert float(row["eq1.user"]) == w.get("user", w.get("autograd"))
        assert float(row["eq1.exact"]) == w["exact"]


def test_swapped_column_dump_as_npz_flags_every_point(tmp_path: Path) -> None:
    path = tmp_path / "points.npz"
    r = run_cli(
        "verify",
        f"{SAMPLES / 'heat_swapped_column.py'}:residual",
        *HEAT_ARGS,
        "-n",
        "300",
        "--dump-points",
        str(path),
        "--dump-limit",
        "1e3",
        "-f",
        "json",
    )
    assert r.exit_code == ExitCode.FAILED
    eq = r.json()["equations"][0]
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        assert list(z.files) == [*meta["columns"], "meta"]
        assert meta["kind"] == "verify" and meta["limit"] == 1000 and meta["n"] == 300
        assert int((z["selected"] == "failing").sum()) == eq["failing_points"] == 300
        w = eq["worst_point"]
        (i,) = np.flatnonzero(z["index"] == w["index"])
        assert z["x"][i] == w["point"]["x"] and z["t"][i] == w["point"]["t"]
        assert z["eq1.user"][i] == w["autograd"] and z["eq1.exact"][i] == w["exact"]
        assert z["eq1.error"][i] == abs(w["autograd"] - w["exact"])


def test_check_dump_counts_match_the_statistics(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    r = run_cli(*PARTIAL, *PARTIAL_OPTS, "--dump-points", str(path), "-f", "json")
    assert r.exit_code == ExitCode.FAILED
    doc = r.json()
    columns, rows, meta = read_csv(path)
    assert columns[:4] == ["index", "selected", "x", "y"]
    assert columns[4:10] == [f"d/dx.{f}" for f in ("autograd", *FIELDS)]
    # The statistics' failures, from the Python API: certain + settled in high precision.
    report = partial_job(2000).run()
    for d, jd in zip(report.derivatives, doc["derivatives"], strict=True):
        s = d.stats
        failures = s.certain_failures + s.refined_failures
        assert sum(row[f"{d.name}.verdict"] == "fail" for row in rows) == failures
        (q,) = [q for q in meta["quantities"] if q["name"] == d.name]
        assert q["fail"] == failures and q["status"] == jd["status"]
        w = jd["worst_point"]
        row = row_at(rows, w["index"])
        assert [float(row["x"]), float(row["y"])] == [w["point"]["x"], w["point"]["y"]]
        assert float(row[f"{d.name}.autograd"]) == w["autograd"]
        assert float(row[f"{d.name}.exact"]) == w["exact"]
    assert report.derivatives[0].stats.certain_failures == 247  # the case is what it says
    assert len(failing_rows(rows)) == 247 == meta["failing"]


def test_a_passing_check_dumps_every_point_as_sample(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    r = run_cli(
        "check", "x1**2*sin(x2)", "-d", "x1=0:1", "-d", "x2=0:1", "-n", "300",
        "--dump-points", str(path), "-f", "json",
    )  # fmt: skip
    assert r.exit_code == ExitCode.OK
    doc = r.json()
    _, rows, meta = read_csv(path)
    assert len(rows) == 300 and meta["failing"] == 0 and meta["status"] == "pass"
    assert {r["selected"] for r in rows} == {"sample"}
    assert all(r[f"{d['name']}.verdict"] == "pass" for r in rows for d in doc["derivatives"])
    for d in doc["derivatives"]:
        w = d["worst_point"]
        if w is None:  # exact agreement everywhere
            continue
        row = row_at(rows, w["index"])
        assert float(row["x1"]) == w["point"]["x1"]
        assert float(row[f"{d['name']}.autograd"]) == w["autograd"]
        err = [float(r[f"{d['name']}.error"]) for r in rows]
        assert max(err) == d["max_abs_error"]


def test_residual_dump_flags_where_the_candidate_does_not_solve(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    job = prepare_residual(
        "u_t - nu*u_xx",
        ["u = sin(pi*x)*exp(-t)"],  # not a solution: the decay rate is not nu*pi**2
        ["x=0:1", "t=0:1"],
        param=["nu=0.1"],
        n=400,
    )
    dump = PointDump(path, solves=True)
    report = job.run(sinks=[dump])
    summary = dump.finish(report)
    eq = report.equations[0]
    assert eq.status == "fail" and eq.status_detail == "not a solution"
    _, rows, meta = read_csv(path)
    assert summary.rows == len(rows) == 400 and summary.failing == meta["failing"]
    unsolved = [r for r in rows if r["eq1.verdict"] == "unsolved"]
    assert unsolved and all(r["selected"] == "failing" for r in unsolved)
    # Where the exact residual exceeds its reference bound: the report's figure, per point.
    ratio = [
        abs(float(r["eq1.exact"])) / float(r["eq1.reference"])
        for r in rows
        if float(r["eq1.reference"]) > 0
    ]
    assert max(ratio) == pytest.approx(eq.stats.extra["exact_over_reference"], rel=1e-12)
    # Where pinncheck computed a high-precision value, the dump has it, as the report does.
    settled = [(q, d.stats.worst) for q, d in enumerate([*report.derivatives, *report.equations])]
    settled = [(q, w) for q, w in settled if w is not None and w.truth is not None]
    assert settled
    names = [*(d.name for d in report.derivatives), "eq1"]
    for q, w in settled:
        row = row_at(rows, w.index)
        assert float(row[f"{names[q]}.exact"]) == w.truth
        assert float(row[f"{names[q]}.reference"]) == 0.0
    # The same run judged as --any-residual (agreement only): nothing fails.
    dump = PointDump(tmp_path / "any.csv")
    report = job.run(sinks=[dump])
    assert dump.finish(report).failing == 0


@pytest.mark.parametrize("any_residual", [False, True])
def test_the_residual_command_dumps_unsolved_points_unless_any_residual(
    tmp_path: Path, any_residual: bool
) -> None:
    path = tmp_path / "points.csv"
    r = run_cli(
        "residual", "--pde", "u_t - nu*u_xx", "-s", "u = sin(pi*x)*exp(-t)", "--param", "nu=0.1",
        "-d", "x=0:1", "-d", "t=0:1", "-n", "400", "--dump-points", str(path), "-f", "json",
        *(["--any-residual"] if any_residual else []),
    )  # fmt: skip
    assert r.exit_code == (ExitCode.OK if any_residual else ExitCode.FAILED)
    _, rows, meta = read_csv(path)
    unsolved = sum(row["eq1.verdict"] == "unsolved" for row in rows)
    assert len(rows) == 400 and meta["quantities"][-1]["unsolved"] == unsolved
    assert (unsolved == 0) if any_residual else (unsolved > 0)


def test_a_proved_solution_has_no_unsolved_points(tmp_path: Path) -> None:
    job = prepare_residual(
        "u_t - nu*u_xx",
        ["u = exp(-nu*pi**2*t)*sin(pi*x)"],
        ["x=0:1", "t=0:1"],
        param=["nu=0.1"],
        n=300,
    )
    dump = PointDump(tmp_path / "p.csv", solves=True)
    report = job.run(sinks=[dump])
    assert report.equations[0].symbolic == "proved"
    assert dump.finish(report).failing == 0
    _, rows, meta = read_csv(tmp_path / "p.csv")
    assert {r["eq1.verdict"] for r in rows} == {"pass"}
    assert meta["quantities"][-1]["unsolved"] == 0


def test_undefined_points_are_failing_rows_with_nan(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    r = run_cli(
        "check", "log(x)*y", "-d", "x=-1:1", "-d", "y=0:1", "-n", "200", "--order", "1",
        "--dump-points", str(path), "--dump-limit", "150", "-f", "json",
    )  # fmt: skip
    assert r.exit_code == ExitCode.FAILED
    doc = r.json()
    _, rows, meta = read_csv(path)
    nonfinite = doc["derivatives"][0]["nonfinite"]
    assert nonfinite > 50
    undefined = [r for r in rows if r["d/dx.verdict"] == "undefined"]
    assert len(undefined) == nonfinite == meta["quantities"][0]["undefined"]
    assert all(r["selected"] == "failing" and float(r["x"]) < 0 for r in undefined)
    assert all(math.isnan(float(r["d/dx.autograd"])) for r in undefined)
    assert all(r["d/dx.autograd"] == "nan" for r in undefined)  # written, not left empty
    assert len(rows) == 150


# The limit, the order, the sample ---------------------------------------------------------


@pytest.mark.parametrize("limit", [100, 400])
def test_limit_is_kept_and_failing_rows_come_first_by_index(tmp_path: Path, limit: int) -> None:
    full, part = tmp_path / "full.csv", tmp_path / "part.csv"
    assert run_cli(*PARTIAL, *PARTIAL_OPTS, "--dump-points", str(full)).exit_code == 1
    assert (
        run_cli(
            *PARTIAL, *PARTIAL_OPTS, "--dump-points", str(part), "--dump-limit", str(limit)
        ).exit_code
        == 1
    )
    _, all_rows, _ = read_csv(full)
    _, rows, meta = read_csv(part)
    all_failing = [int(r["index"]) for r in failing_rows(all_rows)]
    assert len(all_failing) == 247 and all_failing == sorted(all_failing)
    assert len(rows) == limit == meta["rows"]
    kinds = [r["selected"] for r in rows]
    n_fail = min(limit, 247)
    assert kinds == ["failing"] * n_fail + ["sample"] * (limit - n_fail)
    assert [int(r["index"]) for r in rows[:n_fail]] == all_failing[:n_fail]
    sample = [int(r["index"]) for r in rows[n_fail:]]
    assert sample == sorted(sample) and not set(sample) & set(all_failing)
    assert meta["flagged_points"] == 247
    for r in rows:  # the rows are those of the full dump, to the float
        assert r == row_at(all_rows, int(r["index"]))


def test_sample_is_the_smallest_keys_of_the_seeded_hash(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    args = ("check", "x*y", "-d", "x=0:1", "-d", "y=0:1", "-n", "5000", "--order", "1")
    assert run_cli(*args, "--dump-points", str(path), "--dump-limit", "100").exit_code == 0
    _, rows, meta = read_csv(path)
    got = [int(r["index"]) for r in rows]
    keys = sample_keys(meta["sample_seed"], np.arange(5000))
    assert got == sorted(np.argsort(keys)[:100].tolist())
    assert min(got) < 500 and max(got) > 4500  # spread over the run, not its first points
    other = tmp_path / "other.csv"
    r = run_cli(*args, "--seed", "7", "--dump-points", str(other), "--dump-limit", "100")
    assert r.exit_code == 0
    assert [int(r["index"]) for r in read_csv(other)[1]] != got


@pytest.mark.parametrize("fmt", ["csv", "npz"])
def test_dump_does_not_depend_on_the_chunk_size(tmp_path: Path, fmt: str) -> None:
    files = []
    for chunk in (None, 37, 500, 2000):
        path = tmp_path / f"c{chunk}.{fmt}"
        opts = () if chunk is None else ("--chunk-size", str(chunk))
        r = run_cli(
            *PARTIAL, *PARTIAL_OPTS, *opts, "--dump-points", str(path), "--dump-limit", "300"
        )
        assert r.exit_code == 1
        files.append(path.read_bytes())
    assert all(f == files[0] for f in files[1:])


def test_verify_dump_does_not_depend_on_the_chunk_size(tmp_path: Path) -> None:
    (tmp_path / "local_bug.py").write_text(LOCAL_BUG)
    files = []
    for chunk in (64, 1000):
        path = tmp_path / f"v{chunk}.csv"
        job = prepare_verify(
            "local_bug.py:residual", n=1000, base_dir=tmp_path, chunk_size=chunk, **HEAT
        )
        dump = PointDump(path, limit=150, seed=3)
        dump.finish(job.run(sinks=[dump]))
        files.append(path.read_text())
    assert files[0] == files[1]
    assert "failing=" in files[0].splitlines()[0]


class Watched(PointDump):
    """A dump that records how many rows it holds after each chunk."""

    held: list[int]
    partial_rows: list[int]

    def merge(self, partial: Any) -> None:
        rows = [r for r in (partial.flagged, partial.candidates) if r is not None]
        self.partial_rows.append(max([len(r) for r in rows], default=0))
        super().merge(partial)
        assert self._sample is not None
        self.held.append(self._n_kept + int(self._sample.used.sum()))


def test_buffers_never_exceed_the_limit(tmp_path: Path) -> None:
    job = partial_job(200_000, chunk_size=10_000)
    dump = Watched(tmp_path / "big.npz", limit=100)
    dump.held, dump.partial_rows = [], []
    report = job.run(sinks=[dump])
    assert len(dump.held) == 20
    assert max(dump.held) <= 100 and max(dump.partial_rows) <= 100
    assert dump._sample is not None and dump._sample.floats.shape[0] == 100
    summary = dump.finish(report)
    assert summary.rows == 100 and summary.failing == 100
    with np.load(tmp_path / "big.npz") as z:
        meta = json.loads(str(z["meta"]))
    for d, q in zip(report.derivatives, meta["quantities"], strict=True):
        assert q["fail"] == d.stats.certain_failures + d.stats.refined_failures
    assert summary.flagged_points >= meta["quantities"][0]["fail"] > 10_000


def test_the_sample_fills_a_limit_the_failing_points_leave(tmp_path: Path) -> None:
    job = prepare_check("x*y", ["x=0:1", "y=0:1"], n=50_000, order=1, chunk_size=4096)
    dump = Watched(tmp_path / "s.npz", limit=64)
    dump.held, dump.partial_rows = [], []
    dump.finish(job.run(sinks=[dump]))
    assert max(dump.held) == 64 and max(dump.partial_rows) <= 64
    with np.load(tmp_path / "s.npz") as z:
        assert z["index"].size == 64 and set(z["selected"].tolist()) == {"sample"}


# Bad requests: exit 2 before any work ------------------------------------------------------


def one_paragraph_error(r: Any) -> str:
    assert r.exit_code == ExitCode.USAGE, r.stdout + r.stderr
    text = r.stderr.strip()
    assert "Traceback" not in text and "\n\n" not in text
    return text


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("points.txt", ".csv or .npz"),
        ("points", "no file type"),
        ("points.parquet", "Parquet is not offered"),
    ],
)
def test_unknown_suffix_exits_2_before_the_run(tmp_path: Path, name: str, words: str) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "user.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\ndef residual(x, u):\n    return u\n"
    )
    r = run_cli(
        "verify", f"{tmp_path / 'user.py'}:residual", *HEAT_ARGS,
        "--dump-points", str(tmp_path / name),
    )  # fmt: skip
    assert words in one_paragraph_error(r)
    assert not marker.exists()  # the user's code never ran
    assert not (tmp_path / name).exists()


def test_unwritable_paths_exit_2(tmp_path: Path) -> None:
    base = ("check", "x*y", "-d", "x=0:1", "-d", "y=0:1")
    text = one_paragraph_error(run_cli(*base, "--dump-points", str(tmp_path / "no/such/p.csv")))
    assert "does not exist" in text
    text = one_paragraph_error(run_cli(*base, "--dump-points", str(tmp_path)))
    assert "is a folder" in text
    (tmp_path / "d.csv").mkdir()
    assert "is a folder" in one_paragraph_error(
        run_cli(*base, "--dump-points", str(tmp_path / "d.csv"))
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "d.csv"]  # no temporary files left


def test_json_error_document_for_a_bad_dump_path(tmp_path: Path) -> None:
    r = run_cli("check", "x", "-d", "x=0:1", "--dump-points", "p.xlsx", "-f", "json")
    assert r.exit_code == ExitCode.USAGE
    doc = r.json()
    assert doc["status"] == "error" and ".csv or .npz" in doc["error"]


@pytest.mark.parametrize("limit", ["0", "-5", "abc", "1.5", "1e-3"])
def test_bad_limits_exit_2(tmp_path: Path, limit: str) -> None:
    r = run_cli(
        "residual", "--pde", "u_t", "-s", "u=t", "-d", "t=0:1",
        "--dump-points", str(tmp_path / "p.csv"), "--dump-limit", limit,
    )  # fmt: skip
    assert r.exit_code == ExitCode.USAGE
    assert "Traceback" not in r.stderr and "dump-limit" in r.stderr
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(("limit", "rows"), [("1e2", 100), ("1_50", 150), ("250", 200)])
def test_limits_are_read_like_point_counts(tmp_path: Path, limit: str, rows: int) -> None:
    path = tmp_path / "p.npz"
    r = run_cli(
        "check", "x*y", "-d", "x=0:1", "-d", "y=0:1", "-n", "200",
        "--dump-points", str(path), "--dump-limit", limit,
    )  # fmt: skip
    assert r.exit_code == 0
    assert f"wrote {rows} point(s) to {path}" in r.stderr
    with np.load(path) as z:
        assert z["index"].size == rows


def test_api_refuses_bad_limits_and_paths(tmp_path: Path) -> None:
    for bad in (0, -1, 2.5, True):
        with pytest.raises(OptionError, match="dump-limit"):
            PointDump(tmp_path / "p.csv", limit=bad)  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="unknown file type"):
        PointDump(tmp_path / "p.json")


def test_a_variable_named_like_a_dump_column_is_refused(tmp_path: Path) -> None:
    r = run_cli(
        "check", "index*y", "-d", "index=0:1", "-d", "y=0:1",
        "--dump-points", str(tmp_path / "p.csv"),
    )  # fmt: skip
    assert "rename it" in one_paragraph_error(r)


def test_docs_name_every_column_field_and_verdict() -> None:
    doc = (ROOT / "docs" / "dump.md").read_text(encoding="utf-8")
    for word in ("index", "selected", "failing", "borderline", "sample", *VERDICTS):
        assert f"`{word}`" in doc, word
    for word in ("autograd", "user", *FIELDS):
        assert f"`Q.{word}`" in doc, word
    assert 'pandas.read_csv(path, comment="#")' in doc
    assert "docs/dump.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_file_gets_ordinary_permissions_and_replaces_an_earlier_one(tmp_path: Path) -> None:
    import os
    import stat

    plain = tmp_path / "plain.csv"
    plain.write_text("x")  # what any new file gets here (the umask)
    path = tmp_path / "p.csv"
    args = ("check", "x*y", "-d", "x=0:1", "-d", "y=0:1", "-n", "50", "--dump-points", str(path))
    assert run_cli(*args).exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    os.chmod(path, 0o640)
    path.write_text("old")
    assert run_cli(*args).exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text().startswith("# pinncheck dump: kind=check, n=50,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "plain.csv"]


# The sink on hand-made chunks ---------------------------------------------------------------


def hand_made(start: int, rows: list[tuple[float, ...]]) -> Any:
    """A one-variable, one-equation chunk: rows of (x, value, exact, tolerance, reference)."""
    import torch

    from pinncheck._pointwise import ChunkView

    x, v, e, tol, ref = (torch.tensor(c, dtype=torch.float64) for c in zip(*rows, strict=True))
    return ChunkView(start, [x], [v], [e], [(v - e).abs()], [tol], [ref])


def layout(n: int) -> Any:
    from pinncheck._pointwise import Layout

    return Layout(("eq1",), ("equation",), ("x",), (0.0,), (1.0,), n)


def test_verdicts_follow_the_reference_error_bound(tmp_path: Path) -> None:
    from types import SimpleNamespace

    inf, nan = math.inf, math.nan
    rows = [  # (x, value, exact, tolerance, reference) of a residual whose exact value is ~0
        (0.0, 0.0, 0.0, 1e-9, 1e-12),  # pass: no error
        (0.1, 5e-10, 0.0, 1e-9, 1e-12),  # pass: within the tolerance
        (0.2, 2e-9, 0.0, 1e-9, 1e-12),  # fail
        (0.3, 1.0005e-9, 0.0, 1e-9, 1e-12),  # undecided: the bound could move it across
        (0.4, 0.9995e-9, 0.0, 1e-9, 1e-12),  # undecided, from below
        (0.5, nan, 0.0, 1e-9, 1e-12),  # undefined
        (0.6, 0.0, inf, 1e-9, 1e-12),  # undefined
        (0.7, 1e-12, 0.0, inf, 0.0),  # an overflowing tolerance allows nothing: fail
        (0.8, 1e-3, 1e-3, 1e-9, 1e-12),  # solves=True: unsolved, |exact| > reference
    ]
    expected = ["pass", "pass", "fail", "undecided", "undecided"]
    expected += ["undefined", "undefined", "fail", "unsolved"]
    for solves in (True, False):
        path = tmp_path / f"v{solves}.csv"
        dump = PointDump(path, limit=5, solves=solves)
        dump.start(layout(len(rows)))
        dump.merge(dump.partial(hand_made(0, rows)))
        summary = dump.finish(SimpleNamespace(kind="residual"))
        _, got, meta = read_csv(path)
        want = expected if solves else [*expected[:-1], "pass"]
        flagged = [i for i, w in enumerate(want) if w != "pass"]
        assert [int(r["index"]) for r in got] == flagged[:5]
        assert [r["eq1.verdict"] for r in got] == [want[i] for i in flagged[:5]]
        assert [r["selected"] for r in got] == ["failing", "borderline", "borderline"] + [
            "failing"
        ] * 2
        counts = {v: want.count(v) for v in VERDICTS if v != "pass"}
        assert {k: meta["quantities"][0][k] for k in counts} == counts
        assert summary.flagged_points == len(flagged) and summary.rows == 5


def test_a_proof_overrules_unsolved_points(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from pinncheck._compare import ErrorStats

    rows = [(0.1 * i, 1e-3, 1e-3, 1e-9, 1e-12) for i in range(4)]
    for solves, verdict in (("fail", "unsolved"), ("pass", "pass")):
        path = tmp_path / f"{solves}.csv"
        dump = PointDump(path, solves=True)
        dump.start(layout(4))
        dump.merge(dump.partial(hand_made(0, rows)))
        eq = SimpleNamespace(name="eq1", stats=ErrorStats(), solves=solves, status=solves)
        summary = dump.finish(SimpleNamespace(kind="residual", equations=[eq]))
        _, got, meta = read_csv(path)
        assert {r["eq1.verdict"] for r in got} == {verdict}
        assert summary.failing == (4 if verdict == "unsolved" else 0)
        assert meta["quantities"][0]["unsolved"] == (4 if verdict == "unsolved" else 0)


def test_chunks_worked_out_at_once_still_keep_the_limit(tmp_path: Path) -> None:
    # Worker threads compute several chunks' partials before any is merged: each sees the
    # whole limit free, and merging must cut them down.
    fail = [(0.5, 2.0, 1.0, 1e-9, 1e-12)] * 30
    ok = [(0.5, 1.0, 1.0, 1e-9, 1e-12)] * 30
    dump = Watched(tmp_path / "c.npz", limit=40)
    dump.held, dump.partial_rows = [], []
    dump.start(layout(120))
    partials = [dump.partial(hand_made(s, rows)) for s, rows in enumerate([ok, fail, fail, ok])]
    for p in partials:
        dump.merge(p)
    assert max(dump.held) == 40
    from types import SimpleNamespace

    summary = dump.finish(SimpleNamespace(kind="check"))
    assert (summary.rows, summary.failing, summary.sample) == (40, 40, 0)
    assert summary.flagged_points == 60


# Check files ----------------------------------------------------------------------------------

SUITE = """
[[residual]]
name = "not-a-solution"
pde = "u_t - 0.1*u_xx"
solution = "u = sin(pi*x)*exp(-t)"
domain = ["x = 0:1", "t = 0:1"]
points = 300
expect = "fail"
dump_points = "out/res.csv"
dump_limit = 50

[[verify]]
name = "swapped"
target = "{target}"
pde = "u_t - 0.1*u_xx"
solution = "u = sin(x)*exp(-t) + x*t**2"
domain = ["x = 0:1", "t = 0:1"]
points = 200
expect = "fail"
dump_points = "out/ver.npz"
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_check_file_entries_write_their_dumps(tmp_path: Path, jobs: str) -> None:
    (tmp_path / "out").mkdir()
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(target=SAMPLES / "heat_swapped_column.py:residual"))
    r = run_cli("run", str(suite), "-j", jobs, "-f", "json")
    assert r.exit_code == 0, r.stdout + r.stderr
    reports = r.json()["reports"]
    _, rows, meta = read_csv(tmp_path / "out" / "res.csv")  # relative to the check file
    assert len(rows) == 50 == meta["failing"] and meta["status"] == reports[0]["status"]
    assert {row["eq1.verdict"] for row in rows} == {"unsolved"}
    with np.load(tmp_path / "out" / "ver.npz") as z:
        meta = json.loads(str(z["meta"]))
        assert meta["kind"] == "verify" and meta["rows"] == 200
        failing = reports[1]["equations"][0]["failing_points"]
        assert int((z["selected"] == "failing").sum()) == failing == 200


def test_check_file_dumps_and_an_html_report_together(tmp_path: Path) -> None:
    # The page's sinks (error maps) and the dump see the same run.
    (tmp_path / "out").mkdir()
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(target=SAMPLES / "heat_swapped_column.py:residual"))
    page = tmp_path / "page.html"
    r = run_cli("run", str(suite), "--html", str(page), "-f", "json")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert [rep["status"] for rep in r.json()["reports"]] == ["fail", "fail"]  # as expected
    _, rows, meta = read_csv(tmp_path / "out" / "res.csv")
    assert len(rows) == 50 == meta["failing"]
    assert (tmp_path / "out" / "ver.npz").exists()
    assert "internal error" not in page.read_text(encoding="utf-8").lower()


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (("out/res.csv", "out/res.txt"), "key 'dump_points': --dump-points"),
        (("out/res.csv", "missing/res.csv"), "does not exist"),
        (("dump_limit = 50", "dump_limit = 0"), "key 'dump_limit'"),
        (("dump_limit = 50", 'dump_limit = "many"'), "must be an integer"),
        (('dump_points = "out/res.csv"', ""), "dump_limit is only used with dump_points"),
    ],
)
def test_bad_dump_keys_in_check_files_exit_2(
    tmp_path: Path, edit: tuple[str, str], words: str
) -> None:
    (tmp_path / "out").mkdir()
    suite = tmp_path / "suite.toml"
    text = SUITE.format(target=SAMPLES / "heat_swapped_column.py:residual")
    suite.write_text(text.replace(*edit))
    r = run_cli("run", str(suite))
    assert r.exit_code == ExitCode.USAGE
    assert words in r.stderr and "not-a-solution" in r.stderr and "Traceback" not in r.stderr
    assert list((tmp_path / "out").iterdir()) == []  # refused before anything ran


def test_the_check_file_example_of_the_docs_runs(tmp_path: Path) -> None:
    import re

    doc = (ROOT / "docs" / "dump.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```toml\n(.*?)```", doc, flags=re.S)
    (tmp_path / "user_code").symlink_to(SAMPLES)
    (tmp_path / "checks.toml").write_text(block)
    r = run_cli("run", str(tmp_path / "checks.toml"))
    assert r.exit_code == 0, r.stdout + r.stderr
    _, rows, meta = read_csv(tmp_path / "heat_swapped_points.csv")
    assert meta["limit"] == 1000 and len(rows) == 1000 == meta["failing"]
