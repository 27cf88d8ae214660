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
tampering, broken notebooks, a cell whose type was changed) and nbgrader's own cases
(:data:`NBGRADER_CASES`: its cheat attempts, scored as nbgrader's tests assert; a hand-in
shipping its own copy of a data file; a late hand-in) are graded in the same pass. The hand-ins
that hit a limit (:data:`LIMIT_CORPUS`: an infinite loop, one that ignores interrupts, a memory
bomb) are graded with small limits in the *mixed class*, through the command line, once per
test session (``tests/conftest.py``): tests/test_slurm.py grades the same class on Slurm and
compares. Each hand-in has its expected score and reason; afterwards the other students'
scores, the gradebook and the sources are checked. Grading runs the notebooks, two at a time,
so the fixtures take a while; the tests then read the results. The repository's own gradebook,
submitted/ and autograded/ folders are never touched.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import html
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import nbgrader
import psutil
import pytest
import yaml
from nbformat import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearSolutions
from nbgrader.utils import determine_grade, is_grade, is_solution, is_task, parse_utc

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
    release,
    release_all,
    write_csv,
    write_feedback,
)
from grading.__main__ import LIMIT_OPTIONS, documented, main
from grading.autograde import cell_limits
from grading.course import write_json
from grading.preprocessors import (
    HIDDEN_FAILED,
    LIMIT_ERROR,
    NOT_RUN_ERROR,
    HideHiddenTests,
    LimitedExecute,
)
from grading.release import (
    TIMING_FILE,
    prepare_course_models,
    set_due_date,
    slowest_cell,
    time_solution,
)
from grading.sandbox import KernelSpec, describe_end, give_to, launch, sandbox_user
from grading.worker import _reachable

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


def expected_rows() -> set[tuple[str, str]]:
    """(student, assignment) of every hand-in the ``graded`` fixture grades."""
    expected = {(s, a) for a in ASSIGNMENTS for s in expected_students(a)}
    if CORPUS_ASSIGNMENT in ASSIGNMENTS:
        expected |= {(kind, CORPUS_ASSIGNMENT) for kind in CORPUS}
    expected |= {(case, "zz_nbgrader") for case in NBGRADER_CASES}
    return expected | {("own_data_file", "zz_files"), ("late", "zz_files")}


#: Two hand-ins at a time, as on a small machine; limits that a solved exercise stays within.
JOBS = 2
LIMITS = {"cell_timeout": 300, "notebook_timeout": 900, "memory_mb": 8192, "cpu_seconds": 900}
#: Limits of the mixed class: small enough that the infinite loop ends soon, large enough for the
#: solved exercise on a busy machine (its slowest cell trains for about 6 s on one idle core);
#: memory enough for torch and full MNIST (4.1 GB at most), which the memory bomb exceeds at once.
SMALL_LIMITS = {"cell_timeout": 40, "notebook_timeout": 300, "memory_mb": 5120, "cpu_seconds": 300}


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
    is the autograded score expected: "zero", "full", or "answer" (the first answer's tests
    score 0, every other task full marks); ``reason`` a text the reason in the
    table must contain (``None``: a plain failing hand-in, no reason), with ``{cell}``
    standing for the cell where it went wrong.
    """

    build: Callable[[Parts], NotebookNode | bytes]
    score: str
    reason: str | None = None
    #: (cell, ename): the error output the bad code must leave in that cell
    error: str | None = None
    #: it changes the tests' tools: its tests are left to a person (c.Tampering.action)
    review: bool = False


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


def _test_cell_made_markdown(parts: Parts) -> NotebookNode:
    """The solved exercise with its first test cell changed into a markdown cell."""
    nb = copy.deepcopy(parts.solution)
    cell = next(cell for cell in nb.cells if is_test(cell))
    cell.cell_type = "markdown"
    del cell["outputs"], cell["execution_count"]
    return nb


def _test_cell_made_markdown_41(parts: Parts) -> bytes:
    """The same in an nbformat 4.1 notebook (no cell ids), where nbgrader cannot restore it."""
    nb = json.loads(nbformat.writes(_test_cell_made_markdown(parts)))
    nb["nbformat_minor"] = 1
    for cell in nb["cells"]:
        del cell["id"]
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
    "sys_exit": Bad(in_first_answer("import sys\nsys.exit('done')"), "answer", error="SystemExit"),
    "import_error": Bad(
        in_first_answer("import xnn_no_such_module"),
        "answer",
        error="ModuleNotFoundError",
    ),
    "tests_assert_true": Bad(_tests_asserting_true, "zero"),
    "hides_failures": Bad(
        new_cell(HIDE_FAILURES, base="released"),
        "zero",
        "changes the tests' tools: {cell}, line 5: builtins.AssertionError replaced",
        review=True,
    ),
    "reads_hidden_tests": Bad(new_cell(READ_HIDDEN), "full"),
    "invalid_json": Bad(lambda parts: b'{"cells": [', "zero", "not valid JSON"),
    "old_nbformat": Bad(_old_nbformat, "zero", "nbformat version 3; expected 4"),
    "no_cells": Bad(lambda parts: nbformat.v4.new_notebook(), "zero", "the notebook has no cells"),
    "empty_file": Bad(lambda parts: b"", "zero", "the notebook file is empty"),
    "other_assignment": Bad(
        _other_assignment, "zero", "this is a notebook of assignment 'zz_other'"
    ),
    # nbgrader puts a cell's type back (4.5); without cell ids it fails, so the grader says why.
    "cell_type_changed": Bad(_test_cell_made_markdown, "full"),
    "cell_type_changed_41": Bad(
        _test_cell_made_markdown_41,
        "zero",
        "was changed from a code cell to a markdown cell, which the grader cannot undo in an "
        "nbformat 4.1 notebook",
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
        f"the cell time limit ({SMALL_LIMITS['cell_timeout']:g} s) was reached in {{cell}}",
    ),
    "ignores_interrupts": Bad(
        first_cell(
            "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        ),
        "zero",
        f"the cell time limit ({SMALL_LIMITS['cell_timeout']:g} s) was reached in {{cell}}",
    ),
    # Address space that is never written to: the limit is reached at once, however busy the
    # machine (filling 5 GiB, as bytearray does, can take longer than the cell limit there).
    # numpy's MemoryError is the kind of a student's own big array.
    "memory_bomb": Bad(
        first_cell(
            "import numpy as np\nhog = []\nwhile True:\n    hog.append(np.empty(2**28, np.uint8))"
        ),
        "zero",
        f"the memory limit ({SMALL_LIMITS['memory_mb']} MiB) was hit in {{cell}}",
    ),
}

#: nbgrader's own test material (shipped with nbgrader): its test notebook as the source of
#: the assignment zz_nbgrader, and its hand-ins of it.
NBGRADER_FILES = Path(nbgrader.__file__).parent / "tests" / "apps" / "files"
#: Those hand-ins, with the (score, needs manual grading) that nbgrader's own tests assert
#: (tests/apps/test_nbgrader_autograde.py, test_showtraceback_exploit): hiding tracebacks
#: must not turn failing tests into passes.
NBGRADER_CASES = {
    "submitted-unchanged": (1, False),
    "submitted-changed": (2, True),
    "submitted-cheat-attempt": (1, True),
    "submitted-cheat-attempt-alternative": (1, True),
}


def _nbgrader_cell(source: str, grade_id: str) -> NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.id = grade_id
    cell.metadata.nbgrader = {"grade": True, "grade_id": grade_id, "locked": True, "points": 1,
                              "schema_version": 3, "solution": False, "task": False}  # fmt: skip
    return cell


#: The assignment zz_files provides a data file; its tests read it and a file of the hand-in's.
FILES_SOURCE = nbformat.v4.new_notebook(
    cells=[
        _nbgrader_cell('assert open("data.txt").read() == "the instructor\'s data"', "data"),
        _nbgrader_cell('assert open("notes.txt").read() == "the student\'s notes"', "notes"),
    ],
    metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
)
#: Its hand-ins: with their own data.txt (the instructor's must win), and one also late.
FILES_HANDED_IN = {"data.txt": "the student's data", "notes.txt": "the student's notes"}
DUE = "2030-01-31 23:00:00 UTC"
LATE = {"timestamp.txt": "2030-02-01 00:00:00 UTC"}  # an hour late

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
    root.mkdir(parents=True, exist_ok=True)
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


def _add_assignment(course: Course, name: str, files: dict[str, str | bytes]) -> None:
    folder = course.source_dir / name
    folder.mkdir()
    for filename, content in files.items():
        path = folder / filename
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    course = new_course(tmp_path_factory.mktemp("course"))
    _add_assignment(course, "zz_other", {"zz_other.ipynb": json.dumps(OTHER_SOURCE)})
    unchanged = (NBGRADER_FILES / "submitted-unchanged.ipynb").read_bytes()
    _add_assignment(course, "zz_nbgrader", {"p1.ipynb": unchanged})
    files = {"files.ipynb": nbformat.writes(FILES_SOURCE), "data.txt": "the instructor's data"}
    _add_assignment(course, "zz_files", files)
    with open(course.config_file, "a", encoding="utf-8") as config:
        config.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    release_all(course)
    for case in NBGRADER_CASES:
        nb = (NBGRADER_FILES / f"{case}.ipynb").read_bytes()
        write_hand_in(course, case, "zz_nbgrader", "p1.ipynb", nb)
    released = nbformat.read(course.release_dir / "zz_files" / "files.ipynb", as_version=4)
    for student, extra in (("own_data_file", FILES_HANDED_IN), ("late", FILES_HANDED_IN | LATE)):
        write_hand_in(course, student, "zz_files", "files.ipynb", released)
        for name, text in extra.items():
            (course.submitted_dir / student / "zz_files" / name).write_text(text)
    set_due_date(course, "zz_files", DUE)  # make due, before the gradebook exists
    sources: dict[str, dict[str, NotebookNode]] = {
        name: {p.name: nbformat.read(p, as_version=4) for p in course.source_notebooks(name)}
        for name in ("zz_nbgrader", "zz_files")
    }
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
    result = autograde(course, jobs=JOBS, limits=Limits.of(course, **LIMITS), progress=False)
    write_feedback(course, [(s.student, s.assignment) for s in result.graded])
    rows = {(row.student, row.assignment): row for row in collect_grades(course)}
    return Graded(course, result, rows, sources, corpus, before)


pytestmark = [
    pytest.mark.grading,
    pytest.mark.skipif(not ASSIGNMENTS, reason="no assignment in solutions/"),
    # nbgrader's own noise: SQLAlchemy warnings from its gradebook code, and the cells that
    # OverwriteCells.add_missing_cells puts back carry no cell id.
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
]


def test_every_hand_in_is_graded(graded: Graded):
    assert graded.result.ok, "\n\n".join(graded.result.failures)
    assert set(graded.rows) == expected_rows()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_earns_every_autograded_point(graded: Graded, assignment: str):
    row = graded.row("solved", assignment)
    tests = graded.source_cells(assignment, is_test)
    assert tests, f"{assignment} has no autograded test cell"
    assert row.auto_max_score == sum(float(_nbgrader(cell)["points"]) for cell in tests)
    failed = [cell.name for cell in row.cells if cell.autograded and cell.score < cell.max_score]
    assert not failed, f"the reference solution fails {failed} of {assignment}"
    assert row.auto_score == row.auto_max_score > 0
    assert row.reasons == (), f"the reference solution of {assignment} is flagged: {row.reasons}"
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
        in {
            "import os",
            "import ctypes",
            "while True:",
            "import signal",
            "import numpy as np",
            "import builtins, sys",
        }
    )
    grade = _nbgrader(nb.cells[index]).get("grade_id")
    return reason.format(cell=f"cell {index + 1}" + (f" ({grade})" if grade else ""))


def check_bad_hand_in(
    rows: dict[tuple[str, str], GradeRow], kind: str, bad: Bad, nb, solved_row: GradeRow
) -> GradeRow:
    row = rows.get((kind, CORPUS_ASSIGNMENT))
    assert row is not None, f"the hand-in {kind} has no recorded score"
    assert row.auto_max_score == solved_row.auto_max_score > 0
    expected = {"full": row.auto_max_score, "zero": 0}.get(bad.score)
    if bad.score == "answer":
        # Each task is graded on its own answer: the broken answer's tests score 0, and the
        # other tasks keep their points.
        answer = next(c for c in nb.cells if is_solution(c) and c.cell_type == "code")
        broken = f"{answer.metadata.nbgrader.grade_id}-tests"
        lost = [cell for cell in row.cells if cell.cell == broken]
        assert lost and all(cell.score == 0 for cell in lost), f"{kind}: {broken} scored {lost}"
        expected = row.auto_max_score - sum(cell.max_score for cell in lost)
    assert row.auto_score == expected, f"{kind}: {row.auto_score} points, reasons {row.reasons}"
    tests = [cell for cell in row.cells if cell.autograded]
    left = [cell.name for cell in tests if cell.needs_manual_grade]
    assert len(left) == (len(tests) if bad.review else 0), (
        f"{kind}: {left} of the tests left for manual grading"
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


def _lines(cells) -> set[str]:
    return {line.strip() for cell in cells for line in cell.source.split("\n") if line.strip()}


def hidden_lines(course: Course, assignment: str) -> set[str]:
    """The lines of the source's test cells that nbgrader's release cut out of the exercise,
    less those a hand-in may show of its own (the solutions' code) and those that the exercise
    shows within a line of its own (``assert torch.allclose(``, the start of a long assert)."""
    released = course.release_dir / assignment
    public = _lines(c for p in released.glob("*.ipynb") for c in nbformat.read(p, 4).cells)
    cells = [c for p in course.source_notebooks(assignment) for c in nbformat.read(p, 4).cells]
    hidden = _lines(filter(is_test, cells)) - _lines(filter(is_solution, cells))
    shown = "\n".join(public)
    # The markers, and lines of punctuation alone (a closing bracket), tell nothing.
    hidden = {line for line in hidden if "HIDDEN TESTS" not in line and re.search(r"\w", line)}
    hidden = {line for line in hidden if line not in shown}
    assert hidden, f"{assignment} has no hidden test"
    return hidden


#: A test cell with a hidden test whose assert has a message, as its hand-in's feedback gets it.
HIDDEN_TEST = """\
assert image.shape == (28, 28), "weight_image must return a 28x28 image"
### BEGIN HIDDEN TESTS
assert probe_image[0, 5].item() == 5, (
    "weight_image must put pixel 28 r + c at [r, c]; "
    f"{plot.difference(probe_image, torch.arange(784.0).reshape(28, 28))}"
)
### END HIDDEN TESTS"""


@pytest.mark.parametrize(
    ("evalue", "shown"),
    [
        ("weight_image must put pixel 28 r + c at [r, c]; 756 of 784 entries differ", None),
        ("", HIDDEN_FAILED),
        ("probe_image[0, 5].item() == 5, (", HIDDEN_FAILED),  # a hand-in quoting the code
    ],
)
def test_a_failing_hidden_test_shows_its_message_and_never_its_code(evalue: str, shown: str):
    cell = _nbgrader_cell(HIDDEN_TEST, "weights-tests")
    code = HIDDEN_TEST.split("\n")[2]
    traceback = [f"Cell In[5], line 3\n----> 3 {code}", f"AssertionError: {evalue}"]
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue=evalue,
                                           traceback=traceback)]  # fmt: skip
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb, _ = HideHiddenTests().preprocess(nb, {})
    (output,) = nb.cells[0].outputs
    assert output.evalue == (shown or evalue)
    assert output.traceback == [f"AssertionError: {shown or evalue}"]
    assert "BEGIN HIDDEN" not in nb.cells[0].source and "probe_image" not in nb.cells[0].source


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_never_shows_hidden_tests(graded: Graded, assignment: str):
    secrets = hidden_lines(graded.course, assignment)
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
    assert set(graded.rows) == expected_rows()
    for (_, assignment), row in graded.rows.items():
        cells = {grade_id(cell) for cell in graded.source_cells(assignment, is_grade)}
        assert {cell.cell for cell in row.cells} == cells
        for cell in row.cells:
            assert 0 <= cell.score <= cell.max_score
        assert row.score <= row.max_score


def test_recorded_scores_are_nbgraders_of_the_executed_notebooks(graded: Graded):
    """Every autograded cell scores in the table what nbgrader's own rule gives the executed
    notebook that the grader kept (an error or stderr: 0; else its points)."""
    checked = 0
    for (student, assignment), row in graded.rows.items():
        for path in (graded.course.autograded_dir / student / assignment).glob("*.ipynb"):
            for cell in filter(is_test, nbformat.read(path, as_version=4).cells):
                score, points = determine_grade(cell)
                assert (row.cell(grade_id(cell)).score, row.cell(grade_id(cell)).max_score) == (
                    score,
                    points,
                ), f"{student}/{assignment}: {grade_id(cell)}"
                checked += 1
    assert checked > len(graded.rows)


# --- nbgrader's own cases ---------------------------------------------------------------------


@pytest.mark.parametrize("case", NBGRADER_CASES)
def test_nbgrader_cases_score_as_nbgrader_asserts(graded: Graded, case: str):
    score, manual = NBGRADER_CASES[case]
    row = graded.row(case, "zz_nbgrader")
    assert (row.score, row.max_score, bool(row.needs_manual_grade)) == (score, 7, manual), row


def test_the_instructors_files_win_over_a_hand_ins(graded: Graded):
    """A hand-in's own data.txt does not replace the one the assignment provides (nbgrader's
    test_grade_overwrite_files); its other files still reach the kernel."""
    row = graded.row("own_data_file", "zz_files")
    assert [(c.cell, c.score) for c in row.cells] == [("data", 1), ("notes", 1)], row
    assert (row.score, row.reasons, row.seconds_late) == (2, (), 0)


def test_late_hand_in_gets_nbgraders_penalty(graded: Graded):
    """Due date and timestamp.txt the nbgrader way: an hour late, and with the course's
    penalty ("zero") every point is lost, and the table says why."""
    row = graded.row("late", "zz_files")
    assert row.auto_score == 2 and row.seconds_late == 3600 and row.late_penalty == 2
    assert row.score == 0
    assert row.reasons == ("handed in 3600 s after the due date: late penalty 2 points",)
    with Gradebook(f"sqlite:///{graded.course.gradebook}") as gradebook:
        submission = gradebook.find_submission("zz_files", "late")
        assert submission.timestamp == parse_utc(LATE["timestamp.txt"]).replace(tzinfo=None)


# --- The mixed class: limits, through the command line -----------------------------------------

#: The mixed class: the solved exercise, the hand-ins that hit a limit, a dying kernel and a
#: broken file. Graded here once per session (tests/conftest.py's ``mixed_class``), and through
#: Slurm by tests/test_slurm.py, which compares the two.
MIXED = {
    "solved": None,
    **LIMIT_CORPUS,
    "os_exit": CORPUS["os_exit"],
    "invalid_json": CORPUS["invalid_json"],
}


@dataclass
class MixedClass:
    course: Course
    status: int  # of `python -m grading grade`
    rows: dict[str, GradeRow]  # by student
    built: dict[str, NotebookNode | bytes]  # the hand-ins, as handed in


def mixed_class_course(root: Path) -> tuple[Course, dict[str, NotebookNode | bytes]]:
    """A copy of the course in ``root`` with the mixed class handed in."""
    course = new_course(root)
    release_all(course)
    built = {}
    for source_path in course.source_notebooks(CORPUS_ASSIGNMENT):
        parts = _parts(course, CORPUS_ASSIGNMENT, source_path)
        for student, bad in MIXED.items():
            built[student] = parts.solution if bad is None else bad.build(parts)
            write_hand_in(course, student, CORPUS_ASSIGNMENT, source_path.name, built[student])
    return course, built


def limit_args() -> list[str]:
    """`grade`'s options for :data:`SMALL_LIMITS`."""
    return [f"{option}={SMALL_LIMITS[name]}" for option, name in LIMIT_OPTIONS.items()]


def grade_mixed_class(root: Path) -> MixedClass:
    """The mixed class in ``root``, graded by `python -m grading grade` (2 jobs)."""
    course, built = mixed_class_course(root)
    status = main(["--root", str(course.root), "grade", "--jobs", str(JOBS), "--no-progress"]
                  + limit_args())  # fmt: skip
    return MixedClass(course, status, {r.student: r for r in collect_grades(course)}, built)


@corpus_only
def test_limits_score_zero_and_the_batch_exits_0(mixed_class: MixedClass):
    course, rows = (
        mixed_class.course,
        {(s, CORPUS_ASSIGNMENT): r for s, r in mixed_class.rows.items()},
    )
    assert mixed_class.status == 0, "hand-ins that hit a limit are results, not grader failures"
    solved = mixed_class.rows["solved"]
    assert solved.auto_score == solved.auto_max_score > 0, (
        f"the solved exercise lost points ({solved.reasons}): is the machine too busy for "
        f"{SMALL_LIMITS['cell_timeout']:g} s per cell?"
    )
    with open(course.root / "grades.csv", newline="", encoding="utf-8") as handle:
        lines = {line["student"]: line for line in csv.DictReader(handle)}
    assert set(lines) == set(MIXED)
    for kind, bad in MIXED.items():
        if bad is None:
            continue
        row = check_bad_hand_in(rows, kind, bad, mixed_class.built[kind], solved)
        assert lines[kind]["reason"] == "; ".join(row.reasons)
        summary = (course.feedback_dir / kind / CORPUS_ASSIGNMENT / "summary.txt").read_text()
        if bad.reason is not None:
            assert _where(mixed_class.built[kind], bad.reason) in summary


def test_cpu_time_limit_kills_the_kernel(tmp_path: Path):
    """The sandbox's CPU-time limit ends a busy kernel with SIGXCPU, and says so."""
    spec = KernelSpec(
        memory_mb=8192,
        cpu_seconds=1,
        user=None,
        workdir=str(tmp_path),
        status_file=str(tmp_path / "status.json"),
    )
    status = launch(write_json(tmp_path / "spec.json", spec), [sys.executable, "-c", "while 1: 0"])
    ended = json.loads((tmp_path / "status.json").read_text())
    assert status == 128 + signal.SIGXCPU
    assert ended["signal"] == signal.SIGXCPU
    assert describe_end(ended, 1) == "it hit the CPU-time limit (1 s)"


def test_a_kernel_that_dies_while_starting_is_started_again(tmp_path: Path, monkeypatch):
    """A hand-in's kernel that dies before its first cell (no code of the hand-in ran; two
    kernels starting at once can pick the same port) is started again, as the course configures
    (c.LimitedExecute.execute_retries), instead of failing the hand-in."""
    died = tmp_path / "died-once"
    start = (
        f"import pathlib, sys; died = pathlib.Path({str(died)!r}); "
        "died.exists() or (died.touch(), sys.exit(1)); "
        "from ipykernel.kernelapp import launch_new_instance; launch_new_instance()"
    )
    spec = tmp_path / "kernels" / "dies-once"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", start, "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "dies once"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    config = Course(REPO).config(**{"LimitedExecute.kernel_name": "dies-once"})
    executed, _ = LimitedExecute(config=config).preprocess(nb, {})
    assert died.is_file(), "the first kernel did not start at all"
    assert [out.get("text") for out in executed.cells[0].outputs] == ["42\n"]


@pytest.mark.skipif(not ROOT, reason="sandbox users need root; CI runs as root")
def test_a_symlinked_data_folder_in_a_private_folder_reaches_the_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """``XNN_DATA_DIR`` as a link in a folder only its owner may enter (``../shared`` linked
    beside a clone in a ``mktemp -d`` folder): the sandbox user's kernel opens it by that path."""
    real = tmp_path / "real"
    (real / "MNIST").mkdir(parents=True)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "data").symlink_to(real)
    monkeypatch.setenv("XNN_DATA_DIR", str(private / "data"))
    lists = f"import os, sys; sys.exit(os.listdir({str(private / 'data')!r}) != ['MNIST'])"
    with sandbox_user() as (user, _), tempfile.TemporaryDirectory() as base:
        os.chmod(base, 0o711)
        workdir = Path(base) / "work"
        workdir.mkdir()
        give_to(workdir, user)
        spec = KernelSpec(8192, 60, user, str(workdir), str(Path(base) / "status.json"),
                          reachable=_reachable())  # fmt: skip
        status = launch(write_json(Path(base) / "spec.json", spec), [sys.executable, "-c", lists])
    assert status == 0, f"the kernel as {user} could not list {private / 'data'} (status {status})"


# --- No orphans: stopping the grader stops everything it started --------------------------------

#: A hand-in that starts a process in a session of its own (which killing its process group
#: would miss), then never ends.
LINGERS = """\
import subprocess, time
subprocess.Popen(["setsid", "sleep", "3600"])
while True:
    time.sleep(1)"""
#: Environment variable that marks every process of one grader run (inherited down to the kernel).
MARK = "XNN_GRADER_RUN"


def _marked(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(MARK) == token:
                found.append(process)
        except psutil.Error:
            continue
    return found


@corpus_only
def test_stopping_the_grader_leaves_no_process_behind(tmp_path: Path):
    """SIGTERM (`timeout`, a batch system), SIGINT (Ctrl-C) or SIGKILL of the grader ends its
    workers, the sandboxes, the kernels and what the hand-in started, even in another session.
    The three graders run at once, each on its own copy of a one-hand-in class."""
    graders, first = {}, new_course(tmp_path / "first")
    release_all(first)
    source_path = first.source_notebooks(CORPUS_ASSIGNMENT)[0]
    nb = first_cell(LINGERS)(_parts(first, CORPUS_ASSIGNMENT, source_path))
    write_hand_in(first, "lingers", CORPUS_ASSIGNMENT, source_path.name, nb)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        course = Course(shutil.copytree(first.root, tmp_path / sig.name))
        token = f"{sig.name}-{os.getpid()}-{time.time()}"
        command = [sys.executable, "-m", "grading", "--root", str(course.root), "grade"]
        graders[sig] = (
            token,
            subprocess.Popen(
                [*command, "--jobs=1", "--no-progress", "--cell-timeout=600"],
                env={**os.environ, MARK: token},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            ),
        )
    deadline = time.monotonic() + 600
    for sig, (token, grader) in graders.items():
        while not any(p.name() == "sleep" for p in _marked(token)):
            assert grader.poll() is None, f"the grader ended before the hand-in ran ({sig.name})"
            assert time.monotonic() < deadline, "the hand-in did not start within 10 minutes"
            time.sleep(0.5)
        grader.send_signal(sig)
    for sig, (token, grader) in graders.items():
        expected = -sig if sig == signal.SIGKILL else 128 + sig
        assert grader.wait(timeout=120) == expected, sig.name
        ends = time.monotonic() + 30
        while _marked(token) and time.monotonic() < ends:
            time.sleep(0.2)
        left = [(p.pid, p.name(), p.cmdline()[:4]) for p in _marked(token)]
        assert not left, f"after {sig.name}, these processes of the grader still run: {left}"


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


def test_due_dates_name_bad_input_and_create_the_gradebook(course: Course, capsys):
    """``make due`` on a course without a gradebook (nbgrader's own command needs `alembic` on
    PATH there); an unknown assignment or a date that is no date is named."""
    root = ["--root", str(course.root), "due"]
    assert main([*root, "no_such_assignment", "2025-01-31 23:59 Europe/Berlin"]) == 2
    assert "'no_such_assignment' has no source notebook" in capsys.readouterr().err
    assert main([*root, ASSIGNMENTS[0], "the end of term"]) == 2
    assert "'the end of term' is not a date and time" in capsys.readouterr().err
    assert not course.gradebook.exists()
    assert main([*root, ASSIGNMENTS[0], "2025-01-31 23:59 Europe/Berlin"]) == 0
    assert "is due 2025-01-31 22:59 UTC" in capsys.readouterr().out
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        assert str(gradebook.find_assignment(ASSIGNMENTS[0]).duedate) == "2025-01-31 22:59:00"


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
    from grading.autograde import Job, Submission, threads_per_handin
    from grading.worker import prepare

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
    limits = Limits.of(course)
    submission = Submission("alice", CORPUS_ASSIGNMENT, handin, limits=limits)
    env = prepare(Job(course.root, submission, tmp_path / "ws", gradebook, None, 2))
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    (spec_file,) = (tmp_path / "ws" / "jupyter" / "kernels").glob("*/kernel.json")
    assert json.loads(spec_file.read_text())["env"]["OMP_NUM_THREADS"] == "2"


# --- Limits and options: set in nbgrader_config.py only -----------------------------------------


def test_cell_limit_follows_the_solutions_timing(course: Course):
    """The per-cell limit of an assignment: 10x its solution's slowest cell, at least 60 s and
    at most the course's fixed limit (as nbgrader_config.py sets them); that fixed limit where
    the source changed since it was timed; and what the instructor set, where set."""
    assignment = CORPUS_ASSIGNMENT
    limits, fixed = Limits.of(course), course.config().Execute.timeout
    assert limits.cell_timeout is None, "nbgrader_config.py sets a fixed limit per cell"
    timing = course.source_dir / assignment / TIMING_FILE
    data = json.loads(timing.read_text(encoding="utf-8"))
    factor, floor = limits.cell_timeout_factor, limits.cell_timeout_floor
    for slowest, expected in ((2.0, floor), (30.0, 30.0 * factor), (fixed, fixed)):
        write_json(timing, {**data, "slowest_seconds": slowest})
        assert slowest_cell(course, assignment) == slowest
        assert cell_limits(course, limits, assignment).cell_timeout == expected
    assert cell_limits(course, Limits.of(course, cell_timeout=5), assignment).cell_timeout == 5
    notebook = course.source_notebooks(assignment)[0]
    notebook.write_text(notebook.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert slowest_cell(course, assignment) is None
    assert cell_limits(course, limits, assignment).cell_timeout == fixed


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_solution_was_timed_since_it_changed(assignment: str):
    assert slowest_cell(Course(REPO), assignment) is not None, (
        f"solutions/{assignment}/{TIMING_FILE} is missing or older than the source: run "
        "`make exercises`, which times the solution, and commit the file"
    )


def test_timing_a_solution_stays_with_the_instructor(course: Course):
    """`make exercises` times a solution by running it, and keeps the timing beside the source:
    never in the student version."""
    source = copy.deepcopy(FILES_SOURCE)  # and a cell that takes a measurable CPU time
    source.cells.append(nbformat.v4.new_code_cell("sum(i * i for i in range(3_000_000))"))
    _add_assignment(course, "zz_files", {"files.ipynb": nbformat.writes(source)})
    (course.source_dir / "zz_files" / "data.txt").write_text("the instructor's data")
    (course.source_dir / "zz_files" / "notes.txt").write_text("the student's notes")
    path = time_solution(course, "zz_files")
    assert path == course.source_dir / "zz_files" / TIMING_FILE
    assert 0.05 <= slowest_cell(course, "zz_files") < 60
    assert json.loads(path.read_text())["slowest_cell"] == "files.ipynb, cell 3"
    released = {p.name for p in release(course, "zz_files")}
    assert released == {"files.ipynb", "data.txt", "notes.txt"}


def test_course_models_are_prepared_only_where_used(course: Course, capsys):
    """The grader prepares what an assignment's notebooks use and nothing else: for one that
    uses no course model, only MNIST decoded into the course cache (its hand-ins read the
    decoded splits from their copy of it); for a notebook that loads nothing, nothing (the
    graded class above, with assignments that use the MNIST CNN, gets it)."""
    from lib import train
    from lib.__main__ import main

    names = [name.rpartition(".")[2] for name in train.course_models()]
    text = {a: "".join(p.read_text() for p in course.source_notebooks(a)) for a in ASSIGNMENTS}
    unused = [a for a in ASSIGNMENTS if not any(name in text[a] for name in names)]
    assert unused, "every assignment uses a course model"
    capsys.readouterr()
    assert main(["course-models", "--for", *map(str, course.source_notebooks(unused[0]))]) == 0
    ready = [line.split(":")[0] for line in capsys.readouterr().out.splitlines() if "ready" in line]
    assert ready == ["lib.data.load_mnist"]
    nothing = course.root / "nothing.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), nothing)
    assert prepare_course_models(course, [nothing]) is None


def test_book_cell_limit_is_the_courses(tmp_path: Path, book_app):
    """The book runs its cells with nbgrader_config.py's Execute.timeout, set nowhere else:
    MyST-NB's limit once the book's extensions have run (no page is read)."""
    book = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    assert "timeout" not in book["execute"]
    with book_app(REPO, REPO / "_config.yml", tmp_path) as (app, log):
        timeout = Course(REPO).config().Execute.timeout
        assert app.config.nb_execution_timeout == timeout, log.getvalue()[-4000:]


def test_grade_help_shows_the_limits_of_the_course(capsys: pytest.CaptureFixture):
    """`grade --help` documents each limit with nbgrader_config.py's own words and value."""
    with pytest.raises(SystemExit):
        main(["grade", "--help"])
    shown = "".join(capsys.readouterr().out.split())  # argparse wraps lines, even at hyphens
    docs, limits = documented(Course(REPO).config_file), Course(REPO).config().Limits
    for option, name in LIMIT_OPTIONS.items():
        assert option in shown
        assert (
            "".join(f"{docs[f'Limits.{name}']} (nbgrader_config.py: {limits[name]})".split())
            in shown
        )
