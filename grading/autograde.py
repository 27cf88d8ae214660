"""Step 2: find the hand-ins and autograde them (``nbgrader autograde``).

Hand-ins are expected at ``submitted/<student>/<assignment>/<notebook>.ipynb``. Before an
assignment is graded its current source is recorded in the gradebook (:func:`release.register`),
so a fresh checkout, which has no ``gradebook.db``, can grade straight away. nbgrader then, for
every hand-in: clears outputs, restores locked cells (tests, read-only cells) from the source,
puts back deleted grade cells (``OverwriteCells.add_missing_cells``, with the fix of
:mod:`grading.preprocessors`), executes the notebook in the ``python3`` kernel and saves one
score per graded cell in the gradebook. Each hand-in is graded on its own, with its own empty
model cache (:data:`MODEL_CACHE_ENV`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.converters import Autograde

from .course import LOG, Course, GradingError, run_converter
from .release import register

log = logging.getLogger("grading")

#: The course library's model cache folder (``lib.train``). Every hand-in is graded with its
#: own empty one, so that no score depends on models trained while grading another hand-in or
#: built by the instructor: each student's code trains its own model.
MODEL_CACHE_ENV = "XNN_CACHE_DIR"


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
    """What :func:`autograde` graded, and the failures it went past."""

    submissions: list[Submission]
    failures: list[str] = field(default_factory=list)

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
        expected = {path.name for path in course.source_notebooks(submission.assignment)}
        for notebook in submission.notebooks:
            if notebook.name not in expected:
                log.warning(
                    "%s is not a notebook of %r (expected one of: %s); nbgrader will skip it.",
                    notebook,
                    submission.assignment,
                    ", ".join(sorted(expected)),
                )
    return submissions


@contextmanager
def _own_model_cache() -> Iterator[Path]:
    """Point :data:`MODEL_CACHE_ENV` at a new, empty folder for as long as the block runs."""
    previous = os.environ.get(MODEL_CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="grading-model-cache-") as folder:
        os.environ[MODEL_CACHE_ENV] = folder
        try:
            yield Path(folder)
        finally:
            if previous is None:
                del os.environ[MODEL_CACHE_ENV]
            else:
                os.environ[MODEL_CACHE_ENV] = previous


def autograde_submission(course: Course, submission: Submission) -> None:
    """Autograde one hand-in whose assignment is registered (:func:`release.register`).

    Earlier results are overwritten (``--force``), so grading again gives the current scores.
    The notebook runs with its own empty model cache. Raises :class:`GradingError` naming the
    hand-in if nbgrader fails.
    """
    cfg = course.config(
        **{
            "CourseDirectory.assignment_id": submission.assignment,
            "CourseDirectory.student_id": submission.student,
        }
    )
    converter = Autograde(coursedir=course.coursedir(cfg), config=cfg, log=LOG)
    # Grade again even if autograded/<student>/<assignment>/ exists from an earlier run.
    converter.force = True
    # Add students seen for the first time to the gradebook.
    converter.create_student = True
    with _own_model_cache():
        run_converter(converter, f"autograding {submission.folder}")


def autograde(course: Course) -> AutogradeResult:
    """Autograde every hand-in in the submitted folder.

    Each assignment is first registered in the gradebook from its current source. A hand-in
    (or an assignment) that fails does not stop the others; the failure is listed in the result.
    """
    submissions = find_submissions(course)
    result = AutogradeResult(submissions=submissions)
    for assignment in sorted({submission.assignment for submission in submissions}):
        try:
            register(course, assignment)
        except GradingError as error:
            result.failures.append(str(error))
            continue
        for submission in submissions:
            if submission.assignment != assignment:
                continue
            log.info("autograding %s", submission.folder)
            try:
                autograde_submission(course, submission)
            except GradingError as error:
                result.failures.append(str(error))
    return result
