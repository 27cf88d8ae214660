"""The test suite's tiers, for every way pytest is called (on ``tests/``, on ``chapters/``, on
one notebook): hence at the repository's root. And one execution of each chapter per run:
what nbval executes goes into the book's execution cache, so that the book built afterwards in
the same run (``make test`` runs the chapters first) reads each chapter's outputs there instead
of executing it again."""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import pytest

# As the Makefile does, for pytest called without make: set before torch (and its OpenMP
# runtime) loads, in this process and every kernel, build and grader the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent
CHAPTERS = ROOT / "chapters"
#: Where the book keeps executed notebooks: myst-nb's cache beside the HTML (_build/html).
BOOK_CACHE = ROOT / "_build" / ".jupyter_cache"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers that follow from what a test runs (pyproject.toml declares them): ``notebooks``
    on every cell nbval collects from a notebook, ``book`` on every test that uses the book's
    build, so that ``-m "not notebooks"`` or ``-m book`` select by what runs."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
        if "book" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.book)
    for item in items:
        if _chapter_cell(item):
            _EXECUTED.setdefault(item.parent, {"cells": 0, "done": {}, "failed": False})
            _EXECUTED[item.parent]["cells"] += 1


# --- The chapters, executed once: nbval's run becomes the book's ---------------------------

#: Per chapter notebook (nbval's file item): its cells, the outputs of those run so far (by
#: cell), and whether one failed.
_EXECUTED: dict[pytest.Collector, dict] = {}


def pytest_configure(config: pytest.Config) -> None:
    """nbval runs each cell with ``store_history=False``, where IPython then ignores a final
    semicolon and shows the figure a cell returns a second time; Jupyter, nbclient and the
    book run cells with history, and the book shows nbval's outputs: so does nbval here."""
    from nbval.kernel import RunningKernel

    def execute_cell_input(self, cell_input: str, allow_stdin: bool | None = None) -> str:
        return self.kc.execute(cell_input, allow_stdin=allow_stdin, stop_on_error=False)

    RunningKernel.execute_cell_input = execute_cell_input


def _chapter_cell(item: pytest.Item) -> bool:
    return item.path.suffix == ".ipynb" and item.path.parent == CHAPTERS and hasattr(item, "cell")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A chapter's kernel starts as the book's does: without progress bars, which a page could
    only draw as widgets (tests/test_book.py)."""
    if _chapter_cell(item):
        os.environ["TQDM_DISABLE"] = "1"
        _EXECUTED[item.parent].setdefault("start", time.perf_counter())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each chapter cell's outputs; once every cell of the chapter ran without an error,
    put the executed notebook into the book's cache."""
    outcome = yield
    report = outcome.get_result()
    if not _chapter_cell(item) or report.when != "call":
        return
    state = _EXECUTED[item.parent]
    state["failed"] |= not report.passed
    state["done"][id(item.cell)] = item.test_outputs or []
    if len(state["done"]) == state["cells"] and not state["failed"]:
        _cache_for_the_book(item.parent, state)


def _cache_for_the_book(notebook_item: pytest.Collector, state: dict) -> None:
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    executed = copy.deepcopy(notebook_item.nb)
    count = 0
    for original, cell in zip(notebook_item.nb.cells, executed.cells, strict=True):
        if cell.cell_type == "code" and id(original) in state["done"]:
            count += 1
            cell.execution_count, cell.outputs = count, state["done"][id(original)]
    seconds = time.perf_counter() - state["start"]
    bundle = CacheBundleIn(executed, str(notebook_item.path), data={"execution_seconds": seconds})
    get_cache(BOOK_CACHE).cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
