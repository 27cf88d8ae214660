"""Step 1: a platform's bulk download of hand-ins into ``submitted/<student>/<assignment>/``.

nbgrader's ``ZipCollectApp`` unpacks the zip and copies each file its collector plugin names;
the plugin here (:class:`Collector`, one subclass per platform) first plans the whole download
(:func:`plan_collect`): which file of each student is the hand-in, under which notebook name,
with which time, and one line for every file that is not taken as it is, saying what was done.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat
from nbgrader.apps.zipcollectapp import ZipCollectApp
from nbgrader.plugins import FileNameCollectorPlugin

from grading.course import LOG, Course, GradingError

from .platforms import CANVAS, MOODLE, Download, Platform
from .roster import Entry, update_roster

#: The only kind of file collected; everything else in a download is reported and skipped.
NOTEBOOK = ".ipynb"


@dataclass(frozen=True)
class Taken:
    """A file of the download taken as a student's notebook."""

    download: Download
    notebook: str  # its name in submitted/<student>/<assignment>/
    timestamp: datetime | None = None
    file: str = ""  # the unpacked file


@dataclass
class CollectPlan:
    """The files to collect, and a line for each file not taken as it is."""

    taken: list[Taken] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _not_a_notebook(path: Path) -> str | None:
    """Why ``path`` cannot be read as a notebook, or ``None``."""
    try:
        nbformat.reads(path.read_bytes().decode("utf-8"), as_version=4)
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except (json.JSONDecodeError, nbformat.reader.NotJSONError):
        return "not valid JSON"
    except Exception as error:  # noqa: BLE001 -- nbformat raises several kinds
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return None


def _choose(
    platform: Platform, files: list[Download], notebook: str, who: str, plan: CollectPlan
) -> Download | None:
    """The one of ``files`` (a student's candidates for ``notebook``) that counts: the latest,
    where the platform tells; none if it cannot tell."""
    if len(files) == 1:
        return files[0]
    if not files[0].order:
        for item in files:
            plan.lines.append(
                f"{item.path}: one of {len(files)} files that could be {notebook} of {who}, and "
                f"{platform.title} does not say which is the latest: skipped; copy the right one "
                f"to submitted/{item.student}/<assignment>/{notebook}"
            )
        return None
    latest = max(files, key=lambda item: item.order)
    plan.lines.append(
        f"{latest.path}: the latest of {len(files)} hand-ins of {notebook} by {who}: taken"
    )
    for item in files:
        if item is not latest:
            plan.lines.append(
                f"{item.path}: an earlier hand-in of {notebook} by {who}: "
                f"skipped ({latest.path} is the latest)"
            )
    return latest


def plan_student(
    platform: Platform, files: list[Download], notebooks: list[str], plan: CollectPlan
) -> list[tuple[Download, str]]:
    """One student's notebooks among ``files``: an exact name wins; a renamed notebook stands
    for the assignment's only notebook where none has its name; the rest is skipped."""
    who = f"student {files[0].student} ({files[0].name})"
    exact = {nb: [f for f in files if f.notebook == nb] for nb in notebooks}
    others = [f for f in files if f.notebook not in notebooks]
    chosen = []
    for notebook, candidates in exact.items():
        renamed = len(notebooks) == 1 and not candidates
        item = _choose(platform, others if renamed else candidates, notebook, who, plan)
        if item is not None:
            chosen.append((item, notebook))
            if renamed:
                plan.lines.append(f"{item.path}: renamed by {who}: taken as {notebook}")
    used = {item.path for item, _ in chosen}
    for item in others:
        if item.path not in used and (len(notebooks) > 1 or any(exact.values())):
            plan.lines.append(
                f"{item.path}: not a notebook of this assignment (expected "
                f"{', '.join(notebooks)}), handed in by {who}: skipped"
            )
    return chosen


def plan_collect(
    platform: Platform, root: Path, notebooks: list[str], times: dict[str, datetime] | None = None
) -> CollectPlan:
    """What to collect from the unpacked download in ``root`` for an assignment with
    ``notebooks``; ``times``: student -> hand-in time, where the platform gives it."""
    plan, students = CollectPlan(), {}
    inside = list(root.iterdir())
    if len(inside) == 1 and inside[0].is_dir() and platform.parse(f"{inside[0].name}/x") is None:
        root = inside[0]  # the download, unpacked and zipped again in a folder of its own
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        item = platform.parse(relative)
        if item is None:
            plan.lines.append(
                f"{relative}: not named the way {platform.title} names hand-ins "
                f"(e.g. {platform.example}): skipped"
            )
        elif Path(item.filename).suffix != NOTEBOOK:  # ZipCollectApp keeps the extension
            kind = Path(item.filename).suffix or "no extension"
            plan.lines.append(f"{relative}: not a notebook ({kind}): skipped")
        else:
            students.setdefault(item.student, []).append(item)
    for student, files in sorted(students.items()):
        for item, notebook in plan_student(platform, files, notebooks, plan):
            reason = _not_a_notebook(root / item.path)
            if reason:
                plan.lines.append(
                    f"{item.path}: not a notebook ({reason}): collected as "
                    f"{notebook}; the grader scores it 0 and says why"
                )
            if item.late and platform is CANVAS:
                plan.lines.append(
                    f"{item.path}: marked LATE by Canvas, which gives no time: no "
                    "timestamp.txt (Canvas's own late policy applies there)"
                )
            when = (times or {}).get(student)
            plan.taken.append(Taken(item, notebook, when, str(root / item.path)))
    return plan


class Collector(FileNameCollectorPlugin):
    """nbgrader's collector plugin for a platform's download: :meth:`prepare` plans it, then
    ZipCollectApp asks :meth:`collect` about each file."""

    platform: Platform
    taken: dict[str, Taken] = {}

    def prepare(self, root: Path, notebooks: list[str], times: dict | None) -> CollectPlan:
        plan = plan_collect(self.platform, root, notebooks, times)
        self.named_regexp = self.platform.pattern.pattern
        self.taken = {item.file: item for item in plan.taken}
        return plan

    def collect(self, submitted_file: str) -> dict | None:
        item = self.taken.get(submitted_file)
        if item is None:
            return None
        stamp = item.timestamp.isoformat() if item.timestamp else None
        return {
            "student_id": item.download.student,
            "file_id": item.notebook,
            **({"timestamp": stamp} if stamp else {}),
        }


class MoodleCollector(Collector):
    platform = MOODLE


class CanvasCollector(Collector):
    platform = CANVAS


COLLECTORS = {"moodle": MoodleCollector, "canvas": CanvasCollector}


def _check_zip(path: Path) -> None:
    if not path.is_file():
        raise GradingError(f"{path} not found: give the platform's download, ZIP=<file>.zip.")
    if not zipfile.is_zipfile(path):
        raise GradingError(f"{path} is not a zip file: give the platform's download as it is.")
    with zipfile.ZipFile(path) as archive:
        if not [info for info in archive.infolist() if not info.is_dir()]:
            raise GradingError(
                f"{path} holds no files: nothing to collect (was the download "
                "made before anyone handed in?)."
            )


def _replaced(course: Course, assignment: str, plan: CollectPlan, force: bool) -> list[str]:
    """Lines for the hand-ins already in submitted/ that the plan would replace; an error
    listing them unless ``force``."""
    students = sorted({item.download.student for item in plan.taken})
    there = [course.submitted_dir / s / assignment for s in students]
    there = [folder for folder in there if folder.is_dir() and any(folder.iterdir())]
    if there and not force:
        listed = ", ".join(str(folder.relative_to(course.root)) for folder in there)
        raise GradingError(
            f"already collected: {listed}. Nothing was changed; collect again "
            "with FORCE=1 to replace these hand-ins."
        )
    return [f"{folder.relative_to(course.root)}: replaced by this download" for folder in there]


def collect(
    course: Course,
    zip_path: Path,
    assignment: str,
    platform: str,
    times: dict[str, datetime] | None = None,
    force: bool = False,
) -> CollectPlan:
    """Collect ``assignment``'s hand-ins from the download ``zip_path`` of ``platform`` into
    the submitted folder, through nbgrader's ZipCollectApp; the plan's lines say what was done
    with every file not taken as it is, and which hand-ins were replaced."""
    zip_path = Path(zip_path).resolve()
    notebooks = [path.name for path in course.source_notebooks(assignment)]
    _check_zip(zip_path)
    with tempfile.TemporaryDirectory(prefix="lms-collect-") as tmp:
        cfg = course.config()
        # ZipCollectApp joins this to the course root: an absolute path keeps the unpacked
        # download out of the course folder.
        cfg.ZipCollectApp.collect_directory_structure = os.path.join(
            tmp, "{downloaded}", "{assignment_id}", "{collect_step}"
        )
        cfg.ZipCollectApp.collector_plugin = COLLECTORS[platform]
        cfg.ZipCollectApp.force = force
        app = ZipCollectApp(config=cfg, coursedir=course.coursedir(cfg), log=LOG)
        app.coursedir.assignment_id = assignment
        archive = Path(app._format_collect_path(app.archive_directory))
        archive.mkdir(parents=True)
        shutil.copyfile(zip_path, archive / "download.zip")
        try:
            app.init_plugins()
            app.extract_archive_files()
            root = Path(app._format_collect_path(app.extracted_directory)) / "download"
            plan = app.collector_plugin_inst.prepare(root, notebooks, times)
            plan.lines += _replaced(course, assignment, plan, force)
            app.process_extracted_files()
        except SystemExit:  # ZipCollectApp.fail logs the reason, then exits
            raise GradingError(
                f"nbgrader's zip_collect could not collect {zip_path} (run with -v to see its log)."
            ) from None
    entries = [
        Entry(platform, assignment, t.download.student, t.download.name, t.download.prefix)
        for t in plan.taken
    ]
    if entries:
        update_roster(course, entries)
    return plan
