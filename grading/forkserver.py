"""Hand-ins' kernels forked from a process that has imported torch and the course library once.

A kernel that starts as a new Python imports torch, torchvision, matplotlib, ipykernel and
``lib`` before the hand-in's first cell: about 2 s of CPU per hand-in, the same work every
time. While it grades, the grader runs one *fork server* (:func:`serving`, entered by
:func:`grading.autograde.grading_folder`): a process of the grader's own user that imports all
of that once (:data:`PRELOAD`), never runs a hand-in's code, and waits on a Unix socket that
only the grader's user may open. The sandbox kernel's launcher (:func:`grading.sandbox.main`)
asks it for each kernel, handing it its standard streams, environment and arguments:

1. the server checks that it has one thread and forks a *keeper* for the kernel. A fork copies
   only the thread that forks; torch's and OpenBLAS's thread pools start on first use, so the
   server never uses them (OpenBLAS starts its pool when numpy loads: the server is started with
   ``OPENBLAS_NUM_THREADS=1``, which starts none) and refuses to fork once it has a second thread;
2. the keeper does what the launcher does without a server (:func:`grading.sandbox.launch`):
   it forks the kernel, passes on the SIGINT and SIGTERM the launcher forwards, kills the kernel
   if the launcher dies, writes how the kernel ended to the status file and tells the launcher,
   which exits with that status. It is also the kernel's subreaper: what the hand-in left
   running ends with the kernel;
3. the kernel takes the launcher's streams and environment, a session of its own and the
   sandbox (:func:`grading.sandbox.enter`: limits, mount namespace, sandbox user), sets torch's
   threads from ``OMP_NUM_THREADS`` and runs ``python -m ipykernel_launcher ...`` in itself.

Every kernel is a fresh fork of a process that no hand-in ran in, so nothing one hand-in does
reaches the next. Where no server answers, the launcher starts the kernel as a new Python and
says so on standard error.
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from . import sandbox

log = logging.getLogger("grading")

#: What the server imports once and every exercise's set-up cell imports too: a forked
#: kernel's memory limit counts them, as a new Python's does.
PRELOAD = (
    "torch",
    "matplotlib.pyplot",
    "lib.attribution",
    "lib.data",
    "lib.device",
    "lib.frequency",
    "lib.generate",
    "lib.models",
    "lib.optimize",
    "lib.plot",
    "lib.train",
    "ipykernel.kernelapp",
)
#: What it imports once for some kernels (exercise 6) and for the workers: a forked kernel's
#: memory limit is raised by their address space, which a new Python would not have.
EXTRA = ("scipy.stats", "grading.worker")
#: Set in the server only: numpy's OpenBLAS would otherwise start a thread pool as it loads.
SERVER_ENV = {"OPENBLAS_NUM_THREADS": "1"}
_MAX_FDS = 16  # file descriptors one request hands on: the standard streams and a lock
_PR_SET_NAME = 15
#: The interpreter's path as a new ``python -m`` of the kernel would have it (set by main).
_PATH: list[str] = []
#: Bytes of address space that :data:`EXTRA` added to the server (set by main).
_SPARE = [0]


@contextmanager
def serving(
    folder: Path, preload: tuple[str, ...] = PRELOAD, extra: tuple[str, ...] = EXTRA
) -> Iterator[Path | None]:
    """A fork server, for the block, with its socket in ``folder`` (private to this user) and
    ``$XNN_FORK_SERVER`` naming it, for the workers' launchers to inherit; None, with a warning,
    where the socket cannot be made. The socket listens before the server has imported
    anything: the first kernels wait for it, none fails."""
    path = folder / "forkserver.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        listener.bind(str(path))
    except OSError as error:  # e.g. a path longer than a Unix socket's 107 bytes
        listener.close()
        log.warning("no fork server (%s: %s): every kernel starts as a new Python", path, error)
        yield None
        return
    os.chmod(path, 0o600)  # the grader's user only: never a sandbox user
    listener.listen(64)
    env = {**os.environ, **SERVER_ENV}
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # as ipykernel
    # ipykernel reads its parent from JPY_PARENT_PID when imported, as jupyter_client sets it
    # for a kernel (the process that manages it, not the kernel's parent): here the grader.
    env["JPY_PARENT_PID"] = str(os.getpid())
    start = "import sys; from grading.forkserver import main; sys.exit(main(sys.argv[1:]))"
    command = [sys.executable, "-c", start, str(listener.fileno()), str(os.getpid()), *preload]
    command += ["--", *extra]
    server = subprocess.Popen(
        command, env=env, pass_fds=[listener.fileno()], stdin=subprocess.DEVNULL
    )
    listener.close()  # the server's copy only: if it dies, a launcher's connect fails at once
    before = os.environ.get(sandbox.FORK_SERVER_ENV)
    os.environ[sandbox.FORK_SERVER_ENV] = str(path)
    log.info("kernels fork from a server that imports torch and lib once (%s)", path)
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(sandbox.FORK_SERVER_ENV, None)
        else:
            os.environ[sandbox.FORK_SERVER_ENV] = before
        server.terminate()
        server.wait()


def name(title: str) -> None:
    """Name this process in ``ps -o comm`` and ``top``, where every fork shows the server's
    command line: ``xnn-forkserver``, ``xnn-keeper``, ``xnn-kernel``, ``xnn-worker``."""
    sandbox._LIBC.prctl(_PR_SET_NAME, title.encode()[:15], 0, 0, 0)


def threads() -> int:
    """The threads of this process (Linux)."""
    return len(os.listdir("/proc/self/task"))


def serve(listener: socket.socket) -> None:
    """Fork a keeper for every connection, while this process has one thread."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the keepers are reaped by the kernel
    while True:
        conn, _ = listener.accept()
        if threads() != 1:
            refusal = f"the fork server has {threads()} threads; it forks only with one"
            with suppress(OSError), conn:
                # Read the request first: closing a socket with unread data resets it.
                for fd in socket.recv_fds(conn, sandbox.MESSAGE_BYTES, _MAX_FDS)[1]:
                    os.close(fd)
                conn.send(json.dumps({"error": refusal}).encode())
            continue
        if os.fork() == 0:
            listener.close()
            name("xnn-keeper")
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 1
            try:
                code = keep(conn)
            except BaseException:  # noqa: BLE001 -- say it, then leave the fork
                traceback.print_exc()
            os._exit(code)
        conn.close()


def keep(conn: socket.socket) -> int:
    """The keeper of one forked process (2. in the module's docstring)."""
    message, fds, _, _ = socket.recv_fds(conn, sandbox.MESSAGE_BYTES, _MAX_FDS)
    request = json.loads(message)
    spec = sandbox.KernelSpec.read(Path(request["spec"])) if request["spec"] else None
    argv = request["argv"]
    if spec is not None:
        argv = sandbox.private_connection_file(argv, spec, *sandbox.ids(spec))
    try:
        run = runner(argv)
    except ValueError as error:
        conn.send(json.dumps({"error": str(error)}).encode())
        return 0
    sandbox.adopt_orphans()
    pid = os.fork()
    if pid == 0:
        child(conn, dict(zip(request["fds"], fds, strict=True)), request, spec, run)
    for fd in fds:
        os.close(fd)
    conn.send(json.dumps({"pid": pid}).encode())
    watch = selectors.DefaultSelector()
    watch.register(conn, selectors.EVENT_READ)
    watch.register(os.pidfd_open(pid), selectors.EVENT_READ)
    while not any(key.fileobj is not conn for key, _ in watch.select()):
        data = conn.recv(sandbox.MESSAGE_BYTES)
        if data:
            os.kill(pid, json.loads(data)["signal"])
        else:  # the launcher died (killed by jupyter_client or the grader): so does its child
            os.kill(pid, signal.SIGKILL)
            watch.unregister(conn)
    _, status, usage = os.wait4(pid, 0)
    sandbox.kill_descendants()  # what the hand-in left running
    code = sandbox.record_end(spec, status, usage)
    with suppress(OSError):
        conn.send(json.dumps({"status": code}).encode())
    return 0


def runner(argv: list[str]) -> Callable[[], None]:
    """What runs ``argv`` in this interpreter: ``python -m MODULE ...`` or ``python -c CODE
    ...`` of this interpreter; a ValueError for anything else (the launcher then starts it)."""
    python = os.path.realpath(sys.executable)
    if len(argv) < 3 or os.path.realpath(argv[0]) != python or argv[1] not in ("-m", "-c"):
        raise ValueError(f"it runs only `{sys.executable} -m/-c ...`, not {argv[:3]}")
    target, args = argv[2], argv[3:]
    if argv[1] == "-m":

        def run() -> None:
            sys.path.insert(0, os.getcwd())  # as python -m does
            sys.argv = [target, *args]  # runpy puts the module's file first, as python -m
            with warnings.catch_warnings():  # a module the server imported runs anew, as here
                warnings.filterwarnings("ignore", "'.*' found in sys.modules", RuntimeWarning)
                runpy.run_module(target, run_name="__main__", alter_sys=True)

    else:

        def run() -> None:
            sys.path.insert(0, "")  # as python -c does
            sys.argv = ["-c", *args]
            exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102

    return run


def child(conn: socket.socket, fds: dict[int, int], request: dict, spec, run) -> None:
    """In the forked child, a kernel or a worker (3. in the module's docstring): ``fds`` maps
    the launcher's file descriptors to the ones received. Never returns."""
    code = 127
    name("xnn-kernel" if spec is not None else "xnn-worker")
    try:
        os.setsid()  # its own session: no signal to the server's group reaches it, nor back
        for target, fd in fds.items():
            os.dup2(fd, target)
        for fd in set(fds.values()) - set(fds):
            os.close(fd)
        conn.close()
        os.environ.clear()
        os.environ.update(request["env"])
        if spec is not None:  # a kernel: the hand-in need not know where the server listens
            os.environ.pop(sandbox.FORK_SERVER_ENV, None)
            sandbox.enter(spec, *sandbox.ids(spec), spare=_SPARE[0])
        else:
            os.chdir(request["cwd"])
            sandbox.die_with_parent(signal.SIGKILL)  # with its keeper
    except BaseException as error:  # noqa: BLE001 -- report anything, then leave the fork
        sandbox.cannot_start(spec, error)
        os._exit(code)
    try:
        fresh_interpreter()
        run()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (done.code is not None)
        if not isinstance(done.code, int | None):
            print(done.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 -- as Python prints an uncaught exception
        traceback.print_exc()
        code = 1
    with suppress(BaseException):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with suppress(BaseException):
            stream.flush()
    os._exit(code)


def fresh_interpreter() -> None:
    """Make what the server set up at start as a new Python with the kernel's environment
    would have it: the path, the bytecode setting, the temporary folder, signals, threads and
    numpy's global random state (Python's own is reseeded at every fork)."""
    sys.path[:] = _PATH
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    tempfile.tempdir = None
    for sig in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    wanted = os.environ.get("OMP_NUM_THREADS", "")
    if wanted.isdigit() and int(wanted) > 0 and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(wanted))
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


def main(argv: list[str]) -> int:
    """``LISTENING-FD GRADER-PID MODULE... -- EXTRA-MODULE...``, as :func:`serving` starts it."""
    sandbox.die_with_parent(signal.SIGTERM, int(argv[1]))
    name("xnn-forkserver")
    listener = socket.socket(fileno=int(argv[0]))
    _PATH[:] = sys.path[1:]  # without the "" of python -c: the kernel's command puts its own
    split = argv.index("--")
    for module in argv[2:split]:
        importlib.import_module(module)
    before = _address_space()
    for module in argv[split + 1 :]:
        importlib.import_module(module)
    _SPARE[0] = _address_space() - before
    serve(listener)
    return 0


def _address_space() -> int:
    """This process's address space in bytes (what RLIMIT_AS limits)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
