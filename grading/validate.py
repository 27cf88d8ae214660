"""A student's check before handing in: run an exercise the way the grader runs it.

``python -m grading.validate exercises/<assignment>/<notebook>.ipynb`` (``make validate
NB=...``) runs the notebook from the top in the course's kernel with nbgrader's own validator,
the one behind the *Validate* button in JupyterLab, and says in plain words which task still
fails, or that it passes. It cannot run the hidden tests: students do not have them.

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
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import NoSuchKernel
from nbclient.exceptions import DeadKernelError
from nbconvert.filters import strip_ansi
from nbformat import NotebookNode
from nbgrader.nbgraderformat import SchemaTooNewError, SchemaTooOldError
from nbgrader.utils import is_grade, is_solution
from nbgrader.validator import Validator

from .course import Course, GradingError, grade_id

#: The repository root: its ``nbgrader_config.py`` configures the run (e.g. the cell timeout).
REPO = Path(__file__).resolve().parent.parent
#: The kernel every exercise names and the grader runs hand-ins in.
KERNEL = "python3"
#: Printed lines are wrapped to fit a terminal.
WIDTH = 96
#: How an exercise is named on the command line.
USAGE = "make validate NB=exercises/<assignment>/<notebook>.ipynb"


@dataclass(frozen=True)
class Problem:
    """One cell that stops the notebook from passing, and why."""

    task: str  # the heading of the task the cell belongs to
    cell: str  # the cell's nbgrader grade_id
    kind: str  # "test", "answer", "locked" or "kernel"
    reason: str

    def describe(self) -> str:
        return {
            "kernel": f"the kernel stopped while running the notebook: {self.reason}",
            "answer": f"{self.task}: answer `{self.cell}` is not given yet ({self.reason})",
            "locked": f"{self.task}: {self.reason} in the read-only cell `{self.cell}`",
        }.get(self.kind, f"{self.task}: test `{self.cell}` fails: {self.reason}")


@dataclass
class Validation:
    """What :func:`validate` found in one notebook."""

    notebook: Path
    tests: int  # autograded test cells the notebook holds
    problems: list[Problem] = field(default_factory=list)
    #: where the run first raised, in any cell: often the cause of the failing tests below it
    first_error: str | None = None
    #: the kernel the notebook asks for, where it is not the course's
    other_kernel: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


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


def _exercises() -> str:
    found = sorted(REPO.glob("exercises/*/*.ipynb"))
    return ", ".join(str(path.relative_to(REPO)) for path in found) or "none found"


def read_exercise(path: Path) -> NotebookNode:
    """Read ``path`` as an nbgrader exercise; a :class:`GradingError` naming it if it is not."""
    if not path.exists():
        raise GradingError(
            f"{path} does not exist. Name the notebook to check, e.g. {USAGE} "
            f"(exercises: {_exercises()})."
        )
    if not path.is_file() or path.suffix != ".ipynb":
        raise GradingError(
            f"{path} is not a notebook (.ipynb file). Name the notebook to check, e.g. {USAGE}."
        )
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, nbformat.reader.NotJSONError) as e:
        raise GradingError(f"{path} is not a readable Jupyter notebook: {e}") from e
    if not any(grade_id(cell) and is_grade(cell) for cell in nb.cells):
        raise GradingError(
            f"{path} has no graded cells, so it is not an exercise: validate a notebook from "
            f"exercises/ (exercises: {_exercises()})."
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
    """A traceback in one line: the exception and, for an ``assert``, the line that failed."""
    lines = [line.rstrip() for line in strip_ansi(raw_error).splitlines() if line.strip()]
    if not lines:
        return "no output"
    last = lines[-1].rstrip(": ")
    if last.startswith("You did not provide a response"):
        return "the cell still holds the exercise's placeholder"
    if last == "NotImplementedError":
        return "NotImplementedError: `raise NotImplementedError()` is still there"
    failing = [line for line in lines if line.lstrip().startswith("---->")]
    if failing and last.split(":")[0] == "AssertionError":
        code = re.sub(r"^\s*---->\s*\d+\s*", "", failing[-1])
        return f"{last} at `{code.strip()}`"
    return last


def _count_tests(nb: NotebookNode) -> int:
    return sum(is_grade(cell) and not is_solution(cell) for cell in nb.cells)


def _cell_for(source: str, nb: NotebookNode, taken: set[str]) -> NotebookNode | None:
    """The notebook's graded or locked cell whose source is ``source`` (nbgrader reports
    cells by their source)."""
    free = (c for c in nb.cells if grade_id(c) and grade_id(c) not in taken)
    return next((cell for cell in free if cell.source.strip() == source), None)


class _KeepingValidator(Validator):
    """nbgrader's validator, keeping the notebook it ran to find the first error in it."""

    executed: NotebookNode | None = None

    def _preprocess(self, nb: NotebookNode) -> NotebookNode:
        self.executed = super()._preprocess(nb)
        return self.executed


def _first_error(executed: NotebookNode | None, tasks: list[str], listed: set[str]) -> str | None:
    """The first cell of the run that raised, in words, unless it is in ``listed`` already;
    None if no cell raised."""
    if executed is None or len(executed.cells) != len(tasks):
        return None
    for index, cell in enumerate(executed.cells):
        errors = [out for out in cell.get("outputs", []) if out.output_type == "error"]
        if errors and grade_id(cell) in listed:
            return None
        if errors:
            name = f"cell `{grade_id(cell)}`" if grade_id(cell) else "a cell"
            where = f"{tasks[index]}, {name} (cell {index + 1} of {len(tasks)})"
            return f"{where}: {_reason(chr(10).join(errors[0].traceback))}"
    return None


def validate(path: Path) -> Validation:
    """Run the notebook at ``path`` top to bottom like the grader, with nbgrader's validator:
    every cell runs even after an error; a test fails if it raises, an answer while it holds the
    placeholder, a read-only cell if it was edited. Bad input: a :class:`GradingError` naming it."""
    path = Path(path)
    nb = read_exercise(path)
    cfg = Course(REPO).config()
    # The grader runs every hand-in in the source's kernel (nbgrader's OverwriteKernelspec).
    cfg.Execute.kernel_name = KERNEL
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
        stopped = Problem(task="the whole notebook", cell="-", kind="kernel", reason=str(error))
        return Validation(notebook=path, tests=_count_tests(nb), problems=[stopped])
    headings = _tasks(nb)
    tasks = {grade_id(cell): task for cell, task in zip(nb.cells, headings, strict=True)}
    taken: set[str] = set()
    problems = []
    for kind, key in (("locked", "type_changed"), ("locked", "changed"), ("test", "failed")):
        for item in results.get(key, []):
            cell = _cell_for(item["source"], nb, taken)
            cell_id = (cell is not None and grade_id(cell)) or "?"
            taken.add(cell_id)
            if key == "type_changed":
                reason = f"changed from a {item['new_type']} cell to a {item['old_type']} cell"
            elif key == "changed":
                reason = "you changed the code or text"
            else:
                reason = _reason(item["raw_error"])
                if cell is not None and is_solution(cell):
                    kind = "answer"
            task = tasks.get(cell_id, "unknown task")
            problems.append(Problem(task=task, cell=cell_id, kind=kind, reason=reason))
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    return Validation(
        notebook=path,
        tests=_count_tests(nb),
        problems=problems,
        first_error=_first_error(validator.executed, headings, {p.cell for p in problems}),
        other_kernel=kernel if kernel != KERNEL else None,
    )


def report(result: Validation) -> str:
    """The result in plain words, as printed by the command line."""
    lines = []
    if result.other_kernel:
        lines.append(
            f"note: the notebook asks for the kernel {result.other_kernel!r}; the grader runs "
            f"it in {KERNEL!r}, so this check did too."
        )
    if result.ok:
        lines += [
            f"PASSED: {result.notebook} runs from top to bottom, its {result.tests} visible "
            "test(s) pass and every answer is given.",
            "The grader also runs hidden tests, and a person reads the written answers.",
        ]
    elif any(problem.kind == "locked" for problem in result.problems):
        lines.append(
            f"NOT READY: {result.notebook} has changes in read-only cells. The grader puts "
            "the original cells back, so these changes will not count; undo them (copy the "
            "cell from a fresh copy of the exercise) and validate again:"
        )
    else:
        lines.append(f"NOT READY: {result.notebook} still fails {len(result.problems)} check(s):")
    lines += [f"  - {problem.describe()}" for problem in result.problems]
    if result.first_error and not result.ok:
        lines.append(
            "Tests also fail when a cell above them fails; the run's first error is in "
            f"{result.first_error}"
        )
    return "\n".join(_wrap(line) for line in lines)


def _wrap(line: str) -> str:
    indent = "    " if line.startswith("  - ") else "  "
    return textwrap.fill(line, width=WIDTH, subsequent_indent=indent, break_on_hyphens=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grading.validate",
        description="Check an exercise notebook the way the grader runs it (visible tests only).",
    )
    parser.add_argument("notebook", type=Path, help="e.g. exercises/<assignment>/<nb>.ipynb")
    args = parser.parse_args(argv)
    try:
        read_exercise(args.notebook)
        print(f"validating {args.notebook}: running every cell in a fresh {KERNEL} kernel...")
        sys.stdout.flush()
        result = validate(args.notebook)
    except GradingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report(result))
    return int(not result.ok)


if __name__ == "__main__":
    sys.exit(main())
