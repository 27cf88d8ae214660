"""A student's check before handing in: run an exercise the way the grader runs it.

``python -m grading.validate exercises/<assignment>/<notebook>.ipynb`` (``make validate
NB=...``) runs the notebook from the top in the course's kernel with nbgrader's own validator,
the one behind the *Validate* button in JupyterLab, and says in plain words which task still
fails (with its test's message: what it checked and what the answer gave), or that it passes.
It cannot run the hidden tests: students do not have them.

Like the grader (which overwrites each hand-in's kernel with the source's), it always runs the
notebook in the ``python3`` kernel, and it makes sure that kernel is this environment's (see
:func:`course_kernel`), whatever other kernels the machine has.

Exit status: 0 if every visible test passes and every answer is given, 1 if not, 2 for bad
input (no such file, not a notebook, not an exercise).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import NoSuchKernel
from nbclient.exceptions import DeadKernelError
from nbconvert.filters import strip_ansi
from nbformat import NotebookNode
from nbgrader.nbgraderformat import SchemaTooNewError, SchemaTooOldError
from nbgrader.utils import is_grade, is_solution
from nbgrader.validator import Validator

from .course import REPO, Course, GradingError, grade_id

#: The kernel every exercise names and the grader runs hand-ins in.
KERNEL = "python3"
#: How an exercise is named on the command line.
USAGE = "make validate NB=exercises/<assignment>/<notebook>.ipynb"


@contextmanager
def course_kernel() -> Iterator[None]:
    """Make ``python3`` this environment's kernel while the block runs: its spec (from
    ipykernel) first in ``$JUPYTER_PATH``, before any other Python's or user-wide kernel."""
    ours = str(Path(sysconfig.get_path("data")) / "share" / "jupyter")
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (ours, previous) if p)
    try:
        yield
    finally:
        os.environ.pop("JUPYTER_PATH")
        os.environ.update({"JUPYTER_PATH": previous} if previous is not None else {})


def read_exercise(path: Path) -> NotebookNode:
    """Read ``path`` as an nbgrader exercise; a :class:`GradingError` naming it if it is not."""
    if not path.is_file() or path.suffix != ".ipynb":
        what = "is not a notebook (.ipynb file)" if path.exists() else "does not exist"
        raise GradingError(f"{path} {what}. Name the notebook to check, e.g. {USAGE}.")
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, nbformat.reader.NotJSONError) as e:
        raise GradingError(f"{path} is not a readable Jupyter notebook: {e}") from e
    if not any(grade_id(cell) and is_grade(cell) for cell in nb.cells):
        raise GradingError(
            f"{path} has no graded cells, so it is not an exercise: name one "
            f"from exercises/, e.g. {USAGE}."
        )
    return nb


def _tasks(nb: NotebookNode) -> list[str]:
    """Each cell's task: the heading of the nearest markdown heading cell above it."""
    tasks, heading = [], "before the first task"
    for cell in nb.cells:
        first = cell.source.lstrip().split("\n", 1)[0]
        if cell.cell_type == "markdown" and first.startswith("#"):
            heading = f"task {first.lstrip('#').strip()!r}"
        tasks.append(heading)
    return tasks


def _reason(raw_error: str) -> str:
    """A traceback in one line: the exception and, for an ``assert``, its message (what it
    checked and what the answer gave) or else the line that failed."""
    lines = [line.rstrip() for line in strip_ansi(raw_error).splitlines() if line.strip()]
    if not lines:
        return "no output"
    last = lines[-1].rstrip(": ")
    if last.startswith("You did not provide a response"):
        return "the cell still holds the exercise's placeholder"
    if last == "NotImplementedError":
        return "NotImplementedError: `raise NotImplementedError()` is still there"
    if last.startswith("AssertionError: "):
        return last.removeprefix("AssertionError: ")
    failing = [line for line in lines if line.lstrip().startswith("---->")]
    if failing and last.split(":")[0] == "AssertionError":
        code = re.sub(r"^\s*---->\s*\d+\s*", "", failing[-1])
        return f"{last} at `{code.strip()}`"
    return last


def _cell_for(source: str, nb: NotebookNode, taken: set[str]) -> NotebookNode | None:
    """The notebook's graded or locked cell whose source is ``source`` (nbgrader reports
    cells by their source)."""
    free = (c for c in nb.cells if grade_id(c) and grade_id(c) not in taken)
    return next((cell for cell in free if cell.source.strip() == source), None)


class _KeepingValidator(Validator):
    """nbgrader's validator, keeping the notebook it ran (to find where the run first raised)."""

    executed: NotebookNode | None = None

    def _preprocess(self, nb: NotebookNode) -> NotebookNode:
        self.executed = super()._preprocess(nb)
        return self.executed


def _first_error(executed: NotebookNode | None, tasks: list[str], listed: set[str]) -> str | None:
    """Where and why the run first raised, in words; ``None`` if no cell raised, or if that cell
    is one of the checks ``listed`` already."""
    same = executed is not None and len(executed.cells) == len(tasks)  # the cells, in order
    for index, cell in enumerate(executed.cells if same else []):
        errors = [out for out in cell.get("outputs", []) if out.output_type == "error"]
        if errors and grade_id(cell) in listed:
            return None
        if errors:
            name = f"cell `{grade_id(cell)}`" if grade_id(cell) else "a cell of your own"
            where = f"{tasks[index]}, {name} (cell {index + 1} of {len(tasks)})"
            return f"{where}: {_reason(chr(10).join(errors[0].traceback))}"
    return None


def validate(path: Path) -> tuple[list[str], str | None]:
    """Run the notebook at ``path`` top to bottom like the grader, with nbgrader's validator:
    every cell runs even after an error; a test fails if it raises, an answer while it holds the
    placeholder, a read-only cell if it was edited. What stops it from passing, in words (none:
    it passes), and where the run first raised if that cell is not among them (often the cause
    of the failing tests below it); bad input: a :class:`GradingError` naming it."""
    path = Path(path)
    nb = read_exercise(path)
    # The course's settings (e.g. the cell timeout), in the kernel the grader runs every hand-in
    # in: the source's (nbgrader's OverwriteKernelspec).
    cfg = Course(REPO).config(**{"Execute.kernel_name": KERNEL})
    validator = _KeepingValidator(config=cfg)
    try:
        with course_kernel():
            results = validator.validate(str(path.resolve()))
    except (SchemaTooOldError, SchemaTooNewError) as error:
        raise GradingError(f"{path}: its nbgrader metadata cannot be read: {error}") from error
    except NoSuchKernel as error:
        raise GradingError(
            f"no {KERNEL!r} kernel in this environment ({sys.prefix}): run `make setup`."
        ) from error
    except DeadKernelError as error:
        # Out of memory, a crash in native code, exit(): the grader scores such a run 0.
        return [f"the kernel stopped while running the notebook: {error}"], None
    headings = _tasks(nb)
    tasks = {grade_id(cell): task for cell, task in zip(nb.cells, headings, strict=True)}
    taken: set[str] = set()
    problems = []
    for key in ("type_changed", "changed", "failed"):
        for item in results.get(key, []):
            cell = _cell_for(item["source"], nb, taken)
            cell_id = (cell is not None and grade_id(cell)) or "?"
            taken.add(cell_id)
            if key == "type_changed":
                what = f"changed from a {item['new_type']} cell to a {item['old_type']} cell in "
                what += f"the read-only cell `{cell_id}`"
            elif key == "changed":
                what = f"you changed the read-only cell `{cell_id}`"
            elif cell is not None and is_solution(cell):
                what = f"answer `{cell_id}` is not given yet ({_reason(item['raw_error'])})"
            else:
                what = f"test `{cell_id}` fails: {_reason(item['raw_error'])}"
            problems.append(f"{tasks.get(cell_id, 'unknown task')}: {what}")
    return problems, _first_error(validator.executed, headings, taken) if problems else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grading.validate",
        description="Check an exercise notebook the way the grader runs it (visible tests only).",
    )
    parser.add_argument("notebook", type=Path, help="e.g. exercises/<assignment>/<nb>.ipynb")
    path = parser.parse_args(argv).notebook
    try:
        nb = read_exercise(path)
        print(f"validating {path}: running every cell in a fresh {KERNEL} kernel...", flush=True)
        problems, first_error = validate(path)
    except GradingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not problems:
        tests = sum(is_grade(cell) and not is_solution(cell) for cell in nb.cells)
        print(
            f"PASSED: {path} runs from top to bottom, its {tests} visible test(s) pass and "
            "every answer is given.\nThe grader also runs hidden tests, and a person reads "
            "the written answers."
        )
        return 0
    print(
        f"NOT READY: {path} still fails {len(problems)} check(s) (a test also fails when a "
        "cell above it fails; the grader puts read-only cells back as released, so undo any "
        "change to them):"
    )
    print("".join(f"  - {problem}\n" for problem in problems), end="")
    if first_error:
        print(f"The run's first error (often the cause of the failing checks): {first_error}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
