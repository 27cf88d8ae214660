"""How each learning platform names the files of its bulk download of hand-ins.

- **Moodle**, "Download all submissions" (``mod/assign``): one folder per student and
  submission plugin, ``<Full name>_<participant id>_assignsubmission_file_/<file>`` (Moodle 3.1
  to 4.0; from 4.1 without the last ``_``), or, with "Download submissions in folders" off, the
  same prefix before each file name. The number is the participant id, which the assignment's
  grading worksheet shows as ``Participant <id>`` in its ``Identifier`` column and which its
  "Upload multiple feedback files in a zip" reads back from the same folder names. Moodle
  numbers participants per assignment (its blind-marking mapping), not per course.
- **Canvas**, "Download Submissions": flat names
  ``<sortable name>[_LATE]_<user id>_<attachment id>_<file name>``; the sortable name is
  lower-cased without spaces or punctuation, ``LATE`` marks a hand-in after the due date, and a
  file handed in again gets ``-1``, ``-2``, ... before its extension. Attachment ids grow with
  every upload, so the largest is the latest. The user id is the ``ID`` column of the gradebook
  export; "Re-Upload Submissions" reads back the first two numbers of a file's name.

A zip entry's name without the zip's UTF-8 flag is read as code page 437 (by Python, and so by
nbgrader): names and prefixes are read back as the platform wrote them (:func:`readable`).

Neither platform puts the time of a hand-in into its download: entries carry the time the zip
was made. Moodle's grading worksheet has it ("Last modified (submission)"); Canvas marks late
hand-ins only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

#: A resubmission's suffix on Canvas: ``name-1.ipynb``.
RESUBMITTED = re.compile(r"-(\d+)(?=\.[^.]*$)")


def readable(text: str) -> str:
    """``text`` as written, where it is UTF-8 that a zip reader took for code page 437."""
    try:
        return text.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


@dataclass(frozen=True)
class Download:
    """One file of a platform's bulk download, as its name tells."""

    path: str  # relative path inside the download
    student: str  # the platform's id of the student
    name: str  # the student's name as the platform wrote it
    prefix: str  # what the platform put before the student's own file name ("<folder>/" or "...")
    filename: str  # the student's own file name
    late: bool = False
    #: larger is later; () where the platform does not tell
    order: tuple[int, ...] = ()

    @property
    def notebook(self) -> str:
        """The student's file name without a resubmission suffix (``-1``)."""
        if not self.order:
            return self.filename
        return RESUBMITTED.sub("", self.filename)


@dataclass(frozen=True)
class Platform:
    """A learning platform: its name and how its download names files (:meth:`parse`)."""

    name: str
    title: str
    pattern: re.Pattern
    example: str

    def parse(self, path: str) -> Download | None:
        """The student and file that ``path`` (relative to the download's root) stands for, or
        ``None`` when it is not named the way this platform names hand-ins."""
        parts = PurePosixPath(path).parts
        found = self.pattern.fullmatch(parts[0]) if parts else None
        if found is None:
            return None
        fields = found.groupdict()
        rest = fields.get("file") or ""
        if len(parts) == 1 and not rest:
            return None
        # A folder per student ends in "/"; in a flat download the prefix ends where the
        # student's own name begins (a zip the student handed in becomes a folder of that name).
        prefix = parts[0][: len(parts[0]) - len(rest)] if rest else f"{parts[0]}/"
        filename = parts[-1] if len(parts) > 1 else rest
        order = ()
        if fields.get("attachment"):
            suffix = RESUBMITTED.search(filename)
            order = (int(fields["attachment"]), int(suffix.group(1)) if suffix else 0)
        name, prefix = readable(fields["name"]), readable(prefix)
        return Download(path, fields["id"], name, prefix, filename, bool(fields.get("late")), order)


MOODLE = Platform(
    name="moodle",
    title="Moodle",
    pattern=re.compile(
        r"(?P<name>[^_/]*)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)(?:_(?P<file>.*))?"
    ),
    example="Jane Doe_123456_assignsubmission_file_/01_linear_classifiers.ipynb",
)
CANVAS = Platform(
    name="canvas",
    title="Canvas",
    pattern=re.compile(
        r"(?P<name>[^/]*?)(?:_(?P<late>LATE))?_(?P<id>\d+)_(?P<attachment>\d+)_(?P<file>.+)"
    ),
    example="doejane_LATE_12345_67890_01_linear_classifiers.ipynb",
)
PLATFORMS = {platform.name: platform for platform in (MOODLE, CANVAS)}
