"""Grading for the course book, on top of nbgrader, one module per step: :mod:`~grading.course`
(the course folder and ``nbgrader_config.py``, which sets every option and limit),
:mod:`~grading.release` (``solutions/`` -> ``exercises/``, and the solutions' timing),
:mod:`~grading.autograde` (a class planned, each hand-in run by :mod:`~grading.worker` in the
sandbox of :mod:`~grading.sandbox`, here or as a Slurm job array by :mod:`~grading.slurm`, the
outcomes recorded), :mod:`~grading.preprocessors` (nbgrader's steps, within limits),
:mod:`~grading.tamper` (changes to the tests' tools: read before a run, guarded during it),
:mod:`~grading.report` (scores, ``grades.csv``, feedback without hidden tests) and
:mod:`~grading.validate` (a student's check before handing in).

From the command line: ``python -m grading {release,due,grade,report}``.
"""

from __future__ import annotations

import importlib

#: What the package exports, by the module that defines it. Imported on first use: the kernel
#: launcher of the sandbox (grading.sandbox), started for every hand-in, needs none of it, and
#: nbgrader behind it takes a second or more to import.
_EXPORTS = {
    "autograde": ("AutogradeResult", "autograde", "find_submissions"),
    "course": ("Course", "GradingError", "Limits"),
    "release": ("release", "release_all"),
    "report": (
        "CellGrade",
        "GradeRow",
        "collect_grades",
        "format_table",
        "write_csv",
        "write_feedback",
    ),
}
__all__ = [name for names in _EXPORTS.values() for name in names]


def __getattr__(name: str) -> object:
    module = next((m for m, names in _EXPORTS.items() if name in names), None)
    if module is None:
        raise AttributeError(f"module 'grading' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
