"""Grading a class, and training the course models, on a Slurm cluster.

``python -m grading grade --slurm`` (``make grade-slurm``) grades every hand-in in
``submitted/`` as a Slurm job array. It does on the submitting machine what ``make grade``
does before anything runs (registers the assignments, checks every notebook without running
it, prepares the course models), then submits

1. an **array job**: each task grades ``handins_per_task`` hand-ins with exactly the grading of
   ``make grade`` (:mod:`grading.worker`: a child process per hand-in, sandboxed, within the
   grader's limits) and writes one result file per hand-in; it never opens the gradebook;
2. a **collecting job** (``--dependency=afterany`` on the array): it records every result in
   the gradebook, one after another, writes the feedback and ``grades.csv``. A hand-in without
   a result (its task failed, ran out of time or was cancelled) is recorded as 0 with the reason
   Slurm gives, never left out.

By default the submitting command waits (polling ``squeue``), then prints the score table; if
the collecting job itself did not run, it collects. ``--no-wait`` returns after submitting.

``python -m grading.slurm train`` (``make train-slurm``) submits
``slurm/train_course_models.sbatch``. Partition, account, time, memory, cores and GPUs come
from one file, ``slurm/config.toml`` (or ``$XNN_SLURM_CONFIG``): :class:`SlurmConfig`.

A run keeps everything in ``<workdir>/<run>/`` (``workdir`` of the configuration, under the
course root, on a file system that the nodes share): ``plan.json`` (the hand-ins and limits),
``gradebook.db`` (the read-only copy the workers start from), ``results/<n>.json`` and
``logs/``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import math
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path

import nbformat
from sqlalchemy.exc import SAWarning
from tqdm.auto import tqdm

from .autograde import (
    AutogradeResult,
    GradebookGuard,
    Outcome,
    Submission,
    assignment_cells,
    check_submission,
    find_submissions,
    grade_submission,
    gradebook_file,
    log,
    prepare_course_models,
    record,
    snapshot_sources,
    threads_per_handin,
)
from .course import LOG, Course, GradingError
from .feedback import write_feedback
from .release import register
from .report import collect_grades, write_csv
from .sandbox import Limits

#: Environment variable naming the configuration file to use instead of the course's own.
CONFIG_ENV = "XNN_SLURM_CONFIG"
#: The course's configuration file, relative to the course root.
CONFIG_FILE = Path("slurm") / "config.toml"
#: The training job script, relative to the course root.
TRAIN_SCRIPT = Path("slurm") / "train_course_models.sbatch"

#: Seconds between two looks at ``squeue`` while waiting (``sbatch --wait`` polls far slower).
POLL_SECONDS = 0.5
#: Slurm states in which a job has not finished yet.
ACTIVE_STATES = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
}
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

    handins_per_task: int = 1
    time: str = "auto"  # sbatch --time, or "auto" (from the grader's limits)
    mem: str = "auto"  # sbatch --mem, or "auto" (the kernel's memory limit + 2 GiB)
    cpus_per_task: int = 2
    max_running: int = 0  # --array=...%N; 0: no limit
    partition: str = ""
    workdir: str = ".cache/grading/slurm"


@dataclass(frozen=True)
class TrainResources:
    """``[train]`` of the configuration: the job of ``make train-slurm``."""

    gres: str = "gpu:1"
    time: str = "02:00:00"
    mem: str = "16G"
    cpus_per_task: int = 8
    partition: str = ""


@dataclass(frozen=True)
class SlurmConfig:
    """The course's Slurm settings, from ``slurm/config.toml`` (documented there)."""

    partition: str = ""
    account: str = ""
    extra: tuple[str, ...] = ()
    grade: GradeResources = field(default_factory=GradeResources)
    train: TrainResources = field(default_factory=TrainResources)

    @classmethod
    def load(cls, path: Path) -> SlurmConfig:
        """Read ``path``; an unknown key or a value of the wrong type is an error naming both."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SlurmError(
                f"{path} not found: the Slurm configuration (copy {CONFIG_FILE} of the course, "
                f"or unset {CONFIG_ENV})."
            ) from None
        except tomllib.TOMLDecodeError as error:
            raise SlurmError(f"{path} is not valid TOML: {error}") from None
        cluster = data.pop("cluster", {})
        sections = {"grade": GradeResources, "train": TrainResources}
        parsed = {
            name: _section(path, name, data.pop(name, {}), kind) for name, kind in sections.items()
        }
        if data:
            raise SlurmError(
                f"{path}: unknown section [{next(iter(data))}]; "
                "expected [cluster], [grade] and [train]."
            )
        extra = cluster.pop("extra", [])
        if not isinstance(extra, list) or not all(isinstance(o, str) for o in extra):
            raise SlurmError(f"{path}: [cluster] extra must be a list of sbatch options.")
        top = _section(path, "cluster", cluster, SlurmConfig, skip={"extra", "grade", "train"})
        return cls(partition=top.partition, account=top.account, extra=tuple(extra), **parsed)

    @classmethod
    def for_course(cls, course: Course, path: Path | None = None) -> SlurmConfig:
        """``path``, else ``$XNN_SLURM_CONFIG``, else the course's ``slurm/config.toml``."""
        chosen = path or os.environ.get(CONFIG_ENV) or course.root / CONFIG_FILE
        return cls.load(Path(chosen))

    def _common(self, partition: str) -> list[str]:
        options = []
        if partition or self.partition:
            options.append(f"--partition={partition or self.partition}")
        if self.account:
            options.append(f"--account={self.account}")
        return options + list(self.extra)

    def grade_time(self, notebook_timeout: float, notebooks: int) -> str:
        """``--time`` of one array task: as configured, or enough for its hand-ins' limits."""
        if self.grade.time != "auto":
            return self.grade.time
        seconds = self.grade.handins_per_task * notebooks * notebook_timeout + 300
        return _slurm_minutes(seconds)

    def grade_mem(self, memory_mb: int) -> str:
        """``--mem`` of one array task: as configured, or the kernel's limit and 2 GiB."""
        return self.grade.mem if self.grade.mem != "auto" else f"{memory_mb + 2048}M"

    def grade_options(self, notebook_timeout: float, memory_mb: int, notebooks: int) -> list[str]:
        return [
            *self._common(self.grade.partition),
            f"--time={self.grade_time(notebook_timeout, notebooks)}",
            f"--mem={self.grade_mem(memory_mb)}",
            f"--cpus-per-task={self.grade.cpus_per_task}",
        ]

    def train_options(self) -> list[str]:
        options = [
            *self._common(self.train.partition),
            f"--time={self.train.time}",
            f"--mem={self.train.mem}",
            f"--cpus-per-task={self.train.cpus_per_task}",
        ]
        if self.train.gres:
            options.append(f"--gres={self.train.gres}")
        return options


def _section(path: Path, name: str, values: dict, kind: type, skip: Iterable[str] = ()) -> object:
    known = {f.name: f for f in fields(kind) if f.name not in set(skip)}
    for key, value in values.items():
        if key not in known:
            raise SlurmError(
                f"{path}: unknown key {key!r} in [{name}]; known keys: {', '.join(known)}."
            )
        wanted = int if known[key].type in ("int", int) else str
        if not isinstance(value, wanted) or isinstance(value, bool):
            raise SlurmError(f"{path}: [{name}] {key} must be a {wanted.__name__}, not {value!r}.")
        if wanted is int and value < 0:
            raise SlurmError(f"{path}: [{name}] {key} must not be negative, not {value}.")
    if values.get("handins_per_task", 1) < 1:
        raise SlurmError(f"{path}: [{name}] handins_per_task must be at least 1.")
    return kind(**values)


def _slurm_minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    days, minutes = divmod(minutes, 24 * 60)
    return f"{days}-{minutes // 60:02d}:{minutes % 60:02d}:00"


# --- Talking to Slurm -------------------------------------------------------------------------


def _slurm(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    except FileNotFoundError:
        raise SlurmError(
            f"{command[0]} not found: Slurm's client commands are not installed here. Run this "
            "on your cluster's login node (or start the test cluster: .ci/slurm-cluster.sh start)."
        ) from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"`{shlex.join(command)}` did not answer within 60 s.") from None
    if check and result.returncode != 0:
        raise SlurmError(f"`{shlex.join(command)}` failed: {result.stderr.strip()}")
    return result


def reachable() -> str | None:
    """``None`` if a Slurm controller answers here, else why not (for messages and skips)."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "Slurm's client commands (sinfo, sbatch) are not installed"
    try:
        result = _slurm("sinfo", "-h", "-o", "%T", check=False)
    except SlurmError as error:
        return str(error)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"sinfo exited with {result.returncode}"]
        return f"no Slurm controller answers ({lines[-1]})"
    if not result.stdout.strip():
        return "the Slurm cluster has no nodes"
    return None


def _sbatch(arguments: list[str], cwd: Path, what: str, section: str, script: str = "") -> str:
    """``sbatch --parsable`` with ``arguments`` (and ``script`` on stdin); the job id. A refusal
    names ``what`` was refused and the ``section`` of the configuration that set its options."""
    result = subprocess.run(
        ["sbatch", "--parsable", *arguments],
        input=script or None,
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )
    if result.returncode != 0:
        raise SlurmError(
            f"sbatch refused {what} ({shlex.join(arguments)}): {result.stderr.strip()}. "
            f"Check {section} in {CONFIG_FILE} (or ${CONFIG_ENV})."
        )
    return result.stdout.strip().split(";")[0]


def submit(options: list[str], command: list[str], cwd: Path) -> str:
    """``sbatch --parsable`` a job running ``command``; returns the job id."""
    script = "#!/bin/sh\nexec " + shlex.join(command) + "\n"
    return _sbatch(options, cwd, "the job", "the settings", script)


def active_jobs(job_ids: Iterable[str]) -> set[str]:
    """The jobs of ``job_ids`` (array jobs by their id) that have not finished."""
    ids = list(job_ids)
    if not ids:
        return set()
    result = _slurm("squeue", "-h", "-j", ",".join(ids), "-o", "%F %i %T", check=False)
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:
            return set()  # all of them finished and were purged
        raise SlurmError(f"squeue failed: {result.stderr.strip()}")
    running = set()
    for line in result.stdout.splitlines():
        array_id, job_id, state = line.split()
        if state in ACTIVE_STATES:
            running.add(array_id if array_id in ids else job_id)
    return running


def wait(job_ids: Iterable[str], tick: callable | None = None) -> None:
    """Poll ``squeue`` until every job of ``job_ids`` has finished."""
    pending = set(job_ids)
    while pending:
        if tick is not None:
            tick()
        time.sleep(POLL_SECONDS)
        pending = active_jobs(pending)


def task_states(array_id: str) -> dict[int, tuple[str, str]]:
    """Array task index -> (Slurm end state, its details) of the tasks Slurm still knows.

    From ``sacct`` where the cluster keeps accounting, else from ``scontrol`` (which forgets
    finished jobs after ``MinJobAge``, 300 s by default).
    """
    states: dict[int, tuple[str, str]] = {}
    result = _slurm("scontrol", "-o", "show", "job", array_id, check=False)
    for line in result.stdout.splitlines() if result.returncode == 0 else []:
        info = dict(part.split("=", 1) for part in line.split() if "=" in part)
        index = info.get("ArrayTaskId", "")
        if index.isdigit():
            details = f"exit code {info.get('ExitCode', '?')} on {info.get('NodeList', '?')}"
            states[int(index)] = (info.get("JobState", "UNKNOWN"), details)
    if shutil.which("sacct"):
        result = _slurm(
            "sacct",
            "-n",
            "-P",
            "-X",
            "-j",
            array_id,
            "-o",
            "JobID,State,ExitCode,NodeList",
            check=False,
        )
        for line in result.stdout.splitlines() if result.returncode == 0 else []:
            job, state, code, node = (line.split("|") + ["", "", "", ""])[:4]
            index = job.rpartition("_")[2]
            if index.isdigit() and int(index) not in states:
                states[int(index)] = (state.split()[0], f"exit code {code} on {node}")
    return states


# --- The course models job --------------------------------------------------------------------


def submit_training(course: Course, config: SlurmConfig) -> str:
    """Submit ``slurm/train_course_models.sbatch`` with the ``[train]`` resources."""
    script = course.root / TRAIN_SCRIPT
    if not script.is_file():
        raise SlurmError(f"{script} not found: the course's training job script.")
    logs = course.root / ".cache" / "slurm"
    logs.mkdir(parents=True, exist_ok=True)
    options = [f"--output={logs / 'course-models-%j.out'}", *config.train_options()]
    return _sbatch([*options, str(script)], course.root, script.name, "[train]")


# --- Grading a class as a job array -----------------------------------------------------------


@dataclass
class Handin:
    """One hand-in of a run: what the checks before grading found, and its result file."""

    index: int
    student: str
    assignment: str
    folder: str
    runnable: list[str]  # notebooks that passed the checks and are run
    notes: dict[str, str]  # notebook -> why it scores 0 without running


@dataclass
class Plan:
    """A run of ``grade --slurm``, written to ``<run>/plan.json`` for the tasks and collector."""

    root: str
    limits: dict
    course_models: str | None
    handins: list[Handin]
    handins_per_task: int
    snapshot: dict[str, str]
    csv: str
    time: str = ""
    mem: str = ""
    failures: list[str] = field(default_factory=list)  # before anything was submitted
    array_id: str = ""
    collect_id: str = ""
    verbose: bool = False

    @property
    def to_run(self) -> list[Handin]:
        return [handin for handin in self.handins if handin.runnable]

    @property
    def tasks(self) -> int:
        return math.ceil(len(self.to_run) / self.handins_per_task)

    def batch(self, task: int) -> list[Handin]:
        """The hand-ins that array task ``task`` grades."""
        size = self.handins_per_task
        return self.to_run[task * size : (task + 1) * size]

    def task_of(self, handin: Handin) -> int:
        return self.to_run.index(handin) // self.handins_per_task

    def write(self, run: Path) -> None:
        _write_json(run / "plan.json", asdict(self))

    @classmethod
    def read(cls, run: Path) -> Plan:
        data = json.loads((Path(run) / "plan.json").read_text(encoding="utf-8"))
        data["handins"] = [Handin(**handin) for handin in data["handins"]]
        return cls(**data)


def _write_json(path: Path, data: object) -> None:
    """Write ``data`` to ``path`` atomically: a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    partial.write_text(json.dumps(data), encoding="utf-8")
    partial.replace(path)


def _result_file(run: Path, handin: Handin) -> Path:
    return Path(run) / "results" / f"{handin.index}.json"


def plan_class(course: Course, config: SlurmConfig, limits: Limits, csv: Path) -> Plan:
    """Everything ``make grade`` does before a notebook runs, on the submitting machine."""
    submissions = find_submissions(course)
    cells = assignment_cells(course)
    snapshot = snapshot_sources(course)
    failures, registered = [], set()
    for assignment in sorted({submission.assignment for submission in submissions}):
        try:
            register(course, assignment)
            registered.add(assignment)
        except GradingError as error:
            failures.append(str(error))
    course_models = prepare_course_models(course)
    handins = []
    for submission in submissions:
        if submission.assignment not in registered:
            continue
        runnable, notes = check_submission(course, submission, cells)
        handins.append(
            Handin(
                index=len(handins),
                student=submission.student,
                assignment=submission.assignment,
                folder=str(submission.folder),
                runnable=[str(path) for path in runnable],
                notes=notes,
            )
        )
    notebooks = max((len(course.source_notebooks(a)) for a in registered), default=1)
    return Plan(
        root=str(course.root),
        limits=asdict(limits),
        course_models=str(course_models) if course_models else None,
        handins=handins,
        handins_per_task=config.grade.handins_per_task,
        snapshot=snapshot,
        csv=str(csv),
        time=config.grade_time(limits.notebook_timeout, notebooks),
        mem=config.grade_mem(limits.memory_mb),
        failures=failures,
    )


@dataclass
class SlurmRun:
    """A submitted ``grade --slurm``: its folder, jobs and, once collected, its result."""

    folder: Path
    plan: Plan
    result: AutogradeResult | None = None


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
    the CSV is written, with the :class:`AutogradeResult` of the run; otherwise right after
    submitting the array and the collecting job.
    """
    why = reachable()
    if why:
        raise SlurmError(f"cannot grade on Slurm: {why}.")
    csv = Path(csv).resolve() if csv is not None else course.root / "grades.csv"
    plan = plan_class(course, config, limits, csv)
    plan.verbose = verbose
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = course.root / config.grade.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    run = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=workdir))
    # Private to the grader: the run holds a gradebook copy with the hidden tests, and the
    # kernels run as sandbox users where the grader is root.
    os.chmod(run, 0o700)
    (run / "results").mkdir()
    (run / "logs").mkdir()
    shutil.copyfile(gradebook_file(course), run / "gradebook.db")
    python = [sys.executable, "-m", "grading.slurm", "--root", str(course.root)]
    if plan.tasks:
        limit = f"%{config.grade.max_running}" if config.grade.max_running else ""
        plan.array_id = submit(
            [
                "--job-name=xnn-grade",
                f"--array=0-{plan.tasks - 1}{limit}",
                f"--output={run / 'logs' / 'task-%A_%a.out'}",
                *config._common(config.grade.partition),
                f"--time={plan.time}",
                f"--mem={plan.mem}",
                f"--cpus-per-task={config.grade.cpus_per_task}",
            ],
            [*python, "task", str(run)],
            course.root,
        )
    plan.write(run)
    dependency = [f"--dependency=afterany:{plan.array_id}"] if plan.array_id else []
    plan.collect_id = submit(
        [
            "--job-name=xnn-grade-collect",
            *dependency,
            "--kill-on-invalid-dep=no",
            f"--output={run / 'logs' / 'collect-%j.out'}",
            *config._common(config.grade.partition),
            f"--time={_slurm_minutes(1800 + 10 * len(plan.handins))}",
            "--mem=4G",
            "--cpus-per-task=1",
        ],
        [*python, "collect", str(run)],
        course.root,
    )
    plan.write(run)
    log.info(
        "submitted array job %s (%d tasks) and collecting job %s; run folder %s",
        plan.array_id or "-",
        plan.tasks,
        plan.collect_id,
        run,
    )
    slurm_run = SlurmRun(folder=run, plan=plan)
    if not wait_for_end:
        return slurm_run
    bar = tqdm(
        total=len(plan.handins), desc="grading on Slurm", unit="hand-in", disable=not progress
    )
    done = len(plan.handins) - len(plan.to_run)

    def tick() -> None:
        finished = done + len(list((run / "results").glob("*.json")))
        bar.update(finished - bar.n)

    try:
        wait([job for job in (plan.array_id, plan.collect_id) if job], tick)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"\nstopped waiting; the jobs go on, and job {plan.collect_id} records the scores "
            "(`squeue --me` shows them; `python -m grading report` prints the table after).",
            file=sys.stderr,
        )
        raise
    tick()
    bar.close()
    if not (run / "collected.json").is_file():
        state = _job_state(plan.collect_id)
        log.warning(
            "the collecting job %s ended %s without recording the scores; recording them here",
            plan.collect_id,
            state[0],
        )
    slurm_run.result = collect(course, run)
    return slurm_run


class _Stopped(Exception):
    """Slurm is stopping the task (time limit, scancel, preemption)."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopped(signal.Signals(signum).name)


def run_task(run: Path, task: int) -> int:
    """Array task ``task``: grade its hand-ins, one result file each (never the gradebook)."""
    plan = Plan.read(run)
    course = Course(Path(plan.root))
    limits = Limits(**plan.limits)
    # Without task affinity, torch would start a thread per core of the node in every task.
    os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("SLURM_CPUS_PER_TASK", "1"))
    signal.signal(signal.SIGTERM, _stop)
    where = f"Slurm task {os.environ.get('SLURM_JOB_ID', '?')} on {socket.gethostname()}"
    base = Path(tempfile.mkdtemp(prefix="grading-slurm-"))
    os.chmod(base, 0o711)  # sandbox users reach their own folder, but cannot list others
    batch = plan.batch(task)
    try:
        for position, handin in enumerate(batch):
            target = _result_file(run, handin)
            if target.is_file():  # graded before Slurm requeued the task
                continue
            try:
                outcome = grade_submission(
                    course,
                    Submission(handin.student, handin.assignment, Path(handin.folder)),
                    [Path(path) for path in handin.runnable],
                    dict(handin.notes),
                    base,
                    run / "gradebook.db",
                    Path(plan.course_models) if plan.course_models else None,
                    limits,
                    plan.verbose,
                    threads_per_handin(1),  # the task's cores, as set above
                )
            except _Stopped as stopped:
                for left in batch[position:]:
                    _write_json(_result_file(run, left), _stopped_result(left, str(stopped)))
                print(f"{where}: stopped by Slurm ({stopped})", file=sys.stderr)
                return 1
            except Exception as error:  # noqa: BLE001 -- recorded as a 0 with its reason
                outcome = Outcome(
                    Submission(handin.student, handin.assignment, Path(handin.folder)),
                    {},
                    {
                        **handin.notes,
                        **{
                            Path(path).name: f"the grader could not run this notebook: {error}"
                            for path in handin.runnable
                        },
                    },
                    f"grading {handin.folder} failed in {where}: {error!r}",
                )
            _write_json(target, _result(outcome, where))
            print(f"{where}: graded {handin.student}/{handin.assignment}", file=sys.stderr)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def _result(outcome: Outcome, where: str) -> dict:
    return {
        "executed": {name: nbformat.writes(nb) for name, nb in outcome.executed.items()},
        "notes": outcome.notes,
        "failure": outcome.failure,
        "where": where,
        "stopped": None,
    }


def _stopped_result(handin: Handin, signal_name: str) -> dict:
    reason = f"Slurm stopped the task ({signal_name}: its time limit, scancel or preemption)"
    return {
        "executed": {},
        "notes": {**handin.notes, **{Path(p).name: reason for p in handin.runnable}},
        "failure": None,
        "where": "",
        "stopped": signal_name,
    }


def _missing_reason(plan: Plan, handin: Handin, states: dict[int, tuple[str, str]]) -> str:
    """Why the hand-in has no result, from what Slurm says about its task."""
    task = plan.task_of(handin)
    log_file = f"task-{plan.array_id}_{task}.out"
    state, details = states.get(task, ("", ""))
    if not state:
        return (
            f"its Slurm task {plan.array_id}_{task} ended without a result (failed, out of "
            f"time or cancelled; Slurm no longer knows which); see logs/{log_file}"
        )
    why = STATE_REASONS.get(state, f"the Slurm task ended {state}")
    why = why.format(time=plan.time, mem=plan.mem)
    return f"{why} ({plan.array_id}_{task}, {details}); see logs/{log_file}"


def collect(course: Course, run: Path) -> AutogradeResult:
    """Record every hand-in of the run in the gradebook, write feedback and the CSV.

    A hand-in without a result file gets 0 for every notebook with the reason Slurm gives for
    its task. Runs once per run (a second call reads back what the first recorded).
    """
    run = Path(run)
    with open(run / "collect.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = run / "collected.json"
        if not done.is_file():
            _write_json(done, _collect(course, run))
    data = json.loads(done.read_text(encoding="utf-8"))
    plan = Plan.read(run)
    submissions = [Submission(h.student, h.assignment, Path(h.folder)) for h in plan.handins]
    return AutogradeResult(
        submissions=submissions,
        notes={tuple(key.split("/", 1)): notes for key, notes in data["notes"].items()},
        failures=data["failures"],
        graded=submissions,
    )


def _collect(course: Course, run: Path) -> dict:
    plan = Plan.read(run)
    failures = list(plan.failures)
    states: dict[int, tuple[str, str]] | None = None
    guard = GradebookGuard(gradebook_file(course))
    notes_by_handin = {}
    for handin in plan.handins:
        submission = Submission(handin.student, handin.assignment, Path(handin.folder))
        result_file = _result_file(run, handin)
        if not handin.runnable:
            executed, notes, failure = {}, dict(handin.notes), None
        elif result_file.is_file():
            result = json.loads(result_file.read_text(encoding="utf-8"))
            executed = {k: nbformat.reads(v, as_version=4) for k, v in result["executed"].items()}
            notes, failure = result["notes"], result["failure"]
            if result["stopped"]:
                states = states if states is not None else task_states(plan.array_id)
                reason = _missing_reason(plan, handin, states)
                if plan.task_of(handin) in states:
                    notes = {**notes, **{Path(p).name: reason for p in handin.runnable}}
        else:
            states = states if states is not None else task_states(plan.array_id)
            reason = _missing_reason(plan, handin, states)
            executed, failure = {}, None
            notes = {**handin.notes, **{Path(p).name: reason for p in handin.runnable}}
        problem = guard.check(f"while recording {handin.folder}")
        if problem:
            failures.append(problem)
        record(course, submission, executed, notes)
        guard.wrote()
        notes_by_handin[f"{handin.student}/{handin.assignment}"] = notes
        if failure:
            failures.append(failure)
    try:
        write_feedback(course, [(h.student, h.assignment) for h in plan.handins])
    except GradingError as error:  # the scores are recorded; only feedback is missing
        failures.append(str(error))
    problem = guard.check("after recording")
    if problem:
        failures.append(problem)
    after = snapshot_sources(course)
    changed = sorted(
        p for p in set(plan.snapshot) | set(after) if plan.snapshot.get(p) != after.get(p)
    )
    if changed:
        failures.append(
            "files that only the instructor may change were changed while grading: "
            + ", ".join(changed)
        )
    write_csv(collect_grades(course), Path(plan.csv))
    return {"notes": notes_by_handin, "failures": failures}


# --- Command line -----------------------------------------------------------------------------


def _train(args: argparse.Namespace) -> int:
    course = Course(args.root)
    config = SlurmConfig.for_course(course, args.config)
    why = reachable()
    if why:
        raise SlurmError(f"cannot submit the training job: {why}.")
    job = submit_training(course, config)
    print(f"submitted job {job}: {TRAIN_SCRIPT} ({shlex.join(config.train_options())})")
    print(f"its log: {course.root / '.cache' / 'slurm' / f'course-models-{job}.out'}")
    if not args.wait:
        return 0
    wait([job])
    state = task_states(job).get(-1) or _job_state(job)
    print(f"job {job}: {state[0]} ({state[1]})")
    return 0 if state[0] == "COMPLETED" else 1


def _job_state(job: str) -> tuple[str, str]:
    """(end state, details) of a plain (not array) job."""
    result = _slurm("scontrol", "-o", "show", "job", job, check=False)
    info = dict(part.split("=", 1) for part in result.stdout.split() if "=" in part)
    if "JobState" in info:
        return info["JobState"], f"exit code {info.get('ExitCode', '?')}"
    if shutil.which("sacct"):
        out = _slurm("sacct", "-n", "-P", "-X", "-j", job, "-o", "State,ExitCode", check=False)
        for line in out.stdout.splitlines():
            state, code = (line.split("|") + [""])[:2]
            return state.split()[0], f"exit code {code}"
    return "UNKNOWN", "Slurm no longer knows the job"


def add_arguments(step: argparse.ArgumentParser) -> None:
    """The options of ``python -m grading grade`` for grading on Slurm."""
    step.add_argument(
        "--slurm",
        action="store_true",
        help="grade as a Slurm job array (settings: slurm/config.toml; --jobs does not apply)",
    )
    step.add_argument(
        "--slurm-config",
        type=Path,
        default=None,
        help=f"with --slurm: the Slurm settings (default: ${CONFIG_ENV} or {CONFIG_FILE})",
    )
    step.add_argument(
        "--no-wait",
        action="store_true",
        help="with --slurm: return once submitted; a Slurm job records the scores at the end",
    )


def grade_command(
    course: Course,
    args: argparse.Namespace,
    limits: Limits,
    report: Callable[[Course, Path | None], None],
) -> int:
    """``python -m grading grade --slurm``: grade, then print the table like ``make grade``."""
    config = SlurmConfig.for_course(course, args.slurm_config)
    try:
        run = grade_on_slurm(
            course,
            config,
            limits,
            csv=args.csv,
            wait_for_end=not args.no_wait,
            progress=not args.no_progress,
            verbose=args.verbose,
        )
    except KeyboardInterrupt:
        return 130
    plan = run.plan
    print(
        f"Slurm: array job {plan.array_id or '-'} ({plan.tasks} tasks, --time={plan.time} "
        f"--mem={plan.mem}), collecting job {plan.collect_id}; run folder {run.folder}",
        file=sys.stderr,
    )
    if run.result is None:
        print(f"submitted; the scores will be in {plan.csv} once job {plan.collect_id} ends")
        return 0
    report(course, args.csv)
    for failure in run.result.failures:
        print(f"\nerror: {failure}", file=sys.stderr)
    return 0 if run.result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grading.slurm",
        description="The course's Slurm jobs (grading a class: python -m grading grade --slurm).",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="course root (default: %(default)s)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"Slurm configuration (default: ${CONFIG_ENV} or {CONFIG_FILE})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="submit the job that trains the course models")
    train.add_argument("--wait", action="store_true", help="wait for the job to end")
    task = commands.add_parser("task", help="(run by Slurm) grade one array task's hand-ins")
    task.add_argument("run", type=Path, help="the run's folder")
    collecting = commands.add_parser(
        "collect", help="(run by Slurm) record a run's results in the gradebook"
    )
    collecting.add_argument("run", type=Path, help="the run's folder")
    args = parser.parse_args(argv)
    # As `python -m grading`: nbgrader's log and SQLAlchemy's autoflush warnings stay out of
    # the jobs' logs; problems are reported by the grader itself.
    LOG.setLevel(logging.ERROR)
    LOG.propagate = False
    warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "task":
            return run_task(args.run, int(os.environ["SLURM_ARRAY_TASK_ID"]))
        if args.command == "collect":
            result = collect(Course(args.root), args.run)
            print(f"recorded {len(result.submissions)} hand-ins of {args.run}")
            for failure in result.failures:
                print(f"error: {failure}", file=sys.stderr)
            return 0 if result.ok else 1
    except GradingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
