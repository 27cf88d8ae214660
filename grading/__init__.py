"""Grading for the course book, on top of nbgrader, one module per step: :mod:`~grading.course`
(the course folder and ``nbgrader_config.py``, which sets every option and limit),
:mod:`~grading.release` (``solutions/`` -> ``exercises/``, and the solutions' timing),
:mod:`~grading.autograde` (a class planned, each hand-in run by :mod:`~grading.worker` in the
sandbox of :mod:`~grading.sandbox`, both forked from :mod:`~grading.forkserver`, here or as a
Slurm job array by :mod:`~grading.slurm`, the outcomes recorded),
:mod:`~grading.preprocessors` (nbgrader's steps, within limits), :mod:`~grading.tamper`
(changes to the tests' tools: read before a run, guarded during it), :mod:`~grading.report`
(scores, ``grades.csv``, feedback without hidden tests) and :mod:`~grading.validate` (a
student's check before handing in).

From the command line: ``python -m grading {release,due,grade,report}``.
"""

from .autograde import AutogradeResult, autograde, find_submissions
from .course import Course, GradingError, Limits
from .release import release, release_all
from .report import CellGrade, GradeRow, collect_grades, format_table, write_csv, write_feedback

__all__ = ["AutogradeResult", "autograde", "find_submissions", "Course", "GradingError", "Limits"]
__all__ += ["release", "release_all", "CellGrade", "GradeRow", "collect_grades", "format_table"]
__all__ += ["write_csv", "write_feedback"]
