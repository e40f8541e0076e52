"""Worker processes: user code isolated per entry, ``run -j N``, and children that die with us.

pinncheck runs the user's code (``[[verify]]`` and ``[[probe]]`` entries of ``pinncheck run``)
in worker processes, one fresh process per entry, so that whatever that code does to the
interpreter (monkeypatching ``torch.autograd.grad``, ``sys.setrecursionlimit``, torch's global
settings, ``os._exit``, a segfault, a hang) stays inside its entry. ``pinncheck run -j N`` runs
any entry in up to N workers at once with the same machinery.

How a worker starts: a *template* process (multiprocessing's fork server) is started once, by
spawning a fresh interpreter that imports torch, SymPy and pinncheck's modules and runs nothing
else, so it holds no torch thread pool; it dies with pinncheck (:mod:`pinncheck._template`).
Every worker is forked from that template: it starts in milliseconds instead of paying the ~2 s
imports, and never inherits the state of the process that ran earlier entries. A worker:

- puts itself in its own process group (so that killing it on a timeout also kills the
  processes the user's code started), and on Linux asks the kernel to kill it when its parent
  dies (``PR_SET_PDEATHSIG``); the template dies when pinncheck does, so workers do too;
- sends what is written to its file descriptors 1 and 2 to an anonymous temporary file (no
  name on disk, so nothing is left behind whatever happens), which pinncheck copies to its own
  stderr when the entry is reported: nothing but pinncheck's document reaches stdout, and the
  output of parallel entries is not interleaved;
- sends its result back pickled; an exception, a crash or a timeout becomes a
  :class:`Outcome` with a clear message instead.

The Python API: :func:`run_task` runs one call in a worker; :func:`run_tasks` runs many, at most
``jobs`` at once, and yields their outcomes in order. :func:`user_output_to_stderr` is the
file-descriptor-level redirection used around user code in the main process (``pinncheck
verify`` and ``probe`` run in-process), and :func:`deadline` ends such a command after a timeout.
:func:`install_signal_handlers` makes SIGTERM kill every child and exit with
:data:`SIGTERM_EXIT` (143 = 128 + 15); SIGINT exits with 130 (the CLI's KeyboardInterrupt path).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import reduction
from typing import Any

from ._errors import ExitCode

DEFAULT_TIMEOUT = 600.0
"""Seconds a user-code entry of ``pinncheck run`` (or ``verify``/``probe``) may take."""
SIGTERM_EXIT = 128 + signal.SIGTERM
"""Exit status after SIGTERM: 143, the shell's convention for a process ended by signal 15."""
SIGINT_EXIT = 128 + signal.SIGINT
"""Exit status after SIGINT (Ctrl-C): 130."""
# What a worker's output may add to pinncheck's stderr, per entry.
OUTPUT_LIMIT = 1 << 20
# Modules the template imports once, so that workers start without importing anything.
PRELOAD = [
    "pinncheck._template",  # first: the template dies with pinncheck
    "torch",
    "sympy",
    "pinncheck._check",
    "pinncheck._residual",
    "pinncheck._verify",
    "pinncheck._probe",
    "pinncheck._checkfile",
    "pinncheck.cli",
]

# Live children: pid -> whether it leads its own process group. Killed on SIGTERM and at exit.
_CHILDREN: dict[int, bool] = {}
_LIBC: Any = None
_PR_SET_PDEATHSIG = 1


# Children die with their parent ------------------------------------------------------------


def register_child(pid: int, group: bool = False) -> None:
    """Track a child process so that SIGTERM (and exit) of this process kills it."""
    _CHILDREN[pid] = group


def unregister_child(pid: int) -> None:
    _CHILDREN.pop(pid, None)


def kill_child(pid: int, group: bool) -> None:
    """SIGKILL a child (and its process group when it leads one); gone children are ignored."""
    kill = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL
    if group and hasattr(os, "killpg"):
        with contextlib.suppress(OSError):
            os.killpg(pid, kill)
    with contextlib.suppress(OSError):
        os.kill(pid, kill)


def kill_children() -> None:
    """SIGKILL every tracked child (see :func:`register_child`)."""
    for pid, group in list(_CHILDREN.items()):
        kill_child(pid, group)
    _CHILDREN.clear()


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)  # this process's symbols, libc's included
    return _LIBC


def die_with_parent(parent_pid: int) -> None:
    """In a child: be killed when the parent dies, and exit now if it already has.

    On Linux this is ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; the ``getppid()`` check right after
    closes the race where the parent died before the call. Elsewhere a daemon thread polls the
    parent once a second.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            _libc().prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent_pid:
            os._exit(SIGTERM_EXIT)
        return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(SIGTERM_EXIT)

    if os.getppid() != parent_pid:
        os._exit(SIGTERM_EXIT)
    threading.Thread(target=watch, name="pinncheck-parent-watch", daemon=True).start()


def child_setup(parent_pid: int) -> None:
    """Start of a forked child: die with the parent, forget the parent's children and signal
    handlers, and keep file descriptor 1 (the parent's stdout) out of reach."""
    die_with_parent(parent_pid)
    _CHILDREN.clear()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(OSError):
        os.dup2(2, 1)


def on_sigterm(signum: int, frame: Any) -> None:
    """The SIGTERM handler: kill every tracked child, then exit with :data:`SIGTERM_EXIT`."""
    kill_children()
    with contextlib.suppress(Exception):
        os.write(2, b"pinncheck: terminated (SIGTERM); child processes stopped.\n")
    os._exit(SIGTERM_EXIT)


def install_signal_handlers() -> None:
    """Make SIGTERM kill every child process and exit with :data:`SIGTERM_EXIT` (143).

    Only from the main thread (a no-op elsewhere). SIGINT keeps Python's KeyboardInterrupt,
    which the CLI turns into exit 130 after stopping the workers.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)


# stdout at the file-descriptor level -----------------------------------------------------------


def _flush_all() -> None:
    for stream in (sys.stdout, sys.__stdout__, sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    if sys.platform != "win32":
        with contextlib.suppress(Exception):
            _libc().fflush(None)  # C code's buffered printf


_REAL_STDOUT: list[int] = []  # saved descriptors of the real stdout, outermost first


@contextmanager
def user_output_to_stderr() -> Iterator[None]:
    """Send everything written to stdout while the block runs to stderr, file descriptor 1
    included: ``print``, ``print(file=sys.__stdout__)``, ``os.write(1, ...)``, C code and
    subprocesses (``os.system("echo ...")``).

    pinncheck's own output (the table, or the JSON document) is then the only thing on stdout.
    Pending output is flushed on entry (to stdout) and on exit (to stderr). Nesting is fine.
    """
    _flush_all()
    try:
        saved: int | None = os.dup(1)
    except OSError:  # stdout is closed: keep it closed afterwards
        saved = None
    redirected = True
    try:
        os.dup2(2, 1)
    except OSError:  # no stderr descriptor either: redirect Python's writes only
        redirected = False
    if saved is not None:
        _REAL_STDOUT.append(saved)
    target = sys.stderr if sys.stderr is not None else sys.stdout
    try:
        with contextlib.redirect_stdout(target):
            yield
    finally:
        _flush_all()
        if saved is not None:
            _REAL_STDOUT.remove(saved)
            if redirected:
                os.dup2(saved, 1)
            os.close(saved)
        elif redirected:
            with contextlib.suppress(OSError):
                os.close(1)


def write_real_stdout(text: str) -> None:
    """Write to the real stdout even while :func:`user_output_to_stderr` is active."""
    fd = _REAL_STDOUT[0] if _REAL_STDOUT else 1
    data = text.encode("utf-8")
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(fd, data) :]


@contextmanager
def deadline(seconds: float | None, on_expire: Callable[[], None]) -> Iterator[None]:
    """Call ``on_expire()`` from a watchdog thread if the block runs longer than ``seconds``.

    ``on_expire`` must end the process (``os._exit``): Python cannot stop a running thread.
    ``None`` or a non-positive value means no limit.
    """
    if seconds is None or seconds <= 0:
        yield
        return
    timer = threading.Timer(seconds, on_expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


# Outcomes ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of one task run in a worker.

    ``status`` is ``"ok"`` (``value`` holds the result), ``"error"`` (``error`` holds the
    message, ``details`` the user's traceback if any, ``exit_code`` the documented exit code),
    ``"crash"`` (the worker died without answering) or ``"timeout"``. ``output`` is what the
    worker wrote to its stdout and stderr.
    """

    status: str
    value: Any = None
    error: str | None = None
    details: str | None = None
    exit_code: int = int(ExitCode.OK)
    error_type: str | None = None
    output: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def raise_error(self) -> None:
        """Raise the error as pinncheck's exception (for callers that want one)."""
        from . import _errors

        if self.ok:
            return
        cls = getattr(_errors, self.error_type or "", None)
        if cls is _errors.UserCodeError or cls is None or self.status != "error":
            raise _errors.UserCodeError(self.error or "the worker failed", details=self.details)
        if isinstance(cls, type) and issubclass(cls, _errors.PinncheckError):
            raise cls(self.error or "")
        raise _errors.UserCodeError(self.error or "the worker failed", details=self.details)


def _shorten(text: str, keep: int = 24) -> str:
    # A RecursionError's traceback repeats the same frames hundreds of times.
    lines = text.splitlines()
    if len(lines) <= 2 * keep:
        return text
    cut = len(lines) - 2 * keep
    return "\n".join([*lines[:keep], f"  [... {cut} lines left out ...]", *lines[-keep:]]) + "\n"


def describe_exception(
    exc: BaseException, user_code: bool
) -> tuple[str, str | None, int, str | None]:
    """(message, details, exit code, error class name) for an exception that reached a worker's
    top level (``user_code``: the task ran the user's code)."""
    from ._errors import PinncheckError, UserCodeError
    from ._usercode import exception_text, user_traceback

    if isinstance(exc, UserCodeError):
        return str(exc), exc.details, int(exc.exit_code), "UserCodeError"
    if isinstance(exc, PinncheckError):
        return str(exc), None, int(exc.exit_code), type(exc).__name__
    text = exception_text(exc)
    what = f"{type(exc).__name__}" + (f": {text}" if text else "")
    if user_code:
        # Raised past pinncheck's guards: KeyboardInterrupt/SystemExit from the user's code, or
        # a failure of pinncheck's code in an interpreter the user's code has changed.
        return (
            f"{what} stopped this entry (raised by your code, or by pinncheck's after your "
            "code changed the interpreter); it ran in its own worker process, so no other "
            "entry is affected.",
            _shorten(user_traceback(exc)),
            int(ExitCode.USAGE),
            "UserCodeError",
        )
    return (
        f"internal error: {what}. This is a bug in pinncheck; please report it.",
        "".join(traceback.format_exception(exc)),
        int(ExitCode.INTERNAL),
        None,
    )


# Inside a worker ---------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _worker_main(conn: Any, parent_pid: int, cwd: str, env: dict[str, str]) -> None:
    """A worker's life: set up, then run the tasks that come over ``conn`` until told to stop.

    Each message is ``(fn, args, user_code)``, followed by the descriptor of an anonymous
    temporary file for the task's output (passed over the socket); ``None`` ends the worker.
    A worker that ran user code exits after answering: it is never given another task.
    """
    with contextlib.suppress(OSError, AttributeError):  # (no process groups on Windows)
        os.setpgid(0, 0)
    # Our parent is the template process, which dies with pinncheck (parent_pid).
    die_with_parent(os.getppid())
    if not _alive(parent_pid):
        os._exit(SIGTERM_EXIT)
    # The template also exits when its "alive" pipe from pinncheck closes; a worker holding a
    # copy of that pipe's write end would keep it (and so itself) alive.
    with contextlib.suppress(Exception):
        from multiprocessing import forkserver

        alive = forkserver._forkserver._forkserver_alive_fd  # type: ignore[attr-defined]
        if alive is not None:
            os.close(alive)
            forkserver._forkserver._forkserver_alive_fd = None  # type: ignore[attr-defined]
    _CHILDREN.clear()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    os.environ.clear()
    os.environ.update(env)
    with contextlib.suppress(OSError):
        os.chdir(cwd)
    me = os.getpid()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break
        if request is None:
            break
        fn, args, user_code = request
        fd = reduction.recv_handle(conn)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        try:
            message: tuple[Any, ...] = ("ok", fn(*args))
        except BaseException as exc:  # everything stays inside this task
            if os.getpid() != me:
                os._exit(0)  # a fork made by the user's code: never answer for the worker
            message = ("error", *describe_exception(exc, user_code))
        if os.getpid() != me:
            os._exit(0)
        _flush_all()
        try:
            conn.send(message)
        except Exception as exc:  # the result could not be pickled
            conn.send(
                (
                    "error",
                    f"internal error: the worker's result could not be sent back "
                    f"({type(exc).__name__}: {exc}).",
                    None,
                    int(ExitCode.INTERNAL),
                    None,
                )
            )
        _flush_all()
        if user_code:
            break
    conn.close()
    os._exit(0)  # skip interpreter teardown: atexit hooks of the user's code, slow finalizers


# The parent side ----------------------------------------------------------------------------------

_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        if "forkserver" in mp.get_all_start_methods():
            ctx: Any = mp.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
        else:  # Windows: a fresh interpreter per worker
            ctx = mp.get_context("spawn")
        _CONTEXT = ctx
    return _CONTEXT


def prestart() -> None:
    """Start the template process now (it imports torch, ~2 s), if the start method has one."""
    ctx = _context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


@dataclass
class Task:
    """One call to run in a worker: ``fn(*args)``; ``fn`` and ``args`` must pickle.

    ``timeout`` (seconds, None for none) ends it as a ``"timeout"`` outcome; ``user_code`` says
    whether it runs the user's code (an unexpected exception then counts as the user's, exit 2,
    rather than as a bug in pinncheck, exit 3); ``label`` names it in messages.
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    timeout: float | None = DEFAULT_TIMEOUT
    user_code: bool = True
    label: str = "the task"


class _Worker:
    """A worker process and the pipe to it (see :func:`_worker_main`)."""

    def __init__(self) -> None:
        ctx = _context()
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(
            target=_worker_main,
            args=(child, os.getpid(), os.getcwd(), dict(os.environ)),
            # Not a daemon: a worker may start its own child (the residual proof's simplify).
            # pinncheck kills workers itself, after a user-code task and on SIGTERM.
            daemon=False,
            name="pinncheck-worker",
        )
        self.proc.start()
        child.close()
        register_child(self.proc.pid, group=True)

    def kill(self) -> None:
        pid = self.proc.pid
        if pid is not None:
            # Its process group too: processes the user's code started end with it.
            kill_child(pid, True)
            unregister_child(pid)
        self.proc.join(5)
        self.conn.close()

    def close(self) -> None:
        """Ask an idle worker to exit, then make sure it has."""
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.proc.join(1)
        self.kill()


class _Running:
    def __init__(self, task: Task, worker: _Worker) -> None:
        self.task = task
        self.worker = worker
        # An anonymous file (no name on disk, freed when the last descriptor closes, whatever
        # kills whom) for what the task writes; its descriptor goes to the worker.
        self.output = tempfile.TemporaryFile()
        self.started = time.monotonic()
        try:
            worker.conn.send((task.fn, task.args, task.user_code))
            reduction.send_handle(worker.conn, self.output.fileno(), worker.proc.pid)
        except OSError:  # the worker is gone already: finish() reports it as a crash
            pass
        self.deadline = (
            self.started + task.timeout if task.timeout is not None and task.timeout > 0 else None
        )

    def waitables(self) -> list[Any]:
        return [self.worker.conn, self.worker.proc.sentinel]

    def finish(self, timed_out: bool = False) -> tuple[Outcome, _Worker | None]:
        """The outcome, and the worker if it may run another task (else it is stopped)."""
        message: Any = None
        conn, proc = self.worker.conn, self.worker.proc
        if not timed_out:
            with contextlib.suppress(EOFError, OSError):
                if conn.poll(0.5 if not proc.is_alive() else 5.0):
                    message = conn.recv()
        reusable = message is not None and not self.task.user_code
        if not reusable:
            self.worker.kill()
        outcome = self._outcome(message, timed_out)
        outcome.output = self._read_output()
        outcome.seconds = time.monotonic() - self.started
        return outcome, self.worker if reusable else None

    def stop(self) -> None:
        self.worker.kill()
        self.output.close()

    def _outcome(self, message: Any, timed_out: bool) -> Outcome:
        task = self.task
        if timed_out:
            return Outcome(
                "timeout",
                error=f"{task.label} did not finish within {task.timeout:g} s and was stopped "
                "(its worker process was killed). Raise the limit with the entry's timeout = "
                "SECONDS key or --timeout SECONDS if it needs longer.",
                exit_code=int(ExitCode.USAGE),
                error_type="UserCodeError",
            )
        if message is None:
            return Outcome(
                "crash",
                error=f"{task.label} ended its worker process without a result "
                f"({_exit_text(self.worker.proc.exitcode)}): os._exit in your code, a crash in "
                "native code (a segfault), or the operating system killing it (out of memory).",
                exit_code=int(ExitCode.USAGE if task.user_code else ExitCode.INTERNAL),
                error_type="UserCodeError" if task.user_code else None,
            )
        if message[0] == "ok":
            return Outcome("ok", value=message[1])
        _, error, details, code, kind = message
        return Outcome("error", error=error, details=details, exit_code=code, error_type=kind)

    def _read_output(self) -> str:
        try:
            with self.output as f:
                f.seek(0)
                data = f.read(OUTPUT_LIMIT + 1)
                size = os.fstat(f.fileno()).st_size
        except (OSError, ValueError):
            return ""
        text = data[:OUTPUT_LIMIT].decode("utf-8", errors="replace")
        if size > OUTPUT_LIMIT:
            text += f"\n[... {size - OUTPUT_LIMIT} more bytes of output left out]\n"
        return text


def _exit_text(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exit status {code}"


def run_tasks(tasks: Sequence[Task], jobs: int = 1) -> Iterator[Outcome]:
    """Run ``tasks`` in worker processes, at most ``jobs`` at once; yield outcomes in order.

    A task that runs user code gets a fresh worker, which ends with it. Other tasks
    (pinncheck's own checks) share workers that never run user code, so that each worker's
    warm-up (torch's first operations, SymPy's caches) is paid once. Outcomes are yielded in
    the order of ``tasks`` as soon as each one and all before it are done. Stopping the
    iteration early (or an exception, such as KeyboardInterrupt) kills the workers.
    """
    from multiprocessing.connection import wait

    jobs = max(1, int(jobs))
    pending = list(enumerate(tasks))
    pending.reverse()
    running: dict[int, _Running] = {}
    idle: list[_Worker] = []
    done: dict[int, Outcome] = {}
    nxt = 0

    def settle(i: int, timed_out: bool = False) -> None:
        outcome, worker = running.pop(i).finish(timed_out)
        done[i] = outcome
        if worker is not None:
            idle.append(worker)

    try:
        while nxt < len(tasks):
            while pending and len(running) < jobs:
                i, task = pending.pop()
                shared = not task.user_code and idle
                running[i] = _Running(task, idle.pop() if shared else _Worker())
            while nxt in done:
                yield done.pop(nxt)
                nxt += 1
            if nxt >= len(tasks):
                break
            now = time.monotonic()
            expired = [
                i for i, r in running.items() if r.deadline is not None and now >= r.deadline
            ]
            for i in expired:
                settle(i, timed_out=True)
            if expired:
                continue  # slots were freed: fill them before waiting
            deadlines = [r.deadline for r in running.values() if r.deadline is not None]
            wait_for = max(0.0, min(deadlines) - now) if deadlines else None
            ready = wait([w for r in running.values() for w in r.waitables()], wait_for)
            for i, r in list(running.items()):
                if any(w in ready for w in r.waitables()):
                    settle(i)
    finally:
        for r in running.values():
            r.stop()
        for w in idle:
            w.close()


def run_task(
    fn: Callable[..., Any],
    *args: Any,
    timeout: float | None = DEFAULT_TIMEOUT,
    user_code: bool = True,
    label: str = "the task",
) -> Outcome:
    """Run ``fn(*args)`` in a fresh worker process and return its :class:`Outcome`.

    Example:
        >>> run_task(pow, 2, 10).value
        1024
    """
    return next(iter(run_tasks([Task(fn, args, timeout, user_code, label)])))


def relay_output(text: str) -> None:
    """Copy a worker's output to this process's stderr."""
    if not text:
        return
    stream = sys.stderr
    if stream is None:
        return
    with contextlib.suppress(Exception):
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
