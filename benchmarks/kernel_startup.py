"""The fixed cost of a notebook run: from "start a kernel" to "set-up cell done", per exercise.

Two ways a kernel starts:

- ``grader``: the sandbox kernel that grades a hand-in (:func:`grading.worker.prepare` lays out
  the workspace and kernel spec; as root the kernel runs as a sandbox user), with the hand-in's
  copy of the course models and the threads a hand-in gets at ``JOBS=2``;
- ``plain``: the course's ``python3`` kernel in the exercise's folder, as ``make validate``, the
  book and nbval start it.

The set-up cell is the first code cell of ``exercises/<assignment>/<notebook>.ipynb``. Each
measurement is the median of ``--repeat`` fresh kernels: wall seconds, and the CPU seconds of
the kernel (counted by the kernel itself: a kernel forked from the grader's fork server counts
from its fork) and of the sandbox's launcher. With ``--baseline REV`` the same is measured for
the course at REV (a temporary git worktree whose ``lib`` and ``grading`` the kernels import),
in the same run, and the table gives the ratio. Usage::

    .venv/bin/python benchmarks/kernel_startup.py --baseline 1fa52c1 --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _set_up_cell(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return next("".join(c["source"]) for c in cells if c["cell_type"] == "code")


#: Evaluated in the kernel after the set-up cell: its CPU seconds since it started (a forked
#: kernel's count from its fork; the server's imports are paid once per grading run).
_CPU = "sum(__import__('os').times()[:4])"


def _launcher_cpu(pid: int) -> float:
    """CPU seconds of the sandbox's launcher itself (the kernel reports its own)."""
    import psutil

    process = psutil.Process(pid)
    return sum(process.cpu_times()[:2])


def _run(kernel_name: str, cwd: str, code: str) -> tuple[float, float]:
    """Start a kernel, run ``code``, return (wall seconds, CPU seconds of the kernel)."""
    from jupyter_client import KernelManager

    start = time.perf_counter()
    manager = KernelManager(kernel_name=kernel_name)
    manager.start_kernel(cwd=cwd)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        reply = client.execute_interactive(code, timeout=300, output_hook=lambda msg: None)
        wall = time.perf_counter() - start
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the set-up cell failed: {reply['content']}")
        asked = {"cpu": _CPU}
        reply = client.execute_interactive("", user_expressions=asked, timeout=60)
        cpu = float(reply["content"]["user_expressions"]["cpu"]["data"]["text/plain"])
        if "sandbox" in " ".join(manager.provisioner.process.args):  # not the kernel itself
            cpu += _launcher_cpu(manager.provisioner.process.pid)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return wall, cpu


def measure(root: Path, repeat: int) -> dict[str, dict[str, list[float]]]:
    """Median wall and CPU seconds per exercise and way, for the course at ``root``; its
    grader's kernels come from its fork server where it has one (:mod:`grading.forkserver`),
    started before the first measurement (one untimed kernel per exercise warms both ways)."""
    from grading import Course, Limits
    from grading.autograde import Job, Submission, threads_per_handin
    from grading.release import prepare_course_models
    from grading.sandbox import sandbox_user
    from grading.worker import KERNEL_NAME, prepare

    serving = None
    if (root / "grading" / "forkserver.py").is_file():  # not in a course from before it
        from grading.forkserver import serving
    course = Course(root)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="kernel-startup-") as folder:
        os.chmod(folder, 0o711)
        server = serving(Path(folder)) if serving else contextlib.nullcontext()
        with server:
            for assignment in course.source_assignments():
                (notebook,) = sorted((course.release_dir / assignment).glob("*.ipynb"))
                code = _set_up_cell(notebook)
                models = prepare_course_models(course, course.source_notebooks(assignment))
                submission = Submission("bench", assignment, notebook.parent)
                submission.limits, submission.course_models = Limits.of(course), models
                runs: dict[str, list[tuple[float, float]]] = {"grader": [], "plain": []}
                for run in range(repeat + 1):
                    plain = _run("python3", str(notebook.parent), code)
                    with (
                        tempfile.TemporaryDirectory(prefix="kernel-", dir=folder) as tmp,
                        sandbox_user() as (user, _),
                    ):
                        workspace = Path(tmp)
                        os.chmod(workspace, 0o711)
                        (workspace / "private").mkdir(mode=0o700)
                        gradebook = workspace / "gb"
                        gradebook.touch()
                        threads = threads_per_handin(2)
                        prepare(Job(root, submission, workspace, gradebook, user, threads))
                        os.environ["JUPYTER_PATH"] = str(workspace / "jupyter")
                        work = str(workspace / "kernel" / "work")
                        grader = _run(KERNEL_NAME, work, code)
                    if run:  # the first of each is the untimed warm-up
                        runs["plain"].append(plain)
                        runs["grader"].append(grader)
                results[assignment] = {
                    way: [
                        statistics.median(w for w, _ in got),
                        statistics.median(c for _, c in got),
                    ]
                    for way, got in runs.items()
                }
    return results


def _measured(tree: Path, repeat: int) -> dict:
    """:func:`measure` for the course at ``tree``, in a process that imports its packages."""
    # Both courses read the course models from this checkout's course cache.
    cache = os.environ.get("XNN_COURSE_CACHE_DIR") or str(REPO / ".cache" / "models")
    env = {**os.environ, "PYTHONPATH": str(tree), "XNN_COURSE_CACHE_DIR": cache}
    done = subprocess.run(
        [sys.executable, __file__, "--measure", str(tree), "--repeat", str(repeat)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"measuring {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="kernels per measurement")
    parser.add_argument("--baseline", help="a commit to measure beside this checkout")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeat)))
        return
    now = _measured(REPO, args.repeat)
    before = None
    if args.baseline:
        with tempfile.TemporaryDirectory(prefix="kernel-startup-base-") as tmp:
            tree = Path(tmp) / "course"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.baseline],
                           cwd=REPO, check=True, capture_output=True)  # fmt: skip
            try:
                before = _measured(tree, args.repeat)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO)
    print(f"set-up cell ready, median of {args.repeat} kernels (wall s / kernel CPU s)")
    header = f"{'exercise':<26} {'way':<7} {'now':>14}"
    print(header + (f" {args.baseline[:10]:>14} {'ratio':>6}" if before else ""))
    for assignment, ways in now.items():
        for way, (wall, cpu) in ways.items():
            line = f"{assignment:<26} {way:<7} {wall:>6.2f} / {cpu:>5.2f}"
            if before and assignment not in before:
                line += f" {'(no such exercise)':>21}"
            elif before:
                old_wall, old_cpu = before[assignment][way]
                line += f" {old_wall:>6.2f} / {old_cpu:>5.2f} {old_wall / wall:>5.1f}x"
            print(line)


if __name__ == "__main__":
    main()
