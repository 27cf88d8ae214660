"""The grading pipeline, end to end, on a copy of the course in a temporary folder.

For every assignment in ``solutions/`` the module fixture releases the student version and
lays out hand-ins built from the source and released notebooks, so that the tests follow the
assignments as they change:

- ``solved``: the released exercise with each solution cell filled in from the source;
- ``untouched``: the released exercise as is;
- ``edited_tests``: the untouched exercise with every autograded test cell replaced by ``pass``;
- ``deleted_tests``: the solved exercise with every autograded test cell deleted;
- ``deleted_answers``: the solved exercise with every manually graded answer cell deleted.

The last three test nbgrader's restoring of cells, the same for every assignment: they are
graded for exercise 1 only (:data:`RESTORED`).

On top of these, a corpus of bad hand-ins of exercise 1 (:data:`CORPUS`: dying kernels,
tampering, broken notebooks) is graded in the same pass, and the hand-ins that hit a limit
(:data:`LIMIT_CORPUS`: an infinite loop, one that ignores interrupts, a memory bomb) in a second
course with small limits, through the command line. Each has its expected score and reason;
afterwards the other students' scores, the gradebook and the sources are checked. Grading runs
the notebooks, two at a time, so the fixtures take a while; the tests then read the results.
The repository's own gradebook, submitted/ and autograded/ folders are never touched.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import html
import json
import os
import shutil
import signal
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearSolutions
from nbgrader.utils import is_grade, is_solution, is_task

from grading import (
    AutogradeResult,
    Course,
    GradeRow,
    GradingError,
    Limits,
    autograde,
    collect_grades,
    find_submissions,
    format_table,
    release_all,
    write_csv,
    write_feedback,
)
from grading.__main__ import main
from grading.preprocessors import LIMIT_ERROR, NOT_RUN_ERROR
from grading.sandbox import KernelSpec, describe_end, launch

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = Course(REPO).source_assignments()
STUDENTS = ("solved", "untouched", "edited_tests", "deleted_tests", "deleted_answers")
#: Every assignment is graded solved and untouched; how nbgrader restores edited and deleted
#: cells is the same for every assignment, so it is tested on the first one only (each hand-in
#: runs a whole notebook, and ``make test`` has a time budget).
RESTORING = ("edited_tests", "deleted_tests", "deleted_answers")
#: The assignment the corpus of bad hand-ins is built on.
CORPUS_ASSIGNMENT = "01_linear_classifiers"
#: The assignments whose hand-ins include the RESTORING kinds.
RESTORED = [a for a in ASSIGNMENTS if a == CORPUS_ASSIGNMENT] or ASSIGNMENTS[:1]


def expected_students(assignment: str) -> tuple[str, ...]:
    """The kinds of hand-in the fixture grades for ``assignment``."""
    return STUDENTS if assignment in RESTORED else ("solved", "untouched")


#: Two hand-ins at a time, as on a small machine; limits that a solved exercise stays within.
JOBS = 2
LIMITS = Limits(cell_timeout=300, notebook_timeout=900, memory_mb=8192, cpu_seconds=900)
#: Small limits for the corpus that hits them (a few seconds per cell for the infinite loop).
SMALL_LIMITS = Limits(cell_timeout=8, notebook_timeout=60, memory_mb=1536, cpu_seconds=60)


# --- Building hand-ins ----------------------------------------------------------------------


def _nbgrader(cell: NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_test(cell: NotebookNode) -> bool:
    """An autograded test cell: a grade cell that is not an answer (solution) cell."""
    return is_grade(cell) and not is_solution(cell)


def is_manual(cell: NotebookNode) -> bool:
    """A cell a person grades: an answer (grade and solution) cell, or a task cell."""
    return (is_grade(cell) and is_solution(cell)) or is_task(cell)


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


# --- A corpus of bad hand-ins --------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A bad hand-in of :data:`CORPUS_ASSIGNMENT`: how to build it, and how it must score.

    ``build(parts)`` returns the notebook, or the file's bytes for a broken file. ``score``
    is the autograded score expected ("zero" or "full"); ``reason`` a text the reason in the
    table must contain (``None``: a plain failing hand-in, no reason), with ``{cell}``
    standing for the cell where it went wrong.
    """

    build: Callable[[Parts], NotebookNode | bytes]
    score: str
    reason: str | None = None
    #: (cell, ename): the error output the bad code must leave in that cell
    error: str | None = None


@dataclass
class Parts:
    """What hand-ins are built from, for one assignment."""

    course: Course
    assignment: str
    name: str  # the notebook's file name
    source: NotebookNode
    released: NotebookNode
    solution: NotebookNode


def _first_code(nb: NotebookNode) -> int:
    return next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code")


def first_cell(code: str):
    """A builder: the solved exercise with a new code cell ``code`` before its first code cell
    (a student may add cells anywhere; the locked set-up cell would be restored)."""

    def build(parts: Parts) -> NotebookNode:
        nb = copy.deepcopy(parts.solution)
        cell = nbformat.v4.new_code_cell(code)
        cell.id = "bad-code-first"
        nb.cells.insert(_first_code(nb), cell)
        return nb

    return build


def in_first_answer(code: str):
    """A builder: the solved exercise with ``code`` at the top of its first solution cell, so
    that the rest of that answer never runs if ``code`` raises."""

    def build(parts: Parts) -> NotebookNode:
        nb = copy.deepcopy(parts.solution)
        cell = next(c for c in nb.cells if is_solution(c) and c.cell_type == "code")
        cell.source = code + "\n" + cell.source
        return nb

    return build


def new_cell(code: str, base: str = "solution"):
    """A builder: a new code cell with ``code`` after the first code cell (the set-up)."""

    def build(parts: Parts) -> NotebookNode:
        nb = copy.deepcopy(parts.solution if base == "solution" else parts.released)
        cell = nbformat.v4.new_code_cell(
            code.format(root=parts.course.root, parts=parts, course_models=COURSE_MODELS)
        )
        cell.id = "added-by-student"
        nb.cells.insert(_first_code(nb) + 1, cell)
        return nb

    return build


def _tests_asserting_true(parts: Parts) -> NotebookNode:
    nb = copy.deepcopy(parts.released)
    for cell in nb.cells:
        if is_test(cell):
            cell.source = "assert True  # the tests always pass now"
    return nb


def _other_assignment(parts: Parts) -> NotebookNode:
    path = parts.course.release_dir / "zz_other" / "zz_other.ipynb"
    return nbformat.read(path, as_version=4)


def _old_nbformat(parts: Parts) -> bytes:
    nb = json.loads(nbformat.writes(parts.solution))
    nb["nbformat"] = 3
    return json.dumps(nb).encode()


#: Hides failures: IPython's traceback display, AssertionError and the excepthook replaced.
HIDE_FAILURES = """\
import builtins, sys
shell = get_ipython()
shell.showtraceback = lambda *args, **kwargs: None
shell._showtraceback = lambda *args, **kwargs: None
builtins.AssertionError = type("AssertionError", (Exception,), {{}})
sys.excepthook = lambda *args: None
"""

#: The course models the grader prepares: the library's course cache, as `python -m lib
#: course-models` resolves it (the test runs outside the unit tests' isolated model cache).
COURSE_MODELS = Path(
    os.environ.get("XNN_COURSE_CACHE_DIR")
    or os.environ.get("XNN_CACHE_DIR")
    or REPO / ".cache" / "models"
)

#: Tries to raise its score in the gradebook, to change the sources and the other students'
#: hand-ins, and to plant a file among the grader's course models.
TAMPER = """\
import os, sqlite3
targets = [
    "{root}/gradebook.db",
    "{root}/solutions/{parts.assignment}/{parts.name}",
    "{root}/submitted/solved/{parts.assignment}/{parts.name}",
    "{root}/submitted/solved/{parts.assignment}",
    "{course_models}",
]
for path in targets:
    try:
        if path.endswith(".db"):
            db = sqlite3.connect(path)
            db.execute("UPDATE grade SET auto_score = 100")
            db.commit()
        elif os.path.isdir(path):
            open(os.path.join(path, "planted.txt"), "w").write("planted")
        else:
            open(path, "a").write("tampered")
        print("changed", path)
    except Exception as error:
        print("could not change", path, type(error).__name__)
"""

#: Prints the hidden tests from the instructor's notebook, hoping to see them in the feedback.
READ_HIDDEN = """\
try:
    print(open("{root}/solutions/{parts.assignment}/{parts.name}").read())
except OSError as error:
    print("cannot read the solutions:", type(error).__name__)
"""

CORPUS: dict[str, Bad] = {
    "os_exit": Bad(
        first_cell("import os\nos._exit(1)"),
        "zero",
        "the kernel exited with status 1 (e.g. os._exit, exit() or quit()) in {cell}",
    ),
    "segfault": Bad(
        first_cell("import ctypes\nctypes.string_at(0)"),
        "zero",
        "the kernel crashed with a segmentation fault (SIGSEGV) in {cell}",
    ),
    "sys_exit": Bad(in_first_answer("import sys\nsys.exit('done')"), "zero", error="SystemExit"),
    "import_error": Bad(
        in_first_answer("import xnn_no_such_module"),
        "zero",
        error="ModuleNotFoundError",
    ),
    "tests_assert_true": Bad(_tests_asserting_true, "zero"),
    "hides_failures": Bad(new_cell(HIDE_FAILURES, base="released"), "zero"),
    "reads_hidden_tests": Bad(new_cell(READ_HIDDEN), "full"),
    "invalid_json": Bad(lambda parts: b'{"cells": [', "zero", "not valid JSON"),
    "old_nbformat": Bad(_old_nbformat, "zero", "nbformat version 3; expected 4"),
    "no_cells": Bad(lambda parts: nbformat.v4.new_notebook(), "zero", "the notebook has no cells"),
    "empty_file": Bad(lambda parts: b"", "zero", "the notebook file is empty"),
    "other_assignment": Bad(
        _other_assignment, "zero", "this is a notebook of assignment 'zz_other'"
    ),
}

#: Run as root, the grader keeps student code away from the gradebook and the other hand-ins;
#: as another user it can only detect the damage afterwards, so the tamperer is left out there.
ROOT = os.geteuid() == 0
if ROOT:
    CORPUS["tampers"] = Bad(new_cell(TAMPER, base="released"), "zero")

LIMIT_CORPUS: dict[str, Bad] = {
    "infinite_loop": Bad(
        first_cell("while True:\n    pass"),
        "zero",
        f"the cell time limit ({SMALL_LIMITS.cell_timeout:g} s) was reached in {{cell}}",
    ),
    "ignores_interrupts": Bad(
        first_cell(
            "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        ),
        "zero",
        f"the cell time limit ({SMALL_LIMITS.cell_timeout:g} s) was reached in {{cell}}",
    ),
    "memory_bomb": Bad(
        first_cell("hog = []\nwhile True:\n    hog.append(bytearray(2**26))"),
        "zero",
        f"the memory limit ({SMALL_LIMITS.memory_mb} MiB) was hit in {{cell}}",
    ),
}

#: A one-cell assignment besides the course's own, whose notebook a student hands in by mistake.
OTHER_SOURCE = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "other-test",
            "metadata": {
                "nbgrader": {
                    "grade": True,
                    "grade_id": "other-test",
                    "locked": True,
                    "points": 1,
                    "schema_version": 3,
                    "solution": False,
                    "task": False,
                }
            },
            "outputs": [],
            "source": "assert 1 + 1 == 2",
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def write_hand_in(course: Course, student: str, assignment: str, name: str, nb) -> None:
    folder = course.submitted_dir / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, bytes):
        (folder / name).write_bytes(nb)
    else:
        nbformat.write(nb, folder / name)


# --- The graded course ----------------------------------------------------------------------


@dataclass
class Graded:
    course: Course
    result: AutogradeResult
    rows: dict[tuple[str, str], GradeRow]
    #: assignment -> notebook file name -> source (instructor) notebook
    sources: dict[str, dict[str, NotebookNode]]
    #: the hand-ins of the corpus, as they were handed in
    corpus: dict[str, NotebookNode | bytes]
    #: hashes of the course's and the repository's solutions/ before grading
    solutions_before: dict[str, str]

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


def solutions_hashes(*courses: Course) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for course in courses
        for path in sorted(course.source_dir.rglob("*"))
        if path.is_file()
    }


def _parts(course: Course, assignment: str, source_path: Path) -> Parts:
    stubs = ClearSolutions(config=course.config())
    delimiters = (stubs.begin_solution_delimeter, stubs.end_solution_delimeter)
    source = nbformat.read(source_path, as_version=4)
    released = nbformat.read(course.release_dir / assignment / source_path.name, as_version=4)
    return Parts(
        course=course,
        assignment=assignment,
        name=source_path.name,
        source=source,
        released=released,
        solution=solved(released, source, delimiters),
    )


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    course = new_course(tmp_path_factory.mktemp("course"))
    other = course.source_dir / "zz_other"
    other.mkdir()
    (other / "zz_other.ipynb").write_text(json.dumps(OTHER_SOURCE), encoding="utf-8")
    release_all(course)
    sources: dict[str, dict[str, NotebookNode]] = {}
    corpus: dict[str, NotebookNode | bytes] = {}
    for assignment in ASSIGNMENTS:
        sources[assignment] = {}
        for source_path in course.source_notebooks(assignment):
            parts = _parts(course, assignment, source_path)
            sources[assignment][source_path.name] = parts.source
            handins = {
                "solved": parts.solution,
                "untouched": parts.released,
                "edited_tests": with_tests_edited(parts.released),
                "deleted_tests": without(parts.solution, is_test),
                "deleted_answers": without(parts.solution, is_manual),
            }
            if assignment == CORPUS_ASSIGNMENT:
                for kind, bad in CORPUS.items():
                    handins[kind] = corpus[kind] = bad.build(parts)
            for student, nb in handins.items():
                if student in RESTORING and assignment not in RESTORED:
                    continue
                write_hand_in(course, student, assignment, source_path.name, nb)
    before = solutions_hashes(course, Course(REPO))
    result = autograde(course, jobs=JOBS, limits=LIMITS, progress=False)
    write_feedback(course, [(s.student, s.assignment) for s in result.graded])
    rows = {(row.student, row.assignment): row for row in collect_grades(course)}
    return Graded(course, result, rows, sources, corpus, before)


pytestmark = [
    pytest.mark.skipif(not ASSIGNMENTS, reason="no assignment in solutions/"),
    # nbgrader's own noise: SQLAlchemy warnings from its gradebook code, and the cells that
    # OverwriteCells.add_missing_cells puts back carry no cell id.
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
]


def test_every_hand_in_is_graded(graded: Graded):
    assert graded.result.ok, "\n\n".join(graded.result.failures)
    expected = {(s, a) for a in ASSIGNMENTS for s in expected_students(a)}
    if CORPUS_ASSIGNMENT in ASSIGNMENTS:
        expected |= {(kind, CORPUS_ASSIGNMENT) for kind in CORPUS}
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


@pytest.mark.parametrize("assignment", RESTORED)
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


@pytest.mark.parametrize("assignment", RESTORED)
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


@pytest.mark.parametrize("assignment", RESTORED)
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


# --- The corpus of bad hand-ins --------------------------------------------------------------

corpus_only = pytest.mark.skipif(
    CORPUS_ASSIGNMENT not in ASSIGNMENTS, reason=f"{CORPUS_ASSIGNMENT} is not in solutions/"
)


def _where(nb: NotebookNode | bytes, reason: str) -> str:
    """``reason`` with ``{cell}`` filled in: the cell the bad code was put in."""
    if "{cell}" not in reason:
        return reason
    index = next(
        i
        for i, cell in enumerate(nb.cells)
        if cell.source.split("\n")[0]
        in {"import os", "import ctypes", "while True:", "import signal", "hog = []"}
    )
    grade = _nbgrader(nb.cells[index]).get("grade_id")
    return reason.format(cell=f"cell {index + 1}" + (f" ({grade})" if grade else ""))


def check_bad_hand_in(
    rows: dict[tuple[str, str], GradeRow], kind: str, bad: Bad, nb, solved_row: GradeRow
) -> GradeRow:
    row = rows.get((kind, CORPUS_ASSIGNMENT))
    assert row is not None, f"the hand-in {kind} has no recorded score"
    assert row.auto_max_score == solved_row.auto_max_score > 0
    expected = row.auto_max_score if bad.score == "full" else 0
    assert row.auto_score == expected, f"{kind}: {row.auto_score} points, reasons {row.reasons}"
    tests = [cell for cell in row.cells if cell.autograded]
    assert not [cell.name for cell in tests if cell.needs_manual_grade], (
        f"{kind}: tests left for manual grading instead of scored"
    )
    if bad.reason is None:
        assert row.reasons == (), f"{kind}: unexpected reasons {row.reasons}"
    else:
        wanted = _where(nb, bad.reason)
        assert any(wanted in reason for reason in row.reasons), (
            f"{kind}: expected the reason {wanted!r}, got {row.reasons}"
        )
    return row


@corpus_only
@pytest.mark.parametrize("kind", sorted(CORPUS))
def test_bad_hand_in_scores_as_expected(graded: Graded, kind: str):
    bad = CORPUS[kind]
    solved_row = graded.row("solved", CORPUS_ASSIGNMENT)
    row = check_bad_hand_in(graded.rows, kind, bad, graded.corpus[kind], solved_row)
    if isinstance(graded.corpus[kind], bytes) or bad.reason and "notebook" in bad.reason:
        # A broken notebook never runs: every cell, answers too, scores 0 at once.
        assert row.score == 0 and row.needs_manual_grade == ()
    if bad.error:
        name = next(iter(graded.sources[CORPUS_ASSIGNMENT]))
        ran = graded.autograded_notebook(kind, CORPUS_ASSIGNMENT, name)
        cell = next(c for c in ran.cells if is_solution(c) and c.cell_type == "code")
        errors = [o.ename for o in cell.outputs if o.output_type == "error"]
        assert bad.error in errors, f"{kind}: the first answer cell shows {errors}"


@corpus_only
@pytest.mark.parametrize("kind", ["os_exit", "segfault"])
def test_dead_kernel_marks_the_tests_that_did_not_run(graded: Graded, kind: str):
    """The cell where the kernel was found dead says so, and every test after it says that it
    did not run (and scores 0 for that reason, not as a failure of the student's code)."""
    name = next(iter(graded.sources[CORPUS_ASSIGNMENT]))
    ran = graded.autograded_notebook(kind, CORPUS_ASSIGNMENT, name)
    stopped = [
        index
        for index, cell in enumerate(ran.cells)
        if any(o.get("ename") == LIMIT_ERROR for o in cell.get("outputs", []))
    ]
    assert len(stopped) == 1, f"{kind}: cells marked as stopped: {stopped}"
    assert stopped[0] >= _first_code(ran)
    later = [cell for cell in ran.cells[stopped[0] + 1 :] if is_test(cell)]
    assert later
    for cell in later:
        assert [o.ename for o in cell.outputs] == [NOT_RUN_ERROR], grade_id(cell)


@corpus_only
def test_hidden_failures_still_fail(graded: Graded):
    """Replacing the traceback display or AssertionError does not turn failures into passes:
    nbgrader reads the kernel's reply, not the output."""
    name = next(iter(graded.sources[CORPUS_ASSIGNMENT]))
    ran = graded.autograded_notebook("hides_failures", CORPUS_ASSIGNMENT, name)
    for cell in ran.cells:
        if is_test(cell):
            assert any(o.output_type == "error" for o in cell.outputs), grade_id(cell)


def _hidden_lines(graded: Graded, assignment: str) -> set[str]:
    hidden, visible = set(), set()
    for nb in graded.sources[assignment].values():
        for cell in nb.cells:
            inside = False
            for line in cell.source.split("\n"):
                if "BEGIN HIDDEN TESTS" in line:
                    inside = True
                elif "END HIDDEN TESTS" in line:
                    inside = False
                else:
                    (hidden if inside else visible).add(line.strip())
    return {line for line in hidden - visible if len(line) >= 10}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_never_shows_hidden_tests(graded: Graded, assignment: str):
    secrets = _hidden_lines(graded, assignment)
    students = [s for s, a in graded.rows if a == assignment]
    assert "solved" in students and "untouched" in students
    checked = 0
    for student in students:
        folder = graded.course.feedback_dir / student / assignment
        assert (folder / "summary.txt").is_file(), f"no summary for {student}"
        assert (folder / "summary.html").is_file(), f"no HTML summary for {student}"
        for path in sorted(folder.iterdir()):
            text = path.read_text(encoding="utf-8")
            leaked = [s for s in secrets if s in text or html.escape(s) in text]
            assert not leaked, f"{path} shows hidden test lines: {leaked[:3]}"
            checked += 1
    html_pages = list((graded.course.feedback_dir / "untouched" / assignment).glob("*.ipynb.html"))
    html_pages += list(
        p
        for p in (graded.course.feedback_dir / "untouched" / assignment).glob("*.html")
        if not p.name.startswith("summary")
    )
    assert html_pages, "no HTML feedback of the notebook for the untouched exercise"
    assert checked


@corpus_only
def test_tampering_changed_nothing(graded: Graded):
    """The gradebook holds the grader's scores only, the sources are unchanged, and the other
    students' hand-ins and the course models got nothing planted."""
    if not ROOT:
        message = "keeping student code from the gradebook needs the grader to run as root"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI runs as root")
        pytest.skip(f"{message} (CI does; here it runs as uid {os.geteuid()})")
    assert graded.result.ok, "\n\n".join(graded.result.failures)
    assert graded.row("tampers", CORPUS_ASSIGNMENT).auto_score == 0
    assert solutions_hashes(graded.course, Course(REPO)) == graded.solutions_before
    assert not list(graded.course.submitted_dir.rglob("planted.txt"))
    assert not list(graded.course.root.rglob("planted.txt"))
    assert not list(COURSE_MODELS.rglob("planted.txt"))
    solved_nb = graded.course.submitted_dir / "solved" / CORPUS_ASSIGNMENT
    assert all("tampered" not in p.read_text() for p in solved_nb.glob("*.ipynb"))


def test_gradebook_is_consistent(graded: Graded):
    db_file = graded.course.root / "gradebook.db"
    with sqlite3.connect(db_file) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    expected = {(s, a) for a in ASSIGNMENTS for s in expected_students(a)}
    if CORPUS_ASSIGNMENT in ASSIGNMENTS:
        expected |= {(kind, CORPUS_ASSIGNMENT) for kind in CORPUS}
    assert set(graded.rows) == expected
    for (_, assignment), row in graded.rows.items():
        cells = {grade_id(cell) for cell in graded.source_cells(assignment, is_grade)}
        assert {cell.cell for cell in row.cells} == cells
        for cell in row.cells:
            assert 0 <= cell.score <= cell.max_score
        assert row.score <= row.max_score


def test_grading_again_gives_the_same_table(graded: Graded, tmp_path: Path):
    """The report reads back what grading recorded, and only the parent wrote it."""
    again = {(row.student, row.assignment): row for row in collect_grades(graded.course)}
    assert again == graded.rows


# --- Limits: a second course with small limits, graded through the command line -------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory):
    course = new_course(tmp_path_factory.mktemp("limited"))
    release_all(course)
    built = {}
    for source_path in course.source_notebooks(CORPUS_ASSIGNMENT):
        parts = _parts(course, CORPUS_ASSIGNMENT, source_path)
        for kind, bad in LIMIT_CORPUS.items():
            built[kind] = bad.build(parts)
            write_hand_in(course, kind, CORPUS_ASSIGNMENT, source_path.name, built[kind])
    args = ["--root", str(course.root), "grade", "--jobs", str(JOBS), "--no-progress"]
    args += ["--cell-timeout", str(SMALL_LIMITS.cell_timeout)]
    args += ["--notebook-timeout", str(SMALL_LIMITS.notebook_timeout)]
    args += ["--memory", str(SMALL_LIMITS.memory_mb), "--cpu-time", str(SMALL_LIMITS.cpu_seconds)]
    status = main(args)
    rows = {(row.student, row.assignment): row for row in collect_grades(course)}
    return course, status, rows, built


@corpus_only
def test_limits_score_zero_and_the_batch_exits_0(limited):
    course, status, rows, built = limited
    assert status == 0, "hand-ins that hit a limit are results, not grader failures"
    with open(course.root / "grades.csv", newline="", encoding="utf-8") as handle:
        lines = {line["student"]: line for line in csv.DictReader(handle)}
    for kind, bad in LIMIT_CORPUS.items():
        row = check_bad_hand_in(rows, kind, bad, built[kind], rows[(kind, CORPUS_ASSIGNMENT)])
        assert lines[kind]["reason"] == "; ".join(row.reasons)
        summary = (course.feedback_dir / kind / CORPUS_ASSIGNMENT / "summary.txt").read_text()
        assert _where(built[kind], bad.reason) in summary


def test_cpu_time_limit_kills_the_kernel(tmp_path: Path):
    """The sandbox's CPU-time limit ends a busy kernel with SIGXCPU, and says so."""
    limits = Limits(cpu_seconds=1)
    spec = KernelSpec(
        limits=limits,
        user=None,
        workdir=str(tmp_path),
        status_file=str(tmp_path / "status.json"),
        pid_file=str(tmp_path / "pid"),
    ).write(tmp_path / "spec.json")
    status = launch(spec, [sys.executable, "-c", "while True: pass"])
    ended = json.loads((tmp_path / "status.json").read_text())
    assert status == 128 + signal.SIGXCPU
    assert ended["signal"] == signal.SIGXCPU
    assert describe_end(ended, limits) == "it hit the CPU-time limit (1 s)"


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


def test_grader_uses_the_course_librarys_cache_variables():
    """The grader names lib.train's cache variables without importing torch; they must agree."""
    from grading.worker import COURSE_CACHE_ENV, MODEL_CACHE_ENV
    from lib import train

    assert MODEL_CACHE_ENV == train.CACHE_DIR_ENV
    assert COURSE_CACHE_ENV == train.COURSE_CACHE_DIR_ENV


def test_hand_ins_graded_at_once_share_the_cores(course: Course, tmp_path: Path, monkeypatch):
    """Each kernel gets its share of the cores as OpenMP threads, so that torch in JOBS
    kernels at once does not start JOBS threads per core (which made a class 2.3x slower)."""
    from grading.autograde import threads_per_handin
    from grading.worker import Job, prepare

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert threads_per_handin(1) == cores
    assert threads_per_handin(2) == max(1, cores // 2)
    assert threads_per_handin(4 * cores) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the instructor's choice wins
    assert threads_per_handin(2) == 3

    gradebook, handin = tmp_path / "gradebook.db", tmp_path / "handin"
    gradebook.write_bytes(b"")
    handin.mkdir()
    job = Job(
        root=str(course.root),
        student="alice",
        assignment=CORPUS_ASSIGNMENT,
        notebooks=[],
        folder=str(handin),
        workspace=str(tmp_path / "ws"),
        gradebook=str(gradebook),
        course_models=None,
        user=None,
        limits=Limits(),
        threads=2,
    )
    env = prepare(job)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    (spec_file,) = (tmp_path / "ws" / "jupyter" / "kernels").glob("*/kernel.json")
    assert json.loads(spec_file.read_text())["env"]["OMP_NUM_THREADS"] == "2"
