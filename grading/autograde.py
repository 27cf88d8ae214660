"""Step 2: grade every hand-in of a class, each in its own sandboxed child process.

Hand-ins are expected at ``submitted/<student>/<assignment>/<notebook>.ipynb``. The grading
parent (this module) does everything that touches the course: it records each assignment's
current source in the gradebook (:func:`release.register`), checks every notebook before it runs
(:func:`check_notebook`: a file that is empty, not JSON, of another nbformat, without cells or
of another assignment is scored 0 with its reason and never run), prepares the course models
once, and then hands the hand-ins to ``jobs`` child processes at a time (:mod:`grading.worker`).
Each child runs nbgrader's ``Autograde`` on a private copy, with the kernel in the sandbox of
:mod:`grading.sandbox` and within the :class:`~grading.sandbox.Limits`. Only the parent writes
the gradebook, one hand-in at a time as the children finish, with nbgrader's own
``SaveAutoGrades``; a hand-in whose kernel died or that hit a limit is scored like any other,
with 0 for the tests that did not run. Afterwards the parent checks that the sources, the
hand-ins and the gradebook were changed by nobody but itself, and writes the feedback
(:mod:`grading.feedback`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import SaveAutoGrades
from tqdm.auto import tqdm

from .course import LOG, Course, GradingError
from .release import register
from .sandbox import Limits, kill_group, kill_user_processes, sandbox_user
from .worker import COURSE_CACHE_ENV, MODEL_CACHE_ENV, Job

log = logging.getLogger("grading")

__all__ = ["MODEL_CACHE_ENV", "COURSE_CACHE_ENV"]

#: File, in ``autograded/<student>/<assignment>/``, with why a hand-in lost points to a limit
#: or a bad notebook: ``{"<notebook>.ipynb": "reason", ...}``. Read by :mod:`grading.report`.
NOTES_FILE = "grading-notes.json"

#: How ``python -m lib course-models`` names the folder it filled (its first line).
COURSE_CACHE_LINE = "course cache:"


@dataclass(frozen=True)
class Submission:
    """One student's hand-in of one assignment."""

    student: str
    assignment: str
    folder: Path

    @property
    def notebooks(self) -> list[Path]:
        return sorted(self.folder.glob("*.ipynb"))


@dataclass
class AutogradeResult:
    """What :func:`autograde` graded, why hand-ins lost points, and grader failures."""

    submissions: list[Submission]
    #: (student, assignment) -> {notebook file name: reason} for limits and bad notebooks
    notes: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    #: problems of the grader itself (a score may still have been recorded)
    failures: list[str] = field(default_factory=list)
    #: the hand-ins whose scores were recorded, in the order they finished
    graded: list[Submission] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _layout(course: Course) -> str:
    return f"{course.submitted_dir}/<student>/<assignment>/<notebook>.ipynb"


def find_submissions(course: Course) -> list[Submission]:
    """Every hand-in in the submitted folder, checked against the source folder.

    Raises :class:`GradingError` if there is none, if notebooks sit at the wrong depth, or if a
    hand-in is for an assignment without a source.
    """
    submitted = course.submitted_dir
    if not submitted.is_dir():
        raise GradingError(
            f"no submissions found: the folder {submitted} does not exist. "
            f"Expected hand-ins at {_layout(course)}."
        )
    misplaced = sorted(submitted.glob("*.ipynb")) + sorted(submitted.glob("*/*.ipynb"))
    if misplaced:
        raise GradingError(
            f"{misplaced[0]} is not where hand-ins go: expected {_layout(course)} "
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
        raise GradingError(f"no submissions found in {submitted}: expected {_layout(course)}.")
    sources = course.source_assignments()
    for submission in submissions:
        if submission.assignment not in sources:
            raise GradingError(
                f"{submission.folder} is a hand-in for assignment {submission.assignment!r}, "
                f"which has no source: expected "
                f"{course.source_dir / submission.assignment}/<notebook>.ipynb "
                f"(assignments with a source: {', '.join(sources) or 'none'})."
            )
    return submissions


# --- Checks before anything runs ------------------------------------------------------------


def _grade_ids(nb: dict) -> set[str]:
    return {
        cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        for cell in nb.get("cells", [])
        if isinstance(cell, dict) and cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    }


def assignment_cells(course: Course) -> dict[str, set[str]]:
    """assignment -> the nbgrader cell ids of its source notebooks."""
    cells: dict[str, set[str]] = {}
    for assignment in course.source_assignments():
        cells[assignment] = set()
        for path in course.source_notebooks(assignment):
            cells[assignment] |= _grade_ids(json.loads(path.read_text(encoding="utf-8")))
    return cells


def check_notebook(path: Path, assignment: str, cells: dict[str, set[str]]) -> str | None:
    """Why the hand-in notebook ``path`` cannot be graded as part of ``assignment``, or ``None``.

    ``cells`` is :func:`assignment_cells`. No code of the notebook runs here.
    """
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
    ids = _grade_ids(raw)
    # Assignments may share cell ids such as "setup": the one sharing most cells is the owner.
    own = len(ids & cells.get(assignment, set()))
    best = max(cells, key=lambda name: (len(ids & cells[name]), name == assignment))
    if best != assignment and len(ids & cells[best]) > own:
        return f"this is a notebook of assignment {best!r}, not of {assignment!r}"
    if not own:
        return f"the notebook holds none of the cells of assignment {assignment!r}"
    return None


# --- Course models ------------------------------------------------------------------------------


def check_submission(
    course: Course, submission: Submission, cells: dict[str, set[str]]
) -> tuple[list[Path], dict[str, str]]:
    """The notebooks of ``submission`` to run, and why the others score 0 without running."""
    notes: dict[str, str] = {}
    runnable = []
    expected = {path.name for path in course.source_notebooks(submission.assignment)}
    for path in submission.notebooks:
        if path.name not in expected:
            log.warning(
                "%s is not a notebook of %r (expected: %s); it is not graded.",
                path,
                submission.assignment,
                ", ".join(sorted(expected)),
            )
            continue
        reason = check_notebook(path, submission.assignment, cells)
        if reason:
            notes[path.name] = reason
        else:
            runnable.append(path)
    for name in sorted(expected - {path.name for path in submission.notebooks}):
        notes[name] = "no notebook of this name was handed in"
    return runnable, notes


def prepare_course_models(course: Course) -> Path:
    """Train or load every course model once, where the chapters keep them too.

    Runs ``python -m lib course-models`` in the grader's environment, so the folder is the
    library's course cache (``$XNN_COURSE_CACHE_DIR``, else the model cache, ``.cache/models``):
    models that the book or the tests already trained are only loaded, and a model trains at
    most once however often a class is graded. Each hand-in gets its own copy of that folder.
    """
    result = subprocess.run(
        [sys.executable, "-m", "lib", "course-models"],
        cwd=course.root,
        capture_output=True,
        text=True,
        check=False,
    )
    folder = next(
        (
            Path(line.removeprefix(COURSE_CACHE_LINE).strip())
            for line in result.stdout.splitlines()
            if line.startswith(COURSE_CACHE_LINE)
        ),
        None,
    )
    if result.returncode != 0 or folder is None:
        raise GradingError(
            f"could not prepare the course models (`python -m lib course-models` exited with "
            f"{result.returncode}):\n{(result.stderr or result.stdout).strip()[-2000:]}"
        )
    return folder


# --- Watching what only the grader may change ----------------------------------------------


def _tree_hashes(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def snapshot_sources(course: Course) -> dict[str, str]:
    """Hashes of every file students' code must leave alone: the sources, the released
    exercises, the configuration and the hand-ins."""
    hashes = {}
    for folder in (course.source_dir, course.release_dir, course.submitted_dir):
        hashes.update(_tree_hashes(folder))
    hashes[str(course.config_file)] = hashlib.sha256(course.config_file.read_bytes()).hexdigest()
    return hashes


def gradebook_file(course: Course) -> Path:
    db_url = course.coursedir().db_url
    if not db_url.startswith("sqlite:///"):
        raise GradingError(f"the grader needs an SQLite gradebook; {db_url} is not one.")
    return Path(db_url.removeprefix("sqlite:///"))


def gradebook_dump(path: Path) -> str:
    """The gradebook's contents as SQL text, to compare before and after."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


class GradebookGuard:
    """Checks, before each of the parent's writes and at the end, that nobody else changed the
    gradebook since the parent's last write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.expected = gradebook_dump(path)

    def check(self, when: str) -> str | None:
        """A message if the gradebook changed since the parent's last write, else ``None``."""
        if gradebook_dump(self.path) != self.expected:
            return (
                f"{self.path} was changed by something other than the grader ({when}). "
                "The scores in it cannot be trusted: grade again from a fresh gradebook."
            )
        return None

    def wrote(self) -> None:
        self.expected = gradebook_dump(self.path)


# --- Recording scores (parent only) ------------------------------------------------------------


def _record_zero(gb: Gradebook, notebook: str, submission: Submission) -> None:
    """0 for every graded cell of ``notebook``, as nbgrader does for a missing notebook."""
    graded = gb.find_submission_notebook(notebook, submission.assignment, submission.student)
    for grade in graded.grades:
        grade.auto_score = 0
        grade.needs_manual_grade = False
    gb.db.commit()


def record(
    course: Course,
    submission: Submission,
    executed: dict[str, nbformat.NotebookNode],
    notes: dict[str, str],
) -> None:
    """Write the scores of one hand-in into the course's gradebook.

    ``executed`` maps notebook names to the notebooks the child executed; they are scored by
    nbgrader's ``SaveAutoGrades``. Every other notebook of the assignment scores 0 (its reason is
    in ``notes``). The executed notebooks go to ``autograded/<student>/<assignment>/`` with
    ``notes`` beside them, for the report and the feedback.
    """
    db_url = course.coursedir().db_url
    with Gradebook(db_url, course.coursedir().course_id) as gb:
        gb.update_or_create_student(submission.student)
        gb.update_or_create_submission(submission.assignment, submission.student)
        names = [nb.name for nb in gb.find_assignment(submission.assignment).notebooks]
        for name in names:
            if f"{name}.ipynb" not in executed:
                _record_zero(gb, name, submission)
    saver = SaveAutoGrades(log=LOG)
    for filename, nb in executed.items():
        resources = {
            "nbgrader": {
                "notebook": Path(filename).stem,
                "assignment": submission.assignment,
                "student": submission.student,
                "db_url": db_url,
            }
        }
        saver.preprocess(nb, resources)
    folder = course.autograded_dir / submission.student / submission.assignment
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for filename, nb in executed.items():
        nbformat.write(nb, folder / filename)
    (folder / NOTES_FILE).write_text(json.dumps(notes, indent=1), encoding="utf-8")


# --- Running the children ----------------------------------------------------------------------


@dataclass
class Outcome:
    """What grading one hand-in left: its executed notebooks, and why others score 0."""

    submission: Submission
    executed: dict[str, nbformat.NotebookNode]
    notes: dict[str, str]
    failure: str | None = None


def _run_child(job: Job, timeout: float, verbose: bool) -> tuple[int | None, str]:
    """Run the worker of ``job``; returns (exit status or None if it was stopped, stderr)."""
    job_file = job.write(Path(job.workspace) / "private" / "job.json")
    process = subprocess.Popen(
        [sys.executable, "-m", "grading.worker", str(job_file)],
        stdout=subprocess.DEVNULL if not verbose else None,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=job.workspace,
    )
    try:
        _, err = process.communicate(timeout=timeout)
        return process.returncode, err
    except subprocess.TimeoutExpired:
        kill_group(process.pid)
        _, err = process.communicate()
        return None, err
    finally:
        pid_file = Path(job.workspace) / "private" / "kernel.pid"
        if pid_file.is_file():
            kill_group(int(pid_file.read_text(encoding="utf-8") or 0) or -1)
        kill_group(process.pid)
        kill_user_processes(job.user)


def grade_submission(
    course: Course,
    submission: Submission,
    runnable: list[Path],
    notes: dict[str, str],
    base: Path,
    gradebook_copy: Path,
    course_models: Path | None,
    limits: Limits,
    verbose: bool,
    threads: int | None = None,
) -> Outcome:
    """Grade one hand-in in a sandboxed child process with the grader's ``limits``, in a
    workspace under ``base``; read back what it left. The gradebook is not touched: the
    caller records the outcome (``make grade`` from a pool thread, a Slurm task on its own).
    ``threads``: the kernel's OpenMP threads (:func:`threads_per_handin`)."""
    workspace = Path(tempfile.mkdtemp(prefix="handin-", dir=base))
    os.chmod(workspace, 0o711)  # the kernel's user reaches ws/kernel/, nothing else
    with sandbox_user() as user:
        try:
            return _grade_in(
                course,
                submission,
                runnable,
                notes,
                workspace,
                gradebook_copy,
                course_models,
                limits,
                user,
                verbose,
                threads,
            )
        finally:
            shutil.rmtree(workspace, ignore_errors=True)


def _grade_in(
    course: Course,
    submission: Submission,
    runnable: list[Path],
    notes: dict[str, str],
    workspace: Path,
    gradebook_copy: Path,
    course_models: Path | None,
    limits: Limits,
    user: str | None,
    verbose: bool,
    threads: int | None,
) -> Outcome:
    """Grade one hand-in in a child process in ``workspace``; read back what it left."""
    job = Job(
        root=str(course.root),
        student=submission.student,
        assignment=submission.assignment,
        notebooks=[str(path) for path in runnable],
        folder=str(submission.folder),
        workspace=str(workspace),
        gradebook=str(gradebook_copy),
        course_models=str(course_models) if course_models else None,
        user=user,
        limits=limits,
        threads=threads,
    )
    (workspace / "private").mkdir(mode=0o700)
    # The notebook limit holds for each notebook; the margin covers start-up and saving.
    timeout = limits.notebook_timeout * max(1, len(runnable)) + 120
    status, err = _run_child(job, timeout, verbose)
    executed, failure = {}, None
    for path in runnable:
        done = job.autograded / path.name
        report = job.reports / f"{path.stem}.json"
        if status is None:
            notes[path.name] = (
                f"the notebook time limit ({limits.notebook_timeout:g} s) was reached; "
                "the grader stopped the hand-in"
            )
        elif status == 0 and done.is_file():
            executed[path.name] = nbformat.read(done, as_version=4)
            if report.is_file():
                reason = json.loads(report.read_text(encoding="utf-8")).get("reason")
                if reason:
                    notes[path.name] = reason
        else:
            tail = err.strip().splitlines()[-1] if err.strip() else f"exit status {status}"
            notes[path.name] = f"the grader could not run this notebook: {tail}"
            failure = (
                f"grading {submission.folder} failed (exit status {status}); it was "
                f"scored 0. The grader's error output:\n{err.strip()[-3000:]}"
            )
    return Outcome(submission, executed, notes, failure)


def threads_per_handin(jobs: int) -> int:
    """The cores of this machine shared among ``jobs`` hand-ins graded at once (at least 1);
    ``$OMP_NUM_THREADS``, where the instructor set it, instead."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, len(os.sched_getaffinity(0)) // jobs)


def autograde(
    course: Course,
    jobs: int | None = None,
    limits: Limits | None = None,
    progress: bool = True,
    verbose: bool = False,
    on_graded: Callable[[Submission], None] | None = None,
) -> AutogradeResult:
    """Grade every hand-in in the submitted folder, ``jobs`` at a time (default: all cores).

    Each assignment is first registered in the gradebook from its current source. A bad
    notebook, a dying kernel or a limit costs the hand-in its points, with the reason in the
    result's ``notes`` (and in ``autograded/.../grading-notes.json``), and never stops the
    others. Grader problems are listed in the result's ``failures``.
    """
    jobs = max(1, jobs or os.cpu_count() or 1)
    if limits is None:
        cell = float(course.config().Execute.get("timeout", Limits.cell_timeout))
        limits = Limits(cell_timeout=cell)
    submissions = find_submissions(course)
    result = AutogradeResult(submissions=submissions)
    cells = assignment_cells(course)
    before = snapshot_sources(course)
    assignments = sorted({submission.assignment for submission in submissions})
    registered = []
    for assignment in assignments:
        try:
            register(course, assignment)
            registered.append(assignment)
        except GradingError as error:
            result.failures.append(str(error))
    course_models = prepare_course_models(course)
    db_file = gradebook_file(course)
    guard = GradebookGuard(db_file)
    if os.geteuid() == 0:
        log.info("hand-ins run as sandbox users (xnn-grade<N>), one per hand-in at a time")

    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        base = Path(tmp)
        os.chmod(base, 0o711)  # sandbox users reach their own folder, but cannot list others
        gradebook_copy = base / "gradebook.db"
        shutil.copyfile(db_file, gradebook_copy)
        os.chmod(gradebook_copy, 0o600)
        bar = tqdm(total=len(submissions), desc="grading", unit="hand-in", disable=not progress)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = []
            for submission in submissions:
                if submission.assignment not in registered:
                    bar.update()
                    continue
                runnable, notes = check_submission(course, submission, cells)
                if not runnable:
                    futures.append(pool.submit(Outcome, submission, {}, notes))
                    continue
                futures.append(
                    pool.submit(
                        grade_submission,
                        course,
                        submission,
                        runnable,
                        notes,
                        base,
                        gradebook_copy,
                        course_models,
                        limits,
                        verbose,
                        threads_per_handin(jobs),
                    )
                )
            for future in as_completed(futures):
                outcome = future.result()
                sub = outcome.submission
                problem = guard.check(f"while {sub.folder} was being graded")
                if problem:
                    result.failures.append(problem)
                record(course, sub, outcome.executed, outcome.notes)
                guard.wrote()
                key = (sub.student, sub.assignment)
                result.notes[key] = outcome.notes
                result.graded.append(sub)
                if outcome.failure:
                    result.failures.append(outcome.failure)
                if on_graded is not None:
                    on_graded(sub)
                bar.update()
        bar.close()
    problem = guard.check("after grading")
    if problem:
        result.failures.append(problem)
    after = snapshot_sources(course)
    changed = sorted(
        path for path in set(before) | set(after) if before.get(path) != after.get(path)
    )
    if changed:
        result.failures.append(
            "files that only the instructor may change were changed while grading: "
            + ", ".join(changed)
        )
    return result
