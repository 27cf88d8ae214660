"""Grading for the course book, on top of nbgrader: one module per step.

- :mod:`grading.course` -- the course folder and its ``nbgrader_config.py``;
- :mod:`grading.release` -- generate the student versions (``solutions/`` -> ``exercises/``);
- :mod:`grading.autograde` -- find the hand-ins in ``submitted/`` and autograde them;
- :mod:`grading.report` -- read the scores back, print them, write ``grades.csv``;
- :mod:`grading.preprocessors` -- a fix to nbgrader's autograding, named in the config.

From the command line: ``python -m grading release`` and ``python -m grading grade``.
"""

from .autograde import AutogradeResult, Submission, autograde, find_submissions
from .course import Course, GradingError
from .release import register, release, release_all, stale_releases
from .report import CellGrade, GradeRow, collect_grades, format_table, write_csv

__all__ = [
    "AutogradeResult",
    "CellGrade",
    "Course",
    "GradeRow",
    "GradingError",
    "Submission",
    "autograde",
    "collect_grades",
    "find_submissions",
    "format_table",
    "register",
    "release",
    "release_all",
    "stale_releases",
    "write_csv",
]
