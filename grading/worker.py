"""The process that grades one hand-in: ``python -m grading.worker JOB.json PARENT_PID``
(``0`` where it is forked from the grader's fork server, :mod:`grading.forkserver`).

It runs nbgrader's autograding (``NbGraderAPI.autograde``) on a private copy of the course in a
workspace, the kernel in the sandbox of :mod:`grading.sandbox`, and leaves an
:class:`~grading.autograde.Outcome` in ``ws/private/outcome.json``; it never opens the course's
gradebook. It ends with its parent (a parent-death signal) and, as a child subreaper, kills
whatever the hand-in started, even in another session, before it exits.

Workspace: ``ws/course/`` (nbgrader's root: gradebook copy, submitted/, autograded/) and
``ws/private/`` are the grader's; ``ws/jupyter/`` holds the kernel spec; ``ws/kernel/`` belongs
to the sandbox user: ``work/`` (the kernel's folder), ``home/``, ``tmp/``, ``cache/``
(``XNN_CACHE_DIR``) and ``course-models/``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import warnings
from pathlib import Path

import nbformat

from . import sandbox
from .autograde import Job, Outcome
from .course import REPO, Course, read_json, write_json

#: The kernel spec name of the sandbox kernel.
KERNEL_NAME = "xnn-sandbox"
#: The course library's folder for the models students train themselves
#: (``lib.train.CACHE_DIR_ENV``; named here so that the grader need not import torch).
MODEL_CACHE_ENV = "XNN_CACHE_DIR"
#: The course library's folder for the course models (``lib.train.COURSE_CACHE_DIR_ENV``).
COURSE_CACHE_ENV = "XNN_COURSE_CACHE_DIR"


def _reachable() -> tuple[str, ...]:
    """Folders the kernel reads: the interpreter, the environment, the course library, data,
    each by the path the kernel is given and by where it really is (a symlinked data folder is
    opened through its link, which may sit in a folder the sandbox user cannot enter)."""
    paths = [sys.base_prefix, sys.prefix, os.path.dirname(sys.executable), str(REPO)]
    paths.append(os.environ.get("XNN_DATA_DIR", ""))  # where set
    paths.append(os.path.dirname(os.environ.get("XNN_IMAGENET_WEIGHTS", "")))
    found = {os.path.abspath(path) for path in paths if path and os.path.exists(path)}
    return tuple(sorted(found | {os.path.realpath(path) for path in found}))


def _hidden(root: Path) -> tuple[str, ...]:
    """What the kernel must not see: the gradebook, the sources with their hidden tests, and
    every hand-in, graded copy and feedback of the class (of this course root and of the
    repository the course library comes from)."""
    paths = []
    for base in {root.resolve(), REPO}:
        course = Course(base)
        if course.config_file.is_file():
            paths += [course.step_dir(step) for step in ("source", "submitted", "autograded")]
            paths += [course.feedback_dir, course.gradebook]
    return tuple(sorted({str(path) for path in paths if path.exists()}))


def prepare(job: Job) -> dict[str, str]:
    """Lay out the workspace; returns the environment of the kernel."""
    ws, sub = job.workspace, job.submission
    private, kernel = ws / "private", ws / "kernel"
    for folder in (ws / "course", private / "runtime", private / "reports"):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    submitted = ws / "course" / "submitted" / sub.student / sub.assignment
    submitted.mkdir(parents=True)
    for path in [*sub.runnable, sub.folder / "timestamp.txt"]:  # the time, for late penalties
        if path.is_file():
            shutil.copyfile(path, submitted / path.name)
    shutil.copyfile(job.gradebook, ws / "course" / "gradebook.db")

    folders = {name: kernel / name for name in ("work", "home", "tmp", "cache", "course-models")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    # The hand-in's own files first, then the instructor's on top, as nbgrader's autograde
    # does: a hand-in cannot replace a data or helper file of the assignment.
    course = Course(job.root)
    course.copy_files(sub.folder, folders["work"])
    course.copy_files(course.source_dir / sub.assignment, folders["work"])
    if sub.course_models and sub.course_models.is_dir():
        # A fresh copy per hand-in: nothing a hand-in does to it reaches the next one.
        shutil.copytree(sub.course_models, folders["course-models"], dirs_exist_ok=True)
    sandbox.give_to(kernel, job.user)

    spec = sandbox.KernelSpec(
        memory_mb=sub.limits.memory_mb,
        cpu_seconds=sub.limits.cpu_seconds,
        user=job.user,
        workdir=str(folders["work"]),
        status_file=str(private / "kernel-status.json"),
        reachable=_reachable(),
        hidden=_hidden(job.root),
    )
    write_json(private / "sandbox.json", spec)
    env = {
        MODEL_CACHE_ENV: str(folders["cache"]),
        COURSE_CACHE_ENV: str(folders["course-models"]),
        "HOME": str(folders["home"]),
        "TMPDIR": str(folders["tmp"]),
        "MPLCONFIGDIR": str(folders["home"] / ".matplotlib"),
        "IPYTHONDIR": str(folders["home"] / ".ipython"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TQDM_DISABLE": "1",
    }
    if job.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(job.threads)
    kernel_spec = {
        "argv": [sys.executable, "-c", sandbox.LAUNCHER, str(private / "sandbox.json"), "--"]
        + [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (grading sandbox)",
        "language": "python",
        "env": env,
        "metadata": {"debugger": False},
    }
    spec_dir = ws / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(kernel_spec), encoding="utf-8")
    return env


def run(job: Job) -> Outcome:
    """Autograde the hand-in of ``job`` in its workspace (see the module docstring)."""
    prepare(job)
    ws, sub, limits = job.workspace, job.submission, job.submission.limits
    os.environ["JUPYTER_PATH"] = str(ws / "jupyter")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(ws / "private" / "runtime")
    reports = ws / "private" / "reports"
    status = str(ws / "private" / "kernel-status.json")
    Course(job.root).nbgrader(
        "autograde",
        f"autograding {sub.folder}",
        sub.assignment,
        sub.student,
        **{
            "CourseDirectory.root": str(ws / "course"),
            "CourseDirectory.source_directory": str(Course(job.root).source_dir),
            "CourseDirectory.db_url": f"sqlite:///{ws / 'course' / 'gradebook.db'}",
            "LimitedExecute.kernel_name": KERNEL_NAME,
            "LimitedExecute.startup_timeout": int(limits.startup_timeout),
            "LimitedExecute.timeout": int(limits.cell_timeout),
            "LimitedExecute.notebook_timeout": limits.notebook_timeout,
            "LimitedExecute.memory_mb": limits.memory_mb,
            "LimitedExecute.cpu_seconds": limits.cpu_seconds,
            "LimitedExecute.status_file": status,
            "LimitedExecute.report_dir": str(reports),
        },
    )
    outcome = Outcome.start(sub)
    autograded = ws / "course" / "autograded" / sub.student / sub.assignment
    for path in sub.runnable:
        outcome.executed[path.name] = nbformat.read(autograded / path.name, as_version=4)
        report = json.loads((reports / f"{path.stem}.json").read_text(encoding="utf-8"))
        if report["reason"]:
            outcome.notes[path.name] = report["reason"]
        if report["tampering"]:
            outcome.tampering.setdefault(path.name, []).append(report["tampering"])
    return outcome


def main(argv: list[str]) -> int:
    job = read_json(Path(argv[0]), Job)

    def end(signum: int | None = None, frame: object = None) -> None:
        sandbox.kill_descendants()
        sandbox.kill_user_processes(job.user)
        if signum:
            os._exit(128 + signum)

    signal.signal(signal.SIGTERM, end)
    sandbox.die_with_parent(signal.SIGTERM, int(argv[1]) or None)  # 0: forked, see autograde
    sandbox.adopt_orphans()
    warnings.filterwarnings("ignore")  # nbgrader's SQLAlchemy and nbformat noise
    try:
        write_json(job.workspace / "private" / "outcome.json", run(job))
    finally:
        end()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
