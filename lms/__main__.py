"""Command line: ``python -m lms {collect,export,feedback-zip}`` (``make collect``, ``make
export``, ``make feedback-zip``). Exit status 0 when done (the lines printed say what happened
to every file or row that was not taken as it is), 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from grading.__main__ import REPO, quiet_nbgrader
from grading.course import Course, GradingError

from .collect import collect
from .export import default_assignment, export
from .feedback_zip import feedback_zip
from .platforms import MOODLE, PLATFORMS
from .roster import roster_path
from .sheets import read_sheet, submission_times

#: Where the files to upload go, relative to the course root.
UPLOAD_DIR = "upload"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lms",
        description="Hand-ins from Moodle or Canvas, grades and feedback back to it.",
    )
    parser.add_argument("--root", type=Path, default=REPO, help="the folder of nbgrader_config.py")
    parser.add_argument("-v", "--verbose", action="store_true", help="show nbgrader's log")
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    get = steps.add_parser("collect", help="the platform's download into submitted/")
    put = steps.add_parser("export", help="the gradebook's scores into the platform's sheet")
    pack = steps.add_parser("feedback-zip", help="feedback/ as the platform's bulk upload")
    for step in (get, put, pack):
        step.add_argument("--lms", required=True, choices=sorted(PLATFORMS), help="the platform")
    get.add_argument("--zip", required=True, type=Path, help="the platform's download")
    get.add_argument("--assignment", required=True, help="the nbgrader assignment")
    get.add_argument("--force", action="store_true", help="replace hand-ins collected before")
    get.add_argument(
        "--sheet",
        type=Path,
        help="Moodle's grading worksheet, whose 'Last modified (submission)' becomes each "
        "hand-in's timestamp.txt (without it, no hand-in has a time)",
    )
    get.add_argument(
        "--timezone",
        help="the time zone of the worksheet's times, e.g. Europe/Berlin (Moodle writes them "
        "in the downloading user's zone; default: this machine's)",
    )
    for step in (put, pack):
        step.add_argument("--assignment", help="default: the only one collected from the LMS")
        step.add_argument("--out", type=Path, help=f"where to write (default: {UPLOAD_DIR}/...)")
    put.add_argument("--sheet", required=True, type=Path, help="the platform's grade sheet (CSV)")
    put.add_argument(
        "--missing",
        help="what to write for a student without a hand-in (e.g. 0; "
        "default: leave the cell as it was)",
    )
    put.add_argument(
        "--scale",
        action="store_true",
        help="scale scores to the platform's maximum where it differs",
    )
    put.add_argument("--column", help="Canvas: the assignment's column (header or assignment id)")
    return parser


def _zone(name: str | None):
    if not name:
        return datetime.now().astimezone().tzinfo
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise GradingError(f"unknown time zone {name!r}: give one such as Europe/Berlin.") from None


def _collect(course: Course, args: argparse.Namespace) -> None:
    times = None
    if args.sheet:
        if args.lms != MOODLE.name:
            raise GradingError(
                "only Moodle's grading worksheet gives the hand-ins' times; "
                f"{args.lms} gives none: leave GRADEBOOK out."
            )
        zone = _zone(args.timezone)
        times = submission_times(read_sheet(args.sheet, MOODLE), zone)
        print(f"hand-in times from {args.sheet}, read in the time zone {zone}")
    else:
        print(f"no hand-in times: {args.lms}'s download has none (no timestamp.txt)")
    plan = collect(course, args.zip, args.assignment, args.lms, times, args.force)
    for line in plan.lines:
        print(line)
    students = len({t.download.student for t in plan.taken})
    print(
        f"collected {_count(len(plan.taken), 'notebook')} of {_count(students, 'student')} into "
        f"{course.submitted_dir}/<student>/{args.assignment}/; ids and names in "
        f"{roster_path(course)}"
    )


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'s' * (number != 1)}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quiet_nbgrader(args.verbose)
    course = Course(args.root)
    try:
        if args.step == "collect":
            _collect(course, args)
            return 0
        platform = PLATFORMS[args.lms]
        assignment = args.assignment or default_assignment(course, platform)
        if args.step == "export":
            out = args.out or course.root / UPLOAD_DIR / f"{assignment}-{args.lms}-grades.csv"
            result = export(
                course, platform, args.sheet, assignment, out, args.missing, args.scale, args.column
            )
            print("\n".join(result.lines))
            print(f"{len(result.written)} rows filled; wrote {out}: import it into {args.lms}")
        else:
            out = args.out or course.root / UPLOAD_DIR / f"{assignment}-{args.lms}-feedback.zip"
            packed = feedback_zip(course, platform, assignment, out)
            print("\n".join(packed.lines))
            print(f"wrote {out}: {len(packed.entries)} files; upload it to {args.lms}")
        return 0
    except GradingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
