"""Step 2: the gradebook's scores of one assignment into the platform's own grade sheet, which
its import takes back (:mod:`lms.sheets` says which sheet, and what the import reads).

Only the assignment's column changes. A student without a hand-in keeps the cell as it was
(blank, not 0) unless ``missing`` says what to write; every row of the sheet without a score,
and every score without a row, is listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grading.course import Course, GradingError
from grading.report import GradeRow, collect_grades

from .platforms import Platform
from .roster import names, read_roster, who
from .sheets import Sheet, grade_column, maximum, read_sheet, write_sheet


@dataclass
class ExportResult:
    path: Path
    written: dict[str, str] = field(default_factory=dict)  # student -> the cell written
    lines: list[str] = field(default_factory=list)


def points(value: float) -> str:
    """A score as the platforms read it: at most two decimals, a decimal point."""
    return f"{round(value, 2):g}"


def default_assignment(course: Course, platform: Platform) -> str:
    """The assignment collected from ``platform``, if there is just one."""
    collected = sorted({e.assignment for e in read_roster(course) if e.platform == platform.name})
    if len(collected) != 1:
        listed = ", ".join(collected) or "none yet"
        raise GradingError(
            f"say which assignment, ASSIGNMENT=<name> (collected from {platform.title}: {listed})."
        )
    return collected[0]


def _scale(row: GradeRow, platform_max: float | None, scale: bool, sheet_path: Path) -> float:
    if platform_max is None or abs(platform_max - row.max_score) < 1e-9:
        return row.score
    if not scale:
        raise GradingError(
            f"{sheet_path} allows {points(platform_max)} points for this assignment, the "
            f"gradebook counts {points(row.max_score)}: set the platform's maximum to "
            f"{points(row.max_score)} and download the sheet again, or scale the scores with "
            "SCALE=1."
        )
    return row.score * platform_max / row.max_score


def fill(
    sheet: Sheet,
    col: int,
    grades: dict[str, GradeRow],
    known: dict[str, str] | None = None,
    missing: str | None = None,
    scale: bool = False,
) -> ExportResult:
    """Write the scores ``grades`` (student -> row) into column ``col`` of ``sheet``'s student
    rows; ``known``: student -> name, for the lines."""
    known, rows = known or {}, sheet.students()
    result, platform_max = ExportResult(sheet.path), maximum(sheet, col)
    for student, index in sorted(rows.items(), key=lambda item: item[1]):
        cells = sheet.rows[index]
        cells += [""] * (col + 1 - len(cells))
        row = grades.get(student)
        if row is None:
            if missing is not None:
                cells[col] = result.written[student] = missing
            what = f"wrote {missing}" if missing is not None else "left as it was"
            result.lines.append(
                f"row {index + 1}, {who(student, known)}: no hand-in graded: {what}"
            )
            continue
        cells[col] = result.written[student] = points(_scale(row, platform_max, scale, sheet.path))
        if row.needs_manual_grade:
            result.lines.append(
                f"row {index + 1}, {who(student, known)}: a score so far; "
                f"{', '.join(row.needs_manual_grade)} still to be graded by a person"
            )
    for student in sorted(grades.keys() - rows.keys()):
        row = grades[student]
        result.lines.append(
            f"{who(student, known)}: graded ({points(row.score)} / {points(row.max_score)}) but "
            f"has no row in {sheet.path.name}: not exported"
        )
    return result


def export(
    course: Course,
    platform: Platform,
    sheet_path: Path,
    assignment: str,
    out: Path,
    missing: str | None = None,
    scale: bool = False,
    column: str | None = None,
) -> ExportResult:
    """Fill ``assignment``'s column of the platform's grade sheet ``sheet_path`` with the
    gradebook's scores (late penalties applied) and write it to ``out``."""
    sheet = read_sheet(sheet_path, platform)
    col = grade_column(sheet, assignment, column)
    grades = {r.student: r for r in collect_grades(course) if r.assignment == assignment}
    if not grades:
        raise GradingError(
            f"the gradebook has no scores for {assignment!r}: grade it first (make grade)."
        )
    result = fill(sheet, col, grades, names(course, platform.name), missing, scale)
    result.path = write_sheet(sheet, out)
    return result
