"""Step 3: read the scores back from the gradebook, print them and write ``grades.csv``.

A score row is one student's hand-in of one assignment. Its cells are split the nbgrader way:

- *autograded* cells are test cells (grade cells that are not solution cells): nbgrader scored
  them by running them; an error means 0 points;
- *manual* cells are answers graded by a person (grade cells that are also solution cells, and
  task cells). An answer left as the stub scores 0 at once; any other answer needs manual
  grading and counts 0 until it gets a score (``nbgrader formgrader``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook, GradeCell, SubmittedAssignment

from .course import Course, GradingError


@dataclass(frozen=True)
class CellGrade:
    """The score of one graded cell of one submitted notebook."""

    notebook: str
    cell: str  # the cell's nbgrader grade_id
    autograded: bool  # a test cell, scored by running it
    score: float
    max_score: float
    needs_manual_grade: bool

    @property
    def name(self) -> str:
        return f"{self.notebook}/{self.cell}"


@dataclass(frozen=True)
class GradeRow:
    """One student's scores for one assignment."""

    student: str
    assignment: str
    score: float  # autograded plus manually given points so far
    max_score: float
    cells: tuple[CellGrade, ...]
    #: why points were lost to a limit, a dead kernel or a broken notebook, per notebook
    reasons: tuple[str, ...] = ()

    @property
    def auto_score(self) -> float:
        return sum(cell.score for cell in self.cells if cell.autograded)

    @property
    def auto_max_score(self) -> float:
        return sum(cell.max_score for cell in self.cells if cell.autograded)

    @property
    def needs_manual_grade(self) -> tuple[str, ...]:
        """Cells still waiting for a person's score, as ``notebook/grade_id``."""
        return tuple(cell.name for cell in self.cells if cell.needs_manual_grade)

    def cell(self, grade_id: str) -> CellGrade:
        """The grade of the cell ``grade_id`` (in whichever notebook has it)."""
        for cell in self.cells:
            if cell.cell == grade_id:
                return cell
        raise KeyError(f"{self.student}/{self.assignment} has no graded cell {grade_id!r}")


def _reasons(course: Course, student: str, assignment: str) -> tuple[str, ...]:
    from .autograde import NOTES_FILE  # written by the grading parent beside the notebooks

    path = course.autograded_dir / student / assignment / NOTES_FILE
    if not path.is_file():
        return ()
    notes = json.loads(path.read_text(encoding="utf-8"))
    return tuple(f"{notebook}: {reason}" for notebook, reason in sorted(notes.items()))


def _row(course: Course, submission: SubmittedAssignment) -> GradeRow:
    cells = []
    for notebook in sorted(submission.notebooks, key=lambda nb: nb.name):
        solution_ids = {cell.name for cell in notebook.notebook.solution_cells}
        for grade in sorted(notebook.grades, key=lambda grade: grade.name):
            is_test = isinstance(grade.cell, GradeCell) and grade.name not in solution_ids
            cells.append(
                CellGrade(
                    notebook=notebook.name,
                    cell=grade.name,
                    autograded=is_test,
                    score=float(grade.score),
                    max_score=float(grade.max_score),
                    needs_manual_grade=bool(grade.needs_manual_grade),
                )
            )
    return GradeRow(
        student=submission.student.id,
        assignment=submission.assignment.name,
        score=float(submission.score),
        max_score=float(submission.max_score),
        cells=tuple(cells),
        reasons=_reasons(course, submission.student.id, submission.assignment.name),
    )


def collect_grades(course: Course) -> list[GradeRow]:
    """Every submission in the course's gradebook, sorted by assignment, then student."""
    coursedir = course.coursedir()
    db_url = coursedir.db_url
    if db_url.startswith("sqlite:///"):
        db_file = Path(db_url.removeprefix("sqlite:///"))
        if not db_file.is_file():
            raise GradingError(
                f"no gradebook at {db_file}: nothing has been graded yet "
                "(run `python -m grading grade`)."
            )
    with Gradebook(db_url, coursedir.course_id) as gradebook:
        rows = [
            _row(course, submission)
            for assignment in gradebook.assignments
            for submission in assignment.submissions
        ]
    return sorted(rows, key=lambda row: (row.assignment, row.student))


def _points(value: float) -> str:
    return f"{value:g}"


def format_table(rows: list[GradeRow]) -> str:
    """A plain-text table: one line per student and assignment."""
    header = ("student", "assignment", "autograded", "total", "needs manual grading", "reason")
    lines = [
        (
            row.student,
            row.assignment,
            f"{_points(row.auto_score)} / {_points(row.auto_max_score)}",
            f"{_points(row.score)} / {_points(row.max_score)}",
            ", ".join(row.needs_manual_grade) or "-",
            "; ".join(row.reasons) or "-",
        )
        for row in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            str(value).ljust(width) for value, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in [header, *lines]
    )


#: Columns of ``grades.csv``.
CSV_COLUMNS = (
    "student",
    "assignment",
    "score",
    "max_score",
    "auto_score",
    "auto_max_score",
    "needs_manual_grade",
    "reason",
)


def write_csv(rows: list[GradeRow], path: Path) -> Path:
    """Write ``rows`` to ``path``: one line per student and assignment (task). Cells needing
    manual grading are joined with ``;``; ``reason`` says why points were lost to a limit, a
    dead kernel or a broken notebook."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(
                (
                    row.student,
                    row.assignment,
                    _points(row.score),
                    _points(row.max_score),
                    _points(row.auto_score),
                    _points(row.auto_max_score),
                    ";".join(row.needs_manual_grade),
                    "; ".join(row.reasons),
                )
            )
    return path
