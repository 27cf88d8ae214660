"""Grading for the course book, on top of nbgrader: one module per step.

- :mod:`grading.course` -- the course folder and its ``nbgrader_config.py``, which sets every
  option and limit of the grader;
- :mod:`grading.release` -- the student versions (``solutions/`` -> ``exercises/``) and the
  timing of the solutions;
- :mod:`grading.autograde` -- a class planned, each hand-in graded by a worker
  (:mod:`grading.worker`) with its kernel in the sandbox of :mod:`grading.sandbox`, the outcomes
  recorded; :mod:`grading.slurm` runs the same hand-ins as a Slurm job array;
- :mod:`grading.report` and :mod:`grading.feedback` -- the scores, ``grades.csv`` and the
  feedback without hidden tests; :mod:`grading.preprocessors` -- nbgrader preprocessors;
- :mod:`grading.validate` -- a student's check of an exercise before handing it in.

From the command line: ``python -m grading {release,grade,report}``.
"""

from .autograde import AutogradeResult, Outcome, Submission, autograde, find_submissions
from .course import Course, GradingError, Limits
from .feedback import hand_back, write_feedback
from .release import register, release, release_all, stale_releases, time_solution
from .report import CellGrade, GradeRow, collect_grades, format_table, write_csv

__all__ = ["AutogradeResult", "Outcome", "Submission", "autograde", "find_submissions", "Course"]
__all__ += ["GradingError", "Limits", "hand_back", "write_feedback", "register", "release"]
__all__ += ["release_all", "stale_releases", "time_solution", "CellGrade", "GradeRow"]
__all__ += ["collect_grades", "format_table", "write_csv"]
