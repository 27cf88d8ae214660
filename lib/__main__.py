"""Command line of the course library: ``python -m lib course-models``.

``course-models`` trains, or loads from the course cache, every course model that the
chapters, exercises and grader share (:func:`lib.train.course_models`), so that a book build, a
test run or a grading run afterwards only loads them. ``$XNN_COURSE_CACHE_DIR`` chooses the
folder (default: ``.cache/models``); ``--list`` names the models without training.
"""

from __future__ import annotations

import argparse
import sys
import time

from lib import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    models = commands.add_parser("course-models", help="train or load every course model")
    models.add_argument("--list", action="store_true", help="only name the course models")
    args = parser.parse_args(argv)
    registered = train.course_models()
    print(f"course cache: {train.course_cache_dir()}")
    for name, build in registered.items():
        if args.list:
            print(name)
            continue
        start = time.perf_counter()
        build()
        print(f"{name}: ready in {time.perf_counter() - start:.1f} s")
    if not registered:
        print("no course models are registered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
