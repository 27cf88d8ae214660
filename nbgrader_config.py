"""nbgrader configuration for the course "Explaining Neural Networks".

Every option is documented where it is set. nbgrader reads this file when it is run from the
repository root (``nbgrader autograde ...``); the ``grading`` package (``python -m grading``)
loads it explicitly from the course root it is given, so the same settings apply to both.

Layout (nbgrader's ``{nbgrader_step}/{student_id}/{assignment_id}``)::

    solutions/<assignment>/<notebook>.ipynb              instructor version (committed)
    exercises/<assignment>/<notebook>.ipynb              student version (committed, generated)
    submitted/<student>/<assignment>/<notebook>.ipynb    hand-ins (not committed)
    autograded/<student>/<assignment>/<notebook>.ipynb   executed hand-ins (not committed)
    feedback/<student>/<assignment>/<notebook>.html      feedback (not committed)
    gradebook.db                                         scores (not committed)
"""

import os

c = get_config()  # noqa: F821 -- injected by traitlets' config loader

# --- Course directory -------------------------------------------------------------------------

# Identifies the course in the gradebook (the `course` table) and, if the exchange were used,
# in the exchange folders. Short and stable: changing it later orphans existing gradebook rows.
c.CourseDirectory.course_id = "xnn"

# The folder that holds all nbgrader steps: the folder of this file, i.e. the repository root,
# so that nbgrader works the same whatever the current directory is. The default gradebook
# location, sqlite:///<root>/gradebook.db, follows from it (CourseDirectory.db_url is left unset
# on purpose).
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))

# Instructor notebooks with `### BEGIN SOLUTION` regions and hidden tests (nbgrader: "source").
c.CourseDirectory.source_directory = "solutions"

# Student notebooks written by `nbgrader generate_assignment` (nbgrader: "release"). They are
# committed; `make exercises` regenerates them and tests/test_exercises.py checks they are current.
c.CourseDirectory.release_directory = "exercises"

# Students' hand-ins, one folder per student: submitted/<student>/<assignment>/.
c.CourseDirectory.submitted_directory = "submitted"

# Executed and scored copies of the hand-ins, written by `nbgrader autograde`.
c.CourseDirectory.autograded_directory = "autograded"

# HTML feedback written by `nbgrader generate_feedback`.
c.CourseDirectory.feedback_directory = "feedback"

# --- Autograding --------------------------------------------------------------------------------

# Put back autograded test cells (and task cells) that a student deleted, so that every test is
# run and scored against the submission instead of silently disappearing from the grade.
c.OverwriteCells.add_missing_cells = True

# The steps that clean a hand-in before it runs: nbgrader's default list, with OverwriteCells
# (restore locked cells, put back deleted ones) replaced by grading.preprocessors'
# OverwriteCellsInOrder. nbgrader 0.9.6 fails with a KeyError on a hand-in that lacks a grade
# cell whose preceding cell in the source is read-only (e.g. a deleted written answer below its
# read-only question); the subclass puts the cell back after the nearest cell still there.
# Given as import strings so that this file does not import the course's package; nbgrader run
# from the repository root (or `python -m grading`) can import it.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "grading.preprocessors.OverwriteCellsInOrder",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Seconds one cell may run while autograding before it is interrupted and scored as an error.
# nbgrader's default (30 s) is too short for cells that train a model when the model cache
# (XNN_CACHE_DIR) is cold. `make grade` (python -m grading grade) takes it as its per-cell limit
# unless --cell-timeout is given; its other limits (per notebook, memory, CPU time) are options
# of that command, with defaults in grading.sandbox.Limits.
c.Execute.timeout = 600
