"""Time torch's work beside another job: OpenMP's wait policy and torch's thread count.

On a machine that other jobs keep busy, torch's OpenMP worker threads spin while they wait
for a thread that the scheduler has put aside, and burn CPU time without progress. This
script times two workloads in a fresh process for each setting of the environment:

- ``gan``: one epoch of the course generator's training (``lib.generate``, chapter 2), the
  longest computation of the course;
- ``tests``: the unit tests of ``lib.attribution`` and ``lib.train`` (what ``make check``
  spends most of its time on).

It prints the wall time and the CPU time (all threads) of each, ``--repeat`` times,
interleaved so that a change of the machine's load hits every setting alike. ``--burn N``
starts N busy loops beside it for the whole run, standing for another job (a second ``make
test``); leave it at 0 on a machine that is already busy, and say what its load was
(the script prints ``os.getloadavg()`` before each run). Usage::

    .venv/bin/python benchmarks/threads_under_load.py --burn 2 --repeat 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The settings compared: torch's defaults, OpenMP's passive wait, one thread.
SETTINGS = {
    "default": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
}
#: One epoch of the course generator's training, in an empty model cache.
GAN_EPOCH = """
import dataclasses, tempfile, os
os.environ["XNN_CACHE_DIR"] = tempfile.mkdtemp()
from lib import data, generate, train
patches = data.natural_patches(train=True)
config = dataclasses.replace(generate.GAN_CONFIG, epochs=1)
train.train_cached(generate.GAN, patches, patches.new_zeros(len(patches)), config,
                   name="generator", step=generate.gan_step)
"""
WORKLOADS = {
    "gan": [sys.executable, "-c", GAN_EPOCH],
    "tests": [sys.executable, "-m", "pytest", "-q", "-p", "no:nbval"]
    + ["tests/test_attribution.py", "tests/test_train.py"],
}


def _burn() -> None:
    while True:
        pass


def _run(command: list[str], setting: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user and system, all threads) of ``command`` under ``setting``."""
    env = {**os.environ, "TQDM_DISABLE": "1", **setting}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burn", type=int, default=0, help="busy loops beside the runs")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each setting")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    args = parser.parse_args()
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.burn)]
    for burner in burners:
        burner.start()
    try:
        for workload in args.workloads:
            for round_ in range(1, args.repeat + 1):
                for name, setting in SETTINGS.items():
                    load = os.getloadavg()[0]
                    wall, cpu = _run(WORKLOADS[workload], setting)
                    print(
                        f"{workload:5s} run {round_}  {name:24s} wall {wall:6.1f} s  "
                        f"cpu {cpu:6.1f} s  (load before: {load:.1f})",
                        flush=True,
                    )
    finally:
        for burner in burners:
            burner.terminate()


if __name__ == "__main__":
    main()
