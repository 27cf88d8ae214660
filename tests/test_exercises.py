"""The committed student versions, ``exercises/``, are current and safe to hand out.

``exercises/<assignment>/`` is generated from ``solutions/<assignment>/`` by nbgrader
(``make exercises``, i.e. ``python -m grading release``) and committed. These tests regenerate
every assignment into a temporary folder and compare byte for byte, and check that the student
version gives nothing away.
"""

from __future__ import annotations

import ast
import difflib
import json
from pathlib import Path

import nbformat
import pytest

from grading import Course, GradingError, release
from grading.release import check_cell_ids

REPO = Path(__file__).resolve().parent.parent
COURSE = Course(REPO)
ASSIGNMENTS = COURSE.source_assignments()
FIX = "Run `make exercises` (python -m grading release) and commit exercises/."

#: Text that must never reach students: nbgrader's solution and hidden-test delimiters.
SECRETS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _diff(name: str, committed: bytes, regenerated: bytes, limit: int = 40) -> str:
    lines = list(
        difflib.unified_diff(
            committed.decode("utf-8", "replace").splitlines(),
            regenerated.decode("utf-8", "replace").splitlines(),
            f"committed/{name}",
            f"regenerated/{name}",
            lineterm="",
        )
    )
    cut = [f"... ({len(lines) - limit} more lines)"] if len(lines) > limit else []
    return "\n".join(lines[:limit] + cut)


def _exercise_notebooks(assignment: str) -> list[Path]:
    folder = COURSE.release_dir / assignment
    notebooks = sorted(folder.glob("*.ipynb"))
    assert notebooks, f"{folder} holds no notebook. {FIX}"
    return notebooks


def test_there_are_assignments():
    assert ASSIGNMENTS, f"no assignment in {COURSE.source_dir} (expected <assignment>/*.ipynb)"


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_are_up_to_date(assignment: str, tmp_path: Path):
    release(COURSE, assignment, tmp_path)
    regenerated = _files(tmp_path / assignment)
    committed_dir = COURSE.release_dir / assignment
    committed = _files(committed_dir) if committed_dir.is_dir() else {}
    missing = sorted(set(regenerated) - set(committed))
    extra = sorted(set(committed) - set(regenerated))
    assert not missing and not extra, (
        f"exercises/{assignment}/ lacks {missing} and has extra {extra} compared with what "
        f"solutions/{assignment}/ generates. {FIX}"
    )
    stale = [name for name in regenerated if regenerated[name] != committed[name]]
    assert not stale, (
        f"exercises/{assignment}/{stale[0]} is out of date with solutions/{assignment}/. {FIX}\n"
        + _diff(stale[0], committed[stale[0]], regenerated[stale[0]])
    )


@pytest.mark.grading
def test_release_is_deterministic(tmp_path: Path):
    """Two releases of the same sources are byte-identical (else the test above could not hold).

    One assignment suffices: the release steps are the same for all, and the test above already
    compares every assignment's release, made now, with the one committed earlier."""
    assignment = ASSIGNMENTS[0]
    release(COURSE, assignment, tmp_path / "first")
    release(COURSE, assignment, tmp_path / "second")
    assert _files(tmp_path / "first" / assignment) == _files(tmp_path / "second" / assignment)


def test_every_exercise_has_a_source():
    folders = sorted(p.name for p in COURSE.release_dir.glob("*") if p.is_dir())
    orphans = [name for name in folders if name not in ASSIGNMENTS]
    assert not orphans, (
        f"exercises/ has {orphans} without a source in solutions/: remove them or add the source."
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_give_nothing_away(assignment: str):
    for path in _exercise_notebooks(assignment):
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            where = f"{path.relative_to(REPO)}, cell {index}"
            leaked = [secret for secret in SECRETS if secret in cell.source]
            assert not leaked, f"{where} contains {leaked}. {FIX}"
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{where} has outputs. {FIX}"
                assert cell.execution_count is None, f"{where} has an execution count. {FIX}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_have_autograded_tests(assignment: str):
    for path in _exercise_notebooks(assignment):
        nb = nbformat.read(path, as_version=4)
        tests = [
            cell
            for cell in nb.cells
            if cell.cell_type == "code"
            and cell.metadata.get("nbgrader", {}).get("grade")
            and not cell.metadata["nbgrader"].get("solution")
        ]
        assert tests, f"{path.relative_to(REPO)} has no autograded test cell"
        for cell in tests:
            assert cell.metadata["nbgrader"].get("points", 0) > 0, cell.metadata["nbgrader"]
            locked = (cell.metadata.get("editable"), cell.metadata.get("deletable"))
            assert locked == (False, False), f"{path.name}: a test cell is not locked"


def _write_notebook(path: Path, minor: int, ids: list[str | None]) -> Path:
    cells = []
    for cell_id in ids:
        cell = {"cell_type": "markdown", "metadata": {}, "source": "text"}
        if cell_id is not None:
            cell["id"] = cell_id
        cells.append(cell)
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": minor}
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("ids", "problem"), [(["a", None], "cell 1 has no id"), (["a", "a"], "repeats the id 'a'")]
)
def test_release_refuses_notebooks_that_would_get_random_ids(tmp_path, ids, problem):
    notebook = _write_notebook(tmp_path / "nb.ipynb", 5, ids)
    with pytest.raises(GradingError, match=problem):
        check_cell_ids(notebook)
    check_cell_ids(_write_notebook(tmp_path / "old.ipynb", 4, [None, None]))  # no ids before 4.5


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_test_assert_says_what_it_checks(assignment: str):
    """Every ``assert`` of the source's test cells, hidden ones included, has a message: the
    student reads it in ``make validate`` and in the feedback, never a hidden test's code."""
    for path in COURSE.source_notebooks(assignment):
        cells = nbformat.read(path, as_version=4).cells
        for cell in cells:
            info = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or not info.get("grade") or info.get("solution"):
                continue
            asserts = [
                node for node in ast.walk(ast.parse(cell.source)) if isinstance(node, ast.Assert)
            ]
            silent = [node.lineno for node in asserts if node.msg is None]
            assert not silent, (
                f"{path.relative_to(REPO)}, test cell {info['grade_id']}: the assert on line(s) "
                f"{silent} has no message; add one saying what it checks and what the answer gave"
            )
