"""The student's path, end to end: ``make lab``, an exercise's kernel, ``make validate``.

The tests run the Makefile's own targets, so they test what students type: ``make lab`` with
``LAB_ARGS`` for a free port on 127.0.0.1 and no browser, then the server's REST API (open an
exercise, start its kernel, run code in it over the kernel's websocket, nbgrader's Validate
button) and its shutdown; ``make validate`` on the untouched exercise and on a solved copy.

Each run gets its own Jupyter folders holding a decoy ``python3`` kernel (in ``JUPYTER_PATH``
and in the user's data folder, preferred over the environment's), standing for whatever other
kernels a student's machine has: the notebook must still run in the course's ``.venv``.

Run as root (CI, Docker), the path is also run as a non-root user created with ``useradd``:
``make lab`` as both, ``make validate`` on the untouched exercise as that user and on the
solution as root.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
import websocket
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearSolutions

# The corpus of students' answers, with what the feedback on each wrong one must say.
from test_answers import read_corpus

from grading import Course
from grading.validate import _reason
from grading.validate import main as validate_main

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
COURSE = Course(REPO)
EXERCISES = sorted(COURSE.release_dir.glob("*/*.ipynb"))
IN_CI = os.environ.get("CI") == "true"
AS_ROOT = os.geteuid() == 0
STUDENT = "xnn-student"
#: The kernel reports where it runs; printed as one JSON line.
PROBE = """
import json, os, sys
import lib
where = {'prefix': sys.prefix, 'executable': sys.executable, 'lib': lib.__file__}
where.update(pid=os.getpid(), uid=os.getuid(), cwd=os.getcwd())
print(json.dumps({**where, 'decoy': os.environ.get('XNN_DECOY_KERNEL')}))
"""

pytestmark = pytest.mark.skipif(not EXERCISES, reason="no exercise in exercises/")


# --- Who runs the path ---------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """The user a command runs as, with a fresh home and Jupyter folders of its own."""

    name: str
    uid: int
    gid: int
    home: Path
    #: private folders on the way to what the user needs -> the sub-folders it needs there
    blocked: dict[Path, set[Path]] = field(default_factory=dict, hash=False)

    def env(self) -> dict[str, str]:
        data = self.home / "jupyter-data"
        env = {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            # Other kernels named python3: one in JUPYTER_PATH, one in the user's data folder,
            # which a user may prefer to the environment's (JUPYTER_PREFER_ENV_PATH=0).
            "JUPYTER_PATH": str(self.home / "other-kernels"),
            "JUPYTER_DATA_DIR": str(data),
            "JUPYTER_PREFER_ENV_PATH": "0",
            "JUPYTER_CONFIG_DIR": str(self.home / "jupyter-config"),
            "JUPYTER_RUNTIME_DIR": str(data / "runtime"),
            "XNN_CACHE_DIR": str(self.home / "model-cache"),
            "TQDM_DISABLE": "1",
        }
        for name in ("XNN_DATA_DIR", "XNN_DEVICE", "CI"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def popen(self, args: list[str], **kwargs) -> subprocess.Popen:
        if self.uid != os.geteuid() and not self.blocked:
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[])
        elif self.uid != os.geteuid():
            user = [f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
            script = _open_mounts(self.blocked, self.home.parent / f"mounts-{self.name}")
            args = ["unshare", "--mount", "sh", "-ec", script, "sh", "setpriv", *user, *args]
        return subprocess.Popen(args, cwd=REPO, env=self.env(), **kwargs)


def _open_mounts(blocked: dict[Path, set[Path]], staging: Path) -> str:
    """Shell lines, run as root in a new mount namespace, that cover each private folder with
    an open one holding only the sub-folders needed, bind-mounted back; nothing changes
    outside the namespace, which ends with its processes."""
    lines = ["mount --make-rprivate /"]
    for i, (folder, children) in enumerate(sorted(blocked.items())):
        holds = [(child, staging / f"{i}-{j}") for j, child in enumerate(sorted(children))]
        for child, hold in holds:
            lines += [f"mkdir -p {shlex.quote(str(hold))}"]
            lines += [f"mount --rbind {shlex.quote(str(child))} {shlex.quote(str(hold))}"]
        lines.append(f"mount -t tmpfs -o mode=755 tmpfs {shlex.quote(str(folder))}")
        for child, hold in holds:
            lines += [f"mkdir {shlex.quote(str(child))}"]
            lines += [f"mount --move {shlex.quote(str(hold))} {shlex.quote(str(child))}"]
    return "\n".join([*lines, 'exec "$@"'])


def _decoy_kernels(account: Account) -> None:
    """Two working ``python3`` kernels that are not the course's, as another Python's would
    be: the base interpreter the .venv was made from, borrowing the .venv's packages through
    PYTHONPATH (so ipykernel starts) but not the editable install of ``lib``."""
    base_python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}"
    site_packages = next(VENV.glob("lib/python*/site-packages"))
    for folder in (account.home / "other-kernels", account.home / "jupyter-data"):
        spec = folder / "kernels" / "python3" / "kernel.json"
        spec.parent.mkdir(parents=True)
        argv = [str(base_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        kernel = {"argv": argv, "display_name": "decoy", "language": "python"}
        kernel["env"] = {"XNN_DECOY_KERNEL": str(spec), "PYTHONPATH": str(site_packages)}
        spec.write_text(json.dumps(kernel), encoding="utf-8")


def _new_account(base: Path, name: str, uid: int, gid: int) -> Account:
    account = Account(name=name, uid=uid, gid=gid, home=base / name)
    account.home.mkdir()
    _decoy_kernels(account)
    for path in [account.home, *account.home.rglob("*")]:
        os.chown(path, uid, gid)
    return account


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """A folder every user can reach (pytest's own tmp folders are private to the user)."""
    folder = Path(tempfile.mkdtemp(prefix="xnn-lab-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def me(base: Path) -> Account:
    """The user the tests run as: root in CI."""
    return _new_account(base, "me", os.geteuid(), os.getegid())


# --- make lab --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_processes(sid: int) -> list[str]:
    """Processes still running (not zombies) in the session ``sid``: the ones ``make lab``
    started, kernels included (they get their own process group, not their own session)."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(f"{stat_file.parent.name} {text[: text.rindex(')') + 1]}")
    return found


def _running(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"


@dataclass
class Lab:
    """A running ``make lab``: its process, the URL it printed and its output so far."""

    process: subprocess.Popen
    log: Path
    url: str = ""
    token: str = ""

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 60):
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        return json.loads(text) if text and path.startswith(("/api", "/assignments")) else text


@contextmanager
def make_lab(account: Account, base: Path) -> Iterator[Lab]:
    """Start ``make lab`` as ``account``; stop it through the API and check nothing is left."""
    log = base / f"lab-{account.name}.log"
    lab_args = f"LAB_ARGS=--ip 127.0.0.1 --port {_free_port()} --no-browser"
    with open(log, "w", encoding="utf-8") as out:
        process = account.popen(
            ["make", "lab", lab_args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    lab = Lab(process=process, log=log)
    try:
        deadline = time.monotonic() + 120
        while not lab.url:
            found = re.search(r"(http://127\.0\.0\.1:\d+)/lab\?token=(\w+)", lab.output())
            if found:
                lab.url, lab.token = found.groups()
            assert process.poll() is None, f"make lab stopped:\n{lab.output()[-3000:]}"
            assert time.monotonic() < deadline, f"make lab printed no URL:\n{lab.output()}"
            time.sleep(0.3)
        yield lab
        lab.api("POST", "/api/shutdown")
        assert process.wait(timeout=60) == 0, f"make lab failed:\n{lab.output()[-3000:]}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        left = _session_processes(process.pid)
        for line in left:
            os.kill(int(line.split()[0]), signal.SIGKILL)
    assert not left, f"processes left running after make lab stopped: {left}"


def _execute(lab: Lab, kernel_id: str, code: str, timeout: float = 120) -> str:
    """Run ``code`` in the kernel over the server's websocket, as JupyterLab does; its stdout."""
    ws_url = lab.url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
    conn = websocket.create_connection(
        ws_url, header=[f"Authorization: token {lab.token}"], timeout=timeout
    )
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "msg_type": "execute_request",
        "username": "test",
        "session": uuid.uuid4().hex,
        "date": datetime.now(UTC).isoformat(),
        "version": "5.3",
    }
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}}
    content.update(allow_stdin=False, stop_on_error=True)
    request = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
    conn.send(json.dumps({**request, "channel": "shell", "buffers": []}))
    stdout, replied, idle = [], False, False
    try:
        while not (replied and idle):
            msg = json.loads(conn.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream" and msg["content"]["name"] == "stdout":
                stdout.append(msg["content"]["text"])
            elif kind == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            replied = replied or kind == "execute_reply"
            idle = idle or (kind == "status" and msg["content"]["execution_state"] == "idle")
    finally:
        conn.close()
    return "".join(stdout)


def check_lab(account: Account, base: Path, validate_button: bool) -> None:
    """``make lab`` as ``account``: exercises/ is served, an exercise runs in the .venv."""
    exercise = EXERCISES[0]
    path = exercise.relative_to(COURSE.release_dir).as_posix()
    with make_lab(account, base) as lab:
        command = next(line for line in lab.output().splitlines() if "jupyter lab" in line)
        assert ("--allow-root" in command) == (account.uid == 0), command
        listing = lab.api("GET", "/api/contents/")
        names = {item["name"] for item in listing["content"]}
        assert exercise.parent.name in names and "solutions" not in names, names

        # Open the exercise as JupyterLab does: read it, start a session in its kernel.
        nb = lab.api("GET", f"/api/contents/{path}?content=1")["content"]
        kernel_name = nb["metadata"]["kernelspec"]["name"]
        assert kernel_name == "python3"
        session = {"path": path, "name": exercise.name, "type": "notebook"}
        session["kernel"] = {"name": kernel_name}
        kernel = lab.api("POST", "/api/sessions", session)["kernel"]
        probe = json.loads(_execute(lab, kernel["id"], PROBE).strip().splitlines()[-1])
        assert probe["decoy"] is None, f"the notebook ran in the decoy kernel {probe['decoy']}"
        assert probe["uid"] == account.uid, probe
        assert Path(probe["prefix"]).resolve() == VENV.resolve(), probe
        assert Path(probe["executable"]).parent == VENV / "bin", probe
        assert Path(probe["lib"]).resolve().parent == REPO / "lib", probe
        assert Path(probe["cwd"]).resolve() == exercise.parent.resolve(), probe

        if validate_button:
            # nbgrader's Validate button: its lab extension is loaded, and its server end runs
            # the notebook and lists the failing cells.
            page = lab.api("GET", "/lab")
            config = json.loads(
                re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S).group(1)
            )
            loaded = {ext["name"] for ext in config.get("federated_extensions", [])}
            assert "@jupyter/nbgrader" in loaded, sorted(loaded)
            disabled = config.get("disabledExtensions", [])
            assert not [name for name in disabled if "nbgrader" in name], disabled
            result = lab.api("POST", "/assignments/validate", {"path": path}, timeout=600)
            assert result["success"], result["value"]
            failed = {cell["source"] for cell in result["value"].get("failed", [])}
            tests = {cell.source.strip() for cell in _cells(exercise, "test")}
            assert tests and tests <= failed
    assert not _running(probe["pid"]), f"the kernel (pid {probe['pid']}) outlived the server"


# --- make validate ---------------------------------------------------------------------------


def _info(cell: NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def _cells(notebook: Path, kind: str) -> list[NotebookNode]:
    """The notebook's autograded test cells (``"test"``) or its answer cells (``"answer"``)."""
    cells = nbformat.read(notebook, as_version=4).cells
    if kind == "test":
        return [c for c in cells if _info(c).get("grade") and not _info(c).get("solution")]
    return [c for c in cells if _info(c).get("grade") and _info(c).get("solution")]


def solved_copy(exercise: Path, dest: Path) -> Path:
    """The exercise with every answer filled in from its source in solutions/, as a student
    who solved it would hand it in (tests/test_grading.py builds its ``solved`` hand-in so)."""
    source = nbformat.read(COURSE.source_dir / exercise.relative_to(COURSE.release_dir), 4)
    stubs = ClearSolutions(config=COURSE.config())
    marks = (stubs.begin_solution_delimeter, stubs.end_solution_delimeter)
    answers = {_info(c)["grade_id"]: c.source for c in source.cells if _info(c).get("solution")}
    nb = copy.deepcopy(nbformat.read(exercise, as_version=4))
    for cell in nb.cells:
        if _info(cell).get("solution"):
            lines = answers[_info(cell)["grade_id"]].split("\n")
            cell.source = "\n".join(line for line in lines if not any(m in line for m in marks))
    nbformat.write(nb, dest)
    return dest


def make_validate(account: Account, notebook: Path) -> subprocess.CompletedProcess:
    process = account.popen(
        ["make", "validate", f"NB={notebook}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = process.communicate(timeout=900)
    return subprocess.CompletedProcess(process.args, process.returncode, out)


def check_untouched_fails(account: Account) -> None:
    exercise = EXERCISES[0]
    done = make_validate(account, exercise.relative_to(REPO))
    assert done.returncode != 0, done.stdout
    assert "NOT READY" in done.stdout, done.stdout
    for cell in _cells(exercise, "test") + _cells(exercise, "answer"):
        assert f"`{_info(cell)['grade_id']}`" in done.stdout, done.stdout
    assert "PASSED" not in done.stdout


# --- As a non-root user ----------------------------------------------------------------------


def _blocked(uid: int) -> dict[Path, set[Path]]:
    """For what a user ``uid`` (in no group of ours) needs -- the repository, the interpreter
    the .venv links to, the MNIST folder -- the first folder on the way that it cannot enter,
    with the sub-folder leading on."""
    needed = [REPO, Path(os.path.realpath(VENV / "bin" / "python"))]
    if os.environ.get("XNN_DATA_DIR"):
        needed.append(Path(os.environ["XNN_DATA_DIR"]).resolve())
    blocked: dict[Path, set[Path]] = {}
    for path in needed:
        for folder, child in itertools.pairwise([*reversed(path.parents), path]):
            mode = folder.stat()
            if mode.st_uid != uid and not mode.st_mode & stat.S_IXOTH:
                blocked.setdefault(folder, set()).add(child)
                break
    return blocked


@contextmanager
def student_account(base: Path) -> Iterator[Account | str]:
    """A non-root user made with ``useradd``, removed after; or why there is none.

    A clone or a Python under a private folder (such as /root, or a 0700 temporary folder) is
    out of the user's reach: its commands run in a mount namespace that opens the way (see
    :func:`_open_mounts`), as a student's own clone and Python would be open to them.
    """
    useradd = shutil.which("useradd")
    if useradd is None:
        yield "useradd is not installed (Debian: passwd package), so no non-root user to test"
        return
    created = False
    try:
        pwd.getpwnam(STUDENT)
    except KeyError:
        subprocess.run([useradd, "--no-create-home", "--user-group", STUDENT], check=True)
        created = True
    try:
        entry = pwd.getpwnam(STUDENT)
        account = _new_account(base, STUDENT, entry.pw_uid, entry.pw_gid)
        yield dataclasses.replace(account, blocked=_blocked(entry.pw_uid))
    finally:
        if created:
            subprocess.run(["userdel", STUDENT], check=False)


@pytest.fixture(scope="module")
def student(base: Path) -> Iterator[Account | str]:
    """A non-root user to run the path as (the tests run as root), or why there is none."""
    if not AS_ROOT:
        yield f"the tests run as a non-root user (uid {os.geteuid()}): test_lab covers that user"
        return
    with student_account(base) as account:
        if isinstance(account, str):
            yield account
            return
        readable = account.popen(["sh", "-c", f"test -r Makefile && test -x {VENV}/bin/python"])
        if readable.wait() == 0:
            yield account
            return
        reason = f"user {STUDENT} cannot read {REPO} or run {VENV}/bin/python"
        if account.blocked:
            reason += f" (private folders opened with unshare --mount: {account.blocked})"
        yield reason


def needs(student: Account | str) -> Account:
    if isinstance(student, str):
        if IN_CI and AS_ROOT:
            pytest.fail(f"CI runs as root and must test a non-root user, but {student}")
        pytest.skip(student)
    return student


# --- The tests (JupyterLab and kernels: marked lab) ----------------------------------------------


@pytest.mark.lab
def test_lab(me: Account, base: Path):
    check_lab(me, base, validate_button=True)


@pytest.mark.lab
def test_lab_as_non_root_user(student: Account | str, base: Path):
    check_lab(needs(student), base, validate_button=False)


@pytest.mark.lab
def test_validate_untouched_exercise_fails(me: Account, student: Account | str):
    """As the non-root user where there is one, else as the tests' user: with the next test,
    which runs as the tests' user (root in CI), ``make validate`` runs as both."""
    check_untouched_fails(student if isinstance(student, Account) else me)


@pytest.mark.lab
def test_validate_solution_passes(me: Account, base: Path):
    solved = solved_copy(EXERCISES[0], base / EXERCISES[0].name)
    done = make_validate(me, solved)
    assert done.returncode == 0, done.stdout
    assert f"PASSED: {solved}" in done.stdout, done.stdout


@pytest.mark.lab
def test_validate_names_the_runs_first_error(me: Account, base: Path):
    """A cell of the student's own that raises above the failing checks (the cause of their
    failure, but no check itself) is named, with its error; and a visible test that a wrong
    answer of the corpus (tests/answers/) fails is reported by its message, which names the
    mistake as the corpus says."""
    path = solved_copy(EXERCISES[0], base / f"first-error-{EXERCISES[0].name}")
    nb = nbformat.read(path, as_version=4)
    answers = [c for c in nb.cells if _info(c).get("solution") and c.cell_type == "code"]
    answers[0].source = "raise NotImplementedError()"
    last = _info(answers[-1])["grade_id"]
    corpus = read_corpus(EXERCISES[0].parent.name)
    wrong = next(a for a in corpus if a.visibly and set(a.cells) == {last})
    answers[-1].source = wrong.cells[last]
    nb.cells.insert(0, nbformat.v4.new_code_cell('raise RuntimeError("my own cell fails")'))
    nbformat.write(nb, path)
    done = make_validate(me, path)
    assert done.returncode != 0 and "NOT READY" in done.stdout, done.stdout
    first = re.search(r"The run's first error \(.*\): (before the first task, .*)", done.stdout)
    assert first, f"no first error named:\n{done.stdout}"
    assert "a cell of your own (cell 1 of" in first[1], done.stdout
    assert "RuntimeError: my own cell fails" in first[1], done.stdout
    failing = re.search(rf"test `{last}-tests` fails: (.*)", done.stdout)
    assert failing and wrong.feedback.lower() in failing[1].lower(), done.stdout


# --- Bad input (no kernel: in make check) ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.ipynb", None, "does not exist"),
        ("notes.txt", "just text", "is not a notebook"),
        ("broken.ipynb", "{not json", "is not a readable Jupyter notebook"),
        ("chapter.ipynb", nbformat.writes(nbformat.v4.new_notebook()), "has no graded cells"),
    ],
)
def test_validate_bad_input(tmp_path: Path, capsys, name: str, content: str | None, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert validate_main([str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err, err


def test_validate_reports_a_failing_assert_by_its_message():
    """What a failing assert checked and what the answer gave, in its message's words; an
    assert without a message, by the line that failed."""
    traceback = [
        "\x1b[0;31mAssertionError\x1b[0m   Traceback (most recent call last)",
        "Cell \x1b[0;32mIn[5], line 3\x1b[0m",
        "\x1b[0;32m----> 3\x1b[0m \x1b[38;5;28;01massert\x1b[39;00m image.shape == (28, 28), (",
    ]
    said = "weight_image must return a 28×28 image; its shape is (1, 1, 28, 28)"
    last = "\x1b[0;31mAssertionError\x1b[0m: "
    assert _reason("\n".join([*traceback, last + said])) == said
    assert _reason("\n".join([*traceback, last])) == (
        "AssertionError at `assert image.shape == (28, 28), (`"
    )


def test_make_validate_without_notebook():
    done = subprocess.run(["make", "validate"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode != 0
    assert "usage: make validate NB=exercises/<assignment>/<notebook>.ipynb" in done.stderr
