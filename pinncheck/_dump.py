"""The sampled points as data: ``--dump-points PATH`` (CSV or ``.npz``), for plots of one's own.

:class:`PointDump` is a :class:`~pinncheck._pointwise.PointSink`. While the chunks stream past
it keeps at most ``limit`` rows in all: the *flagged* points (where some quantity fails, is
undefined, or is too close to its tolerance for the float64 reference to say), the first
``limit`` of them by index, and a uniform sample of the other points to fill the rest. After
the run, :meth:`PointDump.finish` takes the report's high-precision values where pinncheck
computed them, and writes the file. The sample is the points with the smallest keys of a hash of
``(seed, index)``: which points it holds depends neither on the chunk size nor on the order of
the work, and it is bounded in memory at any ``n``.

Columns (docs/dump.md): ``index`` (the point's global index, as in the JSON reports), ``selected``
(``failing``, ``borderline`` or ``sample``), each variable by name, then per quantity ``Q`` (by
its report name): ``Q.autograd`` (``Q.user`` for ``verify``), ``Q.exact``, ``Q.error``,
``Q.tolerance``, ``Q.reference`` and ``Q.verdict`` (``pass``, ``fail``, ``undefined``,
``undecided``, or ``unsolved`` where a ``residual`` candidate does not solve the PDE).

Example (the Python API; the CLI does the same with ``--dump-points``):
    >>> import tempfile, pathlib
    >>> from pinncheck._check import prepare_check
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "points.csv"
    >>> dump = PointDump(path, limit=50)
    >>> job = prepare_check("sin(x)*y", ["x=0:1", "y=0:1"], n=200, order=1)
    >>> report = job.run(sinks=[dump])
    >>> dump.finish(report).rows
    50
"""

from __future__ import annotations

import csv
import json
import math
import os
import stat
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import OptionError
from ._output import DEFAULT_DUMP_LIMIT
from ._version import __version__

if TYPE_CHECKING:
    import numpy as np

    from ._pointwise import ChunkView, Layout

DEFAULT_LIMIT = DEFAULT_DUMP_LIMIT
"""Rows of a dump unless ``--dump-limit`` says otherwise."""
FORMATS = (".csv", ".npz")
META_COLUMNS = ("index", "selected")
"""The columns before the variables; a variable may not have one of these names."""
FIELDS = ("exact", "error", "tolerance", "reference", "verdict")
"""Each quantity's columns after its value (``Q.autograd``, or ``Q.user`` for verify)."""
VERDICTS = ("pass", "fail", "undefined", "undecided", "unsolved")
"""A quantity's verdict at a point, by code (0..4); see docs/dump.md."""
PASS, FAIL, UNDEFINED, UNDECIDED, UNSOLVED = range(5)
_FLOATS = ("value", "exact", "error", "tolerance", "reference")
_MASK64 = (1 << 64) - 1
CSV_BLOCK = 8192
"""Rows formatted at once when writing a CSV file."""


def check_limit(limit: Any) -> int:
    """``--dump-limit``: a positive whole number of rows."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise OptionError(
            f"--dump-limit must be a whole number of rows >= 1 (such as 1000 or 1e5), got "
            f"{limit!r}."
        )
    return limit


def check_path(path: str | os.PathLike[str]) -> Path:
    """``--dump-points``: a .csv or .npz file that can be written; refused before any work."""
    p = Path(path)
    suffix = p.suffix.lower()
    if p.is_dir():
        raise OptionError(
            f"--dump-points {p} is a folder; give a file name ending in .csv or .npz."
        )
    if suffix not in FORMATS:
        extra = (
            " Parquet is not offered (it would need pyarrow); convert the CSV or .npz, e.g. with "
            "pandas' DataFrame.to_parquet."
            if suffix == ".parquet"
            else ""
        )
        raise OptionError(
            f"--dump-points {p}: "
            + (f"unknown file type {suffix!r}" if suffix else "no file type")
            + "; the format comes from the suffix, so end the name in .csv or .npz (CSV text or "
            f"NumPy arrays).{extra}"
        )
    folder = p.parent
    if not folder.is_dir():
        raise OptionError(
            f"--dump-points {p}: the folder {folder} does not exist; create it first."
        )
    try:  # the file is written as a temporary file in its folder, then renamed
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{p.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
        if p.exists() and not os.access(p, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise OptionError(
            f"--dump-points {p} cannot be written: {exc.strerror or exc}. Choose another path."
        ) from None
    return p


def sample_keys(seed: int, index: np.ndarray) -> np.ndarray:
    """The sampling key of each global ``index`` (int64): SplitMix64 of ``seed`` and the index,
    a bijection of the index, so that no two points share a key."""
    import numpy as np

    offset = np.array([_splitmix(seed & _MASK64)], dtype=np.uint64)
    z = index.astype(np.uint64) + offset  # uint64 arrays wrap around, as the hash needs
    z *= np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


@dataclass
class _Rows:
    """Rows of the dump: global indices, floats (the variables, then per quantity its value,
    exact value, error, tolerance and reference bound) and verdict codes (one per quantity)."""

    index: np.ndarray
    floats: np.ndarray
    verdicts: np.ndarray
    keys: np.ndarray | None = None
    """The sampling keys (sample candidates only)."""

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def take(self, sel: Any) -> _Rows:
        keys = None if self.keys is None else self.keys[sel]
        return _Rows(self.index[sel], self.floats[sel], self.verdicts[sel], keys)

    @staticmethod
    def join(parts: list[_Rows]) -> _Rows:
        import numpy as np

        return _Rows(
            np.concatenate([p.index for p in parts]),
            np.concatenate([p.floats for p in parts]),
            np.concatenate([p.verdicts for p in parts]),
        )


class _Sample:
    """The sample: in ``size`` fixed slots, the offered rows with the smallest keys, at most
    ``cap`` of them. A row is copied once, when it comes in; later rows only take the slots of
    those they push out, so a run costs about ``size * log(n / size)`` row copies."""

    def __init__(self, size: int, width: int, quantities: int) -> None:
        import numpy as np

        self.floats = np.empty((size, width))
        self.index = np.zeros(size, dtype=np.int64)
        self.verdicts = np.zeros((size, quantities), dtype=np.int8)
        self.keys = np.zeros(size, dtype=np.uint64)
        self.used = np.zeros(size, dtype=bool)

    def offer(self, rows: _Rows | None, cap: int) -> int | None:
        """Keep the ``cap`` smallest keys of the rows held and ``rows``; returns the largest
        key held when ``cap`` rows are held (a smaller key is needed to get in), else None."""
        import numpy as np

        if cap <= 0:
            self.used[:] = False
            return 0
        slots = np.flatnonzero(self.used)
        new = np.arange(0 if rows is None else len(rows))
        if rows is not None and rows.keys is not None and len(slots) + len(rows) > cap:
            pool = np.concatenate([self.keys[slots], rows.keys])
            keep = np.zeros(pool.size, dtype=bool)
            keep[np.argpartition(pool, cap - 1)[:cap]] = True
            self.used[slots[~keep[: slots.size]]] = False
            new = np.flatnonzero(keep[slots.size :])
        elif rows is None and len(slots) > cap:  # fewer rows may stay: drop the largest keys
            drop = np.argpartition(self.keys[slots], cap - 1)[cap:]
            self.used[slots[drop]] = False
        if rows is not None and new.size:
            free = np.flatnonzero(~self.used)[: new.size]
            _by_row(self.floats)[free] = _by_row(rows.floats)[new]
            self.index[free] = rows.index[new]
            self.verdicts[free] = rows.verdicts[new]
            self.keys[free] = rows.keys[new]  # type: ignore[index]
            self.used[free] = True
        held = np.flatnonzero(self.used)
        return int(self.keys[held].max()) if held.size >= cap else None

    def rows(self) -> _Rows:
        """The rows held, in index order."""
        import numpy as np

        held = np.flatnonzero(self.used)
        held = held[np.argsort(self.index[held], kind="stable")]
        return _Rows(self.index[held], self.floats[held], self.verdicts[held])


def _by_row(a: np.ndarray) -> np.ndarray:
    """A C-contiguous 2-D array as a 1-D array of its rows (each one opaque item): rows are
    then copied in one piece each, several times faster than by 2-D fancy indexing."""
    import numpy as np

    assert a.flags.c_contiguous
    return a.view(np.dtype((np.void, a.shape[1] * a.itemsize))).reshape(a.shape[0])


@dataclass
class _Partial:
    """What one chunk contributes: its flagged rows (the first ``room`` of them), its sample
    candidates, and how many points it flagged, per quantity and verdict."""

    flagged: _Rows | None
    candidates: _Rows | None
    n_flagged: int
    counts: np.ndarray


@dataclass
class DumpSummary:
    """What :meth:`PointDump.finish` wrote."""

    path: Path
    rows: int
    failing: int
    borderline: int
    sample: int
    flagged_points: int
    limit: int

    def describe(self) -> str:
        text = (
            f"wrote {self.rows} point(s) to {self.path}: {self.failing} failing, "
            + (f"{self.borderline} borderline, " if self.borderline else "")
            + f"{self.sample} sampled"
        )
        if self.flagged_points > self.limit:
            text += (
                f" (the first {self.limit} by index of {self.flagged_points} failing or "
                "borderline points; raise --dump-limit for more)"
            )
        return text


@dataclass
class PointDump:
    """A :class:`~pinncheck._pointwise.PointSink` that writes the points to ``path`` (``.csv``
    or ``.npz``): the flagged points first, then a uniform sample, ``limit`` rows at most.

    Feed it to a job (``job.run(sinks=[dump])``, or ``check(..., sinks=[dump])``), then call
    :meth:`finish` with the report. ``seed`` picks the sample (the CLI passes the run's seed).
    ``solves``: an equation also fails (``unsolved``) where its exact residual is not zero
    within the reference's error bound, as ``residual`` judges a candidate solution (not with
    ``--any-residual``, nor for ``verify``, whose manufactured solutions need not solve).
    """

    path: str | os.PathLike[str]
    limit: int = DEFAULT_LIMIT
    seed: int = 0
    solves: bool = False
    layout: Layout | None = field(default=None, init=False)
    _flagged: list[_Rows] = field(default_factory=list, init=False)
    _n_kept: int = field(default=0, init=False)
    _sample: _Sample | None = field(default=None, init=False)
    _threshold: int | None = field(default=None, init=False)
    _n_flagged: int = field(default=0, init=False)
    _counts: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.limit = check_limit(self.limit)
        self.path = check_path(self.path)

    # The PointSink protocol ----------------------------------------------------------------

    def start(self, layout: Layout) -> None:
        import numpy as np

        clash = [v for v in layout.variables if v in META_COLUMNS or v == "meta"]
        if clash:
            raise OptionError(
                f"--dump-points: the variable {clash[0]!r} has the name of one of the dump's own "
                f"columns ({', '.join(META_COLUMNS)}, and meta in .npz files); rename it."
            )
        if len(set(layout.names)) != len(layout.names):
            raise OptionError(
                "--dump-points: two quantities share a name, so their columns would collide: "
                + ", ".join(layout.names)
                + "."
            )
        self.layout = layout
        q = len(layout.names)
        width = len(layout.variables) + len(_FLOATS) * q
        self._sample = _Sample(min(self.limit, layout.n), width, q)
        self._flagged, self._n_kept, self._threshold, self._n_flagged = [], 0, None, 0
        self._counts = np.zeros((q, len(VERDICTS)), dtype=np.int64)

    def partial(self, view: ChunkView) -> _Partial:
        import numpy as np
        import torch

        assert self.layout is not None
        # Read once: another thread may merge meanwhile. Both only shrink, so a stale value
        # keeps more rows than needed, never fewer (merge cuts them down again).
        room, threshold = self.limit - self._n_kept, self._threshold
        solves = [self.solves and k == "equation" for k in self.layout.kinds]
        quantities = list(
            zip(
                view.values,
                view.exact,
                view.error,
                view.tolerance,
                view.reference,
                solves,
                strict=True,
            )
        )
        # A cheap pass finds the points that may not pass; the verdicts are worked out there.
        unclear = None
        for q in quantities:
            u = _unclear(*q)
            unclear = u if unclear is None else unclear.logical_or_(u)
        assert unclear is not None
        positions = torch.nonzero(unclear).flatten()
        found = torch.stack(
            [
                _verdicts(v[positions], e[positions], er[positions], t[positions], r[positions], s)
                for v, e, er, t, r, s in quantities
            ]
        )
        if positions.numel():
            keep = (found != PASS).any(dim=0)
            positions, found = positions[keep], found[:, keep]
        codes = found.cpu().numpy()
        counts = np.stack([(codes == c).sum(axis=1) for c in range(len(VERDICTS))], axis=1)
        counts[:, PASS] = len(view) - counts.sum(axis=1)
        n_flagged = int(positions.numel())
        room = max(room, 0)
        kept = self._gather(view, positions[:room], codes[:, :room])
        candidates = None
        if room > n_flagged:  # else the flagged points fill the file: no sample is needed
            keys = sample_keys(self.seed, np.arange(view.start, view.start + len(view)))
            ok = np.ones(len(view), dtype=bool) if threshold is None else keys < threshold
            ok[positions.cpu().numpy()] = False
            rest = np.flatnonzero(ok)
            if rest.size > room:
                rest = rest[np.argpartition(keys[rest], room - 1)[:room]]
            zeros = np.zeros((len(quantities), rest.size), dtype=np.int8)
            candidates = self._gather(view, torch.from_numpy(rest).to(positions.device), zeros)
            if candidates is not None:
                candidates.keys = keys[rest]
        return _Partial(kept, candidates, n_flagged, counts)

    def merge(self, partial: _Partial) -> None:
        assert self._sample is not None
        self._counts += partial.counts
        self._n_flagged += partial.n_flagged
        room = self.limit - self._n_kept
        if partial.flagged is not None and room > 0:
            rows = partial.flagged.take(slice(0, room))
            self._flagged.append(rows)
            self._n_kept += len(rows)
        # The sample never needs more rows than the flagged points leave: in all, the buffers
        # hold at most ``limit`` rows.
        self._threshold = self._sample.offer(partial.candidates, self.limit - self._n_kept)

    # Finishing -----------------------------------------------------------------------------

    def finish(self, report: Any) -> DumpSummary:
        """Write the file (replacing ``path`` at once, never half-written) and say what it
        holds. ``report`` is the run's report: its kind names the value column, its
        high-precision values replace the float64 reference's at the points it computed them."""
        import numpy as np

        layout = self.layout
        if layout is None:
            raise OptionError("--dump-points: the run did not produce any points to write.")
        assert self._sample is not None
        sample = self._sample.rows()
        flagged = _Rows.join(self._flagged) if self._flagged else sample.take(slice(0, 0))
        rows = _Rows.join([flagged, sample])
        counts = self._counts.copy()
        self._settle(rows, counts, report)
        verdicts = rows.verdicts
        failing_row = np.asarray(np.isin(verdicts, (FAIL, UNDEFINED, UNSOLVED)).any(axis=1))
        selected = np.where(failing_row, "failing", "borderline")
        selected[len(flagged) :] = "sample"
        columns, arrays = self._columns(rows, selected, report)
        meta = self._meta(report, counts, columns, selected)
        path = Path(self.path)
        writer = _write_csv if path.suffix.lower() == ".csv" else _write_npz
        _replace(path, lambda f: writer(f, columns, arrays, meta))
        n_fail = int(failing_row[: len(flagged)].sum())
        return DumpSummary(
            path,
            len(rows),
            n_fail,
            len(flagged) - n_fail,
            len(sample),
            self._n_flagged,
            self.limit,
        )

    # Internals -----------------------------------------------------------------------------

    def _gather(self, view: ChunkView, positions: Any, codes: np.ndarray) -> _Rows | None:
        import torch

        if positions.numel() == 0:
            return None
        cols = [p[positions] for p in view.points]
        for q in range(len(view.values)):
            for seq in (view.values, view.exact, view.error, view.tolerance, view.reference):
                cols.append(seq[q][positions].to(torch.float64))
        floats = torch.stack(cols, dim=1).cpu().numpy()
        index = (positions.cpu() + view.start).numpy()
        return _Rows(index, floats, codes.T.copy())

    def _settle(self, rows: _Rows, counts: np.ndarray, report: Any) -> None:
        """Take the report's closer look: its high-precision values at the undecided points
        (which then pass or fail) and at the reported worst points, and a symbolic proof that
        a candidate solves its PDE."""
        from ._residual import SOLVE_FACTOR

        assert self.layout is not None
        results = _results_by_name(report)
        where = {int(j): r for r, j in enumerate(rows.index.tolist())}
        d = len(self.layout.variables)
        for q, (name, kind) in enumerate(zip(self.layout.names, self.layout.kinds, strict=True)):
            result = results.get(name)
            if result is None:
                continue
            s, c = result.stats, d + len(_FLOATS) * q
            solves = self.solves and kind == "equation"

            def settled(p: Any, solves: bool = solves) -> int:
                if p.error > p.tolerance:
                    return FAIL
                unsolved = solves and abs(p.exact) > p.reference_error * SOLVE_FACTOR
                return UNSOLVED if unsolved else PASS

            undecided = {p.index: p for p in s.undecided if p.truth is not None}
            for p in undecided.values():  # counted as undecided while streaming
                if counts[q, UNDECIDED] > 0:
                    counts[q, UNDECIDED] -= 1
                    counts[q, settled(p)] += 1
            for p in [*undecided.values(), s.worst, s.largest, s.unsure]:
                r = where.get(p.index) if p is not None else None
                if r is None or p is None or p.truth is None:
                    continue
                if rows.floats[r, c] != p.autograd:  # not the value the statistics judged
                    continue
                if p.index in undecided and rows.verdicts[r, q] == UNDECIDED:
                    rows.verdicts[r, q] = settled(p)
                rows.floats[r, c + 1] = p.truth
                rows.floats[r, c + 2] = p.error
                rows.floats[r, c + 4] = 0.0  # a high-precision value: no reference error
            if getattr(result, "solves", None) == "pass":  # e.g. proved by SymPy
                counts[q, PASS] += counts[q, UNSOLVED]
                counts[q, UNSOLVED] = 0
                column = rows.verdicts[:, q]
                column[column == UNSOLVED] = PASS

    def _columns(
        self, rows: _Rows, selected: np.ndarray, report: Any
    ) -> tuple[list[str], list[np.ndarray]]:
        import numpy as np

        assert self.layout is not None
        value = "user" if getattr(report, "kind", "") == "verify" else "autograd"
        names = [*META_COLUMNS, *self.layout.variables]
        arrays: list[np.ndarray] = [rows.index, selected]
        d = len(self.layout.variables)
        arrays += [rows.floats[:, j] for j in range(d)]
        labels = np.array(VERDICTS)
        for q, name in enumerate(self.layout.names):
            c = d + len(_FLOATS) * q
            names += [f"{name}.{value}", *(f"{name}.{f}" for f in FIELDS)]
            arrays += [rows.floats[:, c + k] for k in range(len(_FLOATS))]
            arrays.append(labels[rows.verdicts[:, q]])
        return names, arrays

    def _meta(
        self, report: Any, counts: np.ndarray, columns: list[str], selected: np.ndarray
    ) -> dict[str, Any]:
        assert self.layout is not None
        layout = self.layout
        opts = getattr(report, "options", None)
        stats_status = {name: r.status for name, r in _results_by_name(report).items()}
        system = getattr(report, "system", None)
        what: dict[str, Any] = {}
        if getattr(report, "expression", None) is not None:
            what["expression"] = report.expression
        if system is not None:
            what["pdes"] = list(system.equations)
            what["solutions"] = dict(system.solution_texts)
        if getattr(report, "target", None) is not None:
            what["target"] = report.target
        return {
            "pinncheck": __version__,
            "format": "pinncheck-dump/1",
            "kind": getattr(report, "kind", None),
            **what,
            "status": getattr(report, "status", None),
            "n": layout.n,
            "seed": getattr(opts, "seed", None),
            "dtype": getattr(opts, "dtype_name", None),
            "device": str(getattr(opts, "device", "")) or None,
            "domain": {
                v: [lo, hi]
                for v, lo, hi in zip(layout.variables, layout.lows, layout.highs, strict=True)
            },
            "limit": self.limit,
            "rows": int(len(selected)),
            "failing": int((selected == "failing").sum()),
            "borderline": int((selected == "borderline").sum()),
            "sample": int((selected == "sample").sum()),
            "flagged_points": self._n_flagged,
            "sample_seed": self.seed,
            "quantities": [
                {
                    "name": name,
                    "kind": kind,
                    "status": stats_status.get(name),
                    **{
                        v: int(counts[q, c])
                        for c, v in enumerate(VERDICTS)
                        if c != PASS  # the points where the quantity fails, over the whole run
                    },
                }
                for q, (name, kind) in enumerate(zip(layout.names, layout.kinds, strict=True))
            ],
            "columns": columns,
        }


@dataclass
class DumpingJob:
    """A prepared job that also writes its points: a check file's ``dump_points`` key."""

    job: Any
    dump: PointDump

    def run(self, progress: Any = None, sinks: Sequence[Any] = ()) -> Any:
        report = self.job.run(progress, sinks=[*sinks, self.dump])
        self.dump.finish(report)
        return report

    def __getattr__(self, name: str) -> Any:  # the job's own (domain, system, options...)
        if name in ("job", "dump"):  # (not set yet: while unpickling)
            raise AttributeError(name)
        return getattr(self.job, name)


def dumping_job(
    job: Any,
    base: Path,
    *,
    solves: bool,
    dump_points: str | None = None,
    dump_limit: int = DEFAULT_LIMIT,
) -> DumpingJob:
    """``job`` writing its points to ``dump_points`` (relative to ``base``, the check file's
    folder); ``solves`` for a ``[[residual]]`` entry that must solve its PDE."""
    if dump_points is None:
        raise OptionError('dump_limit is only used with dump_points = "points.csv" (or .npz).')
    dump = PointDump(base / dump_points, dump_limit, job.options.seed, solves)
    return DumpingJob(job, dump)


def _unclear(value: Any, exact: Any, err: Any, tol: Any, ref: Any, solves: bool) -> Any:
    """Where a point may not pass (a cheap pass, true wherever :func:`_verdicts` is not
    ``PASS``): the error plus the reference's error bound is not within a finite tolerance,
    or (``solves``) the exact residual exceeds its reference bound. NaN compares false."""
    import torch

    from ._residual import SOLVE_FACTOR

    clear = torch.add(err, ref).le_(tol).logical_and_(tol < math.inf)
    if solves:
        clear.logical_and_(exact.abs().le_(ref * SOLVE_FACTOR))
    return clear.logical_not_()


def _verdicts(value: Any, exact: Any, err: Any, tol: Any, ref: Any, solves: bool) -> Any:
    """Each point's verdict code, as pinncheck's statistics judge it with the float64
    reference (:class:`~pinncheck._compare.ErrorStats`): ``UNDEFINED`` where a value is not
    finite, ``FAIL`` where the error exceeds the tolerance by more than the reference's error
    bound, ``UNDECIDED`` where that bound could move it across, else (``solves``) ``UNSOLVED``
    where the exact residual exceeds its reference bound (:class:`~pinncheck._residual.
    EquationResult`), else ``PASS``. An overflowing tolerance allows nothing."""
    import torch

    from ._residual import SOLVE_FACTOR

    finite = torch.isfinite(value) & torch.isfinite(exact)
    tol = torch.where(torch.isfinite(tol), tol, torch.zeros_like(tol))
    codes = torch.full(value.shape, PASS, dtype=torch.int8, device=value.device)
    if solves:
        codes[exact.abs() > ref * SOLVE_FACTOR] = UNSOLVED
    codes[~(err + ref <= tol)] = UNDECIDED
    codes[err - ref > tol] = FAIL
    codes[~finite] = UNDEFINED
    return codes


def _results_by_name(report: Any) -> dict[str, Any]:
    """A report's derivatives and equations, by name."""
    from ._results import quantities

    out: dict[str, Any] = {}
    for r in quantities(report):
        out.setdefault(r.name, r)
    return out


def _replace(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, then rename it to ``path``: the
    file is never seen half-written, and a failed write leaves an earlier one as it was."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _file_mode(path))
            write(f)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OptionError(
                f"--dump-points {path} could not be written: {exc.strerror or exc}."
            ) from None
        raise


def _file_mode(path: Path) -> int:
    """The permissions ``path`` has, or those a new file gets (the temporary file's are 0600)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _summary_line(meta: dict[str, Any]) -> str:
    keys = ("kind", "n", "seed", "dtype", "status", "rows", "failing", "borderline", "sample")
    return ", ".join(f"{k}={meta[k]}" for k in (*keys, "limit"))


def _write_csv(f: Any, columns: list[str], arrays: list[Any], meta: dict[str, Any]) -> None:
    import io

    text = io.TextIOWrapper(f, encoding="utf-8", newline="")
    text.write(f"# pinncheck dump: {_summary_line(meta)}\n")
    text.write("# meta: " + json.dumps(meta, ensure_ascii=True, allow_nan=False) + "\n")
    text.write('# read with pandas.read_csv(path, comment="#"); columns: see docs/dump.md\n')
    csv.writer(text, lineterminator="\n").writerow(columns)
    # Python's repr of a float is the shortest text that reads back as the same float (up to
    # 17 significant digits); non-finite values are written nan, inf and -inf. No cell needs
    # quoting (numbers and fixed words), so the rows are joined directly, in blocks.
    for a in range(0, len(arrays[0]), CSV_BLOCK):
        cells = [
            list(map(str if x.dtype.kind in "iU" else repr, x[a : a + CSV_BLOCK].tolist()))
            for x in arrays
        ]
        text.write("".join(line + "\n" for line in map(",".join, zip(*cells, strict=True))))
    text.flush()
    text.detach()


def _write_npz(f: Any, columns: list[str], arrays: list[Any], meta: dict[str, Any]) -> None:
    import numpy as np

    data = dict(zip(columns, arrays, strict=True))
    data["meta"] = np.array(json.dumps(meta, ensure_ascii=True, allow_nan=False))
    np.savez(f, **data)


__all__ = ["DEFAULT_LIMIT", "DumpSummary", "PointDump", "check_limit", "check_path"]
