"""The round trip with a learning platform, with the real grader: a Moodle and a Canvas download
built in the platforms' own naming from exercise 1's solution and student version, collected
into a clean course (``python -m lms collect``, what ``make collect`` runs), graded once
(``python -m grading grade``), the scores exported into each platform's grade sheet and the
feedback packed under the download's names.

The hand-ins: a resubmission whose latest counts (Canvas), a late hand-in (Moodle, by the
worksheet's time; Canvas, by its LATE mark), a renamed notebook, a non-notebook file, a student
with two notebooks, a file that is not a notebook, names with non-ASCII letters and spaces.
Solved notebooks earn every autograded point, the untouched exercise none, so a score tells
which file was graded. Four notebooks run, two at a time.
"""

from __future__ import annotations

import contextlib
import io
import zipfile

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.utils import parse_utc
from test_grading import _parts
from test_lms import (
    ASSIGNMENT,
    NOTEBOOK,
    canvas_export,
    moodle_worksheet,
    read_rows,
    small_course,
    write_zip,
)

from grading import collect_grades
from grading.__main__ import main as grading_main
from grading.release import register
from lms.__main__ import main as lms_main
from lms.roster import read_roster

pytestmark = [
    pytest.mark.grading,
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
]

#: Exercise 1's points: 7 autograded, 2 for the written answer, graded by a person.
AUTO, TOTAL = 7, 9
DUE = "2024-01-16 08:00:00 UTC"
#: Moodle: folder -> file name -> "solved", "released" or raw bytes.
MOODLE_DOWNLOAD = {
    # late: the worksheet says 9:05 in Berlin, 8:05 UTC, five minutes after the due date
    "Zoë Müller-Lüdenscheidt_100002_assignsubmission_file_": {NOTEBOOK: "solved"},
    # Moodle 4.1's folder name; a renamed notebook beside a PDF
    "Max Mustermann_100003_assignsubmission_file": {
        "Hausaufgabe 1.ipynb": "solved",
        "notes.pdf": b"%PDF-1.4",
    },
    # two notebooks: the one with the assignment's name counts
    "Ann Lee_100004_assignsubmission_file_": {
        NOTEBOOK: "released",
        "01_linear_classifiers (copy).ipynb": "solved",
    },
    # not a notebook, though named like one: collected, scored 0 with the reason
    "Bob Broken_100005_assignsubmission_file_": {NOTEBOOK: b"%PDF-1.4 not a notebook"},
}
#: Canvas: flat names; Jane handed in twice, the second time late.
CANVAS_DOWNLOAD = {
    f"doejane_200001_300001_{NOTEBOOK}": "released",
    f"doejane_LATE_200001_300009_{ASSIGNMENT}-1.ipynb": "solved",
    "leeann_200004_300004_homework.txt": b"my homework",
    "mustermannmax_200003_300003_notes.txt": b"my notes",
    "readme.txt": b"not a hand-in",
}
MOODLE_TIMES = {
    "100002": "Tuesday, 16 January 2024, 9:05 AM",
    "100003": "Monday, 15 January 2024, 11:30 PM",
    "100004": "Monday, 15 January 2024, 10:00 AM",
    "100005": "Monday, 15 January 2024, 10:00 AM",
}
#: Scores expected in the platforms' sheets (blank: no hand-in, left as it was).
MOODLE_SCORES = {"100001": "", "100002": "7", "100003": "7", "100004": "0", "100005": "0"}
CANVAS_SCORES = {"200001": "7", "200002": "", "200004": "", "99": ""}


def build(parts, content) -> bytes:
    if isinstance(content, bytes):
        return content
    return nbformat.writes(parts.solution if content == "solved" else parts.released).encode()


@pytest.fixture(scope="module")
def trip(tmp_path_factory: pytest.TempPathFactory):
    """Both downloads collected into one clean course, graded once, exported and packed."""
    tmp = tmp_path_factory.mktemp("lms")
    course = small_course(tmp / "course")
    parts = _parts(course, ASSIGNMENT, course.source_dir / ASSIGNMENT / NOTEBOOK)
    moodle_files = {f"{folder}/{name}": build(parts, content)
                    for folder, files in MOODLE_DOWNLOAD.items()
                    for name, content in files.items()}  # fmt: skip
    moodle_zip = write_zip(tmp / "moodle.zip", moodle_files)
    canvas_zip = write_zip(tmp / "canvas.zip",
                           {n: build(parts, c) for n, c in CANVAS_DOWNLOAD.items()})  # fmt: skip
    names = {"100001": "Jane Doe", **{f.split("_")[1]: f.split("_")[0] for f in MOODLE_DOWNLOAD}}
    worksheet = moodle_worksheet(tmp / "worksheet.csv", [
        (s, names[s], MOODLE_TIMES.get(s, "-")) for s in MOODLE_SCORES if s != "100005"
    ], maximum=TOTAL)  # fmt: skip
    export = canvas_export(tmp / "canvas-export.csv",
                           {"01 Linear classifiers (5501)": TOTAL, "Quiz 1 (5502)": 5},
                           [("Doe, Jane", "200001"), ("Müller-Lüdenscheidt, Zoë", "200002"),
                            ("Lee, Ann", "200004"), ("Student, Test", "99")])  # fmt: skip
    root = ["--root", str(course.root)]
    out = {}
    for name, args in [
        ("moodle", ["collect", "--lms", "moodle", "--zip", str(moodle_zip), "--assignment",
                    ASSIGNMENT, "--sheet", str(worksheet), "--timezone", "Europe/Berlin"]),
        ("canvas", ["collect", "--lms", "canvas", "--zip", str(canvas_zip), "--assignment",
                    ASSIGNMENT]),
    ]:  # fmt: skip
        out[f"collect {name}"] = run(lms_main, root + args)
    register(course, ASSIGNMENT)  # as `nbgrader db assignment add ... --duedate` would
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        gradebook.update_or_create_assignment(ASSIGNMENT, duedate=parse_utc(DUE))
    out["grade"] = run(grading_main, root + ["grade", "--jobs", "2", "--no-progress",
                                             "--cell-timeout", "300"])  # fmt: skip
    for name, sheet in (("moodle", worksheet), ("canvas", export)):
        out[f"export {name}"] = run(lms_main, root + ["export", "--lms", name, "--sheet",
                                                      str(sheet)])  # fmt: skip
        out[f"feedback {name}"] = run(lms_main, root + ["feedback-zip", "--lms", name])
    return course, out, moodle_files


def run(main, argv: list[str]) -> str:
    """Run a command line's ``main`` in this process; its printed output (exit status 0)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(argv)
    assert status == 0, f"{' '.join(argv)} exited with {status}:\n{buffer.getvalue()}"
    return buffer.getvalue()


def test_collect_says_what_it_did_with_every_file(trip):
    course, out, _ = trip
    moodle, canvas = out["collect moodle"], out["collect canvas"]
    assert "Max Mustermann_100003_assignsubmission_file/Hausaufgabe 1.ipynb: renamed by " \
           f"student 100003 (Max Mustermann): taken as {NOTEBOOK}" in moodle  # fmt: skip
    assert "Max Mustermann_100003_assignsubmission_file/notes.pdf: not a notebook (.pdf): " \
           "skipped" in moodle  # fmt: skip
    assert "Ann Lee_100004_assignsubmission_file_/01_linear_classifiers (copy).ipynb: not a " \
           "notebook of this assignment" in moodle  # fmt: skip
    assert f"Bob Broken_100005_assignsubmission_file_/{NOTEBOOK}: not a notebook (not valid " \
           "JSON): collected" in moodle  # fmt: skip
    assert "collected 4 notebooks of 4 students" in moodle
    assert f"doejane_200001_300001_{NOTEBOOK}: an earlier hand-in" in canvas
    assert f"doejane_LATE_200001_300009_{ASSIGNMENT}-1.ipynb: the latest of 2" in canvas
    assert "marked LATE by Canvas" in canvas
    assert "leeann_200004_300004_homework.txt: not a notebook (.txt): skipped" in canvas
    assert "mustermannmax_200003_300003_notes.txt: not a notebook (.txt): skipped" in canvas
    assert "readme.txt: not named the way Canvas names hand-ins" in canvas
    assert "collected 1 notebook of 1 student" in canvas
    handed_in = sorted(p.parent.parent.name for p in course.submitted_dir.glob(f"*/*/{NOTEBOOK}"))
    assert handed_in == ["100002", "100003", "100004", "100005", "200001"]


def test_every_student_gets_the_score_of_the_file_that_counts(trip):
    course, out, _ = trip
    rows = {row.student: row for row in collect_grades(course)}
    assert set(rows) == {"100002", "100003", "100004", "100005", "200001"}, out["grade"]
    for student in ("100002", "100003", "200001"):
        assert (rows[student].auto_score, rows[student].max_score) == (AUTO, TOTAL), rows[student]
        assert rows[student].needs_manual_grade == (f"{ASSIGNMENT}/answer",)
    for student in ("100004", "100005"):
        assert rows[student].score == 0, rows[student]
    assert "not valid JSON" in "; ".join(rows["100005"].reasons)


def test_the_worksheets_time_makes_a_hand_in_late(trip):
    course, _, _ = trip
    rows = {row.student: row for row in collect_grades(course)}
    assert rows["100002"].seconds_late == 300
    assert rows["100002"].reasons == ("handed in 300 s after the due date",)
    assert [rows[s].seconds_late for s in ("100003", "100004", "200001")] == [0, 0, 0]
    stamp = course.submitted_dir / "100002" / ASSIGNMENT / "timestamp.txt"
    assert stamp.read_text() == "2024-01-16 08:05:00"
    assert not (course.submitted_dir / "200001" / ASSIGNMENT / "timestamp.txt").exists()


@pytest.mark.parametrize(
    ("platform", "id_column", "grade_column", "scores"),
    [("moodle", 0, 4, MOODLE_SCORES), ("canvas", 1, 5, CANVAS_SCORES)],
)
def test_export_puts_each_score_in_its_students_row(trip, platform, id_column, grade_column,
                                                    scores):  # fmt: skip
    course, out, _ = trip
    written = read_rows(course.root / "upload" / f"{ASSIGNMENT}-{platform}-grades.csv")
    students = [row for row in written if row[id_column].split(" ")[-1].isdigit()]
    found = {row[id_column].split(" ")[-1]: row[grade_column] for row in students}
    assert len(found) == len(students), "no row duplicated"
    expected = {s: v for s, v in scores.items() if s != "100005"}  # Bob has no row
    assert found == expected
    lines = out[f"export {platform}"]
    blank = {line.split(", ")[1].split(" ")[0].rstrip(":") for line in lines.splitlines()
             if line.endswith("no hand-in graded: left as it was")}  # fmt: skip
    assert blank == {student for student, value in expected.items() if not value}
    if platform == "moodle":
        assert "100005 (Bob Broken): graded (0 / 9) but has no row in worksheet.csv" in lines
    else:
        assert written[1][grade_column] == "Manual Posting"
        assert written[2][grade_column] == "9.00", "Points Possible kept"


@pytest.mark.parametrize("platform", ["moodle", "canvas"])
def test_feedback_zip_uses_the_downloads_names(trip, platform):
    course, _, _ = trip
    packed = zipfile.ZipFile(course.root / "upload" / f"{ASSIGNMENT}-{platform}-feedback.zip")
    names = packed.namelist()
    assert all(name.endswith(".html") for name in names)
    if platform == "moodle":  # every collected student's folder, as the download named it
        assert {name.split("/")[0] for name in names} == set(MOODLE_DOWNLOAD)
        assert all(len(name.split("/")) == 2 for name in names)
    else:  # the prefix of the hand-in that counted: Canvas reads its user and attachment ids
        prefixes = {"doejane_LATE_200001_300009_"}
        assert all(any(path.startswith(p) for path in CANVAS_DOWNLOAD) for p in prefixes)
        assert {p for p in prefixes if any(name.startswith(p) for name in names)} == prefixes
        assert all(any(name.startswith(p) for p in prefixes) for name in names)
        assert {e.download for e in read_roster(course) if e.platform == "canvas"} == prefixes
    for name in names:
        assert b"<html" in packed.read(name).lower()
