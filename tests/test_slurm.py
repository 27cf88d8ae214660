"""The course's Slurm jobs, against a real Slurm cluster (grading/slurm.py, slurm/).

The tests that submit jobs need a cluster that answers here: CI starts a one-node one with
``.ci/slurm-cluster.sh start`` (as root). Where none is reachable (a student's laptop) they
skip and say so; with ``CI=true`` they fail instead, so CI never goes green without them.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

# The grader's own class and corpus (tests/test_grading.py), so that both test the same class.
from test_grading import (
    CORPUS_ASSIGNMENT,
    LINGERS,
    MIXED,
    SMALL_LIMITS,
    MixedClass,
    _parts,
    first_cell,
    limit_args,
    mixed_class_course,
    new_course,
    write_hand_in,
)

from grading import Course, GradeRow, Limits, collect_grades, release_all
from grading.__main__ import main
from grading.autograde import gradebook_dump
from grading.course import read_json
from grading.slurm import (
    SlurmConfig,
    SlurmError,
    SlurmRun,
    active_jobs,
    collect,
    grade_on_slurm,
    reachable,
)

REPO = Path(__file__).resolve().parent.parent
#: Where .ci/slurm-cluster.sh keeps the test cluster's slurm.conf by default.
TEST_CLUSTER_CONF = Path(os.environ.get("TMPDIR", "/tmp")) / "xnn-slurm" / "slurm.conf"


@pytest.fixture(scope="module")
def slurm() -> None:
    """A Slurm cluster that takes jobs, or a skip (a failure in CI) saying why there is none."""
    if "SLURM_CONF" not in os.environ and not Path("/etc/slurm/slurm.conf").is_file():
        if TEST_CLUSTER_CONF.is_file():  # started by hand without exporting SLURM_CONF
            os.environ["SLURM_CONF"] = str(TEST_CLUSTER_CONF)
    why = reachable()
    if why is None:
        return
    message = (
        f"no Slurm cluster reachable here: {why}. Start the one-node test cluster as root with "
        '`eval "$(.ci/slurm-cluster.sh start)"` (CI\'s .ci/run does), or run on a login node.'
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: the Slurm tests must run in CI)")
    pytest.skip(message)


def _configured(root: Path, *settings: str) -> Course:
    """A copy of the course in ``root`` whose nbgrader_config.py sets ``c.Slurm.<setting>``."""
    course = new_course(root)
    with open(course.config_file, "a", encoding="utf-8") as config:
        config.writelines(f"\nc.Slurm.{setting}\n" for setting in settings)
    return course


# --- Configuration (no cluster needed) --------------------------------------------------------


def test_course_config_reads_with_documented_defaults() -> None:
    config = SlurmConfig.of(Course(REPO))
    assert (config.partition, config.account, config.extra) == ("", "", [])
    assert config.handins_per_task == 1 and config.time == config.mem == "auto"
    assert config.options() == []


def test_grade_resources_follow_the_grader_limits(tmp_path: Path) -> None:
    """The array task's time and memory follow from the limits of nbgrader_config.py."""
    settings = ['partition = "cpu"', 'account = "xnn"', 'extra = ["--qos=short"]']
    course = _configured(tmp_path, *settings, "handins_per_task = 3", "cpus_per_task = 4")
    limits = Limits.of(course, notebook_timeout=600, memory_mb=4096)
    # 3 hand-ins of one notebook of 10 minutes each, each with the grader's margin (2 minutes).
    assert limits.margin == 120 and limits.memory_margin_mb == 2048
    assert SlurmConfig.of(course).array_options(limits, notebooks=1) == [
        "--partition=cpu",
        "--account=xnn",
        "--qos=short",
        "--time=0-00:36:00",
        "--mem=6144M",
        "--cpus-per-task=4",
    ]


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("handins = 2", "c.Slurm.handins is not a setting"),
        ('cpus_per_task = "two"', "c.Slurm.cpus_per_task must be a number, at least 0, not 'two'"),
        ("handins_per_task = 0", "c.Slurm.handins_per_task must be a number, at least 1, not 0"),
        ('extra = "--qos=x"', "c.Slurm.extra must be a list of texts"),
        ("extra = [1]", "c.Slurm.extra must be a list of texts"),
        ("max_running = True", "c.Slurm.max_running must be a number"),
    ],
)
def test_bad_config_is_an_error_naming_file_and_key(
    tmp_path: Path, setting: str, named: str
) -> None:
    course = _configured(tmp_path, setting)
    with pytest.raises(SlurmError, match=str(course.config_file)) as error:
        SlurmConfig.of(course)
    assert named in str(error.value)


# --- The course models job --------------------------------------------------------------------


def test_training_job_fills_the_course_cache(slurm: None, tmp_path: Path) -> None:
    """slurm/train_course_models.sbatch trains (or loads) every course model on a node.

    It runs on the course's own course cache, as CI's other tests use it, so that no course
    model trains twice in one test run; the test cluster has no GPU, one core and little memory
    to spare, so the job asks for that instead of the script's own resources.
    """
    from lib import train

    cache = Path(os.environ.get(train.COURSE_CACHE_DIR_ENV) or REPO / ".cache" / "models")
    log = tmp_path / "train.out"
    done = subprocess.run(
        [
            "sbatch",
            "--wait",
            "--cpus-per-task=1",
            "--mem=2G",
            f"--output={log}",
            str(REPO / "slurm" / "train_course_models.sbatch"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env={**os.environ, train.COURSE_CACHE_DIR_ENV: str(cache), "XNN_PYTHON": sys.executable},
        cwd=REPO,
        check=False,
        timeout=1800,
    )
    text = log.read_text(encoding="utf-8") if log.is_file() else ""
    assert done.returncode == 0, done.stdout + done.stderr + text
    assert f"course cache: {cache}" in text
    names = list(train.course_models())
    ready = [line.split(":")[0] for line in text.splitlines() if ": ready in " in line]
    assert ready == ["lib.data.load_mnist", *names], text  # MNIST decoded, then the models
    assert any(cache.glob("mnist-*.npz")), f"the job left no decoded MNIST in {cache}"
    if names:
        assert any(cache.glob("*.pt")), f"the job left no model in {cache}"
    else:
        assert "no course models are registered" in text


# --- Grading a class through the cluster ------------------------------------------------------

#: Settings of the test cluster's jobs: one core per task, so that two tasks share the node.
TEST_CONFIG = "\nc.Slurm.cpus_per_task = 1\n"

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.grading,
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def on_slurm(slurm: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Course, int]:
    """The mixed class of tests/test_grading.py, graded through the cluster."""
    if CORPUS_ASSIGNMENT not in Course(REPO).source_assignments():
        pytest.skip(f"the grader's corpus needs the assignment {CORPUS_ASSIGNMENT}")
    course, _ = mixed_class_course(tmp_path_factory.mktemp("slurm"))
    with open(course.config_file, "a", encoding="utf-8") as config:
        config.write(TEST_CONFIG)
    args = ["--root", str(course.root), "grade", "--slurm"]
    status = main([*args, "--no-progress", *limit_args()])
    solved = {row.student: row for row in collect_grades(course)}.get("solved")
    assert solved is not None and solved.auto_score == solved.auto_max_score, (
        f"the solved exercise lost points when graded through Slurm ({solved}): is the "
        f"machine too busy for {SMALL_LIMITS['cell_timeout']:g} s per cell?"
    )
    return course, status


def test_class_grades_on_slurm_as_locally(on_slurm, mixed_class: MixedClass) -> None:
    """The same class, graded here (tests/test_grading.py) and through Slurm: the same scores
    per cell, the same reasons (the limit hit, the dead kernel, the broken file), the same CSV."""
    course, status = on_slurm
    assert status == 0, "grading through Slurm failed"
    assert mixed_class.status == 0, "grading here failed"
    expected = {(row.student, row.assignment): row for row in collect_grades(mixed_class.course)}
    got = {(row.student, row.assignment): row for row in collect_grades(course)}
    assert set(got) == set(expected) == {(s, CORPUS_ASSIGNMENT) for s in MIXED}
    # Every field of every row alike (the cells' scores, the reasons), each difference named.
    differ = [
        f"{key[0]}.{name}: through Slurm {getattr(got[key], name)!r}, "
        f"here {getattr(expected[key], name)!r}"
        for key in sorted(got)
        for name in (field.name for field in dataclasses.fields(GradeRow))
        if getattr(got[key], name) != getattr(expected[key], name)
    ]
    assert not differ, "graded differently through Slurm:\n" + "\n".join(differ)
    solved = got[("solved", CORPUS_ASSIGNMENT)]
    assert solved.auto_score == solved.auto_max_score > 0
    for student in MIXED.keys() - {"solved"}:
        row = got[(student, CORPUS_ASSIGNMENT)]
        assert row.auto_score == 0 and row.reasons, f"{student}: {row}"
    assert _csv(course.root / "grades.csv") == _csv(mixed_class.course.root / "grades.csv")


def _run(course: Course) -> SlurmRun:
    (folder,) = (course.root / SlurmConfig.of(course).workdir).iterdir()
    return read_json(folder / "run.json", SlurmRun)


def test_every_hand_in_ran_in_its_own_array_task(on_slurm) -> None:
    course, _ = on_slurm
    run = _run(course)
    runnable = sorted(run.plan.submissions[index].student for index in run.to_run)
    assert runnable == sorted(s for s in MIXED if s != "invalid_json")
    assert run.tasks == len(runnable) and run.array_id and run.collect_id
    # One outcome per hand-in that ran, each graded by its own task (its log says which); the
    # broken notebook never reached the cluster, and the collecting job recorded everything.
    assert len(list((run.folder / "results").glob("*.json"))) == len(runnable)
    graded = []
    for task in range(run.tasks):
        log = (run.folder / "logs" / f"task-{run.array_id}_{task}.out").read_text()
        graded += [line.rsplit("graded ", 1)[1] for line in log.splitlines() if ": graded " in line]
    assert sorted(graded) == [f"{s}/{CORPUS_ASSIGNMENT}" for s in runnable]
    assert (run.folder / "collected.json").is_file()
    assert (run.folder / "logs" / f"collect-{run.collect_id}.out").is_file()


def test_gradebook_consistent_after_slurm(on_slurm) -> None:
    """Recorded once, by the collecting job: collecting the run again records nothing more, and
    the feedback of each hand-in says what the table says."""
    course, _ = on_slurm
    before = gradebook_dump(course.gradebook)
    assert collect(course, _run(course).folder).ok
    assert gradebook_dump(course.gradebook) == before
    for row in collect_grades(course):
        summary = course.feedback_dir / row.student / row.assignment / "summary.txt"
        assert summary.is_file(), f"no feedback for {row.student}"
        for reason in row.reasons:
            assert reason.split(": ", 1)[1] in summary.read_text(encoding="utf-8")


def test_stopped_tasks_score_zero_with_the_reason_and_leave_nothing(
    slurm: None, tmp_path: Path
) -> None:
    """A task that Slurm stops (its time limit; scancel) is a 0 with Slurm's reason, not a gap;
    the dependent collecting job records it without the submitting command waiting; and no
    process of the task survives it, not even one the hand-in started in a session of its own."""
    if CORPUS_ASSIGNMENT not in Course(REPO).source_assignments():
        pytest.skip(f"the grader's corpus needs the assignment {CORPUS_ASSIGNMENT}")
    course = _configured(tmp_path / "course", "cpus_per_task = 1", 'time = "00:01:00"')
    release_all(course)
    source_path = course.source_notebooks(CORPUS_ASSIGNMENT)[0]
    nb = first_cell(LINGERS)(_parts(course, CORPUS_ASSIGNMENT, source_path))
    for student in ("timed_out", "cancelled"):
        write_hand_in(course, student, CORPUS_ASSIGNMENT, source_path.name, nb)
    run = grade_on_slurm(course, Limits.of(course, cell_timeout=600), wait_for_end=False,
                         progress=False)  # fmt: skip
    assert run.result is None and run.tasks == 2
    cancelled = (
        f"{run.array_id}_{[run.plan.submissions[i].student for i in run.to_run].index('cancelled')}"
    )
    deadline = time.monotonic() + 600

    def job_processes() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter():
            try:
                if process.environ().get("SLURM_ARRAY_JOB_ID") == run.array_id:
                    found.append(process)
            except psutil.Error:
                continue
        return found

    while not any(p.name() == "sleep" for p in job_processes()):
        assert time.monotonic() < deadline, "the hand-ins did not start"
        time.sleep(0.5)
    subprocess.run(["scancel", cancelled], check=True)
    while active_jobs([run.array_id, run.collect_id]):
        assert time.monotonic() < deadline, "the collecting job did not end"
        time.sleep(0.5)
    left = [(p.pid, p.name()) for p in job_processes()]
    assert not left, f"processes of the array job outlived it: {left}"
    rows = {row.student: row for row in collect_grades(course)}
    assert set(rows) == {"timed_out", "cancelled"}
    for student, why in (
        ("timed_out", "ran out of time (sbatch --time="),
        ("cancelled", "cancelled"),
    ):
        (reason,) = rows[student].reasons
        assert rows[student].auto_score == 0
        assert why in reason and run.array_id in reason, reason
    assert {line["student"] for line in _csv(course.root / "grades.csv")} == set(rows)
