"""Grading for the course book, on top of nbgrader: one module per step.

- :mod:`grading.course` -- the course folder and its ``nbgrader_config.py``, which sets every
  option and limit of the grader;
- :mod:`grading.release` -- the student versions (``solutions/`` -> ``exercises/``) and the
  timing of the solutions;
- :mod:`grading.autograde` -- a class planned, each hand-in graded by a worker
  (:mod:`grading.worker`) with its kernel in the sandbox of :mod:`grading.sandbox`, the outcomes
  recorded; :mod:`grading.slurm` runs the same hand-ins as a Slurm job array;
- :mod:`grading.report` -- the scores, ``grades.csv`` and the feedback without hidden tests;
  :mod:`grading.preprocessors` -- nbgrader preprocessors;
- :mod:`grading.validate` -- a student's check of an exercise before handing it in.

From the command line: ``python -m grading {release,grade,report}``.
"""

from .autograde import AutogradeResult, autograde, find_submissions
from .course import Course, GradingError, Limits
from .release import release, release_all
from .report import CellGrade, GradeRow, collect_grades, format_table, write_csv, write_feedback

__all__ = ["AutogradeResult", "autograde", "find_submissions", "Course", "GradingError", "Limits"]
__all__ += ["release", "release_all", "CellGrade", "GradeRow", "collect_grades", "format_table"]
__all__ += ["write_csv", "write_feedback"]
