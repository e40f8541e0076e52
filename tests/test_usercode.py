"""Users' code as it is: DeepXDE's caches and memory, training scripts, calling conventions."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from helpers import HEAT, HEAT_ARGS, run_cli
from pinncheck import ExitCode, OptionError, UserCodeError, _usercode, probe, verify
from pinncheck._probemodel import build_model, parse_args
from pinncheck._scriptload import split_script, training_calls
from pinncheck._usercode import parse_target, sentences
from pinncheck._usermemory import ChunkMemory, clear_framework_caches

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "user_code"


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def grad_cache() -> types.ModuleType:
    """A fresh copy of the samples' DeepXDE-shaped cached helpers."""
    return _load(SAMPLES / "ddelike" / "grad.py", "ddelike_grad_for_test")


@pytest.fixture
def fake_deepxde(
    grad_cache: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> Iterator[types.ModuleType]:
    """``deepxde`` in sys.modules, with the cached helpers as ``deepxde.gradients``/``dde.grad``."""
    dde = types.ModuleType("deepxde")
    dde.grad = grad_cache  # type: ignore[attr-defined]
    dde.gradients = grad_cache  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "deepxde", dde)
    monkeypatch.setitem(sys.modules, "deepxde.gradients", grad_cache)
    yield grad_cache


def _dde_residual(grad: types.ModuleType, seen: list[int]) -> Any:
    def pde(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.append(grad.cached())
        return grad.jacobian(y, x, i=0, j=1) - 0.1 * grad.hessian(y, x, component=0, i=0, j=0)

    return pde


# Bounded memory ----------------------------------------------------------------------------


def test_deepxde_caches_are_cleared_after_every_call(fake_deepxde: types.ModuleType) -> None:
    seen: list[int] = []
    r = verify(_dde_residual(fake_deepxde, seen), **HEAT, n=4000, chunk_size=500)  # type: ignore[arg-type]
    assert r.status == "pass"
    assert len(seen) >= 8 and set(seen) == {0}  # every call found the caches empty
    assert fake_deepxde.cached() == 0
    assert not [w for w in r.warnings if "kept each chunk" in w]


def test_a_cache_pinncheck_does_not_know_is_reported(grad_cache: types.ModuleType) -> None:
    # The same helpers, but not registered as deepxde: nothing clears them, and the warning
    # says that the chunks' tensors were kept.
    assert "deepxde" not in sys.modules
    seen: list[int] = []
    r = verify(_dde_residual(grad_cache, seen), **HEAT, n=4000, chunk_size=500)  # type: ignore[arg-type]
    assert r.status == "pass"
    assert seen[:3] == [0, 3, 6] and grad_cache.cached() == 27  # 8 chunks, 1 gradient check
    warning = [w for w in r.warnings if "kept each chunk" in w]
    assert warning and "8 of 8 chunks" in warning[0] and "memory grows" in warning[0]


def test_a_global_list_of_results_is_reported_and_a_clean_function_is_not() -> None:
    kept: list[torch.Tensor] = []

    def heat(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
        u_xx = torch.autograd.grad(g[:, 0:1], x, torch.ones_like(u), create_graph=True)[0]
        return g[:, 1:2] - 0.1 * u_xx[:, 0:1]

    def hoarding(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        kept.append(heat(x, u))
        return kept[-1]

    bad = verify(hoarding, **HEAT, n=3000, chunk_size=1000)
    assert bad.status == "pass"
    assert any("kept each chunk" in w and "3 of 3" in w for w in bad.warnings)
    good = verify(heat, **HEAT, n=3000, chunk_size=1000)
    assert good.status == "pass"
    assert not [w for w in good.warnings if "kept" in w or "grow" in w]


def test_clear_framework_caches_never_imports_deepxde_and_knows_older_releases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "deepxde", raising=False)
    assert clear_framework_caches() is False
    assert "deepxde" not in sys.modules

    class Cache:
        def __init__(self) -> None:
            self.Js = {1: 2}

        def clear(self) -> None:
            self.Js = {}

    old = types.ModuleType("deepxde.gradients")
    old.jacobian = lambda *a: None  # type: ignore[attr-defined]
    old.jacobian._Jacobians = Cache()  # type: ignore[attr-defined]
    old.hessian = lambda *a: None  # type: ignore[attr-defined]
    old.hessian._Hessians = Cache()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "deepxde", types.ModuleType("deepxde"))
    monkeypatch.setitem(sys.modules, "deepxde.gradients", old)
    assert clear_framework_caches() is True
    assert old.jacobian._Jacobians.Js == {} and old.hessian._Hessians.Js == {}  # type: ignore[attr-defined]


def test_growth_without_kept_tensors_is_reported_only_beyond_the_floor() -> None:
    m = ChunkMemory(kept_per_point=8)
    m.points, m.chunks = 4000, 4
    m.readings = [100 * 2**20, 300 * 2**20, 500 * 2**20, 700 * 2**20]
    assert "Memory kept growing" in m.warnings()[0]
    m.readings = [100 * 2**20, 150 * 2**20, 200 * 2**20, 250 * 2**20]
    assert m.warnings() == []


# Training scripts: definitions only --------------------------------------------------------


def test_split_script_keeps_definitions_and_constants_only() -> None:
    source = textwrap.dedent(
        '''
        """doc"""
        from __future__ import annotations
        import math
        try:
            import numpy as np
        except ImportError:
            np = None
        NU = 0.01 / math.pi
        A, B = 1, (2, 3)
        LAYERS: list = [2, 20, 1]
        data = load()
        for i in range(3):
            step(i)
        def pde(x, u):
            return NU
        class Net:
            pass
        if __name__ == "__main__":
            model.train(iterations=10)
        '''
    )
    script = split_script(source, "train.py")
    kept = [type(s).__name__ for s in script.kept.body]
    assert kept == [
        "Expr",
        "ImportFrom",
        "Import",
        "Try",
        "Assign",
        "Assign",
        "AnnAssign",
        "FunctionDef",
        "ClassDef",
    ]
    assert [s.line for s in script.skipped] == [12, 13, 19]
    assert script.skipped_for("data")[0].text == "data = load()"
    assert script.skipped_for("i")[0].line == 13
    assert script.skipped_for("pde") == []


def test_training_calls_are_found_at_top_level_only(tmp_path: Path) -> None:
    f = tmp_path / "s.py"
    f.write_text(
        "import re\nPAT = re.compile('a')\nnet.train()\n"
        "def f():\n    model.train(iterations=5)\n"
        "if __name__ == '__main__':\n    model.fit(x)\n"
        "for e in range(3):\n    loss.backward()\n"
        "model.compile('adam', lr=1e-3)\n"
    )
    found = training_calls(f)
    assert [t.split(":")[0] for t in found] == ["line 9", "line 10"]
    assert "loss.backward()" in found[0] and "model.compile" in found[1]
    f.write_text("import torch\ndef pde(x, u):\n    return u\nnet.train(False)\n")
    assert training_calls(f) == []


def test_training_script_checks_with_definitions_only() -> None:
    r = verify("heat_training_script.py:pde", base_dir=SAMPLES, definitions_only=True, **HEAT)  # type: ignore[arg-type]
    assert r.status == "pass"


def test_plain_import_of_a_training_script_suggests_definitions_only() -> None:
    r = run_cli("verify", str(SAMPLES / "heat_training_script.py") + ":pde", *HEAT_ARGS)
    assert r.exit_code == ExitCode.USAGE
    assert (
        "--definitions-only" in r.stderr and "line 55: model.train(iterations=EPOCHS)" in r.stderr
    )
    assert "trains at import" in r.stderr


def test_a_skipped_name_is_named_in_the_error(tmp_path: Path) -> None:
    f = tmp_path / "script.py"
    f.write_text(
        "import torch\n"
        "NU = torch.tensor(0.1)\n"
        "def pde(x, u):\n"
        "    g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]\n"
        "    return g[:, 1:2] - NU * g[:, 0:1]\n"
        "residual = staticmethod(pde)\n"
    )
    with pytest.raises(UserCodeError) as err:
        verify(f"{f}:pde", definitions_only=True, **HEAT)  # type: ignore[arg-type]
    text = str(err.value)
    assert "NameError" in text and "line 2: NU = torch.tensor(0.1)" in text
    assert "--definitions-only left out" in text
    with pytest.raises(UserCodeError) as err:
        verify(f"{f}:residual", definitions_only=True, **HEAT)  # type: ignore[arg-type]
    assert "line 6: residual = staticmethod(pde)" in str(err.value)


def test_a_slow_import_suggests_definitions_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "slowmod.py"
    f.write_text((SAMPLES / "heat_correct.py").read_text())
    monkeypatch.setattr(_usercode, "SLOW_IMPORT_S", 0.0)
    r = verify(f"{f}:residual", **HEAT)  # type: ignore[arg-type]
    assert r.status == "pass"
    assert any("took" in w and "--definitions-only" in w for w in r.warnings)


# Calling conventions -----------------------------------------------------------------------


def test_split_inputs_and_model_conventions_pass_and_catch_bugs() -> None:
    for target in ("heat_split_inputs.py:residual", "heat_model_residual.py:residual"):
        assert verify(target, base_dir=SAMPLES, **HEAT).status == "pass"  # type: ignore[arg-type]

    def swapped(x: torch.Tensor, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        u_x = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
        u_tt = torch.autograd.grad(
            torch.autograd.grad(u, t, torch.ones_like(u), create_graph=True)[0],
            t,
            torch.ones_like(u),
            create_graph=True,
        )[0]
        assert x.shape == (x.shape[0], 1) and x.requires_grad
        return u_x - 0.1 * u_tt

    r = verify(swapped, **HEAT)  # type: ignore[arg-type]
    assert r.status == "fail"


def test_split_unknowns_for_a_system() -> None:
    def system(x: torch.Tensor, t: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> list:
        def d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.autograd.grad(a, b, torch.ones_like(a), create_graph=True)[0]

        return [d(u, t) - d(v, x), d(v, t) - d(u, x)]

    r = verify(
        system,
        ["u_t - v_x", "v_t - u_x"],
        ["u = sin(x - t) + x*t", "v = sin(x - t) + x**2"],
        ["x=0:1", "t=0:1"],
    )
    assert r.status == "pass"
    assert all(e.stats.max_abs_error < 1e-12 < e.stats.max_abs_exact for e in r.equations)


def test_a_signature_that_fits_no_convention_is_refused_with_the_forms(tmp_path: Path) -> None:
    f = tmp_path / "bad.py"
    f.write_text("def residual(a, b, c, d, e):\n    return a\n")
    r = run_cli("verify", f"{f}:residual", *HEAT_ARGS)
    assert r.exit_code == ExitCode.USAGE and "Traceback" not in r.stderr
    flat = " ".join(r.stderr.split())
    for form in ("residual(a, b, c, d, e)", "f(x, u)", "f(x, t, u)", "f(model, x)"):
        assert form in flat
    r = run_cli("verify", f"{f}:residual", *HEAT_ARGS, "--convention", "diagonal")
    assert r.exit_code == ExitCode.USAGE and "Unknown calling convention" in r.stderr


def test_forced_convention_is_checked_against_the_signature() -> None:
    def two(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return u

    with pytest.raises(UserCodeError, match="'split' calling convention"):
        verify(two, **HEAT, convention="split")  # type: ignore[arg-type]
    with pytest.raises(OptionError):
        verify(two, **HEAT, convention="nope")  # type: ignore[arg-type]


def test_messages_do_not_run_sentences_together() -> None:
    assert sentences("a grad_fn", "Hint: b.") == "a grad_fn. Hint: b."
    assert sentences("ends.", "", "next") == "ends. next"

    def flat(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        g = torch.autograd.grad(u, x, torch.ones_like(u))[0]
        return torch.autograd.grad(g[:, 0:1], x, torch.ones_like(u))[0][:, 0:1]

    with pytest.raises(UserCodeError) as err:
        verify(flat, **HEAT)  # type: ignore[arg-type]
    assert "grad_fn. Hint:" in str(err.value)


# probe: several inputs, factories with arguments, weights ---------------------------------


def test_probe_two_input_forward_and_factory_args_from_the_cli() -> None:
    assert _probe_cli("TwoInputMLP").exit_code == ExitCode.OK
    r = _probe_cli("make_mlp", "--arg", "width=8", "--arg", "depth=2", "--arg", 'activation="sin"')
    assert r.exit_code == ExitCode.OK, r.stderr
    r = _probe_cli("Sized")
    assert r.exit_code == ExitCode.USAGE
    assert "--arg width=VALUE --arg depth=VALUE" in r.stderr
    assert _probe_cli("Sized", "--arg", "width=4", "--arg", "depth=1").exit_code == ExitCode.OK
    r = _probe_cli("make_mlp", "--arg", "w=3")
    assert r.exit_code == ExitCode.USAGE and "does not accept" in r.stderr


def test_probe_refuses_a_forward_that_fits_neither_form() -> None:
    class Three(torch.nn.Module):
        def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            return x

    with pytest.raises(UserCodeError, match=r"forward\(x, t, z\)"):
        probe(Three(), ["x=0:1", "t=0:1"])


def test_parse_args_reads_toml_values_and_refuses_bad_items() -> None:
    assert parse_args(["w=32", "lr=1e-3", "on=true", "act=tanh", "sizes=[1, 2]"]) == {
        "w": 32,
        "lr": 1e-3,
        "on": True,
        "act": "tanh",
        "sizes": [1, 2],
    }
    with pytest.raises(OptionError):
        parse_args(["novalue"])
    with pytest.raises(OptionError):
        parse_args({"not a name": 1})


def _probe_cli(name: str, *extra: str) -> Any:
    return run_cli("probe", f"{SAMPLES / 'models.py'}:{name}", "-d", "x=0:1,t=0:1", *extra)


def test_state_dict_is_loaded_and_mismatches_are_refused(tmp_path: Path) -> None:
    models = _load(SAMPLES / "models.py", "models_for_state_dict")
    trained = models.make_mlp(8, 2)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)
    good = tmp_path / "weights.pt"
    torch.save({"epoch": 3, "model_state_dict": trained.state_dict()}, good)
    target = parse_target(str(SAMPLES / "models.py") + ":make_mlp")
    with _usercode.target_scope(target):
        built = build_model(target, 2, args={"width": 8, "depth": 2}, state_dict=good)
    for a, b in zip(built.model.parameters(), trained.parameters(), strict=True):
        assert torch.equal(a, b)
    bad = tmp_path / "other.pt"
    torch.save(models.make_mlp(4, 2).state_dict(), bad)
    r = _probe_cli("make_mlp", "--arg", "width=8", "--arg", "depth=2", "--state-dict", str(bad))
    assert r.exit_code == ExitCode.USAGE and "do not fit" in r.stderr
    r = _probe_cli("make_mlp", "--arg", "width=8", "--arg", "depth=2", "--state-dict", str(good))
    assert r.exit_code == ExitCode.OK, r.stderr
    r = _probe_cli("TwoInputMLP", "--state-dict", str(tmp_path / "missing.pt"))
    assert r.exit_code == ExitCode.USAGE and "does not exist" in r.stderr


# Gradient flow ------------------------------------------------------------------------------

BURGERS = dict(
    pde="u_t + u*u_x - 0.01*u_xx",
    solution="u = sin(2*x + 1)*exp(-t) + x**3*t",
    domain=["x = 0:1", "t = 0:1"],
)


def _d(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]


def _burgers(advecting: Any) -> Any:
    def residual(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        g = _d(u, x)
        return g[:, 1:2] + advecting(u, g[:, 0:1]) - 0.01 * _d(g[:, 0:1], x)[:, 0:1]

    return residual


def _no_grad_product(u: torch.Tensor, u_x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return u * u_x


@pytest.mark.parametrize(
    ("name", "advecting", "named"),
    [
        ("detach", lambda u, u_x: u.detach() * u_x, "dependence on u (in the term u*u_x)"),
        ("data", lambda u, u_x: u.data * u_x, "dependence on u (in the term u*u_x)"),
        (
            "constant from u",
            lambda u, u_x: torch.tensor(u.tolist(), dtype=u.dtype) * u_x,
            "dependence on u (in the term u*u_x)",
        ),
        ("no_grad", _no_grad_product, "dependence on u, u_x"),
    ],
)
def test_a_term_cut_off_the_graph_fails_with_a_gradient_diagnosis(
    name: str, advecting: Any, named: str
) -> None:
    r = verify(_burgers(advecting), **BURGERS)
    eq = r.equations[0]
    assert eq.stats.max_abs_error < 1e-12  # the values are right
    assert r.status == "fail" and eq.gradient == "fail", name
    text = " ".join(r.diagnosis)
    assert "values are right but its gradient" in text and named in text, text


def test_item_of_a_coefficient_built_from_u_fails_too() -> None:
    def residual(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        g = _d(u, x)
        scale = (u / u).mean().item()  # 1.0, but a float: the path through u is cut
        return g[:, 1:2] + scale * u * g[:, 0:1] - 0.01 * _d(g[:, 0:1], x)[:, 0:1]

    # (u/u).mean() is 1 and its own gradient is 0: this one is harmless, and passes.
    assert verify(residual, **BURGERS).status == "pass"

    def bad(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        g = _d(u, x)
        ux = torch.tensor([[v] for v in g[:, 0].tolist()], dtype=u.dtype)  # .item() per point
        return g[:, 1:2] + u * ux - 0.01 * _d(g[:, 0:1], x)[:, 0:1]

    r = verify(bad, **BURGERS)
    assert r.status == "fail" and "dependence on u_x" in " ".join(r.diagnosis)


def test_correct_residuals_pass_the_gradient_check_in_every_convention() -> None:
    r = verify(_burgers(lambda u, u_x: u * u_x), **BURGERS)
    assert r.status == "pass" and r.equations[0].gradient == "pass"
    for target in ("heat_split_inputs.py:residual", "heat_model_residual.py:residual"):
        r = verify(target, base_dir=SAMPLES, **HEAT)
        assert r.equations[0].gradient == "pass"
    f32 = verify(_burgers(lambda u, u_x: u * u_x), **BURGERS, dtype="float32")
    assert f32.status == "pass" and f32.equations[0].gradient == "pass"
    assert r.to_dict()["equations"][0]["gradient"] == "pass"


def test_a_broadcast_result_is_named_and_the_chunk_size_does_not_hide_it(tmp_path: Path) -> None:
    f = tmp_path / "bcast.py"
    f.write_text(
        "import torch\n"
        "def residual(x, u):\n"
        "    g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]\n"
        "    return g[:, 1] - 0.1 * u\n"
    )
    for chunk in ("1", "2", "1000"):
        r = run_cli(
            "verify", f"{f}:residual", "--pde", "u_t - 0.1*u", "-s", "u = sin(x)*t",
            "-d", "x=0:1", "-d", "t=0:1", "--chunk-size", chunk,
        )  # fmt: skip
        assert r.exit_code == ExitCode.USAGE, (chunk, r.stdout)
        assert "broadcasts to (n, n)" in " ".join(r.stderr.split())


# Diagnoses that point the right way ---------------------------------------------------------


def test_a_wrong_output_column_is_named_as_an_output_column() -> None:
    def kovasznay_like(x: torch.Tensor, uv: torch.Tensor) -> list:
        u, v = uv[:, 0:1], uv[:, 1:2]
        gu, gv = _d(u, x), _d(v, x)
        # second equation: u_yy where the PDE has v_yy (component 0 where 1 was meant)
        return [gu[:, 0:1] + gv[:, 1:2], v - 0.05 * _d(gu[:, 1:2], x)[:, 1:2]]

    r = verify(
        kovasznay_like,
        ["u_x + v_y", "v - 0.05*v_yy"],
        ["u = sin(2*x + 1)*exp(-y) + x**3*y", "v = cos(x + 2*y) + x*y**3"],
        ["x=0:1", "y=0:1"],
    )
    assert [e.status for e in r.equations] == ["pass", "fail"]
    text = " ".join(r.diagnosis)
    assert "where the PDE has v (output column 1), your code uses u (output column 0)" in text
    assert "which column you differentiate" not in text


def test_a_wrong_source_term_is_named() -> None:
    def residual(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        g = _d(u, x)
        source = torch.sin(3 * x[:, 0:1]) * x[:, 1:2]  # the PDE's is exp(x)*t
        return g[:, 1:2] - 0.1 * _d(g[:, 0:1], x)[:, 0:1] - source

    r = verify(residual, "u_t - 0.1*u_xx - exp(x)*t", HEAT["solution"], HEAT["domain"])
    text = " ".join(r.diagnosis)
    assert r.status == "fail"
    assert "differs from the expected one by a function of x, t only" in text
    assert "source (forcing) term" in text and "no combination" not in text

    def other(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:  # a u-dependent bug instead
        g = _d(u, x)
        return g[:, 1:2] - 0.1 * _d(g[:, 0:1], x)[:, 0:1] - torch.exp(x[:, 0:1]) * x[:, 1:2] + u**3

    text = " ".join(
        verify(other, "u_t - 0.1*u_xx - exp(x)*t", HEAT["solution"], HEAT["domain"]).diagnosis
    )
    assert "source (forcing) term" not in text
