"""Step 4: feedback per hand-in in ``feedback/<student>/<assignment>/``: nbgrader's HTML of the
executed notebook, without the hidden tests and every output that quotes them
(:class:`grading.preprocessors.HideHiddenTests`), and ``summary.txt``/``summary.html``, built
from the gradebook and the grader's notes only (scores, reasons, exception names).
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

import nbformat

from .autograde import AutogradeResult
from .course import Course, GradingError, grade_id
from .preprocessors import LIMIT_ERROR, NOT_RUN_ERROR
from .report import GradeRow, _points, collect_grades, write_csv


def _errors(course: Course, row: GradeRow) -> dict[str, str]:
    """grade id -> the name of the error its cell raised (from the executed notebooks)."""
    folder = course.autograded_dir / row.student / row.assignment
    errors = {}
    for path in sorted(folder.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            names = [o.ename for o in cell.get("outputs", []) if o.output_type == "error"]
            if grade_id(cell) and names:
                errors[grade_id(cell)] = names[-1]
    return errors


def summary(course: Course, row: GradeRow) -> str:
    """The plain-text feedback for one hand-in."""
    lines = [
        f"{row.assignment}: feedback for {row.student}",
        f"autograded score: {_points(row.auto_score)} / {_points(row.auto_max_score)}",
        f"total so far: {_points(row.score)} / {_points(row.max_score)}",
        "",
    ]
    lines += [*row.reasons, ""] if row.reasons else []
    errors = _errors(course, row)
    for cell in row.cells:
        score = f"{_points(cell.score)} / {_points(cell.max_score)}"
        if cell.needs_manual_grade:
            status = "to be graded by a person"
        elif not cell.autograded:
            status = "graded" if cell.score else "no answer"
        elif errors.get(cell.cell) == NOT_RUN_ERROR:
            status = "not run (see above)"
        elif errors.get(cell.cell) == LIMIT_ERROR:
            status = "stopped by a limit (see above)"
        elif cell.cell in errors:
            status = f"failed ({errors[cell.cell]})"
        else:
            status = "passed" if cell.score == cell.max_score else "failed"
        lines.append(f"  {cell.name}: {score}  {status}")
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
