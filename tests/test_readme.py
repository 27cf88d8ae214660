"""The README's commands for students and instructors work as written.

Every command that the sections "For students" and "For instructors" give is run by a test, as
written (placeholders filled in): the cheap ones here, in a fresh copy of the course that
shares this environment; the others by the test of their own feature that :data:`RUN_BY`
names. Where that test runs what a ``make`` target runs rather than the target itself (the
cluster's jobs, the learning platform's round trip), ``make -n`` shows here that the target
runs exactly that. A command added to those sections without a test that runs it fails
:func:`test_every_command_of_the_readme_is_run_by_a_test`.
"""

from __future__ import annotations

import ast
import csv
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: The sections whose commands a student or an instructor types.
SECTIONS = ("For students", "For instructors")
#: What a command of the README starts with.
COMMAND = re.compile(r"^(make |\.venv/bin/|python -m )")

#: Each command of those sections, as the README writes it; the test that runs it
#: ("file::function", a test or the fixture that runs it), and for a ``make`` command that
#: test runs through another door, what the target's recipe must run (``make -n``).
RUN_BY: dict[str, tuple[str, str | None]] = {
    "make lab": ("test_lab.py::test_lab", None),
    'make lab LAB_ARGS="--port 8899 --no-browser"': ("test_lab.py::test_lab", None),
    "make validate NB=exercises/<assignment>/<notebook>.ipynb": (
        "test_lab.py::test_validate_untouched_exercise_fails",
        None,
    ),
    "make validate": ("test_lab.py::test_make_validate_without_notebook", None),
    ".venv/bin/jupyter lab": ("test_lab.py::test_lab", None),
    "make book": ("conftest.py::book", None),
    "make setup": ("test_readme.py::test_make_setup_does_nothing_once_installed", None),
    "make exercises": ("test_readme.py::test_make_exercises_keeps_the_committed_exercises", None),
    'make due ASSIGNMENT=<assignment> DUE="2025-01-31 23:59 Europe/Berlin"': (
        "test_readme.py::test_due_date_then_grade_makes_a_late_hand_in_late",
        None,
    ),
    "make grade": ("test_readme.py::test_due_date_then_grade_makes_a_late_hand_in_late", None),
    "python -m grading grade --help": ("test_readme.py::test_grade_help_lists_the_limits", None),
    "make grade-slurm": ("test_slurm.py::on_slurm", "-m grading grade --slurm"),
    ".venv/bin/python -m grading grade --slurm --no-wait": ("test_slurm.py::on_slurm", None),
    "make train-slurm": (
        "test_slurm.py::test_training_job_fills_the_course_cache",
        "sbatch --gres=gpu:1 slurm/train_course_models.sbatch",
    ),
    'make train-slurm SLURM_TRAIN="--partition=gpu --account=<yours> --gres=gpu:1"': (
        "test_slurm.py::test_training_job_fills_the_course_cache",
        "sbatch --partition=gpu --account=<yours> --gres=gpu:1 slurm/train_course_models.sbatch",
    ),
    "make slides": ("test_decks.py::built", "-m slides decks"),
    "make pdf": ("test_handout.py::pdf", "-m slides pdf"),
    "python -m lib course-models": (
        "test_readme.py::test_course_models_come_from_the_course_cache",
        None,
    ),
    "make collect": ("test_lms_roundtrip.py::trip", "-m lms collect"),
    "make export": ("test_lms_roundtrip.py::trip", "-m lms export"),
    "make feedback-zip": ("test_lms_roundtrip.py::trip", "-m lms feedback-zip"),
    "make collect ZIP=<download.zip> ASSIGNMENT=01_linear_classifiers LMS=moodle "
    "GRADEBOOK=<worksheet.csv> TIMEZONE=Europe/Berlin": (
        "test_lms_roundtrip.py::trip",
        '-m lms collect --lms "moodle" --assignment "01_linear_classifiers" --zip '
        '"<download.zip>" --sheet "<worksheet.csv>" --timezone "Europe/Berlin"',
    ),
    "make export LMS=moodle GRADEBOOK=<worksheet.csv>": (
        "test_lms_roundtrip.py::trip",
        '-m lms export --lms "moodle"  --sheet "<worksheet.csv>"',
    ),
    "make feedback-zip LMS=moodle": (
        "test_lms_roundtrip.py::trip",
        '-m lms feedback-zip --lms "moodle"',
    ),
    ".venv/bin/pytest tests/test_answers.py": ("test_answers.py::graded", None),
    "make test": ("the suite itself: .ci/run calls make test", None),
}


def readme_commands() -> list[str]:
    """The commands of the README's student and instructor sections, in order, once each."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found: list[str] = []
    for section in re.split(r"^## ", text, flags=re.MULTILINE):
        if section.startswith(SECTIONS):
            found += [span for span in re.findall(r"`([^`\n]+)`", section) if COMMAND.match(span)]
    return list(dict.fromkeys(found))


def _defined(test: str) -> bool:
    """Whether ``file::name`` names a function (a test or a fixture) of that test file."""
    file, name = test.split("::")
    tree = ast.parse((REPO / "tests" / file).read_text(encoding="utf-8"))
    return any(isinstance(node, ast.FunctionDef) and node.name == name for node in tree.body)


def test_every_command_of_the_readme_is_run_by_a_test() -> None:
    commands = readme_commands()
    assert "make book" in commands and "make grade" in commands, commands
    untested = [command for command in commands if command not in RUN_BY]
    assert not untested, f"the README gives commands no test runs; add them to RUN_BY: {untested}"
    stale = [command for command in RUN_BY if command not in commands]
    assert not stale, f"RUN_BY lists commands the README no longer gives: {stale}"
    tests = [test for test, _ in RUN_BY.values() if "::" in test]
    missing = [test for test in tests if not _defined(test)]
    assert not missing, f"RUN_BY names tests that do not exist: {missing}"


def test_make_targets_run_what_their_tests_run(fresh_course: Path) -> None:
    """``make -n``: each target whose test runs its program directly runs that program."""
    for command, (test, recipe) in RUN_BY.items():
        if recipe is not None:
            shown = make(fresh_course, "-n", *_arguments(command))
            assert shown.returncode == 0, f"{command}: {shown.stderr}"
            assert recipe in shown.stdout, f"`{command}` no longer runs what {test} runs: {shown}"


def _arguments(command: str) -> list[str]:
    """The words after ``make``, as a shell splits them (quotes removed)."""
    return [word.replace('"', "") for word in re.findall(r'(?:[^\s"]|"[^"]*")+', command)][1:]


# --- The cheap commands, run here in a fresh course ------------------------------------------


@pytest.fixture(scope="module")
def fresh_course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the committed course sharing this environment (``.venv``), as a fresh clone
    would be once ``make setup`` has run: its ``pyproject.toml`` no newer than the install."""
    root = tmp_path_factory.mktemp("fresh") / "course"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    (root / ".venv").symlink_to(REPO / ".venv")
    # A second older than the install: make must never install this copy into the shared
    # environment (an editable install would point the environment's `lib` here).
    installed = (REPO / ".venv" / ".installed").stat().st_mtime_ns - 1_000_000_000
    os.utime(root / "pyproject.toml", ns=(installed, installed))
    return root


def make(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *args], cwd=root, capture_output=True, text=True, timeout=900)


def test_make_setup_does_nothing_once_installed(fresh_course: Path) -> None:
    done = make(fresh_course, "setup")
    assert done.returncode == 0, done.stderr
    assert "pip install" not in done.stdout, done.stdout


@pytest.mark.grading
def test_make_exercises_keeps_the_committed_exercises(fresh_course: Path) -> None:
    """Released again from the committed solutions, the exercises are what is committed, and
    no solution is timed again (each one's timing matches its source)."""
    done = make(fresh_course, "exercises")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "timing the solution" not in done.stdout, done.stdout
    for path in sorted((REPO / "exercises").rglob("*.ipynb")):
        copy = fresh_course / path.relative_to(REPO)
        assert copy.read_bytes() == path.read_bytes(), f"make exercises changed {copy}"


def test_grade_help_lists_the_limits(fresh_course: Path) -> None:
    done = subprocess.run(
        [".venv/bin/python", "-m", "grading", "grade", "--help"],
        cwd=fresh_course,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "--cell-timeout" in done.stdout and "--memory" in done.stdout


@pytest.mark.grading
def test_due_date_then_grade_makes_a_late_hand_in_late(fresh_course: Path) -> None:
    """The instructor's steps as the README gives them, in a course without a gradebook: a due
    date (`make due`), one hand-in handed in a day after it, `make grade`."""
    assignment = "04_saliency_maps"
    due = "2025-01-31 23:59 Europe/Berlin"
    done = make(fresh_course, "due", f"ASSIGNMENT={assignment}", f"DUE={due}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{assignment} is due 2025-01-31 22:59 UTC" in done.stdout
    solution = fresh_course / "solutions" / assignment / f"{assignment}.ipynb"
    handed_in = fresh_course / "submitted" / "ada" / assignment
    handed_in.mkdir(parents=True)
    shutil.copy(solution, handed_in)
    (handed_in / "timestamp.txt").write_text("2025-02-01 23:59:00 Europe/Berlin")
    done = make(fresh_course, "grade")
    assert done.returncode == 0, done.stdout + done.stderr
    with open(fresh_course / "grades.csv", encoding="utf-8") as sheet:
        (row,) = csv.DictReader(sheet)
    assert (row["student"], row["assignment"]) == ("ada", assignment)
    assert float(row["auto_score"]) == float(row["auto_max_score"]) > 0, row
    assert "handed in 86400 s after the due date" in row["reason"], row


@pytest.mark.grading  # the grader's first step (grading.release.prepare_course_models)
def test_course_models_come_from_the_course_cache(fresh_course: Path) -> None:
    """``python -m lib course-models`` in a fresh course: every course model is ready, loaded
    from the course cache that ``make test`` filled (the README's instructions say when it
    trains)."""
    from lib import train

    done = subprocess.run(
        [".venv/bin/python", "-m", "lib", "course-models"],
        cwd=fresh_course,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ready = [line.split(":")[0] for line in done.stdout.splitlines() if ": ready in " in line]
    assert ready == ["lib.data.load_mnist", *train.course_models()], done.stdout  # MNIST decoded
    assert "trained for" not in done.stdout and "computed in" not in done.stdout, done.stdout
