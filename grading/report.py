"""Step 3: the scores from the gradebook, as a table and as ``grades.csv``, and the feedback
per hand-in in ``feedback/<student>/<assignment>/``: nbgrader's HTML of the executed notebook,
without the hidden tests and every output that quotes them
(:class:`grading.preprocessors.HideHiddenTests`), and ``summary.txt``/``summary.html``, built
from the gradebook and the grader's notes (scores, reasons), with each failing test's error and
message as that HTML shows them (a hidden test's message, never its code).

Cells are split the nbgrader way: *autograded* ones are test cells (an error scores 0);
*manual* ones are answers and tasks, graded by a person (an answer left as the stub scores 0 at
once). A late hand-in loses the penalty nbgrader's ``AssignLatePenalties`` recorded, as
nbgrader's own exports count it, and its reasons say so.
"""

from __future__ import annotations

import csv
import html
import json
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, GradeCell, SubmittedAssignment

from .autograde import NOTES_FILE, TAMPERING_FILE, AutogradeResult
from .course import Course, GradingError, grade_id
from .preprocessors import LIMIT_ERROR, NOT_RUN_ERROR, HideHiddenTests


@dataclass(frozen=True)
class CellGrade:
    """The score of one graded cell of one submitted notebook."""

    notebook: str
    cell: str  # the cell's nbgrader grade_id
    autograded: bool  # a test cell, scored by running it
    score: float
    max_score: float
    needs_manual_grade: bool

    name = property(lambda self: f"{self.notebook}/{self.cell}")


@dataclass(frozen=True)
class GradeRow:
    """One student's scores for one assignment."""

    student: str
    assignment: str
    score: float  # autograded plus manually given points so far, less any late penalty
    max_score: float
    cells: tuple[CellGrade, ...]
    #: why points were lost to a limit, a dead kernel, a broken notebook or lateness, or why
    #: they need a person's review (a change to the tests' tools, :mod:`grading.tamper`)
    reasons: tuple[str, ...] = ()
    seconds_late: float = 0.0  # after the due date (nbgrader's total_seconds_late)
    late_penalty: float = 0.0

    auto_score = property(lambda self: sum(c.score for c in self.cells if c.autograded))
    auto_max_score = property(lambda self: sum(c.max_score for c in self.cells if c.autograded))

    @property
    def needs_manual_grade(self) -> tuple[str, ...]:
        """Cells still waiting for a person's score, as ``notebook/grade_id``."""
        return tuple(cell.name for cell in self.cells if cell.needs_manual_grade)

    def cell(self, grade_id: str) -> CellGrade:
        """The grade of the cell ``grade_id`` (in whichever notebook has it)."""
        found = [cell for cell in self.cells if cell.cell == grade_id]
        if not found:
            raise KeyError(f"{self.student}/{self.assignment} has no graded cell {grade_id!r}")
        return found[0]


def _notes(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _reasons(course: Course, submission: SubmittedAssignment) -> tuple[str, ...]:
    folder = course.autograded_dir / submission.student.id / submission.assignment.name
    notes, tampering = (_notes(folder / name) for name in (NOTES_FILE, TAMPERING_FILE))
    reasons = [f"{notebook}: {reason}" for notebook, reason in sorted(notes.items())]
    reasons += [f"{name}: {why}" for name, found in sorted(tampering.items()) for why in found]
    if submission.total_seconds_late:
        penalty = submission.late_submission_penalty
        reasons.append(
            f"handed in {submission.total_seconds_late:g} s after the due date"
            + (f": late penalty {penalty:g} points" if penalty else "")
        )
    return tuple(reasons)


def _row(course: Course, submission: SubmittedAssignment) -> GradeRow:
    cells = []
    for notebook in sorted(submission.notebooks, key=lambda nb: nb.name):
        solution_ids = {cell.name for cell in notebook.notebook.solution_cells}
        for grade in sorted(notebook.grades, key=lambda grade: grade.name):
            is_test = isinstance(grade.cell, GradeCell) and grade.name not in solution_ids
            scores = (float(grade.score), float(grade.max_score), bool(grade.needs_manual_grade))
            cells.append(CellGrade(notebook.name, grade.name, is_test, *scores))
    penalty = float(submission.late_submission_penalty or 0)
    return GradeRow(
        student=submission.student.id,
        assignment=submission.assignment.name,
        score=max(0.0, float(submission.score) - penalty),
        max_score=float(submission.max_score),
        cells=tuple(cells),
        reasons=_reasons(course, submission),
        seconds_late=float(submission.total_seconds_late),
        late_penalty=penalty,
    )


def collect_grades(course: Course) -> list[GradeRow]:
    """Every submission in the course's gradebook, sorted by assignment, then student."""
    if not course.gradebook.is_file():
        raise GradingError(f"no gradebook at {course.gradebook}: nothing has been graded yet "
                           "(run `python -m grading grade`).")  # fmt: skip
    with Gradebook(f"sqlite:///{course.gradebook}", course.coursedir().course_id) as gradebook:
        rows = [_row(course, sub) for a in gradebook.assignments for sub in a.submissions]
    return sorted(rows, key=lambda row: (row.assignment, row.student))


def _points(value: float) -> str:
    return f"{value:g}"


def format_table(rows: list[GradeRow]) -> str:
    """A plain-text table: one line per student and assignment."""
    header = ("student", "assignment", "autograded", "total", "needs manual grading", "reason")
    lines = [header] + [
        (row.student, row.assignment, f"{_points(row.auto_score)} / {_points(row.auto_max_score)}",
         f"{_points(row.score)} / {_points(row.max_score)}", ", ".join(row.needs_manual_grade)
         or "-", "; ".join(row.reasons) or "-")
        for row in rows
    ]  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(map(str.ljust, line, widths)).rstrip() for line in lines)


#: Columns of ``grades.csv``.
CSV_COLUMNS = (
    "student assignment score max_score auto_score auto_max_score needs_manual_grade reason"
)


def write_csv(rows: list[GradeRow], path: Path) -> Path:
    """Write ``rows`` to ``path``: one line per student and assignment (task). Cells needing
    manual grading are joined with ``;``; ``reason`` says why points were lost to a limit, a
    dead kernel, a broken notebook or lateness."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS.split())
        for row in rows:
            scores = (row.score, row.max_score, row.auto_score, row.auto_max_score)
            writer.writerow([row.student, row.assignment, *map(_points, scores),
                             ";".join(row.needs_manual_grade), "; ".join(row.reasons)])  # fmt: skip
    return path


# --- Feedback ----------------------------------------------------------------------------------


def _errors(course: Course, row: GradeRow) -> dict[str, tuple[str, str]]:
    """grade id -> the name and the message of the error its cell raised, from the executed
    notebooks as the feedback shows them (no hidden test's code)."""
    folder = course.autograded_dir / row.student / row.assignment
    hide = HideHiddenTests(config=course.config())
    errors = {}
    for path in sorted(folder.glob("*.ipynb")):
        nb, _ = hide.preprocess(nbformat.read(path, as_version=4), {})
        for cell in nb.cells:
            raised = [o for o in cell.get("outputs", []) if o.output_type == "error"]
            if grade_id(cell) and raised:
                errors[grade_id(cell)] = (raised[-1].ename, raised[-1].get("evalue", ""))
    return errors


def summary(course: Course, row: GradeRow) -> str:
    """The plain-text feedback for one hand-in: each graded cell's score, and below each failing
    test what it says went wrong."""
    lines = [
        f"{row.assignment}: feedback for {row.student}",
        f"autograded score: {_points(row.auto_score)} / {_points(row.auto_max_score)}",
        f"total so far: {_points(row.score)} / {_points(row.max_score)}",
        "",
    ]
    lines += [*row.reasons, ""] if row.reasons else []
    errors = _errors(course, row)
    stopped = {NOT_RUN_ERROR: "not run (see above)", LIMIT_ERROR: "stopped by a limit (see above)"}
    for cell in row.cells:
        score = f"{_points(cell.score)} / {_points(cell.max_score)}"
        error, message = errors.get(cell.cell, ("", ""))
        if cell.needs_manual_grade:
            status = "to be graded by a person"
        elif not cell.autograded:
            status = "graded" if cell.score else "no answer"
        elif error:
            status = stopped.get(error, f"failed ({error})")
        else:
            status = "passed" if cell.score == cell.max_score else "failed"
        lines.append(f"  {cell.name}: {score}  {status}")
        if cell.autograded and error and error not in stopped and message.strip():
            lines.append(textwrap.indent(message.strip(), "      "))
    return "\n".join(lines) + "\n"


def write_feedback(course: Course, graded: list[tuple[str, str]]) -> int:
    """Feedback for the hand-ins ``graded`` ((student, assignment) pairs); returns how many."""
    wanted = set(graded)
    rows = [row for row in collect_grades(course) if (row.student, row.assignment) in wanted]
    for student, assignment in sorted(wanted, key=lambda key: key[::-1]):
        if any((course.autograded_dir / student / assignment).glob("*.ipynb")):
            what = f"writing the feedback of {student}/{assignment}"
            course.nbgrader("generate_feedback", what, assignment, student)
    for row in rows:
        folder = course.feedback_dir / row.student / row.assignment
        folder.mkdir(parents=True, exist_ok=True)
        text = summary(course, row)
        (folder / "summary.txt").write_text(text, encoding="utf-8")
        page = f"<!DOCTYPE html>\n<html><body><pre>{html.escape(text)}</pre></body></html>\n"
        (folder / "summary.html").write_text(page, encoding="utf-8")
    return len(rows)


def hand_back(course: Course, result: AutogradeResult, csv: Path) -> None:
    """After a class is recorded: the feedback of every graded hand-in, and the scores in
    ``csv``. Feedback that fails is one more of ``result``'s failures (the scores stand)."""
    try:
        written = write_feedback(course, [(s.student, s.assignment) for s in result.graded])
        print(f"feedback for {written} hand-ins in {course.feedback_dir}", file=sys.stderr)
    except GradingError as error:
        result.failures.append(str(error))
    write_csv(collect_grades(course), csv)
