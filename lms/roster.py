"""The course's students as the platform knows them: ids, names and the names of their hand-ins
in the platform's download, which the feedback zip has to repeat. Kept in a CSV file beside the
gradebook (``lms_students.csv``), never in the repository: it holds students' names.
"""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from grading.course import Course

#: The file, beside the gradebook, that maps the platform's ids to names and download names.
ROSTER_FILE = "lms_students.csv"


@dataclass(frozen=True)
class Entry:
    """One collected hand-in: whose it is, and what the platform's download called it."""

    platform: str
    assignment: str
    student: str  # the platform's id, the student's folder in submitted/
    name: str
    download: str  # the prefix of the student's files in the download (a folder ends in "/")


def roster_path(course: Course) -> Path:
    return course.gradebook.parent / ROSTER_FILE


def read_roster(course: Course) -> list[Entry]:
    """Every hand-in collected so far (none before the first ``collect``)."""
    path = roster_path(course)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [Entry(**row) for row in csv.DictReader(handle)]


def update_roster(course: Course, entries: list[Entry]) -> Path:
    """Add ``entries`` to the roster, replacing those of the same platform, assignment and
    student (a hand-in collected again)."""
    keys = {(e.platform, e.assignment, e.student) for e in entries}
    kept = [e for e in read_roster(course) if (e.platform, e.assignment, e.student) not in keys]
    path = roster_path(course)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([f.name for f in fields(Entry)])
        writer.writerows(astuple(e) for e in sorted(kept + entries, key=astuple))
    return path


def names(course: Course, platform: str) -> dict[str, str]:
    """The platform's student ids -> names, from every hand-in collected from it."""
    return {e.student: e.name for e in read_roster(course) if e.platform == platform}


def who(student: str, known: dict[str, str]) -> str:
    """A student as the messages name them: ``123456 (Jane Doe)``."""
    return f"{student} ({known[student]})" if known.get(student) else student
