"""The course's Slurm jobs, against a real Slurm cluster (grading/slurm.py, slurm/).

The tests that submit jobs need a cluster that answers here: CI starts a one-node one with
``.ci/slurm-cluster.sh start`` (as root). Where none is reachable (a student's laptop) they
skip and say so; with ``CI=true`` they fail instead, so CI never goes green without them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grading import Course
from grading.slurm import (
    CONFIG_FILE,
    GradeResources,
    SlurmConfig,
    SlurmError,
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
