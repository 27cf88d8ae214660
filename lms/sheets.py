"""The platforms' grade sheets, read and written back with every row and column they had.

- **Moodle**: the assignment's grading worksheet ("Download grading worksheet", written by the
  grading table of ``mod/assign``; the "Offline grading worksheet" feedback type must be on).
  Its ``Identifier`` column reads ``Participant <id>``, the id of the download's folder names;
  "Upload grading worksheet" reads ``Identifier``, ``Grade`` and ``Last modified (grade)``,
  skips a blank grade and one above ``Maximum Grade``. ``Last modified (submission)`` is the time
  of the hand-in, in the downloading user's time zone and language.
- **Canvas**: the gradebook export ("Export Entire Gradebook"): a header row (``Student``,
  ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then ``<Assignment> (<id>)`` per
  assignment and read-only totals), an optional ``Manual Posting`` row, a ``Points Possible``
  row, then a row per student; its import takes the same file back.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

import dateutil.parser

from grading.course import GradingError

from .platforms import CANVAS, MOODLE, Platform

#: Columns of Moodle's grading worksheet that the upload reads (English language pack).
MOODLE_ID, MOODLE_GRADE, MOODLE_MAX = "Identifier", "Grade", "Maximum Grade"
MOODLE_SUBMITTED = "Last modified (submission)"
#: Columns of Canvas's gradebook export before the assignments.
CANVAS_ID, CANVAS_POINTS = "ID", "Points Possible"
#: A Canvas assignment column: ``<title> (<assignment id>)``.
CANVAS_ASSIGNMENT = re.compile(r"(?P<title>.*) \((?P<id>\d+)\)")


@dataclass
class Sheet:
    """A platform's grade sheet: its rows as read, and where the students are."""

    path: Path
    platform: Platform
    rows: list[list[str]]
    delimiter: str
    bom: bool

    @property
    def header(self) -> list[str]:
        return self.rows[0]

    def column(self, name: str) -> int:
        """The index of the header cell ``name`` (case and spaces aside)."""
        wanted = [i for i, cell in enumerate(self.header) if _plain(cell) == _plain(name)]
        if not wanted:
            raise GradingError(f"{self.path} has no column {name!r}: is it {self.what}?")
        return wanted[0]

    @property
    def what(self) -> str:
        if self.platform is MOODLE:
            return "Moodle's grading worksheet (the assignment's Download grading worksheet)"
        return "Canvas's gradebook export (Grades, Export Entire Gradebook)"

    def students(self) -> dict[str, int]:
        """The platform's student id -> the index of that student's row."""
        col = self.column(MOODLE_ID if self.platform is MOODLE else CANVAS_ID)
        found = {}
        for index, row in enumerate(self.rows[1:], start=1):
            cell = row[col].strip() if col < len(row) else ""
            number = re.fullmatch(r"(?:\D*?\s)?(\d+)", cell)  # "Participant 123456", "12345"
            if number:
                found[number.group(1)] = index
        return found


def _plain(text: str) -> str:
    return " ".join(text.lower().split())


def read_sheet(path: Path, platform: Platform) -> Sheet:
    """``path`` read as ``platform``'s grade sheet; an error naming the file if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise GradingError(f"{path} not found: expected {platform.title}'s grade sheet (CSV).")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise GradingError(
            f"{path} is not UTF-8 text: download the grade sheet as CSV (UTF-8) again."
        ) from None
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    sheet = Sheet(
        path, platform, [row for row in rows if row], delimiter, raw[:3] == b"\xef\xbb\xbf"
    )
    if not sheet.rows:
        raise GradingError(f"{path} is empty: expected {sheet.what}.")
    names = {_plain(cell) for cell in sheet.header}
    if platform is MOODLE and _plain(MOODLE_ID) not in names:
        other = "Moodle's gradebook export" if "email address" in names else "another file"
        raise GradingError(
            f"{path} looks like {other}, not {sheet.what}: its Identifier column "
            f"('Participant <id>') is what matches the ids of the download. Download the "
            "worksheet in English (its column names are read), with the Offline grading "
            "worksheet feedback type turned on in the assignment's settings."
        )
    if platform is CANVAS and not {"id", "sis login id"} <= names:
        raise GradingError(f"{path} has no ID and SIS Login ID columns: expected {sheet.what}.")
    return sheet


def canvas_column(sheet: Sheet, assignment: str, column: str | None = None) -> int:
    """The column of ``assignment`` in Canvas's export: ``column`` (its header, or the Canvas
    assignment id) if given, else the one whose title reads like the assignment's name."""
    titles = {i: CANVAS_ASSIGNMENT.fullmatch(cell) for i, cell in enumerate(sheet.header)}
    titles = {i: found for i, found in titles.items() if found}
    if column:
        chosen = [i for i, found in titles.items() if column in (found.group(0), found["id"])]
    else:
        key = _key(assignment)
        chosen = [i for i, found in titles.items() if _key(found["title"]) == key]
    if len(chosen) != 1:
        listed = "; ".join(sheet.header[i] for i in titles) or "none"
        what = f"column {column!r}" if column else f"a column named like {assignment!r}"
        found = "several" if chosen else "no"
        raise GradingError(
            f"{sheet.path} has {found} {what} (assignment columns: {listed}): "
            "name the column with COLUMN=<header or Canvas assignment id>."
        )
    return chosen[0]


def _key(name: str) -> str:
    """A name compared loosely: ``02 Deepfake detection`` is ``02_deepfake_detection``."""
    return " ".join(re.split(r"[\W_]+", name.lower())).strip()


def grade_column(sheet: Sheet, assignment: str, column: str | None = None) -> int:
    """The column that takes ``assignment``'s scores."""
    if sheet.platform is MOODLE:
        return sheet.column(MOODLE_GRADE)
    return canvas_column(sheet, assignment, column)


def maximum(sheet: Sheet, col: int) -> float | None:
    """The points the platform allows in column ``col``: Moodle's ``Maximum Grade``, Canvas's
    ``Points Possible`` row; ``None`` where the sheet does not say."""
    if sheet.platform is MOODLE:
        where = sheet.column(MOODLE_MAX)
        cells = [sheet.rows[i][where] for i in sheet.students().values()]
    else:
        cells = [row[col] for row in sheet.rows[1:] if row and row[0].strip() == CANVAS_POINTS]
    for cell in cells:
        try:
            return float(cell.strip().replace(",", "."))
        except ValueError:
            continue
    return None


def submission_times(sheet: Sheet, zone: tzinfo) -> dict[str, datetime]:
    """Moodle's worksheet: student id -> when the hand-in was last changed, read in ``zone``
    (the worksheet writes local times without a zone); ``-`` (nothing handed in) is left out."""
    col = sheet.column(MOODLE_SUBMITTED)
    times = {}
    for student, index in sheet.students().items():
        text = sheet.rows[index][col].strip()
        if not text or text == "-":
            continue
        try:
            when = dateutil.parser.parse(text)
        except (ValueError, OverflowError):
            raise GradingError(
                f"{sheet.path}, row {index + 1}: {MOODLE_SUBMITTED!r} is {text!r}, not a date "
                "such as 'Tuesday, 16 January 2024, 9:05 AM': download the worksheet with "
                "Moodle's language set to English, or leave the worksheet out (no late flags)."
            ) from None
        times[student] = when if when.tzinfo else when.replace(tzinfo=zone)
    return times


def write_sheet(sheet: Sheet, path: Path) -> Path:
    """``sheet``'s rows to ``path``, in the sheet's own delimiter (and byte-order mark)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8-sig" if sheet.bom else "utf-8") as handle:
        csv.writer(handle, delimiter=sheet.delimiter).writerows(sheet.rows)
    return path
