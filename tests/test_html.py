"""``pinncheck run --html PATH``: one self-contained page per suite, checked as HTML and, where
a Chromium or Chrome is installed, as a browser renders it."""

from __future__ import annotations

import base64
import io
import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from helpers import run_cli
from pinncheck._html import PLOTS_HINT, check_writable, esc, html_report

NAME = '<script>alert("name")</script> & co'
SUITE = f"""[[check]]
name = '{NAME}'
expr = "x**2*sin(y)"
domain = ["x = 0:1", "y = 0:2"]
points = 64

[[residual]]
name = "not-a-solution"
pde = "u_t - u_xx"
solution = "u = exp(-t)*sin(2*x)"
domain = ["x = 0:1", "t = 0:1"]
points = 64

[[verify]]
name = "swapped-columns"
target = "swapped.py:residual"
pde = "u_t - u_xx"
solution = "u = sin(x)*exp(-t)"
domain = ["x = 0:1", "t = 0:1"]
points = 64
expect = "fail"

[[verify]]
name = "crashes"
target = "crash.py:residual"
pde = "u_t - u_xx"
solution = "u = sin(x)*exp(-t)"
domain = ["x = 0:1", "t = 0:1"]
points = 64

[[probe]]
name = "mlp"
target = "model.py:mlp"
domain = ["x = 0:1", "t = 0:1"]
points = 16
"""
STATES = ["passed", "failed", "passed", "error", "passed"]
CHECKS = len(STATES)
SWAPPED = """import torch


def residual(x, u):
    # Reads the input columns as (t, x): the wrong way round.
    g = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
    u_t, u_x = g[:, 0:1], g[:, 1:2]
    u_xx = torch.autograd.grad(u_x.sum(), x, create_graph=True)[0][:, 1:2]
    return u_t - u_xx
"""
CRASH = "def residual(x, u):\n    raise RuntimeError('<b>boom</b>')\n"
MODEL = """import torch


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
"""
needs_matplotlib = pytest.mark.skipif(
    find_spec("matplotlib") is None,
    reason='the plots need matplotlib: pip install "pinncheck[plot]" (make install does)',
)
VOID = {"meta", "br", "img", "hr", "input", "link", "col", "wbr", "source", "area", "base"}


class Page(HTMLParser):
    """A parsed page: every element (tag, attributes, text inside it), and whether the tags
    nest properly."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str], list[str]]] = []
        self.stack: list[int] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, []))
        if tag not in VOID:
            self.stack.append(len(self.elements) - 1)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.elements[self.stack[-1]][0] != tag:
            self.errors.append(f"</{tag}> does not close the open element")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for i in self.stack:
            self.elements[i][2].append(data)
        if self.stack and self.elements[self.stack[-1]][0] == "style":
            self.styles.append(data)

    def find(self, tag: str, **attrs: str) -> list[tuple[str, dict[str, str], list[str]]]:
        return [
            e
            for e in self.elements
            if e[0] == tag
            and all(v in e[1].get(k.rstrip("_"), "").split() for k, v in attrs.items())
        ]

    def all_text(self) -> str:
        return "".join(self.text)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    assert not page.errors and not page.stack, (page.errors, page.stack)
    return page


def summary_rows(page: Page) -> list[dict[str, str]]:
    """The attributes of the summary table's body rows."""
    rows: list[dict[str, str]] = []
    inside = False
    for tag, attrs, _ in page.elements:
        if tag == "table":
            inside = attrs.get("id") == "summary"
        elif inside and tag == "tr" and "data-state" in attrs:
            rows.append(attrs)
    return rows


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("suite")
    (folder / "suite.toml").write_text(SUITE, encoding="utf-8")
    (folder / "swapped.py").write_text(SWAPPED)
    (folder / "crash.py").write_text(CRASH)
    (folder / "model.py").write_text(MODEL)
    return folder


@pytest.fixture(scope="module")
def report(suite: Path) -> tuple[int, Path]:
    out = suite / "report.html"
    r = run_cli("run", str(suite / "suite.toml"), "--html", str(out), "-q")
    return r.exit_code, out


def test_report_structure_rows_and_sections(report: tuple[int, Path]) -> None:
    code, path = report
    assert code == 2  # the run's own status: an entry's code crashed
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    page = parse(text)
    assert page.find("html")[0][1]["lang"] == "en"
    assert page.find("meta", charset="utf-8")
    (csp,) = [m for m in page.find("meta") if m[1].get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in csp[1]["content"]
    rows = summary_rows(page)
    assert [r["data-state"] for r in rows] == STATES
    sections = page.find("section", class_="check")
    assert [s[1]["id"] for s in sections] == [f"check-{i}" for i in range(1, CHECKS + 1)]
    links = [a[1]["href"] for a in page.find("a")]
    assert links == [f"#check-{i}" for i in range(1, CHECKS + 1)]
    # each check's details: its quantity or equation tables, and its worst points
    details = page.find("table", class_="details")
    assert len(details) >= CHECKS
    assert len(page.find("table", class_="worst")) == 3  # not for the crashed entry
    # the summary's title line
    assert "ERROR" in "".join(page.find("h1")[0][2])
    assert "3 of 5 checks met their expectation; 1 could not run" in page.all_text()


def test_report_escapes_user_text(report: tuple[int, Path]) -> None:
    text = report[1].read_text(encoding="utf-8")
    page = parse(text)
    assert not page.find("script") and not page.find("b")
    assert NAME in page.all_text()  # shown as text, in the summary and in its section
    assert page.all_text().count(NAME) >= 2
    assert "RuntimeError: <b>boom</b>" in page.all_text()
    assert esc(NAME) in text and "&lt;b&gt;boom" in text


def test_report_has_no_external_references(report: tuple[int, Path]) -> None:
    text = report[1].read_text(encoding="utf-8")
    page = parse(text)
    for tag, attrs, _ in page.elements:
        assert tag not in ("script", "link", "iframe", "object", "embed", "base"), tag
        for key in ("src", "href", "action", "srcset", "poster"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith(("#", "data:image/")), (tag, key, value[:80])
    assert "http://" not in text.replace("http-equiv", "") and "https://" not in text
    assert "@import" not in "".join(page.styles) and "url(" not in "".join(page.styles)


def test_report_shows_the_failure_and_its_reason(report: tuple[int, Path]) -> None:
    page = parse(report[1].read_text(encoding="utf-8"))
    (missed,) = page.find("section", class_="missed")
    assert missed[1]["id"] == "check-2"
    words = "".join(missed[2])
    assert "not-a-solution" in words and "MISSED" in words
    assert "expected PASS, got FAIL" in words
    assert "FAIL: eq1 (u_t - u_xx): not a solution" in words
    (error,) = page.find("section", class_="error")
    assert "RuntimeError" in "".join(error[2])
    swapped = "".join(page.find("section", id="check-3")[0][2])
    assert "diagnosis:" in swapped  # verify's diagnosis, from the worker process


@needs_matplotlib
def test_report_embeds_one_figure_per_check_that_ran(report: tuple[int, Path]) -> None:
    from matplotlib.image import imread

    page = parse(report[1].read_text(encoding="utf-8"))
    assert PLOTS_HINT not in page.all_text()
    per_section = []
    for i in range(1, CHECKS + 1):
        start = page.elements.index(page.find("section", id=f"check-{i}")[0])
        end = next(
            (j for j, e in enumerate(page.elements) if j > start and e[0] == "section"),
            len(page.elements),
        )
        images = [e for e in page.elements[start:end] if e[0] == "img"]
        per_section.append(images)
    assert [len(images) for images in per_section] == [1, 1, 1, 0, 1]  # not the crashed one
    for images in per_section:
        for _, attrs, _ in images:
            src = attrs["src"]
            assert src.startswith("data:image/png;base64,")
            data = base64.b64decode(src.split(",", 1)[1], validate=True)
            pixels = imread(io.BytesIO(data), format="png")[:, :, :3]
            assert pixels.shape[0] > 200 and pixels.shape[1] > 300
            assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # drawn, not blank
            assert attrs["alt"]
    assert len(page.find("figcaption")) == 4


def test_report_without_matplotlib_is_complete_and_says_how_to_get_plots(
    suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pinncheck._html

    monkeypatch.setattr(pinncheck._html, "plots_available", lambda: False)
    out = suite / "no-plots.html"
    r = run_cli("run", str(suite / "suite.toml"), "-k", "not crashes", "--html", str(out))
    assert r.exit_code == 1
    page = parse(out.read_text(encoding="utf-8"))
    assert PLOTS_HINT in page.all_text()
    assert not page.find("img") and not page.find("figure")
    assert len(summary_rows(page)) == CHECKS - 1
    assert len(page.find("table", class_="worst")) == 3
    # the terminal's block-character maps show where the two failing checks fail
    maps = ["".join(e[2]) for e in page.find("pre") if "; where, over x, t:" in "".join(e[2])]
    assert len(maps) == 2
    assert maps[0].startswith("eq1 is not a solution") and "█" in maps[0]
    assert maps[1].startswith("eq1 fails at 64 of 64 points")
    section = "".join(page.find("section", id="check-2")[0][2])
    assert maps[0] in section


@needs_matplotlib
def test_a_plot_that_fails_leaves_a_note_and_the_run_alone(
    suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pinncheck._plot

    def broken(report: Any, maps: Any = None) -> bytes:
        raise RuntimeError("no <canvas>")

    monkeypatch.setattr(pinncheck._plot, "plot_png", broken)
    out = suite / "broken-plots.html"
    r = run_cli("run", str(suite / "suite.toml"), "-k", "script", "--html", str(out))
    assert r.exit_code == 0
    page = parse(out.read_text(encoding="utf-8"))
    assert "the plot could not be drawn (RuntimeError: no <canvas>)" in page.all_text()
    assert not page.find("canvas") and not page.find("img")


def test_html_keeps_the_exit_code_of_a_failing_and_a_passing_run(suite: Path) -> None:
    out = suite / "failing.html"
    r = run_cli("run", str(suite / "suite.toml"), "-k", "not-a-solution", "--html", str(out))
    assert r.exit_code == 1
    page = parse(out.read_text(encoding="utf-8"))
    assert [row["data-state"] for row in summary_rows(page)] == ["failed"]
    assert "FAIL" in "".join(page.find("h1")[0][2])
    r = run_cli("run", str(suite / "suite.toml"), "-k", "script", "--html", str(out))
    assert r.exit_code == 0
    page = parse(out.read_text(encoding="utf-8"))
    assert [row["data-state"] for row in summary_rows(page)] == ["passed"]
    assert f"{CHECKS - 1} deselected by -k" in page.all_text()


def test_checks_not_run_after_x_are_listed_as_not_run(suite: Path) -> None:
    out = suite / "exitfirst.html"
    r = run_cli("run", str(suite / "suite.toml"), "-x", "--html", str(out))
    assert r.exit_code == 1
    page = parse(out.read_text(encoding="utf-8"))
    assert [row["data-state"] for row in summary_rows(page)] == ["passed", "failed"] + [
        "skipped"
    ] * (CHECKS - 2)
    assert len(page.find("section", class_="skipped")) == CHECKS - 2
    assert "not run: -x stopped the run" in page.all_text()


def test_output_pinncheck_prints_as_something_else_becomes_preformatted_text() -> None:
    from rich.panel import Panel

    from pinncheck._html import _rich_html

    html = _rich_html(Panel("a <map> of failures\n##  ##"))
    page = parse(html)
    assert [e[0] for e in page.elements] == ["pre"]
    assert "a <map> of failures" in page.all_text() and "##  ##" in page.all_text()


@pytest.mark.parametrize("where", ["missing/report.html", "."])
def test_unwritable_html_path_exits_2_before_running(suite: Path, where: str) -> None:
    target = suite / where
    r = run_cli("run", str(suite / "suite.toml"), "--html", str(target))
    assert r.exit_code == 2
    assert "--html" in r.stderr or "HTML report" in r.stderr
    assert "pinncheck run" not in r.stdout  # nothing ran
    assert not (suite / "missing").exists()


def test_check_writable_leaves_no_file_behind(tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    assert check_writable(target) == target
    assert not target.exists()
    target.write_text("old")
    check_writable(target)
    assert target.read_text() == "old"


def test_check_files_that_do_not_validate_get_a_page(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[check]]\nname = "x"\nexpr = "x<script>"\ndomain = "x=0:1"\n')
    out = tmp_path / "r.html"
    r = run_cli("run", str(bad), "--html", str(out))
    assert r.exit_code == 2
    page = parse(out.read_text(encoding="utf-8"))
    assert not page.find("script")
    assert "nothing ran" in page.all_text()
    (problems,) = page.find("ul", id="problems")
    assert "x<script>" in "".join(problems[2])


def test_page_of_a_run_from_the_python_api(suite: Path) -> None:
    from pinncheck._checkfile import load_files, run_entries

    entries = [e for e in load_files([suite / "suite.toml"]) if e.kind in ("check", "residual")]
    text = html_report(run_entries(entries), title="my <suite>")
    page = parse(text)
    assert "my <suite>: FAIL" in "".join(page.find("title")[0][2])
    assert len(summary_rows(page)) == 2


# In a browser ----------------------------------------------------------------------------------
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
WIDTH, HEIGHT = 1024, 900


def find_browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser(*args: str) -> subprocess.CompletedProcess[str]:
    exe = find_browser()
    assert exe is not None
    cmd = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", *args]
    env = {**os.environ, "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def png_pixels(data: bytes) -> np.ndarray:
    """An 8-bit RGB or RGBA PNG (what Chromium writes) as an array (height, width, channels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        (crc,) = struct.unpack(">I", data[pos + 8 + size : pos + 12 + size])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + size
    assert header is not None and idat
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    stride = width * bpp + 1
    assert raw.size == stride * height
    rows = raw.reshape(height, stride)
    out = np.zeros((height, width * bpp), dtype=np.int64)
    prev = np.zeros(width * bpp, dtype=np.int64)
    for y in range(height):
        f, line = rows[y, 0], rows[y, 1:].astype(np.int64)
        if f == 0:
            cur = line
        elif f == 1:
            cur = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif f == 2:
            cur = (line + prev) % 256
        else:
            cur = np.zeros_like(line)
            p, lst = prev.tolist(), line.tolist()
            c = cur.tolist()
            for i in range(len(lst)):
                a = c[i - bpp] if i >= bpp else 0
                b = p[i]
                if f == 3:
                    c[i] = (lst[i] + (a + b) // 2) % 256
                else:
                    d = p[i - bpp] if i >= bpp else 0
                    pa, pb, pc = abs(b - d), abs(a - d), abs(a + b - 2 * d)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else d)
                    c[i] = (lst[i] + pred) % 256
            cur = np.array(c, dtype=np.int64)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)[:, :, :3].astype(np.uint8)


def test_png_reader_reads_a_known_image() -> None:
    # A 2x2 RGB image written with each filter type the reader handles.
    pixels = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    for f in range(5):
        rows = b""
        prev = np.zeros(6, dtype=np.int64)
        for y in range(2):
            line = pixels[y].reshape(-1).astype(np.int64)
            a = np.concatenate([[0, 0, 0], line[:-3]])
            d = np.concatenate([[0, 0, 0], prev[:-3]])
            if f == 4:
                pa, pb, pc = abs(prev - d), abs(a - d), abs(a + prev - 2 * d)
                pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, prev, d))
            else:
                pred = [np.zeros(6, dtype=np.int64), a, prev, (a + prev) // 2][f]
            rows += bytes([f]) + bytes(((line - pred) % 256).astype(np.uint8).tolist())
            prev = line

        def chunk(kind: bytes, body: bytes) -> bytes:
            return (
                struct.pack(">I", len(body))
                + kind
                + body
                + struct.pack(">I", zlib.crc32(kind + body))
            )

        png = (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b"")
        )
        assert np.array_equal(png_pixels(png), pixels), f


@pytest.mark.skipif(
    find_browser() is None,
    reason="needs a headless Chromium or Chrome; install one with "
    "`apt-get install chromium` (Debian/Ubuntu) to run this test",
)
def test_report_renders_in_a_headless_browser(report: tuple[int, Path], tmp_path: Path) -> None:
    url = report[1].resolve().as_uri()
    dom = browser("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = parse(dom.stdout)
    assert [r["data-state"] for r in summary_rows(page)] == STATES
    assert len(page.find("section", class_="check")) == CHECKS
    assert len(page.find("table", class_="worst")) == 3
    if find_spec("matplotlib") is not None:
        assert len(page.find("img")) == 4
    assert NAME in page.all_text() and not page.find("script")
    shot = tmp_path / "report.png"
    r = browser(f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", url)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    pixels = png_pixels(shot.read_bytes())
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    white = (pixels >= 250).all(axis=2)
    assert 0.01 < 1 - white.mean() < 0.9  # text and tables drawn on a white page
    # the CSS applied: the red of the ERROR and MISSED badges (#cf222e) is on screen
    red = (abs(pixels.astype(int) - [0xCF, 0x22, 0x2E]).sum(axis=2) < 30).sum()
    assert red > 100


# Point sinks through a suite's run ---------------------------------------------------------------
class CountingSink:
    """Counts the points it sees, per quantity name (pickles: it travels to workers)."""

    def __init__(self) -> None:
        self.names: tuple[str, ...] = ()
        self.points = 0
        self.failing = 0
        self.largest = torch.zeros(0, dtype=torch.float64)  # a tensor, as real sinks keep

    def start(self, layout: Any) -> None:
        self.names = layout.names
        self.largest = torch.zeros(len(layout.names), dtype=torch.float64)

    def partial(self, view: Any) -> tuple[int, int, torch.Tensor]:
        bad = sum(int((e > t).sum()) for e, t in zip(view.error, view.tolerance, strict=True))
        return len(view), bad, torch.stack([e.max() for e in view.error])

    def merge(self, partial: tuple[int, int, torch.Tensor]) -> None:
        self.points += partial[0]
        self.failing += partial[1]
        self.largest = torch.maximum(self.largest, partial[2])


@pytest.mark.parametrize("jobs", [1, 2])
def test_run_entries_feeds_sinks_in_process_and_in_workers(suite: Path, jobs: int) -> None:
    from pinncheck._checkfile import load_files, run_entries

    entries = [e for e in load_files([suite / "suite.toml"]) if e.kind != "probe"]
    report = run_entries(
        entries, jobs=jobs, sinks=lambda e: [CountingSink()] if e.name != "crashes" else []
    )
    check, residual, verify, crashed = report.results
    for r in (check, residual, verify):
        (sink,) = r.sinks
        assert isinstance(sink, CountingSink) and sink.points == 64
    assert check.sinks[0].names == tuple(d.name for d in check.report.derivatives)
    assert check.sinks[0].failing == 0
    for r in (check, residual, verify):  # the tensors came back, from workers too
        quantities = [*getattr(r.report, "derivatives", []), *getattr(r.report, "equations", [])]
        largest = dict(zip(r.sinks[0].names, r.sinks[0].largest.tolist(), strict=True))
        assert quantities and {q.name for q in quantities} <= set(largest)
        for q in quantities:
            slack = q.stats.max_reference_error  # refined points may move the report's figure
            assert abs(largest[q.name] - q.stats.max_abs_error) <= slack, q.name
    # the swapped columns fail at the points the report counts, seen in the worker
    assert verify.sinks[0].failing == verify.report.equations[0].failing_points > 0
    assert crashed.report is None and crashed.sinks == []


def test_run_entries_without_sinks_gives_none(suite: Path) -> None:
    from pinncheck._checkfile import load_files, run_entries

    entries = [e for e in load_files([suite / "suite.toml"]) if e.kind == "check"]
    (result,) = run_entries(entries).results
    assert result.sinks == []


def test_a_shard_s_page_names_its_shard(tmp_path: Path) -> None:
    from pinncheck._checkfile import RunReport
    from pinncheck._html import HtmlRun
    from pinncheck._suite import Suite

    page = HtmlRun(tmp_path / "shard.html")
    page.write(RunReport(), Suite([], total=3, shard=(2, 3)))
    parsed = parse((tmp_path / "shard.html").read_text(encoding="utf-8"))
    assert "".join(parsed.find("h1")[0][2]) == "pinncheck run (shard 2/3): PASS"
    assert "0 of 0 checks met their expectation (shard 2/3 of 3 checks)" in parsed.all_text()
    assert summary_rows(parsed) == []
