"""The sandbox a hand-in's code runs in: resource limits, an unprivileged user, a kernel launcher.

The sandbox kernel's spec (:mod:`grading.worker`) starts the kernel through :func:`main`: from
the grader's fork server where one runs (:func:`launch_forked`, :mod:`grading.forkserver`),
else as a new Python (:func:`launch`). Either way the kernel enters the sandbox (:func:`enter`):
the memory and CPU-time limits and, where the grader is root, a user of the hand-in's own
(``xnn-grade<N>``, :func:`sandbox_user`) in a mount namespace that hides the gradebook,
``solutions/`` and the other hand-ins; and a process stays its parent that, when the kernel
ends, writes how (exit status or signal, CPU time) to a file the kernel cannot reach, so that
the grader can say *why* a kernel died. Run as another user, the grader applies the limits and
checks the gradebook and sources afterwards (:mod:`grading.autograde`).
"""

from __future__ import annotations

import ctypes
import fcntl
import itertools
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

#: The sandbox kernel's launcher, for ``python -c``: this file run as a script.
LAUNCHER = (
    "import runpy, sys; sys.argv[0] = {path!r}; runpy.run_path({path!r}, run_name='__main__')"
).format(path=str(Path(__file__).resolve()))
#: Prefix of the per-slot sandbox users created with ``useradd`` when the grader is root.
USER_PREFIX = "xnn-grade"

_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36
_LIBC = ctypes.CDLL(None, use_errno=True)
#: Root-only folder of the locks that give a grading job a sandbox user of its own.
LOCK_DIR = Path("/run/xnn-grading")


def _create_user(name: str) -> None:
    command = ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent"]
    command += ["--shell", "/usr/sbin/nologin", "--user-group", name]
    exists = lambda: name in {entry.pw_name for entry in pwd.getpwall()}  # noqa: E731
    result = None if exists() else subprocess.run(command, capture_output=True, text=True)
    if result and result.returncode != 0 and not exists():  # unless another grader made it
        raise RuntimeError(
            f"could not create the sandbox user {name!r} with useradd: {result.stderr.strip()}. "
            "Create it by hand or run the grader as a normal user (without user isolation)."
        )


@contextmanager
def sandbox_user() -> Iterator[tuple[str | None, tuple[int, ...]]]:
    """A sandbox user (``xnn-grade<N>``, made with ``useradd`` on first use) that no other grading
    job uses while the block runs, held with a lock in :data:`LOCK_DIR`; ``None`` if the grader is
    not root (the kernel then runs as the grader). Also the lock's file descriptor, for the worker
    to inherit: the lock then holds until the worker has ended the user's processes, even if the
    grader died first (else another grader could take the user and lose its kernel to them)."""
    if os.geteuid() != 0:
        yield None, ()
        return
    LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    for number in itertools.count():
        handle = open(LOCK_DIR / f"{USER_PREFIX}{number}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            handle.close()
    with handle:
        _create_user(f"{USER_PREFIX}{number}")
        yield f"{USER_PREFIX}{number}", (handle.fileno(),)


def give_to(path: Path, user: str | None) -> None:
    """Make ``path`` (recursively) owned by ``user`` (and its group of the same name, made by
    ``useradd --user-group``) and private to it; nothing for ``None``."""
    for folder, dirs, files in os.walk(path) if user is not None else ():
        shutil.chown(folder, user, user)
        os.chmod(folder, 0o700)
        for target in (os.path.join(folder, name) for name in dirs + files):
            if not os.path.islink(target):
                shutil.chown(target, user, user)


def kill_user_processes(user: str | None) -> None:
    """SIGKILL every process of the sandbox user ``user`` (what a hand-in left running).
    Nothing for ``None``: the grader's own processes are never touched this way."""
    if user is not None:
        uid = pwd.getpwnam(user).pw_uid
        _kill_all(lambda: [p for p in psutil.process_iter(["uids"]) if p.info["uids"].real == uid])


def kill_descendants() -> None:
    """SIGKILL every process this one started, and theirs (with :func:`adopt_orphans`, also
    those that left their parent or their session)."""
    _kill_all(lambda: psutil.Process().children(recursive=True))


def _kill_all(find) -> None:
    for _ in range(20):  # a process may fork while the list is read
        processes = find()
        if not processes:
            return
        for process in processes:
            with suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(processes, timeout=1)


def die_with_parent(sig: int, parent: int | None = None) -> None:
    """Have Linux send ``sig`` to this process when its parent ends; at once if the parent is
    no longer ``parent`` (a pid), i.e. it ended before this was set up."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)


def adopt_orphans() -> None:
    """Become the parent of every orphan among this process's descendants (Linux's child
    subreaper), so that :func:`kill_descendants` finds what a hand-in left running."""
    _LIBC.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@dataclass(frozen=True)
class KernelSpec:
    """What the launcher needs to know, written as JSON next to the kernel spec."""

    memory_mb: int  # address space of the kernel (RLIMIT_AS)
    cpu_seconds: int  # CPU time of the kernel (RLIMIT_CPU)
    user: str | None
    workdir: str  # the kernel's working folder (a copy of the hand-in's folder)
    status_file: str  # where the launcher writes how the kernel ended
    #: folders the kernel must reach (interpreter, course library, data)
    reachable: tuple[str, ...] = ()
    #: files and folders of the course the kernel must not see (gradebook, sources, hand-ins)
    hidden: tuple[str, ...] = ()

    @classmethod
    def read(cls, path: Path) -> KernelSpec:
        """The spec the worker wrote (``grading.course.write_json``) to ``path``."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{key: tuple(v) if isinstance(v, list) else v for key, v in data.items()})


_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_BIND, _MS_MOVE, _MS_REC, _MS_PRIVATE = 1, 4096, 8192, 16384, 1 << 18


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data=None) -> None:
    encode = lambda text: text.encode() if text is not None else None  # noqa: E731
    if _LIBC.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def _private_mounts(spec: KernelSpec, staging: Path) -> None:
    """In a new mount namespace (root only): hide the course's gradebook, sources and hand-ins,
    and make the folders the kernel needs reachable where a private folder (such as /root)
    sits on their way, without changing anything outside the namespace."""
    if _LIBC.unshare(_CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    for path in spec.hidden:
        target = Path(path)
        if target.is_dir():
            _mount("tmpfs", str(target), "tmpfs", _MS_RDONLY, "mode=755,size=4k")
        elif target.is_file():
            _mount("/dev/null", str(target), None, _MS_BIND)
    # A round opens the first folder on each way that others cannot enter; the next round the
    # next one below it (a private folder inside a private folder), until every way is open.
    for round_ in itertools.count():
        blocked: dict[Path, set[Path]] = {}
        for path in map(Path, spec.reachable):
            for folder, child in itertools.pairwise([*reversed(path.parents), path]):
                if not folder.stat().st_mode & 0o001:
                    blocked.setdefault(folder, set()).add(child)
                    break
        if not blocked:
            return
        for index, (folder, children) in enumerate(sorted(blocked.items())):
            kept = []
            for number, child in enumerate(sorted(children)):
                hold = staging / f"hold-{round_}-{index}-{number}"
                hold.mkdir(parents=True)
                _mount(str(child), str(hold), None, _MS_BIND | _MS_REC)
                kept.append((child, hold))
            _mount("tmpfs", str(folder), "tmpfs", 0, "mode=755")
            for child, hold in kept:
                (folder / child.name).mkdir()
                _mount(str(hold), str(child), None, _MS_MOVE)


def private_connection_file(argv: list[str], spec: KernelSpec, uid: int, gid: int) -> list[str]:
    """jupyter_client writes the connection file readable by the grader only: hand the kernel
    its own copy in its working folder's parent, owned by the kernel's user."""
    if "-f" not in argv:
        return argv
    index = argv.index("-f") + 1
    copy = shutil.copyfile(argv[index], Path(spec.workdir).parent / "connection.json")
    os.chmod(copy, 0o600)
    os.chown(copy, uid, gid)  # the grader's own ids without a sandbox user
    return [*argv[:index], str(copy), *argv[index + 1 :]]


def enter(spec: KernelSpec, uid: int, gid: int, spare: int = 0) -> None:
    """In a forked child that will become the kernel: its limits, where the grader is root its
    own mount namespace and the sandbox user, death with its parent, its working folder. Raises
    what went wrong (the caller reports it and leaves the fork). ``spare``: bytes of address
    space on top of the memory limit, for what a fork server mapped that a new Python would not
    (:data:`grading.forkserver.EXTRA`)."""
    memory = spec.memory_mb * 1024 * 1024 + spare
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(spec.cpu_seconds)
    # SIGXCPU at the soft limit, SIGKILL a few seconds later if it is caught.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files from a segfault
    if spec.user is not None:
        try:
            _private_mounts(spec, Path(spec.status_file).parent / "mounts")
        except OSError as error:  # e.g. a container without CAP_SYS_ADMIN
            print(
                f"grading.sandbox: no private mounts ({error}); the kernel sees the "
                "course's files, read-only to it",
                file=sys.stderr,
            )
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        home = Path(spec.workdir).parent / "home"
        os.environ.update(HOME=str(home), USER=spec.user, LOGNAME=spec.user)
    die_with_parent(signal.SIGKILL)  # with its keeper (setuid clears it: set after)
    os.umask(0o077)
    os.chdir(spec.workdir)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cannot_start(spec: KernelSpec | None, error: BaseException) -> None:
    """Say on standard error why the kernel could not start in the sandbox of ``spec`` (a
    worker, without one, in the grader's folder)."""
    if spec is None:
        print(f"grading.sandbox: could not start the worker: {error!r}", file=sys.stderr)
        return
    print(
        f"grading.sandbox: could not start the kernel as {spec.user or 'the grader'}: "
        f"{error!r}. The sandbox user must be able to read the Python installation, the "
        "virtual environment and the course library (check the folders' permissions).",
        file=sys.stderr,
    )


def _child(argv: list[str], spec: KernelSpec, uid: int, gid: int) -> None:
    """In the forked child: the sandbox, then the kernel command. Never returns."""
    try:
        enter(spec, uid, gid)
        os.execvp(argv[0], argv)
    except BaseException as error:  # noqa: BLE001 -- report anything, then leave the fork
        cannot_start(spec, error)
    os._exit(127)


def ids(spec: KernelSpec) -> tuple[int, int]:
    """The user and group ids the kernel of ``spec`` runs as (the grader's without a user)."""
    entry = pwd.getpwnam(spec.user) if spec.user is not None else None
    return (entry.pw_uid, entry.pw_gid) if entry else (os.getuid(), os.getgid())


def record_end(spec: KernelSpec | None, status: int, usage: resource.struct_rusage) -> int:
    """Write how the kernel ended (``os.wait4``'s ``status`` and ``usage``) to the spec's status
    file (none without a spec); returns the exit status a shell would give it."""
    ended = {
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }
    if spec is not None:
        Path(spec.status_file).write_text(json.dumps(ended), encoding="utf-8")
    return 128 + ended["signal"] if ended["signal"] is not None else ended["exit_code"]


def launch(spec_file: Path, argv: list[str]) -> int:
    """Run ``argv`` (the kernel command) in the sandbox of ``spec_file``, as a new process that
    this one stays the parent of; returns its status."""
    spec = KernelSpec.read(spec_file)
    uid, gid = ids(spec)
    argv = private_connection_file(argv, spec, uid, gid)
    pid = os.fork()
    if pid == 0:
        _child(argv, spec, uid, gid)
    # jupyter_client interrupts the kernel with SIGINT to the whole process group: only the
    # kernel should see it. SIGTERM is passed on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(pid, signal.SIGTERM))
    _, status, usage = os.wait4(pid, 0)  # retried after the SIGTERM handler (PEP 475)
    return record_end(spec, status, usage)


def describe_end(status: dict, cpu_seconds: int) -> str:
    """Why a kernel ended, in words, from the status the launcher wrote; ``cpu_seconds``: its
    CPU-time limit."""
    sig = status.get("signal")
    used = status.get("cpu_seconds") or 0
    if sig in (signal.SIGXCPU, signal.SIGKILL) and used >= cpu_seconds - 1:
        return f"it hit the CPU-time limit ({cpu_seconds} s)"
    if sig is not None:
        name = signal.Signals(sig).name
        if sig == signal.SIGSEGV:
            return f"the kernel crashed with a segmentation fault ({name})"
        if sig == signal.SIGKILL:
            return f"the kernel was killed ({name}), e.g. for using too much memory"
        return f"the kernel was killed by signal {name}"
    code = status.get("exit_code")
    return f"the kernel exited with status {code} (e.g. os._exit, exit() or quit())"


#: Environment variable with the fork server's socket (:mod:`grading.forkserver`), set by the
#: grader while it runs one; the launcher then asks it for the kernel, and the grader for workers.
FORK_SERVER_ENV = "XNN_FORK_SERVER"
MESSAGE_BYTES = 1 << 16  # every message of the fork server's protocol is far smaller


class NoForkServer(OSError):
    """The fork server could not start the command (it is not there, or refused): nothing ran."""


def launch_forked(server: str, spec_file: Path | None, argv: list[str], fds: list[int]) -> int:
    """Have the fork server at ``server`` run ``argv`` in the sandbox of ``spec_file`` (without
    one: as this process's user, in its working folder) and return its exit status (see
    :mod:`grading.forkserver`): this process hands on its standard streams, the file
    descriptors ``fds`` and its environment, and passes on SIGINT and SIGTERM; if it dies, so
    does the command. Raises :class:`NoForkServer` if nothing was started."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until there is a process to pass it on to
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    request = {"spec": spec_file and str(spec_file), "argv": argv, "env": dict(os.environ),
               "cwd": os.getcwd(), "fds": [0, 1, 2, *fds]}  # fmt: skip
    try:
        conn.connect(server)
        socket.send_fds(conn, [json.dumps(request).encode()], request["fds"])
        reply = json.loads(conn.recv(MESSAGE_BYTES) or b'{"error": "it closed the connection"}')
    except (OSError, ValueError) as error:
        conn.close()
        raise NoForkServer(f"no answer from the fork server at {server}: {error}") from error
    if "error" in reply:
        conn.close()
        raise NoForkServer(f"the fork server did not start {argv[:3]}: {reply['error']}")

    def pass_on(signum: int, frame: object) -> None:
        with suppress(OSError):
            conn.send(json.dumps({"signal": signum}).encode())

    signal.signal(signal.SIGINT, pass_on)
    signal.signal(signal.SIGTERM, pass_on)
    with conn:
        while message := conn.recv(MESSAGE_BYTES):  # retried after a signal's handler (PEP 475)
            if "status" in (ended := json.loads(message)):
                return ended["status"]
    print(f"grading.sandbox: the fork server's keeper of {argv[:3]} ended without its status",
          file=sys.stderr)  # fmt: skip
    return 1


def command(argv: list[str], fds: tuple[int, ...] = ()) -> list[str]:
    """``argv`` (a Python command of the grader's, e.g. a worker) as started by the launcher
    from the grader's fork server, where one runs, handing on ``fds``: :func:`main` ``- FD...
    -- ARGV``."""
    if not os.environ.get(FORK_SERVER_ENV):
        return argv
    return [sys.executable, "-c", LAUNCHER, "-", *map(str, fds), "--", *argv]


def main(argv: list[str]) -> int:
    """``SPEC.json -- KERNEL-COMMAND...``, as the sandbox kernel's spec runs it, or ``- FD...
    -- COMMAND...`` (:func:`command`): run as a file (:data:`LAUNCHER`), which imports nothing of
    the grading package nor of nbgrader, so that the launcher that stays the parent starts in
    a twentieth of a second. The command comes from the grader's fork server where one runs
    (``$XNN_FORK_SERVER``), else from a new Python, and standard error says why."""
    die_with_parent(signal.SIGTERM)  # with the worker or grader (passed on)
    split = argv.index("--")
    spec = Path(argv[0]) if argv[0] != "-" else None
    fds, command = [int(fd) for fd in argv[1:split]], argv[split + 1 :]
    server = os.environ.get(FORK_SERVER_ENV)
    if server:
        try:
            return launch_forked(server, spec, command, fds)
        except NoForkServer as error:
            print(f"grading.sandbox: {error}; starting it as a new Python", file=sys.stderr)
    if spec is None:
        os.execvp(command[0], command)  # the fds stay open across exec: pass_fds made them so
    return launch(spec, command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
