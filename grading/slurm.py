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
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

from .course import Course, GradingError

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
#: Sandbox slots of array tasks start here, apart from those of a local ``make grade``.
FIRST_SLOT = 100


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


def submit(options: list[str], command: list[str], cwd: Path) -> str:
    """``sbatch --parsable`` a job running ``command``; returns the job id."""
    script = "#!/bin/sh\nexec " + shlex.join(command) + "\n"
    result = subprocess.run(
        ["sbatch", "--parsable", *options],
        input=script,
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )
    if result.returncode != 0:
        raise SlurmError(
            f"sbatch refused the job ({shlex.join(options)}): {result.stderr.strip()}. "
            f"Check the settings in {CONFIG_FILE} (or ${CONFIG_ENV})."
        )
    return result.stdout.strip().split(";")[0]


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
    result = subprocess.run(
        [
            "sbatch",
            "--parsable",
            f"--output={logs / 'course-models-%j.out'}",
            *config.train_options(),
            str(script),
        ],
        capture_output=True,
        text=True,
        cwd=course.root,
        check=False,
    )
    if result.returncode != 0:
        raise SlurmError(
            f"sbatch refused {script.name} ({shlex.join(config.train_options())}): "
            f"{result.stderr.strip()}. Check [train] in {CONFIG_FILE} (or ${CONFIG_ENV})."
        )
    return result.stdout.strip().split(";")[0]


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
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
    except GradingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
