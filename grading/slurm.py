"""Grading a class as a Slurm job array: ``python -m grading grade --slurm``.

The class is planned and recorded as ``make grade`` does it (:mod:`grading.autograde`); only the
run differs: an **array job** whose tasks run :func:`~grading.autograde.grade_submission` and
write each :class:`~grading.autograde.Outcome` to ``results/<n>.json``, and a **collecting job**
(``--dependency=afterany``) that records them, a missing one as 0 with Slurm's reason, and
writes the feedback and ``grades.csv``. The submitting command waits for both unless
``--no-wait``. Settings: ``c.Slurm.*`` of ``nbgrader_config.py`` (:class:`SlurmConfig`).

A run keeps everything in ``<workdir>/<run>/``, on a file system the nodes share: ``run.json``,
``gradebook.db`` (the copy the workers start from), ``results/`` and ``logs/``.
"""

from __future__ import annotations

import fcntl
import math
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

from tqdm.auto import tqdm

from .autograde import (
    AutogradeResult,
    Outcome,
    Plan,
    failed,
    grade_submission,
    grading_folder,
    log,
    plan_class,
    record_class,
    threads_per_handin,
)
from .course import Course, GradingError, Limits, read_json, write_json
from .report import hand_back

#: Seconds between two looks at ``squeue`` while waiting (``sbatch --wait`` polls far slower).
POLL_SECONDS = 0.5
#: Slurm states in which a job has not finished yet.
ACTIVE = set("PENDING CONFIGURING RUNNING COMPLETING SUSPENDED REQUEUED REQUEUE_HOLD".split())
ACTIVE |= set("REQUEUE_FED RESIZING SIGNALING STAGE_OUT STOPPED".split())
#: What a Slurm end state means for the hand-ins of a task that left no result.
STATE_REASONS = {
    "TIMEOUT": "the Slurm task ran out of time (sbatch --time={time})",
    "CANCELLED": "the Slurm task was cancelled (scancel) before it finished this hand-in",
    "OUT_OF_MEMORY": "Slurm stopped the task for using more memory than sbatch --mem={mem}",
    "PREEMPTED": "the Slurm task was preempted by another job",
    "COMPLETED": "the Slurm task ended without grading this hand-in",
}


class SlurmError(GradingError):
    """Slurm is missing, refuses a job, or a configuration value is wrong."""


# --- Configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmConfig:
    """The grading jobs' settings: ``c.Slurm.*`` of ``nbgrader_config.py``, documented there."""

    partition: str
    account: str
    extra: list[str]
    handins_per_task: int
    cpus_per_task: int
    time: str
    mem: str
    max_running: int
    workdir: str

    @classmethod
    def of(cls, course: Course) -> SlurmConfig:
        """``course``'s settings; an unknown, missing or wrong one is an error naming it."""
        section, known = course.config().Slurm, [f.name for f in fields(cls)]
        for name in set(section) - set(known):
            raise SlurmError(f"{course.config_file}: c.Slurm.{name} is not a setting; the "
                             f"settings: {', '.join(known)}.")  # fmt: skip
        for f in fields(cls):
            value, kind = section.get(f.name), {"int": int, "str": str, "list[str]": list}[f.type]
            least = int(f.name == "handins_per_task")
            wanted = {int: f"a number, at least {least}", str: "a text", list: "a list of texts"}
            if (not isinstance(value, kind) or isinstance(value, bool)
                    or not all(isinstance(v, str) for v in (value if kind is list else []))
                    or kind is int and value < least):  # fmt: skip
                raise SlurmError(f"{course.config_file}: c.Slurm.{f.name} must be "
                                 f"{wanted[kind]}, not {value!r}.")  # fmt: skip
        return cls(**{name: section[name] for name in known})

    def options(self) -> list[str]:
        """sbatch options of every grading job."""
        options = [f"--partition={self.partition}"] if self.partition else []
        return options + ([f"--account={self.account}"] if self.account else []) + self.extra

    def array_options(self, limits: Limits, notebooks: int) -> list[str]:
        """sbatch options of one array task: as configured, with ``time`` and ``mem`` "auto"
        derived from the grader's ``limits`` for ``notebooks`` notebooks per hand-in."""
        handin = notebooks * limits.notebook_timeout + limits.margin
        minutes = max(1, math.ceil(self.handins_per_task * handin / 60))
        time = f"{minutes // 1440}-{minutes % 1440 // 60:02d}:{minutes % 60:02d}:00"
        time = time if self.time == "auto" else self.time
        mem = f"{limits.memory_mb + limits.memory_margin_mb}M" if self.mem == "auto" else self.mem
        cpus = f"--cpus-per-task={self.cpus_per_task}"
        return [*self.options(), f"--time={time}", f"--mem={mem}", cpus]


# --- Talking to Slurm -------------------------------------------------------------------------


def _slurm(*command: str, stdin: str | None = None) -> str:
    """Run a Slurm client command; its output. A missing command or a failure is a
    :class:`SlurmError` quoting Slurm."""
    try:
        done = subprocess.run(
            command, input=stdin, capture_output=True, text=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise SlurmError(
            f"{command[0]} not found: Slurm's client commands are not installed here. Run this "
            "on your cluster's login node (or start the test cluster: .ci/slurm-cluster.sh start)."
        ) from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"`{shlex.join(command)}` did not answer within 60 s.") from None
    if done.returncode != 0:
        raise SlurmError(f"`{shlex.join(command)}` failed: {done.stderr.strip()}")
    return done.stdout


def reachable() -> str | None:
    """``None`` if a Slurm controller answers here, else why not (for messages and skips)."""
    try:
        nodes = _slurm("sinfo", "-h", "-o", "%T")
    except SlurmError as error:
        return str(error)
    return None if nodes.strip() else "the Slurm cluster has no nodes"


def submit(options: list[str], command: list[str]) -> str:
    """``sbatch`` a job running ``command`` with ``options``; its job id."""
    script = "#!/bin/sh\nexec " + shlex.join(command) + "\n"
    try:
        return _slurm("sbatch", "--parsable", *options, stdin=script).strip().split(";")[0]
    except SlurmError as error:
        raise SlurmError(f"{error}. Check c.Slurm.* in nbgrader_config.py.") from None


def job_states(job_id: str) -> dict[str, tuple[str, str]]:
    """Each task of ``job_id`` (an array's by task number, else the job's own id) -> (state,
    details), as ``scontrol`` knows them: it keeps a finished job for ``MinJobAge`` (300 s by
    default), and the collecting job starts when the array ends."""
    try:
        shown = _slurm("scontrol", "-o", "show", "job", job_id)
    except SlurmError as error:
        if "Invalid job id" in str(error):
            return {}  # finished and purged
        raise
    states = {}
    for line in shown.splitlines():
        info = dict(part.split("=", 1) for part in line.split() if "=" in part)
        details = f"exit code {info.get('ExitCode', '?')} on {info.get('NodeList', '?')}"
        states[info.get("ArrayTaskId", job_id)] = (info.get("JobState", "UNKNOWN"), details)
    return states


def active_jobs(job_ids: Iterable[str]) -> set[str]:
    """The jobs of ``job_ids`` (array jobs by their id) that have not finished."""
    tasks = {job: job_states(job).values() for job in job_ids if job}
    return {job for job, states in tasks.items() if any(s in ACTIVE for s, _ in states)}


# --- Grading a class as a job array -----------------------------------------------------------


@dataclass
class SlurmRun:
    """A run of ``grade --slurm``, kept in ``<folder>/run.json`` for its jobs."""

    folder: Path
    plan: Plan
    csv: Path
    handins_per_task: int
    time: str = ""
    mem: str = ""
    array_id: str = ""
    collect_id: str = ""
    verbose: bool = False
    #: once recorded: what the collecting job (or the waiting command) recorded
    result: AutogradeResult | None = None

    @property
    def to_run(self) -> list[int]:
        """Indices (in the plan) of the hand-ins with a notebook to run."""
        return [i for i, submission in enumerate(self.plan.submissions) if submission.runnable]

    @property
    def tasks(self) -> int:
        return math.ceil(len(self.to_run) / self.handins_per_task)

    def batch(self, task: int) -> list[int]:
        """The hand-ins that array task ``task`` grades."""
        return self.to_run[task * self.handins_per_task : (task + 1) * self.handins_per_task]

    def result_file(self, index: int) -> Path:
        return self.folder / "results" / f"{index}.json"


def grade_on_slurm(
    course: Course,
    limits: Limits,
    csv: Path | None = None,
    wait_for_end: bool = True,
    progress: bool = True,
    verbose: bool = False,
) -> SlurmRun:
    """Grade the class on Slurm (see the module docstring). With ``wait_for_end``, return once
    every hand-in is recorded, with the run's result; otherwise once the jobs are submitted."""
    why, config = reachable(), SlurmConfig.of(course)
    if why:
        raise SlurmError(f"cannot grade on Slurm: {why}.")
    plan = plan_class(course, limits)
    (course.root / config.workdir).mkdir(parents=True, exist_ok=True)
    # Private to the grader (mode 700): the run holds a gradebook copy with the hidden tests.
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-")
    folder = Path(tempfile.mkdtemp(prefix=stamp, dir=course.root / config.workdir))
    for name in ("results", "logs"):
        (folder / name).mkdir()
    shutil.copyfile(course.gradebook, folder / "gradebook.db")
    csv = Path(csv).resolve() if csv is not None else course.root / "grades.csv"
    run = SlurmRun(folder, plan, csv, config.handins_per_task, verbose=verbose)
    notebooks = max((len(s.runnable) for s in plan.submissions), default=1)
    options = config.array_options(limits, notebooks)
    run.time, run.mem = (o.split("=", 1)[1] for o in options if o.startswith(("--time", "--mem")))
    python = [sys.executable, "-m", "grading.slurm"]
    if run.tasks:
        most = f"%{config.max_running}" if config.max_running else ""
        array = [f"--array=0-{run.tasks - 1}{most}", f"--output={folder}/logs/task-%A_%a.out"]
        array.append("--job-name=xnn-grade")
        run.array_id = submit(array + options, [*python, "task", str(folder)])
    write_json(folder / "run.json", run)
    after = [f"--dependency=afterany:{run.array_id}"] if run.array_id else []
    run.collect_id = submit(
        ["--job-name=xnn-grade-collect", *after, "--kill-on-invalid-dep=no", *config.options()]
        + [f"--output={folder}/logs/collect-%j.out", "--mem=4G", "--cpus-per-task=1"],
        [*python, "collect", str(folder)],
    )
    write_json(folder / "run.json", run)
    array = f"{run.array_id or '-'} ({run.tasks} tasks, --time={run.time} --mem={run.mem})"
    log.info("Slurm: array job %s, collecting job %s; run folder %s", array, run.collect_id, folder)
    if not wait_for_end:
        return run
    with tqdm(total=len(run.to_run), desc="grading on Slurm", disable=not progress) as bar:
        try:
            while active_jobs([run.array_id, run.collect_id]):
                bar.update(len(list((folder / "results").glob("*.json"))) - bar.n)
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            print(f"\nstopped waiting; the jobs go on, and job {run.collect_id} records the "
                  "scores (`squeue --me` shows them; `python -m grading report` prints the "
                  "table after).", file=sys.stderr)  # fmt: skip
            raise
    if not (folder / "collected.json").is_file():
        log.warning("the collecting job %s ended without recording the scores; recording "
                    "them here", run.collect_id)  # fmt: skip
    run.result = collect(course, folder)
    return run


def run_task(folder: Path, task: int) -> int:
    """Array task ``task``: grade its hand-ins, one outcome file each (never the gradebook)."""
    run = read_json(folder / "run.json", SlurmRun)
    course = Course(run.plan.root)
    # Without task affinity, torch would start a thread per core of the node in every task.
    os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("SLURM_CPUS_PER_TASK", "1"))
    where = f"Slurm task {os.environ.get('SLURM_JOB_ID', '?')} on {socket.gethostname()}"
    # Slurm's SIGTERM (time limit, scancel) ends the workers too.
    with grading_folder(folder / "gradebook.db") as base:
        for index in run.batch(task):
            if run.result_file(index).is_file():  # graded before Slurm requeued the task
                continue
            submission, threads = run.plan.submissions[index], threads_per_handin(1)
            try:
                outcome = grade_submission(course, submission, base, run.verbose, threads)
            except Exception as error:  # noqa: BLE001 -- recorded as a 0 with its reason
                outcome = failed(submission, f"in {where}", repr(error))
            write_json(run.result_file(index), outcome)
            name = f"{submission.student}/{submission.assignment}"
            print(f"{where}: graded {name}", file=sys.stderr)
    return 0


def _outcome(run: SlurmRun, index: int, states: dict[str, tuple[str, str]]) -> Outcome:
    """The outcome of the run's hand-in ``index``: what its task wrote, else 0 with what Slurm
    says about the task."""
    submission = run.plan.submissions[index]
    if not submission.runnable:
        return Outcome.zero(submission)
    if run.result_file(index).is_file():
        return read_json(run.result_file(index), Outcome)
    task = run.to_run.index(index) // run.handins_per_task
    state, details = states.get(str(task), ("", "Slurm no longer knows how it ended"))
    why = STATE_REASONS.get(state, f"the Slurm task ended {state or 'without a result'}")
    why = why.format(time=run.time, mem=run.mem)
    reason = f"{why} ({run.array_id}_{task}, {details}); see logs/task-{run.array_id}_{task}.out"
    return Outcome.zero(submission, reason)


def collect(course: Course, folder: Path) -> AutogradeResult:
    """Record every hand-in of the run in the gradebook, write feedback and the CSV, once (a
    second call reads back what the first recorded)."""
    with open(folder / "collect.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder / "collected.json"
        if not done.is_file():
            run = read_json(folder / "run.json", SlurmRun)
            states = job_states(run.array_id) if run.array_id else {}
            outcomes = (_outcome(run, i, states) for i in range(len(run.plan.submissions)))
            result = record_class(course, run.plan, outcomes)
            hand_back(course, result, run.csv)
            write_json(done, result)
    return read_json(done, AutogradeResult)


def main(argv: list[str] | None = None) -> int:
    """``python -m grading.slurm {task,collect} RUN``: the jobs of a run (Slurm starts them)."""
    command, folder = argv or sys.argv[1:]
    from .__main__ import quiet_nbgrader

    quiet_nbgrader()
    if command == "task":
        return run_task(Path(folder), int(os.environ["SLURM_ARRAY_TASK_ID"]))
    run = read_json(Path(folder) / "run.json", SlurmRun)
    result = collect(Course(run.plan.root), Path(folder))
    print(f"recorded {len(result.graded)} hand-ins of {folder}")
    print("".join(f"error: {failure}\n" for failure in result.failures), file=sys.stderr, end="")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
