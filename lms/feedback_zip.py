"""Step 3: ``feedback/`` packed the way the platform takes feedback files back in bulk.

Each file goes under the name the platform gave the student's hand-in in its download
(:mod:`lms.roster`): Moodle's "Upload multiple feedback files in a zip" reads the participant
id from the download's folder (or file-name prefix); Canvas's "Re-Upload Submissions" reads the
user and attachment ids from the file name's first two numbers, and shows each file under the
name of the hand-in it answers. Only the HTML feedback is packed (``summary.txt`` repeats
``summary.html``).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grading.course import Course, GradingError

from .platforms import Platform
from .roster import read_roster, who

#: The feedback files that are packed.
PACKED = "*.html"


@dataclass
class FeedbackZip:
    path: Path
    entries: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def feedback_zip(course: Course, platform: Platform, assignment: str, out: Path) -> FeedbackZip:
    """Pack the feedback of every hand-in of ``assignment`` collected from ``platform``."""
    entries = [
        e for e in read_roster(course) if e.platform == platform.name and e.assignment == assignment
    ]
    if not entries:
        raise GradingError(
            f"no hand-ins of {assignment!r} were collected from {platform.title} "
            "(make collect): the feedback zip needs the download's names."
        )
    result, known = FeedbackZip(out), {e.student: e.name for e in entries}
    files = {}
    for entry in entries:
        folder = course.feedback_dir / entry.student / assignment
        found = sorted(folder.glob(PACKED))
        if not found:
            result.lines.append(
                f"{who(entry.student, known)}: no feedback in "
                f"{folder.relative_to(course.root)} (not graded?): not packed"
            )
        for path in found:
            files[f"{entry.download}{path.name}"] = path
    others = sorted(p.parent.name for p in course.feedback_dir.glob(f"*/{assignment}"))
    for student in (s for s in others if s not in known):
        result.lines.append(
            f"feedback/{student}/{assignment}: not collected from {platform.title}: not packed"
        )
    if not files:
        raise GradingError(f"no feedback to pack for {assignment!r}: grade it first (make grade).")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(files.items()):
            archive.write(path, name)
    result.entries = sorted(files)
    return result
