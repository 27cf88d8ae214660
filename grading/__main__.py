"""Command line: ``python -m grading {release,grade,report}``.

- ``release`` regenerates the student versions, ``exercises/``, from ``solutions/``
  (``make exercises``);
- ``grade`` autogrades every hand-in in ``submitted/``, prints the score table and writes
  ``grades.csv`` (``make grade``);
- ``report`` prints the table and writes ``grades.csv`` from the gradebook, without grading.

Exit status: 0 when every hand-in got a recorded score (including 0 for a hand-in whose kernel
died, that hit a limit or whose notebook is broken: the reasons are in the table and the CSV);
1 if the grader itself failed (a score may be missing or untrustworthy); 2 for bad input.
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
from .course import LOG, Course, GradingError
from .feedback import write_feedback
from .release import release, release_all, stale_releases
from .report import collect_grades, format_table, write_csv
from .sandbox import Limits

#: The repository root, the default course root.
REPO = Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grading",
        description="Release, autograde and report the course's nbgrader assignments.",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO,
        help="course root, the folder holding nbgrader_config.py (default: %(default)s)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show nbgrader's own log messages"
    )
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    rel = steps.add_parser("release", help="regenerate exercises/ from solutions/")
    rel.add_argument(
        "assignments", nargs="*", help="assignments to release (default: every one in solutions/)"
    )
    for name, text in (
        ("grade", "autograde everything in submitted/, print the scores, write grades.csv"),
        ("report", "print the scores in the gradebook and write grades.csv"),
    ):
        step = steps.add_parser(name, help=text)
        step.add_argument(
            "--csv",
            type=Path,
            default=None,
            help="where to write the scores (default: <root>/grades.csv)",
        )
        if name == "grade":
            _limit_options(step)
            slurm.add_arguments(step)
    return parser


def _limit_options(step: argparse.ArgumentParser) -> None:
    default = Limits()
    step.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        help="hand-ins graded at once (default: the number of cores); each kernel gets the cores "
        "divided by JOBS as torch (OpenMP) threads, or $OMP_NUM_THREADS where set",
    )
    step.add_argument(
        "--cell-timeout",
        type=float,
        default=None,
        help="wall-clock seconds per cell (default: Execute.timeout of nbgrader_config.py)",
    )
    step.add_argument(
        "--notebook-timeout",
        type=float,
        default=default.notebook_timeout,
        help="wall-clock seconds per notebook (default: %(default)g)",
    )
    step.add_argument(
        "--memory",
        type=int,
        default=default.memory_mb,
        help="memory (address space) of a hand-in's kernel in MiB (default: %(default)s)",
    )
    step.add_argument(
        "--cpu-time",
        type=int,
        default=default.cpu_seconds,
        help="CPU seconds of a hand-in's kernel (default: %(default)s)",
    )
    step.add_argument(
        "--no-progress", action="store_true", help="no progress bar over the hand-ins"
    )


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (pytest swaps it per test)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _setup_logging(verbose: bool) -> None:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("[%(name)s] %(levelname)s: %(message)s"))
    grading_log = logging.getLogger("grading")
    for old in [h for h in grading_log.handlers if isinstance(h, _StderrHandler)]:
        grading_log.removeHandler(old)  # main() called again, e.g. by the tests
    grading_log.addHandler(handler)
    grading_log.setLevel(logging.INFO)
    # nbgrader warns about every test cell with hidden tests (its checksum "changed" because
    # the hidden tests were cut out of the student version), and the errors it logs are quoted
    # in the GradingError raised after them: by default its log is kept off the screen.
    LOG.setLevel(logging.INFO if verbose else logging.ERROR)
    LOG.propagate = verbose
    if not verbose:
        # nbgrader's gradebook triggers SQLAlchemy's autoflush warnings on every hand-in; they
        # say nothing about the hand-in and would bury the score table.
        warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")


def _limits(course: Course, args: argparse.Namespace) -> Limits:
    cell = args.cell_timeout
    if cell is None:
        cell = float(course.config().Execute.get("timeout", Limits.cell_timeout))
    for name in ("cell_timeout", "notebook_timeout", "memory", "cpu_time"):
        value = cell if name == "cell_timeout" else getattr(args, name)
        if value <= 0:
            raise GradingError(f"--{name.replace('_', '-')} must be positive, not {value}.")
    return Limits(
        cell_timeout=cell,
        notebook_timeout=args.notebook_timeout,
        memory_mb=args.memory,
        cpu_seconds=args.cpu_time,
    )


def _report(course: Course, csv_path: Path | None) -> None:
    rows = collect_grades(course)
    print(format_table(rows))
    path = write_csv(rows, csv_path if csv_path is not None else course.root / "grades.csv")
    print(f"\nwrote {path}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    course = Course(args.root)
    try:
        if args.step == "release":
            if args.assignments:
                released = {name: release(course, name) for name in args.assignments}
            else:
                released = release_all(course)
            for files in released.values():
                for path in files:
                    print(f"wrote {path.relative_to(course.root)}")
            for stale in stale_releases(course):
                print(f"warning: {stale} has no source in {course.source_dir}; remove it?")
            return 0
        if args.step == "grade":
            if args.jobs is not None and args.jobs < 1:
                raise GradingError(f"--jobs must be at least 1, not {args.jobs}.")
            limits = _limits(course, args)
            print(f"limits per hand-in: {limits.describe()}", file=sys.stderr)
            if args.slurm:  # the same grading, as a Slurm job array: grading/slurm.py
                return slurm.grade_command(course, args, limits, _report)
            result = autograde(
                course,
                jobs=args.jobs,
                limits=limits,
                progress=not args.no_progress,
                verbose=args.verbose,
            )
            try:
                written = write_feedback(course, [(s.student, s.assignment) for s in result.graded])
                print(f"feedback for {written} hand-ins in {course.feedback_dir}", file=sys.stderr)
            except GradingError as error:  # the scores are recorded; only feedback is missing
                result.failures.append(str(error))
            _report(course, args.csv)
            for failure in result.failures:
                print(f"\nerror: {failure}", file=sys.stderr)
            return 0 if result.ok else 1
        _report(course, args.csv)
        return 0
    except GradingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
