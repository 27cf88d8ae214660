"""The grading pipeline, end to end, on a copy of the course in a temporary folder.

For every assignment in ``solutions/`` the module fixture releases the student version and
lays out four hand-ins, built from the source and released notebooks so that the tests follow
the assignments as they change:

- ``solved``: the released exercise with each solution cell filled in from the source;
- ``untouched``: the released exercise as is;
- ``edited_tests``: the untouched exercise with every autograded test cell replaced by ``pass``;
- ``deleted_tests``: the solved exercise with every autograded test cell deleted;
- ``deleted_answers``: the solved exercise with every manually graded answer cell deleted.

One autograde pass grades them all (it runs the notebooks, so it takes a while); the tests
then read the gradebook. The repository's own gradebook, submitted/ and autograded/ folders
are never touched.
"""

from __future__ import annotations

import copy
import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearSolutions

from grading import (
    AutogradeResult,
    Course,
    GradeRow,
    GradingError,
    autograde,
    collect_grades,
    find_submissions,
    format_table,
    release_all,
    write_csv,
)
from grading.__main__ import main

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = Course(REPO).source_assignments()
STUDENTS = ("solved", "untouched", "edited_tests", "deleted_tests", "deleted_answers")


# --- Building hand-ins ----------------------------------------------------------------------


def _nbgrader(cell: NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_solution(cell: NotebookNode) -> bool:
    return bool(_nbgrader(cell).get("solution"))


def is_test(cell: NotebookNode) -> bool:
    """An autograded test cell: a grade cell that is not an answer (solution) cell."""
    return bool(_nbgrader(cell).get("grade")) and not is_solution(cell)


def is_manual(cell: NotebookNode) -> bool:
    """A cell a person grades: an answer (grade and solution) cell, or a task cell."""
    info = _nbgrader(cell)
    return bool(info.get("grade") and info.get("solution")) or bool(info.get("task"))


def grade_id(cell: NotebookNode) -> str:
    return _nbgrader(cell)["grade_id"]


def solution_code(source: str, delimiters: tuple[str, str]) -> str:
    """A source solution cell as a student who solved it would hand it in: without the
    ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines (the whole cell where it has none)."""
    return "\n".join(
        line for line in source.split("\n") if not any(mark in line for mark in delimiters)
    )


def solved(released: NotebookNode, source: NotebookNode, delimiters: tuple[str, str]):
    """The released exercise with every solution cell replaced by the source's solution."""
    answers = {grade_id(cell): cell.source for cell in source.cells if is_solution(cell)}
    nb = copy.deepcopy(released)
    for cell in nb.cells:
        if is_solution(cell):
            cell.source = solution_code(answers[grade_id(cell)], delimiters)
    return nb


def with_tests_edited(nb: NotebookNode) -> NotebookNode:
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if is_test(cell):
            cell.source = "pass"
    return nb


def without(nb: NotebookNode, predicate) -> NotebookNode:
    nb = copy.deepcopy(nb)
    nb.cells = [cell for cell in nb.cells if not predicate(cell)]
    return nb


# --- The graded course ----------------------------------------------------------------------


@dataclass
class Graded:
    course: Course
    result: AutogradeResult
    rows: dict[tuple[str, str], GradeRow]
    #: assignment -> notebook file name -> source (instructor) notebook
    sources: dict[str, dict[str, NotebookNode]]

    def row(self, student: str, assignment: str) -> GradeRow:
        key = (student, assignment)
        assert key in self.rows, f"no score row for {student}/{assignment}: {self.result.failures}"
        return self.rows[key]

    def source_cells(self, assignment: str, predicate) -> list[NotebookNode]:
        return [
            cell for nb in self.sources[assignment].values() for cell in nb.cells if predicate(cell)
        ]

    def autograded_notebook(self, student: str, assignment: str, name: str) -> NotebookNode:
        path = self.course.autograded_dir / student / assignment / name
        return nbformat.read(path, as_version=4)


def new_course(root: Path) -> Course:
    """A copy of the course's configuration and sources in ``root``."""
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(REPO / "solutions", root / "solutions")
    return Course(root)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    course = new_course(tmp_path_factory.mktemp("course"))
    release_all(course)
    cfg = course.config()
    stubs = ClearSolutions(config=cfg)
    delimiters = (stubs.begin_solution_delimeter, stubs.end_solution_delimeter)
    sources: dict[str, dict[str, NotebookNode]] = {}
    for assignment in ASSIGNMENTS:
        sources[assignment] = {}
        for source_path in course.source_notebooks(assignment):
            source = nbformat.read(source_path, as_version=4)
            released = nbformat.read(
                course.release_dir / assignment / source_path.name, as_version=4
            )
            sources[assignment][source_path.name] = source
            solution = solved(released, source, delimiters)
            handins = {
                "solved": solution,
                "untouched": released,
                "edited_tests": with_tests_edited(released),
                "deleted_tests": without(solution, is_test),
                "deleted_answers": without(solution, is_manual),
            }
            for student, nb in handins.items():
                folder = course.submitted_dir / student / assignment
                folder.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, folder / source_path.name)
    result = autograde(course)
    rows = {(row.student, row.assignment): row for row in collect_grades(course)}
    return Graded(course=course, result=result, rows=rows, sources=sources)


pytestmark = [
    pytest.mark.skipif(not ASSIGNMENTS, reason="no assignment in solutions/"),
    # nbgrader's own noise: SQLAlchemy warnings from its gradebook code, and the cells that
    # OverwriteCells.add_missing_cells puts back carry no cell id.
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
]


def test_every_hand_in_is_graded(graded: Graded):
    assert graded.result.ok, "\n\n".join(graded.result.failures)
    expected = {(student, assignment) for student in STUDENTS for assignment in ASSIGNMENTS}
    assert set(graded.rows) == expected


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_earns_every_autograded_point(graded: Graded, assignment: str):
    row = graded.row("solved", assignment)
    tests = graded.source_cells(assignment, is_test)
    assert tests, f"{assignment} has no autograded test cell"
    assert row.auto_max_score == sum(float(_nbgrader(cell)["points"]) for cell in tests)
    failed = [cell.name for cell in row.cells if cell.autograded and cell.score < cell.max_score]
    assert not failed, f"the reference solution fails {failed} of {assignment}"
    assert row.auto_score == row.auto_max_score > 0
    # Written answers are left to a person: listed as needing manual grading, not as failures.
    manual = {grade_id(cell) for cell in graded.source_cells(assignment, is_manual)}
    assert {cell.cell for cell in row.cells if cell.needs_manual_grade} == manual
    assert row.score == row.auto_score  # manual points count once a person has given them


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_exercise_scores_zero(graded: Graded, assignment: str):
    row = graded.row("untouched", assignment)
    assert row.max_score > 0
    passing = [cell.name for cell in row.cells if cell.score > 0]
    assert not passing, f"cells of {assignment} that score without any work: {passing}"
    # An answer left as the stub is given 0 at once rather than queued for manual grading.
    assert row.needs_manual_grade == ()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_edited_tests_are_restored(graded: Graded, assignment: str):
    row = graded.row("edited_tests", assignment)
    tests = graded.source_cells(assignment, is_test)
    for test in tests:
        assert row.cell(grade_id(test)).score == 0, f"{grade_id(test)} passed on `pass`"
    # The test that ran is the source's, hidden tests included.
    originals = {grade_id(cell): cell.source for cell in tests}
    ran = {
        grade_id(cell): cell.source
        for name in graded.sources[assignment]
        for cell in graded.autograded_notebook("edited_tests", assignment, name).cells
        if is_test(cell)
    }
    assert ran == originals


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_deleted_tests_are_put_back_and_scored(graded: Graded, assignment: str):
    row = graded.row("deleted_tests", assignment)
    tests = graded.source_cells(assignment, is_test)
    assert tests
    for test in tests:
        grade = row.cell(grade_id(test))
        assert grade.max_score == float(_nbgrader(test)["points"])
        assert grade.score == grade.max_score, f"{grade_id(test)} was not run or failed"
    assert row.max_score == graded.row("solved", assignment).max_score
    assert row.auto_score == row.auto_max_score


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_deleted_answers_are_put_back_for_manual_grading(graded: Graded, assignment: str):
    row = graded.row("deleted_answers", assignment)
    for answer in graded.source_cells(assignment, is_manual):
        grade = row.cell(grade_id(answer))
        assert grade.max_score == float(_nbgrader(answer)["points"])
        assert grade.needs_manual_grade, f"{grade_id(answer)} is not left to a person"
    assert row.max_score == graded.row("solved", assignment).max_score
    assert row.auto_score == row.auto_max_score


def test_report_table_and_csv(graded: Graded, tmp_path: Path, capsys: pytest.CaptureFixture):
    rows = sorted(graded.rows.values(), key=lambda row: (row.assignment, row.student))
    table = format_table(rows)
    assert table.splitlines()[0].split()[:2] == ["student", "assignment"]
    assert len(table.splitlines()) == 1 + len(rows)

    path = write_csv(rows, tmp_path / "grades.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert [(line["student"], line["assignment"]) for line in written] == [
        (row.student, row.assignment) for row in rows
    ]
    for line, row in zip(written, rows, strict=True):
        assert float(line["score"]) == row.score
        assert float(line["max_score"]) == row.max_score
        assert line["needs_manual_grade"] == ";".join(row.needs_manual_grade)

    # The command line reads the same gradebook.
    out = tmp_path / "cli.csv"
    assert main(["--root", str(graded.course.root), "report", "--csv", str(out)]) == 0
    assert table in capsys.readouterr().out
    assert out.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


# --- Clear errors for bad input (no notebook runs) -----------------------------------------


@pytest.fixture
def course(tmp_path: Path) -> Course:
    return new_course(tmp_path)


def test_no_submitted_folder(course: Course):
    with pytest.raises(GradingError, match="does not exist") as error:
        find_submissions(course)
    assert str(course.submitted_dir) in str(error.value)
    assert "<student>/<assignment>/<notebook>.ipynb" in str(error.value)


def test_empty_submitted_folder(course: Course):
    course.submitted_dir.mkdir()
    with pytest.raises(GradingError, match="no submissions found in") as error:
        find_submissions(course)
    assert "<student>/<assignment>/<notebook>.ipynb" in str(error.value)


def test_hand_in_without_student_folder(course: Course):
    misplaced = course.submitted_dir / ASSIGNMENTS[0] / "notebook.ipynb"
    misplaced.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), misplaced)
    with pytest.raises(GradingError, match="is not where hand-ins go") as error:
        find_submissions(course)
    assert str(misplaced) in str(error.value)


def test_hand_in_for_unknown_assignment(course: Course):
    handin = course.submitted_dir / "alice" / "no_such_assignment" / "notebook.ipynb"
    handin.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), handin)
    with pytest.raises(GradingError, match="'no_such_assignment', which has no source"):
        find_submissions(course)
    with pytest.raises(GradingError, match="no_such_assignment"):
        autograde(course)


def test_cli_reports_bad_input(course: Course, capsys: pytest.CaptureFixture):
    assert main(["--root", str(course.root), "grade"]) == 2
    assert str(course.submitted_dir) in capsys.readouterr().err


def test_report_without_gradebook(course: Course):
    with pytest.raises(GradingError, match="no gradebook at"):
        collect_grades(course)
    assert not (course.root / "gradebook.db").exists()
