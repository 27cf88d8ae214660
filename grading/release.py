"""Step 1: generate the student version of an assignment (``nbgrader generate_assignment``).

nbgrader writes the student version and, as a side effect, records the assignment's cells
(their sources, hidden tests included, and checksums) in a gradebook. The student files do not
depend on that gradebook, so :func:`release` uses a throwaway one: regenerating ``exercises/``
never touches ``gradebook.db``. :func:`register` does the opposite: it fills the course's real
gradebook, which autograding needs, and throws the student files away.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from nbgrader.converters import GenerateAssignment

from .course import LOG, Course, GradingError, run_converter


def check_cell_ids(notebook: Path) -> None:
    """Raise :class:`GradingError` unless ``notebook``'s cells have ids that make its release
    reproducible.

    From nbformat 4.5 on every cell has an ``id``. Where one is missing or repeated, nbformat
    makes up a random one each time the notebook is read, so the student version would come out
    different on every run.
    """
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


def _generate(course: Course, assignment: str, out_dir: Path, db_url: str | None) -> Path:
    """Run ``generate_assignment`` for ``assignment`` into ``out_dir/<assignment>/``.

    ``db_url`` is the gradebook to record the assignment in; ``None`` means the course's own.
    """
    course.source_notebooks(assignment)  # a clear error if the assignment has no source
    overrides: dict[str, object] = {
        "CourseDirectory.release_directory": str(out_dir),
        "CourseDirectory.assignment_id": assignment,
    }
    if db_url is not None:
        overrides["CourseDirectory.db_url"] = db_url
    cfg = course.config(**overrides)
    converter = GenerateAssignment(coursedir=course.coursedir(cfg), config=cfg, log=LOG)
    # Regenerate even if the destination exists; without this nbgrader silently skips it.
    converter.force = True
    # Create the assignment in the gradebook if it is not there yet.
    converter.create_assignment = True
    run_converter(converter, f"generating the student version of {assignment!r}")
    return out_dir / assignment


def release(course: Course, assignment: str, release_dir: Path | None = None) -> list[Path]:
    """Write the student version of ``assignment`` to ``release_dir/<assignment>/``.

    ``release_dir`` defaults to the course's release folder (``exercises/``). The folder for
    the assignment is replaced as a whole, and only once nbgrader has succeeded. The source
    notebooks must have cell ids (:func:`check_cell_ids`). Returns the files written.
    """
    release_dir = Path(release_dir) if release_dir is not None else course.release_dir
    for notebook in course.source_notebooks(assignment):
        check_cell_ids(notebook)
    with tempfile.TemporaryDirectory(prefix="grading-release-") as tmp:
        built = _generate(course, assignment, Path(tmp) / "release", f"sqlite:///{tmp}/gb.db")
        dest = release_dir / assignment
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(built, dest)
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
    if not course.release_dir.is_dir():
        return []
    sources = set(course.source_assignments())
    return sorted(
        path for path in course.release_dir.iterdir() if path.is_dir() and path.name not in sources
    )


def register(course: Course, assignment: str) -> None:
    """Record ``assignment``'s current source in the course's gradebook, as autograding needs.

    The student files nbgrader writes on the way are discarded. nbgrader refuses (and this
    raises) if cells were added to or removed from the source since submissions were graded.
    """
    with tempfile.TemporaryDirectory(prefix="grading-register-") as tmp:
        try:
            _generate(course, assignment, Path(tmp), db_url=None)
        except GradingError as error:
            if "because there are submissions" not in str(error):
                raise
            db_url = course.coursedir().db_url
            raise GradingError(
                f"{error}\nThe gradebook ({db_url}) already holds graded hand-ins of "
                f"{assignment!r}, and its source has gained or lost cells since. To grade "
                "everything again from scratch, delete the gradebook (manual grades are lost)."
            ) from error
