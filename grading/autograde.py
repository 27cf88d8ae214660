"""Step 2: grade a class, in one pipeline whether the hand-ins run here or on Slurm.

1. **plan** (:func:`plan_class`): find the hand-ins, register each assignment in the gradebook,
   check every notebook without running it (a broken one scores 0 with its reason), give each
   hand-in its limits and prepare the course models its assignment uses;
2. **run** each hand-in with :func:`grade_submission`, which leaves an :class:`Outcome`:
   :func:`autograde` runs ``jobs`` at a time here, :mod:`grading.slurm` as a job array;
3. **record** (:func:`record_class`): only the grading parent writes the gradebook, with
   nbgrader's ``SaveAutoGrades`` and ``AssignLatePenalties``, and then checks that nobody else
   changed it, the sources or the hand-ins.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
from nbgrader.utils import parse_utc
from tqdm.auto import tqdm

from . import forkserver, tamper
from .course import LOG, Course, GradingError, Limits, grade_id, read_json, write_json
from .release import prepare_course_models, register, slowest_cell
from .sandbox import FORK_SERVER_ENV, command, kill_user_processes, sandbox_user

log = logging.getLogger("grading")

#: File, in ``autograded/<student>/<assignment>/``, with why a hand-in lost points to a limit
#: or a bad notebook: ``{"<notebook>.ipynb": "reason", ...}``. Read by :mod:`grading.report`.
NOTES_FILE = "grading-notes.json"
#: File beside it with why a notebook's scores need a person's review or are 0: the changes to
#: the tests' tools that :mod:`grading.tamper` found, ``{"<notebook>.ipynb": ["reason", ...]}``.
TAMPERING_FILE = "grading-tampering.json"


@dataclass
class Submission:
    """One student's hand-in of one assignment and, once the class is planned, how it runs."""

    student: str
    assignment: str
    folder: Path
    #: the notebooks that passed the checks, and why the others score 0 without running
    runnable: list[Path] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    #: what the student's cells change of the tests' tools, by notebook (:func:`tamper.scan`)
    tampering: dict[str, list[str]] = field(default_factory=dict)
    limits: Limits | None = None
    #: the course models to copy for the kernel (None: its assignment uses none)
    course_models: Path | None = None


@dataclass
class Outcome:
    """What grading one hand-in left: its executed notebooks (as JSON), why any notebook lost
    points to a limit or did not run, the changes to the tests' tools that the scan and the guard
    found (:mod:`grading.tamper`), and a problem of the grader itself, if any."""

    submission: Submission
    executed: dict[str, dict] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    failure: str | None = None
    tampering: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def start(cls, submission: Submission) -> Outcome:
        """Before anything ran: what the plan found."""
        tampering = {name: list(found) for name, found in submission.tampering.items()}
        return cls(submission, notes=dict(submission.notes), tampering=tampering)

    @classmethod
    def zero(cls, submission: Submission, reason: str = "", failure: str | None = None) -> Outcome:
        """Nothing executed: every notebook that would have run scores 0 for ``reason``."""
        outcome = cls.start(submission)
        outcome.notes.update({path.name: reason for path in submission.runnable if reason})
        outcome.failure = failure
        return outcome


@dataclass
class Plan:
    """A class, ready to run: its hand-ins, the hashes of the files only the instructor may
    change (compared after grading), and the problems found before anything ran."""

    root: Path
    submissions: list[Submission]
    snapshot: dict[str, str]
    failures: list[str] = field(default_factory=list)


@dataclass
class AutogradeResult:
    """The hand-ins whose scores were recorded, in that order, and the grader's problems."""

    graded: list[Submission] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


# --- 1. Plan ------------------------------------------------------------------------------------


def find_submissions(course: Course) -> list[Submission]:
    """Every hand-in in the submitted folder; a :class:`GradingError` if there is none, if one is
    misplaced, for an assignment without a source, or with a ``timestamp.txt`` that is no time."""
    submitted = course.submitted_dir
    layout = f"{submitted}/<student>/<assignment>/<notebook>.ipynb"
    if not submitted.is_dir():
        raise GradingError(
            f"no submissions found: the folder {submitted} does not exist. "
            f"Expected hand-ins at {layout}."
        )
    misplaced = sorted(submitted.glob("*.ipynb")) + sorted(submitted.glob("*/*.ipynb"))
    if misplaced:
        raise GradingError(
            f"{misplaced[0]} is not where hand-ins go: expected {layout} "
            "(one folder per student, then one per assignment)."
        )
    submissions = [
        Submission(student=folder.parent.name, assignment=folder.name, folder=folder)
        for folder in sorted(submitted.glob("*/*"))
        if folder.is_dir()
        and not folder.name.startswith(".")  # e.g. .ipynb_checkpoints
        and not folder.parent.name.startswith(".")
        and any(folder.glob("*.ipynb"))
    ]
    if not submissions:
        raise GradingError(f"no submissions found in {submitted}: expected {layout}.")
    sources = course.source_assignments()
    for submission in submissions:
        if submission.assignment not in sources:
            raise GradingError(
                f"{submission.folder} is a hand-in for assignment {submission.assignment!r}, "
                f"which has no source: expected "
                f"{course.source_dir / submission.assignment}/<notebook>.ipynb "
                f"(assignments with a source: {', '.join(sources) or 'none'})."
            )
        timestamp(submission)
    return submissions


def timestamp(submission: Submission):
    """When the hand-in was handed in: its ``timestamp.txt``, as nbgrader's exchange and its
    ZipCollect write it (``None`` without one); an error naming the file if it is no time."""
    path = Path(submission.folder) / "timestamp.txt"
    text = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    try:
        return parse_utc(text) if text else None
    except ValueError:
        raise GradingError(
            f"{path} holds {text[:40]!r}, not a time such as '2025-01-31 23:59:00 UTC': "
            "correct it, or delete it if the time is not known."
        ) from None


def assignment_cells(course: Course) -> dict[str, dict[str, str]]:
    """assignment -> its source notebooks' nbgrader cell ids -> their cell types."""
    cells: dict[str, dict[str, str]] = {}
    for assignment in course.source_assignments():
        cells[assignment] = {}
        for path in course.source_notebooks(assignment):
            for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
                if grade_id(cell):
                    cells[assignment][grade_id(cell)] = cell.get("cell_type")
    return cells


def check_notebook(path: Path, assignment: str, cells: dict[str, dict[str, str]]) -> str | None:
    """Why the hand-in ``path`` cannot be graded as part of ``assignment``, or ``None``; ``cells``
    is :func:`assignment_cells`. Nothing of it runs here."""
    data = path.read_bytes()
    if not data.strip():
        return "the notebook file is empty"
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return "the notebook file is not UTF-8 text"
    except json.JSONDecodeError as error:
        return f"the notebook file is not valid JSON ({error.msg} at line {error.lineno})"
    if not isinstance(raw, dict) or "cells" not in raw and "nbformat" not in raw:
        return "the file is JSON but not a notebook"
    if raw.get("nbformat") != 4:
        return f"the notebook has nbformat version {raw.get('nbformat')!r}; expected 4"
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # noqa: BLE001 -- nbformat raises several kinds
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"the notebook is not valid nbformat 4: {first}"
    if not nb.cells:
        return "the notebook has no cells"
    types = {grade_id(cell): cell.get("cell_type") for cell in raw["cells"] if grade_id(cell)}
    # Assignments may share cell ids such as "setup": the one sharing most cells is the owner.
    own = len(types.keys() & cells.get(assignment, {}).keys())
    best = max(cells, key=lambda name: (len(types.keys() & cells[name].keys()), name == assignment))
    if best != assignment and len(types.keys() & cells[best].keys()) > own:
        return f"this is a notebook of assignment {best!r}, not of {assignment!r}"
    if not own:
        return f"the notebook holds none of the cells of assignment {assignment!r}"
    for cell in raw["cells"]:  # nbgrader restores a cell's type, but fails without a cell id
        was = cells[assignment].get(grade_id(cell) or "", cell.get("cell_type"))
        if was != cell.get("cell_type") and not cell.get("id"):
            return (
                f"cell {grade_id(cell)!r} was changed from a {was} cell to a "
                f"{cell.get('cell_type')} cell, which the grader cannot undo in an nbformat "
                f"4.{raw.get('nbformat_minor')} notebook: hand in the cell as it was released"
            )
    return None


def check_submission(course: Course, submission: Submission, cells: dict, action: str) -> None:
    """Which notebooks of ``submission`` run, why the others score 0 without running, and what
    each changes of the tests' tools (with ``action`` "zero", such a notebook does not run)."""
    expected = {path.name for path in course.source_notebooks(submission.assignment)}
    handed_in = {path.name: path for path in sorted(submission.folder.glob("*.ipynb"))}
    for name in sorted(handed_in.keys() - expected):
        log.warning("%s is not a notebook of %r (expected: %s); it is not graded.", handed_in[name],
                    submission.assignment, ", ".join(sorted(expected)))  # fmt: skip
    for name in sorted(expected):
        path = handed_in.get(name)
        reason = check_notebook(path, submission.assignment, cells) if path else None
        if path and not reason:
            source = course.source_dir / submission.assignment / name
            found = tamper.scan(*(nbformat.read(nb, as_version=4) for nb in (path, source)))
            if found:
                submission.tampering[name] = [f"changes the tests' tools: {tamper.listed(found)}"]
            if not found or action != "zero":
                submission.runnable.append(path)
        else:
            submission.notes[name] = reason or "no notebook of this name was handed in"


def cell_limits(course: Course, limits: Limits, assignment: str) -> Limits:
    """``limits`` for ``assignment``: its per-cell limit as the instructor set it, else derived
    from the solution's slowest cell (:func:`release.time_solution`)."""
    if limits.cell_timeout:
        return limits
    slowest = slowest_cell(course, assignment)
    fixed = float(course.config().Execute.timeout)
    if slowest is None:
        log.warning("%s: its solution was not timed since it changed (`make exercises` times "
                    "it), so the fixed limit holds: %g s per cell", assignment, fixed)  # fmt: skip
    cell = fixed if slowest is None else limits.cell_timeout_factor * slowest
    cell = min(fixed, max(limits.cell_timeout_floor, cell))
    return dataclasses.replace(limits, cell_timeout=cell)


def snapshot_sources(course: Course) -> dict[str, str]:
    """Hashes of every file students' code must leave alone: the sources, the released
    exercises, the configuration and the hand-ins."""
    files = [course.config_file]
    for folder in (course.source_dir, course.release_dir, course.submitted_dir):
        files += sorted(path for path in folder.rglob("*") if path.is_file())
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def plan_class(course: Course, limits: Limits) -> Plan:
    """Everything before a notebook runs (see the module docstring)."""
    submissions = find_submissions(course)
    plan = Plan(root=course.root, submissions=[], snapshot=snapshot_sources(course))
    registered = {}  # assignment -> its limits
    for assignment in sorted({submission.assignment for submission in submissions}):
        try:
            register(course, assignment)
            registered[assignment] = cell_limits(course, limits, assignment)
        except GradingError as error:
            plan.failures.append(str(error))
    notebooks = [path for name in registered for path in course.source_notebooks(name)]
    models, cells = prepare_course_models(course, notebooks), assignment_cells(course)
    action = tamper.action(course)
    for submission in (s for s in submissions if s.assignment in registered):
        check_submission(course, submission, cells, action)
        submission.limits, submission.course_models = registered[submission.assignment], models
        plan.submissions.append(submission)
    return plan


# --- 2. Run each hand-in ----------------------------------------------------------------------

#: The workers running now, so that the grader can end them when it is stopped.
_RUNNING: set[subprocess.Popen] = set()
_STOPPING = threading.Event()


@dataclass
class Job:
    """What a worker (:mod:`grading.worker`) needs: one planned hand-in, a private workspace,
    the gradebook copy to start from, the sandbox user and the kernel's OpenMP threads."""

    root: Path
    submission: Submission
    workspace: Path
    gradebook: Path
    user: str | None
    threads: int | None


def grade_submission(
    course: Course, submission: Submission, base: Path, verbose: bool = False, threads: int = 1
) -> Outcome:
    """Grade one planned hand-in in a worker process, in a workspace under ``base`` (a
    :func:`grading_folder`), starting from its gradebook copy; the course's is not touched.
    ``threads``: the kernel's OpenMP threads (:func:`threads_per_handin`)."""
    if not submission.runnable:
        return Outcome.zero(submission)
    limits = submission.limits
    workspace = Path(tempfile.mkdtemp(prefix="handin-", dir=base))
    os.chmod(workspace, 0o711)  # the kernel's user reaches ws/kernel/, nothing else
    (workspace / "private").mkdir(mode=0o700)
    job_file = workspace / "private" / "job.json"
    with sandbox_user() as (user, lock):
        try:
            gradebook = base / "gradebook.db"
            write_json(job_file, Job(course.root, submission, workspace, gradebook, user, threads))
            if _STOPPING.is_set():
                raise SystemExit("the grader is stopping")
            # From the fork server where one runs: the worker's parent is then its keeper (0).
            parent = 0 if os.environ.get(FORK_SERVER_ENV) else os.getpid()
            worker = [sys.executable, "-m", "grading.worker", str(job_file), str(parent)]
            process = subprocess.Popen(
                command(worker, lock),
                stdout=None if verbose else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
                cwd=workspace,
                pass_fds=lock,
            )
            _RUNNING.add(process)
            # The notebook limit holds for each notebook; the margin covers start-up and saving.
            timeout = limits.notebook_timeout * len(submission.runnable) + limits.margin
            try:
                _, err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.terminate()  # the worker ends its kernel and the hand-in's processes
                try:
                    process.communicate(timeout=limits.margin)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                return Outcome.zero(submission, f"the notebook time limit "
                                    f"({limits.notebook_timeout:g} s) was reached; the grader "
                                    "stopped the hand-in")  # fmt: skip
            finally:
                if process.poll() is None:  # the grader itself is stopped: so is the worker
                    process.terminate()
                _RUNNING.discard(process)
            outcome = workspace / "private" / "outcome.json"
            if process.returncode == 0 and outcome.is_file():
                return read_json(outcome, Outcome)
            return failed(submission, f"exit status {process.returncode}", err)
        finally:
            kill_user_processes(user)
            shutil.rmtree(workspace, ignore_errors=True)


def failed(submission: Submission, status: str, err: str) -> Outcome:
    """The outcome of a hand-in whose worker failed: 0 for every notebook, and a failure."""
    tail = err.strip().splitlines()[-1] if err.strip() else status
    failure = (
        f"grading {submission.folder} failed ({status}); it was scored 0. "
        f"The grader's error output:\n{err.strip()[-3000:]}"
    )
    return Outcome.zero(submission, f"the grader could not run this notebook: {tail}", failure)


def threads_per_handin(jobs: int) -> int:
    """The cores of this machine shared among ``jobs`` hand-ins graded at once (at least 1);
    ``$OMP_NUM_THREADS``, where the instructor set it, instead."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, len(os.sched_getaffinity(0)) // jobs)


@contextmanager
def grading_folder(gradebook: Path) -> Iterator[Path]:
    """A temporary folder for the hand-ins' workspaces, which sandbox users reach but cannot
    list, with a private copy of ``gradebook`` for the workers to start from and a fork server
    for their kernels (:mod:`grading.forkserver`); within the block,
    SIGTERM and SIGINT end the grader and every worker it started (each worker then ends its
    kernel and whatever the hand-in started; :mod:`grading.worker`)."""

    def stop(signum: int, frame: object) -> None:
        _STOPPING.set()
        for process in list(_RUNNING):
            process.terminate()
        raise SystemExit(128 + signum)

    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT) if main}
    try:
        with tempfile.TemporaryDirectory(prefix="grading-") as tmp, forkserver.serving(Path(tmp)):
            os.chmod(tmp, 0o711)
            os.chmod(shutil.copyfile(gradebook, Path(tmp) / "gradebook.db"), 0o600)
            yield Path(tmp)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def autograde(
    course: Course,
    jobs: int | None = None,
    limits: Limits | None = None,
    progress: bool = True,
    verbose: bool = False,
) -> AutogradeResult:
    """Grade every hand-in in the submitted folder, ``jobs`` at a time (default: all cores),
    within ``limits`` (default: the course's). A bad notebook, a dying kernel or a limit costs the
    hand-in its points, with the reason, never the others; grader problems are ``failures``."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    plan = plan_class(course, limits or Limits.of(course))
    if os.geteuid() == 0:
        log.info("hand-ins run as sandbox users (xnn-grade<N>), one per hand-in at a time")
    with grading_folder(course.gradebook) as base:
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            args = (base, verbose, threads_per_handin(jobs))
            futures = [pool.submit(grade_submission, course, s, *args) for s in plan.submissions]
            bar = tqdm(as_completed(futures), "grading", len(futures), disable=not progress)
            return record_class(course, plan, (future.result() for future in bar))
        finally:
            pool.shutdown(cancel_futures=True)


# --- 3. Record (the grading parent only) --------------------------------------------------------


def gradebook_dump(path: Path) -> str:
    """The gradebook's contents as SQL text, to compare before and after."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return "\n".join(connection.iterdump())


def record(course: Course, outcome: Outcome) -> None:
    """Write one hand-in's scores into the gradebook: its executed notebooks scored by
    nbgrader's ``SaveAutoGrades`` and ``AssignLatePenalties`` (its ``timestamp.txt`` against the
    due date), then :func:`settle`; the notebooks and notes go to ``autograded/``."""
    sub, cfg = outcome.submission, course.config()
    db_url = course.coursedir(cfg).db_url
    with Gradebook(db_url, course.coursedir(cfg).course_id) as gb:
        gb.update_or_create_student(sub.student)
        handed_in = timestamp(sub)
        gb.update_or_create_submission(
            sub.assignment, sub.student, **({"timestamp": handed_in} if handed_in else {})
        )
    folder = course.autograded_dir / sub.student / sub.assignment
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for filename, data in outcome.executed.items():
        nb = nbformat.from_dict(data)
        resources = {"nbgrader": {"notebook": Path(filename).stem, "assignment": sub.assignment,
                                  "student": sub.student, "db_url": db_url}}  # fmt: skip
        for step in (SaveAutoGrades, AssignLatePenalties):
            step(config=cfg, log=LOG).preprocess(nb, resources)
        nbformat.write(nb, folder / filename)
    action = tamper.action(course)
    settle(course, outcome, action)
    (folder / NOTES_FILE).write_text(json.dumps(outcome.notes, indent=1), encoding="utf-8")
    tampering = {name: [f"{reason} [{tamper.ACTIONS[action]}]" for reason in found]
                 for name, found in outcome.tampering.items()}  # fmt: skip
    (folder / TAMPERING_FILE).write_text(json.dumps(tampering, indent=1), encoding="utf-8")


def settle(course: Course, outcome: Outcome, action: str) -> None:
    """In the gradebook: 0 for every graded cell of a notebook that did not run, as nbgrader
    does for a missing notebook; for a notebook that changed the tests' tools, as ``action``
    says: 0 for every cell ("zero"), or every cell left to a person's review ("review")."""
    sub, cfg = outcome.submission, course.config()
    with Gradebook(course.coursedir(cfg).db_url, course.coursedir(cfg).course_id) as gb:
        for notebook in gb.find_assignment(sub.assignment).notebooks:
            name = f"{notebook.name}.ipynb"
            zero = name not in outcome.executed or action == "zero" and name in outcome.tampering
            if zero or name in outcome.tampering:
                graded = gb.find_submission_notebook(notebook.name, sub.assignment, sub.student)
                for grade in graded.grades:
                    if zero:
                        grade.auto_score, grade.needs_manual_grade = 0, False
                    else:
                        grade.needs_manual_grade = True
                gb.db.commit()


def record_class(course: Course, plan: Plan, outcomes: Iterable[Outcome]) -> AutogradeResult:
    """Record ``outcomes`` as they come; check before each write and at the end that nobody
    but this process changed the gradebook, and that the files only the instructor may change
    are as ``plan`` found them."""
    result = AutogradeResult(failures=list(plan.failures))
    expected = gradebook_dump(course.gradebook)

    def check(when: str) -> None:
        if gradebook_dump(course.gradebook) != expected:
            result.failures.append(
                f"{course.gradebook} was changed by something other than the grader ({when}). "
                "The scores in it cannot be trusted: grade again from a fresh gradebook."
            )

    for outcome in outcomes:
        check(f"while {outcome.submission.folder} was being graded")
        record(course, outcome)
        expected = gradebook_dump(course.gradebook)
        result.graded.append(outcome.submission)
        result.failures += [outcome.failure] if outcome.failure else []
    check("after grading")
    changed = sorted({path for path, _ in plan.snapshot.items() ^ snapshot_sources(course).items()})
    if changed:
        what = "files that only the instructor may change were changed while grading"
        result.failures.append(f"{what}: {', '.join(changed)}")
    return result
