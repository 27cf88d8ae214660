"""What the book is built from: only the pages of its table of contents, and MathJax.

A repository holds more notebooks than the book's: those of tox or nox environments, a
second virtual environment (``.venv-3.12/``), drafts. ``make book`` must neither read nor
execute them, so that a failing one cannot break the build. Checked on a one-page book with
the course's own ``_config.yml`` and extensions, surrounded by notebooks that fail and leave
a mark when they run and pages that fail to build: jupyter-book's Sphinx application, set up
as ``jupyter-book build`` sets it up, finds the pages to read (Sphinx reads exactly those, and
myst-nb executes a notebook only as it reads it) and reads them, without the cost of writing
a book. That book has no local MathJax (as on a machine without npm): it must load MathJax
from the CDN and say so in one line. (With the local copy, tests/test_browser.py shows the
equations typeset with the network blocked.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parents[1]
#: Folders beside the book's pages that are not part of the book.
DECOY_FOLDERS = (".tox/py311/share", ".nox", ".venv-3.12", "chapters/.hidden", "drafts")


def _decoy(folder: Path, marker: Path) -> None:
    """A notebook that leaves ``marker`` and fails when run, and a page that fails to build."""
    folder.mkdir(parents=True)
    code = f"from pathlib import Path\nPath({str(marker)!r}).touch()\nraise RuntimeError('ran')"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, folder / "decoy_notebook.ipynb")
    (folder / "decoy_page.md").write_text("# Decoy\n\nA {ref}`missing-target`.\n", encoding="utf-8")


@pytest.fixture(scope="module")
def small_book(tmp_path_factory: pytest.TempPathFactory, book_app):
    """A one-page book among decoys, its pages found and read: the docnames Sphinx found, the
    decoys' markers, the log, and the configuration's MathJax path and static folders."""
    root = tmp_path_factory.mktemp("small-book")
    book = root / "book"
    book.mkdir()
    for name in ("_config.yml", "references.bib", "nbgrader_config.py"):  # its cell limit
        shutil.copy(REPO / name, book / name)
    shutil.copytree(REPO / "_ext", book / "_ext")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    (book / "intro.md").write_text("# The only page\n\nOf this book: $x^2$.\n", encoding="utf-8")
    markers = {folder: root / f"ran-{index}" for index, folder in enumerate(DECOY_FOLDERS)}
    for folder, marker in markers.items():
        _decoy(book / folder, marker)

    with book_app(book, book / "_config.yml", root / "_build") as (app, log):
        app.builder.read()  # finds the pages, then reads (and would execute) each of them
        found = set(app.env.found_docs)
        config = app.config
        assert app.statuscode == 0, f"reading the book failed:\n{log.getvalue()[-4000:]}"
        return found, markers, log.getvalue(), config.mathjax_path, list(config.html_static_path)


def test_only_pages_of_the_toc_are_read_or_executed(small_book) -> None:
    found, markers, log, _, _ = small_book
    assert found == {"intro"}, f"make book reads pages outside _toc.yml: {sorted(found)}"
    ran = [folder for folder, marker in markers.items() if marker.exists()]
    assert not ran, f"make book executed notebooks outside _toc.yml, in {ran}"
    assert "decoy" not in log, f"make book looked at a page outside _toc.yml:\n{log[-4000:]}"


def test_without_local_mathjax_the_book_says_it_needs_the_network(small_book) -> None:
    _, _, log, mathjax_path, static_folders = small_book
    lines = [line for line in log.splitlines() if "MathJax" in line]
    assert len(lines) == 1 and "equations will need the network" in lines[0], lines
    # Sphinx puts mathjax_path into every page's <script src>.
    assert mathjax_path.startswith("https://cdn.jsdelivr.net/npm/mathjax@3/"), mathjax_path
    assert not [folder for folder in static_folders if "mathjax" in folder.lower()]
