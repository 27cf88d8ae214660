"""Grading for the course book, on top of nbgrader: one module per step.

- :mod:`grading.course` -- the course folder and its ``nbgrader_config.py``;
- :mod:`grading.release` -- generate the student versions (``solutions/`` -> ``exercises/``);
- :mod:`grading.autograde` -- find the hand-ins in ``submitted/``, check them and grade them in
  parallel child processes (:mod:`grading.worker`), each kernel in the sandbox of
  :mod:`grading.sandbox` (limits, unprivileged user); only this parent writes the gradebook;
- :mod:`grading.report` -- read the scores back, print them, write ``grades.csv``;
- :mod:`grading.feedback` -- HTML and plain-text feedback per student, without hidden tests;
- :mod:`grading.preprocessors` -- nbgrader preprocessors: a fix to its cell restoring, the
  limited execution and the feedback's hiding of hidden tests.

From the command line: ``python -m grading release`` and ``python -m grading grade``.
"""

from .autograde import AutogradeResult, Submission, autograde, check_notebook, find_submissions
from .course import Course, GradingError
from .feedback import write_feedback
from .release import register, release, release_all, stale_releases
from .report import CellGrade, GradeRow, collect_grades, format_table, write_csv
from .sandbox import Limits

__all__ = [
    "AutogradeResult",
    "CellGrade",
    "Course",
    "GradeRow",
    "GradingError",
    "Limits",
    "Submission",
    "autograde",
    "check_notebook",
    "collect_grades",
    "find_submissions",
    "format_table",
    "register",
    "release",
    "release_all",
    "stale_releases",
    "write_csv",
    "write_feedback",
]
