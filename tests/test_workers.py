"""Worker processes: user code isolated per entry, timeouts, stdout at the fd level, -j N, and
child processes that die with pinncheck (issue 13's processes and isolation, issue 10's -j)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli
from pinncheck import _workers
from pinncheck._workers import Task, run_task, run_tasks, user_output_to_stderr

ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")


# Functions run in workers (module level: they must pickle) -----------------------------------


def _exit_hard() -> None:
    os._exit(7)


def _segfault() -> None:
    import ctypes

    ctypes.string_at(0)


def _raise(kind: str) -> None:
    if kind == "keyboard":
        raise KeyboardInterrupt
    if kind == "exit":
        raise SystemExit(4)
    if kind == "memory":
        raise MemoryError
    if kind == "recursion":
        sys.setrecursionlimit(60)

        def deep(k: int) -> int:
            return deep(k + 1) if k < 1000 else k

        deep(0)


def _sleep_then(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def _write_everywhere() -> int:
    os.write(1, b"fd-one\n")
    print("dunder-stdout", file=sys.__stdout__)
    os.system("echo from-a-shell")
    return 5


# The worker API -----------------------------------------------------------------------------


def test_run_task_returns_the_value_from_another_process() -> None:
    outcome = run_task(os.getpid)
    assert outcome.ok and outcome.value != os.getpid()
    assert run_task(pow, 2, 10).value == 1024


@pytest.mark.parametrize(
    ("fn", "args", "words"),
    [
        (_exit_hard, (), "exit status 7"),
        (_segfault, (), "SIGSEGV"),
        (_raise, ("keyboard",), "KeyboardInterrupt"),
        (_raise, ("exit",), "SystemExit"),
        (_raise, ("memory",), "MemoryError"),
        (_raise, ("recursion",), "RecursionError"),
    ],
)
def test_a_crash_or_escape_in_user_code_is_the_tasks_error_exit_2(
    fn: Any, args: tuple[Any, ...], words: str
) -> None:
    outcome = run_task(fn, *args, label="verify 'x'")
    assert not outcome.ok
    assert words in (outcome.error or "") + (outcome.details or "")
    assert outcome.exit_code == 2
    with pytest.raises(Exception, match=words.split()[0]):
        outcome.raise_error()


def test_a_failure_outside_user_code_is_an_internal_error() -> None:
    outcome = run_task(_raise, "keyboard", user_code=False)
    assert outcome.exit_code == 3 and "internal error" in (outcome.error or "")


def test_a_task_past_its_timeout_is_stopped() -> None:
    t0 = time.monotonic()
    outcome = run_task(_sleep_then, 60, 1, timeout=0.5, label="probe 'slow'")
    assert outcome.status == "timeout" and time.monotonic() - t0 < 30
    assert "probe 'slow' did not finish within 0.5 s" in (outcome.error or "")
    assert outcome.exit_code == 2


def test_timeout_zero_means_no_limit(tmp_path: Path) -> None:
    code = "def slow(x, u):\n    time.sleep(1.5)\n    return residual(x, u)\n" + RESIDUAL
    path = _suite(tmp_path, code, [("slow", "slow", "pass", "")])
    assert run_cli("run", str(path), "--timeout", "1").exit_code == 2
    assert run_cli("run", str(path), "--timeout", "0").exit_code == 0


def test_outcomes_come_in_order_whatever_finishes_first() -> None:
    tasks = [Task(_sleep_then, (0.6 - 0.2 * i, i)) for i in range(3)]
    t0 = time.monotonic()
    assert [o.value for o in run_tasks(tasks, jobs=3)] == [0, 1, 2]
    assert time.monotonic() - t0 < 30


def test_own_checks_share_a_worker_and_user_code_never_does() -> None:
    own = Task(os.getpid, user_code=False)
    user = Task(os.getpid, user_code=True)
    pids = [o.value for o in run_tasks([own, user, own, user, own], jobs=1)]
    assert pids[0] == pids[2] == pids[4]
    assert len({pids[0], pids[1], pids[3]}) == 3


def test_worker_output_is_captured_not_written_to_stdout(capfd: Any) -> None:
    outcome = run_task(_write_everywhere)
    assert outcome.value == 5
    assert "fd-one" in outcome.output and "dunder-stdout" in outcome.output
    assert "from-a-shell" in outcome.output
    assert "fd-one" not in capfd.readouterr().out


def test_fd_level_redirection_in_process(capfd: Any) -> None:
    print("before", flush=True)
    with user_output_to_stderr():
        os.write(1, b"raw-fd\n")
        print("dunder", file=sys.__stdout__)
        os.system("echo shell")
        print("plain")
    print("after", flush=True)
    captured = capfd.readouterr()
    assert captured.out.split() == ["before", "after"]
    for word in ("raw-fd", "dunder", "shell", "plain"):
        assert word in captured.err


def test_cli_default_timeout_matches_the_library() -> None:
    from pinncheck import cli

    assert cli.DEFAULT_TIMEOUT == _workers.DEFAULT_TIMEOUT


# pinncheck run: isolation per entry -----------------------------------------------------------

VERIFY = """
[[verify]]
name = "{name}"
target = "{target}"
pde = "u_t - u_xx"
solution = "u = sin(x)*exp(-t) + x*t"
domain = ["x = 0:1", "t = 0:1"]
points = 20
expect = "{expect}"
{extra}
"""
CHECK = """
[[check]]
name = "plain-check"
expr = "sin(x1)*exp(x2)"
domain = ["x1 = 0:1", "x2 = 0:1"]
points = 20

[[residual]]
name = "plain-residual"
pde = "u_t - u_xx"
solution = "u = exp(-t)*sin(x)"
domain = ["x = 0:1", "t = 0:1"]
points = 20
"""
RESIDUAL = """
def residual(x, u):
    g = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)[0]
    gx = torch.autograd.grad(g[:, 0:1], x, torch.ones_like(u), create_graph=True)[0]
    return g[:, 1:2] - gx[:, 0:1]
"""


def _suite(tmp_path: Path, code: str, entries: list[tuple[str, str, str, str]]) -> Path:
    (tmp_path / "user.py").write_text("import os, sys, time\nimport torch\n" + code)
    text = "".join(
        VERIFY.format(name=n, target=f"user.py:{fn}", expect=e, extra=x) for n, fn, e, x in entries
    )
    path = tmp_path / "suite.toml"
    path.write_text(text + CHECK)
    return path


def _by_name(stdout: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in json.loads(stdout)["reports"]}


def test_a_monkeypatch_and_recursion_limit_stay_in_their_entry(tmp_path: Path) -> None:
    code = (
        textwrap.dedent(
            """
            def _broken(*args, **kwargs):
                raise RuntimeError("replaced by user code")
            torch.autograd.grad = _broken
            torch.set_flush_denormal(True)
            torch.set_float32_matmul_precision("medium")
            torch.autograd.set_multithreading_enabled(False)
            def patched(x, u):
                return u[:, 0] * 0
            def shallow(x, u):
                sys.setrecursionlimit(60)
                return u[:, 0] * 0
            """
        )
        + RESIDUAL
    )
    path = _suite(
        tmp_path, code, [("patched", "patched", "fail", ""), ("shallow", "shallow", "fail", "")]
    )
    before = _torch_globals()
    result = run_cli("run", str(path), "-f", "json")
    reports = _by_name(result.stdout)
    assert reports["plain-check"]["status"] == "pass"
    assert reports["plain-residual"]["status"] == "pass"
    assert reports["patched"]["met_expectation"]
    # pinncheck's own work in that worker may hit the limit too: then it is the entry's error
    assert reports["shallow"]["status"] in ("fail", "error")
    assert result.exit_code in (0, 2)
    assert _torch_globals() == before


def _torch_globals() -> tuple[Any, ...]:
    import torch

    return (
        torch.get_float32_matmul_precision(),
        torch.autograd.is_multithreading_enabled(),
        sys.getrecursionlimit(),
        torch.autograd.grad.__name__,
    )


def test_torch_settings_do_not_leak_into_the_next_entry(tmp_path: Path) -> None:
    code = (
        textwrap.dedent(
            """
            def changes(x, u):
                torch.set_flush_denormal(True)
                torch.set_float32_matmul_precision("medium")
                torch.autograd.set_multithreading_enabled(False)
                return u[:, 0] * 0
            def sees_defaults(x, u):
                assert torch.get_float32_matmul_precision() == "highest"
                assert torch.autograd.is_multithreading_enabled()
                assert not torch.set_flush_denormal(False) or True
                return residual(x, u)
            """
        )
        + RESIDUAL
    )
    path = _suite(
        tmp_path, code, [("changes", "changes", "fail", ""), ("next", "sees_defaults", "pass", "")]
    )
    result = run_cli("run", str(path), "-f", "json")
    reports = _by_name(result.stdout)
    assert reports["next"]["status"] == "pass", reports["next"].get("error")
    assert result.exit_code == 0


def test_keyboard_interrupt_exit_and_os_exit_fail_their_entry_only(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        def interrupts(x, u):
            raise KeyboardInterrupt
        def exits(x, u):
            raise SystemExit(0)
        def hard_exit(x, u):
            os._exit(0)
        """
    )
    path = _suite(
        tmp_path,
        code,
        [(n, n, "pass", "") for n in ("interrupts", "exits", "hard_exit")],
    )
    result = run_cli("run", str(path), "-f", "json")
    reports = _by_name(result.stdout)
    assert result.exit_code == 2
    assert "KeyboardInterrupt" in reports["interrupts"]["error"]
    assert "SystemExit" in reports["exits"]["error"]
    assert "without a result (exit status 0)" in reports["hard_exit"]["error"]
    assert reports["plain-check"]["status"] == reports["plain-residual"]["status"] == "pass"


def test_a_hanging_entry_times_out_and_the_run_goes_on(tmp_path: Path) -> None:
    code = "def hangs(x, u):\n    time.sleep(120)\n" + RESIDUAL
    path = _suite(
        tmp_path,
        code,
        [
            ("own-limit", "hangs", "pass", "timeout = 1"),
            ("run-limit", "hangs", "pass", ""),
            ("fine", "residual", "pass", ""),
        ],
    )
    t0 = time.monotonic()
    result = run_cli("run", str(path), "-f", "json", "--timeout", "1.5")
    assert time.monotonic() - t0 < 60
    reports = _by_name(result.stdout)
    assert "within 1 s" in reports["own-limit"]["error"]
    assert "within 1.5 s" in reports["run-limit"]["error"]
    assert reports["fine"]["status"] == "pass"
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("-j", "0"), "-j/--jobs must be at least 1"),
        (("--timeout", "-1"), "--timeout must be a number of seconds >= 0"),
    ],
)
def test_bad_jobs_or_timeout_is_a_usage_error(tmp_path: Path, args: tuple[str, ...], words: str):
    path = _suite(tmp_path, RESIDUAL, [])
    result = run_cli("run", str(path), *args)
    assert result.exit_code == 2 and words in result.stderr


def test_a_bad_timeout_key_names_the_entry(tmp_path: Path) -> None:
    path = _suite(tmp_path, RESIDUAL, [("neg", "residual", "pass", "timeout = -3")])
    result = run_cli("run", str(path))
    assert result.exit_code == 2 and "key 'timeout'" in result.stderr


# Real stdout (a subprocess: file descriptor 1 is the pipe we read) ------------------------------


def _pinncheck(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pinncheck", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


NOISY = textwrap.dedent(
    """
    def noisy(x, u):
        os.write(1, b"raw fd one\\n")
        print("via dunder", file=sys.__stdout__)
        os.system("echo from a shell")
        return residual(x, u)
    """
)


def test_user_writes_to_fd_1_never_reach_stdout_in_run(tmp_path: Path) -> None:
    path = _suite(tmp_path, RESIDUAL + NOISY, [("noisy", "noisy", "pass", "")])
    proc = _pinncheck("run", str(path), "-f", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [r["name"] for r in json.loads(proc.stdout)["reports"]][0] == "noisy"
    assert "raw fd one" in proc.stderr and "from a shell" in proc.stderr


def test_user_writes_to_fd_1_never_reach_stdout_in_verify(tmp_path: Path) -> None:
    (tmp_path / "user.py").write_text("import os, sys\nimport torch\n" + RESIDUAL + NOISY)
    args = ["--pde", "u_t - u_xx", "-s", "u=sin(x)*exp(-t)", "-d", "x=0:1", "-d", "t=0:1"]
    proc = _pinncheck("verify", "user.py:noisy", *args, "-n", "20", "-f", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "pass"
    assert "raw fd one" in proc.stderr and "via dunder" in proc.stderr


def test_probe_of_os_fork_prints_one_document(tmp_path: Path) -> None:
    proc = _pinncheck("probe", "os:fork", "-d", "x=0:1", "-f", "json", cwd=tmp_path)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)  # exactly one document: json.loads refuses extra data
    assert doc["status"] == "error"


def test_verify_timeout_ends_the_command(tmp_path: Path) -> None:
    (tmp_path / "user.py").write_text("import time\ndef hangs(x, u):\n    time.sleep(120)\n")
    args = ["--pde", "u_t - u_xx", "-s", "u=sin(x)*exp(-t)", "-d", "x=0:1", "-d", "t=0:1"]
    t0 = time.monotonic()
    proc = _pinncheck(
        "verify", "user.py:hangs", *args, "--timeout", "1", "-f", "json", cwd=tmp_path
    )
    assert time.monotonic() - t0 < 60
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["status"] == "error" and "within 1 s" in doc["error"]


# -j N -------------------------------------------------------------------------------------------


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in ("seconds", "timings")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_jobs_give_the_same_reports_in_the_same_order(tmp_path: Path) -> None:
    swapped = RESIDUAL.replace("def residual", "def swapped").replace("g[:, 1:2]", "g[:, 0:1]")
    path = _suite(
        tmp_path,
        RESIDUAL + swapped,
        [("right", "residual", "pass", ""), ("wrong", "swapped", "fail", "")],
    )
    models = ROOT / "samples" / "user_code" / "models.py"
    with path.open("a") as f:
        f.write(f'\n[[probe]]\nname = "mlp"\ntarget = "{models}:pointwise_mlp"\n')
        f.write('domain = ["x = 0:1", "t = 0:1"]\npoints = 8\n')
    one = run_cli("run", str(path), "-f", "json", "-j", "1")
    two = run_cli("run", str(path), "-f", "json", "-j", "2")
    assert one.exit_code == two.exit_code == 0
    first, second = json.loads(one.stdout)["reports"], json.loads(two.stdout)["reports"]
    assert [r["name"] for r in first] == ["right", "wrong", "plain-check", "plain-residual", "mlp"]
    assert _without_timings(first) == _without_timings(second)


# Children die with pinncheck ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], seconds: float = 10) -> list[int]:
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _wait_for_children(proc: subprocess.Popen[bytes], seconds: float = 120) -> list[int]:
    end = time.monotonic() + seconds
    while time.monotonic() < end and proc.poll() is None:
        found = _children(proc.pid)
        if found:
            return found
        time.sleep(0.2)
    pytest.fail("pinncheck started no child process in time (or ended first)")


SLOW_PROOF = [
    "residual",
    "--pde",
    "u_t - u_xx",
    "-s",
    "u=tanh(5*(x-t))*exp(sin(x*t))/(1+x**2*t) + log(2+cos(x*t**2))",
    "-d",
    "x=0:1",
    "-d",
    "t=0:1",
    "-n",
    "20",
    "--symbolic-timeout",
    "200",
]


@linux_only
def test_sigterm_stops_the_proof_child_and_closes_stdout(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pinncheck", *SLOW_PROOF],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        children = _wait_for_children(proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 143
        assert _wait_gone(children) == []
        assert proc.stdout is not None and proc.stdout.read() == b""  # EOF: nobody holds it
        assert proc.stderr is not None and b"SIGTERM" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


@linux_only
@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGKILL, -9), (signal.SIGTERM, 143), (signal.SIGINT, 130)]
)
def test_a_signal_to_pinncheck_run_ends_all_its_processes(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    path = _suite(tmp_path, "def hangs(x, u):\n    time.sleep(300)\n", [("h", "hangs", "pass", "")])
    proc = subprocess.Popen(
        [sys.executable, "-m", "pinncheck", "run", str(path)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        end = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < end and not workers:
            tree = _descendants(proc.pid)
            # the worker is a grandchild (forked by the template process)
            workers = [p for p in tree if p not in _children(proc.pid)]
            time.sleep(0.2)
        assert workers, "no worker started"
        tree = _descendants(proc.pid)
        proc.send_signal(sig)
        assert proc.wait(30) == code
        assert _wait_gone(tree) == []
    finally:
        proc.kill()
        proc.wait()
