"""The course's Slurm jobs, against a real Slurm cluster (grading/slurm.py, slurm/).

The tests that submit jobs need a cluster that answers here: CI starts a one-node one with
``.ci/slurm-cluster.sh start`` (as root). Where none is reachable (a student's laptop) they
skip and say so; with ``CI=true`` they fail instead, so CI never goes green without them.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The grader's own corpus of hand-ins (tests/test_grading.py), so that both test the same class.
from test_grading import (
    CORPUS,
    CORPUS_ASSIGNMENT,
    LIMIT_CORPUS,
    _parts,
    new_course,
    write_hand_in,
)

from grading import Course, collect_grades, release_all
from grading.__main__ import main
from grading.sandbox import Limits
from grading.slurm import (
    CONFIG_FILE,
    GradeResources,
    Plan,
    SlurmConfig,
    SlurmError,
    active_jobs,
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


def _write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- Configuration (no cluster needed) --------------------------------------------------------


def test_course_config_reads_with_documented_defaults() -> None:
    config = SlurmConfig.load(REPO / CONFIG_FILE)
    assert config.grade == GradeResources()
    assert config.train.gres == "gpu:1"
    assert "--gres=gpu:1" in config.train_options()
    assert not any(option.startswith("--partition") for option in config.train_options())


def test_grade_resources_follow_the_grader_limits(tmp_path: Path) -> None:
    path = _write_config(
        tmp_path / "c.toml",
        '[cluster]\npartition = "cpu"\naccount = "xnn"\nextra = ["--qos=short"]\n'
        '[grade]\nhandins_per_task = 3\ncpus_per_task = 4\n[train]\npartition = "gpu"\n',
    )
    config = SlurmConfig.load(path)
    options = config.grade_options(notebook_timeout=600, memory_mb=4096, notebooks=1)
    # 3 hand-ins of 10 minutes each, and 5 minutes to spare.
    assert options == [
        "--partition=cpu",
        "--account=xnn",
        "--qos=short",
        "--time=0-00:35:00",
        "--mem=6144M",
        "--cpus-per-task=4",
    ]
    assert "--partition=gpu" in config.train_options()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[grade]\nhandins = 2\n", "unknown key 'handins' in [grade]"),
        ('[grade]\ncpus_per_task = "two"\n', "cpus_per_task must be a int"),
        ("[grade]\nhandins_per_task = 0\n", "handins_per_task must be at least 1"),
        ('[cluster]\nextra = "--qos=x"\n', "extra must be a list"),
        ("[gpu]\n", "unknown section [gpu]"),
        ("[grade\n", "not valid TOML"),
    ],
)
def test_bad_config_is_an_error_naming_file_and_key(tmp_path: Path, text: str, named: str) -> None:
    path = _write_config(tmp_path / "bad.toml", text)
    with pytest.raises(SlurmError, match="bad.toml") as error:
        SlurmConfig.load(path)
    assert named in str(error.value)


def test_missing_config_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SlurmError, match="nowhere.toml not found"):
        SlurmConfig.for_course(Course(REPO), tmp_path / "nowhere.toml")


# --- The course models job --------------------------------------------------------------------


def test_training_job_fills_the_course_cache(slurm: None, tmp_path: Path) -> None:
    """slurm/train_course_models.sbatch trains (or loads) every course model on a node.

    It runs on the course's own course cache, as CI's other tests use it, so that no course
    model trains twice in one test run; the test cluster has no GPU, so no --gres.
    """
    from lib import train

    config = _write_config(
        tmp_path / "c.toml", '[train]\ngres = ""\nmem = "2G"\ncpus_per_task = 1\n'
    )
    cache = Path(os.environ.get(train.COURSE_CACHE_DIR_ENV) or REPO / ".cache" / "models")
    env = {**os.environ, train.COURSE_CACHE_DIR_ENV: str(cache)}
    done = subprocess.run(
        [sys.executable, "-m", "grading.slurm", "--config", str(config), "train", "--wait"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "COMPLETED" in done.stdout
    log = Path(done.stdout.split("its log: ")[1].split()[0]).read_text(encoding="utf-8")
    assert f"course cache: {cache}" in log
    names = list(train.course_models())
    ready = [line.split(":")[0] for line in log.splitlines() if ": ready in " in line]
    assert ready == names, log
    if names:
        assert any(cache.glob("*.pt")), f"the job left no model in {cache}"
    else:
        assert "no course models are registered" in log


# --- Grading a class through the cluster ------------------------------------------------------

#: Limits for the mixed class: small enough that the infinite loop ends soon (it is graded twice,
#: locally and through Slurm), large enough for the solved exercise, whose slowest cell (torch
#: and MNIST loading) takes about 6 s on one idle core; memory enough for torch, which the
#: memory bomb exceeds at once.
LIMITS = Limits(cell_timeout=25, notebook_timeout=300, memory_mb=6144, cpu_seconds=300)
#: The class: the solved exercise and bad hand-ins of the grader's corpus.
CLASS = {
    "infinite_loop": LIMIT_CORPUS["infinite_loop"],
    "memory_bomb": LIMIT_CORPUS["memory_bomb"],
    "os_exit": CORPUS["os_exit"],
    "invalid_json": CORPUS["invalid_json"],
}
#: Settings of the test cluster's jobs: one core per task, so that two tasks share the node.
TEST_CONFIG = "[grade]\ncpus_per_task = 1\nhandins_per_task = {per_task}\n"

pytestmark = [
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
]


def _class_course(root: Path, students: dict[str, object] | None = None) -> Course:
    """A copy of the course with the mixed class handed in (``students``: name -> corpus entry,
    ``None`` for the solved exercise)."""
    course = new_course(root)
    release_all(course)
    wanted = {"solved": None, **CLASS} if students is None else students
    for source_path in course.source_notebooks(CORPUS_ASSIGNMENT):
        parts = _parts(course, CORPUS_ASSIGNMENT, source_path)
        for student, bad in wanted.items():
            nb = parts.solution if bad is None else bad.build(parts)
            write_hand_in(course, student, CORPUS_ASSIGNMENT, source_path.name, nb)
    return course


def _limit_args() -> list[str]:
    return [
        "--no-progress",
        f"--cell-timeout={LIMITS.cell_timeout}",
        f"--notebook-timeout={LIMITS.notebook_timeout}",
        f"--memory={LIMITS.memory_mb}",
        f"--cpu-time={LIMITS.cpu_seconds}",
    ]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def local_and_slurm(slurm: None, tmp_path_factory: pytest.TempPathFactory):
    """The mixed class graded twice: by `make grade` (2 jobs) and through the cluster."""
    if CORPUS_ASSIGNMENT not in Course(REPO).source_assignments():
        pytest.skip(f"the grader's corpus needs the assignment {CORPUS_ASSIGNMENT}")
    local = _class_course(tmp_path_factory.mktemp("local"))
    status = main(["--root", str(local.root), "grade", "--jobs", "2", *_limit_args()])
    assert status == 0, "local grading failed"
    solved = {row.student: row for row in collect_grades(local)}["solved"]
    assert solved.auto_score == solved.auto_max_score, (
        f"the solved exercise lost points when graded locally ({solved.reasons}): is the "
        f"machine too busy for {LIMITS.cell_timeout:g} s per cell?"
    )
    on_slurm = _class_course(tmp_path_factory.mktemp("slurm"))
    config = _write_config(on_slurm.root / "slurm.toml", TEST_CONFIG.format(per_task=1))
    args = ["--root", str(on_slurm.root), "grade", "--slurm", f"--slurm-config={config}"]
    slurm_status = main([*args, *_limit_args()])
    solved = {row.student: row for row in collect_grades(on_slurm)}.get("solved")
    assert solved is not None and solved.auto_score == solved.auto_max_score, (
        f"the solved exercise lost points when graded through Slurm ({solved}): is the "
        f"machine too busy for {LIMITS.cell_timeout:g} s per cell?"
    )
    return local, on_slurm, slurm_status


def test_class_grades_on_slurm_as_locally(local_and_slurm) -> None:
    local, on_slurm, status = local_and_slurm
    assert status == 0, "grading through Slurm failed"
    expected = {(row.student, row.assignment): row for row in collect_grades(local)}
    got = {(row.student, row.assignment): row for row in collect_grades(on_slurm)}
    assert set(got) == set(expected) == {(s, CORPUS_ASSIGNMENT) for s in ["solved", *CLASS]}
    # Same scores per cell, same reasons (the limit hit, the dead kernel, the broken file).
    assert got == expected
    solved = got[("solved", CORPUS_ASSIGNMENT)]
    assert solved.auto_score == solved.auto_max_score > 0
    for student in CLASS:
        row = got[(student, CORPUS_ASSIGNMENT)]
        assert row.auto_score == 0 and row.reasons, f"{student}: {row}"
    assert _csv(on_slurm.root / "grades.csv") == _csv(local.root / "grades.csv")


def test_every_hand_in_ran_in_its_own_array_task(local_and_slurm) -> None:
    _, on_slurm, _ = local_and_slurm
    (run,) = (on_slurm.root / GradeResources().workdir).iterdir()
    plan = Plan.read(run)
    runnable = sorted(handin.student for handin in plan.to_run)
    assert runnable == sorted(s for s in ["solved", *CLASS] if s != "invalid_json")
    assert plan.tasks == len(runnable) and plan.array_id and plan.collect_id
    # One result file per hand-in that ran, each from its own task; the broken notebook never
    # reached the cluster, and the collecting job recorded everything.
    results = {json.loads(p.read_text())["where"] for p in (run / "results").glob("*.json")}
    assert len(results) == len(runnable)
    assert (run / "collected.json").is_file()
    assert any((run / "logs").glob(f"collect-{plan.collect_id}.out"))


def test_gradebook_consistent_after_slurm(local_and_slurm) -> None:
    """Recorded once, by the collecting job: reading again gives the same, and the feedback
    and notes of each hand-in match the table."""
    _, on_slurm, _ = local_and_slurm
    rows = collect_grades(on_slurm)
    assert collect_grades(on_slurm) == rows
    for row in rows:
        summary = on_slurm.feedback_dir / row.student / row.assignment / "summary.txt"
        assert summary.is_file(), f"no feedback for {row.student}"
        for reason in row.reasons:
            assert reason.split(": ", 1)[1] in summary.read_text(encoding="utf-8")


def test_cancelled_tasks_score_zero_with_the_reason(slurm: None, tmp_path: Path) -> None:
    """A task that never finishes (here: cancelled) is a 0 with Slurm's reason, not a gap; the
    dependent collecting job records it without the submitting command waiting."""
    if CORPUS_ASSIGNMENT not in Course(REPO).source_assignments():
        pytest.skip(f"the grader's corpus needs the assignment {CORPUS_ASSIGNMENT}")
    course = _class_course(tmp_path, {"first": None, "second": None})
    config = SlurmConfig.load(
        _write_config(tmp_path / "slurm.toml", TEST_CONFIG.format(per_task=2))
    )
    run = grade_on_slurm(course, config, LIMITS, wait_for_end=False, progress=False)
    assert run.result is None and run.plan.tasks == 1
    subprocess.run(["scancel", run.plan.array_id], check=True)
    deadline = time.monotonic() + 300
    while active_jobs([run.plan.array_id, run.plan.collect_id]):
        assert time.monotonic() < deadline, "the collecting job did not end"
        time.sleep(0.5)
    rows = {row.student: row for row in collect_grades(course)}
    assert set(rows) == {"first", "second"}
    for row in rows.values():
        assert row.auto_score == 0
        (reason,) = row.reasons
        assert "cancelled" in reason and run.plan.array_id in reason, reason
    assert {line["student"] for line in _csv(course.root / "grades.csv")} == set(rows)
