"""Command line: ``python -m grading {release,due,grade,report}`` (``make exercises``, ``make
due``, ``make grade``): ``release`` regenerates ``exercises/`` and times changed solutions;
``due`` sets an assignment's due date in the gradebook; ``grade`` grades
``submitted/`` (here or ``--slurm``), prints the table, writes ``grades.csv`` and ``feedback/``;
``report`` prints and writes them from the gradebook.

Exit status: 0 when every hand-in got a recorded score (a 0 for a dead kernel, a limit or a
broken notebook included: the reasons are in the table); 1 if the grader itself failed; 2 for
bad input; 128 + its number for a signal that stopped the grader.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from sqlalchemy.exc import SAWarning

from . import slurm
from .autograde import autograde
from .course import LOG, REPO, Course, GradingError, Limits
from .release import release, release_all, set_due_date, slowest_cell, stale_releases, time_solution
from .report import collect_grades, format_table, hand_back, write_csv

#: The options of ``grade`` that change a limit of ``nbgrader_config.py``, and which.
LIMIT_OPTIONS = {
    "--cell-timeout": "cell_timeout",
    "--notebook-timeout": "notebook_timeout",
    "--memory": "memory_mb",
    "--cpu-time": "cpu_seconds",
}


def documented(config_file: Path) -> dict[str, str]:
    """``"Section.trait"`` -> the comment above the line that sets it in ``config_file``."""
    docs, comment = {}, []
    for line in map(str.strip, config_file.read_text(encoding="utf-8").splitlines()):
        if line.startswith("#"):
            comment.append(line.lstrip("#").strip())
            continue
        if line.startswith("c.") and "=" in line:
            docs[line[2:].split("=")[0].strip()] = " ".join(comment)
        comment = []
    return docs


def _parser(course: Course) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grading",
        description="Release, autograde and report the course's nbgrader assignments.",
    )
    parser.add_argument("--root", type=Path, default=REPO, help="the folder of nbgrader_config.py")
    parser.add_argument("-v", "--verbose", action="store_true", help="show nbgrader's log")
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    rel = steps.add_parser("release", help="regenerate exercises/ and time the solutions")
    rel.add_argument("assignments", nargs="*", help="default: every one in solutions/")
    due = steps.add_parser("due", help="set an assignment's due date in the gradebook")
    due.add_argument("assignment", help="an assignment of solutions/")
    due.add_argument("when", help='the due date and time, e.g. "2025-01-31 23:59 Europe/Berlin"')
    grade = steps.add_parser("grade", help="autograde submitted/, print the scores, write CSV")
    report = steps.add_parser("report", help="print the gradebook's scores, write the CSV")
    for step in (grade, report):
        step.add_argument("--csv", type=Path, help="where to write the scores (<root>/grades.csv)")
    jobs = "hand-ins graded at once (default: the number of cores); each kernel gets the cores "
    jobs += "divided by JOBS as torch (OpenMP) threads, or $OMP_NUM_THREADS where set"
    grade.add_argument("-j", "--jobs", type=int, help=jobs)
    docs = documented(course.config_file) if course.config_file.is_file() else {}
    section = course.config().Limits if course.config_file.is_file() else {}
    for option, name in LIMIT_OPTIONS.items():
        text = docs.get(f"Limits.{name}", "").replace("%", "%%")
        default = f"(nbgrader_config.py: {section.get(name)})"
        grade.add_argument(option, dest=name, type=float, help=f"{text} {default}")
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    grade.add_argument("--slurm", action="store_true", help="grade as a Slurm job array (c.Slurm)")
    no_wait = "with --slurm: return once submitted; a Slurm job records the scores at the end"
    grade.add_argument("--no-wait", action="store_true", help=no_wait)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (pytest swaps it per test)."""

    stream = property(lambda self: sys.stderr, lambda self, stream: None)


def quiet_nbgrader(verbose: bool = False) -> None:
    """The grader's messages on stderr; nbgrader's log and SQLAlchemy's warnings only with
    ``verbose`` (its errors are quoted in the GradingError raised after them)."""
    grading_log = logging.getLogger("grading")
    if not any(isinstance(handler, _StderrHandler) for handler in grading_log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("[%(name)s] %(levelname)s: %(message)s"))
        grading_log.addHandler(handler)
    grading_log.setLevel(logging.INFO)
    LOG.setLevel(logging.INFO if verbose else logging.ERROR)
    LOG.propagate = verbose
    if not verbose:
        warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")


def _release(course: Course, assignments: list[str]) -> None:
    written = {a: release(course, a) for a in assignments} if assignments else release_all(course)
    for name, paths in written.items():
        print("".join(f"wrote {path.relative_to(course.root)}\n" for path in paths), end="")
        if slowest_cell(course, name) is None:
            print(f"timing the solution of {name} (its source changed)...", flush=True)
            path = time_solution(course, name).relative_to(course.root)
            print(f"wrote {path}: slowest cell {slowest_cell(course, name):g} s")
    for stale in stale_releases(course):
        print(f"warning: {stale} has no source in {course.source_dir}; remove it?")


def main(argv: list[str] | None = None) -> int:
    root = argparse.ArgumentParser(add_help=False)
    root.add_argument("--root", type=Path, default=REPO)
    course = Course(root.parse_known_args(argv)[0].root)
    args = _parser(course).parse_args(argv)
    quiet_nbgrader(args.verbose)
    try:
        if args.step == "release":
            _release(course, args.assignments)
            return 0
        if args.step == "due":
            when = set_due_date(course, args.assignment, args.when)
            print(f"{args.assignment} is due {when:%Y-%m-%d %H:%M} UTC ({course.gradebook})")
            return 0
        csv = (args.csv or course.root / "grades.csv").resolve()
        if args.step == "report":
            write_csv(collect_grades(course), csv)
            print(f"{format_table(collect_grades(course))}\n\nwrote {csv}")
            return 0
        if args.jobs is not None and args.jobs < 1:
            raise GradingError(f"--jobs must be at least 1, not {args.jobs}.")
        limits = Limits.of(course, **{name: vars(args)[name] for name in LIMIT_OPTIONS.values()})
        print(f"limits per hand-in: {limits.describe()}", file=sys.stderr)
        if args.slurm:
            run = slurm.grade_on_slurm(course, limits, csv, not args.no_wait,
                                       not args.no_progress, args.verbose)  # fmt: skip
            if run.result is None:
                print(f"submitted; the scores will be in {run.csv} once job {run.collect_id} ends")
                return 0
            result = run.result
        else:
            result = autograde(course, args.jobs, limits, not args.no_progress, args.verbose)
            hand_back(course, result, csv)
        print(f"{format_table(collect_grades(course))}\n\nwrote {csv}")
        for failure in result.failures:
            print(f"\nerror: {failure}", file=sys.stderr)
        return 0 if result.ok else 1
    except GradingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
