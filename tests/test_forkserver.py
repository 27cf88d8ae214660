"""The fork server that hands-ins' kernels and the grader's workers come from
(:mod:`grading.forkserver`), through the launcher of :mod:`grading.sandbox`: the real server,
preloading what the course's kernels use, and real processes. The graded class of
``tests/test_grading.py`` runs every hand-in through it."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from grading import forkserver
from grading.course import write_json
from grading.sandbox import FORK_SERVER_ENV, LAUNCHER, KernelSpec, describe_end, sandbox_user
from grading.worker import _reachable

ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def server() -> Iterator[Path]:
    """One fork server with the course's preloads, for the module's tests (as a grading run)."""
    with tempfile.TemporaryDirectory(prefix="forkserver-") as folder:
        os.chmod(folder, 0o711)
        with forkserver.serving(Path(folder)) as path:
            yield path


def _server_process() -> psutil.Process:
    found = [
        p for p in psutil.Process().children() if "grading.forkserver" in " ".join(p.cmdline())
    ]
    assert len(found) == 1, f"expected one fork server among this process's children: {found}"
    return found[0]


def _spec(folder: Path, user: str | None = None, cpu_seconds: int = 60) -> Path:
    spec = KernelSpec(8192, cpu_seconds, user, str(folder), str(folder.parent / "status.json"),
                      reachable=_reachable())  # fmt: skip
    return write_json(folder.parent / "spec.json", spec)


def _launcher(spec: Path | str, code: str, fds: tuple[int, ...] = ()) -> list[str]:
    """The command of a kernel's (``spec``) or a worker's (``-``) launcher, running ``code``."""
    return [
        sys.executable,
        "-c",
        LAUNCHER,
        str(spec),
        *map(str, fds),
        "--",
        sys.executable,
        "-c",
        code,
    ]


def _workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "kernel" / "work"
    folder.mkdir(parents=True)
    os.chmod(tmp_path, 0o711)
    os.chmod(folder.parent, 0o711)
    return folder


def _run(command: list[str], threads: int = 1, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, **kwargs)


#: A kernel's code that uses torch's intra-op pool and says what it saw.
USES_THE_POOL = """\
import json, os, torch
x = torch.randn(1024, 1024)
for _ in range(3):
    x = torch.tanh(x @ x)
print(json.dumps({"threads": torch.get_num_threads(), "tasks": len(os.listdir("/proc/self/task")),
                  "keeper": os.getppid(), "session": os.getsid(0) == os.getpid()}))"""


def test_kernels_fork_before_any_thread_pool_starts(server: Path, tmp_path: Path):
    """Every kernel is forked while the server has one thread: torch's pool and OpenBLAS's are
    not started there, and each kernel starts its own, with the threads its hand-in is given."""
    work = _workdir(tmp_path)
    seen = []
    for threads in (2, 1, 2):
        done = _run(_launcher(_spec(work), USES_THE_POOL), threads=threads)
        assert done.returncode == 0, done.stderr
        assert "new Python" not in done.stderr, f"the kernel was not forked: {done.stderr}"
        report = json.loads(done.stdout)
        assert report["threads"] == threads, "the kernel's torch has the threads it was given"
        assert report["session"], "a forked kernel has a session of its own"
        seen.append(report)
        assert _server_process().num_threads() == 1, "the server started a thread"
    assert max(r["tasks"] for r in seen) >= 2, f"no kernel started torch's pool: {seen}"
    assert len({r["keeper"] for r in seen}) == 3, "each kernel has a keeper of its own"


def test_a_server_with_a_second_thread_refuses_to_fork(tmp_path: Path, monkeypatch):
    """A preload that starts a thread: the server refuses, and the launcher says so and starts
    the kernel as a new Python instead."""
    (tmp_path / "starts_a_thread.py").write_text(
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
    )
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    )
    work = _workdir(tmp_path)
    with forkserver.serving(tmp_path, preload=("starts_a_thread",), extra=()):
        done = _run(_launcher(_spec(work), "import os; print(os.getpid())"))
    assert done.returncode == 0, done.stderr
    assert "forks only with one" in done.stderr, done.stderr
    assert "starting it as a new Python" in done.stderr, done.stderr
    assert done.stdout.strip().isdigit()


#: A kernel's code that prints its address-space limit in MiB.
LIMIT = "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0] / 2**20)"


def test_without_a_server_the_launcher_says_so_and_starts_a_new_python(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(FORK_SERVER_ENV, str(tmp_path / "nothing.sock"))
    done = _run(_launcher(_spec(_workdir(tmp_path)), LIMIT))
    assert (done.returncode, float(done.stdout)) == (0, 8192), done.stderr
    assert f"no answer from the fork server at {tmp_path / 'nothing.sock'}" in done.stderr


def test_a_forked_kernels_memory_limit_leaves_out_what_only_the_server_needs(
    server: Path, tmp_path: Path
):
    """The address space of the server's extra imports (``scipy.stats``, the grader's modules)
    comes on top of the limit: a hand-in may map as much as in a new Python."""
    done = _run(_launcher(_spec(_workdir(tmp_path)), LIMIT))
    assert done.returncode == 0, done.stderr
    spare = float(done.stdout) - 8192
    print(f"spare address space of a forked kernel: {spare:.0f} MiB")
    assert 50 < spare < 1024, f"the limit is 8192 MiB + {spare:.0f} MiB"


def test_a_forked_kernel_ends_as_a_launched_one(server: Path, tmp_path: Path):
    """Its exit status and the CPU-time limit reach the launcher's status and status file."""
    work = _workdir(tmp_path)
    done = _run(_launcher(_spec(work), "import sys; sys.exit(3)"))
    assert done.returncode == 3
    assert json.loads((tmp_path / "kernel" / "status.json").read_text())["exit_code"] == 3
    done = _run(_launcher(_spec(work, cpu_seconds=1), "while 1: 0"))
    ended = json.loads((tmp_path / "kernel" / "status.json").read_text())
    assert done.returncode == 128 + signal.SIGXCPU
    assert describe_end(ended, 1) == "it hit the CPU-time limit (1 s)"


#: A kernel that ends with 7 on SIGINT (jupyter_client's interrupt) and says it is ready.
INTERRUPTIBLE = """\
import os, signal, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(7))
print(os.getpid(), flush=True)
time.sleep(120)"""


def _started(command: list[str]) -> tuple[subprocess.Popen, int]:
    """A launcher started as jupyter_client starts it, and its kernel's pid."""
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    return launcher, int(launcher.stdout.readline())


def test_signals_reach_a_forked_kernel_and_it_dies_with_its_launcher(server: Path, tmp_path: Path):
    work = _workdir(tmp_path)
    launcher, _ = _started(_launcher(_spec(work), INTERRUPTIBLE))
    os.killpg(launcher.pid, signal.SIGINT)  # as jupyter_client interrupts a kernel
    assert launcher.wait(timeout=30) == 7, "the interrupt did not reach the kernel"
    launcher, kernel = _started(_launcher(_spec(work), INTERRUPTIBLE))
    os.killpg(launcher.pid, signal.SIGKILL)  # as jupyter_client kills a kernel
    launcher.wait(timeout=30)
    gone, _ = psutil.wait_procs([psutil.Process(kernel)], timeout=30)
    assert gone, "the kernel outlived its launcher"


#: The first kernel changes what it can of the server's state; the second looks.
CHANGES = """\
import os, torch, lib.data
torch.nn.functional.relu = None
lib.data.load_mnist = None
os.environ["XNN_CHANGED"] = "1"
"""
LOOKS = """\
import json, os, sys, torch, lib.data
print(json.dumps({"relu": torch.nn.functional.relu is not None,
                  "load_mnist": lib.data.load_mnist is not None,
                  "env": sorted(k for k in os.environ if k in ("XNN_CHANGED", "XNN_FORK_SERVER")),
                  "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd"))}))"""


def test_nothing_one_kernel_does_reaches_the_next(server: Path, tmp_path: Path):
    work = _workdir(tmp_path)
    assert _run(_launcher(_spec(work), CHANGES)).returncode == 0
    done = _run(_launcher(_spec(work), LOOKS))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["relu"] and seen["load_mnist"], "a change of the first kernel reached the next"
    assert seen["env"] == [], "a kernel sees another's environment or the server's socket"
    assert seen["fds"][:3] == [0, 1, 2] and len(seen["fds"]) == 4, (
        f"a kernel holds file descriptors of the server or keeper: {seen['fds']} (the last is "
        "listdir's own)"
    )


def test_a_worker_gets_its_folder_and_the_file_descriptors_handed_on(server: Path, tmp_path: Path):
    """The grader's workers (``-``: no sandbox) run where the launcher runs, with its lock."""
    read, write = os.pipe()
    code = f"import os; os.write({write}, os.getcwd().encode())"
    done = _run(_launcher("-", code, fds=(write,)), cwd=tmp_path, pass_fds=(write,))
    os.close(write)
    assert done.returncode == 0, done.stderr
    assert os.read(read, 4096).decode() == str(tmp_path)
    os.close(read)


@pytest.mark.skipif(not ROOT, reason="sandbox users need root; CI runs as root")
def test_a_forked_kernel_runs_as_its_sandbox_user_in_its_own_namespace(server: Path):
    code = f"""\
import json, os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    s.connect({str(server)!r}); reached = True
except OSError:
    reached = False
namespace = os.readlink("/proc/self/ns/mnt")
print(json.dumps({{"uid": os.getuid(), "ns": namespace, "reached": reached}}))"""
    with sandbox_user() as (user, _), tempfile.TemporaryDirectory() as base:
        os.chmod(base, 0o711)
        work = _workdir(Path(base))
        os.chown(work, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
        done = _run(_launcher(_spec(work, user=user), code))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["uid"] == pwd.getpwnam(user).pw_uid
    assert seen["ns"] != os.readlink(f"/proc/{_server_process().pid}/ns/mnt")
    assert not seen["reached"], "a hand-in's kernel could open the fork server's socket"


def test_the_server_ends_with_its_grader(tmp_path: Path):
    """SIGKILL of the grader (the process that entered serving) ends its server."""
    code = (
        "import sys, time; from pathlib import Path; from grading import forkserver\n"
        f"with forkserver.serving(Path({str(tmp_path)!r}), preload=(), extra=()):\n"
        "    print('serving', flush=True); time.sleep(600)"
    )
    grader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert grader.stdout.readline() == "serving\n"
    servers = [p for p in psutil.Process(grader.pid).children() if p.is_running()]
    assert servers, "no server was started"
    grader.kill()
    grader.wait(timeout=30)
    gone, alive = psutil.wait_procs(servers, timeout=30)
    assert not alive, f"the fork server outlived its grader: {alive}"
