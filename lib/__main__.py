"""Command line of the course library: ``python -m lib course-models``.

``course-models`` trains, or loads from the course cache, every course model that the
chapters, exercises and grader share (:func:`lib.train.course_models`), so that a book build, a
test run or a grading run afterwards only loads them. ``$XNN_COURSE_CACHE_DIR`` chooses the
folder (default: ``.cache/models``); ``--list`` names the models without training; ``--for
NOTEBOOK...`` keeps to the models those notebooks' code calls, itself or through a function
of ``lib`` (the grader prepares only those). MNIST's two splits are decoded into the same
folder (``lib.data.load_mnist``), for every notebook that loads them.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lib import train
from lib.data import load_mnist


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    models = commands.add_parser("course-models", help="train or load every course model")
    models.add_argument("--list", action="store_true", help="only name the course models")
    models.add_argument(
        "--for",
        dest="notebooks",
        nargs="+",
        type=Path,
        metavar="NOTEBOOK",
        help="only the course models whose function these notebooks' code cells name",
    )
    args = parser.parse_args(argv)
    registered = train.course_models()
    if args.notebooks is not None:
        code = "\n".join(_code(path) for path in args.notebooks)
        registered = {
            name: build
            for name, build in registered.items()
            if any(re.search(rf"\b{call}\b", code) for call in _callers(build))
        }
    # MNIST decoded into the course cache too, where they load it: a graded hand-in gets a copy
    # of the cache and reads the decoded splits in milliseconds instead of decoding them.
    prepared = dict(registered)
    if args.notebooks is None or any(re.search(rf"\b{c}\b", code) for c in _callers(load_mnist)):
        prepared = {"lib.data.load_mnist": _decode_mnist, **registered}
    print(f"course cache: {train.course_cache_dir()}")
    for name, build in prepared.items():
        if args.list:
            print(name)
            continue
        start = time.perf_counter()
        build()
        print(f"{name}: ready in {time.perf_counter() - start:.1f} s")
    if not registered:
        print("no course models are registered" + (" that they use" if args.notebooks else ""))
    return 0


def _decode_mnist() -> None:
    """Both splits of MNIST, decoded into the course cache (:func:`lib.data.load_mnist`)."""
    for split in (True, False):
        load_mnist(train=split)


def _callers(model: Callable) -> set[str]:
    """The name of the course model's function and of every function of ``lib`` that calls it,
    itself or through another: a notebook that calls ``generate.real_and_fake`` uses the
    generator that it samples from."""
    functions = {
        name: inspect.getsource(function)
        for module in sys.modules.values()
        if module.__name__.startswith("lib.")
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__
    }
    callers, grown = {model.__name__}, True
    while grown:
        found = {
            name
            for name, source in functions.items()
            if name not in callers and any(re.search(rf"\b{c}\(", source) for c in callers)
        }
        callers, grown = callers | found, bool(found)
    return callers


def _code(notebook: Path) -> str:
    """The code cells of ``notebook``, as one text."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    return "\n".join("".join(c["source"]) for c in cells if c.get("cell_type") == "code")


if __name__ == "__main__":
    sys.exit(main())
