"""The test suite's tiers, for every way pytest is called (on ``tests/``, on ``chapters/``, on
one notebook): hence at the repository's root."""

from __future__ import annotations

import os

import pytest

# As the Makefile does, for pytest called without make: set before torch (and its OpenMP
# runtime) loads, in this process and every kernel, build and grader the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers that follow from what a test runs (pyproject.toml declares them): ``notebooks``
    on every cell nbval collects from a notebook, ``book`` on every test that uses the book's
    build, so that ``-m "not notebooks"`` or ``-m book`` select by what runs."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
        if "book" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.book)
