"""Grade a class of N copies of an exercise's solution through Slurm, against ``make grade``.

Builds the class as ``benchmarks/grade_class.py`` does (a temporary copy of the course, the
solution handed in for ``--students`` students), then times, each from a fresh gradebook:

- ``python -m grading grade --jobs <all cores>`` (``make grade``);
- ``python -m grading grade --slurm``, with one core per array task and ``--per-task``
  hand-ins per task (and any ``--slurm 'key=value'`` setting of ``c.Slurm``) added to the
  class's copy of ``nbgrader_config.py``; on the one-node test cluster the tasks share this
  machine.

and checks that both CSVs hold a full autograded score for every student. Needs a reachable
cluster (``eval "$(.ci/slurm-cluster.sh start)"`` as root for the local one). Usage::

    .venv/bin/python benchmarks/grade_slurm_class.py --students 30
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from grade_class import fresh, make_class, report  # noqa: E402 -- the same class

from grading.slurm import reachable  # noqa: E402


def _run(root: Path, extra: list[str]) -> tuple[float, int]:
    fresh(root)
    command = [sys.executable, "-m", "grading", "--root", str(root), "grade", "--no-progress"]
    start = time.monotonic()
    done = subprocess.run([*command, *extra], capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
    return seconds, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--assignment", default="01_linear_classifiers")
    parser.add_argument("--per-task", type=int, default=1, help="hand-ins per array task")
    parser.add_argument("--cpus-per-task", type=int, default=1)
    parser.add_argument(
        "--slurm",
        action="append",
        default=[],
        help="a further c.Slurm setting, e.g. 'account=\"x\"'",
    )
    parser.add_argument("--skip-local", action="store_true", help="time only the Slurm run")
    args = parser.parse_args()
    why = reachable()
    if why:
        print(f"no Slurm cluster reachable: {why}", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="grade-slurm-class-") as tmp:
        root = Path(tmp)
        make_class(root, args.assignment, args.students)
        settings = [f"cpus_per_task = {args.cpus_per_task}", f"handins_per_task = {args.per_task}"]
        with open(root / "nbgrader_config.py", "a", encoding="utf-8") as config:
            config.writelines(f"\nc.Slurm.{setting}\n" for setting in settings + args.slurm)
        runs = [("slurm", ["--slurm"])]
        if not args.skip_local:
            runs.insert(0, (f"make grade (JOBS={cores})", ["--jobs", str(cores)]))
        ok = True
        for label, extra in runs:
            seconds, status = _run(root, extra)
            ok &= report(label, root, args.students, seconds, status, "")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
