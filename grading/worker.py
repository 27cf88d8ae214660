"""The child process that grades one hand-in: ``python -m grading.worker JOB.json``.

:mod:`grading.autograde` starts one per hand-in, several at once. The worker runs nbgrader's own
``Autograde`` converter on a private copy of the course in a temporary workspace (the hand-in's
notebooks, a copy of the gradebook made after the assignment was registered, the real
``solutions/`` read for the locked cells), with the kernel started in the sandbox of
:mod:`grading.sandbox` and executed by :class:`grading.preprocessors.LimitedExecute`. It never
opens the course's gradebook: the grading parent reads the executed notebook and the report the
worker leaves in the workspace and records the scores itself.

Workspace layout (``ws`` is made by the parent, private to the grader)::

    ws/course/      nbgrader's root: gradebook copy, submitted/ and autograded/ (grader only)
    ws/private/     sandbox spec, kernel status and pid, Jupyter runtime, reports (grader only)
    ws/jupyter/     the sandbox kernel spec (readable)
    ws/kernel/      the kernel's own folders, owned by the sandbox user: work/ (its working
                    folder), home/, tmp/, cache/ (XNN_CACHE_DIR), course-models/
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from nbgrader.converters import Autograde

from .course import LOG, Course, run_converter
from .sandbox import KernelSpec, Limits, give_to

#: The kernel spec name of the sandbox kernel.
KERNEL_NAME = "xnn-sandbox"
#: The course library's folder for the models students train themselves
#: (``lib.train.CACHE_DIR_ENV``; named here so that the grader need not import torch).
MODEL_CACHE_ENV = "XNN_CACHE_DIR"
#: The course library's folder for the course models (``lib.train.COURSE_CACHE_DIR_ENV``).
COURSE_CACHE_ENV = "XNN_COURSE_CACHE_DIR"

AUTOGRADE_PREPROCESSORS = [
    "grading.preprocessors.LimitedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]


@dataclass(frozen=True)
class Job:
    """One hand-in to grade, as the parent hands it to the worker."""

    root: str  # the course root
    student: str
    assignment: str
    notebooks: list[str]  # paths of the hand-in's notebooks that passed the checks
    folder: str  # the hand-in's folder (its other files are copied to the kernel's work/)
    workspace: str
    gradebook: str  # the gradebook copy to start from
    course_models: str | None  # the course model cache to copy, if any
    user: str | None
    limits: Limits
    #: OpenMP threads of the kernel (torch's intra-op threads): the grader's share of the cores
    #: for one hand-in. ``None`` leaves the kernel's default, one thread per core, which with
    #: several hand-ins at once oversubscribes the cores (a 4-hand-in class ran 2.3x slower).
    threads: int | None = None

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> Job:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["limits"] = Limits(**data["limits"])
        return cls(**data)

    @property
    def autograded(self) -> Path:
        return Path(self.workspace) / "course" / "autograded" / self.student / self.assignment

    @property
    def reports(self) -> Path:
        return Path(self.workspace) / "private" / "reports"


def _copy_files(source: Path, dest: Path) -> None:
    """The non-notebook files of ``source`` (data a hand-in reads) into ``dest``."""
    if not source.is_dir():
        return
    for path in source.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.suffix != ".ipynb":
            target = dest / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def _library_root() -> Path:
    """The repository the course library ``lib`` is imported from (found without importing
    it: that would import torch)."""
    spec = importlib.util.find_spec("lib")
    if spec is None or spec.origin is None:
        raise RuntimeError("the course library `lib` is not importable: run `make setup`.")
    return Path(spec.origin).resolve().parent.parent


def _reachable() -> tuple[str, ...]:
    """Folders the kernel reads: the interpreter, the environment, the course library, data."""
    paths = {
        os.path.realpath(sys.base_prefix),
        os.path.realpath(sys.prefix),
        os.path.dirname(os.path.realpath(sys.executable)),
        str(_library_root()),
    }
    if os.environ.get("XNN_DATA_DIR"):
        paths.add(os.path.realpath(os.environ["XNN_DATA_DIR"]))
    return tuple(sorted(paths))


def _hidden(root: Path) -> tuple[str, ...]:
    """What the kernel must not see: the gradebook, the sources with their hidden tests, and
    every hand-in, graded copy and feedback of the class (of this course root and of the
    repository the course library comes from)."""
    paths = []
    for base in {root.resolve(), _library_root()}:
        course = Course(base)
        if not course.config_file.is_file():
            continue
        coursedir = course.coursedir()
        for step in ("source_directory", "submitted_directory", "autograded_directory"):
            paths.append(base / getattr(coursedir, step))
        paths.append(base / coursedir.feedback_directory)
        if coursedir.db_url.startswith("sqlite:///"):
            paths.append(Path(coursedir.db_url.removeprefix("sqlite:///")))
    return tuple(sorted({str(path) for path in paths if path.exists()}))


def prepare(job: Job) -> dict[str, str]:
    """Lay out the workspace; returns the environment of the kernel."""
    ws = Path(job.workspace)
    course, private, kernel = ws / "course", ws / "private", ws / "kernel"
    for folder in (course, private, private / "runtime", job.reports):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    submitted = course / "submitted" / job.student / job.assignment
    submitted.mkdir(parents=True)
    for notebook in job.notebooks:
        shutil.copyfile(notebook, submitted / Path(notebook).name)
    shutil.copyfile(job.gradebook, course / "gradebook.db")

    folders = {name: kernel / name for name in ("work", "home", "tmp", "cache", "course-models")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    _copy_files(Path(job.root) / "solutions" / job.assignment, folders["work"])
    _copy_files(Path(job.folder), folders["work"])
    if job.course_models and Path(job.course_models).is_dir():
        # A fresh copy per hand-in: nothing a hand-in does to it reaches the next one.
        shutil.copytree(job.course_models, folders["course-models"], dirs_exist_ok=True)
    give_to(kernel, job.user)

    spec = KernelSpec(
        limits=job.limits,
        user=job.user,
        workdir=str(folders["work"]),
        status_file=str(private / "kernel-status.json"),
        pid_file=str(private / "kernel.pid"),
        reachable=_reachable(),
        hidden=_hidden(Path(job.root)),
    ).write(private / "sandbox.json")
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
        "argv": [
            sys.executable,
            "-c",
            "import sys; from grading.sandbox import main; sys.exit(main(sys.argv[1:]))",
            str(spec),
            "--",
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
        ],
        "display_name": "Python 3 (grading sandbox)",
        "language": "python",
        "env": env,
        "metadata": {"debugger": False},
    }
    spec_dir = ws / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(kernel_spec), encoding="utf-8")
    return env


def run(job: Job) -> None:
    """Autograde the hand-in of ``job`` in its workspace (see the module docstring)."""
    prepare(job)
    ws = Path(job.workspace)
    os.environ["JUPYTER_PATH"] = str(ws / "jupyter")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(ws / "private" / "runtime")
    limits = job.limits
    cfg = Course(Path(job.root)).config(
        **{
            "CourseDirectory.root": str(ws / "course"),
            "CourseDirectory.source_directory": str(Path(job.root).resolve() / "solutions"),
            "CourseDirectory.db_url": f"sqlite:///{ws / 'course' / 'gradebook.db'}",
            "CourseDirectory.assignment_id": job.assignment,
            "CourseDirectory.student_id": job.student,
            "Autograde.autograde_preprocessors": AUTOGRADE_PREPROCESSORS,
            "LimitedExecute.kernel_name": KERNEL_NAME,
            # A loaded machine can take a while to start a kernel; that is not the hand-in's.
            "LimitedExecute.startup_timeout": 300,
            "LimitedExecute.timeout": int(limits.cell_timeout),
            "LimitedExecute.notebook_timeout": float(limits.notebook_timeout),
            "LimitedExecute.memory_mb": int(limits.memory_mb),
            "LimitedExecute.cpu_seconds": int(limits.cpu_seconds),
            "LimitedExecute.status_file": str(ws / "private" / "kernel-status.json"),
            "LimitedExecute.report_dir": str(job.reports),
        }
    )
    converter = Autograde(coursedir=Course(ws / "course").coursedir(cfg), config=cfg, log=LOG)
    converter.force = True
    converter.create_student = True
    run_converter(converter, f"autograding {job.folder}")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.ERROR, format="[grading.worker] %(message)s")
    import warnings

    warnings.filterwarnings("ignore")  # nbgrader's SQLAlchemy and nbformat noise
    run(Job.read(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
