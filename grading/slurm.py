"""Grading a class on a Slurm cluster: ``python -m grading grade --slurm``
(``make grade-slurm``).

The class is planned and recorded exactly as ``make grade`` does it
(:func:`~grading.autograde.plan_class`, :func:`~grading.autograde.record_class`); only the
run differs. After planning on the submitting machine, it submits

1. an **array job**: each task runs :func:`~grading.autograde.grade_submission` on
   ``handins_per_task`` hand-ins and writes each :class:`~grading.autograde.Outcome` to
   ``results/<n>.json``; it never opens the gradebook;
2. a **collecting job** (``--dependency=afterany`` on the array): it records every outcome,
   writes the feedback and ``grades.csv``. A hand-in without an outcome (its task failed, ran
   out of time or was cancelled) is recorded as 0 with the reason Slurm gives, never left out.

By default the submitting command waits (polling ``squeue``), then prints the score table; if
the collecting job itself did not run, it collects. ``--no-wait`` returns after submitting.
Partition, account, cores and the like come from ``slurm/config.toml`` (:class:`SlurmConfig`);
the array task's time and memory follow from the grader's limits (``nbgrader_config.py``).

A run keeps everything in ``<workdir>/<run>/`` (``workdir`` of the configuration, under the
course root, on a file system that the nodes share): ``run.json`` (the plan and the jobs),
``gradebook.db`` (the copy the workers start from), ``results/<n>.json`` and ``logs/``.
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
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

from tqdm.auto import tqdm

from . import autograde as ag
from .autograde import AutogradeResult, Outcome, Plan, Submission
from .course import Course, GradingError, Limits, read_json, write_json
from .feedback import hand_back

#: The course's Slurm settings, documented there; a file of one's own
#: (``$XNN_SLURM_CONFIG`` or ``--slurm-config``) changes some of them.
CONFIG_FILE = Path(__file__).resolve().parent.parent / "slurm" / "config.toml"
CONFIG_ENV = "XNN_SLURM_CONFIG"

#: Seconds between two looks at ``squeue`` while waiting (``sbatch --wait`` polls far slower).
POLL_SECONDS = 0.5
#: Slurm states in which a job has not finished yet (squeue's --states).
ACTIVE = "PENDING,CONFIGURING,RUNNING,COMPLETING,SUSPENDED,REQUEUED,REQUEUE_HOLD,REQUEUE_FED,"
ACTIVE += "RESIZING,SIGNALING,STAGE_OUT,STOPPED"
#: What a Slurm end state means for the hand-ins of a task that left no result.
STATE_REASONS = {
    "TIMEOUT": "the Slurm task ran out of time (sbatch --time={time})",
    "CANCELLED": "the Slurm task was cancelled (scancel) before it finished this hand-in",
    "OUT_OF_MEMORY": "Slurm stopped the task for using more memory than sbatch --mem={mem}",
    "NODE_FAIL": "the node running the Slurm task failed",
    "PREEMPTED": "the Slurm task was preempted by another job",
    "BOOT_FAIL": "the node for the Slurm task failed to boot",
    "DEADLINE": "the Slurm task reached its deadline",
    "FAILED": "the Slurm task failed",
    "COMPLETED": "the Slurm task ended without grading this hand-in",
}


class SlurmError(GradingError):
    """Slurm is missing, refuses a job, or a configuration value is wrong."""


# --- Configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GradeResources:
    """``[grade]`` of the configuration: one array task of ``make grade-slurm``."""

    handins_per_task: int
    time: str
    mem: str
    cpus_per_task: int
    max_running: int
    partition: str
    workdir: str


@dataclass(frozen=True)
class SlurmConfig:
    """The course's Slurm settings: ``[cluster]`` and ``[grade]`` of ``slurm/config.toml``."""

    partition: str
    account: str
    extra: list[str]
    grade: GradeResources

    @classmethod
    def load(cls, *paths: Path) -> SlurmConfig:
        """The course's settings, changed by those of ``paths`` in turn; an unknown key or a
        value of the wrong type is an error naming the file and the key."""
        merged: dict[str, dict] = {"cluster": {}, "grade": {}}
        for path in (CONFIG_FILE, *paths):
            try:
                data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise SlurmError(
                    f"{path} not found: the Slurm settings (a copy of {CONFIG_FILE}, or a file "
                    f"with only the keys to change; or unset ${CONFIG_ENV})."
                ) from None
            except tomllib.TOMLDecodeError as error:
                raise SlurmError(f"{path} is not valid TOML: {error}") from None
            for name, values in data.items():
                kind = {"cluster": cls, "grade": GradeResources}.get(name)
                if kind is None or not isinstance(values, dict):
                    raise SlurmError(
                        f"{path}: unknown section [{name}]; expected [cluster] and [grade]."
                    )
                _check(path, name, values, kind)
                merged[name].update(values)
        return cls(**merged.pop("cluster"), grade=GradeResources(**merged["grade"]))

    @classmethod
    def for_course(cls, path: Path | None = None) -> SlurmConfig:
        """The course's settings, changed by ``path``, else by ``$XNN_SLURM_CONFIG``."""
        chosen = path or os.environ.get(CONFIG_ENV)
        return cls.load(*([Path(chosen)] if chosen else []))

    def options(self) -> list[str]:
        """sbatch options of every job of the course."""
        partition = self.grade.partition or self.partition
        options = [f"--partition={partition}"] if partition else []
        return options + ([f"--account={self.account}"] if self.account else []) + self.extra

    def array_options(self, limits: Limits, notebooks: int) -> list[str]:
        """sbatch options of one array task: as configured, with ``time`` and ``mem`` "auto"
        derived from the grader's ``limits`` for ``notebooks`` notebooks per hand-in."""
        handin = notebooks * limits.notebook_timeout + limits.margin
        minutes = max(1, math.ceil(self.grade.handins_per_task * handin / 60))
        time = f"{minutes // 1440}-{minutes % 1440 // 60:02d}:{minutes % 60:02d}:00"
        mem = f"{limits.memory_mb + limits.memory_margin_mb}M"
        time, mem = (given if given != "auto" else auto for given, auto in
                     ((self.grade.time, time), (self.grade.mem, mem)))  # fmt: skip
        return self.options() + [
            f"--time={time}",
            f"--mem={mem}",
            f"--cpus-per-task={self.grade.cpus_per_task}",
        ]


def _check(path: Path, name: str, values: dict, kind: type) -> None:
    known = {f.name: f.type for f in fields(kind) if f.name != "grade"}
    for key, value in values.items():
        if key not in known:
            raise SlurmError(
                f"{path}: unknown key {key!r} in [{name}]; known keys: {', '.join(known)}."
            )
        wanted = {"int": int, "str": str, "list[str]": list}[known[key]]
        if not isinstance(value, wanted) or isinstance(value, bool):
            raise SlurmError(f"{path}: [{name}] {key} must be a {wanted.__name__}, not {value!r}.")
        if wanted is list and not all(isinstance(item, str) for item in value):
            raise SlurmError(f"{path}: [{name}] {key} must be a list of sbatch options.")
        if wanted is int and value < (1 if key == "handins_per_task" else 0):
            least = "at least 1" if key == "handins_per_task" else "not negative"
            raise SlurmError(f"{path}: [{name}] {key} must be {least}, not {value}.")


# --- Talking to Slurm -------------------------------------------------------------------------


def _slurm(*command: str, stdin: str | None = None, check: bool = True) -> str:
    """Run a Slurm client command; its output. A missing command or (with ``check``) a
    failure is a :class:`SlurmError` quoting Slurm."""
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
    if check and done.returncode != 0:
        raise SlurmError(f"`{shlex.join(command)}` failed: {done.stderr.strip()}")
    return done.stdout if done.returncode == 0 else ""


def reachable() -> str | None:
    """``None`` if a Slurm controller answers here, else why not (for messages and skips)."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "Slurm's client commands (sinfo, sbatch) are not installed"
    try:
        nodes = _slurm("sinfo", "-h", "-o", "%T")
    except SlurmError as error:
        return f"no Slurm controller answers ({error})"
    return None if nodes.strip() else "the Slurm cluster has no nodes"


def submit(options: list[str], command: list[str]) -> str:
    """``sbatch`` a job running ``command`` with ``options``; its job id."""
    script = "#!/bin/sh\nexec " + shlex.join(command) + "\n"
    try:
        return _slurm("sbatch", "--parsable", *options, stdin=script).strip().split(";")[0]
    except SlurmError as error:
        fix = f"Check the settings in {CONFIG_FILE} (or ${CONFIG_ENV})"
        raise SlurmError(f"{error}. {fix}.") from None


def active_jobs(job_ids: Iterable[str]) -> set[str]:
    """The jobs of ``job_ids`` (array jobs by their id) that have not finished."""
    ids = [job for job in job_ids if job]
    if not ids:
        return set()
    try:
        queue = _slurm("squeue", "-h", "-j", ",".join(ids), "-t", ACTIVE, "-o", "%F %i")
    except SlurmError as error:
        if "Invalid job id" in str(error):
            return set()  # all of them finished and were purged
        raise
    lines = [line.split() for line in queue.splitlines()]
    return {array_id if array_id in ids else job_id for array_id, job_id in lines}


def task_states(array_id: str) -> dict[int, tuple[str, str]]:
    """Array task index -> (Slurm end state, its details) of the tasks Slurm still knows.

    From ``scontrol`` (which forgets finished jobs after ``MinJobAge``, 300 s by default),
    else from ``sacct`` where the cluster keeps accounting.
    """
    states: dict[int, tuple[str, str]] = {}
    for line in _slurm("scontrol", "-o", "show", "job", array_id, check=False).splitlines():
        info = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if info.get("ArrayTaskId", "").isdigit():
            details = f"exit code {info.get('ExitCode', '?')} on {info.get('NodeList', '?')}"
            states[int(info["ArrayTaskId"])] = (info.get("JobState", "UNKNOWN"), details)
    if shutil.which("sacct"):
        fields_ = ("-o", "JobID,State,ExitCode,NodeList")
        for line in _slurm(
            "sacct", "-n", "-P", "-X", "-j", array_id, *fields_, check=False
        ).splitlines():
            job, state, code, node = (line.split("|") + ["", "", "", ""])[:4]
            index = job.rpartition("_")[2]
            if index.isdigit() and int(index) not in states:
                states[int(index)] = (state.split()[0], f"exit code {code} on {node}")
    return states


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
    config: SlurmConfig,
    limits: Limits,
    csv: Path | None = None,
    wait_for_end: bool = True,
    progress: bool = True,
    verbose: bool = False,
) -> SlurmRun:
    """Grade every hand-in in the submitted folder on Slurm (see the module docstring).

    With ``wait_for_end`` the call returns once every hand-in is recorded in the gradebook and
    the CSV is written, with the run's :class:`AutogradeResult`; otherwise right after
    submitting the array and the collecting job.
    """
    why = reachable()
    if why:
        raise SlurmError(f"cannot grade on Slurm: {why}.")
    plan = ag.plan_class(course, limits)
    (course.root / config.grade.workdir).mkdir(parents=True, exist_ok=True)
    # Private to the grader (mode 700): the run holds a gradebook copy with the hidden tests.
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-")
    folder = Path(tempfile.mkdtemp(prefix=stamp, dir=course.root / config.grade.workdir))
    (folder / "results").mkdir()
    (folder / "logs").mkdir()
    shutil.copyfile(course.gradebook, folder / "gradebook.db")
    csv = Path(csv).resolve() if csv is not None else course.root / "grades.csv"
    run = SlurmRun(folder, plan, csv, config.grade.handins_per_task, verbose=verbose)
    notebooks = max((len(s.runnable) for s in plan.submissions), default=1)
    options = config.array_options(limits, notebooks)
    run.time, run.mem = (o.split("=", 1)[1] for o in options if o.startswith(("--time", "--mem")))
    python = [sys.executable, "-m", "grading.slurm"]
    if run.tasks:
        most = f"%{config.grade.max_running}" if config.grade.max_running else ""
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
    ag.log.info("submitted array job %s (%d tasks) and collecting job %s; run folder %s",
             run.array_id or "-", run.tasks, run.collect_id, folder)  # fmt: skip
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
        ag.log.warning("the collecting job %s ended without recording the scores; recording "
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
    base = Path(tempfile.mkdtemp(prefix="grading-slurm-"))
    os.chmod(base, 0o711)  # sandbox users reach their own folder, but cannot list others
    try:
        with ag.ending_workers():  # Slurm's SIGTERM (time limit, scancel) ends the workers too
            for index in run.batch(task):
                if run.result_file(index).is_file():  # graded before Slurm requeued the task
                    continue
                submission = run.plan.submissions[index]
                try:
                    outcome = ag.grade_submission(course, submission, base, folder / "gradebook.db",
                                               run.verbose, ag.threads_per_handin(1))  # fmt: skip
                except Exception as error:  # noqa: BLE001 -- recorded as a 0 with its reason
                    outcome = ag.failed(submission, f"in {where}", repr(error))
                write_json(run.result_file(index), outcome)
                name = f"{submission.student}/{submission.assignment}"
                print(f"{where}: graded {name}", file=sys.stderr)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def _missing(run: SlurmRun, index: int, states: dict[int, tuple[str, str]]) -> Outcome:
    """The outcome of a hand-in that has none: 0, with what Slurm says about its task."""
    submission = run.plan.submissions[index]
    task = next(number for number in range(run.tasks) if index in run.batch(number))
    log_file = f"logs/task-{run.array_id}_{task}.out"
    state, details = states.get(task, ("", ""))
    if state:
        why = STATE_REASONS.get(state, f"the Slurm task ended {state}")
        why = why.format(time=run.time, mem=run.mem)
        reason = f"{why} ({run.array_id}_{task}, {details}); see {log_file}"
    else:
        reason = (
            f"its Slurm task {run.array_id}_{task} ended without a result (failed, out of "
            f"time or cancelled; Slurm no longer knows which); see {log_file}"
        )
    notes = {**submission.notes, **{path.name: reason for path in submission.runnable}}
    return Outcome(submission, notes=notes)


def collect(course: Course, folder: Path) -> AutogradeResult:
    """Record every hand-in of the run in the gradebook, write feedback and the CSV, once (a
    second call reads back what the first recorded)."""
    with open(folder / "collect.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder / "collected.json"
        if not done.is_file():
            run = read_json(folder / "run.json", SlurmRun)
            states = task_states(run.array_id) if run.array_id else {}

            def outcome(index: int, submission: Submission) -> Outcome:
                if not submission.runnable:
                    return Outcome(submission, notes=dict(submission.notes))
                if run.result_file(index).is_file():
                    return read_json(run.result_file(index), Outcome)
                return _missing(run, index, states)

            outcomes = (outcome(i, s) for i, s in enumerate(run.plan.submissions))
            result = ag.record_class(course, run.plan, outcomes)
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
