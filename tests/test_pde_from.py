"""--pde-from: PDEs as SymPy objects from the user's code, through the allowlist."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sympy

from helpers import run_cli
from pinncheck import ExpressionError, residual
from pinncheck._domain import parse_domain
from pinncheck._errors import OptionError, UserCodeError
from pinncheck._pde import parse_system
from pinncheck._pde_from import load_equations, object_system, parse_pde_args

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CATALOGUE = SAMPLES / "sympy_pdes" / "catalogue.py"


def module(tmp_path: Path, body: str, name: str = "pdes.py") -> Path:
    path = tmp_path / name
    path.write_text("from sympy import *\n" + textwrap.dedent(body))
    return path


def test_objects_and_text_give_the_same_system() -> None:
    dom = parse_domain(["x=0:1", "y=0:1", "t=0:1"])
    sols = ["T=x*y*t", "T_x=y*t", "T_y=x*t"]
    objects = load_equations(f"{CATALOGUE}:DiffusionMixed", {"D": 0.1})
    from_objects = object_system(objects, sols, dom)
    from_text = parse_system(
        ["T_t - (diff(T_x, x) + diff(T_y, y))/10", "T_x - diff(T, x)", "T_y - diff(T, y)"],
        sols,
        dom,
    )
    assert from_objects.residuals == from_text.residuals
    assert from_objects.terms == from_text.terms
    assert [e.split(":")[0] for e in from_objects.equations] == [
        "diffusion",
        "compatibility_x",
        "compatibility_y",
    ]
    assert "T_x - dT/dx" in from_objects.equations[1]


@pytest.mark.parametrize(
    "body, target, args",
    [
        ("u = Function('u')(x, t)\npde = u.diff(t) - u.diff(x, 2)\n", "pde", {}),
        ("u = Function('u')(x, t)\npde = [u.diff(t) - u.diff(x, 2)]\n", "pde", {}),
        ("u = Function('u')(x, t)\npde = {'heat': Eq(u.diff(t), u.diff(x, 2))}\n", "pde", {}),
        (
            "class Heat:\n"
            "    def __init__(self, k=2):\n"
            "        u = Function('u')(x, t)\n"
            "        self.equations = {'heat': u.diff(t) - Integer(k) * u.diff(x, 2) / 2}\n",
            "Heat",
            {"k": "2"},
        ),
        (
            "def make():\n    u = Function('u')(x, t)\n    return [u.diff(t) - u.diff(x, 2)]\n",
            "make",
            {},
        ),
        (
            "class Holder:\n    pass\nheat = Holder()\nu = Function('u')(x, t)\n"
            "heat.equations = {'heat': u.diff(t) - u.diff(x, 2)}\n",
            "heat",
            {},
        ),
    ],
)
def test_every_accepted_form_checks_the_heat_equation(
    tmp_path: Path, body: str, target: str, args: dict[str, str]
) -> None:
    path = module(tmp_path, "x, t = symbols('x t')\n" + body)
    kwargs = [f"{k}={v}" for k, v in args.items()]
    statuses = [
        residual(
            None,
            [solution],
            ["x=0:1", "t=0:1"],
            pde_from=f"{path}:{target}",
            pde_args=kwargs,
            n=100,
            symbolic_timeout=1,
        ).status
        for solution in ("u=exp(-t)*sin(x)", "u=exp(-2*t)*sin(x)")  # a solution, and not one
    ]
    assert statuses == ["pass", "fail"]


@pytest.mark.parametrize(
    "expr, needle",
    [
        ("Integral(u, x)", "Integral"),
        ("u*I", "ImaginaryUnit"),
        ("Piecewise((u, x > 0), (0, True))", "Piecewise"),
        ("u + Dummy('k')", "Dummy"),
        ("u + oo", "Infinity"),
        ("u + zoo", "ComplexInfinity"),
        ("[u, 'u']", "builtins.str"),
        ("u + Sub('k')", "Sub"),
        ("besselj(0, u)", "besselj"),
    ],
)
def test_nodes_outside_the_allowlist_are_refused_by_name(
    tmp_path: Path, expr: str, needle: str
) -> None:
    path = module(
        tmp_path,
        f"""
        class Sub(Symbol):
            pass
        x, t = symbols('x t')
        u = Function('u')(x, t)
        pde = {expr}
        """,
    )
    with pytest.raises(ExpressionError) as info:
        residual(None, ["u=x"], ["x=0:1", "t=0:1"], pde_from=f"{path}:pde", n=10)
    message = str(info.value)
    assert needle in message and "does not accept" in message


def test_cli_refuses_a_node_with_exit_2(tmp_path: Path) -> None:
    path = module(tmp_path, "x = Symbol('x')\npde = Integral(Function('u')(x), x)\n")
    result = run_cli(
        "residual", "--pde-from", f"{path}:pde", "-s", "u=x", "-d", "x=0:1", "-f", "json"
    )
    assert result.exit_code == 2
    assert "Integral" in result.json()["error"]


@pytest.mark.parametrize(
    "body, solution, param, needle",
    [
        ("pde = Function('u')(x).diff(x) - Symbol('k')", ["u=x"], None, "--param k=VALUE"),
        ("pde = Function('u')(x).diff(x)", ["u=x", "v=x"], None, "names no unknown"),
        ("pde = Function('u')(x) + Function('v')(x)", ["u=x"], None, "add --solution v=EXPR"),
        ("pde = Function('u')(x**2)", ["u=x"], None, "arguments must be plain symbols"),
        ("pde = Function('u')(y)", ["u=x"], None, "add -d y=LO:HI"),
        ("pde = Function('u')(x) + Function('u')(x, x)", ["u=x"], None, "one list of variables"),
        ("pde = Symbol(\"__import__('os')\") + Function('u')(x)", ["u=x"], None, "neither"),
        ("pde = Function('lambda')(x)", ["lambda=x"], None, "keyword"),
        ("pde = Function('u')(x)**5000", ["u=x"], None, "exponent is too large"),
        (
            "pde = Function('u')(x) + Pow(Integer(10), 999, evaluate=False)",
            ["u=x"],
            None,
            "more than 1200 bits",
        ),
        (
            "pde = Add(Function('u')(x), Pow(Integer(10), 999, evaluate=False), evaluate=False)",
            ["u=x"],
            None,
            "a power of numbers would have more than 1200 bits",
        ),
        ("pde = Integer(42)", ["u=x"], None, "contains no unknown"),
        ("pde = 42", ["u=x"], None, "is int, not a PDE"),
        ("pde = []", ["u=x"], None, "holds no equations"),
        ("pde = {1: Function('u')(x)}", ["u=x"], None, "not text"),
        ("pde = 'u_x'", ["u=x"], None, "not a PDE"),
    ],
)
def test_bad_objects_get_clear_errors(
    tmp_path: Path, body: str, solution: list[str], param: list[str] | None, needle: str
) -> None:
    path = module(tmp_path, "x, y = symbols('x y')\n" + body + "\n")
    with pytest.raises(ExpressionError) as info:
        residual(None, solution, ["x=0:1"], param=param, pde_from=f"{path}:pde", n=10)
    assert needle in str(info.value)


def test_a_free_symbol_with_a_param_is_a_parameter(tmp_path: Path) -> None:
    body = "x, k = symbols('x k')\nu = Function('u')(x)\npde = u.diff(x) - k*u\n"
    path = module(tmp_path, body)
    r = residual(None, ["u=exp(3*x)"], ["x=0:1"], param=["k=3"], pde_from=f"{path}:pde", n=50)
    assert r.status == "pass"


def test_a_failing_constructor_is_the_users_error(tmp_path: Path) -> None:
    path = module(tmp_path, "class Bad:\n    def __init__(self):\n        raise ValueError('no')\n")
    with pytest.raises(UserCodeError, match="Calling"):
        residual(None, ["u=x"], ["x=0:1"], pde_from=f"{path}:Bad", n=10)


def test_pde_args_are_read_without_evaluation() -> None:
    assert parse_pde_args(["a=1", "b=2.5", "c=true", "d=nu", "e=__import__('os')"]) == {
        "a": 1,
        "b": 2.5,
        "c": True,
        "d": "nu",
        "e": "__import__('os')",
    }
    assert parse_pde_args({"rho": 2}) == {"rho": 2}
    with pytest.raises(ExpressionError, match="KEY=VALUE"):
        parse_pde_args(["novalue"])
    with pytest.raises(ExpressionError, match="twice"):
        parse_pde_args(["a=1", "a=2"])


def test_pde_and_pde_from_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="not both"):
        residual("u_x", ["u=x"], ["x=0:1"], pde_from=f"{CATALOGUE}:burgers")
    with pytest.raises(OptionError, match="only used with --pde-from"):
        residual("u_x", ["u=x"], ["x=0:1"], pde_args=["a=1"])
    with pytest.raises(OptionError, match="No PDE given"):
        residual(None, ["u=x"], ["x=0:1"])
    result = run_cli("residual", "-s", "u=x", "-d", "x=0:1")
    assert result.exit_code == 2 and "No PDE given" in result.stderr


def test_no_string_reaches_sympify(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    sympify_module = sys.modules["sympy.core.sympify"]
    real = sympify_module.sympify

    def guarded(a, *args, **kwargs):  # type: ignore[no-untyped-def]
        assert not isinstance(a, str), f"a string reached sympify: {a!r}"
        return real(a, *args, **kwargs)

    monkeypatch.setattr(sympify_module, "sympify", guarded)
    monkeypatch.setattr(sympy, "sympify", guarded)
    objects = load_equations(f"{CATALOGUE}:LinearElasticityPlaneStress")
    system = object_system(
        objects,
        ["u=x*y", "v=x", "sigma_xx=x", "sigma_yy=y", "sigma_xy=x*y"],
        parse_domain(["x=0:1", "y=0:1"]),
        ["E=200", "nu=0.3"],
    )
    assert len(system.residuals) == 5
    assert any("parameter E shadows" in w for w in system.warnings)


def test_cli_pde_from_with_pde_args_and_json() -> None:
    result = run_cli(
        "residual",
        "--pde-from",
        f"{CATALOGUE}:DiffusionMixed",
        "--pde-arg",
        "D=0.1",
        "-s",
        "T=exp(-0.2*t)*sin(x)*sin(y)",
        "-s",
        "T_x=exp(-0.2*t)*cos(x)*sin(y)",
        "-s",
        "T_y=exp(-0.2*t)*sin(x)*cos(y)",
        "-d",
        "x=0:1,y=0:1,t=0:1",
        "-n",
        "100",
        "-f",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["pdes"][0].startswith("diffusion: ")
    assert all(e["symbolic"] == "proved" for e in doc["equations"])


def test_verify_accepts_pde_from(tmp_path: Path) -> None:
    code = tmp_path / "resid.py"
    code.write_text(
        "import torch\n"
        "def heat(x, u):\n"
        "    g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]\n"
        "    u_x, u_t = g[:, 0:1], g[:, 1:2]\n"
        "    u_xx = torch.autograd.grad(u_x, x, torch.ones_like(u_x), create_graph=True)[0]\n"
        "    return u_t - u_xx[:, 0:1]\n"
    )
    pdes = module(
        tmp_path, "x, t = symbols('x t')\nu = Function('u')(x, t)\npde = u.diff(t) - u.diff(x, 2)\n"
    )
    from pinncheck import verify

    report = verify(
        f"{code}:heat",
        None,
        ["u=sin(x)*exp(t)*x"],
        ["x=0:1", "t=0:1"],
        pde_from=f"{pdes}:pde",
        n=100,
    )
    assert report.status == "pass"


def test_check_file_keys(tmp_path: Path) -> None:
    from pinncheck._checkfile import load_file
    from pinncheck._errors import CheckFileError

    (tmp_path / "c.toml").write_text(
        f'[[residual]]\nname = "a"\npde_from = "{CATALOGUE}:burgers"\npde_args = {{ k = 1 }}\n'
        'solution = "u = x"\nparam = ["nu = 1"]\ndomain = "x=0:1, t=0:1"\n'
    )
    with pytest.raises(CheckFileError, match="not a class or function"):
        load_file(tmp_path / "c.toml")
