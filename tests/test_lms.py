"""The learning-platform steps without a kernel: how each platform's download names are read,
what ``collect`` takes from a download (through nbgrader's ZipCollectApp), the grade sheets
filled and written back, and the feedback zip's names. tests/test_lms_roundtrip.py grades
real hand-ins between collect and export.

The downloads and sheets are built here in each platform's own format (:mod:`lms.platforms`,
:mod:`lms.sheets` say where each comes from).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import nbformat
import pytest

from grading import CellGrade, Course, GradeRow, GradingError
from lms import CANVAS, MOODLE, collect, plan_collect
from lms.export import fill, points
from lms.feedback_zip import feedback_zip
from lms.roster import Entry, read_roster, update_roster
from lms.sheets import grade_column, read_sheet, submission_times, write_sheet

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_linear_classifiers"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"

#: Moodle's grading worksheet, as its grading table writes it for download (English).
MOODLE_HEADER = [
    "Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
    "Grade can be changed", "Last modified (submission)", "Last modified (grade)",
    "Feedback comments",
]  # fmt: skip
#: The columns of Canvas's gradebook export before the assignments, and its totals.
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_TOTALS = ["Current Score", "Unposted Current Score", "Final Score", "Unposted Final Score"]


def moodle_worksheet(path: Path, rows: list[tuple[str, str, str]], maximum: float) -> Path:
    """A worksheet with a row per (participant id, full name, last modified (submission))."""
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(MOODLE_HEADER)
        for student, name, submitted in rows:
            status = "Submitted for grading" if submitted != "-" else "No submission"
            writer.writerow([f"Participant {student}", name, f"{student}@example.org", status,
                             "", f"{maximum:.2f}", "Yes", submitted, "-", ""])  # fmt: skip
    return path


def canvas_export(path: Path, assignments: dict[str, float], students: list[tuple[str, str]],
                  delimiter: str = ",", bom: bool = False) -> Path:  # fmt: skip
    """A gradebook export with ``assignments`` ("Title (id)" -> points possible), a Manual
    Posting row and a row per (sortable name, user id)."""
    blank = [""] * len(CANVAS_TOTALS)
    rows = [CANVAS_HEADER + list(assignments) + CANVAS_TOTALS,
            ["", "", "", "", ""] + ["Manual Posting"] * len(assignments) + blank,
            ["    Points Possible", "", "", "", ""]
            + [f"{value:.2f}" for value in assignments.values()] + ["(read only)"] * 4]  # fmt: skip
    for name, user in students:
        rows.append([name, user, f"S{user}", f"login{user}", "Section A"] + [""] * len(assignments)
                    + ["0.00"] * 4)  # fmt: skip
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    path.write_text(("\ufeff" if bom else "") + buffer.getvalue(), encoding="utf-8")
    return path


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def small_course(root: Path) -> Course:
    """The course's configuration with exercise 1 only (source and released)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    for step in ("solutions", "exercises"):
        shutil.copytree(REPO / step / ASSIGNMENT, root / step / ASSIGNMENT)
    return Course(root)


def notebook_bytes(cells: int = 1) -> bytes:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1") for _ in range(cells)])
    return nbformat.writes(nb).encode()


# --- Names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "student", "name", "prefix", "filename"),
    [
        # Moodle 3.1 to 4.0: a folder per student, ending in "_"
        ("Jane Doe_123456_assignsubmission_file_/01.ipynb", "123456", "Jane Doe",
         "Jane Doe_123456_assignsubmission_file_/", "01.ipynb"),
        # Moodle 4.1 on: without the last "_"; a sub-folder of the student's files
        ("Zoë Müller-Lüdenscheidt_7_assignsubmission_file/sub/my notebook.ipynb", "7",
         "Zoë Müller-Lüdenscheidt", "Zoë Müller-Lüdenscheidt_7_assignsubmission_file/",
         "my notebook.ipynb"),
        # "Download submissions in folders" off: the prefix before each file name
        ("Jane Doe_123456_assignsubmission_file_01_linear.ipynb", "123456", "Jane Doe",
         "Jane Doe_123456_assignsubmission_file_", "01_linear.ipynb"),
        # blind marking
        ("Participant_42_assignsubmission_onlinetext_/onlinetext.html", "42", "Participant",
         "Participant_42_assignsubmission_onlinetext_/", "onlinetext.html"),
    ],
)  # fmt: skip
def test_moodle_names(path: str, student: str, name: str, prefix: str, filename: str):
    found = MOODLE.parse(path)
    assert (found.student, found.name, found.prefix, found.filename) == (
        student, name, prefix, filename)  # fmt: skip
    assert found.prefix + found.filename == path or "/sub/" in path
    assert not found.late and found.order == ()


@pytest.mark.parametrize(
    ("path", "student", "late", "order", "notebook"),
    [
        ("doejane_12345_67890_01_linear_classifiers.ipynb", "12345", False, (67890, 0),
         NOTEBOOK),
        ("doejane_LATE_12345_67891_01_linear_classifiers-2.ipynb", "12345", True, (67891, 2),
         NOTEBOOK),
        ("müllerlüdenscheidtzoë_7_8_homework 1.ipynb", "7", False, (8, 0), "homework 1.ipynb"),
    ],
)  # fmt: skip
def test_canvas_names(path: str, student: str, late: bool, order: tuple, notebook: str):
    found = CANVAS.parse(path)
    assert (found.student, found.late, found.order, found.notebook) == (
        student, late, order, notebook)  # fmt: skip
    assert found.prefix + found.filename == path


def test_names_from_a_zip_without_its_utf8_flag_are_read_back():
    """A zip reader takes UTF-8 names without the zip's UTF-8 flag for code page 437."""
    written = "Zoë Müller_7_assignsubmission_file_/a.ipynb"
    found = MOODLE.parse(written.encode().decode("cp437"))
    assert (found.name, found.prefix) == ("Zoë Müller", "Zoë Müller_7_assignsubmission_file_/")
    assert found.path == written.encode().decode("cp437"), "the file on disk keeps its name"
    found = CANVAS.parse("müllerzoë_7_8_a.ipynb".encode().decode("cp437"))
    assert (found.name, found.prefix) == ("müllerzoë", "müllerzoë_7_8_")


@pytest.mark.parametrize(
    "path",
    ["readme.txt", "01_linear_classifiers.ipynb", "anon_x1y2z_8_a.ipynb",
     "Jane Doe_123456_assignsubmission_file_"],
)  # fmt: skip
def test_names_of_other_files_are_not_hand_ins(path: str):
    assert (MOODLE.parse(path), CANVAS.parse(path)) == (None, None)


# --- What collect takes -------------------------------------------------------------------


def unpacked(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def by_line(lines: list[str]) -> dict[str, str]:
    """Each line by the file it names."""
    return {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines}


def test_plan_moodle(tmp_path: Path):
    nb, other = notebook_bytes(), notebook_bytes(2)
    renamed = "Max Mustermann_3_assignsubmission_file_/Hausaufgabe 1.ipynb"
    two = ["Ann Lee_4_assignsubmission_file_/" + n for n in (NOTEBOOK, "01 (copy).ipynb")]
    ambiguous = ["Cy Ng_6_assignsubmission_file_/" + n for n in ("a.ipynb", "b.ipynb")]
    files = {
        f"Jane Doe_1_assignsubmission_file_/{NOTEBOOK}": nb,
        renamed: nb,
        "Max Mustermann_3_assignsubmission_file_/notes.pdf": b"%PDF-1.4",
        two[0]: nb,
        two[1]: other,
        f"Bob Broken_5_assignsubmission_file_/{NOTEBOOK}": b"%PDF-1.4",
        ambiguous[0]: nb,
        ambiguous[1]: nb,
        "__MACOSX/._x": b"",
    }
    times = {"1": datetime(2024, 1, 16, 8, 5, tzinfo=UTC)}
    plan = plan_collect(MOODLE, unpacked(tmp_path, files), [NOTEBOOK], times)
    taken = {t.download.path: (t.download.student, t.notebook, t.timestamp) for t in plan.taken}
    assert taken == {
        f"Jane Doe_1_assignsubmission_file_/{NOTEBOOK}": ("1", NOTEBOOK, times["1"]),
        renamed: ("3", NOTEBOOK, None),
        two[0]: ("4", NOTEBOOK, None),
        f"Bob Broken_5_assignsubmission_file_/{NOTEBOOK}": ("5", NOTEBOOK, None),
    }
    lines = by_line(plan.lines)
    assert len(lines) == len(plan.lines), "one line per file"
    assert lines[renamed] == "renamed by student 3 (Max Mustermann): taken as " + NOTEBOOK
    assert lines["Max Mustermann_3_assignsubmission_file_/notes.pdf"].endswith("(.pdf): skipped")
    assert lines[two[1]].startswith("not a notebook of this assignment")
    assert lines[two[1]].endswith("handed in by student 4 (Ann Lee): skipped")
    assert "not valid JSON" in lines[f"Bob Broken_5_assignsubmission_file_/{NOTEBOOK}"]
    for path in ambiguous:
        assert "Moodle does not say which is the latest: skipped" in lines[path]
    assert lines["__MACOSX/._x"].startswith("not named the way Moodle names hand-ins")
    broken = f"Bob Broken_5_assignsubmission_file_/{NOTEBOOK}"
    assert set(lines) == (set(files) - set(taken)) | {renamed, broken}


def test_plan_canvas_takes_the_latest(tmp_path: Path):
    nb = notebook_bytes()
    older = f"doejane_1_100_{NOTEBOOK}"
    latest = f"doejane_LATE_1_107_{ASSIGNMENT}-1.ipynb"
    files = {older: nb, latest: nb, f"doejane_1_103_{ASSIGNMENT}.py": b"x = 1",
             "leeann_2_104_homework.ipynb": nb, "leeann_2_105_homework-1.ipynb": nb,
             "mustermannmax_3_106_notes.txt": b"notes"}  # fmt: skip
    # a download unpacked and zipped again: its files in a folder of their own
    plan = plan_collect(CANVAS, unpacked(tmp_path / "download", files).parent, [NOTEBOOK])
    taken = {t.download.path: (t.download.student, t.notebook) for t in plan.taken}
    assert all(Path(t.file) == tmp_path / "download" / t.download.path for t in plan.taken)
    assert taken == {latest: ("1", NOTEBOOK), "leeann_2_105_homework-1.ipynb": ("2", NOTEBOOK)}
    lines = [line for line in plan.lines if line.startswith(latest)]
    assert lines == [f"{latest}: the latest of 2 hand-ins of {NOTEBOOK} by student 1 (doejane): "
                     "taken", f"{latest}: marked LATE by Canvas, which gives no time: no "
                     "timestamp.txt (Canvas's own late policy applies there)"]  # fmt: skip
    assert f"{older}: an earlier hand-in of {NOTEBOOK} by student 1 (doejane): skipped " \
           f"({latest} is the latest)" in plan.lines  # fmt: skip
    assert "leeann_2_104_homework.ipynb: an earlier hand-in" in " ".join(plan.lines)
    assert any(line.startswith("mustermannmax_3_106_notes.txt: not a notebook") for line in
               plan.lines)  # fmt: skip
    assert all(t.timestamp is None for t in plan.taken)


def test_collect_through_zip_collect(tmp_path: Path):
    """nbgrader's ZipCollectApp copies what the plan takes, with the worksheet's time as
    timestamp.txt; collected hand-ins are replaced only when asked, and it says so."""
    course = small_course(tmp_path / "course")
    nb = (course.release_dir / ASSIGNMENT / NOTEBOOK).read_bytes()
    download = write_zip(tmp_path / "download.zip", {
        f"Zoë Müller-Lüdenscheidt_2_assignsubmission_file_/{NOTEBOOK}": nb,
        "Max Mustermann_3_assignsubmission_file/my homework.ipynb": nb,
        "Max Mustermann_3_assignsubmission_file/notes.pdf": b"%PDF",
    })  # fmt: skip
    sheet = moodle_worksheet(tmp_path / "worksheet.csv", [
        ("2", "Zoë Müller-Lüdenscheidt", "Tuesday, 16 January 2024, 9:05 AM"),
        ("3", "Max Mustermann", "-")], maximum=7)  # fmt: skip
    times = submission_times(read_sheet(sheet, MOODLE), ZoneInfo("Europe/Berlin"))
    plan = collect(course, download, ASSIGNMENT, "moodle", times)
    for student in ("2", "3"):
        assert (course.submitted_dir / student / ASSIGNMENT / NOTEBOOK).read_bytes() == nb
    stamp = course.submitted_dir / "2" / ASSIGNMENT / "timestamp.txt"
    assert stamp.read_text() == "2024-01-16 08:05:00"
    assert not (course.submitted_dir / "3" / ASSIGNMENT / "timestamp.txt").exists()
    assert sorted(path.name for path in course.submitted_dir.rglob("*")) == sorted(
        ["2", "3", ASSIGNMENT, ASSIGNMENT, NOTEBOOK, NOTEBOOK, "timestamp.txt"])  # fmt: skip
    assert len(plan.lines) == 2
    assert read_roster(course) == [
        Entry("moodle", ASSIGNMENT, "2", "Zoë Müller-Lüdenscheidt",
              "Zoë Müller-Lüdenscheidt_2_assignsubmission_file_/"),
        Entry("moodle", ASSIGNMENT, "3", "Max Mustermann",
              "Max Mustermann_3_assignsubmission_file/"),
    ]  # fmt: skip
    stamp.write_text("changed by hand")
    with pytest.raises(GradingError, match="already collected: submitted/2/01.*FORCE=1"):
        collect(course, download, ASSIGNMENT, "moodle", times)
    assert stamp.read_text() == "changed by hand", "nothing is overwritten without asking"
    again = collect(course, download, ASSIGNMENT, "moodle", times, force=True)
    assert f"submitted/2/{ASSIGNMENT}: replaced by this download" in again.lines
    assert stamp.read_text() == "2024-01-16 08:05:00"


def test_collect_bad_downloads(tmp_path: Path):
    course = small_course(tmp_path / "course")
    empty = write_zip(tmp_path / "empty.zip", {})
    not_zip = tmp_path / "grades.zip"
    not_zip.write_text("Identifier,Grade\n")
    for path, message in ((empty, "holds no files"), (not_zip, "is not a zip file"),
                          (tmp_path / "missing.zip", "not found")):  # fmt: skip
        with pytest.raises(GradingError, match=message) as error:
            collect(course, path, ASSIGNMENT, "canvas")
        assert str(path) in str(error.value)
    assert not course.submitted_dir.exists()


# --- Grade sheets ---------------------------------------------------------------------------


def grade(student: str, score: float, max_score: float = 7, manual: bool = False) -> GradeRow:
    cells = (CellGrade(ASSIGNMENT, "answer", False, 0, 1, True),) if manual else ()
    return GradeRow(student, ASSIGNMENT, score, max_score, cells)


def read_rows(path: Path, delimiter: str = ",") -> list[list[str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [row for row in csv.reader(handle, delimiter=delimiter) if row]


def test_moodle_worksheet_filled(tmp_path: Path):
    path = moodle_worksheet(tmp_path / "worksheet.csv", [
        ("1", "Jane Doe", "-"), ("2", "Zoë", "Monday, 15 January 2024, 1:00 PM"),
        ("3", "Max Mustermann", "Monday, 15 January 2024, 2:00 PM")], maximum=7)  # fmt: skip
    sheet = read_sheet(path, MOODLE)
    col = grade_column(sheet, ASSIGNMENT)
    grades = {"2": grade("2", 6.5), "3": grade("3", 7 / 3, manual=True), "9": grade("9", 1)}
    result = fill(sheet, col, grades, {"1": "Jane Doe", "9": "Ann Lee"})
    written = write_sheet(sheet, tmp_path / "out.csv")
    rows = read_rows(written)
    before = read_rows(path)
    assert rows[0] == MOODLE_HEADER and written.read_bytes()[:3] == b"\xef\xbb\xbf"
    assert [row[MOODLE_HEADER.index("Grade")] for row in rows[1:]] == ["", "6.5", "2.33"]
    for old, new in zip(before, rows, strict=True):  # only the Grade column changed
        assert [c for i, c in enumerate(old) if i != 4] == [c for i, c in enumerate(new) if i != 4]
    assert result.lines == [
        "row 2, 1 (Jane Doe): no hand-in graded: left as it was",
        "row 4, 3: a score so far; 01_linear_classifiers/answer still to be graded by a person",
        "9 (Ann Lee): graded (1 / 7) but has no row in worksheet.csv: not exported",
    ]
    result = fill(read_sheet(path, MOODLE), col, grades, missing="0")
    assert result.written == {"1": "0", "2": "6.5", "3": "2.33"}


def test_a_maximum_that_differs_is_an_error_unless_scaled(tmp_path: Path):
    path = moodle_worksheet(tmp_path / "w.csv", [("2", "Zoë", "-")], maximum=100)
    sheet = read_sheet(path, MOODLE)
    with pytest.raises(GradingError, match="allows 100 points.*counts 7.*SCALE=1"):
        fill(sheet, grade_column(sheet, ASSIGNMENT), {"2": grade("2", 3.5)})
    result = fill(sheet, grade_column(sheet, ASSIGNMENT), {"2": grade("2", 3.5)}, scale=True)
    assert result.written == {"2": "50"}


@pytest.mark.parametrize(("delimiter", "bom"), [(",", False), (";", True)])
def test_canvas_export_filled(tmp_path: Path, delimiter: str, bom: bool):
    assignments = {"01 Linear classifiers (5501)": 7, "02 Deepfake detection (5502)": 10}
    students = [("Doe, Jane", "1"), ("Müller-Lüdenscheidt, Zoë", "2"), ("Student, Test", "99")]
    path = canvas_export(tmp_path / "export.csv", assignments, students, delimiter, bom)
    sheet = read_sheet(path, CANVAS)
    col = grade_column(sheet, ASSIGNMENT)
    assert col == len(CANVAS_HEADER)
    assert grade_column(sheet, "", "5502") == col + 1
    result = fill(sheet, col, {"1": grade("1", 7)})
    written = write_sheet(sheet, tmp_path / "import.csv")
    assert written.read_bytes().startswith(b"\xef\xbb\xbf") == bom
    rows, before = read_rows(written, delimiter), read_rows(path, delimiter)
    assert rows[:3] == before[:3], "header, Manual Posting and Points Possible rows kept"
    assert [row[col] for row in rows[3:]] == ["7", "", ""]
    assert [row[:col] + row[col + 1 :] for row in rows] == [
        row[:col] + row[col + 1 :] for row in before
    ]
    assert [line.split(":")[0] for line in result.lines] == ["row 5, 2", "row 6, 99"]


def test_canvas_column_must_be_found(tmp_path: Path):
    path = canvas_export(tmp_path / "e.csv", {"Homework 1 (1)": 7, "Homework 2 (2)": 7}, [])
    with pytest.raises(GradingError, match=r"no a column named like.*Homework 1 \(1\).*COLUMN="):
        grade_column(read_sheet(path, CANVAS), ASSIGNMENT)


def test_moodle_gradebook_export_is_refused(tmp_path: Path):
    path = tmp_path / "grades.csv"
    path.write_text("First name,Last name,ID number,Institution,Department,Email address,"
                    "Assignment: 01 (Real),Last downloaded from this course\n")  # fmt: skip
    with pytest.raises(GradingError, match="gradebook export.*Identifier column") as error:
        read_sheet(path, MOODLE)
    assert str(path) in str(error.value)
    with pytest.raises(GradingError, match="no ID and SIS Login ID columns"):
        read_sheet(path, CANVAS)


def test_worksheet_times_read_in_the_given_zone(tmp_path: Path):
    path = moodle_worksheet(tmp_path / "w.csv", [("1", "A", "Tuesday, 16 January 2024, 9:05 AM"),
                                                 ("2", "B", "-")], 7)  # fmt: skip
    times = submission_times(read_sheet(path, MOODLE), ZoneInfo("Europe/Berlin"))
    assert times == {"1": datetime(2024, 1, 16, 8, 5, tzinfo=UTC)}
    bad = moodle_worksheet(tmp_path / "b.csv", [("1", "A", "Dienstag, 16. Januar 2024")], 7)
    with pytest.raises(GradingError, match="row 2.*English"):
        submission_times(read_sheet(bad, MOODLE), UTC)


def test_points_have_at_most_two_decimals():
    assert [points(x) for x in (7, 6.5, 7 / 3, 0)] == ["7", "6.5", "2.33", "0"]


# --- The feedback zip, and the make targets ------------------------------------------------


def test_feedback_zip_repeats_the_download_names(tmp_path: Path):
    course = small_course(tmp_path / "course")
    entries = [Entry("moodle", ASSIGNMENT, "2", "Zoë", "Zoë_2_assignsubmission_file_/"),
               Entry("canvas", ASSIGNMENT, "7", "doejane", "doejane_LATE_7_107_"),
               Entry("moodle", ASSIGNMENT, "3", "Max", "Max_3_assignsubmission_file/")]  # fmt: skip
    update_roster(course, entries)
    for student in ("2", "7", "8"):
        folder = course.feedback_dir / student / ASSIGNMENT
        folder.mkdir(parents=True)
        for name in (f"{ASSIGNMENT}.html", "summary.html", "summary.txt"):
            (folder / name).write_text(name)
    moodle = feedback_zip(course, MOODLE, ASSIGNMENT, tmp_path / "m.zip")
    assert zipfile.ZipFile(moodle.path).namelist() == [
        f"Zoë_2_assignsubmission_file_/{ASSIGNMENT}.html",
        "Zoë_2_assignsubmission_file_/summary.html",
    ]
    assert moodle.lines == [
        f"3 (Max): no feedback in feedback/3/{ASSIGNMENT} (not graded?): not packed",
        f"feedback/7/{ASSIGNMENT}: not collected from Moodle: not packed",
        f"feedback/8/{ASSIGNMENT}: not collected from Moodle: not packed",
    ]
    canvas = feedback_zip(course, CANVAS, ASSIGNMENT, tmp_path / "c.zip")
    assert canvas.entries == [f"doejane_LATE_7_107_{ASSIGNMENT}.html",
                              "doejane_LATE_7_107_summary.html"]  # fmt: skip
    with pytest.raises(GradingError, match="no hand-ins of '02_x' were collected from Canvas"):
        feedback_zip(course, CANVAS, "02_x", tmp_path / "x.zip")


@pytest.mark.parametrize(
    ("target", "args", "command"),
    [
        ("collect", ["ZIP=d.zip", "ASSIGNMENT=a", "LMS=moodle", "GRADEBOOK=w.csv", "FORCE=1"],
         'lms collect --lms "moodle" --assignment "a" --zip "d.zip" --sheet "w.csv"'),
        ("export", ["LMS=canvas", "GRADEBOOK=g.csv", "MISSING=0"],
         'lms export --lms "canvas" --sheet "g.csv" --missing "0"'),
        ("feedback-zip", ["LMS=moodle"], 'lms feedback-zip --lms "moodle"'),
    ],
)  # fmt: skip
def test_make_targets_run_lms(target: str, args: list[str], command: str):
    shown = subprocess.run(["make", "-n", "-C", str(REPO), target, *args], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert command in " ".join(shown.split())


def test_make_targets_say_what_they_need():
    result = subprocess.run(["make", "-s", "-C", str(REPO), "collect", "LMS=moodle"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode != 0
    assert "usage: make collect ZIP=<download.zip> ASSIGNMENT=<name> LMS=moodle|canvas" in (
        result.stderr)  # fmt: skip
