"""Step 4: feedback for each student, as nbgrader's HTML and as a plain summary.

``feedback/<student>/<assignment>/`` gets, for every graded hand-in:

- ``<notebook>.html``: nbgrader's ``GenerateFeedback`` of the executed notebook, with the
  hidden tests cut out of the test cells and every output that quotes them withheld
  (:class:`grading.preprocessors.HideHiddenTests`);
- ``summary.txt`` and ``summary.html``: the score of each graded cell and, where points were
  lost to a limit, a dead kernel or a broken notebook, the reason. Built from the gradebook and
  the grader's notes only (test names, scores, exception names): never from test code.
"""

from __future__ import annotations

import html
import json

import nbformat
from nbgrader.converters import GenerateFeedback

from .autograde import NOTES_FILE
from .course import LOG, Course, run_converter
from .preprocessors import LIMIT_ERROR, NOT_RUN_ERROR
from .report import GradeRow, _points, collect_grades

FEEDBACK_PREPROCESSORS = [
    "grading.preprocessors.HideHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]


def _errors(course: Course, row: GradeRow) -> dict[str, str]:
    """grade id -> the name of the error its cell raised (from the executed notebooks)."""
    folder = course.autograded_dir / row.student / row.assignment
    errors = {}
    for path in sorted(folder.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            names = [o.ename for o in cell.get("outputs", []) if o.output_type == "error"]
            if grade_id and names:
                errors[grade_id] = names[-1]
    return errors


def summary(course: Course, row: GradeRow) -> str:
    """The plain-text feedback for one hand-in."""
    lines = [
        f"{row.assignment}: feedback for {row.student}",
        f"autograded score: {_points(row.auto_score)} / {_points(row.auto_max_score)}",
        f"total so far: {_points(row.score)} / {_points(row.max_score)}",
        "",
    ]
    notes_file = course.autograded_dir / row.student / row.assignment / NOTES_FILE
    notes = json.loads(notes_file.read_text(encoding="utf-8")) if notes_file.is_file() else {}
    for notebook, reason in sorted(notes.items()):
        lines.append(f"{notebook}: {reason}")
    if notes:
        lines.append("")
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
    for assignment in sorted({assignment for _, assignment in wanted}):
        students = [s for s, a in sorted(wanted) if a == assignment]
        with_notebooks = [
            s for s in students if any((course.autograded_dir / s / assignment).glob("*.ipynb"))
        ]
        for student in with_notebooks:
            cfg = course.config(
                **{
                    "CourseDirectory.assignment_id": assignment,
                    "CourseDirectory.student_id": student,
                    "GenerateFeedback.preprocessors": FEEDBACK_PREPROCESSORS,
                }
            )
            converter = GenerateFeedback(coursedir=course.coursedir(cfg), config=cfg, log=LOG)
            converter.force = True
            run_converter(converter, f"writing the feedback of {student}/{assignment}")
    for row in rows:
        folder = course.feedback_dir / row.student / row.assignment
        folder.mkdir(parents=True, exist_ok=True)
        text = summary(course, row)
        (folder / "summary.txt").write_text(text, encoding="utf-8")
        page = f"<!DOCTYPE html>\n<html><body><pre>{html.escape(text)}</pre></body></html>\n"
        (folder / "summary.html").write_text(page, encoding="utf-8")
    return len(rows)
