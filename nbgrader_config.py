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

# Files of an assignment's folders that are never copied: nbgrader's defaults, and the timing
# of the solution that `make exercises` writes beside its source (grading.release.TIMING_FILE),
# which neither students nor the kernels running their hand-ins need.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "timing.json"]

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

# The steps that run and score a cleaned hand-in: nbgrader's default list, with Execute replaced
# by grading.preprocessors.LimitedExecute, which holds the limits below and scores what a limit
# or a dying kernel stopped as 0, with the reason.
c.Autograde.autograde_preprocessors = [
    "grading.preprocessors.LimitedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Times LimitedExecute starts a hand-in's kernel again when it dies before the hand-in's first
# cell (e.g. when another kernel, starting at the same moment, took its port).
c.LimitedExecute.execute_retries = 2

# The steps that turn an executed hand-in into its HTML feedback: nbgrader's default list, with
# ClearHiddenTests replaced by grading.preprocessors.HideHiddenTests, which also withholds every
# output that quotes a hidden test's code (a failing hidden assert's traceback, say) but keeps
# the message of a failing test's assert.
c.GenerateFeedback.preprocessors = [
    "grading.preprocessors.HideHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Late hand-ins: a due date is set per assignment in the gradebook (`make due
# ASSIGNMENT=<assignment> DUE="2025-01-31 23:59 Europe/Berlin"`, which also works before the
# gradebook exists), the time of a hand-in is its timestamp.txt (nbgrader's exchange and
# ZipCollect write it). "none" records how late it was;
# "zero" also takes every point of a late hand-in (nbgrader's LateSubmissionPlugin).
c.LateSubmissionPlugin.penalty_method = "none"

# --- A hand-in that changes the tests' tools -------------------------------------------------
# The tests run in the student's kernel, after the student's code, so a hand-in could replace
# what they call (torch.allclose, Tensor.__eq__, builtins.abs, a module in sys.modules) and turn
# wrong answers into passes. The grader checks every hand-in twice (grading/tamper.py): it reads
# the student's cells before they run, and a guard in the kernel, which no cell of the notebook
# shows, fails every test cell that runs after such a change ("the hand-in replaced
# torch.allclose"). Each finding is a reason in the table and grades.csv, with the cell and the
# line. What it costs the notebook: "review" keeps its score and leaves its cells to a person
# (the table's "needs manual grading", nbgrader's formgrader); "zero" scores it 0, and a
# notebook whose cells are found to change the tools is then not run at all.
c.Tampering.action = "review"

# --- Limits -------------------------------------------------------------------------------------
# Each limit below is set here only: `python -m grading grade --help` shows them, its options
# change them for one run, Slurm's --time and --mem for grading follow from them, and so does
# the book's per-cell limit (_ext/course_limits.py).

# Seconds one cell may run when a course notebook runs as a whole outside the grader: the book's
# build and `make validate` (JupyterLab's Validate button); a cold model cache trains the course
# models in a chapter's cell, minutes on 2 cores. Also the grader's per-cell limit for an
# assignment whose solution has not been timed since its source changed.
c.Execute.timeout = 600

# Wall-clock seconds a cell of a hand-in may run. None: for each assignment,
# cell_timeout_factor times the CPU seconds of the slowest cell of its solution, as `make
# exercises` timed it (on one thread), at least cell_timeout_floor seconds and at most
# Execute.timeout. A number here (or --cell-timeout) holds for every assignment.
c.Limits.cell_timeout = None
c.Limits.cell_timeout_factor = 10
c.Limits.cell_timeout_floor = 60

# Wall-clock seconds a whole notebook of a hand-in may run.
c.Limits.notebook_timeout = 1800

# Memory (address space, RLIMIT_AS) of a hand-in's kernel, in MiB.
c.Limits.memory_mb = 8192

# CPU seconds of a hand-in's kernel (RLIMIT_CPU), all its threads together.
c.Limits.cpu_seconds = 3600

# Seconds a hand-in's kernel may take to start: on a loaded machine that can take a while, and
# it is not the hand-in's fault.
c.Limits.startup_timeout = 300

# Seconds a hand-in's grading may take beyond its notebooks' limits (start-up, saving) before the
# grader stops it; a Slurm array task asks for as much per hand-in beyond those limits.
c.Limits.margin = 120

# MiB a Slurm array task asks for beyond the kernel's memory limit (for the grader itself).
c.Limits.memory_margin_mb = 2048

# --- Grading on a Slurm cluster (make grade-slurm) ----------------------------------------------
# The array task's sbatch --time and --mem follow from the limits above, unless set here.

# sbatch --partition and --account of the grading jobs; "": the cluster's default partition and
# your default account.
c.Slurm.partition = ""
c.Slurm.account = ""

# Any further sbatch options of the grading jobs, e.g. ["--qos=short", "--constraint=skylake"].
c.Slurm.extra = []

# One array task grades this many hand-ins, one after another (1: a task per hand-in).
c.Slurm.handins_per_task = 1

# Cores of one array task (sbatch --cpus-per-task); its kernels use them as torch threads.
c.Slurm.cpus_per_task = 2

# sbatch --time and --mem of one array task, e.g. "00:40:00" and "10G". "auto": from the limits,
# handins_per_task x (notebooks x notebook_timeout + margin), and memory_mb + memory_margin_mb.
# Slurm enforces them where the cluster is set up to; the limits hold in every task anyway.
c.Slurm.time = "auto"
c.Slurm.mem = "auto"

# At most this many array tasks run at once (sbatch --array=...%N); 0: no limit.
c.Slurm.max_running = 0

# Where runs keep their plan, outcomes and logs, relative to the course root: on a file system
# that the compute nodes share with the machine you submit from.
c.Slurm.workdir = ".cache/grading/slurm"
