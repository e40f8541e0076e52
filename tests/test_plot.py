"""--plot: the error maps and the probe's Jacobian as PNG, SVG and PDF files, and the data
behind them (pinncheck._plot)."""

from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
import torch

from helpers import HEAT, HEAT_ARGS, run_cli
from pinncheck import ExitCode, OptionError

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "user_code"
MODELS = str(SAMPLES / "models.py")

needs_matplotlib = pytest.mark.skipif(
    find_spec("matplotlib") is None,
    reason='matplotlib is not installed: pip install "pinncheck[plot]" (make install does)',
)

# Localized bug: the heat residual, wrong by 1e-3*u only where x > 0.9.
LOCALIZED = """
import torch

def residual(x, u):
    g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
    u_x, u_t = g[:, 0:1], g[:, 1:2]
    u_xx = torch.autograd.grad(u_x, x, torch.ones_like(u_x), create_graph=True)[0][:, 0:1]
    return u_t - 0.1 * u_xx + torch.where(x[:, 0:1] > 0.9, 1e-3 * u, torch.zeros_like(u))
"""


# File validity ---------------------------------------------------------------------------


def assert_png(data: bytes) -> None:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 300 <= width <= 4000 and 200 <= height <= 4000, (width, height)
    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (height, width)
    rgb = pixels[..., :3].reshape(-1, 3)
    # Not blank: many colours, and a good share of the pixels are not the background.
    assert len({tuple(p) for p in rgb[:: max(1, len(rgb) // 20000)].tolist()}) > 20
    assert float((rgb.sum(axis=1) < 2.9).mean()) > 0.05


def assert_svg(data: bytes) -> None:
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    drawn = [e for e in root.iter() if e.tag.rsplit("}", 1)[-1] in ("path", "image", "use")]
    assert len(drawn) > 50


def assert_pdf(data: bytes) -> None:
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    assert len(data) > 5000


VALID = {"png": assert_png, "svg": assert_svg, "pdf": assert_pdf}


def test_the_validators_refuse_broken_files() -> None:
    with pytest.raises(AssertionError):
        assert_pdf(b"%PDF-1.4\n" + b"x" * 6000)  # no %%EOF
    with pytest.raises(ET.ParseError):
        assert_svg(b"<svg><g></svg>")
    with pytest.raises(AssertionError):
        assert_svg(b'<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    with pytest.raises(AssertionError):
        assert_png(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)


@needs_matplotlib
def test_a_blank_png_is_refused() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4))
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    with pytest.raises(AssertionError):
        assert_png(buffer.getvalue())


# Every command, every format ---------------------------------------------------------------

COMMANDS: dict[str, tuple[str, ...]] = {
    "check-1d": ("check", "sin(3*x)/(x + 2)", "-d", "x=0:1", "-n", "500"),
    "check-2d": ("check", "x1**2*sin(x2)", "-d", "x1=0:1", "-d", "x2=0:1", "-n", "500"),
    "check-3d": ("check", "x*y*z", "-d", "x=0:1", "-d", "y=0:1", "-d", "z=0:1", "--order", "1"),
    "residual": (
        "residual",
        "--pde",
        "u_t - nu*u_xx",
        "-s",
        "u = exp(-t)*sin(pi*x)",
        "-p",
        "nu = 0.1",
        "-d",
        "x=0:1",
        "-d",
        "t=0:1",
        "-n",
        "500",
    ),
    "verify": ("verify", str(SAMPLES / "heat_swapped_column.py") + ":residual", *HEAT_ARGS),
    "probe": ("probe", MODELS + ":batchnorm_mlp", "-d", "x = 0:1", "-d", "t = 0:1"),
}
EXPECTED = {
    "check-1d": 0,
    "check-2d": 0,
    "check-3d": 0,
    "residual": 1,
    "verify": 1,
    "probe": 1,
}


@needs_matplotlib
@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_writes_a_valid_file_in_each_format(
    tmp_path: Path, name: str, fmt: str
) -> None:
    path = tmp_path / f"plot.{fmt}"
    r = run_cli(*COMMANDS[name], "--plot", str(path))
    assert r.exit_code == EXPECTED[name], r.stdout + r.stderr
    assert f"plot: {path}" in r.stderr
    VALID[fmt](path.read_bytes())


@needs_matplotlib
def test_json_output_stays_one_document_with_a_plot(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    r = run_cli(*COMMANDS["residual"], "--plot", str(path), "-f", "json")
    assert r.exit_code == 1
    assert r.json()["status"] == "fail"
    assert_png(path.read_bytes())


@pytest.mark.parametrize("name", ["check-2d", "verify", "probe"])
@pytest.mark.parametrize("bad", ["plot.jpg", "plot", "plot.png.txt"])
def test_a_bad_suffix_exits_2_before_the_run(tmp_path: Path, name: str, bad: str) -> None:
    path = tmp_path / bad
    r = run_cli(*COMMANDS[name], "--plot", str(path))
    assert r.exit_code == ExitCode.USAGE, r.stdout + r.stderr
    assert "give the file a .png, .svg or .pdf suffix" in r.stderr
    assert r.stdout == "" and not path.exists()  # nothing ran: no table


def test_a_missing_folder_exits_2_before_the_run(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "plot.png"
    r = run_cli(*COMMANDS["check-2d"], "--plot", str(path))
    assert r.exit_code == ExitCode.USAGE
    assert "does not exist" in r.stderr and r.stdout == ""


def test_the_users_code_does_not_run_when_the_plot_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    target = tmp_path / "mine.py"
    target.write_text(
        f"open({str(marker)!r}, 'w').close()\n\ndef residual(x, u):\n    return u\n",
        encoding="utf-8",
    )
    r = run_cli("verify", f"{target}:residual", *HEAT_ARGS, "--plot", str(tmp_path / "p.gif"))
    assert r.exit_code == ExitCode.USAGE
    assert not marker.exists()
    # The same command with a good suffix does import it (the marker can appear).
    run_cli("verify", f"{target}:residual", *HEAT_ARGS, "--plot", str(tmp_path / "p.svg"))
    assert marker.exists()


def _fresh(argv: list[str], before: str = "", after: str = "") -> subprocess.CompletedProcess[str]:
    """``pinncheck ARGV`` in a fresh interpreter: ``before`` runs first, ``after`` last; the
    exit code is printed as ``CODE n``."""
    code = (
        f"import sys\n{before}\nfrom pinncheck.cli import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit as e:\n    print('CODE', e.code)\n{after}\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


HIDE_MATPLOTLIB = "sys.modules['matplotlib'] = None  # import matplotlib raises ImportError"


@pytest.mark.parametrize("name", ["check-2d", "probe"])
def test_without_matplotlib_plot_exits_2_with_the_install_command(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "p.png"
    p = _fresh([*COMMANDS[name], "--plot", str(path)], before=HIDE_MATPLOTLIB)
    assert "CODE 2" in p.stdout, p.stdout + p.stderr
    assert 'pip install "pinncheck[plot]"' in p.stderr
    assert "Traceback" not in p.stderr and not path.exists()
    assert "┃" not in p.stdout  # refused before the run: no table
    # Without --plot the same command runs as before.
    p = _fresh(list(COMMANDS[name]), before=HIDE_MATPLOTLIB)
    assert f"CODE {EXPECTED[name]}" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["check", "--help"], ["check", "x1**2", "-d", "x1=0:1", "-n", "100"]],
)
def test_help_and_plain_checks_do_not_import_matplotlib(argv: list[str]) -> None:
    p = _fresh(
        argv,
        after="print('LOADED', [m for m in sys.modules if m.split('.')[0] == 'matplotlib'])",
    )
    assert "CODE 0" in p.stdout and "LOADED []" in p.stdout, p.stdout + p.stderr


@needs_matplotlib
def test_a_plot_imports_matplotlib_on_the_agg_canvas_only(tmp_path: Path) -> None:
    argv = ["check", "x1**2", "-d", "x1=0:1", "--plot", str(tmp_path / "a.png")]
    p = _fresh(
        argv,
        after="print('PYPLOT', 'matplotlib.pyplot' in sys.modules, 'matplotlib' in sys.modules)",
    )
    assert "CODE 0" in p.stdout and "PYPLOT False True" in p.stdout, p.stdout + p.stderr


def test_tick_labels_tell_round_values_apart_with_the_fewest_digits() -> None:
    from pinncheck._drawing import _tick_labels

    assert _tick_labels([0.0, 0.5, 1.0]) == ["0.0", "0.5", "1.0"]
    assert _tick_labels([-0.0, 0.25, 0.5]) == ["0.00", "0.25", "0.50"]
    assert _tick_labels([0.0, 20000.0, 40000.0]) == ["0", "20000", "40000"]
    assert _tick_labels([-1e-6, 0.0, 1e-6]) == ["-1e-6", "0", "1e-6"]
    assert _tick_labels([0.0, 2.5e-7, 5e-7]) == ["0", "2.5e-7", "5.0e-7"]
    assert _tick_labels([1e5, 2e5]) == ["1e5", "2e5"]


# The data behind the plots -------------------------------------------------------------------


def _verify_maps(tmp_path: Path, body: str, n: int = 4000) -> tuple[Any, Any]:
    from pinncheck._plot import error_maps
    from pinncheck._verify import prepare_verify

    (tmp_path / "mine.py").write_text(textwrap.dedent(body), encoding="utf-8")
    job = prepare_verify("mine.py:residual", n=n, base_dir=tmp_path, **HEAT)
    maps = error_maps()
    return job.run(sinks=[maps]), maps


@needs_matplotlib
def test_the_heatmap_of_a_bug_where_x_above_0_9_fails_there_only(tmp_path: Path) -> None:
    import numpy as np

    from pinncheck._plot import figure, plot_data

    report, maps = _verify_maps(tmp_path, LOCALIZED)
    assert report.status == "fail"
    data = plot_data(report, maps)
    (panel,) = data.panels
    assert panel.variables == ("x", "t")
    ex, et = panel.edges
    failing = np.nan_to_num(panel.ratio, nan=0.0) > 1
    has_points = ~panel.empty
    # A cell fails exactly when it reaches past x = 0.9 (and has points).
    reaches = np.broadcast_to((ex[1:] > 0.9 + 1e-9)[:, None], failing.shape)
    assert np.array_equal(failing, reaches & has_points)
    assert failing.sum() >= len(et) - 1  # a whole column of cells, every t
    cells = panel.failing_cells()
    assert cells[:, 0].min() > 0.85 and cells[:, 1].min() < 0.1 and cells[:, 1].max() > 0.9
    # The worst points are marked inside the failing band.
    assert panel.worst and all(x > 0.9 for x, _ in panel.worst)
    # What the figure draws is this array: the image's colours are its log10, bin by bin
    # (rows along t, from its lower end).
    fig = figure(report, maps)
    (canvas,) = fig.axes  # one canvas in inches: panels are boxes on it
    image = canvas.images[0]
    assert image.origin == "lower"
    drawn = np.asarray(image.get_array()).T
    with np.errstate(divide="ignore"):
        expected = np.log10(np.clip(panel.ratio, data.lo, data.hi))
    assert np.allclose(drawn, expected, equal_nan=True)
    # ...and the worst points' stars sit where they are in (x, t): map the image's box
    # (inches) back to the domain.
    x0, x1, y0, y1 = image.get_extent()
    assert 0 < x0 < x1 < fig.get_figwidth() and 0 < y0 < y1 < fig.get_figheight()
    stars = [line for line in canvas.get_lines() if line.get_marker() == "*"]
    assert len(stars) == len(panel.worst)
    for line, (x, t) in zip(stars, panel.worst, strict=True):
        (sx,), (sy,) = line.get_xdata(), line.get_ydata()
        back = (
            ex[0] + (sx - x0) / (x1 - x0) * (ex[-1] - ex[0]),
            et[0] + (sy - y0) / (y1 - y0) * (et[-1] - et[0]),
        )
        assert back == pytest.approx((x, t), abs=1e-9)


@needs_matplotlib
def test_a_correct_residual_shows_no_failing_cell(tmp_path: Path) -> None:
    from pinncheck._plot import plot_data

    body = (SAMPLES / "heat_correct.py").read_text(encoding="utf-8")
    report, maps = _verify_maps(tmp_path, body, n=1000)
    assert report.status == "pass"
    (panel,) = plot_data(report, maps).panels
    assert panel.failing_cells().shape == (0, 2)
    assert panel.title.startswith("eq1: PASS")


def test_undefined_points_are_their_own_bins() -> None:
    import numpy as np

    from pinncheck._check import prepare_check
    from pinncheck._plot import error_maps, plot_data

    maps = error_maps()
    report = prepare_check("log(x)", ["x=-1:1"], n=4000, order=1).run(sinks=[maps])
    assert report.derivatives[0].status == "undefined"
    (panel,) = plot_data(report, maps).panels
    (edges,) = panel.edges
    # Undefined exactly in the bins left of 0 (log of a negative number); never a ratio there.
    assert np.array_equal(panel.undefined, edges[1:] <= 0)
    assert np.isnan(panel.ratio[panel.undefined]).all()
    assert "undefined" in panel.title


def test_a_singularity_is_drawn_where_it_is() -> None:
    from pinncheck._check import prepare_check
    from pinncheck._plot import error_maps, plot_data

    maps = error_maps()
    report = prepare_check("1/(x - 0.3)", ["x=0:1"], n=500, order=1).run(sinks=[maps])
    (panel,) = plot_data(report, maps).panels
    (sing,) = panel.singular
    ((at,),) = sing.at
    assert abs(at - 0.3) < 1e-9 and sing.label == "singular: 1/(x - 3/10)"
    # In 2-D, the level set as a grid of its function: zero on the circle x^2 + y^2 = 1/4.
    maps = error_maps()
    report = prepare_check("log(x**2 + y**2 - 0.25)", ["x=0:1", "y=0:1"], n=500, order=1).run(
        sinks=[maps]
    )
    sing = plot_data(report, maps).panels[0].singular[0]
    assert sing.g is not None and sing.x is not None and sing.y is not None
    i, j = abs(sing.x - 0.3).argmin(), abs(sing.y - 0.4).argmin()
    assert abs(sing.g[i, j]) < 1e-12 and sing.levels == (0.0,)
    # Nothing is drawn for an expression without one.
    maps = error_maps()
    report = prepare_check("x*y", ["x=0:1", "y=0:1"], n=200, order=1).run(sinks=[maps])
    assert all(not p.singular for p in plot_data(report, maps).panels)


def test_a_non_solution_shows_its_solves_map() -> None:
    from pinncheck._plot import error_maps, plot_data
    from pinncheck._residual import prepare_residual

    maps = error_maps()
    job = prepare_residual(
        "u_t - nu*u_xx", ["u=exp(-t)*sin(pi*x)"], ["x=0:1", "t=0:1"], param=["nu=0.1"], n=500
    )
    report = job.run(sinks=[maps])
    assert report.equations[0].status_detail == "not a solution"
    panels = plot_data(report, maps).panels
    assert [(p.quantity, p.measure) for p in panels][-2:] == [("eq1", "error"), ("eq1", "solves")]
    assert "NOT A SOLUTION" in panels[-1].title
    assert panels[-1].failing_cells().shape[0] > 10
    # A solution has no such panel.
    maps = error_maps()
    job = prepare_residual(
        "u_t - nu*u_xx",
        ["u=exp(-nu*pi**2*t)*sin(pi*x)"],
        ["x=0:1", "t=0:1"],
        param=["nu=0.1"],
        n=500,
    )
    report = job.run(sinks=[maps])
    assert [p.measure for p in plot_data(report, maps).panels] == ["error"] * 3


def test_three_variables_show_each_quantitys_most_structured_pairs() -> None:
    from pinncheck._check import prepare_check
    from pinncheck._maps import ranked_pairs
    from pinncheck._plot import error_maps, plot_data

    maps = error_maps()
    report = prepare_check("x*y*z*w", ["x=0:1", "y=0:1", "z=0:1", "w=0:1"], n=2000, order=1).run(
        sinks=[maps]
    )
    data = plot_data(report, maps)
    # Every derivative passes: one panel each, its most structured pair, in rows of three.
    assert report.status == "pass"
    assert (data.rows, data.cols, data.dimensions, len(data.panels)) == (2, 3, 4, 4)
    result = maps.result()
    for panel, q in zip(data.panels, result.quantities, strict=True):
        a, b = ranked_pairs(q)[0]
        assert panel.quantity == q.name and panel.variables == (
            result.variables[a],
            result.variables[b],
        )


def _heat3d_wrong_early_at_the_edge(x: Any, u: Any) -> Any:
    """u_t - 0.1 (u_xx + u_yy) over (x, y, t), wrong where x > 0.8 while t < 0.3."""
    import torch

    def grad(f: Any) -> Any:
        return torch.autograd.grad(f, x, torch.ones_like(f), create_graph=True)[0]

    g = grad(u)
    u_xx, u_yy = grad(g[:, 0:1])[:, 0:1], grad(g[:, 1:2])[:, 1:2]
    r = g[:, 2:3] - 0.1 * (u_xx + u_yy)
    wrong = (x[:, 0:1] > 0.8) & (x[:, 2:3] < 0.3)
    return r + torch.where(wrong, 1e-4 * u_xx, torch.zeros_like(u))


def test_three_variables_show_more_pairs_where_a_quantity_fails() -> None:
    from pinncheck._maps import ranked_pairs
    from pinncheck._plot import PANEL_BUDGET, error_maps, plot_data
    from pinncheck._verify import prepare_verify

    maps = error_maps()
    job = prepare_verify(
        _heat3d_wrong_early_at_the_edge,
        "u_t - nu*(u_xx + u_yy)",
        "u = sin(2*x + 1)*cos(y)*exp(-t) + x**2*y*t",
        ["x=0:1", "y=0:1", "t=0:1"],
        param=["nu=0.1"],
        n=20_000,
    )
    report = job.run(sinks=[maps])
    assert report.status == "fail"
    data = plot_data(report, maps)
    result = maps.result()
    (q,) = result.quantities
    # The failing equation gets its three projections, the pair with the worst point first.
    assert [p.variables for p in data.panels] == [
        (result.variables[a], result.variables[b]) for a, b in ranked_pairs(q)
    ]
    assert data.panels[0].variables == ("x", "t") and len(data.panels) <= PANEL_BUDGET
    assert (data.rows, data.cols) == (1, 3)


def test_titles_say_what_the_run_was() -> None:
    from pinncheck._check import prepare_check
    from pinncheck._plot import error_maps, plot_data

    maps = error_maps()
    report = prepare_check(
        "x1**2*sin(x2)", ["x1=0:1", "x2=0:1"], n=300, seed=7, dtype="float32"
    ).run(sinks=[maps])
    title = plot_data(report, maps).title
    for part in ("pinncheck check", "x1**2*sin(x2)", "PASS", "float32", "n = 300", "seed = 7"):
        assert part in title, title


def test_small_runs_get_coarser_cells_not_an_empty_grid() -> None:
    from pinncheck._check import prepare_check
    from pinncheck._plot import error_maps, plot_data

    for n, most_empty in ((400, 0.05), (20000, 0.05)):
        maps = error_maps()
        report = prepare_check("x*y", ["x=0:1", "y=0:1"], n=n, order=1).run(sinks=[maps])
        panel = plot_data(report, maps).panels[0]
        assert panel.ratio.size <= max(n / 4, 64), (n, panel.ratio.shape)
        assert panel.empty.mean() <= most_empty, (n, panel.empty.mean())


def test_plot_data_of_a_check_needs_its_full_maps() -> None:
    from pinncheck._check import check, prepare_check
    from pinncheck._maps import ErrorMaps
    from pinncheck._plot import plot_data

    with pytest.raises(OptionError, match="ErrorMaps"):
        plot_data(check("x", ["x=0:1"], n=10, order=1))
    counts = ErrorMaps(largest=False)
    report = prepare_check("x", ["x=0:1"], n=10, order=1).run(sinks=[counts])
    with pytest.raises(OptionError, match="counts only"):
        plot_data(report, counts)


# probe ---------------------------------------------------------------------------------------


def test_probe_matrix_is_diagonal_for_a_pointwise_model_and_not_for_batchnorm() -> None:
    import numpy as np

    from pinncheck import probe
    from pinncheck._plot import plot_data

    box = ["x = 0:1", "t = 0:1"]
    good = plot_data(probe("models.py:pointwise_mlp", box, base_dir=SAMPLES))
    b = len(good.relative)
    assert b == 32 and np.array_equal(np.diag(good.relative), np.ones(b))
    assert (good.relative[~np.eye(b, dtype=bool)] == 0).all()
    assert "pointwise" in good.caption and "Culprit" not in good.caption
    bad_report = probe("models.py:batchnorm_mlp", box, base_dir=SAMPLES)
    bad = plot_data(bad_report)
    off = bad.relative[~np.eye(b, dtype=bool)]
    assert (off > bad.tolerance).mean() > 0.9
    assert float(bad.row_ratio.max()) == pytest.approx(bad_report.offdiag_max_row_ratio)
    assert "Culprit layers: BatchNorm1d '1' (seen), BatchNorm1d '4'" in bad.caption
    assert "FAIL" in bad.title and "float32" in bad.title and "n = 64" in bad.title


@needs_matplotlib
def test_the_probe_figure_draws_its_caption_and_the_matrix() -> None:
    import numpy as np

    from pinncheck import probe
    from pinncheck._plot import figure, plot_data

    r = probe("models.py:batchnorm_mlp", ["x = 0:1", "t = 0:1"], base_dir=SAMPLES)
    fig = figure(r)
    assert "Culprit layers: BatchNorm1d" in fig.get_supxlabel()
    image = fig.axes[0].images[0].get_array()
    relative = plot_data(r).relative
    off = ~np.eye(len(relative), dtype=bool)
    assert np.array_equal(np.asarray(image)[off], relative[off])


def test_probe_keeps_its_coupling_matrix_out_of_the_json() -> None:
    from pinncheck import probe

    r = probe("models.py:batch_mean_model", ["x = 0:1", "t = 0:1"], base_dir=SAMPLES)
    assert r.coupling is not None
    c = torch.tensor(r.coupling, dtype=torch.float64)
    assert c.shape == (32, 32) and bool((c.diagonal() > 0).all())
    assert "coupling" not in r.to_dict()
    # Plain floats: the report travels back from a worker process (pinncheck run).
    assert pickle.loads(pickle.dumps(r)).coupling == r.coupling


def test_a_probe_entry_of_a_suite_comes_back_from_its_worker() -> None:
    r = run_cli("run", str(SAMPLES / "checks.toml"), "-k", "batchnorm", "-f", "json")
    doc = r.json()
    assert r.exit_code == 0, r.stdout + r.stderr
    assert doc["counts"]["errors"] == 0
    assert [x["status"] for x in doc["reports"]] == ["fail"]


def test_a_probe_without_a_jacobian_says_why_in_its_plot(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import torch\n\ndef model(x):\n    return torch.full_like(x[:, :1], float('nan'))\n",
        encoding="utf-8",
    )
    path = tmp_path / "p.png"
    r = run_cli("probe", f"{tmp_path / 'm.py'}:model", "-d", "x=0:1", "--plot", str(path))
    assert r.exit_code == ExitCode.FAILED, r.stdout + r.stderr  # the run's own verdict
    from pinncheck import probe
    from pinncheck._plot import plot_data

    data = plot_data(probe("m.py:model", ["x=0:1"], base_dir=tmp_path))
    assert data.relative.shape == (0, 0)
    assert data.caption.startswith("The Jacobian was not measured: not evaluated")
    assert "no Jacobian" in data.title
    if find_spec("matplotlib") is not None:
        assert path.read_bytes()[:4] == b"\x89PNG"


# The Python API ------------------------------------------------------------------------------


@needs_matplotlib
def test_svg_and_png_for_embedding_and_the_same_bytes_twice() -> None:
    from pinncheck import probe
    from pinncheck._plot import plot_png, plot_svg

    r = probe("models.py:batchnorm_mlp", ["x = 0:1", "t = 0:1"], base_dir=SAMPLES)
    svg = plot_svg(r)
    assert isinstance(svg, str) and "<svg" in svg
    assert_svg(svg.encode())
    assert plot_svg(r) == svg  # no dates, no random ids
    assert_png(plot_png(r))


def test_plot_format_and_request() -> None:
    from pinncheck._plot import PlotRequest, plot_format

    assert [plot_format(p) for p in ("a.png", "b.SVG", "c.Pdf")] == ["png", "svg", "pdf"]
    with pytest.raises(OptionError, match="suffix"):
        plot_format("a.jpeg")
    nothing = PlotRequest(None)
    assert nothing.sinks == [] and nothing.save(object()) is None


def test_the_documented_pictures_exist_and_are_small() -> None:
    import re

    docs = Path(__file__).resolve().parents[1] / "docs"
    shown = re.findall(r"!\[[^]]*\]\((pictures/[^)]+\.png)\)", (docs / "pictures.md").read_text())
    from bench.pictures import PICTURES

    assert sorted(Path(p).name for p in shown) == sorted(PICTURES)
    for p in shown:
        data = (docs / p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 200_000, p


@needs_matplotlib
def test_one_error_maps_sink_serves_the_terminal_map_and_the_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pinncheck._maps import ErrorMaps

    started: list[ErrorMaps] = []
    original = ErrorMaps.start

    def start(self: ErrorMaps, layout: Any) -> None:
        started.append(self)
        original(self, layout)

    monkeypatch.setattr(ErrorMaps, "start", start)
    path = tmp_path / "p.png"
    r = run_cli(*COMMANDS["verify"], "--plot", str(path))
    assert r.exit_code == 1 and "└────" in r.stdout  # the terminal map is shown
    assert len(started) == 1 and started[0].worst >= 3
    assert_png(path.read_bytes())
    for extra in (["-f", "json", "--plot", str(path)], []):  # plot alone; the map alone
        started.clear()
        r = run_cli(*COMMANDS["verify"], *extra)
        assert r.exit_code == 1 and len(started) == 1, extra
    started.clear()
    assert run_cli(*COMMANDS["verify"], "-f", "json").exit_code == 1 and not started


def test_the_plots_sink_keeps_the_same_memory_whatever_n() -> None:
    from pinncheck._check import prepare_check
    from pinncheck._plot import error_maps

    kept = []
    for n in (1_000, 300_000):
        maps = error_maps()
        prepare_check("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"], n=n, chunk_size=50_000).run(
            sinks=[maps]
        )
        # Everything the sink holds between chunks (bins, worst points, chunk lists...).
        kept.append((len(pickle.dumps(maps)), [len(q.worst) for q in maps.result().quantities]))
    (small, worst_small), (large, worst_large) = kept
    assert worst_small == worst_large and large < 2_000_000
    assert large < 1.1 * small, kept  # 300x the points, no more state


@needs_matplotlib
def test_a_large_run_says_that_its_passing_bins_are_sampled() -> None:
    from pinncheck._check import prepare_check
    from pinncheck._maps import DEFAULT_SAMPLE, SAMPLE_BLOCK
    from pinncheck._plot import error_maps, figure, plot_data

    notes = []
    for n in (2_000, 300_000):
        maps = error_maps()
        job = prepare_check("x1**2*sin(x2)", ["x1=0:1", "x2=0:1"], n=n, order=1)
        report = job.run(sinks=[maps])
        data = plot_data(report, maps)
        stride = -(-n // DEFAULT_SAMPLE)
        # One block of SAMPLE_BLOCK consecutive points in every stride blocks, counted here.
        blocks = range(0, n, stride * SAMPLE_BLOCK)
        sampled = sum(min(SAMPLE_BLOCK, n - b) for b in blocks)
        assert (data.stride, data.sampled) == (stride, sampled)
        title = " ".join(figure(report, maps).get_suptitle().split())
        assert data.note() == "" or " ".join(data.note().split()) in title
        notes.append(data.note())
    assert notes[0] == "" and data.stride == 3 and data.sampled < 300_000 // 2
    assert f"{data.sampled:,} sampled points" in notes[1] and "above 1: exact" in notes[1]


def test_the_plot_maps_solves_only_for_a_residual_that_must_solve(tmp_path: Path) -> None:
    # verify and --any-residual runs do not test "solves": their plot's sink must not bin it,
    # and a counts-only sink (the terminal map's, without --plot) is not reused.
    from pinncheck._maps import ErrorMaps
    from pinncheck._plot import PlotRequest
    from pinncheck._pointwise import must_solve
    from pinncheck._residual import prepare_residual

    args = ("u_t - u_xx", {"u": "exp(-t)*sin(x)"}, ["x=0:1", "t=0:1"])
    assert must_solve("residual", prepare_residual(*args))
    assert not must_solve("residual", prepare_residual(*args, any_residual=True))
    assert not must_solve("verify", None)
    request = PlotRequest(str(tmp_path / "plot.png"))
    (own,) = request.sinks_with([], solves=False)
    assert isinstance(own, ErrorMaps) and not own.solves and own.largest
    counts = ErrorMaps(largest=False)
    sinks = PlotRequest(str(tmp_path / "plot.png")).sinks_with([counts], solves=True)
    assert len(sinks) == 2 and sinks[0] is counts and sinks[1].solves and sinks[1].largest


def test_three_variables_keep_to_the_panel_budget_when_many_quantities_fail() -> None:
    from pinncheck._check import prepare_check
    from pinncheck._maps import ranked_pairs
    from pinncheck._plot import MAX_PROJECTIONS, PANEL_BUDGET, error_maps, plot_data

    maps = error_maps()
    job = prepare_check("log(x)*y*z", ["x=-1:1", "y=0:1", "z=0:1"], n=3000, order=2)
    report = job.run(sinks=[maps])
    result = maps.result()
    problems = [q for q in result.quantities if q.undefined or q.failing]
    assert len(result.quantities) == 9 and len(problems) * MAX_PROJECTIONS > PANEL_BUDGET
    data = plot_data(report, maps)
    assert len(data.panels) == PANEL_BUDGET
    # Every quantity has its most structured pair first; the extra pairs go to the first
    # quantities with a problem, in the report's order.
    names = [p.quantity for p in data.panels]
    assert [name for i, name in enumerate(names) if name not in names[:i]] == [
        q.name for q in result.quantities
    ]
    for q in result.quantities:
        mine = [p.variables for p in data.panels if p.quantity == q.name]
        a, b = ranked_pairs(q)[0]
        assert mine[0] == (result.variables[a], result.variables[b])
    assert [names.count(q.name) for q in problems][:2] == [MAX_PROJECTIONS, 2]
