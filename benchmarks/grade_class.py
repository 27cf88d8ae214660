"""Grade a class of N copies of an exercise's solution, and time it.

Builds a course in a temporary folder (this repository's ``nbgrader_config.py`` and
``solutions/``), releases the exercise, hands in its solution for ``--students`` students, and
runs ``python -m grading grade --jobs J`` for each J of ``--jobs``, from a fresh gradebook each
time. Prints the wall time, the peak memory of the whole grading process tree (sampled every
0.2 s: the proportional set size summed over the parent, the workers and the kernels, so
that pages they share count once) and checks that ``grades.csv``
holds a full autograded score for every student. ``--against`` names another checkout of the
course (e.g. main's, ``git worktree add ../main main``): the same class is graded by its
``grading`` and by this one's in turn, ``--repeat`` times, and the medians compared. Usage::

    .venv/bin/python benchmarks/grade_class.py --students 30 --jobs 1 2
    .venv/bin/python benchmarks/grade_class.py --students 6 --jobs 2 --against ../main --repeat 3
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbgrader.preprocessors import ClearSolutions
from nbgrader.utils import is_solution

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grading.course import Course  # noqa: E402 -- the repository's own package
from grading.release import release  # noqa: E402


def solved(course: Course, assignment: str) -> dict[str, nbformat.NotebookNode]:
    """The released notebooks of ``assignment`` with the source's solutions filled in."""
    stubs = ClearSolutions(config=course.config())
    marks = (stubs.begin_solution_delimeter, stubs.end_solution_delimeter)
    notebooks = {}
    for path in course.source_notebooks(assignment):
        source = nbformat.read(path, as_version=4)
        answers = {c.metadata.nbgrader.grade_id: c.source for c in source.cells if is_solution(c)}
        nb = nbformat.read(course.release_dir / assignment / path.name, as_version=4)
        for cell in nb.cells:
            if is_solution(cell):
                lines = answers[cell.metadata.nbgrader.grade_id].split("\n")
                cell.source = "\n".join(x for x in lines if not any(m in x for m in marks))
        notebooks[path.name] = nb
    return notebooks


def make_class(root: Path, assignment: str, students: int) -> Course:
    """A course in ``root`` whose ``students`` have all handed in ``assignment``, solved."""
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "solutions", root / "solutions")
    course = Course(root)
    release(course, assignment)
    notebooks = solved(course, assignment)
    for number in range(students):
        folder = course.submitted_dir / f"student{number:02d}" / assignment
        folder.mkdir(parents=True)
        for name, nb in notebooks.items():
            nbformat.write(nb, folder / name)
    return course


def report(label: str, root: Path, students: int, seconds: float, status: int, extra: str) -> bool:
    """Print one grading run's time and grades.csv's full scores; whether all ``students`` had
    every point and the run exited 0."""
    with open(root / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    full = sum(float(r["auto_score"]) == float(r["auto_max_score"]) > 0 for r in rows)
    print(
        f"{label}: {students} hand-ins in {seconds:.0f} s ({seconds / students:.1f} s each), "
        f"{extra}{full}/{len(rows)} full scores, exit status {status}"
    )
    return status == 0 and full == len(rows) == students


def _tree_pss(root: int) -> int:
    """Proportional memory (bytes) of ``root`` and all its descendants: each page shared by
    processes (the kernels and workers forked from the fork server share most) is counted
    once in all, not once per process as resident memory would."""
    try:
        tree = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in tree:
        try:
            total += process.memory_full_info().pss
        except psutil.Error:
            continue
    return total


def fresh(root: Path) -> None:
    """Remove what an earlier grading run of the class at ``root`` left."""
    for stale in ("gradebook.db", "autograded", "feedback", "grades.csv"):
        path = root / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def grade(root: Path, jobs: int, code: Path = REPO) -> tuple[float, int, int]:
    """Grade the class at ``root`` with ``jobs`` at once, by the ``grading`` (and ``lib``) of
    the checkout ``code``: (seconds, peak bytes, exit status)."""
    fresh(root)
    command = [sys.executable, "-m", "grading", "--root", str(root), "grade", "--jobs", str(jobs)]
    env = {**os.environ, "PYTHONPATH": str(code)}  # the workers and kernels import it too
    start = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=code, env=env
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_pss(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    done.set()
    sampler.join()
    seconds = time.monotonic() - start
    if process.returncode != 0:
        print(err.decode(errors="replace")[-3000:], file=sys.stderr)
    return seconds, peak, process.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--assignment", default="01_linear_classifiers")
    parser.add_argument("--against", type=Path, help="another checkout, graded in turn with this")
    parser.add_argument("--repeat", type=int, default=1, help="runs per checkout and JOBS")
    args = parser.parse_args()
    checkouts = {"this": REPO, **({"against": args.against.resolve()} if args.against else {})}
    with tempfile.TemporaryDirectory(prefix="grade-class-") as tmp:
        root = Path(tmp)
        make_class(root, args.assignment, args.students)
        ok = True
        for jobs in args.jobs:
            times: dict[str, list[float]] = {name: [] for name in checkouts}
            for name, code in [item for _ in range(args.repeat) for item in checkouts.items()]:
                seconds, peak, status = grade(root, jobs, code)
                times[name].append(seconds)
                memory = f"peak memory (PSS) {peak / 2**30:.2f} GiB, "
                label = f"JOBS={jobs}" + (f" {name} ({code})" if args.against else "")
                ok &= report(label, root, args.students, seconds, status, memory)
            if args.against:
                this, other = (statistics.median(times[name]) for name in checkouts)
                print(f"JOBS={jobs}: median {this:.1f} s against {other:.1f} s: "
                      f"{100 * (this / other - 1):+.1f}%")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
