"""Step 1: the student version of an assignment (``nbgrader generate_assignment``), and the
timing of its solution, from which the grader's per-cell limit follows.

:func:`release` writes the student files with a throwaway gradebook, so that regenerating
``exercises/`` never touches ``gradebook.db``; :func:`register` fills the course's gradebook,
as autograding needs, and throws the student files away.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from nbgrader.api import Gradebook
from nbgrader.utils import parse_utc

from .course import Course, GradingError, ready_for_new_gradebooks, write_json
from .sandbox import die_with_parent

#: File beside an assignment's source notebooks with the timing of its solution (written by
#: :func:`time_solution`; ``CourseDirectory.ignore`` keeps it from students and kernels).
TIMING_FILE = "timing.json"
#: How ``python -m lib course-models`` names the folder it filled (its first line).
COURSE_CACHE_LINE = "course cache:"


def check_cell_ids(notebook: Path) -> None:
    """Raise :class:`GradingError` unless every cell of ``notebook`` (nbformat 4.5 on) has an id
    of its own: nbformat makes up a random one for a missing or repeated id, so the student version
    would change on every release."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) < (4, 5):
        return  # no cell ids before nbformat 4.5, and nbformat does not add them
    seen: set[str] = set()
    for index, cell in enumerate(nb.get("cells", [])):
        cell_id = cell.get("id")
        if not cell_id or cell_id in seen:
            problem = "has no id" if not cell_id else f"repeats the id {cell_id!r}"
            raise GradingError(
                f"{notebook}: cell {index} {problem}, so its student version would get a random "
                "id on every release. Open and save the notebook in Jupyter (or run "
                "nbformat.validator.normalize on it) to give every cell a unique id."
            )
        seen.add(cell_id)


def release(course: Course, assignment: str, release_dir: Path | None = None) -> list[Path]:
    """Write the student version of ``assignment`` to ``release_dir/<assignment>/`` (default:
    ``exercises/``), replaced as a whole once nbgrader has succeeded; the files written."""
    release_dir = Path(release_dir) if release_dir is not None else course.release_dir
    for notebook in course.source_notebooks(assignment):
        check_cell_ids(notebook)
    with tempfile.TemporaryDirectory(prefix="grading-release-") as tmp:
        what = f"generating the student version of {assignment!r}"
        where = {"CourseDirectory.release_directory": tmp}
        where["CourseDirectory.db_url"] = f"sqlite:///{tmp}/gb"  # a throwaway gradebook
        course.nbgrader("generate_assignment", what, assignment, **where)
        dest = release_dir / assignment
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(Path(tmp) / assignment, dest)
    return sorted(path for path in dest.rglob("*") if path.is_file())


def release_all(course: Course, release_dir: Path | None = None) -> dict[str, list[Path]]:
    """:func:`release` every assignment of the source folder; a clear error if there is none."""
    assignments = course.source_assignments()
    if not assignments:
        raise GradingError(
            f"no assignments found in {course.source_dir}: expected "
            f"{course.source_dir}/<assignment>/<notebook>.ipynb."
        )
    return {name: release(course, name, release_dir) for name in assignments}


def stale_releases(course: Course) -> list[Path]:
    """Folders of the release folder whose assignment has no source (left over, or misnamed)."""
    sources = set(course.source_assignments())
    found = course.release_dir.iterdir() if course.release_dir.is_dir() else []
    return sorted(path for path in found if path.is_dir() and path.name not in sources)


def register(course: Course, assignment: str) -> None:
    """Record ``assignment``'s current source in the course's gradebook, as autograding needs;
    nbgrader refuses if cells were added or removed since hand-ins were graded."""
    course.source_notebooks(assignment)  # a clear error if the assignment has no source
    with tempfile.TemporaryDirectory(prefix="grading-register-") as tmp:
        try:
            what = f"generating the student version of {assignment!r}"
            where = {"CourseDirectory.release_directory": tmp}
            course.nbgrader("generate_assignment", what, assignment, **where)
        except GradingError as error:
            if "because there are submissions" not in str(error):
                raise
            raise GradingError(
                f"{error}\nThe gradebook ({course.gradebook}) already holds graded hand-ins of "
                f"{assignment!r}, and its source has gained or lost cells since. To grade "
                "everything again from scratch, delete the gradebook (manual grades are lost)."
            ) from error


def set_due_date(course: Course, assignment: str, due: str) -> datetime:
    """Record ``due`` as ``assignment``'s due date in the course's gradebook, which is created
    where it is missing (``make due``); a hand-in whose ``timestamp.txt`` is later is late
    (``c.LateSubmissionPlugin`` in nbgrader_config.py). Returns the date in UTC, as stored."""
    course.source_notebooks(assignment)  # a clear error if the assignment has no source
    try:
        when = parse_utc(due)
    except (ValueError, OverflowError) as error:
        raise GradingError(
            f"the due date {due!r} is not a date and time ({error}); write it as "
            '"2025-01-31 23:59 Europe/Berlin" (a time zone name or an offset such as +01:00).'
        ) from error
    ready_for_new_gradebooks()
    with Gradebook(course.coursedir().db_url, course.config().CourseDirectory.course_id) as gb:
        gb.update_or_create_assignment(assignment, duedate=when)
    return when


# --- Course models and the solution's timing ---------------------------------------------------


def prepare_course_models(course: Course, notebooks: list[Path]) -> Path | None:
    """Train or load, once, the course models that ``notebooks`` use (``python -m lib
    course-models --for``, into the course cache the book and tests fill too): their folder, or
    ``None`` where they use none."""
    if not notebooks:
        return None
    command = [sys.executable, "-m", "lib", "course-models", "--for", *map(str, notebooks)]
    # It ends with the grader, however the grader ends (it may train for minutes).
    ends = lambda: die_with_parent(signal.SIGTERM)  # noqa: E731
    done = subprocess.run(command, cwd=course.root, capture_output=True, text=True, preexec_fn=ends)
    lines = done.stdout.splitlines()
    folder = next((line.removeprefix(COURSE_CACHE_LINE).strip() for line in lines
                   if line.startswith(COURSE_CACHE_LINE)), None)  # fmt: skip
    if done.returncode != 0 or folder is None:
        raise GradingError(
            f"could not prepare the course models (`python -m lib course-models` exited with "
            f"{done.returncode}):\n{(done.stderr or done.stdout).strip()[-2000:]}"
        )
    return Path(folder) if any(": ready in " in line for line in lines) else None


def _source_digest(course: Course, assignment: str) -> str:
    digest = hashlib.sha256()
    for path in course.source_notebooks(assignment):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def slowest_cell(course: Course, assignment: str) -> float | None:
    """Seconds the slowest cell of ``assignment``'s solution took when it was last timed;
    ``None`` if it never was, or if its source has changed since."""
    path = course.source_dir / assignment / TIMING_FILE
    timing = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    current = timing.get("source") == _source_digest(course, assignment)
    return timing["slowest_seconds"] if current else None


def _cpu_seconds(path: Path, folder: str, env: dict[str, str], timeout: float) -> list[float]:
    """The CPU seconds of each cell of the notebook at ``path``, run in ``folder``."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": folder}})  # fmt: skip
    used = [0.0] * len(nb.cells)

    def clock(cell_index: int, **_: object) -> None:  # before and after each cell
        times = psutil.Process(client.km.provisioner.pid).cpu_times()
        used[cell_index] = times.user + times.system - used[cell_index]

    client.on_cell_execute = client.on_cell_executed = clock
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError) as error:
        last = str(error).strip().splitlines()[-1]
        raise GradingError(f"the solution {path} fails, so it is not timed: {last}") from error
    return used


def time_solution(course: Course, assignment: str) -> Path:
    """Run ``assignment``'s solution once, top to bottom in a fresh kernel with a fresh model
    cache (as a hand-in runs), and write the CPU time of its slowest cell, on one thread, to
    ``solutions/<assignment>/timing.json``: unlike wall-clock time, it does not grow when other
    jobs share the machine. A failing solution is an error."""
    from .validate import course_kernel  # this environment's python3 kernel

    source, slowest, where = course.source_dir / assignment, 0.0, ""
    models = prepare_course_models(course, course.source_notebooks(assignment))
    with tempfile.TemporaryDirectory(prefix="grading-timing-") as tmp, course_kernel():
        (Path(tmp) / "work").mkdir()
        course.copy_files(source, Path(tmp) / "work")
        env = {**os.environ, "XNN_CACHE_DIR": f"{tmp}/cache", "TQDM_DISABLE": "1"}
        env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        env |= {"XNN_COURSE_CACHE_DIR": str(models)} if models else {}
        for path in course.source_notebooks(assignment):
            timeout = course.config().Execute.timeout
            for index, seconds in enumerate(_cpu_seconds(path, f"{tmp}/work", env, timeout)):
                if seconds > slowest:
                    slowest, where = seconds, f"{path.name}, cell {index + 1}"
    timing = {"source": _source_digest(course, assignment), "slowest_seconds": round(slowest, 2)}
    timing |= {"slowest_cell": where, "unit": "CPU seconds, one thread"}
    return write_json(source / TIMING_FILE, timing)
