"""The committed notebooks: clean, runnable by the course kernel, and wired into the book.

nbval re-executes the chapters and solutions (``make test``); these checks cover what
execution cannot see.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    path
    for folder in ("chapters", "solutions", "exercises")
    for path in (ROOT / folder).rglob("*.ipynb")
    if ".ipynb_checkpoints" not in path.parts
)
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_there_are_notebooks() -> None:
    assert CHAPTERS and len(NOTEBOOKS) > len(CHAPTERS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{_name(path)}: cells {dirty} hold outputs; clear them before committing"
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", CHAPTERS, ids=_name)
def test_chapter_checks_its_results_in_hidden_cells(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    checks = [
        cell
        for cell in notebook.cells
        if "remove-cell" in cell.metadata.get("tags", []) and "assert" in cell.source
    ]
    assert checks, f"{_name(path)} has no assertion cell tagged remove-cell"


@pytest.mark.parametrize("path", CHAPTERS, ids=_name)
def test_chapter_reads_like_the_lecture(path: Path) -> None:
    """Narrative in the notebook, code in lib: no long code cells, and words between them."""
    notebook = nbformat.read(path, as_version=4)
    shown = [c for c in notebook.cells if "remove-cell" not in c.metadata.get("tags", [])]
    long_cells = [
        c.source[:40] for c in shown if c.cell_type == "code" and c.source.count("\n") > 15
    ]
    assert not long_cells, f"{_name(path)}: move the code of these cells into lib: {long_cells}"
    markdown = sum(cell.cell_type == "markdown" for cell in shown)
    assert markdown >= len(shown) / 3, f"{_name(path)} is mostly code"


@pytest.mark.parametrize("path", CHAPTERS, ids=_name)
def test_chapter_glues_its_numbers_in_hidden_cells(path: Path) -> None:
    """The calls that paste results into the prose (MyST-NB's ``glue``) sit in cells tagged
    remove-cell, each after the cell that computes its values: the reader sees the code that
    computes and draws, and the prose shows the numbers."""
    notebook = nbformat.read(path, as_version=4)
    gluing = [
        cell.source[:40]
        for cell in notebook.cells
        if cell.cell_type == "code"
        and "remove-cell" not in cell.metadata.get("tags", [])
        and re.search(r"\bglue\(", cell.source)
    ]
    assert not gluing, (
        f"{_name(path)}: move the glue calls of these cells into a cell tagged remove-cell "
        f"right after each: {gluing}"
    )


def _toc_files(entries: list[dict]) -> list[str]:
    files = []
    for entry in entries:
        if "file" in entry:
            files.append(entry["file"])
        for key in ("chapters", "sections", "parts"):
            files += _toc_files(entry.get(key, []))
    return files


def test_every_chapter_and_exercise_is_in_the_book() -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = set(_toc_files([toc])) | {toc["root"]}
    for entry in listed:
        assert any((ROOT / f"{entry}{suffix}").is_file() for suffix in (".md", ".ipynb")), entry
    pages = CHAPTERS + sorted((ROOT / "exercises").rglob("*.ipynb"))
    missing = [_name(p) for p in pages if str(p.relative_to(ROOT).with_suffix("")) not in listed]
    assert not missing, f"not in _toc.yml: {missing}"
    assert not any(entry.startswith("solutions") for entry in listed)
